-- Not loaded as one file: router/batch/queue.py splits it on the "--- name" markers, one script each.
--- reserve
-- KEYS[1] tenant's queued counter. ARGV[1] tasks to add, ARGV[2] the tenant's limit (0: none).
local queued = redis.call('INCRBY', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 and queued > tonumber(ARGV[2]) then
  redis.call('DECRBY', KEYS[1], ARGV[1])
  return queued - tonumber(ARGV[1])
end
return -1
--- start
-- May this task run now? KEYS: batch, results, tenant's running leases.
-- ARGV: custom_id, lease member, now (ms), lease (ms), the tenant's concurrency limit (0: none).
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 'done' end
local state = redis.call('HMGET', KEYS[1], 'status', 'expires_at')
if not state[1] then return 'gone' end
if state[1] == 'cancelling' or state[1] == 'cancelled' then return 'cancelled' end
if tonumber(ARGV[3]) >= tonumber(state[2]) * 1000 then return 'expired' end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[3])
local limit = tonumber(ARGV[5])
if limit > 0 and redis.call('ZCARD', KEYS[3]) >= limit and not redis.call('ZSCORE', KEYS[3], ARGV[2]) then
  return 'busy'
end
redis.call('ZADD', KEYS[3], tonumber(ARGV[3]) + tonumber(ARGV[4]), ARGV[2])
return 'go'
--- complete
-- Record a task's outcome once, whoever records it and however often: the result is written with
-- HSETNX, and only the write that wins counts it; the stream entry is acknowledged in any case.
-- KEYS: stream, batch, results, tenant's queued counter, tenant's running leases, finalize set,
--       dead-letter stream.
-- ARGV: group, entry id ('' for none), custom_id, result, outcome (completed|failed|skipped),
--       lease member, batch id, dead-letter entry ('' for none).
local written = 0
if redis.call('HSETNX', KEYS[3], ARGV[3], ARGV[4]) == 1 then
  written = 1
  if ARGV[5] ~= 'skipped' then redis.call('HINCRBY', KEYS[2], ARGV[5], 1) end
  local left = redis.call('HINCRBY', KEYS[2], 'remaining', -1)
  redis.call('DECR', KEYS[4])
  if ARGV[8] ~= '' then
    redis.call('XADD', KEYS[7], 'MAXLEN', '~', '10000', '*', 'entry', ARGV[8])
    redis.call('HINCRBY', KEYS[2], 'dead_lettered', 1)
  end
  if left <= 0 then redis.call('SADD', KEYS[6], ARGV[7]) end
end
redis.call('ZREM', KEYS[5], ARGV[6])
if ARGV[2] ~= '' then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[1], ARGV[2])
end
return written
--- attempt
-- Count one failed attempt of a task; returns the attempts so far (0: the task is already done).
-- KEYS: results, attempts. ARGV: custom_id.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
return redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
--- defer
-- Put a task back for later (a retry after backoff, or its tenant at its concurrency limit).
-- KEYS: stream, delayed set, tenant's running leases. ARGV: group, entry id, due (ms), task, member.
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
redis.call('ZREM', KEYS[3], ARGV[5])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
--- promote
-- Move due tasks from the delayed set to the stream. KEYS: stream, delayed. ARGV: now (ms), count.
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, task in ipairs(due) do
  redis.call('XADD', KEYS[1], '*', 'task', task)
  redis.call('ZREM', KEYS[2], task)
end
return #due
--- settle
-- Move a batch to a final status once: KEYS[1] batch; ARGV: status, field stamped, now (s).
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
if status == 'completed' or status == 'cancelled' or status == 'expired' or status == 'failed' then
  return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], ARGV[2], ARGV[3])
return 1
--- cancel
-- KEYS: batch, finalize set. ARGV: now (s), batch id. Returns the status after the call.
local state = redis.call('HMGET', KEYS[1], 'status', 'remaining')
if not state[1] then return '' end
if state[1] == 'in_progress' or state[1] == 'validating' then
  redis.call('HSET', KEYS[1], 'status', 'cancelling', 'cancelling_at', ARGV[1])
  if tonumber(state[2]) <= 0 then redis.call('SADD', KEYS[2], ARGV[2]) end
  return 'cancelling'
end
return state[1]
