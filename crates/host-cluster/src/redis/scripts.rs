//! The Lua scripts: each operation is one script, which Redis runs
//! atomically, so that the read, the decision and the write of an
//! operation see no other client's command in between. Times are the
//! server's: `PX` and `PTTL` for leases, `TIME` for claim deadlines.

use std::sync::LazyLock;

use redis::Script;

/// Takes a free lease as a new term, its token from the term counter
/// (`INCR` in the same script, so a term's token is strictly larger than
/// every earlier one while the counter lives); extends the holder's own
/// lease keeping its token; leaves another's alone (nil).
/// KEYS: the lease, its term counter. ARGV: holder, ttl in ms.
pub(super) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local held = redis.call('GET', KEYS[1])
if held then
  local sep = string.find(held, ':', 1, true)
  if sep and string.sub(held, sep + 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(string.sub(held, 1, sep - 1))
  end
  return false
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], string.format('%d:%s', token, ARGV[1]), 'PX', ARGV[2])
return token
",
    )
});

/// Extends the lease if its value is still this term's (an expired key is
/// gone, a newer term's value differs): 1, else 0.
/// KEYS: the lease. ARGV: `<token>:<holder>`, ttl in ms.
pub(super) static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
",
    )
});

/// Deletes the lease if its value is still this term's; the term counter
/// stays. KEYS: the lease. ARGV: `<token>:<holder>`.
pub(super) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// The lease's value and its `PTTL`, read together; nil when free.
/// KEYS: the lease.
pub(super) static CURRENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local held = redis.call('GET', KEYS[1])
if not held then
  return false
end
return {held, redis.call('PTTL', KEYS[1])}
",
    )
});

/// Claims a tick: a new claim, or a recovery of an unfinished claim whose
/// deadline passed by the server's `TIME` when this claim has a deadline
/// too; either takes the next token of the job's counter. Otherwise the
/// claim found is left alone. Returns `{1, token, attempt}` or
/// `{0, holder, finished}`. The hash has no expiry: a tick's record lives
/// until purged, so it is never claimed twice.
/// KEYS: the claim, the job's claim counter, the job's ticks. ARGV: holder,
/// deadline in ms or '', the tick in ms.
pub(super) static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local found = redis.call('HMGET', KEYS[1], 'holder', 'token', 'attempt', 'finished', 'deadline')
local attempt = 1
if found[1] then
  local recover = ARGV[2] ~= '' and found[4] == '0' and found[5]
    and tonumber(found[5]) <= now
  if not recover then
    return {0, found[1], tonumber(found[4])}
  end
  attempt = tonumber(found[3]) + 1
end
local token = redis.call('INCR', KEYS[2])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'token', string.format('%d', token),
  'attempt', string.format('%d', attempt), 'finished', '0')
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'deadline', string.format('%d', now + tonumber(ARGV[2])))
end
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[3])
return {1, token, attempt}
",
    )
});

/// Marks the claim finished if it still carries this claim's token.
/// KEYS: the claim. ARGV: the token.
pub(super) static FINISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'finished', '1')
  return 1
end
return 0
",
    )
});

/// Deletes a job's claims of ticks before a time, found through its sorted
/// set of ticks; returns how many existed. The claim keys are built inside
/// the script from the stem (a single instance allows that; a Redis
/// Cluster would not). The job's counter stays.
/// KEYS: the job's ticks. ARGV: the first tick kept in ms, the claim-key
/// stem.
pub(super) static PURGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ticks = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local deleted = 0
for _, tick in ipairs(ticks) do
  deleted = deleted + redis.call('DEL', ARGV[2] .. tick)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
return deleted
",
    )
});
