-- The budget and rate-limit ledger: every operation is one call of this script (router/budgets/ledger.py).
--
-- ARGV[1] operation: admits | admit | settle | settles | cancel | spend | rates; ARGV[2] key prefix; ARGV[3] the time in microseconds
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
-- AOF). A call reads each scope it touches (windows, reservations, rate state) in one HMGET and
-- writes what changed back in one HSET, however many requests of that scope it admits and settles
-- (`admits` takes all the admissions a router made in one turn of its event loop).

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

-- Numbers handed to redis.call become strings through '%.17g' (printf's slow floating-point path),
-- and Lua's own tostring rounds to '%.14g'; every number passed on is an integer written by this.
local function int(x) return string.format('%d', floor(x + 0.5)) end

local function num(value)
  if value == nil or value == false or value == '' then return nil end
  return tonumber(value)
end

local function scopes(tenant, key)
  local list = { 't:' .. tenant }
  if key ~= nil and key ~= '' then list[2] = 'k:' .. tenant .. ':' .. key end
  return list
end

-- The scopes' state, read at most once and written at most once per call however many requests
-- the call admits and settles (a busy router sends many in one call): fields are read into
-- ``cached`` on first use, changed there, and written back by `write_back`.
local cached = {}       -- hash -> { values = field -> number|nil, read = field -> true, changed = field -> true, fresh_day = bool }
local cached_order = {} -- hashes in the order first used (for a stable write order)

local function scope_state(hash)
  local state = cached[hash]
  if state == nil then
    local f = redis.call('HMGET', hash, DAY, MONTH, 'all', 'reserved', 'rpm', 'tpm')
    state = {
      values = { [DAY] = num(f[1]), [MONTH] = num(f[2]), all = num(f[3]), reserved = num(f[4]),
                 rpm = num(f[5]), tpm = num(f[6]) },
      read = { [DAY] = true, [MONTH] = true, all = true, reserved = true, rpm = true, tpm = true },
      changed = {},
      fresh_day = not f[1],  -- today not charged yet: the first charge prunes old windows
    }
    cached[hash] = state
    cached_order[#cached_order + 1] = hash
  end
  return state
end

-- One field of a scope (a window other than today's or this month's is read when asked for).
local function get(hash, field)
  local state = scope_state(hash)
  if not state.read[field] then
    state.values[field] = num(redis.call('HGET', hash, field))
    state.read[field] = true
  end
  return state.values[field] or 0, state
end

local function put(state, field, value)
  state.values[field] = value
  state.changed[field] = true
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

-- Request ids entering and leaving the tenants' open sets, written by `write_back` (removals
-- first: a retry settles its previous attempt and is admitted again under the same id in one call).
local opened, closed = {}, {}

local function add_to(sets, tenant, ...)
  local list = sets[tenant]
  if list == nil then list = {}; sets[tenant] = list end
  for _, value in ipairs({ ... }) do list[#list + 1] = value end
end

-- Write every changed scope in one HSET each, then the open sets.
local function write_back()
  for _, hash in ipairs(cached_order) do
    local state = cached[hash]
    local fields = {}
    for field in pairs(state.changed) do
      fields[#fields + 1] = field
      fields[#fields + 1] = int(state.values[field])
    end
    if #fields > 0 then
      redis.call('HSET', hash, unpack(fields))
      if state.fresh_day and state.changed[DAY] then prune(hash) end
    end
  end
  for tenant, rids in pairs(closed) do redis.call('ZREM', P .. 'open:' .. tenant, unpack(rids)) end
  for tenant, entries in pairs(opened) do redis.call('ZADD', P .. 'open:' .. tenant, unpack(entries)) end
end

-- Take ``amount`` off the scopes' open reservations, never below zero (a lost write must not leave
-- the tenant with negative reservations, which would let it overspend).
local function unreserve(scope_list, amount)
  if amount == 0 then return end
  for _, scope in ipairs(scope_list) do
    local reserved, state = get(P .. scope, 'reserved')
    put(state, 'reserved', math.max(reserved - amount, 0))
  end
end

-- Settle into the scopes: ``released`` off the open reservations, ``spent`` onto the day and month
-- the attempt reserved in and the total, ``tokens`` onto each scope's tokens-per-minute state
-- (``tpm_limits``: per scope, nil where it has none).
local function charge(scope_list, day, month, released, spent, tokens, tpm_limits)
  for s, scope in ipairs(scope_list) do
    local hash = P .. scope
    local reserved, state = get(hash, 'reserved')
    if released ~= 0 then put(state, 'reserved', math.max(reserved - released, 0)) end
    if spent ~= 0 then
      for _, field in ipairs({ day, month, 'all' }) do put(state, field, get(hash, field) + spent) end
    end
    local tpm = tpm_limits[s]
    if tokens > 0 and tpm then
      put(state, 'tpm', math.max(state.values.tpm or now, now) + tokens * MINUTE / tpm)
    end
  end
end

-- Release every expired reservation of the tenant (bounded), so a router that died leaks nothing.
-- Once per tenant and call.
local reclaimed = {}
local function reclaim(tenant)
  if reclaimed[tenant] then return end
  reclaimed[tenant] = true
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
end

-- GCRA over requests: ``limit`` per minute, ``burst`` at once, from the stored TAT (nil: none).
-- Returns allowed, new TAT, remaining, reset (us until the bucket is full again), retry (us until
-- one more is allowed).
local function gcra_request(stored, limit, burst)
  local interval = MINUTE / limit
  local tat = math.max(stored or now, now)
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
  local tat = math.max(stored or now, now)
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
  local debt = math.max((stored or now) - now, 0)
  local remaining = floor((MINUTE - debt) / interval + 1e-9)
  if remaining >= 1 then return true, remaining, debt, 0 end
  return false, 0, debt, debt - MINUTE + interval
end

-- A caller: what its admissions share, from 17 arguments at ``base`` + 1: tenant, key id ('' =
-- none), reservation ttl (us), idempotency window (us), max attempts, then per scope (tenant, key)
-- daily, monthly, total, requests/minute, request burst, tokens/minute ('' = none).
local function caller(base)
  local c = {
    tenant = ARGV[base + 1], key = ARGV[base + 2], ttl = tonumber(ARGV[base + 3]),
    window_us = tonumber(ARGV[base + 4]), max_attempts = tonumber(ARGV[base + 5]),
    tt = ARGV[base + 11], kt = ARGV[base + 17], limits = {},
  }
  for s = 1, 2 do
    local at = base + 5 + (s - 1) * 6
    c.limits[s] = {
      daily = num(ARGV[at + 1]), monthly = num(ARGV[at + 2]), total = num(ARGV[at + 3]),
      rpm = num(ARGV[at + 4]), burst = num(ARGV[at + 5]), tpm = num(ARGV[at + 6]),
    }
  end
  c.scopes = scopes(c.tenant, c.key)
  return c
end

local SCOPE_NAMES = { 'tenant', 'key' }

-- Admit one request of caller ``c``: request id, max cost, and a token naming this admission (for
-- cancel). Checks idempotency, rate limits and budgets against the state as the requests before it
-- in this call left it.
-- Returns {verdict, scope, window, retry (us), attempt, reserved, charged before,
--          rpm limit, rpm remaining, rpm reset (us), tpm limit, tpm remaining, tpm reset (us)}
-- (-1 where there is no such limit); verdict 'ok' or the refusal.
local function admit(c, rid, max_cost, token)
  local tenant = c.tenant
  max_cost = tonumber(max_cost)
  reclaim(tenant)

  -- Idempotency by (tenant, request id).
  local record = P .. 'r:' .. tenant .. ':' .. rid
  local f = redis.call('HMGET', record, 'st', 'n', 'chg')
  local attempt, charged = 1, 0
  if f[1] then
    if f[1] == 'open' then
      return { 'duplicate_in_flight', '', '', 0, tonumber(f[2]), 0, tonumber(f[3]), -1, -1, -1, -1, -1, -1 }
    end
    if tonumber(f[2]) >= c.max_attempts then
      return { 'duplicate_exhausted', '', '', 0, tonumber(f[2]), 0, tonumber(f[3]), -1, -1, -1, -1, -1, -1 }
    end
    attempt, charged = tonumber(f[2]) + 1, tonumber(f[3])
  end
  local reserve = math.max(max_cost - charged, 0)

  -- Rate limits: check everything before changing anything, so a refusal costs nothing.
  local rq_limit, rq_remaining, rq_reset = -1, -1, -1
  local tk_limit, tk_remaining, tk_reset = -1, -1, -1
  local refusal, refused_scope, retry = nil, '', 0
  local states, slots = {}, {}  -- per scope: its cached state, the request slot's new TAT
  for s, scope in ipairs(c.scopes) do
    local l = c.limits[s]
    local state = scope_state(P .. scope)
    states[s] = state
    if l.rpm then
      local ok, tat, remaining, reset, wait = gcra_request(state.values.rpm, l.rpm, request_burst(l.rpm, l.burst))
      if not ok then
        if refusal == nil or wait > retry then refusal, refused_scope, retry = 'rate_limited_requests', SCOPE_NAMES[s], wait end
      else
        slots[s] = tat
      end
      if rq_remaining < 0 or remaining < rq_remaining then rq_limit, rq_remaining, rq_reset = l.rpm, remaining, reset end
    end
    if l.tpm then
      local ok, remaining, reset, wait = gcra_tokens_state(state.values.tpm, l.tpm)
      if not ok and (refusal == nil or wait > retry) then
        refusal, refused_scope, retry = 'rate_limited_tokens', SCOPE_NAMES[s], wait
      end
      if tk_remaining < 0 or remaining < tk_remaining then tk_limit, tk_remaining, tk_reset = l.tpm, remaining, reset end
    end
  end
  local function answer(verdict, scope_name, window, wait, reserved)
    return { verdict, scope_name, window, floor(wait), attempt, reserved, charged,
             rq_limit, rq_remaining, floor(rq_reset), tk_limit, tk_remaining, floor(tk_reset) }
  end
  if refusal then
    if rq_limit >= 0 and refusal == 'rate_limited_requests' then rq_remaining = 0 end
    return answer(refusal, refused_scope, '', retry, 0)
  end

  -- Budgets: settled + open reservations + this one within every window's limit.
  for s, _ in ipairs(c.scopes) do
    local l, values = c.limits[s], states[s].values
    if l.daily or l.monthly or l.total then
      local open = (values.reserved or 0) + reserve
      if l.daily and (values[DAY] or 0) + open > l.daily then
        return answer('budget_exceeded', SCOPE_NAMES[s], 'daily', DAY_END * 1000000 - now, 0)
      end
      if l.monthly and (values[MONTH] or 0) + open > l.monthly then
        return answer('budget_exceeded', SCOPE_NAMES[s], 'monthly', MONTH_END * 1000000 - now, 0)
      end
      if l.total and (values.all or 0) + open > l.total then
        return answer('budget_exceeded', SCOPE_NAMES[s], 'total', 0, 0)
      end
    end
  end

  -- Admitted: take the request slot(s), reserve for every scope, remember the id.
  for s, state in ipairs(states) do
    if reserve > 0 then put(state, 'reserved', (state.values.reserved or 0) + reserve) end
    if slots[s] then put(state, 'rpm', slots[s]) end
  end
  local expires = now + c.ttl
  add_to(opened, tenant, int(expires), rid)
  redis.call('HSET', record, 'st', 'open', 'n', int(attempt), 'chg', int(charged), 'res', int(reserve),
    'd', DAY, 'm', MONTH, 'key', c.key, 'exp', int(expires), 'win', int(c.window_us), 'tt', c.tt, 'kt', c.kt,
    'tok', token)
  -- While open the record must outlive its reservation (reclaim reads it): a retry's record had
  -- an expiry (its idempotency window), which is taken off until it is settled again.
  if f[1] then redis.call('PERSIST', record) end
  if rq_limit >= 0 and rq_remaining < 0 then rq_remaining = 0 end
  return answer('ok', '', '', 0, reserve)
end

-- settle: tenant, request id, attempt, cost, tokens, idempotency window (us), 'release' or
-- 'settle'. The id's charge becomes max(charged, cost): the difference goes into the windows the
-- attempt reserved in; its reservation is released; tokens go to the TPM buckets. An attempt
-- already settled or released changes nothing.
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
    add_to(closed, tenant, rid)
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
  add_to(closed, tenant, rid)
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
    local values = scope_state(P .. scope).values
    local reserved = values.reserved or 0
    for _, field in ipairs({ DAY, MONTH, 'all' }) do
      out[#out + 1] = values[field] or 0
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
      local remaining, reset = gcra_request_state(num(stored[1]), rpm, burst)
      for _, value in ipairs({ rpm, burst, remaining, floor(reset) }) do out[#out + 1] = value end
    else
      for _ = 1, 4 do out[#out + 1] = -1 end
    end
    if tpm then
      local _, remaining, reset = gcra_tokens_state(num(stored[2]), tpm)
      for _, value in ipairs({ tpm, remaining, floor(reset) }) do out[#out + 1] = value end
    else
      for _ = 1, 3 do out[#out + 1] = -1 end
    end
  end
  return out
end

-- Settles carried along with another call (so that a request costs one call, not two): from
-- ARGV[first] on, the idempotency window (us), then six arguments per settle: tenant, request id,
-- attempt, cost, tokens, 'release' or 'settle' (as settle's). Their answers, four values each, in
-- order, are appended to ``out``.
local function carried(first, out)
  local window_us = ARGV[first]
  if window_us == nil then return out end
  for i = first + 1, #ARGV, 6 do
    local answer = settle(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], window_us, ARGV[i + 5])
    for _, value in ipairs(answer) do out[#out + 1] = value end
  end
  return out
end

local function append(out, values)
  for _, value in ipairs(values) do out[#out + 1] = value end
  return out
end

local operation = ARGV[1]
local out
if operation == 'admits' then
  -- admits: [4] number of callers C, then 17 arguments per caller (see `caller`); then the number
  -- of admissions N, then four arguments each: caller (1..C), request id, max cost, token; then,
  -- optionally, settles to apply first (carried). Returns 13 values per admission (see `admit`),
  -- in order, then the carried settles' answers.
  local callers = {}
  local count = tonumber(ARGV[4])
  for i = 1, count do callers[i] = caller(4 + (i - 1) * 17) end
  local at = 5 + count * 17
  local admissions = tonumber(ARGV[at])
  local settles = carried(at + 1 + admissions * 4, {})  -- first: a retry sees its previous attempt settled
  out = {}
  for i = at + 1, at + admissions * 4, 4 do
    append(out, admit(callers[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]))
  end
  append(out, settles)
elseif operation == 'admit' then
  -- admit: [4..20] the caller (see `caller`), [21] request id, [22] max cost, [23] a token naming
  -- this admission call (for cancel); from [24] on, optionally, settles to apply first (carried).
  -- Returns the admission's 13 values (see `admit`), then the carried settles' answers.
  local settles = carried(24, {})
  out = append(admit(caller(3), ARGV[21], ARGV[22], ARGV[23]), settles)
elseif operation == 'settle' then
  out = settle(ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
elseif operation == 'settles' then
  out = carried(4, {})
elseif operation == 'spend' then
  out = spend()
elseif operation == 'rates' then
  out = rates()
elseif operation == 'cancel' then
  out = cancel()
else
  return redis.error_reply('unknown ledger operation ' .. tostring(operation))
end
write_back()
return out
