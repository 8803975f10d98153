-- The budget and rate-limit ledger: every operation is one call of this script (router/budgets/ledger.py).
--
-- ARGV[1] operation: admit | settle | settles | cancel | spend | rates; ARGV[2] key prefix; ARGV[3] the time in microseconds
-- ('' = Redis TIME; tests pass one). The rest depends on the operation (see each function).
-- Keys are built here from tenant, key id and the UTC window, so this needs a single (non-cluster)
-- Redis. Money is integer micro-units; times are microseconds (exact in a double until 2255).
--
-- Layout under the prefix P:
--   P r:<tenant>:<request id>   hash  one request id: st (open|settled|released|expired), n (attempt),
--                                     chg (charged so far for the id), res (this attempt's reservation),
--                                     d, m (its windows), key, exp, win (idempotency window), tt, kt
--                                     (TPM limits), done:<n>; no expiry while open, then the window
--   P open:<tenant>             zset  request ids with an open reservation, scored by expiry
--   P <scope>                   hash  one scope's state (scope: t:<tenant> or k:<tenant>:<key id>):
--                                     d:YYYY-MM-DD, m:YYYY-MM (spent in that day, month), all (spent
--                                     in total), reserved (its open reservations, counted against
--                                     every window), rpm, tpm (GCRA theoretical arrival times, us);
--                                     dated fields are dropped 35 days after their window ends
--
-- Why one hash per scope: Redis's cost is in commands, writes most (each is also appended to the
-- AOF). An admission reads a scope's windows, reservations and rate state in one HMGET and writes
-- them back in one HSET; a settle likewise, where a key per window and per rate took a command each.

local P = ARGV[2]
local now
if ARGV[3] ~= '' then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local MINUTE = 60000000
local RETAIN = 35 * 86400          -- a day's or month's spend is kept this long after it ends
local RECLAIM_BATCH = 100          -- expired reservations released per call, at most

-- Calendar (UTC), after Howard Hinnant's days_from_civil / civil_from_days.
local function floor(x) return math.floor(x) end

local function civil(days)
  local z = days + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end

local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = m > 2 and m - 3 or m + 9
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- The current windows: names, and when each ends (unix seconds).
local seconds = floor(now / 1000000)
local today = floor(seconds / 86400)
local Y, M, D = civil(today)
local DAY = string.format('d:%04d-%02d-%02d', Y, M, D)
local MONTH = string.format('m:%04d-%02d', Y, M)
local DAY_END = (today + 1) * 86400
local MONTH_END = (M == 12 and days_from_civil(Y + 1, 1, 1) or days_from_civil(Y, M + 1, 1)) * 86400

-- Numbers handed to redis.call become strings through '%.14g', which rounds and may write an
-- exponent; every number passed on goes through this instead.
local function int(x) return string.format('%.0f', x) end

local function num(value)
  if value == nil or value == false or value == '' then return nil end
  return tonumber(value)
end

local function scopes(tenant, key)
  local list = { 't:' .. tenant }
  if key ~= nil and key ~= '' then list[2] = 'k:' .. tenant .. ':' .. key end
  return list
end

-- When a dated window's field is dropped: RETAIN after its window ends (any window, not only
-- today's); nil for the fields that are not dated.
local function window_expiry(window)
  local y, m, d = string.match(window, '^d:(%d+)-(%d+)-(%d+)$')
  if y then return (days_from_civil(tonumber(y), tonumber(m), tonumber(d)) + 1) * 86400 + RETAIN end
  y, m = string.match(window, '^m:(%d+)-(%d+)$')
  if not y then return nil end
  y, m = tonumber(y), tonumber(m)
  if m == 12 then y, m = y + 1, 0 end
  return days_from_civil(y, m + 1, 1) * 86400 + RETAIN
end

-- Drop the scope's dated fields whose window ended more than RETAIN ago (when a day is first charged).
local function prune(hash)
  local stale = {}
  for _, field in ipairs(redis.call('HKEYS', hash)) do
    local expiry = window_expiry(field)
    if expiry and expiry <= seconds then stale[#stale + 1] = field end
  end
  if #stale > 0 then redis.call('HDEL', hash, unpack(stale)) end
end

-- Take ``amount`` off the scopes' open reservations, never below zero (a lost write must not leave
-- the tenant with negative reservations, which would let it overspend).
local function unreserve(scope_list, amount)
  if amount == 0 then return end
  for _, scope in ipairs(scope_list) do
    local hash = P .. scope
    if redis.call('HINCRBY', hash, 'reserved', int(-amount)) < 0 then redis.call('HSET', hash, 'reserved', 0) end
  end
end

-- Settle into the scopes: ``released`` off the open reservations, ``spent`` onto the day and month
-- the attempt reserved in and the total, ``tokens`` onto each scope's tokens-per-minute state
-- (``tpm_limits``: per scope, nil where it has none). One read and one write per scope, or one
-- HINCRBY where only a reservation is released.
local function charge(scope_list, day, month, released, spent, tokens, tpm_limits)
  for s, scope in ipairs(scope_list) do
    local hash = P .. scope
    local tpm = tokens > 0 and tpm_limits[s] or nil
    if spent == 0 and not tpm then
      if released ~= 0 then unreserve({ scope }, released) end
    else
      local f = redis.call('HMGET', hash, day, month, 'all', 'reserved', 'tpm')
      local fields = { 'reserved', int(math.max((tonumber(f[4]) or 0) - released, 0)) }
      if spent ~= 0 then
        for i, field in ipairs({ day, month, 'all' }) do
          fields[#fields + 1] = field
          fields[#fields + 1] = int((tonumber(f[i]) or 0) + spent)
        end
      end
      if tpm then
        fields[#fields + 1] = 'tpm'
        fields[#fields + 1] = int(math.max(num(f[5]) or now, now) + tokens * MINUTE / tpm)
      end
      redis.call('HSET', hash, unpack(fields))
      if spent ~= 0 and not f[1] and day == DAY then prune(hash) end
    end
  end
end

-- Release every expired reservation of the tenant (bounded), so a router that died leaks nothing.
local function reclaim(tenant)
  local open = P .. 'open:' .. tenant
  local expired = redis.call('ZRANGEBYSCORE', open, '-inf', int(now), 'LIMIT', 0, RECLAIM_BATCH)
  for _, rid in ipairs(expired) do
    local record = P .. 'r:' .. tenant .. ':' .. rid
    local f = redis.call('HMGET', record, 'st', 'res', 'd', 'm', 'key')
    if f[1] == 'open' then
      unreserve(scopes(tenant, f[5]), tonumber(f[2]))
      redis.call('HSET', record, 'st', 'expired')
      redis.call('PEXPIRE', record, int(tonumber(redis.call('HGET', record, 'win') or 0) / 1000))
    end
    redis.call('ZREM', open, rid)
  end
  return #expired
end

-- GCRA over requests: ``limit`` per minute, ``burst`` at once, from the stored TAT (nil: none).
-- Returns allowed, new TAT, remaining, reset (us until the bucket is full again), retry (us until
-- one more is allowed).
local function gcra_request(stored, limit, burst)
  local interval = MINUTE / limit
  local tat = math.max(num(stored) or now, now)
  local new = tat + interval
  local capacity = burst * interval
  if new - now <= capacity + 0.5 then
    return true, new, floor((capacity - (new - now)) / interval + 1e-9), new - now, 0
  end
  return false, tat, 0, tat - now, new - now - capacity
end

-- The request slots a scope has now, without taking one (the rates operation): remaining, reset (us).
local function gcra_request_state(stored, limit, burst)
  local interval = MINUTE / limit
  local tat = math.max(num(stored) or now, now)
  return math.max(floor((burst * interval - (tat - now)) / interval + 1e-9), 0), tat - now
end

-- Requests allowed at once: the declared burst, else one second's worth of the per-minute limit.
local function request_burst(rpm, burst)
  return burst or math.max(1, floor(rpm / 60))
end

-- GCRA over tokens: ``limit`` per minute, a full minute of burst; admission needs one token of
-- room. Tokens are added at settle (`charge`).
local function gcra_tokens_state(stored, limit)
  local interval = MINUTE / limit
  local debt = math.max((num(stored) or now) - now, 0)
  local remaining = floor((MINUTE - debt) / interval + 1e-9)
  if remaining >= 1 then return true, remaining, debt, 0 end
  return false, 0, debt, debt - MINUTE + interval
end

-- admit: ARGV[4] tenant, [5] key id, [6] reservation ttl (us), [7] idempotency window (us), [8] max
-- attempts, then per scope (tenant [9..14], key [15..20]): daily, monthly, total, requests/minute,
-- request burst, tokens/minute ('' = none); then what differs per request: [21] request id, [22]
-- max cost, [23] a token naming this admission call (for cancel); from [24] on, optionally,
-- settles to apply first (carried). (A caller's arguments up to [20] are the same for each of its
-- requests: the router encodes them once.)
-- Returns {verdict, scope, window, retry (us), attempt, reserved, charged before,
--          rpm limit, rpm remaining, rpm reset (us), tpm limit, tpm remaining, tpm reset (us)}
-- (-1 where there is no such limit); verdict 'ok' or the refusal; then the carried settles' answers.
local function admit()
  local tenant, key, rid = ARGV[4], ARGV[5], ARGV[21]
  local max_cost, ttl, window_us, max_attempts =
    tonumber(ARGV[22]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
  local limits = { {}, {} }
  for s = 1, 2 do
    local base = 8 + (s - 1) * 6
    limits[s] = {
      daily = num(ARGV[base + 1]), monthly = num(ARGV[base + 2]), total = num(ARGV[base + 3]),
      rpm = num(ARGV[base + 4]), burst = num(ARGV[base + 5]), tpm = num(ARGV[base + 6]),
    }
  end
  local scope_list = scopes(tenant, key)
  local scope_names = { 'tenant', 'key' }
  reclaim(tenant)

  -- Idempotency by (tenant, request id).
  local record = P .. 'r:' .. tenant .. ':' .. rid
  local f = redis.call('HMGET', record, 'st', 'n', 'chg')
  local attempt, charged = 1, 0
  if f[1] then
    if f[1] == 'open' then return { 'duplicate_in_flight', '', '', 0, tonumber(f[2]), 0, tonumber(f[3]) } end
    if tonumber(f[2]) >= max_attempts then
      return { 'duplicate_exhausted', '', '', 0, tonumber(f[2]), 0, tonumber(f[3]) }
    end
    attempt, charged = tonumber(f[2]) + 1, tonumber(f[3])
  end
  local reserve = math.max(max_cost - charged, 0)

  -- Each limited scope's state, read once: the windows, the open reservations, the rate state.
  local state = {}
  for s, scope in ipairs(scope_list) do
    local l = limits[s]
    if l.daily or l.monthly or l.total or l.rpm or l.tpm then
      state[s] = redis.call('HMGET', P .. scope, DAY, MONTH, 'all', 'reserved', 'rpm', 'tpm')
    end
  end

  -- Rate limits: check everything before writing anything, so a refusal costs nothing.
  local rq = { limit = -1, remaining = -1, reset = -1 }
  local tk = { limit = -1, remaining = -1, reset = -1 }
  local refusal, refused_scope, retry = nil, '', 0
  local slots = {}  -- per scope, the request slot's new TAT
  for s, _ in ipairs(scope_list) do
    local l = limits[s]
    if l.rpm then
      local burst = request_burst(l.rpm, l.burst)
      local ok, tat, remaining, reset, wait = gcra_request(state[s][5], l.rpm, burst)
      if not ok then
        if refusal == nil or wait > retry then refusal, refused_scope, retry = 'rate_limited_requests', scope_names[s], wait end
      else
        slots[s] = tat
      end
      if rq.remaining < 0 or remaining < rq.remaining then
        rq = { limit = l.rpm, remaining = remaining, reset = reset }
      end
    end
    if l.tpm then
      local ok, remaining, reset, wait = gcra_tokens_state(state[s][6], l.tpm)
      if not ok and (refusal == nil or wait > retry) then
        refusal, refused_scope, retry = 'rate_limited_tokens', scope_names[s], wait
      end
      if tk.remaining < 0 or remaining < tk.remaining then
        tk = { limit = l.tpm, remaining = remaining, reset = reset }
      end
    end
  end
  local function answer(verdict, scope_name, window, wait, reserved)
    return { verdict, scope_name, window, floor(wait), attempt, reserved, charged,
             rq.limit, rq.remaining, floor(rq.reset), tk.limit, tk.remaining, floor(tk.reset) }
  end
  if refusal then
    if rq.limit >= 0 and refusal == 'rate_limited_requests' then rq.remaining = 0 end
    return answer(refusal, refused_scope, '', retry, 0)
  end

  -- Budgets: settled + open reservations + this one within every window's limit.
  for s, _ in ipairs(scope_list) do
    local l = limits[s]
    if l.daily or l.monthly or l.total then
      local used = state[s]
      local open = (tonumber(used[4]) or 0) + reserve
      for i, w in ipairs({ { 'daily', l.daily, DAY_END }, { 'monthly', l.monthly, MONTH_END }, { 'total', l.total } }) do
        if w[2] and (tonumber(used[i]) or 0) + open > w[2] then
          return answer('budget_exceeded', scope_names[s], w[1], w[3] and (w[3] * 1000000 - now) or 0, 0)
        end
      end
    end
  end

  -- Admitted: take the request slot(s), reserve for every scope, remember the id.
  for s, scope in ipairs(scope_list) do
    if state[s] then  -- read above: written back in one HSET
      local fields = { 'reserved', int((tonumber(state[s][4]) or 0) + reserve) }
      if slots[s] then
        fields[3], fields[4] = 'rpm', int(slots[s])
      end
      if reserve > 0 or slots[s] then redis.call('HSET', P .. scope, unpack(fields)) end
    elseif reserve > 0 then
      redis.call('HINCRBY', P .. scope, 'reserved', int(reserve))
    end
  end
  local expires = now + ttl
  redis.call('ZADD', P .. 'open:' .. tenant, int(expires), rid)
  redis.call('HSET', record, 'st', 'open', 'n', int(attempt), 'chg', int(charged), 'res', int(reserve),
    'd', DAY, 'm', MONTH, 'key', key, 'exp', int(expires), 'win', int(window_us), 'tt', ARGV[14], 'kt', ARGV[20],
    'tok', ARGV[23])
  -- While open the record must outlive its reservation (reclaim reads it): a retry's record had
  -- an expiry (its idempotency window), which is taken off until it is settled again.
  if f[1] then redis.call('PERSIST', record) end
  if rq.limit >= 0 and rq.remaining < 0 then rq.remaining = 0 end
  return answer('ok', '', '', 0, reserve)
end

-- settle: ARGV[4] tenant, [5] request id, [6] attempt, [7] cost, [8] tokens, [9] idempotency window
-- (us), [10] 'release' or 'settle'. The id's charge becomes max(charged, cost): the difference goes
-- into the windows the attempt reserved in; its reservation is released; tokens go to the TPM
-- buckets. An attempt already settled or released changes nothing.
-- Returns {outcome, charged now, id's total charge, this attempt's reservation}.
local function settle(tenant, rid, attempt, cost, tokens, window_us, release)
  attempt, cost, tokens, window_us = tonumber(attempt), tonumber(cost), tonumber(tokens), tonumber(window_us)
  local record = P .. 'r:' .. tenant .. ':' .. rid
  local f = redis.call('HMGET', record, 'st', 'n', 'chg', 'res', 'd', 'm', 'key', 'tt', 'kt', 'done:' .. int(attempt))
  if not f[1] then return { 'unknown', 0, 0, 0 } end
  local charged = tonumber(f[3])
  if f[10] then return { 'duplicate', 0, charged, 0 } end
  local scope_list = scopes(tenant, f[7])
  local current = tonumber(f[2]) == attempt
  local reserved = 0
  if current and f[1] == 'open' then
    reserved = tonumber(f[4])
    redis.call('ZREM', P .. 'open:' .. tenant, rid)
  end
  local delta = math.max(cost - charged, 0)
  charge(scope_list, f[5], f[6], reserved, delta, tokens, { num(f[8]), num(f[9]) })
  charged = charged + delta
  local outcome = release == 'release' and 'released' or 'settled'
  if current then
    redis.call('HSET', record, 'chg', int(charged), 'done:' .. int(attempt), 1, 'st', outcome)
    redis.call('PEXPIRE', record, int(floor(window_us / 1000)))
  else
    redis.call('HSET', record, 'chg', int(charged), 'done:' .. int(attempt), 1)
  end
  return { outcome, delta, charged, reserved }
end

-- cancel: ARGV[4] tenant, [5] request id, [6] token. Releases the reservation the admission call
-- with this token made, if it ran and is still open (its caller never saw the answer).
-- Returns {1} when something was released, else {0}.
local function cancel()
  local tenant, rid = ARGV[4], ARGV[5]
  local record = P .. 'r:' .. tenant .. ':' .. rid
  local f = redis.call('HMGET', record, 'st', 'tok', 'res', 'd', 'm', 'key', 'n', 'win')
  if f[1] ~= 'open' or f[2] ~= ARGV[6] then return { 0 } end
  unreserve(scopes(tenant, f[6]), tonumber(f[3]))
  redis.call('ZREM', P .. 'open:' .. tenant, rid)
  redis.call('HSET', record, 'st', 'released', 'done:' .. f[7], 1)
  redis.call('PEXPIRE', record, int(tonumber(f[8]) / 1000))
  return { 1 }
end

-- spend: ARGV[4] tenant, [5] key id ('' = none). Releases expired reservations first.
-- Returns {day window, month window, then spent, reserved for each scope's day, month, total}.
local function spend()
  local tenant, key = ARGV[4], ARGV[5]
  reclaim(tenant)
  local out = { DAY, MONTH }
  for _, scope in ipairs(scopes(tenant, key)) do
    local used = redis.call('HMGET', P .. scope, DAY, MONTH, 'all', 'reserved')
    local reserved = tonumber(used[4]) or 0
    for i = 1, 3 do
      out[#out + 1] = tonumber(used[i]) or 0
      out[#out + 1] = reserved
    end
  end
  return out
end

-- rates: ARGV[4] tenant, [5] key id ('' = none), then per scope (tenant [6..8], key [9..11]):
-- requests/minute, request burst, tokens/minute ('' = none). Reads only: takes no request slot,
-- counts no token, releases nothing (the admin API reads it, never the request path).
-- Returns per scope {rpm limit, burst, remaining, reset (us), tpm limit, remaining, reset (us)}
-- (-1 where there is no such limit).
local function rates()
  local out = {}
  for s, scope in ipairs(scopes(ARGV[4], ARGV[5])) do
    local base = 5 + (s - 1) * 3
    local rpm, burst, tpm = num(ARGV[base + 1]), num(ARGV[base + 2]), num(ARGV[base + 3])
    local stored = redis.call('HMGET', P .. scope, 'rpm', 'tpm')
    if rpm then
      burst = request_burst(rpm, burst)
      local remaining, reset = gcra_request_state(stored[1], rpm, burst)
      for _, value in ipairs({ rpm, burst, remaining, floor(reset) }) do out[#out + 1] = value end
    else
      for _ = 1, 4 do out[#out + 1] = -1 end
    end
    if tpm then
      local _, remaining, reset = gcra_tokens_state(stored[2], tpm)
      for _, value in ipairs({ tpm, remaining, floor(reset) }) do out[#out + 1] = value end
    else
      for _ = 1, 3 do out[#out + 1] = -1 end
    end
  end
  return out
end

-- Settles carried along with another call (so that a request costs one call, not two): from ARGV[first]
-- on, the idempotency window (us), then six arguments per settle: tenant, request id, attempt, cost,
-- tokens, 'release' or 'settle' (as settle's). Returns their answers, four values each, in order.
local function carried(first)
  local out = {}
  local window_us = ARGV[first]
  if window_us == nil then return out end
  for i = first + 1, #ARGV, 6 do
    local answer = settle(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], window_us, ARGV[i + 5])
    for _, value in ipairs(answer) do out[#out + 1] = value end
  end
  return out
end

local operation = ARGV[1]
if operation == 'admit' then
  -- The carried settles first: a retry of an id admitted here sees its previous attempt settled.
  local settled = carried(24)
  local answer = admit()
  for i = #answer + 1, 13 do answer[i] = -1 end
  for _, value in ipairs(settled) do answer[#answer + 1] = value end
  return answer
end
if operation == 'settle' then return settle(ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]) end
if operation == 'settles' then return carried(4) end
if operation == 'spend' then return spend() end
if operation == 'rates' then return rates() end
if operation == 'cancel' then return cancel() end
return redis.error_reply('unknown ledger operation ' .. tostring(operation))
