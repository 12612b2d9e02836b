//! Sessions in Redis, through redis-rs (feature `redis`).
//!
//! # Layout
//!
//! With the default prefix `session:`, a store keeps:
//!
//! | key | type | holds |
//! |-----|------|-------|
//! | `session:{SID}` | hash | the session: one field per session key, plus its metadata |
//! | `session:user:USER` | set | the ids of `USER`'s sessions |
//! | `session:expiry` | sorted set | every session id, scored by when it dies |
//!
//! Each session key is one field of the session's hash, its value Flask's
//! tagged JSON as written by [`tagged::to_string`], so a request that writes
//! one key writes one field and two requests that write different keys both
//! persist. The metadata lives in the same hash under field names starting
//! with a NUL byte (`\0created`, `\0expires`, `\0absolute`, `\0user`); a
//! session key that itself starts with NUL is stored with one more NUL in
//! front, so the two can never collide. One hash rather than a second
//! metadata key keeps a session one key: [`load`](SessionStore::load) is a
//! single `HGETALL`, one TTL covers everything, and `RENAME` moves all of it.
//!
//! Redis drops a session by itself: its hash carries a TTL reaching to the
//! earlier of its idle and absolute expiry. The TTL is counted from the
//! caller's `now` (from `created_at` when creating), not set with `EXPIREAT`
//! on Redis's clock, so a Redis server whose clock differs from the
//! application's neither cuts sessions short nor keeps them around. Times are
//! also checked on every read: a session is never returned once `now` reaches
//! its expiry, even while Redis still has it.
//!
//! # Guarantees
//!
//! Every write is one Lua script (sent as `EVALSHA`), so it is atomic on the
//! server and costs one round trip: [`create`](SessionStore::create) fails if
//! the id is taken; [`update`](SessionStore::update) applies the request's
//! changes only to a live session; [`increment`](SessionStore::increment) uses
//! `HINCRBY`, exact over the whole `i64` range and refusing overflow
//! (concurrent increments of one counter from one process, those that come
//! in one turn of the scheduler, go as one script by their sum, each caller
//! answered the value it would have seen in turn);
//! [`append`](SessionStore::append) splices the new item into the stored JSON
//! array text; [`cycle_id`](SessionStore::cycle_id) renames the hash. The
//! indexes are changed by the same scripts, so they always contain every
//! session of a user and every session's expiry. A load is one `HGETALL`, a
//! save one script. Concurrent loads of one session from one process (in
//! one turn) go as one `HGETALL` made after they all came, each caller
//! answered with its own copy. No operation waits for another on its way:
//! on a pipelined connection that would only add a round trip.
//!
//! [`list`](SessionStore::list) for one user reads that user's set;
//! `list(None)` reads every live id from the expiry index, O(sessions), for
//! its first page; the pages after it (within a minute) page through those
//! ids, so a whole listing costs O(sessions), and a session created after
//! the first page may be missed, as with `SCAN`. It is meant for
//! administration tools.
//! [`purge_expired`](SessionStore::purge_expired) takes the ids whose expiry
//! has passed from the expiry index, a batch at a time: it deletes sessions
//! that are dead but still stored, and removes the index entries of those
//! Redis already dropped (counting them too, so a sweeper keeps going while
//! there are any). Set entries of dropped sessions are removed when their
//! user's sessions are next listed or deleted; each user's set also carries
//! a TTL at least as long as that of any session it lists, so it never goes
//! before one of them and goes by itself once they all have. The expiry index
//! costs one sorted-set entry per session, and is what keeps sweeps bounded.
//!
//! # Connections
//!
//! [`RedisStore::new`] only parses the URL. Operations use multiplexed
//! connections, each a [`ConnectionManager`] made by the first operation that
//! needs it, which reconnects by itself when its connection drops (a Redis
//! restart, a failover, `CLIENT KILL`).
//!
//! On a multi-threaded Tokio runtime (axum's) every operation goes through
//! one connection. Commands of concurrent requests then reach Redis together
//! and are read and answered a batch at a time, which spends the least of
//! Redis' CPU per command, and Redis' CPU is what all of an application's
//! instances share. Measured on two cores with the HTTP benchmark's route
//! (one load and one increment per request, 16 concurrent clients), against
//! two connections taken in turn, the previous default: Redis CPU per request
//! 12.3 µs against 16.9 µs and throughput 1.14× on a Redis that writes
//! nothing to disk, 24.0 µs against 27.6 µs and 0.95× on one that syncs its
//! append-only file on every write (`appendfsync always`), where two
//! connections do better (medians of 5 interleaved rounds; see
//! BENCHMARKS.md). [`with_connections`](RedisStore::with_connections) sets
//! another number, which operations then take in turn; with `appendfsync
//! always`, eight ran at 0.78× tower-sessions' throughput where two ran at
//! 1.01×, Redis then reading the connections' commands a few at a time, at
//! more system calls per command.
//!
//! On a single-threaded runtime (each actix-web worker runs one), each thread
//! keeps to one connection of its own, whatever the number set: the
//! connection made on its runtime, whose task runs on that same thread.
//! Sharing one connection there sends the other workers' commands through
//! the thread of the worker that made it, and taking turns sent half of the
//! commands through another worker's thread (0.85× actix-session's
//! throughput against 0.89× for one connection per thread). Worse, a worker
//! whose handler blocks its thread (a synchronous call, a long computation)
//! then stalls every worker sharing its connection: their session requests
//! wait, and fail once Redis' answer is overdue. So threads share no
//! connection, however many workers there are (beyond
//! [`THREAD_CONNECTIONS`] threads, which a process seldom has, the later
//! ones share with the earlier). The operations of one session that queue
//! behind one on its way (the increments and loads combined above) run on
//! a thread of tessera's own, which keeps its own connection, so that they
//! never wait for another worker's thread.
//!
//! An operation that cannot reach Redis fails with [`StoreError::Unavailable`]
//! (a 503 for the request). An attempt to connect that fails is the answer
//! for every operation waiting on it and for those in the second after it;
//! the next one then tries again, so requests during an outage fail
//! together rather than one attempt after another. A read that finds its
//! connection dropped is repeated once on the new connection; a write is
//! not, since it may have been applied, but a write on a connection that sat
//! unused for 10 ms goes after a `PING` that is, so a connection closed
//! while quiet (a restart, Redis' `timeout`, a proxy's idle limit) costs no
//! write. The connections run on the Tokio
//! runtime of the operation that made them, so use one store within one
//! runtime (a test that makes a runtime per step should make a store per step
//! too).
//!
//! It needs Redis 6.0 or later (`SET … KEEPTTL` and `SCAN … TYPE`), with
//! `EVALSHA`, `SCAN` and the other commands it sends neither renamed nor
//! disabled. A server that refuses a command as unknown or malformed, or
//! redirects it to another node (`MOVED`), answers the same on every try:
//! that is [`StoreError::Config`] (a 500), not an outage.
//!
//! # Redis Cluster
//!
//! The store talks to one endpoint: a standalone server, a primary, or a
//! cluster-aware proxy, not a node of a cluster (the client follows no
//! redirections). Each session's id is a hash tag (`{SID}`), so
//! everything about one session is in one slot. The scripts also touch the
//! store's indexes (and `cycle_id` two sessions), which Cluster allows in one
//! script only within one slot: on Cluster, give the prefix a hash tag of its
//! own, such as `{sessions}:`, which puts all of the store's keys in one slot
//! (hash tags are taken from the first braces of a key). A prefix should
//! otherwise contain no braces.
//!
//! Times are Unix seconds; those beyond 2^53 (some 285 million years away)
//! are stored as 2^53 − 1, since Lua numbers and sorted set scores are
//! doubles.
//!
//! ```no_run
//! use tessera::store::{Record, RedisStore, SessionId, SessionStore};
//!
//! # async fn run() -> Result<(), tessera::store::StoreError> {
//! // Nothing is connected yet.
//! let store = RedisStore::new("redis://127.0.0.1:6379/0")?.with_prefix("myapp:session:");
//!
//! let id = SessionId::generate();
//! let now = 1_700_000_000;
//! let record = Record {
//!     data: Default::default(),
//!     user_id: Some("alice".to_owned()),
//!     created_at: now,
//!     expires_at: now + 3600,
//!     absolute_expires_at: Some(now + 86_400),
//! };
//! assert!(store.create(&id, &record).await?);
//! assert_eq!(store.increment(&id, "visits", 1, now).await?, Some(1));
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub mod flask_session;

pub use flask_session::FlaskSessionRedisStore;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{
    Client, Cmd, ErrorKind, FromRedisValue, Pipeline, RedisError, RedisResult, Script,
    ServerErrorKind, ToRedisArgs,
};
use tokio::runtime::RuntimeFlavor;
use tokio::sync::OnceCell;

use super::combine::{self, Batching, Combiner, Combining};
use super::{
    integer_for_increment, Changes, Reason, Record, SessionId, SessionInfo, SessionStore,
    StoreError, UpdateOutcome,
};
use crate::config::redact_password;
use crate::map::Map;
use crate::tagged;
use crate::value::Value;

/// The prefix of every key, unless [`RedisStore::with_prefix`] says otherwise.
pub const DEFAULT_PREFIX: &str = "session:";

/// How long one attempt to connect may take. Redis answers a connect in
/// well under a millisecond on a LAN; waiting longer only holds requests.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a command may wait for its reply. Generous for one session, and
/// room for the longer scripts (deleting all of a user's sessions).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connection attempts after the first before an operation gives up (and
/// the next one starts over): enough to ride out a restart's refused
/// connections, short enough that a request during an outage fails fast.
const CONNECT_RETRIES: usize = 2;

/// How long after a failed attempt to connect operations that need a
/// connection fail at once with its error instead of trying again (the
/// `Retry-After` a request gets then). Without it, requests arriving during
/// an outage would queue behind each other's attempts, each waiting for all
/// the attempts before it.
const CONNECT_FAILURE_HOLD: Duration = Duration::from_secs(1);

/// How long a connection may sit unused before a write on it is preceded by
/// a `PING`, as the PostgreSQL store pings a connection that sat idle. A
/// connection closed meanwhile (a Redis restart, its `timeout` setting, a
/// proxy's idle limit) fails the first command sent on it, and a write that
/// fails cannot be repeated, since it may have been applied; a ping can be,
/// once the manager has reconnected.
const QUIET_BEFORE_WRITE: Duration = Duration::from_millis(10);

/// The largest time stored exactly: Lua numbers and scores are doubles.
const MAX_TIME: u64 = (1 << 53) - 1;

/// How many sessions `list` reads per round trip.
pub(super) const LIST_FETCH: usize = 200;

/// How long the ids read for the first page of a listing serve its next
/// pages.
const LISTING_REUSED_FOR: Duration = Duration::from_secs(60);

/// The sorted ids of the last listing, of the whole store or of one user.
/// Finding every id costs O(sessions) (the whole expiry index, a scan of
/// the keyspace, or the user's whole set), and nothing in Redis is in id
/// order: read again for every page, a listing of n sessions would cost
/// O(n² / page size) (20 minutes for a million; 14 s for a user's 100,000).
/// So the first page reads them, and the pages after it (within
/// [`LISTING_REUSED_FOR`], for the same user) page through that snapshot;
/// each page still reads every session it shows, so revoked and expired
/// ones are left out, but sessions created after the first page may be
/// missed, as with `SCAN`. One snapshot: listings that interleave read
/// their ids again, as each page did before.
#[derive(Default)]
pub(super) struct ListingSnapshot(Mutex<Option<Snapshot>>);

struct Snapshot {
    taken: Instant,
    user: Option<String>,
    ids: Arc<[SessionId]>,
}

impl ListingSnapshot {
    /// The ids (of `user`'s sessions, or of all) that follow `after` in id
    /// order: from the snapshot when this continues a listing, otherwise
    /// from `read_all` (then sorted and kept).
    pub(super) async fn ids_after(
        &self,
        user: Option<&str>,
        after: Option<&SessionId>,
        read_all: impl std::future::Future<Output = Result<Vec<SessionId>, StoreError>>,
    ) -> Result<(Arc<[SessionId]>, usize), StoreError> {
        let kept = match after {
            Some(_) => self
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .filter(|kept| {
                    kept.user.as_deref() == user && kept.taken.elapsed() < LISTING_REUSED_FOR
                })
                .map(|kept| Arc::clone(&kept.ids)),
            None => None,
        };
        if let Some(ids) = kept {
            let start = start_after(&ids, after);
            return Ok((ids, start));
        }
        let (ids, start) = sorted_after(read_all.await?, after);
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(Snapshot {
            taken: Instant::now(),
            user: user.map(str::to_owned),
            ids: Arc::clone(&ids),
        });
        Ok((ids, start))
    }
}

/// `ids` in id order without repeats, and where those after `after` start.
pub(super) fn sorted_after(
    mut ids: Vec<SessionId>,
    after: Option<&SessionId>,
) -> (Arc<[SessionId]>, usize) {
    ids.sort_unstable();
    ids.dedup();
    let start = start_after(&ids, after);
    (ids.into(), start)
}

fn start_after(sorted: &[SessionId], after: Option<&SessionId>) -> usize {
    after.map_or(0, |after| sorted.partition_point(|id| id <= after))
}

// Metadata fields of the session hash; `LUA_CONSTANTS` names them the same.
const CREATED: &str = "\0created";
const EXPIRES: &str = "\0expires";
const ABSOLUTE: &str = "\0absolute";
const USER: &str = "\0user";

/// Shared by every script: the names above and the limits on TTLs. Plain
/// values, so every script starts with them.
pub(super) const LUA_CONSTANTS: &str = r#"
local CREATED, EXPIRES, ABSOLUTE, USER = '\0created', '\0expires', '\0absolute', '\0user'
-- A long list's item count and byte length ("<count> <bytes>") under
-- LENGTH .. its field, kept by APPEND so that appending does not scan the
-- list again; LENGTHS marks a hash that holds any, whose writers then drop
-- the counts of the fields they write.
local LENGTH, LENGTHS = '\0length:', '\0lengths'
-- Arguments per HSET/HDEL call: unpack() is limited to a few thousand values.
local CHUNK = 200
-- A TTL of at least a second keeps a record written already dead visible
-- (its id taken) until it is purged; one of at most a century stays within
-- what PEXPIRE accepts.
local MIN_TTL_MS, MAX_TTL_MS = 1000, 3153600000000
"#;

/// A Lua function some of the scripts share.
pub(super) struct LuaHelper {
    name: &'static str,
    code: &'static str,
}

/// How keys are formed from the prefix, and the rules for liveness and
/// TTLs. A script gets only the helpers it calls: each one defined is a
/// closure made on every call, and a script is run once per request.
pub(super) const LUA_HELPERS: &[LuaHelper] = &[
    LuaHelper {
        name: "session_key",
        code: "local function session_key(prefix, sid) return prefix .. '{' .. sid .. '}' end\n",
    },
    LuaHelper {
        name: "user_key",
        code: "local function user_key(prefix, user) return prefix .. 'user:' .. user end\n",
    },
    LuaHelper {
        name: "owner_of",
        code: r#"
-- The user a session's metadata names, and whether that key holds another
-- kind of value than a hash (set by hand or by another program): such a
-- session is unreadable, and deleting it or its user's sessions must not
-- stop at it.
local function owner_of(key)
  local owner = redis.pcall('HGET', key, USER)
  if type(owner) == 'table' and owner.err then return false, true end
  return owner, false
end
"#,
    },
    LuaHelper {
        name: "addable",
        code: r#"
-- Refuses, before the script writes anything, a key it will add to that
-- holds another kind of value than `kind` (set by hand or by another
-- program): the command would fail midway through the script, and Redis
-- does not undo the writes made before it.
local function addable(key, kind, what)
  local found = redis.call('TYPE', key).ok
  if found ~= kind and found ~= 'none' then
    error({err = 'WRONGTYPE ' .. what .. ' holds a ' .. found .. ' where tessera keeps a '
      .. kind .. '; nothing was written'})
  end
end
"#,
    },
    LuaHelper {
        name: "remove_member",
        code: r#"
-- `command` (SREM, ZREM) of `member` from `key`. A key holding another kind
-- of value (set by hand or by another program) holds no member to remove:
-- failing there would leave the script's writes before it made and those
-- after it not, as Redis undoes nothing.
local function remove_member(command, key, member)
  local removed = redis.pcall(command, key, member)
  if type(removed) == 'table' and removed.err then
    if string.find(removed.err, 'WRONGTYPE', 1, true) then return 0 end
    error(removed)
  end
  return removed
end
"#,
    },
    LuaHelper {
        name: "is_meta",
        code: r#"
-- Metadata fields are NUL and a name; session keys starting with NUL are
-- stored behind a second NUL.
local function is_meta(field)
  return string.byte(field, 1) == 0 and string.byte(field, 2) ~= 0
end
"#,
    },
    LuaHelper {
        name: "live",
        code: r#"
-- Times that are not numbers (written by hand) are not live; nor is NaN,
-- which compares false with everything.
local function live(expires, absolute, now)
  expires = tonumber(expires)
  if not expires or expires ~= expires or now >= expires then return false end
  if not absolute then return true end
  absolute = tonumber(absolute)
  return absolute ~= nil and now < absolute
end
"#,
    },
    LuaHelper {
        name: "time_of",
        code: r#"
-- A stored time as a number, or nil if it is none (written by hand): not a
-- number, NaN or infinite.
local function time_of(text)
  local n = tonumber(text)
  if n and n == n and n > -math.huge and n < math.huge then return n end
  return nil
end
"#,
    },
    LuaHelper {
        name: "deadline",
        code: r#"
-- The earlier of the two expiries, as a number: one stored by hand with
-- blanks around it reads as a number in Lua, but ZADD refuses the text.
local function deadline(expires, absolute)
  if absolute and tonumber(absolute) < tonumber(expires) then return tonumber(absolute) end
  return tonumber(expires)
end
"#,
    },
    LuaHelper {
        name: "ttl_ms",
        code: r#"
local function ttl_ms(due, now)
  local ms = (tonumber(due) - now) * 1000
  if ms < MIN_TTL_MS then ms = MIN_TTL_MS end
  if ms > MAX_TTL_MS then ms = MAX_TTL_MS end
  return string.format('%d', ms)
end
"#,
    },
    LuaHelper {
        name: "extend",
        code: r#"
-- Lengthens a key's TTL to at least `ms`, never shortens it.
local function extend(key, ms)
  if redis.call('PTTL', key) < tonumber(ms) then redis.call('PEXPIRE', key, ms) end
end
"#,
    },
    LuaHelper {
        name: "trim",
        code: r#"
-- `text` without the JSON blanks around it, in time linear in those blanks.
-- (A pattern such as '^%s*(.-)%s*$' tries its tail again at every
-- character of a run of blanks inside the text: quadratic in the run, which
-- a flash message can carry, while Redis serves no one else.)
local function trim(text)
  local first = string.find(text, '[^ \t\n\r]')
  if not first then return '' end
  local last = #text
  while true do
    local byte = string.byte(text, last)
    if byte ~= 32 and byte ~= 9 and byte ~= 10 and byte ~= 13 then break end
    last = last - 1
  end
  return string.sub(text, first, last)
end
"#,
    },
    LuaHelper {
        name: "call_chunked",
        code: r#"
-- command(key, items[first..last]) in slices; `width` items per element.
local function call_chunked(command, key, items, first, last, width)
  local i = first
  while i <= last do
    local j = math.min(i + CHUNK * width - 1, last)
    redis.call(command, key, unpack(items, i, j))
    i = j + 1
  end
end
"#,
    },
];

/// A script's source: `constants`, then the helpers of `helpers` that
/// `body` calls, directly or through another helper, in their order (a
/// helper calls only helpers listed before it), then `body`.
pub(super) fn lua_source(constants: &[&str], helpers: &[&[LuaHelper]], body: &str) -> String {
    let helpers: Vec<&LuaHelper> = helpers.iter().flat_map(|group| group.iter()).collect();
    let mut needed = vec![false; helpers.len()];
    for index in (0..helpers.len()).rev() {
        let name = helpers[index].name;
        needed[index] = calls(body, name)
            || helpers[index + 1..]
                .iter()
                .zip(&needed[index + 1..])
                .any(|(later, &used)| used && calls(later.code, name));
    }
    let mut source = constants.concat();
    for (helper, used) in helpers.iter().zip(needed) {
        if used {
            source.push_str(helper.code);
        }
    }
    source.push_str(body);
    source
}

/// Whether Lua `code` calls function `name`: `name(` not preceded by a
/// character that would make it part of a longer name.
fn calls(code: &str, name: &str) -> bool {
    code.match_indices(name).any(|(at, _)| {
        code[at + name.len()..].starts_with('(')
            && !code[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == ':')
    })
}

/// KEYS: session, expiry index. ARGV: prefix, id, created, expires,
/// absolute or '', '1' if owned, owner, then field/value pairs.
const CREATE: &str = r#"
local key, index = KEYS[1], KEYS[2]
if redis.call('EXISTS', key) == 1 then return 0 end
addable(index, 'zset', 'the expiry index')
if ARGV[6] == '1' then addable(user_key(ARGV[1], ARGV[7]), 'set', "the user's set of sessions") end
local absolute = ARGV[5] ~= '' and ARGV[5] or false
local meta = {CREATED, ARGV[3], EXPIRES, ARGV[4]}
if absolute then meta[#meta + 1] = ABSOLUTE; meta[#meta + 1] = absolute end
if ARGV[6] == '1' then meta[#meta + 1] = USER; meta[#meta + 1] = ARGV[7] end
redis.call('HSET', key, unpack(meta))
call_chunked('HSET', key, ARGV, 8, #ARGV, 2)
local due = deadline(ARGV[4], absolute)
local ms = ttl_ms(due, tonumber(ARGV[3]))
redis.call('PEXPIRE', key, ms)
redis.call('ZADD', index, due, ARGV[2])
if ARGV[6] == '1' then
  local owner = user_key(ARGV[1], ARGV[7])
  redis.call('SADD', owner, ARGV[2])
  extend(owner, ms)
end
return 1
"#;

/// KEYS: session, expiry index. ARGV: prefix, id, now, 1 if cleared plus
/// 2 to delete the session if left with no data, expires or '', absolute or
/// '', owner change ('' none, '-' remove, '='
/// set), owner, the list edit's field or '', its added items' texts joined
/// by commas, m, its m taken items' texts, n, n removed fields, then
/// field/value pairs to set.
const UPDATE: &str = r#"
local key, index, prefix, sid = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local now = tonumber(ARGV[3])
local meta = redis.call('HMGET', key, EXPIRES, ABSOLUTE, USER, LENGTHS)
if not live(meta[1], meta[2], now) then return 0 end
local first_taken, last_taken = 12, 11 + tonumber(ARGV[11])
local at = last_taken + 1
-- The order of Changes::apply_to: clear, remove, set, the list edit, then
-- the metadata.
local removed = tonumber(ARGV[at])
local mode = tonumber(ARGV[4])
if ARGV[5] ~= '' or ARGV[6] ~= '' then addable(index, 'zset', 'the expiry index') end
if ARGV[7] == '=' then addable(user_key(prefix, ARGV[8]), 'set', "the user's set of sessions") end
if mode % 2 == 1 then
  local data = {}
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if not is_meta(field) or string.sub(field, 1, #LENGTH) == LENGTH or field == LENGTHS then
      data[#data + 1] = field
    end
  end
  call_chunked('HDEL', key, data, 1, #data, 1)
else
  call_chunked('HDEL', key, ARGV, at + 1, at + removed, 1)
  if meta[4] then
    local stale = {}
    for i = at + 1, at + removed do stale[#stale + 1] = LENGTH .. ARGV[i] end
    for i = at + 1 + removed, #ARGV, 2 do stale[#stale + 1] = LENGTH .. ARGV[i] end
    if ARGV[9] ~= '' then stale[#stale + 1] = LENGTH .. ARGV[9] end
    call_chunked('HDEL', key, stale, 1, #stale, 1)
  end
end
call_chunked('HSET', key, ARGV, at + 1 + removed, #ARGV, 2)
if ARGV[9] ~= '' then
  -- ListEdit::apply on the list's text: the longest run of the taken items
  -- that ends them and starts the list leaves it (tried from the 64
  -- longest: more taken by others first leaves the rest to be shown
  -- again), then the added items are appended. Anything but a list counts
  -- as an empty one.
  local field, added = ARGV[9], ARGV[10]
  local current = redis.call('HGET', key, field)
  local items = ''
  local text = current and trim(current) or ''
  if string.sub(text, 1, 1) == '[' and string.sub(text, -1) == ']' then
    items = trim(string.sub(text, 2, -2))
    for start = first_taken, math.min(last_taken, first_taken + 63) do
      local pos, matched = 1, true
      for i = start, last_taken do
        local item = ARGV[i]
        if string.sub(items, pos, pos + #item - 1) ~= item then
          matched = false
          break
        end
        pos = pos + #item
        if i < last_taken then
          if string.sub(items, pos, pos) ~= ',' then
            matched = false
            break
          end
          pos = pos + 1
        end
      end
      if matched and pos > #items then
        items = ''
        break
      elseif matched and string.sub(items, pos, pos) == ',' then
        items = string.sub(items, pos + 1)
        break
      end
    end
  end
  if added ~= '' then
    if items == '' then items = added else items = items .. ',' .. added end
  end
  if items == '' then
    redis.call('HDEL', key, field)
  else
    redis.call('HSET', key, field, '[' .. items .. ']')
  end
end
local owner = meta[3]
if ARGV[7] ~= '' then
  local new_owner = ARGV[7] == '=' and ARGV[8] or false
  if owner and owner ~= new_owner then remove_member('SREM', user_key(prefix, owner), sid) end
  if new_owner then
    redis.call('HSET', key, USER, new_owner)
    redis.call('SADD', user_key(prefix, new_owner), sid)
  else
    redis.call('HDEL', key, USER)
  end
  owner = new_owner
end
local expires, absolute, moved = meta[1], meta[2], false
if ARGV[5] ~= '' then
  expires, moved = ARGV[5], true
  redis.call('HSET', key, EXPIRES, expires)
end
-- An absolute expiry only ever comes sooner.
if ARGV[6] ~= '' and (not absolute or tonumber(ARGV[6]) < tonumber(absolute)) then
  absolute, moved = ARGV[6], true
  redis.call('HSET', key, ABSOLUTE, absolute)
end
if moved then
  local due = deadline(expires, absolute)
  redis.call('PEXPIRE', key, ttl_ms(due, now))
  redis.call('ZADD', index, due, sid)
end
-- Left with no data (nothing but PERMANENT_KEY) and no owner, the session
-- goes, if asked (2).
if mode >= 2 and not owner then
  -- With no owner, at most five fields are neither data nor a list's kept
  -- count (which goes with its list): the times, LENGTHS and `_permanent`.
  -- More, and some hold data; listing every field of a large session would
  -- hold Redis for each of them.
  local holds_data = redis.call('HLEN', key) > 5
  if not holds_data then
    for _, field in ipairs(redis.call('HKEYS', key)) do
      if not is_meta(field) and field ~= '_permanent' then
        holds_data = true
        break
      end
    end
  end
  if not holds_data then
    redis.call('UNLINK', key)
    remove_member('ZREM', index, sid)
    return 2
  end
end
-- The owner's set must outlive each of its sessions.
if owner and (moved or ARGV[7] == '=') then
  extend(user_key(prefix, owner), redis.call('PTTL', key))
end
return 1
"#;

/// KEYS: session, expiry index. ARGV: prefix, id. The scripts that end
/// sessions `UNLINK` them: a large session's hash is freed in the
/// background, where `DEL` held Redis while it freed each field (46 ms for
/// 100,000).
const DELETE: &str = r#"
local owner = owner_of(KEYS[1])
if redis.call('UNLINK', KEYS[1]) == 0 then return 0 end
remove_member('ZREM', KEYS[2], ARGV[2])
if owner then remove_member('SREM', user_key(ARGV[1], owner), ARGV[2]) end
return 1
"#;

/// KEYS: old session, new session, expiry index. ARGV: prefix, old id,
/// new id, now.
const CYCLE: &str = r#"
local old, new, index = KEYS[1], KEYS[2], KEYS[3]
if old == new or redis.call('EXISTS', new) == 1 then return 0 end
local meta = redis.call('HMGET', old, EXPIRES, ABSOLUTE, USER)
if not live(meta[1], meta[2], tonumber(ARGV[4])) then return 0 end
addable(index, 'zset', 'the expiry index')
if meta[3] then addable(user_key(ARGV[1], meta[3]), 'set', "the user's set of sessions") end
-- RENAME keeps the TTL.
redis.call('RENAME', old, new)
redis.call('ZREM', index, ARGV[2])
redis.call('ZADD', index, deadline(meta[1], meta[2]), ARGV[3])
if meta[3] then
  local owner = user_key(ARGV[1], meta[3])
  redis.call('SREM', owner, ARGV[2])
  redis.call('SADD', owner, ARGV[3])
end
return 1
"#;

/// KEYS: session. ARGV: now, field, by. Returns the value before as text
/// ('' for none) once incremented, 0 if no live session, 2 on overflow, {3,
/// current} if not an integer, Redis' own error if it refuses the write. Success is a plain string: building and
/// sending a table costs Redis about a microsecond, an eighth of the script.
const INCREMENT: &str = r#"
local key, field = KEYS[1], ARGV[2]
-- One read for liveness and the current value: every call here is CPU on a
-- server that all of the application's instances share.
local meta = redis.call('HMGET', key, EXPIRES, ABSOLUTE, field)
if not live(meta[1], meta[2], tonumber(ARGV[1])) then return 0 end
local current = meta[3]
-- None counts as 0, and so does -0, which HINCRBY would refuse.
if current == 'null' or current == '-0' then
  redis.call('HDEL', key, field)
  current = false
end
-- A JSON integer in i64 range is exactly what HINCRBY accepts, and it does
-- exact 64-bit arithmetic (Lua numbers would round past 2^53), so the
-- caller adds `by` to the text returned here and gets the stored result.
local result = redis.pcall('HINCRBY', key, field, ARGV[3])
if type(result) == 'table' and result.err then
  if string.find(result.err, 'overflow', 1, true) then return 2 end
  if string.find(result.err, 'not an integer', 1, true) then return {3, current} end
  -- Redis refusing the write (out of memory, a read-only replica) is no
  -- fault of the value: the caller sees Redis' own error.
  return result
end
-- Never '' otherwise: HINCRBY refuses an empty value.
return current or ''
"#;

/// KEYS: session. ARGV: now, field, item (tagged JSON). Returns the new
/// length (at least 1), 0 if no live session, {3, current} if not a list,
/// {4, current} if the stored list cannot be read.
const APPEND: &str = r#"
-- Lists shorter than this many bytes are scanned in well under a
-- millisecond: their count is not kept.
local COUNT_FROM = 4096
-- Top-level items of a non-empty compact JSON array, or nil if malformed.
local function list_length(text)
  local depth, commas, i = 0, 0, 1
  while true do
    local s = string.find(text, '[%[%]{}",]', i)
    if not s then return nil end
    local c = string.sub(text, s, s)
    if c == '"' then
      local j = s + 1
      while true do
        local e = string.find(text, '["\\]', j)
        if not e then return nil end
        if string.sub(text, e, e) == '\\' then j = e + 2 else j = e + 1; break end
      end
      i = j
    else
      if c == '[' or c == '{' then
        depth = depth + 1
      elseif c == ']' or c == '}' then
        depth = depth - 1
        if depth == 0 then
          if s ~= #text then return nil end
          return commas + 1
        end
      elseif depth == 1 then
        commas = commas + 1
      end
      i = s + 1
    end
  end
end

local key, field, item = KEYS[1], ARGV[2], ARGV[3]
local meta = redis.call('HMGET', key, EXPIRES, ABSOLUTE, field, LENGTH .. field)
if not live(meta[1], meta[2], tonumber(ARGV[1])) then return 0 end
local current = meta[3]
if current and (string.find(current, '^[ \t\n\r]') or string.find(current, '[ \t\n\r]$')) then
  -- JSON's blanks around the value, as another writer may leave them
  -- (looked for at both ends first: trimming scans the whole list).
  current = string.match(current, '^[ \t\n\r]*(.-)[ \t\n\r]*$')
end
local updated, length
if not current or current == 'null' or string.find(current, '^%[[ \t\n\r]*%]$') then
  updated, length = '[' .. item .. ']', 1
elseif string.sub(current, 1, 1) == '[' then
  -- Only lists are JSON arrays in tagged JSON (tuples are {" t": [...]}).
  -- Counting the items scans the list, while Redis serves no one else: a
  -- long list's count is kept instead, trusted while its length in bytes
  -- is the list's (every other writer of the field drops it).
  local count
  local known, bytes = string.match(meta[4] or '', '^(%d+) (%d+)$')
  if known and tonumber(bytes) == #current then
    count = tonumber(known)
  else
    count = list_length(current)
  end
  if not count then return {4, current} end
  updated, length = string.sub(current, 1, -2) .. ',' .. item .. ']', count + 1
else
  return {3, current}
end
if #updated >= COUNT_FROM then
  redis.call('HSET', key, field, updated, LENGTH .. field, length .. ' ' .. #updated, LENGTHS, '1')
else
  redis.call('HSET', key, field, updated)
end
return length
"#;

/// KEYS: expiry index. ARGV: prefix, now, batch, how many it may purge.
/// Returns how many sessions (or index entries of sessions Redis dropped)
/// were removed, and how many due entries it looked at (see
/// [`purge_in_rounds`]).
const PURGE: &str = r#"
local index, prefix = KEYS[1], ARGV[1]
local now, may_purge = tonumber(ARGV[2]), tonumber(ARGV[4])
local purged, looked_at = 0, 0
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])) do
  if purged >= may_purge then break end
  looked_at = looked_at + 1
  local key = session_key(prefix, sid)
  local meta = redis.pcall('HMGET', key, EXPIRES, ABSOLUTE, USER)
  if meta.err then
    -- The session's key holds another kind of value (written by hand):
    -- the session reads as absent and the key is left as it is; its entry
    -- goes, so that the sweep goes on past it.
    redis.call('ZREM', index, sid)
  elseif not meta[1] then
    -- Redis dropped it at its TTL: only the index entry is left.
    redis.call('ZREM', index, sid)
    purged = purged + 1
  elseif not time_of(meta[1]) or (meta[2] and not time_of(meta[2])) then
    -- Times written by hand that are not numbers: the session reads as
    -- absent and is left as it is (its TTL ends it); its entry goes, so
    -- that the sweep goes on past it.
    redis.call('ZREM', index, sid)
  elseif live(meta[1], meta[2], now) then
    -- The entry disagrees with the session (changed behind our back).
    redis.call('ZADD', index, deadline(meta[1], meta[2]), sid)
  else
    redis.call('UNLINK', key)
    redis.call('ZREM', index, sid)
    if meta[3] then remove_member('SREM', user_key(prefix, meta[3]), sid) end
    purged = purged + 1
  end
end
return {purged, looked_at}
"#;

/// KEYS: the user's set, expiry index. ARGV: prefix, user, batch (see
/// [`DELETE_USER_BATCH`]), now. Counts the sessions that were live: one
/// past its expiry that Redis still keeps (its TTL counts from the write,
/// by Redis' clock) goes uncounted, as `list` leaves it out.
const DELETE_USER: &str = r#"
local owner_key, index, prefix, user = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local now = tonumber(ARGV[4])
local deleted = 0
for _, sid in ipairs(redis.call('SPOP', owner_key, ARGV[3])) do
  local key = session_key(prefix, sid)
  -- Members whose session is gone or changed owner are only dropped; one
  -- that cannot be read goes with the user's sessions, counted.
  local owner, unreadable = owner_of(key)
  if owner == user or unreadable then
    local was_live = true
    if not unreadable then
      -- Times written by hand that are not numbers: a load reads no
      -- session, so it was not live.
      local times = redis.call('HMGET', key, EXPIRES, ABSOLUTE)
      was_live = live(times[1], times[2], now)
    end
    redis.call('UNLINK', key)
    remove_member('ZREM', index, sid)
    if was_live then deleted = deleted + 1 end
  end
end
return {deleted, redis.call('SCARD', owner_key)}
"#;

/// How many of a user's sessions one call of a layout's `DELETE_USER`
/// script takes (KEYS: the user's set, the expiry index; ARGV: prefix,
/// user, this), answering how many it deleted and how many are left. A
/// script holds the whole server while it runs, each session costing some
/// 10 µs: one call for all of a user's 100,000 sessions stalled every
/// client for a second.
const DELETE_USER_BATCH: u64 = 256;

/// Deletes a user's sessions with `script`, a batch per call, until none
/// is left: the number deleted. Bounded by the sessions there were at the
/// start (and a margin), in case new ones keep coming as fast.
async fn delete_user_in_batches(
    link: &Link,
    script: &Script,
    user_key: String,
    expiry_key: String,
    prefix: &str,
    user_id: &str,
) -> Result<u64, StoreError> {
    let mut call = ScriptCall::new(script, &[&user_key, &expiry_key]);
    call.arg(prefix)
        .arg(user_id)
        .arg(DELETE_USER_BATCH)
        .arg(crate::server::unix_now());
    let mut deleted = 0;
    let mut calls_left = None;
    loop {
        let (batch, left): (u64, u64) = link.write(&call).await?;
        deleted += batch;
        let calls_left = calls_left.get_or_insert(left / DELETE_USER_BATCH + 2);
        if left == 0 || *calls_left == 0 {
            return Ok(deleted);
        }
        *calls_left -= 1;
    }
}

/// KEYS: the user's set. ARGV: prefix, user, ids that looked stale. Checks
/// again here, atomically, so that a session given to the user meanwhile
/// keeps its entry.
const PRUNE_USER: &str = r#"
local removed = 0
for i = 3, #ARGV do
  -- One that cannot be read stays, within reach of "log out everywhere".
  local owner, unreadable = owner_of(session_key(ARGV[1], ARGV[i]))
  if owner ~= ARGV[2] and not unreadable then
    removed = removed + redis.call('SREM', KEYS[1], ARGV[i])
  end
end
return removed
"#;

/// The scripts, with their SHA-1s computed once.
pub(super) struct Scripts {
    create: Script,
    update: Script,
    delete: Script,
    cycle: Script,
    increment: Script,
    append: Script,
    purge: Script,
    delete_user: Script,
    pub(super) prune_user: Script,
}

pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
    let script = |body: &str| Script::new(&lua_source(&[LUA_CONSTANTS], &[LUA_HELPERS], body));
    Scripts {
        create: script(CREATE),
        update: script(UPDATE),
        delete: script(DELETE),
        cycle: script(CYCLE),
        increment: script(INCREMENT),
        append: script(APPEND),
        purge: script(PURGE),
        delete_user: script(DELETE_USER),
        prune_user: script(PRUNE_USER),
    }
});

/// A [`SessionStore`] in Redis.
///
/// Cheap to construct; see the [module documentation](self) for the layout,
/// the guarantees and how connections are handled.
pub struct RedisStore {
    shared: Arc<Shared>,
}

/// What a store and the tasks it starts share.
struct Shared {
    link: Link,
    prefix: String,
    listing: ListingSnapshot,
    /// Concurrent loads of one session, and increments of one counter,
    /// go as one.
    combiner: Combiner,
}

/// The same configuration, with none of the state: no connections, no
/// listing snapshot, no loads or increments queued.
impl Clone for Shared {
    fn clone(&self) -> Self {
        Self {
            link: self.link.unconnected_copy(),
            prefix: self.prefix.clone(),
            listing: ListingSnapshot::default(),
            combiner: Combiner::default(),
        }
    }
}

/// The URL may hold a password: show only where the server is.
impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("address", &self.shared.link.address())
            .field("prefix", &self.shared.prefix)
            .field("connected", &self.shared.link.is_connected())
            .finish()
    }
}

/// Connecting failed; says where to, since redis-rs does not always, and
/// whether the URL's scheme may be the wrong one.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to the Redis session store at {address}: {source}{hint}")]
struct ConnectError {
    address: String,
    #[source]
    source: RedisError,
    /// Empty, or a sentence that starts with "; ".
    hint: &'static str,
}

impl ConnectError {
    /// `tls` is `None` for a Unix socket, which has no TLS to be wrong about.
    fn new(address: String, tls: Option<bool>, source: RedisError) -> Self {
        let hint = tls.map_or("", |tls| scheme_hint(tls, &source));
        Self {
            address,
            source,
            hint,
        }
    }
}

/// What a plain connection to a server that wants TLS, or a TLS handshake
/// with a server that has none, looks like: the one closes the connection
/// on the first bytes, the other waits for a line that never comes (or
/// answers an error that is no TLS record). Neither says so itself.
fn scheme_hint(tls: bool, error: &RedisError) -> &'static str {
    // redis-rs keeps the I/O error behind an `Arc` that hides it from
    // downcasting; its own tests of the error's kind see it.
    let closed = error.is_connection_dropped() && !error.is_connection_refusal();
    if !tls && closed {
        "; a server that expects TLS closes a plain connection so: if this one does, use a \
         rediss:// URL"
    } else if tls && (error.is_timeout() || error.to_string().contains("corrupt message")) {
        "; a server without TLS leaves a TLS handshake unanswered or answers it with something \
         else: if this one has no TLS, use a redis:// URL"
    } else if error.kind() == ::redis::ErrorKind::Parse {
        // "Incompatible type - Parse error at 1 Unexpected `72`…": the
        // answer of an HTTP server, or of anything else but Redis.
        "; the server's answer does not follow Redis' protocol: is the address a Redis (or \
         Valkey) server's?"
    } else {
        ""
    }
}

/// How many threads running single-threaded runtimes get a connection of
/// their own; beyond that, threads share them in the order they came.
pub const THREAD_CONNECTIONS: usize = 256;

/// The way to one Redis server, shared by both of its store layouts: the
/// client, and the multiplexed connections operations share, each made on
/// first use.
pub(super) struct Link {
    client: Client,
    /// The connections a multi-threaded runtime's operations take in turn:
    /// one, unless told otherwise.
    connections: Box<[Slot]>,
    next: AtomicUsize,
    /// The connection of each thread that runs a single-threaded runtime,
    /// by [`thread_turn`].
    thread_connections: Box<[Slot]>,
    /// The last failed attempt to connect, while it is recent.
    connect_failure: Mutex<Option<(Instant, RedisError)>>,
    /// Whether the server's eviction policy was looked at (once, on the
    /// first connection).
    eviction_checked: AtomicBool,
}

/// One of a store's connections, made on first use, and made anew when its
/// manager can no longer reconnect by itself (see [`handshake_refused`]).
struct Slot {
    /// The connection, made by the first operation.
    first: OnceCell<ConnectionManager>,
    /// Set for good once `first`'s manager met a refused handshake: the
    /// connections made anew in `remade` serve from then on. Apart, so that
    /// every operation until then costs what it did (a load, no lock).
    first_dropped: AtomicBool,
    remade: std::sync::RwLock<Arc<OnceCell<ConnectionManager>>>,
    /// When a command last got its answer on it, in milliseconds of
    /// [`monotonic_millis`](super::monotonic_millis).
    answered_at_ms: AtomicU64,
}

/// Where an operation's connection came from.
enum Cell<'a> {
    First(&'a OnceCell<ConnectionManager>),
    Remade(Arc<OnceCell<ConnectionManager>>),
}

impl std::ops::Deref for Cell<'_> {
    type Target = OnceCell<ConnectionManager>;

    fn deref(&self) -> &Self::Target {
        match self {
            Cell::First(cell) => cell,
            Cell::Remade(cell) => cell,
        }
    }
}

/// The connection an operation took, and the cell it came from.
struct Lease<'a> {
    slot: &'a Slot,
    cell: Cell<'a>,
}

impl Slot {
    fn cell(&self) -> Cell<'_> {
        if self.first_dropped.load(Ordering::Acquire) {
            Cell::Remade(Arc::clone(
                &self.remade.read().unwrap_or_else(PoisonError::into_inner),
            ))
        } else {
            Cell::First(&self.first)
        }
    }

    /// Drops the connection of `cell`, if it is still this slot's, so that
    /// the next operation connects anew.
    fn forget(&self, cell: &Cell<'_>) {
        match cell {
            Cell::First(_) => self.first_dropped.store(true, Ordering::Release),
            Cell::Remade(cell) => {
                let mut current = self.remade.write().unwrap_or_else(PoisonError::into_inner);
                if Arc::ptr_eq(&current, cell) {
                    *current = Arc::new(OnceCell::new());
                }
            }
        }
    }

    fn answered(&self) {
        self.answered_at_ms
            .store(super::monotonic_millis(), Ordering::Relaxed);
    }

    fn quiet_for(&self) -> Duration {
        let answered_at = self.answered_at_ms.load(Ordering::Relaxed);
        Duration::from_millis(super::monotonic_millis().saturating_sub(answered_at))
    }
}

/// What to tell the operator of a Redis whose `INFO memory` is `info`, when
/// it evicts keys once full.
fn eviction_warning(info: &str) -> Option<String> {
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let limit: u64 = field("maxmemory")?.parse().ok()?;
    let policy = field("maxmemory_policy")?;
    (limit > 0 && policy != "noeviction").then(|| {
        format!(
            "the Redis session store evicts keys when full (maxmemory {limit} bytes, \
             maxmemory-policy {policy}): an evicted session logs its visitor out, and an \
             evicted index leaves live sessions out of \"log out everywhere\", revoking a \
             user's sessions and listings, without any error; set maxmemory-policy \
             noeviction (a full Redis then refuses writes, answered 503) or give sessions \
             a Redis of their own"
        )
    })
}

/// Whether `url` asks redis-rs for TLS.
fn is_tls_url(url: &str) -> bool {
    url.split_once("://").is_some_and(|(scheme, _)| {
        scheme.eq_ignore_ascii_case("rediss") || scheme.eq_ignore_ascii_case("valkeys")
    })
}

/// A query parameter of `url` that the Redis client does not read, with
/// those it does: it reads none but `protocol` on a TCP URL, where the
/// password and user go before the host and the database after it, and
/// `db`, `user`, `pass` and `protocol` on a Unix socket's. Ignored, a
/// `?password=` would leave the connection unauthenticated while its
/// writer thinks otherwise.
fn unread_query_parameter(url: &str) -> Option<(String, &'static str)> {
    let (scheme, rest) = url.split_once("://")?;
    let unix = scheme.to_ascii_lowercase().ends_with("unix");
    let read: &[&str] = if unix {
        &["db", "user", "pass", "protocol"]
    } else {
        &["protocol"]
    };
    let query = rest.split('#').next()?.split_once('?')?.1;
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').map_or(pair, |(name, _)| name))
        .map(|name| percent_encoding::percent_decode_str(name).decode_utf8_lossy())
        .find(|name| !read.contains(&name.as_ref()))
        .map(|name| {
            let hint = if unix {
                "on a Unix socket's URL it reads db, user, pass and protocol"
            } else {
                "it reads only protocol; a password goes before the host \
                 (redis://:PASSWORD@host:port/db, or redis://USER:PASSWORD@…) and the \
                 database number after it"
            };
            (name.into_owned(), hint)
        })
}

/// redis-rs builds its TLS configuration on rustls' process-wide crypto
/// provider, and rustls panics when none was installed and more than one is
/// compiled in (as happens when another crate of the application brings
/// aws-lc-rs): ring is installed unless the application installed one.
#[cfg(feature = "tls")]
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may have installed one meanwhile: either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

impl Link {
    /// Checks `url`; connects nothing yet.
    pub(super) fn open(url: &str) -> Result<Self, StoreError> {
        if let Some(why) = crate::config::store_url_misread(url) {
            return Err(StoreError::config(format!(
                "{} is not a usable Redis URL: {why}",
                redact_password(url)
            )));
        }
        if !cfg!(feature = "tls") && is_tls_url(url) {
            return Err(StoreError::config(format!(
                "{} asks for TLS, which needs tessera's `tls` feature",
                redact_password(url)
            )));
        }
        // redis-rs reads this fragment as "do not check the certificate",
        // which it refuses without a feature tessera does not build: at
        // connect time, which made every request a 503 as for an outage.
        if is_tls_url(url)
            && url
                .split_once('#')
                .is_some_and(|(_, fragment)| fragment.eq_ignore_ascii_case("insecure"))
        {
            return Err(StoreError::config(format!(
                "{} asks (#insecure) for TLS without checking the server's certificate, \
                 which tessera does not do: drop #insecure and give the server's CA in \
                 SSL_CERT_FILE (a bundle of the system's roots and that CA)",
                redact_password(url)
            )));
        }
        if let Some((name, hint)) = unread_query_parameter(url) {
            return Err(StoreError::config(format!(
                "{} is not a usable Redis URL: the Redis client does not read its query \
                 parameter {name:?} ({hint})",
                redact_password(url)
            )));
        }
        let client = Client::open(url).map_err(|error| {
            StoreError::config(Reason::caused_by(
                format!(
                    "{} is not a usable Redis URL: {error}; expected \
                     redis://[:password@]host[:port][/db] or rediss://… for TLS",
                    redact_password(url)
                ),
                error,
            ))
        })?;
        Ok(Self {
            client,
            connections: unconnected(1),
            next: AtomicUsize::new(0),
            thread_connections: unconnected(THREAD_CONNECTIONS),
            connect_failure: Mutex::new(None),
            eviction_checked: AtomicBool::new(false),
        })
    }

    /// A link to the same server with as many connections, none of them
    /// open yet.
    pub(super) fn unconnected_copy(&self) -> Self {
        Self {
            client: self.client.clone(),
            connections: unconnected(self.connections.len()),
            next: AtomicUsize::new(0),
            thread_connections: unconnected(THREAD_CONNECTIONS),
            connect_failure: Mutex::new(None),
            eviction_checked: AtomicBool::new(false),
        }
    }

    /// Opens `count` connections (at least one) instead, as they are needed.
    pub(super) fn set_connections(&mut self, count: usize) {
        self.connections = unconnected(count);
    }

    pub(super) fn connections(&self) -> usize {
        self.connections.len()
    }

    /// Where the server is, without any password.
    pub(super) fn address(&self) -> String {
        self.client.get_connection_info().addr().to_string()
    }

    /// Whether the connection is over TCP with TLS, or without; `None`
    /// for a Unix socket.
    fn is_tls(&self) -> Option<bool> {
        match self.client.get_connection_info().addr() {
            ::redis::ConnectionAddr::TcpTls { .. } => Some(true),
            ::redis::ConnectionAddr::Tcp(..) => Some(false),
            _ => None,
        }
    }

    pub(super) fn is_connected(&self) -> bool {
        self.connections
            .iter()
            .chain(&self.thread_connections)
            .any(|slot| slot.cell().initialized())
    }

    /// The connection to use now, connecting first if needed.
    #[cfg(test)]
    pub(super) async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        Ok(self.slot_connection().await?.0)
    }

    /// The connection to use now and its slot: the next in turn on a
    /// multi-threaded runtime, this thread's own on a single-threaded one.
    /// `get_or_try_init` keeps only a success, so after a failure an
    /// operation tries again (once [`CONNECT_FAILURE_HOLD`] has passed);
    /// once connected, the manager reconnects by itself.
    async fn slot_connection(&self) -> Result<(ConnectionManager, Lease<'_>), StoreError> {
        let single_threaded = tokio::runtime::Handle::try_current()
            .is_ok_and(|runtime| runtime.runtime_flavor() == RuntimeFlavor::CurrentThread);
        let slot = if single_threaded {
            &self.thread_connections[thread_turn() % THREAD_CONNECTIONS]
        } else {
            let turn = self.next.fetch_add(1, Ordering::Relaxed);
            &self.connections[turn % self.connections.len()]
        };
        let cell = slot.cell();
        let manager = cell
            // Boxed, being once per connection: in place, connecting's
            // future would be part of every operation's.
            .get_or_try_init(|| Box::pin(self.connect()))
            .await
            .map_err(|source| {
                StoreError::unavailable(ConnectError::new(self.address(), self.is_tls(), source))
            })?
            .clone();
        Ok((manager, Lease { slot, cell }))
    }

    async fn connect(&self) -> Result<ConnectionManager, RedisError> {
        if let Some(error) = self.recent_connect_failure() {
            return Err(error);
        }
        #[cfg(feature = "tls")]
        if matches!(
            self.client.get_connection_info().addr(),
            ::redis::ConnectionAddr::TcpTls { .. }
        ) {
            ensure_crypto_provider();
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(CONNECT_RETRIES);
        let connected = ConnectionManager::new_with_config(self.client.clone(), config).await;
        match &connected {
            Err(error) => {
                *self
                    .connect_failure
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) =
                    Some((Instant::now(), error.clone()));
            }
            Ok(manager) if !self.eviction_checked.swap(true, Ordering::Relaxed) => {
                self.warn_if_evicting(manager.clone()).await;
            }
            Ok(_) => {}
        }
        connected
    }

    /// Warns when the server may evict keys: an evicted session logs its
    /// visitor out, but an evicted index (a user's set, the expiry index)
    /// leaves live sessions out of "log out everywhere" and listings,
    /// without any error. `INFO` rather than `CONFIG GET`, which managed
    /// services often disable; a server that answers neither is not judged.
    async fn warn_if_evicting(&self, mut manager: ConnectionManager) {
        let info: Result<String, _> = ::redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut manager)
            .await;
        match info {
            Ok(info) => {
                if let Some(warning) = eviction_warning(&info) {
                    tracing::warn!(address = %self.address(), "{warning}");
                }
            }
            Err(error) => {
                tracing::info!(
                    %error,
                    "could not read the Redis server's eviction policy (INFO memory): make \
                     sure its maxmemory-policy is noeviction"
                );
            }
        }
    }

    /// The error of the last attempt to connect if it failed within
    /// [`CONNECT_FAILURE_HOLD`].
    fn recent_connect_failure(&self) -> Option<RedisError> {
        let mut failure = self
            .connect_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &*failure {
            Some((at, error)) if at.elapsed() < CONNECT_FAILURE_HOLD => Some(error.clone()),
            _ => {
                *failure = None;
                None
            }
        }
    }

    /// Runs a read-only command, once more if the connection had dropped:
    /// by then the manager is reconnecting, and a read is safe to repeat.
    pub(super) async fn read<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        let (mut conn, lease) = self.slot_connection().await?;
        answered(&lease, query_once_more_if_dropped(&mut conn, cmd).await)
    }

    /// The session ids a read-only command answers (a user's set, a range
    /// of the expiry index).
    pub(super) async fn read_ids(&self, cmd: &Cmd) -> Result<Vec<SessionId>, StoreError> {
        // Bytes: a member that is not UTF-8 (written by hand) must not fail
        // the whole listing, which leaves out what it cannot read.
        let members: Vec<Vec<u8>> = self.read(cmd).await?;
        let count = members.len();
        let ids: Vec<SessionId> = members
            .iter()
            .filter_map(|member| SessionId::parse(std::str::from_utf8(member).ok()?))
            .collect();
        if ids.len() < count {
            tracing::warn!(
                left_out = count - ids.len(),
                "members of a session index that are no session id were left out of a listing"
            );
        }
        Ok(ids)
    }

    /// [`read`](Self::read) for a pipeline of read-only commands.
    pub(super) async fn read_all<T: FromRedisValue>(
        &self,
        pipe: &Pipeline,
    ) -> Result<T, StoreError> {
        let (mut conn, lease) = self.slot_connection().await?;
        let answer = match pipe.query_async(&mut conn).await {
            Err(error) if is_dropped(&error) => pipe.query_async(&mut conn).await,
            result => result,
        };
        answered(&lease, answer)
    }

    /// Runs a script that only reads, once more if the connection had
    /// dropped, as [`read`](Self::read) does.
    pub(super) async fn read_script<T: FromRedisValue>(
        &self,
        call: &ScriptCall<'_>,
    ) -> Result<T, StoreError> {
        let (mut conn, lease) = self.slot_connection().await?;
        let answer = match call.invoke(&mut conn).await {
            Err(error) if is_dropped(&error) => call.invoke(&mut conn).await,
            result => result,
        };
        answered(&lease, answer)
    }

    /// Runs a script that may write: not repeated, since it may have been
    /// applied before the connection dropped. On a connection that sat
    /// unused for [`QUIET_BEFORE_WRITE`], a `PING` (repeated once if the
    /// connection had dropped) goes first.
    pub(super) async fn write<T: FromRedisValue>(
        &self,
        call: &ScriptCall<'_>,
    ) -> Result<T, StoreError> {
        let (mut conn, lease) = self.slot_connection().await?;
        if lease.slot.quiet_for() >= QUIET_BEFORE_WRITE {
            let pinged = query_once_more_if_dropped::<()>(&mut conn, &::redis::cmd("PING")).await;
            answered(&lease, pinged)?;
        }
        answered(&lease, call.invoke(&mut conn).await)
    }
}

/// Runs a sweep script until `batch` sessions are purged or nothing is
/// left due. `run(batch, may_purge)` looks at up to `batch` due entries,
/// purging up to `may_purge` sessions, and answers how many it purged and
/// how many entries it looked at. An entry can be due and not purged: a
/// session kept alive by another writer (Flask, on each request) gets its
/// entry moved to its new expiry, and unreadable ones lose theirs. Returning
/// fewer than `batch` for such a run would end the sweeper's round while
/// expired sessions are still due.
async fn purge_in_rounds<F, Fut>(batch: usize, mut run: F) -> Result<u64, StoreError>
where
    F: FnMut(usize, usize) -> Fut,
    Fut: std::future::Future<Output = Result<(u64, u64), StoreError>>,
{
    let batch_count = u64::try_from(batch).unwrap_or(u64::MAX);
    let mut purged = 0u64;
    while purged < batch_count {
        let may_purge = usize::try_from(batch_count - purged).unwrap_or(usize::MAX);
        let (count, looked_at) = run(batch, may_purge).await?;
        purged += count;
        // Every entry it looked at is gone or due later now, so each run
        // makes way, and one that looked at fewer than a batch without
        // reaching its purges saw every entry due.
        if looked_at < batch_count {
            break;
        }
    }
    Ok(purged)
}

/// `purge_expired` of either layout, with its `PURGE` script (keys: the
/// expiry index; arguments: prefix, now, batch, how many it may purge).
pub(super) async fn purge_with(
    link: &Link,
    script: &Script,
    index: &str,
    prefix: &str,
    now: u64,
    batch: usize,
) -> Result<u64, StoreError> {
    if batch == 0 {
        return Ok(0);
    }
    purge_in_rounds(batch, |batch, may_purge| {
        let mut call = ScriptCall::new(script, &[index]);
        call.arg(prefix).arg(clamp(now)).arg(batch).arg(may_purge);
        async move { link.write(&call).await }
    })
    .await
}

/// A call of one of the scripts, written as the `EVALSHA` command it is
/// sent as: its keys and arguments go straight into the command.
/// (redis-rs' `ScriptInvocation` keeps each in an allocation of its own and
/// copies them all into a new command at every call: a dozen allocations
/// for an increment's four, on every increment.)
pub(super) struct ScriptCall<'a> {
    script: &'a Script,
    command: Cmd,
}

impl<'a> ScriptCall<'a> {
    /// A call of `script` with `keys` (the script's `KEYS`); its arguments
    /// (`ARGV`) follow with [`arg`](Self::arg).
    pub(super) fn new(script: &'a Script, keys: &[&str]) -> Self {
        let mut command = Cmd::with_capacity(keys.len() + 12, 256);
        command
            .arg("EVALSHA")
            .arg(script.get_hash())
            .arg(keys.len())
            .arg(keys);
        Self { script, command }
    }

    pub(super) fn arg(&mut self, arg: impl ToRedisArgs) -> &mut Self {
        self.command.arg(arg);
        self
    }

    /// The call's answer; a server that does not have the script (after a
    /// restart or `SCRIPT FLUSH`) is given it first, as `ScriptInvocation`
    /// does.
    async fn invoke<T: FromRedisValue>(&self, conn: &mut ConnectionManager) -> RedisResult<T> {
        match self.command.query_async(conn).await {
            Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                // Boxed, being rare: in place, its future would grow every
                // call's (see `the_boxed_load_and_increment_stay_small_chunks_for_glibc`).
                Box::pin(self.script.load_async(conn)).await?;
                self.command.query_async(conn).await
            }
            answer => answer,
        }
    }
}

/// `cmd`'s answer, asked once more if the connection had dropped: by then
/// the manager is reconnecting. Only for commands safe to repeat.
async fn query_once_more_if_dropped<T: FromRedisValue>(
    conn: &mut ConnectionManager,
    cmd: &Cmd,
) -> Result<T, RedisError> {
    match cmd.query_async(conn).await {
        Err(error) if is_dropped(&error) => cmd.query_async(conn).await,
        result => result,
    }
}

/// A command's result, noting on its connection that an answer came, or
/// dropping the connection if its manager cannot make it again.
fn answered<T>(lease: &Lease<'_>, answer: Result<T, RedisError>) -> Result<T, StoreError> {
    match &answer {
        Ok(_) => lease.slot.answered(),
        Err(error) if handshake_refused(error) => lease.slot.forget(&lease.cell),
        Err(_) => {}
    }
    answer.map_err(failed)
}

/// Whether `error` is Redis refusing a new connection's handshake (its
/// `AUTH` or `SELECT`): a reconnection after a password was rotated, a user
/// deleted, or a server restarted with fewer databases. redis-rs'
/// manager reconnects only after an I/O error, so it would answer this
/// error from then on, without trying again, until the application
/// restarted; the connection is made anew instead by the next operation
/// (and, while that fails, at most once per [`CONNECT_FAILURE_HOLD`]), so
/// that the store works again once the server accepts it.
fn handshake_refused(error: &RedisError) -> bool {
    // RESP2's `AUTH` refusal is `AuthenticationFailed`; RESP3's `HELLO`
    // passes Redis' `WRONGPASS` on as it came, which only `AUTH` and
    // `HELLO` answer.
    error.kind() == ErrorKind::AuthenticationFailed || error.code() == Some("WRONGPASS") || {
        let text = error.to_string();
        text.contains("refused to switch database") || text.contains("refused to authenticate")
    }
}

/// Which of the two layouts the sessions under a prefix are stored in, as
/// far as a sample of them shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// tessera's own: one hash per session, holding its keys.
    Tessera,
    /// Flask-Session's: the serialized session under `prefix + id`, beside
    /// a metadata hash ([`FlaskSessionRedisStore`]).
    FlaskSession,
    /// Sessions of both: applications of both layouts share the prefix,
    /// and each reads the other's sessions wrongly.
    Both,
}

/// The warning for sessions of `found` under `prefix`, read by a store of
/// layout `reads`, if they are not all of it.
pub(super) fn layout_warning(prefix: &str, reads: Layout, found: Layout) -> Option<String> {
    let (ours, theirs) = match reads {
        Layout::FlaskSession => ("Flask-Session's", "tessera's own"),
        _ => ("tessera's own", "Flask-Session's"),
    };
    let what = match found {
        layout if layout == reads => return None,
        Layout::Both => "sessions of both layouts, tessera's own and Flask-Session's",
        _ => &format!("sessions in {theirs} layout"),
    };
    Some(format!(
        "the Redis key prefix {prefix:?} holds {what}: this application (in {ours} layout, as \
         SESSION_SERIALIZATION_FORMAT says) reads those of {theirs} as empty or absent \
         sessions; another application uses the prefix, or this one used it with the other \
         setting; give each layout a prefix of its own"
    ))
}

/// How many `SCAN` calls [`Link::sample_layout`] makes at most.
const SAMPLE_SCAN_ROUNDS: usize = 10;

/// Reads up to 16 of the earliest and 16 of the latest sessions of the
/// expiry index (an application of the other layout that came later, or
/// whose sessions last longer, shows at one end). Read-only.
const SAMPLE_LAYOUT: &str = r#"
local prefix = ARGV[1]
local ours, theirs = false, false
-- An index of another kind (set by hand, say) tells nothing, and must not
-- stop what the check comes before: a revocation goes through without it.
local function sampled(first, last)
  local ids = redis.pcall('ZRANGE', KEYS[1], first, last)
  if ids.err then return {} end
  return ids
end
local sample = sampled(0, 15)
for _, sid in ipairs(sampled(-16, -1)) do sample[#sample + 1] = sid end
for _, sid in ipairs(sample) do
  if redis.call('TYPE', prefix .. sid).ok == 'string' then
    theirs = true
  else
    -- A key of another kind (set by hand, say) tells nothing: the next one may.
    local fields = redis.pcall('HKEYS', prefix .. '{' .. sid .. '}')
    if not fields.err then
      for _, field in ipairs(fields) do
        -- Metadata fields are NUL and a name; every other field is a session key.
        if string.byte(field, 1) ~= 0 or string.byte(field, 2) == 0 then
          ours = true
          break
        end
      end
    end
  end
end
if ours and theirs then return 'both' end
if ours then return 'tessera' end
if theirs then return 'flask-session' end
return ''
"#;

impl Link {
    /// The layout of the sessions under `prefix`, from a sample of its expiry
    /// index and a few rounds of `SCAN` for the values Flask-Session keeps
    /// (Flask-Session itself writes no index); `None` when neither shows
    /// anything.
    pub(super) async fn sample_layout(&self, prefix: &str) -> Result<Option<Layout>, StoreError> {
        static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SAMPLE_LAYOUT));
        let mut call = ScriptCall::new(&SCRIPT, &[&format!("{prefix}expiry")]);
        call.arg(prefix);
        let found: String = self.read_script(&call).await?;
        let indexed = match found.as_str() {
            "tessera" => Some(Layout::Tessera),
            "flask-session" => return Ok(Some(Layout::FlaskSession)),
            "both" => return Ok(Some(Layout::Both)),
            _ => None,
        };
        let valued = match self.scan_for_values(prefix).await {
            Err(StoreError::Unavailable(error)) if refused_by_acl(&*error) => {
                // A cautious operator may deny SCAN (ACL key patterns do not
                // filter what it returns); everything else works without it.
                tracing::warn!(
                    %error,
                    "the Redis user may not run SCAN, so the check that the sessions under \
                     the key prefix {prefix:?} are all in one layout looked at its expiry \
                     index only, where Flask-Session's own sessions are not: grant the user \
                     SCAN for the whole check"
                );
                None
            }
            valued => valued?,
        };
        Ok(match (indexed, valued) {
            (Some(_), Some(_)) => Some(Layout::Both),
            (indexed, valued) => indexed.or(valued),
        })
    }

    /// The key prefixes under which this server's database indexes sessions
    /// (of either layout), `own` first if it does: each an expiry index (a
    /// sorted set named `<prefix>expiry`) whose first member is a session
    /// id. Found by `SCAN`, of the first hundred thousand keys at most.
    pub(super) async fn indexed_prefixes(&self, own: &str) -> Result<Vec<String>, StoreError> {
        // The store's own first: the scan stops after a few dozen.
        let mut candidates = vec![format!("{own}expiry")];
        let mut cursor: u64 = 0;
        for _ in 0..PREFIX_SCAN_ROUNDS {
            let (next, keys): (u64, Vec<String>) = self
                .read(
                    ::redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg("*expiry")
                        .arg("COUNT")
                        .arg(SCAN_COUNT)
                        .arg("TYPE")
                        .arg("zset"),
                )
                .await?;
            candidates.extend(keys);
            if next == 0 || candidates.len() > 4 * PREFIXES_REPORTED {
                break;
            }
            cursor = next;
        }
        candidates[1..].sort_unstable();
        let mut prefixes: Vec<String> = Vec::new();
        for index in candidates {
            let prefix = &index[..index.len() - "expiry".len()];
            if prefixes.iter().any(|found| found == prefix) {
                continue;
            }
            let first: Vec<String> = self
                .read(::redis::cmd("ZRANGE").arg(&index).arg(0).arg(0))
                .await?;
            if first
                .iter()
                .any(|member| SessionId::parse(member).is_some())
            {
                prefixes.push(prefix.to_owned());
                if prefixes.len() == PREFIXES_REPORTED {
                    break;
                }
            }
        }
        Ok(prefixes)
    }

    /// [`Layout::FlaskSession`] if a few rounds of `SCAN` find a value
    /// Flask-Session keeps under `prefix` (tessera's layout keeps none).
    async fn scan_for_values(&self, prefix: &str) -> Result<Option<Layout>, StoreError> {
        let found = self.sample_session_values(prefix, 1).await?;
        Ok((!found.is_empty()).then_some(Layout::FlaskSession))
    }

    /// The keys of up to `wanted` values Flask-Session keeps under `prefix`,
    /// from a few rounds of `SCAN`.
    async fn sample_session_values(
        &self,
        prefix: &str,
        wanted: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut found = Vec::new();
        let mut cursor: u64 = 0;
        for _ in 0..SAMPLE_SCAN_ROUNDS {
            let (next, keys) = self.scan_values(prefix, cursor).await?;
            // Only a session id after the prefix: `sess*` also matches
            // another application's `session:…` keys.
            found.extend(keys.into_iter().filter(|key| {
                key.strip_prefix(prefix)
                    .and_then(SessionId::parse)
                    .is_some()
            }));
            if found.len() >= wanted || next == 0 {
                break;
            }
            cursor = next;
        }
        found.truncate(wanted);
        Ok(found)
    }

    /// Whether any of the first few Flask-Session values a `SCAN` finds
    /// under `prefix` is a pickle, as Flask-Session before 0.7 writes them.
    pub(super) async fn sample_pickled(&self, prefix: &str) -> Result<bool, StoreError> {
        const VALUES: usize = 16;
        let keys = match self.sample_session_values(prefix, VALUES).await {
            // Said once already, by the layout's sample.
            Err(StoreError::Unavailable(error)) if refused_by_acl(&*error) => return Ok(false),
            sampled => sampled?,
        };
        if keys.is_empty() {
            return Ok(false);
        }
        let mut pipe = ::redis::pipe();
        pipe.ignore_errors();
        for key in &keys {
            pipe.cmd("GETRANGE").arg(key).arg(0).arg(2);
        }
        let starts: Vec<::redis::RedisResult<Vec<u8>>> = self.read_all(&pipe).await?;
        Ok(starts
            .iter()
            .any(|start| start.as_deref().is_ok_and(flask_session::pickled)))
    }

    /// One round of `SCAN` for the string values under `prefix` (where
    /// Flask-Session keeps sessions): the keys found, and the cursor to go
    /// on from, 0 once done.
    pub(super) async fn scan_values(
        &self,
        prefix: &str,
        cursor: u64,
    ) -> Result<(u64, Vec<String>), StoreError> {
        let pattern = format!("{}*", flask_session::escape_glob(prefix));
        self.read(
            ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .arg("TYPE")
                .arg("string"),
        )
        .await
    }
}

/// Keys `SCAN` looks at per call.
const SCAN_COUNT: usize = 1000;

/// How many `SCAN` calls [`Link::indexed_prefixes`] makes at most: a
/// hundred thousand keys looked at, a fraction of a second of the server's
/// time, as a tool's one-off check may take.
const PREFIX_SCAN_ROUNDS: usize = 100;

/// How many prefixes [`Link::indexed_prefixes`] reports at most.
const PREFIXES_REPORTED: usize = 8;

/// `count` connection slots (at least one), none connected yet.
fn unconnected(count: usize) -> Box<[Slot]> {
    (0..count.max(1))
        .map(|_| Slot {
            first: OnceCell::new(),
            first_dropped: AtomicBool::new(false),
            remade: std::sync::RwLock::new(Arc::new(OnceCell::new())),
            answered_at_ms: AtomicU64::new(0),
        })
        .collect()
}

/// This thread's place in line for connections: threads take connections in
/// the order they first ask for one. Keeping a thread on one connection keeps
/// a single-threaded runtime's requests (an actix-web worker's) on the
/// connection it made, whose task runs on that same thread.
fn thread_turn() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static TURN: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TURN.with(|turn| *turn)
}

impl RedisStore {
    /// The update script: `changes` applied, and the session deleted if
    /// asked and left with no data.
    async fn run_update(
        &self,
        id: &SessionId,
        changes: &Changes,
        now: u64,
        delete_if_empty: bool,
    ) -> Result<UpdateOutcome, StoreError> {
        let (owner_change, owner) = match &changes.user_id {
            None => ("", ""),
            Some(None) => ("-", ""),
            Some(Some(user)) => ("=", user.as_str()),
        };
        let mut call = ScriptCall::new(
            &SCRIPTS.update,
            &[&self.session_key(id), &self.expiry_key()],
        );
        call.arg(&self.shared.prefix)
            .arg(id.as_str())
            .arg(now)
            .arg(u8::from(changes.cleared) + 2 * u8::from(delete_if_empty))
            .arg(
                changes
                    .expires_at
                    .map_or(String::new(), |at| clamp(at).to_string()),
            )
            .arg(
                changes
                    .absolute_expires_at
                    .map_or(String::new(), |at| clamp(at).to_string()),
            )
            .arg(owner_change)
            .arg(owner);
        match &changes.list_edit {
            Some(edit) => {
                let added: Vec<String> = edit.added.iter().map(tagged::to_string).collect();
                let taken: Vec<String> = edit.taken.iter().map(tagged::to_string).collect();
                call.arg(&*field_of(&edit.key))
                    .arg(added.join(","))
                    .arg(taken.len())
                    .arg(taken);
            }
            None => {
                call.arg("").arg("").arg(0);
            }
        }
        call.arg(changes.removed.len());
        for key in &changes.removed {
            call.arg(&*field_of(key));
        }
        for (key, value) in &changes.set {
            call.arg(&*field_of(key)).arg(tagged::to_string(value));
        }
        Ok(match self.shared.link.write::<i64>(&call).await? {
            0 => UpdateOutcome::Vanished,
            2 => UpdateOutcome::Deleted,
            _ => UpdateOutcome::Updated,
        })
    }

    /// A store on the server at `url` (`redis://[[user]:password@]host[:port][/db]`,
    /// `rediss://…` for TLS, `redis+unix:///path?db=N&user=U&pass=P`;
    /// `valkey://` alike; a password's reserved characters percent-encoded),
    /// with keys under [`DEFAULT_PREFIX`]. The URL
    /// is checked now; nothing is connected until the first operation.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        Ok(Self {
            shared: Arc::new(Shared {
                link: Link::open(url)?,
                prefix: DEFAULT_PREFIX.to_owned(),
                listing: ListingSnapshot::default(),
                combiner: Combiner::default(),
            }),
        })
    }

    /// Puts every key under `prefix` instead of [`DEFAULT_PREFIX`], so that
    /// several applications (or tests) can share a server.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.shared_mut().prefix = prefix.into();
        self
    }

    /// The prefix of every key.
    pub fn prefix(&self) -> &str {
        &self.shared.prefix
    }

    /// Uses `count` connections (at least one), each opened when first
    /// needed, which operations on a multi-threaded runtime take in turn
    /// instead of sharing one. Single-threaded runtimes keep one connection
    /// per thread whatever the count. See [Connections](self#connections)
    /// for what that costs.
    #[must_use]
    pub fn with_connections(mut self, count: usize) -> Self {
        self.shared_mut().link.set_connections(count);
        self
    }

    /// The connections operations on a multi-threaded runtime take in turn
    /// (each opened when first needed): one unless
    /// [`with_connections`](Self::with_connections) was called.
    /// Single-threaded runtimes keep one per thread besides.
    pub fn connections(&self) -> usize {
        self.shared.link.connections()
    }

    /// For the builder methods. A task serving queued loads or increments
    /// may still hold the state it was given just after its callers were
    /// answered; the builder then configures a copy that shares nothing
    /// with that task rather than changing what it runs on.
    fn shared_mut(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.shared)
    }

    /// `<prefix>{<id>}`, in one allocation (`format!` would start empty
    /// and grow it three times, on every load and increment).
    fn session_key(&self, id: &SessionId) -> String {
        [&*self.shared.prefix, "{", id.as_str(), "}"].concat()
    }

    fn user_key(&self, user: &str) -> String {
        format!("{}user:{user}", self.shared.prefix)
    }

    fn expiry_key(&self) -> String {
        format!("{}expiry", self.shared.prefix)
    }

    /// The layout the sessions already under this store's prefix are in,
    /// judged from a few of them: [`Layout::FlaskSession`] means another
    /// application keeps Flask-Session's layout there, which this store does
    /// not read, and acting on it (say, revoking a session) would miss the
    /// session's data. `None` when there is nothing to judge from. For tools
    /// that are pointed at a prefix and must not act on the wrong layout.
    pub async fn sample_layout(&self) -> Result<Option<Layout>, StoreError> {
        self.shared.link.sample_layout(&self.shared.prefix).await
    }

    /// The key prefixes under which sessions are indexed on this server's
    /// database, in either layout: this store's own first if it holds any,
    /// up to 8 in all, from a `SCAN` of up to 100,000 keys. For tools that
    /// were given a prefix under which nothing is, to say where sessions
    /// are.
    pub async fn indexed_prefixes(&self) -> Result<Vec<String>, StoreError> {
        self.shared.link.indexed_prefixes(&self.shared.prefix).await
    }

    /// The metadata of the sessions `ids`, in one round trip. A session
    /// whose key holds another kind of value (`WRONGTYPE`) fails its own
    /// reply only, so one bad key does not fail the listing.
    async fn metadata(
        &self,
        ids: &[SessionId],
    ) -> Result<Vec<Listed<SessionInfoParts>>, StoreError> {
        let mut pipe = ::redis::pipe();
        pipe.ignore_errors();
        for id in ids {
            pipe.cmd("HMGET")
                .arg(self.session_key(id))
                .arg(&[CREATED, EXPIRES, ABSOLUTE, USER]);
        }
        let rows: Vec<::redis::RedisResult<MetadataRow>> = self.shared.link.read_all(&pipe).await?;
        rows.into_iter()
            .map(|row| match row.map_err(failed) {
                Ok(row) => Ok(parse_metadata(row).unwrap_or_else(Listed::Unreadable)),
                Err(error @ StoreError::Corrupt(_)) => Ok(Listed::Unreadable(error)),
                Err(error) => Err(error),
            })
            .collect()
    }
}

/// The metadata fields of one session as read, all absent if it is gone.
/// Bytes, so that one record's field that is not UTF-8 fails that record,
/// not the whole reply.
type MetadataRow = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

/// A session as a listing reads it, in either layout.
enum Listed<T> {
    /// The session is gone.
    Gone,
    /// Its metadata cannot be read: left out of listings (loading counts
    /// such a session absent, and one bad record must not hide the others),
    /// but kept in its user's index, within reach of "log out everywhere".
    Unreadable(StoreError),
    Found(T),
}

impl<T> Listed<T> {
    /// The session found, if any; a gone one's id goes to `stale`, to be
    /// pruned from its user's index, an unreadable one to `left_out`.
    fn found<'a>(
        self,
        id: &'a SessionId,
        stale: &mut Vec<&'a SessionId>,
        left_out: &mut LeftOut<'a>,
    ) -> Option<T> {
        match self {
            Self::Found(found) => Some(found),
            Self::Unreadable(error) => {
                left_out.after_listed.push((id, error));
                None
            }
            Self::Gone => {
                stale.push(id);
                None
            }
        }
    }
}

/// The sessions a listing page left out as unreadable, logged once each:
/// those after the page's last listed session are read again by the
/// caller's next page (which starts after that one), so they are logged by
/// the page that lists nothing after them (the last one, for a caller that
/// pages until an empty page).
#[derive(Default)]
struct LeftOut<'a> {
    after_listed: Vec<(&'a SessionId, StoreError)>,
}

impl LeftOut<'_> {
    /// A session was listed after those left out so far: they are this
    /// page's to log.
    fn listed(&mut self) {
        for (id, error) in self.after_listed.drain(..) {
            tracing::error!(
                session = %id.fingerprint(),
                %error,
                "a stored session is unreadable; left out of the listing"
            );
        }
    }

    fn finish(mut self, listed_any: bool) {
        if !listed_any {
            self.listed();
        }
    }
}

/// A metadata field read as bytes (so that one record's field that is not
/// UTF-8 fails that record, not the whole reply), as text.
fn field_text(field: Vec<u8>, name: &str) -> Result<String, StoreError> {
    String::from_utf8(field)
        .map_err(|_| StoreError::corrupt(format!("a stored session's {name} is not text")))
}

/// A metadata field read as bytes, as a time.
fn field_time(field: Vec<u8>, name: &str) -> Result<u64, StoreError> {
    parse_time(&field_text(field, name)?, name)
}

struct SessionInfoParts {
    created_at: u64,
    expires_at: u64,
    absolute_expires_at: Option<u64>,
    user_id: Option<String>,
}

fn parse_metadata(
    (created, expires, absolute, user): MetadataRow,
) -> Result<Listed<SessionInfoParts>, StoreError> {
    let (Some(created), Some(expires)) = (created, expires) else {
        return Ok(Listed::Gone);
    };
    Ok(Listed::Found(SessionInfoParts {
        created_at: field_time(created, "created_at")?,
        expires_at: field_time(expires, "expires_at")?,
        absolute_expires_at: absolute
            .map(|at| field_time(at, "absolute_expires_at"))
            .transpose()?,
        user_id: user.map(|user| field_text(user, "user")).transpose()?,
    }))
}

impl SessionInfoParts {
    fn is_live(&self, now: u64) -> bool {
        now < super::deadline(self.expires_at, self.absolute_expires_at)
    }
}

/// Whether the connection was lost, so that the manager reconnects.
fn is_dropped(error: &RedisError) -> bool {
    error.is_unrecoverable_error() || error.is_connection_dropped()
}

/// A failed command: unreadable replies, and keys holding another kind of
/// value than this store writes there (set by hand or by another program),
/// are corrupt data; the rest is the server being unavailable.
fn failed(error: RedisError) -> StoreError {
    match error.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => StoreError::corrupt(
            Reason::caused_by(format!("unexpected reply from Redis: {error}"), error),
        ),
        _ if is_wrong_type(&error) => StoreError::corrupt(Reason::caused_by(
            format!(
                "a key under the sessions' prefix holds another kind of value than tessera \
                 stores there: {error}"
            ),
            error,
        )),
        _ if is_unauthenticated(&error) => StoreError::unavailable(NotAuthenticated(error)),
        _ if refused_as_unsupported(&error) => StoreError::config(Reason::caused_by(
            format!(
                "Redis refused a command tessera sends: tessera needs Redis 6.0 or later, with \
                 its commands neither renamed nor disabled, at one endpoint (a Redis Cluster \
                 only through a cluster-aware proxy): {error}"
            ),
            error,
        )),
        _ => StoreError::unavailable(error),
    }
}

/// Whether Redis refused `error`'s command as one it does not know or
/// cannot parse (`SET … KEEPTTL` and `SCAN … TYPE` before Redis 6.0, a
/// command renamed or disabled by the operator), or sent it to another node
/// of a cluster (`MOVED`, `ASK`, `CROSSSLOT`): the same on every try, a
/// deployment to change (500), not an outage to wait out (503).
fn refused_as_unsupported(error: &RedisError) -> bool {
    match error.code() {
        Some("MOVED" | "ASK" | "CROSSSLOT") => true,
        Some("ERR") => error.detail().is_some_and(|detail| {
            let detail = detail.to_ascii_lowercase();
            ["syntax error", "unknown command", "unknown redis command"]
                .iter()
                .any(|refusal| detail.contains(refusal))
        }),
        _ => false,
    }
}

/// Redis refused a client that has not authenticated, where the URL gave
/// no password (or none for the user that needs one).
#[derive(Debug, thiserror::Error)]
#[error(
    "NOAUTH: the Redis server requires a password, and the store URL gives none \
     (redis://user:password@host:port/db, or redis://:password@host:port/db for the \
     default user): {0}"
)]
struct NotAuthenticated(#[source] RedisError);

/// Whether Redis refused `error`'s command for want of authentication:
/// `NOAUTH`, or, for a command of more than a few arguments (the store's
/// scripts), Redis' "Protocol error: unauthenticated multibulk length",
/// which says nothing of a password.
fn is_unauthenticated(error: &RedisError) -> bool {
    error.code() == Some("NOAUTH") || error.to_string().contains("unauthenticated")
}

/// Whether `error` is Redis refusing a command to this user (`NOPERM`,
/// its ACL).
fn refused_by_acl(error: &(dyn std::error::Error + 'static)) -> bool {
    error
        .downcast_ref::<RedisError>()
        .is_some_and(|error| error.code() == Some("NOPERM"))
}

/// Redis' `WRONGTYPE`, of a command or of one in a pipeline (which reports
/// no code of its own).
fn is_wrong_type(error: &RedisError) -> bool {
    error.code() == Some("WRONGTYPE")
        || error
            .clone()
            .into_server_errors()
            .is_some_and(|errors| errors.iter().any(|(_, error)| error.code() == "WRONGTYPE"))
}

/// A time as stored: exact in a double.
pub(super) fn clamp(seconds: u64) -> u64 {
    seconds.min(MAX_TIME)
}

pub(super) fn parse_time(text: &str, field: &str) -> Result<u64, StoreError> {
    text.parse().map_err(|_| {
        StoreError::corrupt(format!(
            "the {field} of a stored session is not a time: {text:?}"
        ))
    })
}

fn parse_value(key: &str, text: &str) -> Result<Value, StoreError> {
    tagged::from_str(text).map_err(|error| {
        StoreError::corrupt(Reason::caused_by(
            format!("the value under {key:?}: {error}"),
            error,
        ))
    })
}

/// The hash field of session key `key`: itself, or behind one more NUL if it
/// starts with NUL, so that it cannot be taken for metadata.
fn field_of(key: &str) -> Cow<'_, str> {
    if key.starts_with('\0') {
        Cow::Owned(format!("\0{key}"))
    } else {
        Cow::Borrowed(key)
    }
}

/// The session key in hash field `field`, or `None` for metadata.
fn key_of(field: &str) -> Option<&str> {
    match field.strip_prefix('\0') {
        Some(escaped) if escaped.starts_with('\0') => Some(escaped),
        Some(_) => None,
        None => Some(field),
    }
}

/// A hash as `HGETALL` answers it: its fields with their values, in no
/// particular order. Collected into a vector of the reply's length: a
/// `HashMap` collected from the reply grows from empty, three allocations
/// on every load where this takes one.
struct HashFields(Vec<(String, String)>);

impl FromRedisValue for HashFields {
    fn from_redis_value(mut value: ::redis::Value) -> Result<Self, ::redis::ParsingError> {
        // RESP3 may attach attributes to a reply: the hash is its data.
        while let ::redis::Value::Attribute { data, .. } = value {
            value = *data;
        }
        if value == ::redis::Value::Nil {
            return Ok(Self(Vec::new()));
        }
        // The reply's text is left out: it is a session's data.
        let pairs = value
            .into_map_iter()
            .map_err(|_| String::from("a hash's fields and values were expected"))?;
        let mut fields = Vec::with_capacity(pairs.size_hint().0);
        for (field, text) in pairs {
            fields.push((
                String::from_redis_value(field)?,
                String::from_redis_value(text)?,
            ));
        }
        Ok(Self(fields))
    }
}

/// A session's hash, as read by `HGETALL`, as a record.
fn record_from_hash(HashFields(mut hash): HashFields) -> Result<Record, StoreError> {
    let mut take = |name: &str| {
        let at = hash.iter().position(|(field, _)| field == name)?;
        Some(hash.swap_remove(at).1)
    };
    let (created, expires, absolute, user) =
        (take(CREATED), take(EXPIRES), take(ABSOLUTE), take(USER));
    let missing = |field: &str| StoreError::corrupt(format!("a stored session has no {field}"));
    // A hash's fields come in no particular order: collected, then sorted once.
    let data = hash
        .iter()
        .filter_map(|(field, text)| Some((key_of(field)?, text)))
        .map(|(key, text)| Ok((key, parse_value(key, text)?)))
        .collect::<Result<Map, StoreError>>()?;
    Ok(Record {
        data,
        user_id: user,
        created_at: parse_time(&created.ok_or_else(|| missing("created_at"))?, "created_at")?,
        expires_at: parse_time(&expires.ok_or_else(|| missing("expires_at"))?, "expires_at")?,
        absolute_expires_at: absolute
            .map(|at| parse_time(&at, "absolute_expires_at"))
            .transpose()?,
    })
}

/// What the increment and append scripts answer: a plain value in the
/// common cases, a table only when the stored value is refused.
enum ScriptReply {
    /// A code, or append's new length.
    Number(i64),
    /// Increment's value before ('' for none).
    Text(String),
    /// `{code, current}`: the stored value, for the error.
    Refused(i64, Option<String>),
}

impl FromRedisValue for ScriptReply {
    fn from_redis_value(value: ::redis::Value) -> Result<Self, ::redis::ParsingError> {
        match value {
            ::redis::Value::Int(number) => Ok(Self::Number(number)),
            ::redis::Value::Array(_) => <(i64, Option<String>)>::from_redis_value(value)
                .map(|(code, current)| Self::Refused(code, current)),
            other => String::from_redis_value(other).map(Self::Text),
        }
    }
}

/// The error for a value an atomic operation cannot work on, named from the
/// stored text.
fn wrong_type(key: &str, text: Option<String>, expected: &'static str) -> StoreError {
    let Some(text) = text else {
        return StoreError::corrupt(format!("no value under {key:?} to report"));
    };
    match parse_value(key, &text) {
        Ok(value) => StoreError::WrongType {
            key: key.to_owned(),
            expected,
            found: value.type_name(),
        },
        Err(error) => error,
    }
}

impl Combining for RedisStore {
    /// Concurrent commands share the connection's writes and reads.
    const BATCHING: Batching = Batching::PerTurn;

    fn combiner(&self) -> &Combiner {
        &self.shared.combiner
    }

    fn handle(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }

    async fn load_alone(&self, id: &SessionId, now: u64) -> Result<Option<Record>, StoreError> {
        // One command, so one consistent snapshot of the session.
        let hash: HashFields = self
            .shared
            .link
            .read(::redis::cmd("HGETALL").arg(self.session_key(id)))
            .await?;
        if hash.0.is_empty() {
            return Ok(None);
        }
        let record = record_from_hash(hash)?;
        Ok(record.is_live(clamp(now)).then_some(record))
    }

    async fn increment_alone(
        &self,
        id: &SessionId,
        key: &str,
        by: i64,
        now: u64,
    ) -> Result<Option<i64>, StoreError> {
        let mut call = ScriptCall::new(&SCRIPTS.increment, &[&self.session_key(id)]);
        call.arg(clamp(now)).arg(&*field_of(key)).arg(by);
        match self.shared.link.write(&call).await? {
            ScriptReply::Number(0) => Ok(None),
            // HINCRBY took the text as an i64 and did not overflow, so the
            // same sum here is what it stored.
            ScriptReply::Text(before) => {
                let before = if before.is_empty() {
                    0
                } else {
                    before.parse::<i64>().map_err(|_| {
                        StoreError::corrupt(format!("incrementing {key:?} found {before:?}"))
                    })?
                };
                before
                    .checked_add(by)
                    .map(Some)
                    .ok_or_else(|| super::increment_overflow(key))
            }
            ScriptReply::Number(2) => Err(super::increment_overflow(key)),
            ScriptReply::Refused(3, Some(text)) => {
                // Whatever Redis refused, the shared rule names the type; if
                // it calls the value an integer, HINCRBY and tessera disagree
                // on the text, which only a foreign writer can cause.
                let value = parse_value(key, &text)?;
                match integer_for_increment(key, Some(&value)) {
                    Err(error) => Err(error),
                    // Blanks around it, say: the data's problem, answered
                    // as a wrong type is (409), not the store's (500).
                    Ok(_) => Err(StoreError::WrongType {
                        key: key.to_owned(),
                        expected: "an integer",
                        found: "an integer written in another form than tessera writes \
                                (with blanks, say), which Redis cannot add to",
                    }),
                }
            }
            ScriptReply::Number(code) | ScriptReply::Refused(code, _) => Err(StoreError::corrupt(
                format!("unexpected reply {code} from the increment script"),
            )),
        }
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisStore {
    async fn setup_warnings(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .sample_layout()
            .await?
            .and_then(|layout| layout_warning(&self.shared.prefix, Layout::Tessera, layout))
            .into_iter()
            .collect())
    }

    async fn load(&self, id: &SessionId, now: u64) -> Result<Option<Record>, StoreError> {
        combine::load(self, id, now).await
    }

    async fn create(&self, id: &SessionId, record: &Record) -> Result<bool, StoreError> {
        let mut call = ScriptCall::new(
            &SCRIPTS.create,
            &[&self.session_key(id), &self.expiry_key()],
        );
        call.arg(&self.shared.prefix)
            .arg(id.as_str())
            .arg(clamp(record.created_at))
            .arg(clamp(record.expires_at))
            .arg(
                record
                    .absolute_expires_at
                    .map_or(String::new(), |at| clamp(at).to_string()),
            )
            .arg(if record.user_id.is_some() { "1" } else { "0" })
            .arg(record.user_id.as_deref().unwrap_or(""));
        for (key, value) in &record.data {
            call.arg(&*field_of(key)).arg(tagged::to_string(value));
        }
        let created: i64 = self.shared.link.write(&call).await?;
        Ok(created == 1)
    }

    async fn update(
        &self,
        id: &SessionId,
        changes: &Changes,
        now: u64,
    ) -> Result<bool, StoreError> {
        let now = clamp(now);
        if changes.is_empty() {
            // Nothing to write: a read answers whether the session is live.
            let row: (Option<String>, Option<String>) = self
                .shared
                .link
                .read(
                    ::redis::cmd("HMGET")
                        .arg(self.session_key(id))
                        .arg(&[EXPIRES, ABSOLUTE]),
                )
                .await?;
            let (Some(expires), absolute) = row else {
                return Ok(false);
            };
            let expires_at = parse_time(&expires, "expires_at")?;
            let absolute_expires_at = absolute
                .map(|at| parse_time(&at, "absolute_expires_at"))
                .transpose()?;
            return Ok(now < super::deadline(expires_at, absolute_expires_at));
        }
        Ok(self.run_update(id, changes, now, false).await? != UpdateOutcome::Vanished)
    }

    async fn update_or_delete_if_empty(
        &self,
        id: &SessionId,
        changes: &Changes,
        now: u64,
    ) -> Result<UpdateOutcome, StoreError> {
        self.run_update(id, changes, clamp(now), true).await
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let mut call = ScriptCall::new(
            &SCRIPTS.delete,
            &[&self.session_key(id), &self.expiry_key()],
        );
        call.arg(&self.shared.prefix).arg(id.as_str());
        let deleted: i64 = self.shared.link.write(&call).await?;
        Ok(deleted == 1)
    }

    async fn cycle_id(
        &self,
        old: &SessionId,
        new: &SessionId,
        now: u64,
    ) -> Result<bool, StoreError> {
        let mut call = ScriptCall::new(
            &SCRIPTS.cycle,
            &[
                &self.session_key(old),
                &self.session_key(new),
                &self.expiry_key(),
            ],
        );
        call.arg(&self.shared.prefix)
            .arg(old.as_str())
            .arg(new.as_str())
            .arg(clamp(now));
        let cycled: i64 = self.shared.link.write(&call).await?;
        Ok(cycled == 1)
    }

    async fn increment(
        &self,
        id: &SessionId,
        key: &str,
        by: i64,
        now: u64,
    ) -> Result<Option<i64>, StoreError> {
        combine::increment(self, id, key, by, now).await
    }

    async fn append(
        &self,
        id: &SessionId,
        key: &str,
        value: &Value,
        now: u64,
    ) -> Result<Option<usize>, StoreError> {
        let mut call = ScriptCall::new(&SCRIPTS.append, &[&self.session_key(id)]);
        call.arg(clamp(now))
            .arg(&*field_of(key))
            .arg(tagged::to_string(value));
        match self.shared.link.write(&call).await? {
            ScriptReply::Number(0) => Ok(None),
            ScriptReply::Number(length) => usize::try_from(length).map(Some).map_err(|_| {
                StoreError::corrupt(format!("appending to {key:?} reported {length}"))
            }),
            ScriptReply::Refused(3, text) => Err(wrong_type(key, text, "a list")),
            ScriptReply::Refused(4, text) => Err(StoreError::corrupt(format!(
                "the list under {key:?} is not readable JSON: {}",
                text.unwrap_or_default()
            ))),
            ScriptReply::Refused(code, _) => Err(StoreError::corrupt(format!(
                "unexpected reply {code} from the append script"
            ))),
            ScriptReply::Text(text) => Err(StoreError::corrupt(format!(
                "unexpected reply {text:?} from the append script"
            ))),
        }
    }

    async fn list(
        &self,
        user_id: Option<&str>,
        after: Option<&SessionId>,
        limit: usize,
        now: u64,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = clamp(now);
        // Every candidate id, then sorted here: neither a set nor the expiry
        // index is in id order.
        let read_all = match user_id {
            Some(user) => ::redis::cmd("SMEMBERS").arg(self.user_key(user)).clone(),
            None => ::redis::cmd("ZRANGEBYSCORE")
                .arg(self.expiry_key())
                .arg(format!("({now}"))
                .arg("+inf")
                .clone(),
        };
        let (ids, start) = self
            .shared
            .listing
            .ids_after(user_id, after, self.shared.link.read_ids(&read_all))
            .await?;

        let mut found = Vec::new();
        let mut stale = Vec::new();
        let mut left_out = LeftOut::default();
        let mut rest = &ids[start..];
        while found.len() < limit && !rest.is_empty() {
            let (chunk, tail) =
                rest.split_at((limit - found.len()).min(LIST_FETCH).min(rest.len()));
            rest = tail;
            for (id, meta) in chunk.iter().zip(self.metadata(chunk).await?) {
                let Some(parts) = meta.found(id, &mut stale, &mut left_out) else {
                    continue;
                };
                if user_id.is_some() && parts.user_id.as_deref() != user_id {
                    stale.push(id);
                    continue;
                }
                if parts.is_live(now) {
                    left_out.listed();
                    found.push(SessionInfo {
                        id: id.clone(),
                        user_id: parts.user_id,
                        created_at: parts.created_at,
                        expires_at: parts.expires_at,
                        absolute_expires_at: parts.absolute_expires_at,
                    });
                }
            }
        }
        left_out.finish(!found.is_empty());
        if let (Some(user), false) = (user_id, stale.is_empty()) {
            // Entries of sessions Redis dropped; the sweeper cleans the
            // expiry index, this is where users' sets get cleaned. Best
            // effort: the listing is right either way.
            let mut call = ScriptCall::new(&SCRIPTS.prune_user, &[&self.user_key(user)]);
            call.arg(&self.shared.prefix).arg(user);
            for id in stale {
                call.arg(id.as_str());
            }
            if let Err(error) = self.shared.link.write::<i64>(&call).await {
                tracing::warn!(%error, "could not prune a user's Redis session index");
            }
        }
        Ok(found)
    }

    async fn delete_user(&self, user_id: &str) -> Result<u64, StoreError> {
        delete_user_in_batches(
            &self.shared.link,
            &SCRIPTS.delete_user,
            self.user_key(user_id),
            self.expiry_key(),
            &self.shared.prefix,
            user_id,
        )
        .await
    }

    async fn purge_expired(&self, now: u64, batch: usize) -> Result<u64, StoreError> {
        let (link, prefix) = (&self.shared.link, &self.shared.prefix);
        purge_with(link, &SCRIPTS.purge, &self.expiry_key(), prefix, now, batch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000_000;
    const HOUR: u64 = 3600;

    /// Every helper a script's source calls is defined in it (Redis would
    /// refuse the script at its first call otherwise), and none it does not
    /// call.
    pub(super) fn assert_scripts_define_exactly_the_helpers_they_call(
        constants: &[&str],
        helpers: &[&[LuaHelper]],
        bodies: &[&str],
    ) {
        for body in bodies {
            let source = lua_source(constants, helpers, body);
            for helper in helpers.iter().flat_map(|group| group.iter()) {
                let definition = format!("local function {}(", helper.name);
                let defined = source.contains(&definition);
                let called = calls(&source.replace(&definition, ""), helper.name);
                assert_eq!(defined, called, "{} in\n{source}", helper.name);
            }
        }
    }

    #[test]
    fn scripts_carry_only_the_helpers_they_call() {
        assert_scripts_define_exactly_the_helpers_they_call(
            &[LUA_CONSTANTS],
            &[LUA_HELPERS],
            &[
                CREATE,
                UPDATE,
                DELETE,
                CYCLE,
                INCREMENT,
                APPEND,
                PURGE,
                DELETE_USER,
                PRUNE_USER,
            ],
        );
        // The script run on every counted request: one helper.
        let increment = lua_source(&[LUA_CONSTANTS], &[LUA_HELPERS], INCREMENT);
        assert_eq!(increment.matches("local function").count(), 1);
        assert!(increment.contains("local function live("));
        let update = lua_source(&[LUA_CONSTANTS], &[LUA_HELPERS], UPDATE);
        for helper in [
            "live",
            "deadline",
            "ttl_ms",
            "extend",
            "user_key",
            "call_chunked",
            "is_meta",
        ] {
            assert!(
                update.contains(&format!("local function {helper}(")),
                "{helper}"
            );
        }
    }

    #[test]
    fn a_call_is_told_from_a_longer_name() {
        assert!(calls("if live(a) then", "live"));
        assert!(calls("x=live(a)", "live"));
        assert!(!calls("if is_live(a) then", "live"));
        assert!(!calls("os.times(a)", "times"));
        assert!(!calls("local live = 1", "live"));
    }

    /// The test server's URL; fails, rather than skips, when none was started.
    fn server_url() -> String {
        std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| {
            panic!(
                "TESSERA_TEST_REDIS_URL is not set: start the servers with \
                 `eval \"$(scripts/services.sh start)\"` or run scripts/test.sh"
            )
        })
    }

    /// A store under a prefix of its own, so tests running at once never
    /// see each other's keys (they expire, the server is throwaway).
    fn test_store() -> RedisStore {
        RedisStore::new(&server_url())
            .expect("a Redis URL")
            .with_prefix(format!("unit-{}:", SessionId::generate().fingerprint()))
    }

    fn record(data: Map, user: Option<&str>) -> Record {
        Record {
            data,
            user_id: user.map(str::to_owned),
            created_at: NOW - 60,
            expires_at: NOW + HOUR,
            absolute_expires_at: None,
        }
    }

    async fn create(store: &RedisStore, record: &Record) -> SessionId {
        let id = SessionId::generate();
        assert!(store.create(&id, record).await.expect("create"));
        id
    }

    /// Runs a raw command on the store's own connection.
    async fn raw<T: FromRedisValue>(store: &RedisStore, cmd: &Cmd) -> T {
        let mut conn = store.shared.link.connection().await.expect("connect");
        cmd.query_async(&mut conn).await.expect("command")
    }

    /// Commands a server refuses on every try, as one older than 6.0 does
    /// `SET … KEEPTTL` (Flask-Session's layout) and `SCAN … TYPE`, or one
    /// whose operator renamed a command: a configuration error (500), not
    /// an outage (503 with `Retry-After`, which clients retry for ever).
    /// The refusals are the real server's, of commands this one refuses
    /// too, directly and from a script.
    #[tokio::test]
    async fn commands_the_server_refuses_for_good_are_a_configuration_error() {
        let store = test_store();
        let mut conn = store.shared.link.connection().await.expect("connect");
        let key = format!("{}refused", store.shared.prefix);
        let refused = [
            ::redis::cmd("SET")
                .arg(&key)
                .arg("v")
                .arg("KEEPTTL")
                .arg("EX")
                .arg(10)
                .clone(),
            ::redis::cmd("NOSUCHCOMMAND").arg(&key).clone(),
            ::redis::cmd("EVAL")
                .arg("return redis.call('SET', KEYS[1], 'v', 'KEEPTTL', 'EX', 10)")
                .arg(1)
                .arg(&key)
                .clone(),
            ::redis::cmd("EVAL")
                .arg("return redis.call('NOSUCHCOMMAND', KEYS[1])")
                .arg(1)
                .arg(&key)
                .clone(),
        ];
        for command in refused {
            let error = command
                .query_async::<::redis::Value>(&mut conn)
                .await
                .expect_err("refused");
            let failure = failed(error);
            assert!(matches!(failure, StoreError::Config(_)), "{failure:?}");
            assert!(failure.to_string().contains("Redis 6.0"), "{failure}");
        }
        // Refusals of the moment stay outages.
        let error = ::redis::cmd("EVAL")
            .arg("return redis.error_reply('BUSY busy for now')")
            .arg(0)
            .query_async::<::redis::Value>(&mut conn)
            .await
            .expect_err("refused");
        assert!(failed(error).is_outage());
    }

    /// A server that lost the scripts (restarted, or `SCRIPT FLUSH`) is
    /// given each again by the first call that finds it missing, and that
    /// call is answered as usual.
    #[tokio::test]
    async fn a_script_the_server_lost_is_loaded_again() {
        let store = test_store();
        let id = create(&store, &record(Map::new(), None)).await;
        let _: () = raw(&store, ::redis::cmd("SCRIPT").arg("FLUSH")).await;
        let counted = store.increment(&id, "n", 2, NOW).await.expect("increment");
        assert_eq!(counted, Some(2));
        let _: () = raw(&store, ::redis::cmd("SCRIPT").arg("FLUSH")).await;
        assert!(store.delete(&id).await.expect("delete"));
        assert!(store.load(&id, NOW).await.expect("load").is_none());
    }

    /// A task serving increments queued behind one holds the store until it
    /// has sent its answers, so a caller that consumed the store with a
    /// builder right after its concurrent increments were answered could
    /// find the state still shared (the builder then panicked). It now
    /// configures a copy of its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_builder_right_after_concurrent_increments_configures_a_copy() {
        let mut store = test_store();
        let prefix = store.prefix().to_owned();
        let id = create(&store, &record(Map::new(), None)).await;
        for round in 0..50_i64 {
            combine::three_increments_at_once(&store, &id, "n", NOW, 3 * round).await;
            let connections = usize::try_from(1 + round % 3).expect("small");
            store = store
                .with_prefix(prefix.clone())
                .with_connections(connections);
        }
        assert_eq!(store.connections(), 2);

        let held = store.handle();
        let store = store.with_prefix("elsewhere:").with_connections(2);
        assert_eq!((store.prefix(), store.connections()), ("elsewhere:", 2));
        assert_eq!((held.prefix(), held.connections()), (prefix.as_str(), 2));
        let held_answer = held.increment(&id, "n", 1, NOW).await.expect("increment");
        assert_eq!(held_answer, Some(151));
        let copy_answer = store.increment(&id, "n", 1, NOW).await.expect("increment");
        assert_eq!(copy_answer, None, "the copy looks under its own prefix");
    }

    /// A request boxes the futures of `load` and `increment`. A box of more
    /// than 1,000 bytes is a large chunk for glibc, whose `malloc` then
    /// first consolidates every small free chunk: with the combining's
    /// futures at 2.5–2.8 KB, 3% of the server's time under the HTTP
    /// benchmark's Redis target. (456 and 656 bytes since connecting, once
    /// per connection, is boxed; 864 and 1,000 before. Flask-Session's
    /// layout's `load` went from 1,048 to 760. Taking turns in the
    /// combining, `Batching::PerTurn`, brought them to 512, 808 and 816.)
    #[test]
    fn the_boxed_load_and_increment_stay_small_chunks_for_glibc() {
        let store = RedisStore::new("redis://127.0.0.1:1/").expect("a Redis URL");
        let flask_layout = FlaskSessionRedisStore::new(
            "redis://127.0.0.1:1/",
            crate::store::flask_format::SerializationFormat::default(),
        )
        .expect("a Redis URL");
        let id = SessionId::generate();
        let load = store.load(&id, NOW);
        let increment = store.increment(&id, "n", 1, NOW);
        let flask_layout_load = flask_layout.load(&id, NOW);
        for (name, size) in [
            ("load", std::mem::size_of_val(&*load)),
            ("increment", std::mem::size_of_val(&*increment)),
            (
                "Flask-Session's layout's load",
                std::mem::size_of_val(&*flask_layout_load),
            ),
        ] {
            assert!(
                size <= crate::store::LARGEST_SMALL_MALLOC_REQUEST,
                "{name}'s future takes {size} bytes"
            );
        }
    }

    /// `HGETALL`'s reply in each form it takes: RESP2's flat array,
    /// RESP3's map (with attributes or without), nothing; anything else is
    /// an error that does not show the reply.
    #[test]
    fn a_hash_reply_is_read_in_each_form() {
        use ::redis::Value as Reply;
        let text = |text: &str| Reply::BulkString(text.as_bytes().to_vec());
        let pairs = || {
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "2".to_owned()),
            ]
        };
        let flat = Reply::Array(vec![text("a"), text("1"), text("b"), text("2")]);
        let map = || Reply::Map(vec![(text("a"), text("1")), (text("b"), text("2"))]);
        let attributed = Reply::Attribute {
            data: Box::new(map()),
            attributes: vec![(text("ttl"), Reply::Int(3))],
        };
        for reply in [flat, map(), attributed] {
            let HashFields(read) = HashFields::from_redis_value(reply).expect("a hash");
            assert_eq!(read, pairs());
        }
        let HashFields(none) = HashFields::from_redis_value(Reply::Nil).expect("nothing");
        assert!(none.is_empty());
        let odd = Reply::Array(vec![text("a"), text("secret")]);
        let odd = Reply::Array(vec![odd, text("b"), text("2")]);
        let error = HashFields::from_redis_value(odd).err().expect("refused");
        assert!(!error.to_string().contains("secret"), "{error}");
    }

    /// A load reads the session's hash as RESP2's flat array and as RESP3's
    /// map alike, and a session that is not there as nothing.
    #[tokio::test]
    async fn a_load_reads_the_hash_in_either_protocol() {
        let prefix = format!("unit-{}:", SessionId::generate().fingerprint());
        let data = Map::from([
            ("_permanent".to_owned(), Value::from(true)),
            ("cart".to_owned(), Value::List(vec![Value::from("apple")])),
            ("visits".to_owned(), Value::from(3)),
        ]);
        let written = RedisStore::new(&server_url())
            .expect("a Redis URL")
            .with_prefix(prefix.clone());
        let id = create(&written, &record(data, Some("ann"))).await;
        let separator = if server_url().contains('?') { '&' } else { '?' };
        for protocol in ["resp2", "resp3"] {
            let url = format!("{}{separator}protocol={protocol}", server_url());
            let store = RedisStore::new(&url)
                .expect("a Redis URL")
                .with_prefix(prefix.clone());
            let loaded = store.load(&id, NOW).await.expect("load").expect("live");
            assert_eq!(
                loaded,
                record(loaded.data.clone(), Some("ann")),
                "{protocol}"
            );
            assert_eq!(
                loaded.data.get("visits"),
                Some(&Value::from(3)),
                "{protocol}"
            );
            assert_eq!(
                loaded.data.get("cart"),
                Some(&Value::List(vec![Value::from("apple")])),
                "{protocol}"
            );
            assert_eq!(loaded.data.len(), 3, "{protocol}");
            let absent = store.load(&SessionId::generate(), NOW).await.expect("load");
            assert!(absent.is_none(), "{protocol}");
        }
    }

    /// The flash messages' list edit trims the stored list's text in time
    /// linear in its blanks: with a pattern that tried its tail again at
    /// each blank, a message of 60,000 spaces held Redis (every client of
    /// it) for 13 s. (A bound far above the linear time, far below that.)
    #[tokio::test]
    async fn a_flash_message_of_blanks_is_edited_in_linear_time() {
        let store = test_store();
        let blanks = Value::tuple(["message".into(), " ".repeat(60_000).into()]);
        let stored = std::iter::once(("_flashes".to_owned(), Value::List(vec![blanks.clone()])));
        let id = create(&store, &record(stored.collect(), None)).await;
        let next = Value::tuple(["message".into(), "next".into()]);
        let edit = Changes {
            list_edit: Some(crate::store::ListEdit {
                key: "_flashes".to_owned(),
                taken: vec![blanks],
                added: vec![next.clone()],
            }),
            ..Changes::default()
        };
        let started = std::time::Instant::now();
        assert!(store.update(&id, &edit, NOW).await.expect("update"));
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(3), "{took:?}");
        let loaded = store.load(&id, NOW).await.expect("load").expect("live");
        assert_eq!(loaded.data.get("_flashes"), Some(&Value::List(vec![next])));
    }

    /// Appending to a long list does not scan it again (a scan holds every
    /// client of Redis, and grew with each item a visitor added): its item
    /// count is kept beside it, and dropped by any other write of the
    /// field, even one of the same byte length.
    #[tokio::test]
    async fn a_long_lists_count_is_kept_and_dropped_by_other_writes() {
        let store = test_store();
        let id = create(&store, &record(Map::new(), None)).await;
        let item = Value::from("x".repeat(18));
        for expected in 1..=300 {
            let length = store.append(&id, "cart", &item, NOW).await.expect("append");
            assert_eq!(length, Some(expected));
        }
        let key = store.session_key(&id);
        let kept: Option<String> =
            raw(&store, ::redis::cmd("HGET").arg(&key).arg("\0length:cart")).await;
        let text: String = raw(&store, ::redis::cmd("HGET").arg(&key).arg("cart")).await;
        assert_eq!(kept, Some(format!("300 {}", text.len())));

        // 299 items in as many bytes as the 300: two items become one string.
        let mut items = vec![item.clone(); 298];
        items.push(Value::from("y".repeat(39)));
        let same_length = Value::List(items);
        assert_eq!(tagged::to_string(&same_length).len(), text.len());
        let rewrite = Changes {
            set: std::iter::once(("cart".to_owned(), same_length)).collect(),
            ..Changes::default()
        };
        assert!(store.update(&id, &rewrite, NOW).await.expect("update"));
        let length = store.append(&id, "cart", &item, NOW).await.expect("append");
        assert_eq!(length, Some(300));
        let loaded = store.load(&id, NOW).await.expect("load").expect("live");
        assert_eq!(
            loaded.data.len(),
            1,
            "the count is no session key: {loaded:?}"
        );

        let clearing = Changes {
            cleared: true,
            ..Changes::default()
        };
        assert!(store.update(&id, &clearing, NOW).await.expect("update"));
        let fields: Vec<String> = raw(&store, ::redis::cmd("HKEYS").arg(&key)).await;
        assert!(
            fields.iter().all(|field| !field.starts_with("\0length")),
            "{fields:?}"
        );
        assert_eq!(
            store.append(&id, "cart", &item, NOW).await.expect("append"),
            Some(1)
        );
    }

    #[tokio::test]
    async fn a_session_is_one_hash_with_native_ttl_and_indexes() {
        let store = test_store();
        let mut data = Map::new();
        data.insert("n".to_owned(), Value::from(41));
        data.insert("t".to_owned(), Value::tuple([1.into(), "x".into()]));
        // Session keys that look like metadata stay session keys.
        data.insert("\0user".to_owned(), Value::from("not the owner"));
        data.insert("\0\0".to_owned(), Value::Null);
        let record = record(data, Some("alice"));
        let id = create(&store, &record).await;

        let key = format!("{}{{{}}}", store.prefix(), id.as_str());
        let mut hash: Vec<(String, String)> = raw(&store, ::redis::cmd("HGETALL").arg(&key)).await;
        hash.sort();
        let expected: Vec<(String, String)> = [
            ("\0\0\0", "null"),
            ("\0\0user", r#""not the owner""#),
            ("\0created", "999940"),
            ("\0expires", "1003600"),
            ("\0user", "alice"),
            ("n", "41"),
            ("t", r#"{" t":[1,"x"]}"#),
        ]
        .iter()
        .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(hash, expected);
        assert_eq!(
            store.load(&id, NOW).await.expect("load"),
            Some(record.clone())
        );

        // The TTL runs from `created_at` to the expiry: 3660 s.
        let ttl: i64 = raw(&store, ::redis::cmd("PTTL").arg(&key)).await;
        assert!((3_600_000..=3_660_000).contains(&ttl), "{ttl}");
        let user_key = format!("{}user:alice", store.prefix());
        let user_ttl: i64 = raw(&store, ::redis::cmd("PTTL").arg(&user_key)).await;
        assert!(user_ttl >= ttl - 1000, "{user_ttl} < {ttl}");
        let members: Vec<String> = raw(&store, ::redis::cmd("SMEMBERS").arg(&user_key)).await;
        assert_eq!(members, [id.as_str()]);
        let expiry_key = format!("{}expiry", store.prefix());
        let score: u64 = raw(
            &store,
            ::redis::cmd("ZSCORE").arg(&expiry_key).arg(id.as_str()),
        )
        .await;
        assert_eq!(score, NOW + HOUR);

        // Sliding the expiry moves the TTL and the index; the absolute
        // expiry caps both.
        let changes = Changes {
            expires_at: Some(NOW + 2 * HOUR),
            ..Changes::default()
        };
        assert!(store.update(&id, &changes, NOW).await.expect("update"));
        let ttl: i64 = raw(&store, ::redis::cmd("PTTL").arg(&key)).await;
        assert!((7_190_000..=7_200_000).contains(&ttl), "{ttl}");
        let score: u64 = raw(
            &store,
            ::redis::cmd("ZSCORE").arg(&expiry_key).arg(id.as_str()),
        )
        .await;
        assert_eq!(score, NOW + 2 * HOUR);
        let capped = Record {
            absolute_expires_at: Some(NOW + 100),
            ..record.clone()
        };
        let capped_id = create(&store, &capped).await;
        let capped_key = format!("{}{{{}}}", store.prefix(), capped_id.as_str());
        let ttl: i64 = raw(&store, ::redis::cmd("PTTL").arg(&capped_key)).await;
        assert!((150_000..=160_000).contains(&ttl), "{ttl}");

        // Changing the owner moves the id between the users' sets.
        let changes = Changes {
            user_id: Some(Some("bob".to_owned())),
            ..Changes::default()
        };
        assert!(store.update(&id, &changes, NOW).await.expect("update"));
        let members: Vec<String> = raw(&store, ::redis::cmd("SMEMBERS").arg(&user_key)).await;
        assert_eq!(members, [capped_id.as_str()]);
        let bob: Vec<String> = raw(
            &store,
            ::redis::cmd("SMEMBERS").arg(format!("{}user:bob", store.prefix())),
        )
        .await;
        assert_eq!(bob, [id.as_str()]);

        // Deleting leaves nothing of the session behind.
        assert!(store.delete(&id).await.expect("delete"));
        let exists: i64 = raw(&store, ::redis::cmd("EXISTS").arg(&key)).await;
        assert_eq!(exists, 0);
        let score: Option<u64> = raw(
            &store,
            ::redis::cmd("ZSCORE").arg(&expiry_key).arg(id.as_str()),
        )
        .await;
        assert_eq!(score, None);
        assert_eq!(store.delete_user("bob").await.expect("delete_user"), 0);
    }

    #[tokio::test]
    async fn index_entries_of_sessions_redis_dropped_are_cleaned() {
        let store = test_store();
        let gone = create(&store, &record(Map::new(), Some("alice"))).await;
        let kept = create(&store, &record(Map::new(), Some("alice"))).await;
        // As if its TTL had run out.
        let _: i64 = raw(&store, ::redis::cmd("DEL").arg(store.session_key(&gone))).await;

        let listed = store
            .list(Some("alice"), None, 10, NOW)
            .await
            .expect("list");
        assert_eq!(listed.iter().map(|s| &s.id).collect::<Vec<_>>(), [&kept]);
        let members: Vec<String> = raw(
            &store,
            ::redis::cmd("SMEMBERS").arg(store.user_key("alice")),
        )
        .await;
        assert_eq!(members, [kept.as_str()], "listing pruned the set");

        // Purging after the expiry removes the dropped session's index entry
        // (counted) and the dead session itself.
        assert_eq!(store.purge_expired(NOW + HOUR, 10).await.expect("purge"), 2);
        let entries: i64 = raw(&store, ::redis::cmd("ZCARD").arg(store.expiry_key())).await;
        assert_eq!(entries, 0);
        let exists: i64 = raw(&store, ::redis::cmd("EXISTS").arg(store.user_key("alice"))).await;
        assert_eq!(exists, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_multi_threaded_runtime_shares_one_connection_unless_told() {
        let store = test_store();
        assert_eq!(store.connections(), 1);
        let client_id = ::redis::cmd("CLIENT").arg("ID").clone();
        // From tasks that may run on either worker thread.
        let mut tasks = tokio::task::JoinSet::new();
        let store = std::sync::Arc::new(store);
        for _ in 0..16 {
            let store = std::sync::Arc::clone(&store);
            let client_id = client_id.clone();
            tasks.spawn(async move { raw::<i64>(&store, &client_id).await });
        }
        let mut ids = tasks.join_all().await;
        ids.dedup();
        assert_eq!(ids.len(), 1, "one connection: {ids:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn operations_take_turns_on_the_connections_set() {
        assert_eq!(test_store().with_connections(0).connections(), 1);

        let store = test_store().with_connections(3);
        assert!(
            !store.shared.link.is_connected(),
            "nothing connected before use"
        );
        let client_id = ::redis::cmd("CLIENT").arg("ID").clone();
        let mut ids = Vec::new();
        for _ in 0..6 {
            ids.push(raw::<i64>(&store, &client_id).await);
        }
        assert_eq!(ids[..3], ids[3..], "each connection in turn: {ids:?}");
        let mut distinct = ids[..3].to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 3, "three connections: {ids:?}");

        // Every connection sees what the others wrote.
        let id = create(&store, &record(Map::new(), None)).await;
        for by in 1..=6 {
            assert_eq!(
                store.increment(&id, "n", 1, NOW).await.expect("increment"),
                Some(by)
            );
            let loaded = store.load(&id, NOW).await.expect("load").expect("live");
            assert_eq!(loaded.data["n"], Value::from(by));
        }
    }

    #[tokio::test]
    async fn a_single_threaded_runtime_keeps_to_one_connection() {
        let store = test_store().with_connections(3);
        let client_id = ::redis::cmd("CLIENT").arg("ID").clone();
        let first: i64 = raw(&store, &client_id).await;
        for _ in 0..5 {
            assert_eq!(raw::<i64>(&store, &client_id).await, first);
        }
        let id = create(&store, &record(Map::new(), None)).await;
        assert_eq!(
            store.increment(&id, "n", 2, NOW).await.expect("increment"),
            Some(2)
        );
        assert_eq!(raw::<i64>(&store, &client_id).await, first);
    }

    /// actix-web's workers each run a single-threaded runtime; one whose
    /// handler blocks its thread must not stall the others' sessions, as it
    /// did when they shared the connection its runtime drives.
    #[test]
    fn a_thread_blocked_in_one_single_threaded_runtime_stalls_no_other() {
        let store = std::sync::Arc::new(test_store().with_connections(1));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let client_id = ::redis::cmd("CLIENT").arg("ID").clone();
        let (connected, blocked) = (
            std::sync::Arc::new(std::sync::Barrier::new(2)),
            Duration::from_secs(3),
        );
        let blocker = {
            let (store, connected, client_id) =
                (store.clone(), connected.clone(), client_id.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                let own: i64 = runtime.block_on(raw(&store, &client_id));
                connected.wait();
                // A handler that blocks its worker's thread.
                std::thread::sleep(blocked);
                own
            })
        };
        connected.wait();
        let started = Instant::now();
        let (own, loaded) = runtime.block_on(async {
            let id = create(&store, &record(Map::new(), None)).await;
            let own: i64 = raw(&store, &client_id).await;
            (own, store.load(&id, NOW).await)
        });
        let waited = started.elapsed();
        let blockers = blocker.join().expect("the blocked thread");
        assert!(matches!(loaded, Ok(Some(_))), "{loaded:?}");
        assert!(
            waited < blocked / 2,
            "waited {waited:?} for a blocked thread"
        );
        assert_ne!(own, blockers, "a connection of its own");
    }

    /// A reconnection whose `AUTH` Redis refuses (the password rotated on
    /// the server first, a user deleted and made again) fails the
    /// operations until Redis accepts it again, and no longer: redis-rs'
    /// manager answered its refusal from then on without connecting again,
    /// so the store stayed down until the application restarted.
    #[tokio::test]
    async fn works_again_once_a_refused_reconnection_is_accepted() {
        // RESP2's handshake (`AUTH`) and RESP3's (`HELLO … AUTH`), whose
        // refusals redis-rs reports differently.
        for protocol in ["", "?protocol=resp3"] {
            reconnects_once_accepted(protocol).await;
        }
    }

    async fn reconnects_once_accepted(protocol: &str) {
        let admin = RedisStore::new(&server_url()).expect("a Redis URL");
        let user = format!("reconnect-test-{}", SessionId::generate().fingerprint());
        let set_password = |password: &str| {
            ::redis::cmd("ACL")
                .arg("SETUSER")
                .arg(&user)
                .arg("on")
                .arg("resetpass")
                .arg(format!(">{password}"))
                .arg("~*")
                .arg("+@all")
                .clone()
        };
        let () = raw(&admin, &set_password("first")).await;
        let url = server_url();
        let address = url.strip_prefix("redis://").expect("a redis:// URL");
        let store = RedisStore::new(&format!("redis://{user}:first@{address}{protocol}"))
            .expect("a Redis URL")
            .with_prefix(format!("unit-{}:", SessionId::generate().fingerprint()))
            .with_connections(1);
        let id = create(&store, &record(Map::new(), None)).await;

        let () = raw(&admin, &set_password("second")).await;
        let killed: i64 = raw(
            &admin,
            ::redis::cmd("CLIENT").arg("KILL").arg("USER").arg(&user),
        )
        .await;
        assert!(killed >= 1, "{protocol}: the store's connection");
        for _ in 0..3 {
            match store.load(&id, NOW).await {
                Err(StoreError::Unavailable(_)) => {}
                other => panic!("{protocol}: refused while the password is wrong: {other:?}"),
            }
        }

        let () = raw(&admin, &set_password("first")).await;
        let deadline = Instant::now() + CONNECT_FAILURE_HOLD * 5;
        loop {
            match store.load(&id, NOW).await {
                Ok(Some(_)) => break,
                Err(StoreError::Unavailable(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => panic!("{protocol}: once the password is right again: {other:?}"),
            }
        }
        assert!(store.delete(&id).await.expect("delete"));
        let _: i64 = raw(&admin, ::redis::cmd("ACL").arg("DELUSER").arg(&user)).await;
    }

    #[tokio::test]
    async fn reconnects_after_its_connection_is_killed() {
        // One connection, so that the operations after a kill use the one
        // killed.
        let store = test_store().with_connections(1);
        let id = create(&store, &record(Map::new(), None)).await;
        let admin = RedisStore::new(&server_url()).expect("a Redis URL");
        let kill = |store_id: i64| {
            let admin = &admin;
            async move {
                let killed: i64 = raw(
                    admin,
                    ::redis::cmd("CLIENT").arg("KILL").arg("ID").arg(store_id),
                )
                .await;
                assert_eq!(killed, 1);
            }
        };

        // A read right after the kill is repeated on the new connection.
        let first: i64 = raw(&store, &::redis::cmd("CLIENT").arg("ID").clone()).await;
        kill(first).await;
        assert!(store.load(&id, NOW).await.expect("load").is_some());
        let second: i64 = raw(&store, &::redis::cmd("CLIENT").arg("ID").clone()).await;
        assert_ne!(first, second, "a new connection");

        // A write is not repeated (it may have been applied), so it may
        // fail once; the next one succeeds.
        kill(second).await;
        let mut results = Vec::new();
        for _ in 0..2 {
            results.push(store.increment(&id, "n", 1, NOW).await);
        }
        assert!(
            matches!(results[1], Ok(Some(_))),
            "the second write after the kill: {results:?}"
        );
        for result in &results {
            assert!(
                matches!(result, Ok(Some(_)) | Err(StoreError::Unavailable(_))),
                "{result:?}"
            );
        }
        let applied = results.iter().filter(|r| r.is_ok()).count() as i64;
        let stored = store.load(&id, NOW).await.expect("load").expect("live");
        assert_eq!(stored.data["n"], Value::from(applied));

        // On a connection that sat unused, a write goes after a ping, so a
        // connection closed meanwhile (a restart, Redis' `timeout`, a
        // proxy's idle limit) costs no write.
        let third: i64 = raw(&store, &::redis::cmd("CLIENT").arg("ID").clone()).await;
        kill(third).await;
        tokio::time::sleep(QUIET_BEFORE_WRITE * 2).await;
        assert_eq!(
            store.increment(&id, "n", 1, NOW).await.expect("increment"),
            Some(applied + 1)
        );
    }

    /// An HTTP server (or anything else) at the URL's address answers with
    /// bytes redis-rs reports as "Incompatible type - Parse error …": the
    /// error says the answer is not Redis' protocol.
    #[tokio::test]
    async fn a_server_that_is_not_redis_is_named_as_such() {
        let port =
            crate::store::foreign_server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        let store = RedisStore::new(&format!("redis://127.0.0.1:{port}/0")).expect("a Redis URL");
        let error = store
            .load(&SessionId::generate(), NOW)
            .await
            .expect_err("no Redis there");
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains("does not follow Redis' protocol")
                && message.contains(&format!("127.0.0.1:{port}")),
            "{message}"
        );
    }

    /// Operations during an outage fail together: those waiting for a
    /// connection while an attempt to connect fails take its error instead
    /// of each trying in turn.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_during_an_outage_do_not_queue_behind_each_other_s_attempts() {
        // A server that accepts connections and closes them at once.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = listener.local_addr().expect("its address").port();
        let accepted = std::sync::Arc::new(AtomicUsize::new(0));
        {
            let accepted = std::sync::Arc::clone(&accepted);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    drop(stream);
                }
            });
        }
        let store = std::sync::Arc::new(
            RedisStore::new(&format!("redis://127.0.0.1:{port}/0")).expect("a Redis URL"),
        );
        let mut loads = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let store = std::sync::Arc::clone(&store);
            loads.spawn(async move { store.load(&SessionId::generate(), NOW).await });
        }
        for result in loads.join_all().await {
            assert!(
                matches!(result, Err(StoreError::Unavailable(_))),
                "{result:?}"
            );
        }
        let attempts = accepted.load(Ordering::SeqCst);
        assert!(
            attempts <= 1 + CONNECT_RETRIES,
            "one attempt (with its retries) for all: {attempts} connections"
        );

        // Once the hold has passed, the next operation tries again.
        tokio::time::sleep(CONNECT_FAILURE_HOLD).await;
        assert!(store.load(&SessionId::generate(), NOW).await.is_err());
        assert!(accepted.load(Ordering::SeqCst) > attempts, "tried again");
    }

    /// A `redis-server` of the test's own, killed when dropped.
    struct OwnServer {
        child: std::process::Child,
        dir: std::path::PathBuf,
    }

    impl OwnServer {
        /// A server of the test's own on a free port, in a directory named
        /// after `label`. Like every Redis test, it still insists on the
        /// test servers (whose setup installs redis-server).
        fn on_a_free_port(label: &str) -> (Self, u16, std::path::PathBuf) {
            let _shared = server_url();
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free port")
                .port();
            let dir = std::env::temp_dir().join(format!(
                "tessera-redis-{label}-{}-{port}",
                std::process::id()
            ));
            (Self::start(port, &dir), port, dir)
        }

        /// Starts `redis-server` (on the PATH wherever scripts/services.sh
        /// ran) on `port`, without persistence, and waits until it answers.
        fn start(port: u16, dir: &std::path::Path) -> Self {
            std::fs::create_dir_all(dir).expect("a directory for the server");
            let child = std::process::Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|error| {
                    panic!(
                        "cannot run redis-server ({error}): install it, as \
                         scripts/services.sh does"
                    )
                });
            let server = Self {
                child,
                dir: dir.to_owned(),
            };
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return server;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            panic!("redis-server did not start on port {port}");
        }

        fn stop(mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Drop for OwnServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// How often the server ran `command` (`INFO commandstats`).
    async fn calls_of(store: &RedisStore, command: &str) -> u64 {
        let info: String = raw(store, ::redis::cmd("INFO").arg("commandstats")).await;
        info.lines()
            .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |calls| calls.parse().expect("a count"))
    }

    #[test]
    fn a_redis_that_evicts_when_full_is_warned_about() {
        let info = |limit: &str, policy: &str| {
            format!(
                "# Memory\r\nused_memory:1000\r\nmaxmemory:{limit}\r\n\
                 maxmemory_human:x\r\nmaxmemory_policy:{policy}\r\n"
            )
        };
        for policy in [
            "allkeys-lru",
            "volatile-lru",
            "volatile-ttl",
            "allkeys-random",
        ] {
            let warning = eviction_warning(&info("1048576", policy)).expect(policy);
            assert!(
                warning.contains(policy) && warning.contains("1048576"),
                "{warning}"
            );
            assert!(warning.contains("maxmemory-policy noeviction"), "{warning}");
            // No limit: nothing is evicted.
            assert_eq!(eviction_warning(&info("0", policy)), None);
        }
        assert_eq!(eviction_warning(&info("1048576", "noeviction")), None);
        // A server that does not say is not judged.
        assert_eq!(eviction_warning("# Memory\r\nused_memory:1\r\n"), None);
        assert_eq!(eviction_warning(""), None);
    }

    #[tokio::test]
    async fn the_first_connection_warns_of_a_server_that_evicts() {
        let (logs, _guard) = crate::store::test_logs::LogBuffer::capture();
        let logged = || logs.contents();

        let (_server, port, _) = OwnServer::on_a_free_port("evicting");
        let url = format!("redis://127.0.0.1:{port}/0");
        let store = RedisStore::new(&url).expect("a Redis URL");
        let _: () = raw(
            &store,
            ::redis::cmd("CONFIG")
                .arg("SET")
                .arg("maxmemory-policy")
                .arg("allkeys-lru")
                .arg("maxmemory")
                .arg(100_000_000),
        )
        .await;
        assert!(
            !logged().contains("evicts"),
            "this store connected before: {}",
            logged()
        );
        // Every store checks on its first connection, and once.
        let store = RedisStore::new(&url)
            .expect("a Redis URL")
            .with_connections(2);
        for _ in 0..4 {
            store.load(&SessionId::generate(), NOW).await.expect("load");
        }
        assert_eq!(
            logged().matches("evicts keys when full").count(),
            1,
            "{}",
            logged()
        );
        assert!(
            logged().contains("maxmemory-policy allkeys-lru"),
            "{}",
            logged()
        );

        let _: () = raw(
            &store,
            ::redis::cmd("CONFIG")
                .arg("SET")
                .arg("maxmemory-policy")
                .arg("noeviction"),
        )
        .await;
        let quiet = RedisStore::new(&url).expect("a Redis URL");
        quiet.load(&SessionId::generate(), NOW).await.expect("load");
        assert_eq!(
            logged().matches("evicts keys when full").count(),
            1,
            "{}",
            logged()
        );
    }

    #[tokio::test]
    async fn writes_redis_refuses_are_unavailable_not_corrupt() {
        // Its own server: running out of memory is a setting of the whole server.
        let (_server, port, _) = OwnServer::on_a_free_port("refused-writes");
        let store = RedisStore::new(&format!("redis://127.0.0.1:{port}/0")).expect("a Redis URL");
        let mut data = Map::new();
        data.insert("n".to_owned(), Value::from(41));
        data.insert("list".to_owned(), Value::List(vec![Value::from(1)]));
        let id = create(&store, &record(data, None)).await;
        let _: () = raw(
            &store,
            ::redis::cmd("CONFIG")
                .arg("SET")
                .arg("maxmemory-policy")
                .arg("noeviction")
                .arg("maxmemory")
                .arg(1),
        )
        .await;
        let increment = store.increment(&id, "n", 1, NOW).await;
        assert!(
            matches!(&increment, Err(StoreError::Unavailable(error)) if error.to_string().contains("OOM")),
            "{increment:?}"
        );
        let append = store.append(&id, "list", &Value::from(2), NOW).await;
        assert!(
            matches!(&append, Err(StoreError::Unavailable(error)) if error.to_string().contains("OOM")),
            "{append:?}"
        );
        let _: () = raw(
            &store,
            ::redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(0),
        )
        .await;
        assert_eq!(
            store.increment(&id, "n", 1, NOW).await.expect("increment"),
            Some(42),
            "nothing was lost"
        );
    }

    /// A store of each layout on a Redis server of the test's own, so that
    /// the server's command counts are the test's; the server is stopped
    /// when the first item is dropped.
    fn both_layouts_on_an_own_server(
        label: &str,
    ) -> (OwnServer, RedisStore, FlaskSessionRedisStore) {
        let (server, port, _) = OwnServer::on_a_free_port(label);
        let url = format!("redis://127.0.0.1:{port}/0");
        let store = RedisStore::new(&url).expect("a Redis URL");
        let flask = FlaskSessionRedisStore::new(
            &url,
            crate::store::flask_format::SerializationFormat::Msgpack,
        )
        .expect("a Redis URL")
        .with_prefix("flask:");
        (server, store, flask)
    }

    /// "Log out everywhere" counts the user's live sessions, as `list`
    /// shows them: one past its expiry that Redis still keeps (its TTL
    /// counts from the write, by Redis' clock, and is at least a second)
    /// goes uncounted. 40,023 were counted of a user with 29,875.
    #[tokio::test]
    async fn delete_user_leaves_sessions_past_their_expiry_uncounted() {
        let store = test_store();
        let now = crate::server::unix_now();
        let live = Record {
            created_at: now,
            expires_at: now + HOUR,
            ..record(Map::new(), Some("carol"))
        };
        let kept = create(&store, &live).await;
        let past = create(&store, &live).await;
        let _: () = raw(
            &store,
            ::redis::cmd("HSET")
                .arg(store.session_key(&past))
                .arg(EXPIRES)
                .arg(now - 100),
        )
        .await;
        // An absolute expiry written by hand that is no time: a load reads
        // no session, so it was not live either (it was counted).
        let spoilt = create(&store, &live).await;
        let _: () = raw(
            &store,
            ::redis::cmd("HSET")
                .arg(store.session_key(&spoilt))
                .arg(ABSOLUTE)
                .arg("tomorrow"),
        )
        .await;
        assert!(store.load(&spoilt, now).await.is_err(), "unreadable");
        let listed = store
            .list(Some("carol"), None, 10, now)
            .await
            .expect("listed");
        assert_eq!(
            listed.iter().map(|info| &info.id).collect::<Vec<_>>(),
            [&kept]
        );
        assert_eq!(store.delete_user("carol").await.expect("deleted"), 1);
        for id in [&kept, &past, &spoilt] {
            let exists: bool = raw(&store, ::redis::cmd("EXISTS").arg(store.session_key(id))).await;
            assert!(!exists, "all go");
        }
    }

    /// In Flask-Session's layout the writes of one session take turns
    /// (their compare-and-set would only collide): while Redis stalls, each
    /// still fails within the response timeout, rather than after waiting
    /// out the timeouts of every write queued before it (18 s seen for the
    /// fourth of a burst).
    #[tokio::test]
    async fn queued_writes_of_one_session_fail_within_the_timeout_while_redis_stalls() {
        let (_server, admin, flask) = both_layouts_on_an_own_server("stalled-turns");
        let flask = std::sync::Arc::new(flask);
        let id = SessionId::generate();
        assert!(flask
            .create(&id, &record(Map::new(), None))
            .await
            .expect("create"));
        // On a connection of the other store's.
        let _: () = raw(
            &admin,
            ::redis::cmd("CLIENT")
                .arg("PAUSE")
                .arg(RESPONSE_TIMEOUT.as_millis() as u64 * 4)
                .arg("ALL"),
        )
        .await;
        let mut writes = tokio::task::JoinSet::new();
        for n in 0..4 {
            let flask = std::sync::Arc::clone(&flask);
            let id = id.clone();
            writes.spawn(async move {
                let started = std::time::Instant::now();
                let mut changes = Changes::default();
                changes.set.insert(format!("key{n}"), Value::from(n));
                let result = flask.update(&id, &changes, NOW).await;
                (result, started.elapsed())
            });
        }
        for (result, took) in writes.join_all().await {
            assert!(
                matches!(result, Err(StoreError::Unavailable(_))),
                "{result:?}"
            );
            assert!(took < RESPONSE_TIMEOUT + Duration::from_secs(2), "{took:?}");
        }
        // The paused server is the test's own, stopped as it drops.
    }

    #[tokio::test]
    async fn a_whole_store_listing_reads_every_id_once_not_once_a_page() {
        let (_server, store, flask) = both_layouts_on_an_own_server("listing");
        let mut ids = Vec::new();
        for _ in 0..40 {
            ids.push(create(&store, &record(Map::new(), None)).await);
            let id = SessionId::generate();
            assert!(flask
                .create(&id, &record(Map::new(), None))
                .await
                .expect("create"));
        }
        ids.sort();
        let stores: [(&dyn SessionStore, &str); 2] = [(&store, "zrangebyscore"), (&flask, "scan")];
        for (listed_store, reads_every_id) in stores {
            let before = calls_of(&store, reads_every_id).await;
            let mut listed = Vec::new();
            let mut pages = 0;
            loop {
                let page = listed_store
                    .list(None, listed.last(), 4, NOW)
                    .await
                    .expect("list");
                pages += 1;
                listed.extend(page.iter().map(|info| info.id.clone()));
                if page.len() < 4 {
                    break;
                }
            }
            assert_eq!(listed.len(), 40, "{reads_every_id}");
            assert!(listed.windows(2).all(|w| w[0] < w[1]), "in id order");
            if reads_every_id == "zrangebyscore" {
                assert_eq!(listed, ids);
            }
            let reads = calls_of(&store, reads_every_id).await - before;
            assert!(pages >= 10);
            // SCAN reads the keyspace in a few calls, once.
            assert!(
                (1..=3).contains(&reads),
                "{reads_every_id}: {reads} calls for {pages} pages"
            );
        }
    }

    /// Likewise a listing of one user's sessions (a "your devices" page):
    /// it read the user's whole set, and sorted it, for every page, so that
    /// a user with 100,000 sessions took 14 s to list. A listing of another
    /// user in between reads again, rather than give the wrong user's ids.
    #[tokio::test]
    async fn a_users_listing_reads_the_users_ids_once_not_once_a_page() {
        let (_server, store, flask) = both_layouts_on_an_own_server("user-listing");
        let stores: [&dyn SessionStore; 2] = [&store, &flask];
        for listed_store in stores {
            let mut ids = Vec::new();
            for _ in 0..40 {
                let id = SessionId::generate();
                assert!(listed_store
                    .create(&id, &record(Map::new(), Some("alice")))
                    .await
                    .expect("create"));
                ids.push(id);
            }
            let bob = SessionId::generate();
            assert!(listed_store
                .create(&bob, &record(Map::new(), Some("bob")))
                .await
                .expect("create"));
            ids.sort();
            let before = calls_of(&store, "smembers").await;
            let mut listed = Vec::new();
            let mut pages = 0;
            loop {
                let page = listed_store
                    .list(Some("alice"), listed.last(), 4, NOW)
                    .await
                    .expect("list");
                pages += 1;
                listed.extend(page.iter().map(|info| info.id.clone()));
                if pages == 3 {
                    let bobs = listed_store
                        .list(Some("bob"), None, 4, NOW)
                        .await
                        .expect("bob's");
                    assert_eq!(bobs.len(), 1);
                    let after_bob = listed_store
                        .list(Some("bob"), Some(&ids[0]), 4, NOW)
                        .await
                        .expect("bob's, from a snapshot of bob's");
                    assert!(after_bob.iter().all(|info| info.id == bob));
                }
                if page.len() < 4 {
                    break;
                }
            }
            assert_eq!(listed, ids);
            let reads = calls_of(&store, "smembers").await - before;
            assert!(pages >= 10);
            // Alice's set once, bob's once, alice's once more after bob's.
            assert!((2..=4).contains(&reads), "{reads} calls for {pages} pages");
        }
    }

    #[tokio::test]
    async fn recovers_by_itself_when_the_server_restarts() {
        // Its own server, since restarting the shared one would disturb the
        // tests running beside this one.
        let (server, port, dir) = OwnServer::on_a_free_port("restart");
        let store = RedisStore::new(&format!("redis://127.0.0.1:{port}/0")).expect("a Redis URL");
        let id = create(&store, &record(Map::new(), None)).await;
        assert_eq!(
            store.increment(&id, "n", 1, NOW).await.expect("increment"),
            Some(1)
        );

        server.stop();
        let error = store.load(&id, NOW).await.expect_err("the server is down");
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");

        // The restarted server has lost everything, scripts included: the
        // first read reconnects, the first script call loads its script.
        let _server = OwnServer::start(port, &dir);
        assert_eq!(store.load(&id, NOW).await.expect("load"), None);
        let id = create(&store, &record(Map::new(), None)).await;
        assert_eq!(
            store.increment(&id, "n", 1, NOW).await.expect("increment"),
            Some(1)
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable_until_it_answers() {
        // A port nothing listens on: bind one, note it, free it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let store =
            RedisStore::new(&format!("redis://:hunter2@127.0.0.1:{port}/0")).expect("a Redis URL");
        for _ in 0..2 {
            let error = store
                .load(&SessionId::generate(), NOW)
                .await
                .expect_err("nothing listens");
            assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
            let message = error.to_string();
            assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
        assert!(!format!("{store:?}").contains("hunter2"));
    }

    /// A `redis://` URL for a server that wants TLS, or a `rediss://` one
    /// for a server without it, fails with a connection reset or a
    /// handshake left unanswered: the error says which scheme may be the
    /// wrong one.
    #[cfg(all(unix, feature = "tls"))]
    #[tokio::test]
    async fn a_url_of_the_wrong_scheme_gets_a_hint() {
        let tls = std::env::var("TESSERA_TEST_REDIS_TLS_URL")
            .expect("TESSERA_TEST_REDIS_TLS_URL is set, as for the other Redis tests");
        let plain = server_url();
        let cases = [
            (
                tls.replacen("rediss://", "redis://", 1),
                "use a rediss:// URL",
            ),
            (
                plain.replacen("redis://", "rediss://", 1),
                "use a redis:// URL",
            ),
        ];
        for (url, hint) in cases {
            let store = RedisStore::new(&url).expect("a Redis URL");
            let error = store
                .load(&SessionId::generate(), NOW)
                .await
                .expect_err("the other scheme");
            assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
            assert!(error.to_string().contains(hint), "{url}: {error}");
        }
        // An outage gets no such hint: nothing listens on that port.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        for url in [
            format!("redis://127.0.0.1:{port}/0"),
            format!("rediss://127.0.0.1:{port}/0"),
        ] {
            let error = RedisStore::new(&url)
                .expect("a Redis URL")
                .load(&SessionId::generate(), NOW)
                .await
                .expect_err("nothing listens");
            assert!(!error.to_string().contains(" URL"), "{url}: {error}");
        }
        // Nor does a Unix socket that closes connections: it has no TLS.
        let socket =
            std::env::temp_dir().join(format!("tessera-closing-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&socket);
        let listener = tokio::net::UnixListener::bind(&socket).expect("a socket");
        let closing = tokio::spawn(async move {
            while let Ok((connection, _)) = listener.accept().await {
                drop(connection);
            }
        });
        let error = RedisStore::new(&format!("redis+unix://{}", socket.display()))
            .expect("a Redis URL")
            .load(&SessionId::generate(), NOW)
            .await
            .expect_err("closed at once");
        closing.abort();
        let _ = std::fs::remove_file(&socket);
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
        assert!(!error.to_string().contains(" URL"), "{error}");
    }

    /// A query parameter the Redis client does not read (a password, a user
    /// or a database given as on other URLs) is refused, naming where it
    /// goes, rather than ignored: ignored, `?password=` left the connection
    /// unauthenticated. The ones it reads are accepted, and the password
    /// stays out of the message.
    #[test]
    fn query_parameters_the_client_does_not_read_are_refused() {
        for (url, parameter) in [
            ("redis://127.0.0.1:6379/0?password=hunter2", "password"),
            ("redis://127.0.0.1:6379?user=alice&password=hunter2", "user"),
            ("redis://127.0.0.1:6379/?db=2", "db"),
            (
                "redis://127.0.0.1:6379/0?protocol=resp3&pass=hunter2",
                "pass",
            ),
            (
                "redis+unix:///run/redis.sock?db=1&password=hunter2",
                "password",
            ),
        ] {
            match RedisStore::new(url) {
                Err(StoreError::Config(message)) => {
                    assert!(
                        message
                            .text()
                            .contains(&format!("query parameter {parameter:?}")),
                        "{url}: {message}"
                    );
                    assert!(!message.text().contains("hunter2"), "{message}");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        for url in [
            "redis://:hunter2@127.0.0.1:6379/0",
            "redis://127.0.0.1:6379/0?protocol=resp3",
            "redis://127.0.0.1:6379/0?",
            "redis+unix:///run/redis.sock?db=1&user=alice&pass=hunter2",
        ] {
            assert!(RedisStore::new(url).is_ok(), "{url}");
        }
    }

    /// `rediss://` is TLS: with the `tls` feature it is a store like any
    /// other (the conformance suite runs over it), without it a clear refusal.
    #[test]
    fn tls_urls_need_the_tls_feature() {
        for url in [
            "rediss://:hunter2@cache.example:6380/0",
            "REDISS://cache.example/0",
        ] {
            match (RedisStore::new(url), cfg!(feature = "tls")) {
                (Ok(_), true) => {}
                (Err(StoreError::Config(message)), false) => {
                    assert!(message.text().contains("`tls` feature"), "{message}");
                    assert!(!message.text().contains("hunter2"), "{message}");
                }
                (other, _) => panic!("{url}: {other:?}"),
            }
        }
    }

    /// `#insecure` (redis-rs' "skip the certificate check") is refused when
    /// the store is made, naming the setting, not at every connection as if
    /// Redis were down.
    #[test]
    fn tls_without_certificate_checks_is_refused_at_once() {
        for url in [
            "rediss://:hunter2@cache.example:6380/0#insecure",
            "valkeys://cache.example/0#INSECURE",
        ] {
            match RedisStore::new(url) {
                Err(StoreError::Config(message)) => {
                    let expected = if cfg!(feature = "tls") {
                        "#insecure"
                    } else {
                        "`tls` feature"
                    };
                    assert!(message.text().contains(expected), "{message}");
                    assert!(!message.text().contains("hunter2"), "{message}");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    /// A TLS client at a port that speaks plain text (which never answers
    /// the handshake) fails like a store that does not answer: within the
    /// connect timeouts and retries, not hanging.
    #[cfg(feature = "tls")]
    #[tokio::test]
    async fn tls_to_a_plain_text_port_is_unavailable() {
        let url = server_url().replacen("redis://", "rediss://", 1);
        let store = RedisStore::new(&url).expect("a Redis URL");
        let started = Instant::now();
        let error = store
            .load(&SessionId::generate(), NOW)
            .await
            .expect_err("no TLS there");
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
        assert!(
            started.elapsed() < RESPONSE_TIMEOUT * 2,
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn urls_are_checked_up_front_without_revealing_passwords() {
        for bad in [
            "",
            "localhost:6379",
            "postgres://u:hunter2@localhost/db",
            "redis://:hunter2@host:notaport/0",
            "redis://:hunter2@host/notadb",
        ] {
            match RedisStore::new(bad) {
                Err(StoreError::Config(message)) => {
                    assert!(!message.text().contains("hunter2"), "{bad:?}: {message}");
                    assert!(message.text().contains("redis://"), "{bad:?}: {message}");
                }
                other => panic!("{bad:?} was accepted: {other:?}"),
            }
        }
        let store = RedisStore::new("redis://:hunter2@cache:6380/3").expect("valid");
        assert_eq!(store.prefix(), DEFAULT_PREFIX);
        let debug = format!("{:?}", store.with_prefix("app:"));
        assert!(
            debug.contains("cache:6380") && debug.contains("app:"),
            "{debug}"
        );
        assert!(!debug.contains("hunter2"), "{debug}");
        // A parameter Redis URLs do not take is hidden, `@` and all.
        assert_eq!(
            redact_password("redis://u:p@h:1/0?x=@"),
            "redis://u:***@h:1/0?x=***"
        );
        assert_eq!(redact_password("redis://h/0"), "redis://h/0");
    }

    #[test]
    fn session_keys_and_metadata_fields_never_collide() {
        for key in ["", "a", "\0", "\0user", "\0\0x", "user", "x\0"] {
            assert_eq!(key_of(&field_of(key)), Some(key), "{key:?}");
        }
        for meta in [CREATED, EXPIRES, ABSOLUTE, USER] {
            assert_eq!(key_of(meta), None);
        }
    }

    #[tokio::test]
    async fn appends_count_items_of_any_shape() {
        let store = test_store();
        let tricky = [
            Value::from("],[\"{"),
            Value::from("\\"),
            Value::from("\\\""),
            Value::List(vec![Value::List(vec![]), Value::from(",")]),
            Value::Dict(Map::from([("a,b".to_owned(), Value::List(vec![1.into()]))])),
            Value::tuple([Value::from("]"), Value::bytes(vec![0, 255])]),
            Value::Number(crate::value::Number::from_f64(f64::NAN)),
            Value::Null,
        ];
        let id = create(&store, &record(Map::new(), None)).await;
        for (i, item) in tricky.iter().enumerate() {
            assert_eq!(
                store.append(&id, "l", item, NOW).await.expect("append"),
                Some(i + 1)
            );
        }
        let loaded = store.load(&id, NOW).await.expect("load").expect("live");
        assert_eq!(
            tagged::to_string(&loaded.data["l"]),
            tagged::to_string(&Value::List(tricky.to_vec()))
        );
    }

    /// A sweep's rounds over due entries that are mostly of sessions kept
    /// alive elsewhere: each round looks at a whole batch (one asked for
    /// one entry a round once a batch had nearly filled its purges: a
    /// round trip per kept-alive entry), and no call purges more than its
    /// batch.
    #[tokio::test]
    async fn sweep_rounds_look_at_whole_batches_and_purge_at_most_one() {
        // `true`: expired, purged; `false`: kept alive, moved past now.
        let mut due: std::collections::VecDeque<bool> = std::iter::repeat_n(true, 63)
            .chain(std::iter::repeat_n(false, 500))
            .chain(std::iter::repeat_n(true, 70))
            .collect();
        let mut rounds = 0;
        let mut calls = Vec::new();
        loop {
            let purged = purge_in_rounds(64, |batch, may_purge| {
                rounds += 1;
                let (mut purged, mut looked_at) = (0u64, 0u64);
                while looked_at < batch as u64 && purged < may_purge as u64 {
                    let Some(expired) = due.pop_front() else {
                        break;
                    };
                    looked_at += 1;
                    purged += u64::from(expired);
                }
                async move { Ok((purged, looked_at)) }
            })
            .await
            .expect("no store");
            calls.push(purged);
            if purged < 64 {
                break;
            }
        }
        assert_eq!(
            calls,
            [64, 64, 5],
            "at most a batch a call, every expired one"
        );
        assert!(due.is_empty());
        assert!(rounds <= 12, "{rounds} rounds for 633 entries");
    }

    /// Lists another writer stored with JSON's blanks around or inside
    /// the brackets: `[ ]` became `[ ,1]`, which made the session
    /// unreadable; ` []` was answered as holding no list, `[1] ` as corrupt.
    #[tokio::test]
    async fn appends_to_lists_stored_with_blanks() {
        let store = test_store();
        for (stored, length, after) in [
            ("[ ]", 1, "[1]"),
            ("[\n]", 1, "[1]"),
            (" []", 1, "[1]"),
            ("[0] ", 2, "[0,1]"),
            ("\t[ 0 ]\r\n", 2, "[0,1]"),
            (" null ", 1, "[1]"),
        ] {
            let id = create(&store, &record(Map::new(), None)).await;
            let key = store.session_key(&id);
            let _: () = raw(&store, ::redis::cmd("HSET").arg(&key).arg("l").arg(stored)).await;
            let appended = store.append(&id, "l", &Value::from(1), NOW).await;
            assert_eq!(appended.expect("appended"), Some(length), "{stored:?}");
            let loaded = store.load(&id, NOW).await.expect("readable").expect("live");
            assert_eq!(tagged::to_string(&loaded.data["l"]), after, "{stored:?}");
        }
    }

    #[tokio::test]
    async fn many_keys_and_odd_integers_fit_the_scripts() {
        let store = test_store();
        // Far more arguments than one Lua unpack() takes.
        let data: Map = (0..10_000)
            .map(|i| (format!("k{i}"), Value::from(i)))
            .collect();
        let id = create(&store, &record(data.clone(), None)).await;
        assert_eq!(
            store
                .load(&id, NOW)
                .await
                .expect("load")
                .expect("live")
                .data,
            data
        );
        let changes = Changes {
            removed: data.keys().take(9_000).map(str::to_owned).collect(),
            set: (0..9_000)
                .map(|i| (format!("new{i}"), Value::from(i)))
                .collect(),
            ..Changes::default()
        };
        assert!(store.update(&id, &changes, NOW).await.expect("update"));
        let loaded = store.load(&id, NOW).await.expect("load").expect("live");
        assert_eq!(loaded.data.len(), 10_000);
        let cleared = Changes {
            cleared: true,
            ..Changes::default()
        };
        assert!(store.update(&id, &cleared, NOW).await.expect("update"));
        let loaded = store.load(&id, NOW).await.expect("load").expect("live");
        assert!(loaded.data.is_empty());

        // "-0" is an integer to tessera, though not to HINCRBY.
        let changes = Changes {
            set: Map::from([("z".to_owned(), tagged::from_str("-0").expect("json"))]),
            ..Changes::default()
        };
        assert!(store.update(&id, &changes, NOW).await.expect("update"));
        assert_eq!(
            store.increment(&id, "z", 5, NOW).await.expect("increment"),
            Some(5)
        );
        // Exact at the edges of i64, where Lua numbers would round.
        assert_eq!(
            store
                .increment(&id, "big", i64::MAX - 1, NOW)
                .await
                .expect("increment"),
            Some(i64::MAX - 1)
        );
        assert_eq!(
            store
                .increment(&id, "big", 1, NOW)
                .await
                .expect("increment"),
            Some(i64::MAX)
        );
        assert!(matches!(
            store.increment(&id, "big", 1, NOW).await,
            Err(StoreError::WrongType { .. })
        ));
    }

    #[test]
    fn a_prefix_of_both_layouts_is_warned_about_in_either() {
        for reads in [Layout::Tessera, Layout::FlaskSession] {
            let warning = layout_warning("app:", reads, Layout::Both).expect("a warning");
            assert!(warning.contains("sessions of both layouts"), "{warning}");
            assert!(!warning.contains("both layouts in"), "{warning}");
            assert_eq!(layout_warning("app:", reads, reads), None);
        }
    }

    /// Flask-Session before 0.7 pickles its sessions, which tessera does not
    /// read: a store in its layout says so when it first looks at the
    /// prefix, rather than only as each visitor's session is ignored.
    #[tokio::test]
    async fn pickled_sessions_under_the_prefix_are_warned_about_at_first() {
        use crate::store::flask_format::SerializationFormat;
        let ours = test_store();
        let theirs = FlaskSessionRedisStore::new(&server_url(), SerializationFormat::Msgpack)
            .expect("a Redis URL")
            .with_prefix(ours.prefix());
        let set = |value: &'static [u8]| {
            ::redis::cmd("SET")
                .arg(format!(
                    "{}{}",
                    ours.prefix(),
                    SessionId::generate().as_str()
                ))
                .arg(value)
                .arg("EX")
                .arg(60)
                .clone()
        };
        // msgspec's own map, and one of tessera's: no warning.
        let _: () = raw(&ours, &set(b"\x81\xa1k\x01")).await;
        assert!(theirs
            .create(
                &SessionId::generate(),
                &record(Map::from([("k", Value::from(1))]), None)
            )
            .await
            .expect("created"));
        let warned = theirs.setup_warnings().await.expect("checked");
        assert!(warned.is_empty(), "{warned:?}");
        // pickle.dumps({'a': 1}, protocol=4), as Flask-Session 0.6 stores it.
        let _: () = raw(
            &ours,
            &set(b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s."),
        )
        .await;
        let warned = theirs.setup_warnings().await.expect("checked");
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(
            warned[0].contains("pickled") && warned[0].contains(ours.prefix()),
            "{warned:?}"
        );
        // tessera's own layout beside them is named as well.
        create(&ours, &record(Map::from([("k", Value::from(1))]), None)).await;
        let warned = theirs.setup_warnings().await.expect("checked");
        assert_eq!(warned.len(), 2, "{warned:?}");
    }

    /// Each store tells which layout the sessions under its prefix are in,
    /// whichever layout it reads itself.
    #[tokio::test]
    async fn the_layout_under_a_prefix_is_recognised() {
        use crate::store::flask_format::SerializationFormat;
        let flask_beside = |store: &RedisStore| {
            FlaskSessionRedisStore::new(&server_url(), SerializationFormat::Msgpack)
                .expect("a Redis URL")
                .with_prefix(store.prefix())
        };
        async fn warnings(store: &dyn SessionStore) -> Vec<String> {
            store.setup_warnings().await.expect("checked")
        }
        let ours = test_store();
        let theirs = flask_beside(&ours);
        assert_eq!(ours.sample_layout().await.expect("sampled"), None);
        assert_eq!(theirs.sample_layout().await.expect("sampled"), None);
        assert!(warnings(&ours).await.is_empty());
        assert!(warnings(&theirs).await.is_empty());
        create(&ours, &record(Map::from([("k", Value::from(1))]), None)).await;
        assert_eq!(
            ours.sample_layout().await.expect("sampled"),
            Some(Layout::Tessera)
        );
        assert_eq!(
            theirs.sample_layout().await.expect("sampled"),
            Some(Layout::Tessera)
        );
        // An application in Flask-Session's layout is warned; one in
        // tessera's own is not.
        assert!(warnings(&ours).await.is_empty());
        let warned = warnings(&theirs).await;
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(
            warned[0].contains("sessions in tessera's own layout")
                && warned[0].contains(ours.prefix()),
            "{warned:?}"
        );

        let ours = test_store();
        let theirs = flask_beside(&ours);
        let data = Map::from([("k", Value::from(1))]);
        assert!(theirs
            .create(&SessionId::generate(), &record(data, Some("alice")))
            .await
            .expect("created"));
        assert_eq!(
            ours.sample_layout().await.expect("sampled"),
            Some(Layout::FlaskSession)
        );
        assert_eq!(
            theirs.sample_layout().await.expect("sampled"),
            Some(Layout::FlaskSession)
        );
        assert!(warnings(&theirs).await.is_empty());
        let warned = warnings(&ours).await;
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(
            warned[0].contains("sessions in Flask-Session's layout"),
            "{warned:?}"
        );

        // A prefix only Flask-Session wrote to: one value, no index.
        let ours = test_store();
        let _: () = raw(
            &ours,
            ::redis::cmd("SET")
                .arg(format!(
                    "{}{}",
                    ours.prefix(),
                    SessionId::generate().as_str()
                ))
                .arg(b"\x81\xa1k\x01".as_slice())
                .arg("EX")
                .arg(60),
        )
        .await;
        assert_eq!(
            ours.sample_layout().await.expect("sampled"),
            Some(Layout::FlaskSession)
        );

        // A session key of another kind (set by hand) tells nothing, and
        // does not fail the sample: the others tell.
        let ours = test_store();
        let bad = create(&ours, &record(Map::new(), None)).await;
        let key = ours.session_key(&bad);
        let _: i64 = raw(&ours, ::redis::cmd("DEL").arg(&key)).await;
        let _: i64 = raw(&ours, ::redis::cmd("RPUSH").arg(&key).arg("x")).await;
        assert_eq!(ours.sample_layout().await.expect("sampled"), None);
        create(&ours, &record(Map::from([("k", Value::from(1))]), None)).await;
        assert_eq!(
            ours.sample_layout().await.expect("sampled"),
            Some(Layout::Tessera)
        );
    }

    /// A session whose metadata cannot be read (written by hand) is
    /// reported as corrupt when loaded and left out of listings, which still
    /// show the user's other sessions; "log out everywhere" still reaches it.
    #[tokio::test]
    async fn an_unreadable_session_is_left_out_of_listings() {
        let store = test_store();
        // Live by the clock too, which "log out everywhere" counts by.
        let now = crate::server::unix_now();
        let alices = Record {
            expires_at: now + HOUR,
            ..record(Map::new(), Some("alice"))
        };
        let bad = create(&store, &alices).await;
        let not_text = create(&store, &alices).await;
        let good = create(&store, &alices).await;
        let _: i64 = raw(
            &store,
            ::redis::cmd("HSET")
                .arg(store.session_key(&bad))
                .arg(CREATED)
                .arg("xyz"),
        )
        .await;
        let _: i64 = raw(
            &store,
            ::redis::cmd("HSET")
                .arg(store.session_key(&not_text))
                .arg(USER)
                .arg(&b"\xff"[..]),
        )
        .await;
        for id in [&bad, &not_text] {
            assert!(matches!(
                store.load(id, NOW).await,
                Err(StoreError::Corrupt(_))
            ));
        }
        for user in [Some("alice"), None] {
            let listed = store.list(user, None, 10, NOW).await.expect("a listing");
            let ids: Vec<&SessionId> = listed.iter().map(|info| &info.id).collect();
            assert_eq!(ids, [&good]);
        }
        // The one whose user was overwritten is no longer alice's (nor
        // usable: it loads as corrupt); it goes at its TTL.
        assert_eq!(store.delete_user("alice").await.expect("deleted"), 2);
    }

    /// One call of the script deletes at most a batch of a user's sessions
    /// (a script holds the whole server while it runs); the store calls it
    /// until none is left.
    #[tokio::test]
    async fn a_users_sessions_are_deleted_a_batch_per_call() {
        let store = test_store();
        let sessions = DELETE_USER_BATCH + 100;
        // Live by the clock too, which `delete_user` counts by.
        let alices = Record {
            expires_at: crate::server::unix_now() + HOUR,
            ..record(Map::new(), Some("alice"))
        };
        for _ in 0..sessions {
            create(&store, &alices).await;
        }
        let bob = create(&store, &record(Map::new(), Some("bob"))).await;
        let mut call = ScriptCall::new(
            &SCRIPTS.delete_user,
            &[&store.user_key("alice"), &store.expiry_key()],
        );
        call.arg(store.prefix())
            .arg("alice")
            .arg(DELETE_USER_BATCH)
            .arg(NOW);
        let first: (u64, u64) = store.shared.link.write(&call).await.expect("one call");
        assert_eq!(first, (DELETE_USER_BATCH, sessions - DELETE_USER_BATCH));
        assert_eq!(
            store.delete_user("alice").await.expect("the rest"),
            sessions - DELETE_USER_BATCH
        );
        let left: u64 = raw(&store, ::redis::cmd("EXISTS").arg(store.user_key("alice"))).await;
        assert_eq!(left, 0);
        assert!(store.load(&bob, NOW).await.expect("load").is_some());
    }

    /// An integer another writer stored with blanks around it reads as
    /// that integer, but Redis cannot add to it: a wrong type for an
    /// increment (409), not a store failure (500).
    #[tokio::test]
    async fn an_integer_written_with_blanks_is_a_wrong_type_for_an_increment() {
        let store = test_store();
        let id = create(&store, &record(Map::new(), None)).await;
        for (field, text) in [("a", " 5"), ("b", "5 "), ("c", "5\n")] {
            let _: i64 = raw(
                &store,
                ::redis::cmd("HSET")
                    .arg(store.session_key(&id))
                    .arg(field)
                    .arg(text),
            )
            .await;
            let loaded = store.load(&id, NOW).await.expect("load").expect("live");
            assert_eq!(loaded.data[field], Value::from(5), "{text:?}");
            let incremented = store.increment(&id, field, 1, NOW).await;
            assert!(
                matches!(incremented, Err(StoreError::WrongType { .. })),
                "{text:?}: {incremented:?}"
            );
        }
    }

    #[tokio::test]
    async fn unreadable_values_are_reported_as_corrupt() {
        let store = test_store();
        let id = create(&store, &record(Map::new(), None)).await;
        let _: i64 = raw(
            &store,
            ::redis::cmd("HSET")
                .arg(store.session_key(&id))
                .arg("bad")
                .arg("{not json"),
        )
        .await;
        assert!(matches!(
            store.load(&id, NOW).await,
            Err(StoreError::Corrupt(_))
        ));
        // Each script reports the stored text, and the error says what is
        // wrong with it (not that the script's reply was unexpected).
        for result in [
            store.increment(&id, "bad", 1, NOW).await.map(|_| ()),
            store
                .append(&id, "bad", &Value::Null, NOW)
                .await
                .map(|_| ()),
        ] {
            match result {
                Err(StoreError::Corrupt(message)) => {
                    assert!(!message.text().contains("reply"), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
        let _: i64 = raw(
            &store,
            ::redis::cmd("HSET")
                .arg(store.session_key(&id))
                .arg("bad")
                .arg("[1,\"unterminated"),
        )
        .await;
        match store.append(&id, "bad", &Value::Null, NOW).await {
            Err(StoreError::Corrupt(message)) => {
                assert!(message.text().contains("not readable JSON"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
