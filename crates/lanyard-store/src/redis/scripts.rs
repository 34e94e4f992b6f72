//! The Lua scripts. Each runs on one hash slot: every key it touches is passed in `KEYS` or
//! is built from a `KEYS` entry, so it shares that entry's hash tag.
//!
//! Conventions: times are integer milliseconds passed in `ARGV` (the store's clock, never
//! Redis's); numbers are written back with `string.format('%d', n)` (Lua's `tostring`
//! would print large ones in exponent form); errors the store maps are replies starting
//! `LANYARD_CORRUPT`, `LANYARD_NOEPOCH` or `LANYARD_EXISTS`. A script that may fail does so
//! before its first write, so no step is ever half applied.

use std::sync::LazyLock;

use redis::Script;

/// Shared helpers, prepended to every script.
const PRELUDE: &str = r"
local function fmt(n) return string.format('%d', n) end
local function num(v, what)
  local n = tonumber(v)
  if not n then error({err = 'LANYARD_CORRUPT ' .. what}) end
  return n
end
";

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

/// Adds `member` with `score` (its deadline) to an index, drops members whose deadline
/// passed, and keeps the index alive as long as its latest member.
/// KEYS: index. ARGV: now, score, member.
pub(super) static INDEX_ADD: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.max(1, num(top[2], 'index') - num(ARGV[1], 'now')))
return 1
",
    )
});

/// Stores a live code. KEYS: code. ARGV: grant JSON, grant id, client id, issuance JSON,
/// ttl ms.
pub(super) static CODE_PUT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
redis.call('HSET', KEYS[1], 'live', ARGV[1], 'g', ARGV[2], 'c', ARGV[3], 'issued', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
",
    )
});

/// Spends a code: the grant is removed and the rest stays as a tombstone. KEYS: code.
/// ARGV: tombstone ttl ms, presenting client (a live code of another client is left alone).
/// Returns {'redeemed', grant JSON} | {'spent', grant id, client id, issuance JSON} | {'none'}.
pub(super) static CODE_REDEEM: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local r = redis.call('HMGET', KEYS[1], 'live', 'g', 'c', 'issued')
if r[1] then
  if not (r[2] and r[3] and r[4]) then return redis.error_reply('LANYARD_CORRUPT authorization code') end
  if r[3] ~= ARGV[2] then return {'none'} end
  redis.call('HDEL', KEYS[1], 'live')
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return {'redeemed', r[1]}
end
if r[4] and r[2] and r[3] then return {'spent', r[2], r[3], r[4]} end
if r[2] or r[3] or r[4] then return redis.error_reply('LANYARD_CORRUPT authorization code') end
return {'none'}
",
    )
});

/// Records a device grant unless its user code is in use. KEYS: device.
/// ARGV: device code hash, client id, expires at, interval ms, payload JSON, keep ms.
/// Returns 1, or 0 when the user code is taken.
pub(super) static DEVICE_PUT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'c', ARGV[2], 'x', ARGV[3], 'i', ARGV[4], 'r', ARGV[5], 's', 'p')
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
",
    )
});

/// The person's decision on a pending, live grant. KEYS: device.
/// ARGV: now, 'a' (approve) or 'd' (deny), the approved grant's JSON or ''.
/// Returns 1 if decided now, else 0.
pub(super) static DEVICE_DECIDE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local r = redis.call('HMGET', KEYS[1], 's', 'x')
if not r[1] then return 0 end
if r[1] ~= 'p' or num(ARGV[1], 'now') >= num(r[2], 'device grant') then return 0 end
if ARGV[2] == 'a' then
  redis.call('HSET', KEYS[1], 's', 'a', 'g', ARGV[3])
else
  redis.call('HSET', KEYS[1], 's', 'd')
end
return 1
",
    )
});

/// A device's poll: the rule of `device.rs` (the least gap is the stored interval less a
/// fifth). KEYS: device. ARGV: now, device code hash, client id.
/// Returns {'none'} | {'expired'} | {'denied'} | {'approved', grant JSON} | {'pending'} |
/// {'slow_down', new interval ms}.
pub(super) static DEVICE_POLL: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local r = redis.call('HMGET', KEYS[1], 'h', 'c', 'x', 'i', 'l', 's', 'g')
if not r[1] then return {'none'} end
if r[1] ~= ARGV[2] or r[2] ~= ARGV[3] or r[6] == 't' then return {'none'} end
local now = num(ARGV[1], 'now')
if now >= num(r[3], 'device grant') then return {'expired'} end
if r[6] == 'd' then return {'denied'} end
if r[6] == 'a' then
  if not r[7] then return redis.error_reply('LANYARD_CORRUPT device grant') end
  redis.call('HSET', KEYS[1], 's', 't')
  redis.call('HDEL', KEYS[1], 'g')
  return {'approved', r[7]}
end
if r[6] ~= 'p' then return redis.error_reply('LANYARD_CORRUPT device grant') end
local i = num(r[4], 'device grant')
local soon = r[5] and (now - num(r[5], 'device grant') < i - math.floor(i / 5))
if soon then
  i = i + 5000
  redis.call('HSET', KEYS[1], 'i', fmt(i), 'l', fmt(now))
  return {'slow_down', fmt(i)}
end
redis.call('HSET', KEYS[1], 'l', fmt(now))
return {'pending'}
",
    )
});

/// Starts a session. KEYS: session. ARGV: session JSON, idle deadline, absolute deadline,
/// idle timeout ms, now.
pub(super) static SESSION_CREATE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'idle', ARGV[2], 'abs', ARGV[3], 'ito', ARGV[4], 'seen', ARGV[5])
redis.call('PEXPIRE', KEYS[1], math.max(1, num(ARGV[2], 'idle') - num(ARGV[5], 'now')))
return 1
",
    )
});

/// Reads a session, touching it when asked. KEYS: session, clients.
/// ARGV: now, '1' to touch, client id or ''.
/// Returns {session JSON, idle deadline, last seen, clients...} or false when not live.
pub(super) static SESSION_READ: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local s = redis.call('HMGET', KEYS[1], 'd', 'idle', 'abs', 'ito', 'seen')
if not s[1] then return false end
local now = num(ARGV[1], 'now')
local idle, abs, ito = num(s[2], 'session'), num(s[3], 'session'), num(s[4], 'session')
num(s[5], 'session')
if now >= idle or now >= abs then return false end
if ARGV[2] == '1' then
  idle = math.min(now + ito, abs)
  s[2], s[5] = fmt(idle), ARGV[1]
  redis.call('HSET', KEYS[1], 'idle', s[2], 'seen', s[5])
  if ARGV[3] ~= '' then redis.call('SADD', KEYS[2], ARGV[3]) end
  redis.call('PEXPIRE', KEYS[1], math.max(1, idle - now))
  redis.call('PEXPIRE', KEYS[2], math.max(1, abs - now))
end
local out = {s[1], s[2], s[5]}
for _, c in ipairs(redis.call('SMEMBERS', KEYS[2])) do out[#out + 1] = c end
return out
",
    )
});

/// Replaces a live session's record if it is still `expected` (the caller read it, changed
/// `amr` and `auth_time`, and writes it back; a concurrent change makes it read again).
/// KEYS: session. ARGV: now, expected JSON, new JSON.
/// Returns 1 (written), 0 (changed meanwhile) or false (not live).
pub(super) static SESSION_REWRITE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local s = redis.call('HMGET', KEYS[1], 'd', 'idle', 'abs')
if not (s[1] and s[2] and s[3]) then return false end
local now = num(ARGV[1], 'now')
if now >= num(s[2], 'session') or now >= num(s[3], 'session') then return false end
if s[1] ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[3])
return 1
",
    )
});

/// Ends a session and deletes its bound families. KEYS: session, clients, families set.
/// ARGV: now, prefix of family keys in this slot.
/// Returns what SESSION_READ returns, or false when the session was not live.
pub(super) static SESSION_END: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local s = redis.call('HMGET', KEYS[1], 'd', 'idle', 'abs', 'seen')
local now = num(ARGV[1], 'now')
local live = s[1] and s[2] and s[3] and s[4]
  and now < num(s[2], 'session') and now < num(s[3], 'session')
local out = false
if live then
  out = {s[1], s[2], s[4]}
  for _, c in ipairs(redis.call('SMEMBERS', KEYS[2])) do out[#out + 1] = c end
end
for _, f in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local k = ARGV[2] .. f
  redis.call('DEL', k, k .. ':old', k .. ':ats')
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return out
",
    )
});

/// Whether the session behind a session-bound family is live. Expects `now` to be a number
/// and KEYS[4] to be the session key.
const FAMILY_COMMON: &str = r"
local function session_live(now)
  if ARGV[2] ~= '1' then return true end
  local s = redis.call('HMGET', KEYS[4], 'idle', 'abs')
  if not s[1] then return false end
  return now < num(s[1], 'session') and now < num(s[2], 'session')
end
local function family_dead(f, now)
  return now >= num(f.exp, 'refresh family') or not session_live(now)
end
local function remove_family()
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  if ARGV[2] == '1' then redis.call('SREM', KEYS[5], ARGV[3]) end
end
local function live_tokens(now)
  return redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. fmt(now), '+inf', 'WITHSCORES')
end
local function read_family()
  local r = redis.call('HMGET', KEYS[1], 'd', 'cur', 'prev', 'pat', 'succ', 'exp', 'sub', 'cli')
  if not r[1] then return nil end
  if not r[2] or not r[6] then error({err = 'LANYARD_CORRUPT refresh family'}) end
  return {d = r[1], cur = r[2], prev = r[3], pat = r[4], succ = r[5], exp = r[6], sub = r[7], cli = r[8]}
end
-- An index may name a family that is not its owner's (an issue that failed after its index
-- entry was written): `field` '' accepts any family, 'sub' or 'cli' only the expected owner's.
local function owned(f, field, expected)
  return field == '' or f[field] == expected
end
";

fn family_script(body: &str) -> Script {
    script(&format!("{FAMILY_COMMON}{body}"))
}

// Family scripts share KEYS: family, retired list, access tokens, session, session's
// families set, revoked-id tombstone; and ARGV[1] now, ARGV[2] '1' when session-bound,
// ARGV[3] family id.

/// Creates a family. ARGV[4..]: family JSON, token hash, requested expiry, access-token jti
/// or '', its expiry, owner sub, owner client. Returns the effective expiry, or false when
/// the session is not live or the id was revoked before it was issued.
pub(super) static FAMILY_ISSUE: LazyLock<Script> = LazyLock::new(|| {
    family_script(
        r"
local now = num(ARGV[1], 'now')
if redis.call('EXISTS', KEYS[1]) == 1 then
  -- The same request again (a retry after NOSCRIPT) is answered as before.
  if redis.call('HGET', KEYS[1], 'cur') == ARGV[5] then return redis.call('HGET', KEYS[1], 'exp') end
  return redis.error_reply('LANYARD_EXISTS refresh family')
end
if redis.call('EXISTS', KEYS[6]) == 1 then return false end
if not session_live(now) then return false end
local exp = num(ARGV[6], 'expiry')
if ARGV[2] == '1' then
  local abs = num(redis.call('HGET', KEYS[4], 'abs'), 'session')
  if abs < exp then exp = abs end
end
if exp <= now then return false end
redis.call('HSET', KEYS[1], 'd', ARGV[4], 'cur', ARGV[5], 'exp', fmt(exp), 'sub', ARGV[9], 'cli', ARGV[10])
redis.call('PEXPIRE', KEYS[1], exp - now)
if ARGV[2] == '1' then
  redis.call('SADD', KEYS[5], ARGV[3])
  redis.call('PEXPIRE', KEYS[5], exp - now, 'GT')
  redis.call('PEXPIRE', KEYS[5], exp - now, 'NX')
end
if ARGV[7] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[8], ARGV[7])
  redis.call('PEXPIRE', KEYS[3], exp - now)
end
return fmt(exp)
",
    )
});

/// The rotation rule (see `refresh` module docs). ARGV[4..]: presented hash, successor hash,
/// sealed successor, grace ms, access-token jti or '', its expiry, retired tokens kept, the
/// presenting client (another client's token is 'invalid' and left untouched).
/// Returns {status, family JSON, expiry, sealed successor or '', {live access tokens}}.
pub(super) static FAMILY_ROTATE: LazyLock<Script> = LazyLock::new(|| {
    family_script(
        r"
local now = num(ARGV[1], 'now')
local f = read_family()
if not f then return {'invalid', '', '', '', {}} end
if family_dead(f, now) then remove_family() return {'invalid', '', '', '', {}} end
if f.cli ~= ARGV[11] then return {'invalid', '', '', '', {}} end
local function record()
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
  if ARGV[8] ~= '' then
    redis.call('ZADD', KEYS[3], ARGV[9], ARGV[8])
    redis.call('PEXPIRE', KEYS[3], math.max(1, num(f.exp, 'refresh family') - now))
  end
end
if f.cur == ARGV[4] then
  redis.call('HSET', KEYS[1], 'cur', ARGV[5], 'prev', ARGV[4], 'pat', ARGV[1], 'succ', ARGV[6])
  redis.call('LPUSH', KEYS[2], ARGV[4])
  redis.call('LTRIM', KEYS[2], 0, num(ARGV[10], 'kept') - 1)
  redis.call('PEXPIRE', KEYS[2], math.max(1, num(f.exp, 'refresh family') - now))
  record()
  return {'rotated', f.d, f.exp, '', {}}
end
if f.prev == ARGV[4] and f.succ and now < num(f.pat, 'refresh family') + num(ARGV[7], 'grace') then
  record()
  return {'replayed', f.d, f.exp, f.succ, {}}
end
if redis.call('LPOS', KEYS[2], ARGV[4]) then
  local tokens = live_tokens(now)
  remove_family()
  return {'reused', f.d, f.exp, '', tokens}
end
return {'invalid', '', '', '', {}}
",
    )
});

/// Reads a live family; with ARGV[4] a token hash, only if that token is current or
/// remembered as retired; with ARGV[5] 'sub' or 'cli', only if ARGV[6] owns it.
/// Returns {family JSON, expiry} or false.
pub(super) static FAMILY_READ: LazyLock<Script> = LazyLock::new(|| {
    family_script(
        r"
local now = num(ARGV[1], 'now')
local f = read_family()
if not f then return false end
if family_dead(f, now) then remove_family() return false end
if not owned(f, ARGV[5], ARGV[6]) then return false end
if ARGV[4] ~= '' and f.cur ~= ARGV[4] and not redis.call('LPOS', KEYS[2], ARGV[4]) then
  return false
end
return {f.d, f.exp}
",
    )
});

/// Reads a family by one of its tokens without changing it. ARGV[4]: the token's hash;
/// ARGV[5]: '0' to leave out the access tokens (a long chain has many).
/// Returns {family JSON, expiry, 1 if current else 0, {live access tokens}} or false.
pub(super) static FAMILY_INSPECT: LazyLock<Script> = LazyLock::new(|| {
    family_script(
        r"
local now = num(ARGV[1], 'now')
local f = read_family()
if not f then return false end
if family_dead(f, now) then remove_family() return false end
local current = f.cur == ARGV[4]
if not current and not redis.call('LPOS', KEYS[2], ARGV[4]) then return false end
if ARGV[5] == '0' then return {f.d, f.exp, current and 1 or 0, {}} end
return {f.d, f.exp, current and 1 or 0, live_tokens(now)}
",
    )
});

/// Revokes a family. ARGV[4]: how long to remember the id as revoked, so that a family
/// revoked before it is issued (a replayed code racing its first redemption) never comes
/// to life; ARGV[5], ARGV[6]: the expected owner, as for FAMILY_READ.
/// Returns {family JSON, expiry, {live access tokens}} or false.
pub(super) static FAMILY_REVOKE: LazyLock<Script> = LazyLock::new(|| {
    family_script(
        r"
local now = num(ARGV[1], 'now')
local f = read_family()
if f and not owned(f, ARGV[5], ARGV[6]) then return false end
redis.call('SET', KEYS[6], '1', 'PX', ARGV[4])
if not f then return false end
if family_dead(f, now) then remove_family() return false end
local tokens = live_tokens(now)
remove_family()
return {f.d, f.exp, tokens}
",
    )
});

/// The revocation lists' keys, for the scripts below: KEYS = epoch, seq, events, drop-out
/// index, then the jti, sid, sub, cli, grt and kid hashes. Entries are stored as 'at:until'.
const REVOCATION_COMMON: &str = r"
local lists = {jti = KEYS[5], sid = KEYS[6], sub = KEYS[7], cli = KEYS[8], grt = KEYS[9], kid = KEYS[10]}
local function list_of(kind)
  local l = lists[kind]
  if not l then error({err = 'LANYARD_CORRUPT revocation kind'}) end
  return l
end
local function parse(v)
  local sep = string.find(v, ':', 1, true)
  if not sep then error({err = 'LANYARD_CORRUPT revocation entry'}) end
  return num(string.sub(v, 1, sep - 1), 'revocation entry'), num(string.sub(v, sep + 1), 'revocation entry')
end
-- Merges an entry into its list (later watermark, later drop-out wins); returns the result.
local function merge(kind, value, at, untl)
  local list = list_of(kind)
  local cur = redis.call('HGET', list, value)
  if cur then
    local cat, cuntil = parse(cur)
    if cat > at then at = cat end
    if cuntil > untl then untl = cuntil end
  end
  return list, at, untl
end
local function store(list, kind, value, at, untl)
  redis.call('HSET', list, value, fmt(at) .. ':' .. fmt(untl))
  redis.call('ZADD', KEYS[4], untl, kind .. ':' .. value)
end
-- Drops up to `limit` entries whose drop-out time has passed.
local function prune(now, limit)
  local dead = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', fmt(now), 'LIMIT', 0, limit)
  for _, m in ipairs(dead) do
    local sep = string.find(m, ':', 1, true)
    if sep then
      local l = lists[string.sub(m, 1, sep - 1)]
      if l then redis.call('HDEL', l, string.sub(m, sep + 1)) end
    end
    redis.call('ZREM', KEYS[4], m)
  end
end
";

fn revocation_script(body: &str) -> Script {
    script(&format!("{REVOCATION_COMMON}{body}"))
}

/// Revokes one target and publishes the event. ARGV: now, kind, value, at, until,
/// retention. Returns {epoch, seq, at, until}.
pub(super) static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    revocation_script(
        r"
local epoch = redis.call('GET', KEYS[1])
if not epoch then return redis.error_reply('LANYARD_NOEPOCH revocation lists lost') end
local list, at, untl = merge(ARGV[2], ARGV[3], num(ARGV[4], 'at'), num(ARGV[5], 'until'))
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[6], fmt(seq) .. '-0',
  'k', ARGV[2], 'v', ARGV[3], 'a', fmt(at), 'u', fmt(untl))
store(list, ARGV[2], ARGV[3], at, untl)
prune(num(ARGV[1], 'now'), 100)
return {epoch, fmt(seq), fmt(at), fmt(untl)}
",
    )
});

/// The whole lists and the cursor. ARGV: now.
/// Returns {epoch, seq, {{jti k/v...}, {sid k/v...}, {sub k/v...}, {cli k/v...}, {grt k/v...},
/// {kid k/v...}}}.
pub(super) static SNAPSHOT: LazyLock<Script> = LazyLock::new(|| {
    revocation_script(
        r"
local epoch = redis.call('GET', KEYS[1])
if not epoch then return redis.error_reply('LANYARD_NOEPOCH revocation lists lost') end
prune(num(ARGV[1], 'now'), 10000)
local out = {}
for i = 5, #KEYS do out[#out + 1] = redis.call('HGETALL', KEYS[i]) end
return {epoch, redis.call('GET', KEYS[2]) or '0', out}
",
    )
});

/// Merges entries in without publishing them. ARGV: new epoch or '' (set it last), then
/// kind, value, at, until per entry. Returns the current seq.
pub(super) static RESEED: LazyLock<Script> = LazyLock::new(|| {
    revocation_script(
        r"
for i = 2, #ARGV, 4 do
  local list, at, untl = merge(ARGV[i], ARGV[i + 1], num(ARGV[i + 2], 'at'), num(ARGV[i + 3], 'until'))
  store(list, ARGV[i], ARGV[i + 1], at, untl)
end
if ARGV[1] ~= '' then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('GET', KEYS[2]) or '0'
",
    )
});

/// Every script, for loading them again after Redis forgot them (`NOSCRIPT`).
pub(super) fn all() -> [&'static Script; 20] {
    [
        &INDEX_ADD,
        &CODE_PUT,
        &CODE_REDEEM,
        &DEVICE_PUT,
        &DEVICE_DECIDE,
        &DEVICE_POLL,
        &SESSION_CREATE,
        &SESSION_READ,
        &SESSION_END,
        &SESSION_REWRITE,
        &FAMILY_ISSUE,
        &FAMILY_ROTATE,
        &FAMILY_READ,
        &FAMILY_INSPECT,
        &FAMILY_REVOKE,
        &REVOKE,
        &SNAPSHOT,
        &RESEED,
        &THROTTLE_FAIL,
        &THROTTLE_ATTEMPT,
    ]
}

/// Counting under a throttle hash, shared by the two scripts that count. The hash holds `n`,
/// `ends` (the window's end) and `until` (the block's end); it is forgotten when both are
/// past. `throttle_count` reads the policy's steps from `ARGV[first..last]`, as pairs: the
/// failure count a step starts at, and its block (ms).
const THROTTLE_LIB: &str = r"
local function throttle_live(key, now)
  local ends = tonumber(redis.call('HGET', key, 'ends'))
  local untilv = tonumber(redis.call('HGET', key, 'until')) or 0
  if ends and now >= ends and now >= untilv then return nil, 0 end
  return ends, untilv
end
local function throttle_count(key, now, window, first, last)
  local ends, untilv = throttle_live(key, now)
  if not ends then
    redis.call('DEL', key)
    untilv = 0
    ends = now + window
    redis.call('HSET', key, 'ends', fmt(ends))
  end
  local n = redis.call('HINCRBY', key, 'n', 1)
  local block = 0
  for i = first, last - 1, 2 do
    if num(ARGV[i], 'step') <= n then block = num(ARGV[i + 1], 'block') end
  end
  if block > 0 and now + block > untilv then
    untilv = now + block
    redis.call('HSET', key, 'until', fmt(untilv))
  end
  redis.call('PEXPIRE', key, math.max(ends, untilv) - now)
  return n, untilv
end
";

fn throttle_script(body: &str) -> Script {
    script(&format!("{THROTTLE_LIB}{body}"))
}

/// One more failure under a counter (see `throttle`: the blocks come from Rust).
/// KEYS: counter. ARGV: now, window (ms), then the policy's steps as pairs.
/// Returns {n, until}.
pub(super) static THROTTLE_FAIL: LazyLock<Script> = LazyLock::new(|| {
    throttle_script(
        r"
local n, untilv = throttle_count(KEYS[1], num(ARGV[1], 'now'), num(ARGV[2], 'window'), 3, #ARGV)
return {n, fmt(untilv)}
",
    )
});

/// One attempt under a group of counters, counted before it is checked: if any counter is
/// blocked, nothing is counted. KEYS: the counters (one slot). ARGV: now, then for each
/// counter its window (ms), its number of steps, and the steps as pairs.
/// Returns {0, until} (the longest block) or {1, n1, until1, n2, until2, ...}.
pub(super) static THROTTLE_ATTEMPT: LazyLock<Script> = LazyLock::new(|| {
    throttle_script(
        r"
local now = num(ARGV[1], 'now')
local longest = 0
for k = 1, #KEYS do
  local ends, untilv = throttle_live(KEYS[k], now)
  if ends and untilv > now and untilv > longest then longest = untilv end
end
if longest > 0 then return {0, fmt(longest)} end
local out = {1}
local i = 2
for k = 1, #KEYS do
  local window = num(ARGV[i], 'window')
  local last = i + 1 + 2 * num(ARGV[i + 1], 'steps')
  local n, untilv = throttle_count(KEYS[k], now, window, i + 2, last)
  out[#out + 1] = n
  out[#out + 1] = fmt(untilv)
  i = last + 1
end
return out
",
    )
});
