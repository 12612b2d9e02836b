//! Sessions in Redis in Flask-Session 0.8's layout, so that a Flask app
//! using Flask-Session and a tessera service share one login.
//!
//! # Layout
//!
//! With the default prefix `session:`:
//!
//! | key | type | holds | written by |
//! |-----|------|-------|------------|
//! | `session:SID` | string | the whole session, msgpack or JSON, with a TTL | Flask-Session and tessera |
//! | `session:{SID}` | hash | tessera's metadata: created, expiries, owner | tessera |
//! | `session:user:USER` | set | the ids of `USER`'s sessions | tessera |
//! | `session:expiry` | sorted set | sessions tessera wrote, scored by when they die | tessera |
//!
//! The first key is exactly what Flask-Session reads and writes
//! (`SET <prefix><sid> <data> EX <lifetime>`), in the
//! [`SerializationFormat`] both sides are configured with; the cookie holds
//! the bare id, or the id signed with salt `flask-session` when
//! `SESSION_USE_SIGNER` is on, as Flask-Session does. Flask-Session ignores
//! the other keys; they carry what it has no place for, so that "log out
//! everywhere", absolute expiry and listing work for sessions tessera has
//! written.
//!
//! # What differs from [`RedisStore`](super::RedisStore)
//!
//! - **A save is two round trips**, a read and a compare-and-set script,
//!   because the session is one value that only the application can decode:
//!   the script writes only if the value is still the one the changes were
//!   applied to, and otherwise the save is applied again to what is there
//!   now. Changes still merge key by key, and [`increment`] and [`append`]
//!   stay atomic, among tessera instances (concurrent increments of one
//!   counter from one process go as one save by their sum, each caller
//!   answered the value it would have seen in turn; concurrent loads of one
//!   session go as one read made after they all came). Flask-Session itself
//!   writes the whole session without such a check, so a Flask request that
//!   saves at the same time as a tessera request can still overwrite its
//!   keys.
//! - **Values are limited to what the format holds.** Tuples come back as
//!   lists, `Markup` and UUIDs as strings (Flask-Session's own limits);
//!   integers must fit 64 bits; see [`flask_format`](crate::store::flask_format).
//! - **Expiry follows whoever wrote last.** The key's TTL is the idle expiry,
//!   as in Flask-Session. When tessera sets it, it remembers (on Redis's
//!   clock) when it will run out; if the TTL no longer matches, Flask-Session
//!   has written the session since, and its TTL counts. Absolute expiry is
//!   enforced by tessera; Flask-Session knows nothing of it and extends the
//!   TTL when it writes, so a [`load`](SessionStore::load) that finds a
//!   session past it with a TTL Flask-Session set deletes the session, as
//!   the expiry sweep does.
//! - **Sessions created by Flask-Session** have no metadata until tessera
//!   first writes them: no owner (so "log out everywhere" does not reach
//!   them until then), and their creation time reads as the time they were
//!   loaded. The metadata key lives twice as long as the session's TTL, so
//!   a session that only Flask-Session keeps alive keeps its owner for one
//!   more idle lifetime; that of a session with an absolute expiry lives a
//!   day past that expiry too, so that the deadline outlasts
//!   Flask-Session's refreshes until tessera ends the session.
//! - **A session left with no data goes, owner or not.** Flask-Session counts
//!   a session holding nothing but `_permanent` as none (its `regenerate()`
//!   skips it, the next login through the Flask app writes into it), so
//!   [`update_or_delete_if_empty`](SessionStore::update_or_delete_if_empty)
//!   ends such a session even if it has an owner, unless the same change
//!   gives it one; other stores keep it, its user logged in.
//! - **The owner is tessera's alone.** Flask-Session has no place for
//!   [`set_user_id`](crate::Session::set_user_id)'s user, so a login or a
//!   logout made by the Flask app leaves it as it was: Flask-Login's
//!   `logout_user()` pops `_user_id` but keeps the session (and its id),
//!   and a Flask login into a session that holds only an owner writes into
//!   it under the same id (`regenerate()` skips a session with no data).
//!   When both applications log visitors in, let the data both read (such
//!   as Flask-Login's `_user_id`) say who is logged in, and have the tessera
//!   service set the owner from it on the requests it serves (and call
//!   [`cycle_id`](crate::Session::cycle_id) at its own logins), so that the
//!   owner, which listings and "log out everywhere" go by, follows the
//!   Flask app's logins and logouts.
//! - A value that neither format can read (for example an old Flask-Session
//!   pickle) is treated as no session, with a warning, rather than failing
//!   every request of that visitor; the value itself is left alone.
//! - [`list`](SessionStore::list) without a user scans the prefix, so it
//!   finds sessions Flask-Session created too; it costs O(keys in the
//!   database) for the first page, whose ids the next ones page through
//!   (as in tessera's layout), and is meant for administration tools.
//!
//! On Redis Cluster, give both applications a prefix with a hash tag, such
//! as `{sessions}:`, so that all of these keys share one slot.
//!
//! [`increment`]: SessionStore::increment
//! [`append`]: SessionStore::append
//!
//! ```no_run
//! use tessera::store::flask_format::SerializationFormat;
//! use tessera::store::FlaskSessionRedisStore;
//!
//! # fn run() -> Result<(), tessera::store::StoreError> {
//! // What a Flask app configures with SESSION_TYPE = "redis" and the
//! // default SESSION_SERIALIZATION_FORMAT = "msgpack".
//! let store = FlaskSessionRedisStore::new("redis://127.0.0.1:6379/0", SerializationFormat::Msgpack)?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ::redis::Script;
use rand::Rng as _;

use super::{
    clamp, field_text, field_time, lua_source, parse_time, Layout, LeftOut, Link, Listed,
    LuaHelper, ScriptCall, DEFAULT_PREFIX, LIST_FETCH, LUA_CONSTANTS, LUA_HELPERS,
    RESPONSE_TIMEOUT, SCRIPTS,
};
use crate::map::Map;
use crate::store::combine::{self, Combiner, Combining};
use crate::store::flask_format::SerializationFormat;
use crate::store::{
    append_in_map, deadline, holds_data, incremented, Changes, Reason, Record, SessionId,
    SessionInfo, SessionStore, StoreError, UpdateOutcome,
};
use crate::value::Value;

/// How often a save is applied again after other writers changed the
/// session under it, before giving up. Each retry means another writer
/// succeeded, so this only runs out under extreme contention on one session.
const MAX_ATTEMPTS: u32 = 1000;

/// What the scripts add to the shared constants: where the value is, and
/// how to tell whether tessera or another writer set its TTL last.
const FLASK_LUA_CONSTANTS: &str = r#"
local DEADLINE = '\0deadline'
-- How far the TTL may be from the one this store set (on Redis's clock)
-- before it counts as set by another writer.
local SLACK_MS = 1500
local MAX_TIME = 9007199254740991
-- How long the metadata of a session with an absolute expiry outlives that
-- expiry: Flask-Session, which knows nothing of it, may keep the value
-- alive past it, and the deadline must still be there when the expiry
-- sweep (every minute by default) or tessera's next use comes to end the
-- session.
local ABSOLUTE_GRACE_MS = 86400000
"#;

/// The helpers the scripts of this layout add to the shared ones.
const FLASK_LUA_HELPERS: &[LuaHelper] = &[
    LuaHelper {
        name: "blob_key",
        code: "local function blob_key(prefix, sid) return prefix .. sid end\n",
    },
    LuaHelper {
        name: "clock_ms",
        code: r#"
local function clock_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"#,
    },
    LuaHelper {
        name: "times",
        code: r#"
-- The session's times as this store reckons them, or nil if there is no
-- session: {created, expires, absolute, owner, foreign}. `foreign` is 1 when
-- another writer (Flask-Session) set the TTL last; the TTL is then the idle
-- expiry.
local function times(prefix, sid, now)
  local pttl = redis.call('PTTL', blob_key(prefix, sid))
  if pttl == -2 then return nil end
  local meta = redis.call('HMGET', session_key(prefix, sid), CREATED, EXPIRES, ABSOLUTE, USER, DEADLINE)
  -- A deadline that is not a number (written by hand) counts as none.
  local expires, deadline_ms, foreign = meta[2], tonumber(meta[5]), 0
  if not (expires and deadline_ms and pttl >= 0
          and math.abs(clock_ms() + pttl - deadline_ms) <= SLACK_MS) then
    foreign = 1
    if pttl < 0 then
      expires = string.format('%d', MAX_TIME)
    else
      expires = string.format('%d', math.min(now + math.ceil(pttl / 1000), MAX_TIME))
    end
  end
  return {meta[1], expires, meta[3], meta[4], foreign}
end
"#,
    },
    LuaHelper {
        name: "set_blob",
        code: r#"
-- Stores `value` (or, if false, keeps the value stored) with a TTL of its
-- lifetime, as Flask-Session sets it: `due` is the second after the lifetime
-- ends, as tessera counts expiries in whole seconds. When the absolute
-- expiry comes first, `due` is that expiry itself, and the value lasts until
-- it. Remembers when that TTL runs out on Redis's clock. The metadata
-- outlives the value by one TTL, and the absolute expiry, if any, by
-- ABSOLUTE_GRACE_MS.
local function set_blob(prefix, sid, value, due, now, absolute)
  local last = tonumber(due) - 1
  if absolute and tonumber(absolute) == tonumber(due) then last = tonumber(due) end
  local ms = ttl_ms(last, now)
  if value then
    redis.call('SET', blob_key(prefix, sid), value, 'PX', ms)
  else
    redis.call('PEXPIRE', blob_key(prefix, sid), ms)
  end
  local meta = session_key(prefix, sid)
  redis.call('HSET', meta, DEADLINE, string.format('%d', clock_ms() + tonumber(ms)))
  local meta_ms = 2 * tonumber(ms)
  if absolute then
    meta_ms = math.max(meta_ms, (tonumber(absolute) - now) * 1000 + ABSOLUTE_GRACE_MS)
  end
  meta_ms = math.min(meta_ms, MAX_TTL_MS)
  redis.call('PEXPIRE', meta, string.format('%d', meta_ms))
  return meta_ms
end
"#,
    },
    LuaHelper {
        name: "forget",
        code: r#"
local function forget(prefix, sid, index)
  local meta = session_key(prefix, sid)
  local owner = owner_of(meta)
  redis.call('DEL', meta)
  remove_member('ZREM', index, sid)
  if owner then remove_member('SREM', user_key(prefix, owner), sid) end
end
"#,
    },
];
/// ARGV: prefix, id, now. Returns {value, created, expires, absolute, owner,
/// foreign} or nil.
const LOAD: &str = r#"
local t = times(ARGV[1], ARGV[2], tonumber(ARGV[3]))
if not t then return false end
return {redis.call('GET', blob_key(ARGV[1], ARGV[2])), t[1], t[2], t[3], t[4], t[5]}
"#;

/// KEYS: value, metadata, expiry index. ARGV: prefix, id, created,
/// expires, absolute or '', '1' if owned, owner, value.
const CREATE: &str = r#"
local prefix, sid = ARGV[1], ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
addable(KEYS[3], 'zset', 'the expiry index')
if ARGV[6] == '1' then addable(user_key(prefix, ARGV[7]), 'set', "the user's set of sessions") end
local absolute = ARGV[5] ~= '' and ARGV[5] or false
local meta = {CREATED, ARGV[3], EXPIRES, ARGV[4]}
if absolute then meta[#meta + 1] = ABSOLUTE; meta[#meta + 1] = absolute end
if ARGV[6] == '1' then meta[#meta + 1] = USER; meta[#meta + 1] = ARGV[7] end
redis.call('HSET', KEYS[2], unpack(meta))
local due = deadline(ARGV[4], absolute)
local meta_ms = set_blob(prefix, sid, ARGV[8], due, tonumber(ARGV[3]), absolute)
redis.call('ZADD', KEYS[3], due, sid)
if ARGV[6] == '1' then
  local owner = user_key(prefix, ARGV[7])
  redis.call('SADD', owner, sid)
  extend(owner, meta_ms)
end
return 1
"#;

/// KEYS: value, metadata, expiry index. ARGV: prefix, id, now, SHA-1 of the
/// value the changes were applied to ('' to keep the value as it is, when
/// only the times or the owner change), new value, expires or '', owner
/// change ('' none, '-' remove, '=' set), owner, absolute or ''. Returns 1
/// if written, 0 if there is no live session, 2 if the value changed
/// meanwhile.
const WRITE: &str = r#"
local prefix, sid, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local t = times(prefix, sid, now)
if not t or not live(t[2], t[3], now) then return 0 end
local keep = ARGV[4] == ''
if not keep and redis.sha1hex(redis.call('GET', KEYS[1])) ~= ARGV[4] then return 2 end
local expires, absolute = ARGV[6], t[3]
-- An absolute expiry only ever comes sooner.
local sooner = ARGV[9] ~= '' and (not absolute or tonumber(ARGV[9]) < tonumber(absolute))
-- The first write after another writer's takes over the expiry, so that
-- the metadata is authoritative again.
if expires == '' and (t[5] == 1 or sooner) then expires = t[2] end
if expires ~= '' then addable(KEYS[3], 'zset', 'the expiry index') end
if ARGV[7] == '=' then addable(user_key(prefix, ARGV[8]), 'set', "the user's set of sessions") end
local meta_ms
if expires ~= '' then
  redis.call('HSETNX', KEYS[2], CREATED, ARGV[3])
  redis.call('HSET', KEYS[2], EXPIRES, expires)
  if sooner then
    absolute = ARGV[9]
    redis.call('HSET', KEYS[2], ABSOLUTE, absolute)
  end
  local due = deadline(expires, absolute)
  meta_ms = set_blob(prefix, sid, not keep and ARGV[5], due, now, absolute)
  redis.call('ZADD', KEYS[3], due, sid)
else
  if not keep then redis.call('SET', KEYS[1], ARGV[5], 'KEEPTTL') end
  meta_ms = redis.call('PTTL', KEYS[2])
end
if ARGV[7] ~= '' then
  local owner, new_owner = t[4], ARGV[7] == '=' and ARGV[8] or false
  if owner and owner ~= new_owner then remove_member('SREM', user_key(prefix, owner), sid) end
  if new_owner then
    redis.call('HSET', KEYS[2], USER, new_owner)
    local owner_key = user_key(prefix, new_owner)
    redis.call('SADD', owner_key, sid)
    extend(owner_key, meta_ms)
  else
    redis.call('HDEL', KEYS[2], USER)
  end
elseif t[4] and expires ~= '' then
  extend(user_key(prefix, t[4]), meta_ms)
end
return 1
"#;

/// The write script's owner arguments: the change ('' none, '-' remove,
/// '=' set) and the new owner.
fn owner_change_args(owner: Option<&Option<String>>) -> (&'static str, &str) {
    match owner {
        None => ("", ""),
        Some(None) => ("-", ""),
        Some(Some(user)) => ("=", user.as_str()),
    }
}

/// KEYS: value, expiry index. ARGV: prefix, id.
const DELETE: &str = r#"
local existed = redis.call('DEL', KEYS[1])
forget(ARGV[1], ARGV[2], KEYS[2])
return existed
"#;

/// KEYS: value, expiry index. ARGV: prefix, id, SHA-1 of the value as read.
/// Deletes the session, owned or not, if its value is still the one read: 1
/// deleted, 0 no session, 2 written meanwhile.
const DELETE_IF_UNCHANGED: &str = r#"
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
if redis.sha1hex(value) ~= ARGV[3] then return 2 end
redis.call('DEL', KEYS[1])
forget(ARGV[1], ARGV[2], KEYS[2])
return 1
"#;

/// KEYS: value, expiry index. ARGV: prefix, id, now, SHA-1 of the value as
/// read. Deletes the session if it is still not live at `now` and its value
/// is still the one read (not written anew meanwhile): 1 deleted, else 0.
const END_EXPIRED: &str = r#"
local prefix, sid, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local value = redis.call('GET', KEYS[1])
if not value or redis.sha1hex(value) ~= ARGV[4] then return 0 end
local t = times(prefix, sid, now)
if live(t[2], t[3], now) then return 0 end
redis.call('DEL', KEYS[1])
forget(prefix, sid, KEYS[2])
return 1
"#;

/// KEYS: old value, old metadata, new value, new metadata, expiry index.
/// ARGV: prefix, old id, new id, now.
const CYCLE: &str = r#"
local prefix, old, new, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if old == new or redis.call('EXISTS', KEYS[3]) == 1 or redis.call('EXISTS', KEYS[4]) == 1 then
  return 0
end
local t = times(prefix, old, now)
if not t or not live(t[2], t[3], now) then return 0 end
addable(KEYS[5], 'zset', 'the expiry index')
if t[4] then addable(user_key(prefix, t[4]), 'set', "the user's set of sessions") end
-- RENAME keeps the TTLs, so the remembered deadline stays right.
redis.call('RENAME', KEYS[1], KEYS[3])
redis.call('ZREM', KEYS[5], old)
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('RENAME', KEYS[2], KEYS[4])
  redis.call('ZADD', KEYS[5], deadline(t[2], t[3]), new)
end
if t[4] then
  local owner = user_key(prefix, t[4])
  redis.call('SREM', owner, old)
  redis.call('SADD', owner, new)
end
return 1
"#;

/// ARGV: prefix, now, ids. Returns per id {created, expires, absolute,
/// owner}, nil if it is gone, or the error reading it raised (a key of
/// another kind of value), so that one bad key does not fail the listing.
/// Any other error (a command the server's ACL refuses this user) fails the
/// whole call: it is no fault of the session's.
const INFO: &str = r#"
local prefix, now = ARGV[1], tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV do
  local ok, t = pcall(function() return times(prefix, ARGV[i], now) end)
  if not ok then
    local message = type(t) == 'table' and t.err or tostring(t)
    if not string.find(message, 'WRONGTYPE', 1, true) then
      return redis.error_reply(message)
    end
  end
  local kind = redis.call('TYPE', blob_key(prefix, ARGV[i])).ok
  if ok and kind ~= 'string' and kind ~= 'none' then
    ok, t = false, 'the session value holds a ' .. kind .. ', not a string'
  end
  if not ok then
    out[#out + 1] = type(t) == 'table' and t.err or tostring(t)
  else
    out[#out + 1] = t and {t[1], t[2], t[3], t[4]} or false
  end
end
return out
"#;

/// KEYS: expiry index. ARGV: prefix, now, batch, how many it may purge.
/// Returns how many sessions it purged and how many due entries it looked
/// at (see
/// [`purge_in_rounds`](super::purge_in_rounds)).
const PURGE: &str = r#"
local index, prefix, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
local may_purge = tonumber(ARGV[4])
local purged, looked_at = 0, 0
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])) do
  if purged >= may_purge then break end
  looked_at = looked_at + 1
  local readable, t = pcall(function() return times(prefix, sid, now) end)
  if not readable then
    -- Its metadata key holds another kind of value (written by hand): it
    -- is left as it is, and the entry goes, so that the sweep goes on past it.
    redis.call('ZREM', index, sid)
  elseif not t then
    -- The value is gone (its TTL, or Flask-Session deleted it).
    forget(prefix, sid, index)
    purged = purged + 1
  elseif not time_of(t[2]) or (t[3] and not time_of(t[3])) then
    -- Metadata written by hand that is not numbers: it goes, and the
    -- value stays as Flask-Session reads it, until its TTL ends it.
    forget(prefix, sid, index)
  elseif live(t[2], t[3], now) then
    -- Kept alive by another writer, or changed behind the index's back.
    redis.call('ZADD', index, deadline(t[2], t[3]), sid)
  else
    redis.call('DEL', blob_key(prefix, sid))
    forget(prefix, sid, index)
    purged = purged + 1
  end
end
return {purged, looked_at}
"#;

/// KEYS: the user's set, expiry index. ARGV: prefix, user, batch (see
/// `DELETE_USER_BATCH`), now. Counts the sessions that were live: a value
/// the Flask app keeps alive past its absolute expiry goes uncounted.
const DELETE_USER: &str = r#"
local owner_key, index, prefix, user = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local now = tonumber(ARGV[4])
local deleted = 0
for _, sid in ipairs(redis.call('SPOP', owner_key, ARGV[3])) do
  local meta = session_key(prefix, sid)
  local owner, unreadable = owner_of(meta)
  if owner == user or unreadable then
    -- Metadata of another type (written by hand) cannot say: the value
    -- counts as live while Redis keeps it, as before there was metadata.
    local readable, t = pcall(function() return times(prefix, sid, now) end)
    local was_live = not readable
    if readable and t then
      -- An absolute expiry written by hand that is not a number: a load
      -- reads no session, so it was not live.
      was_live = live(t[2], t[3], now)
    end
    if redis.call('DEL', blob_key(prefix, sid)) == 1 and was_live then
      deleted = deleted + 1
    end
    redis.call('DEL', meta)
    remove_member('ZREM', index, sid)
  end
end
return {deleted, redis.call('SCARD', owner_key)}
"#;

struct FlaskScripts {
    load: Script,
    create: Script,
    write: Script,
    delete: Script,
    delete_if_unchanged: Script,
    end_expired: Script,
    cycle: Script,
    info: Script,
    purge: Script,
    delete_user: Script,
}

static FLASK_SCRIPTS: LazyLock<FlaskScripts> = LazyLock::new(|| {
    let script = |body: &str| {
        Script::new(&lua_source(
            &[LUA_CONSTANTS, FLASK_LUA_CONSTANTS],
            &[LUA_HELPERS, FLASK_LUA_HELPERS],
            body,
        ))
    };
    FlaskScripts {
        load: script(LOAD),
        create: script(CREATE),
        write: script(WRITE),
        delete: script(DELETE),
        delete_if_unchanged: script(DELETE_IF_UNCHANGED),
        end_expired: script(END_EXPIRED),
        cycle: script(CYCLE),
        info: script(INFO),
        purge: script(PURGE),
        delete_user: script(DELETE_USER),
    }
});

/// A [`SessionStore`] in Redis that shares its sessions with Flask-Session.
///
/// Cheap to construct; see the [module documentation](self) for the layout
/// and how it differs from [`RedisStore`](super::RedisStore).
pub struct FlaskSessionRedisStore {
    shared: Arc<Shared>,
}

/// What a store and the tasks it starts share.
struct Shared {
    link: Link,
    prefix: String,
    format: SerializationFormat,
    writers: WriterLocks,
    listing: super::ListingSnapshot,
    /// Concurrent loads of one session, and increments of one counter,
    /// go as one.
    combiner: Combiner,
    /// See [`FlaskSessionRedisStore::refusing_unreadable`].
    refuse_unreadable: bool,
}

/// The same configuration, with none of the state: no connections, no
/// writer waiting, no listing snapshot, no loads or increments queued.
impl Clone for Shared {
    fn clone(&self) -> Self {
        Self {
            link: self.link.unconnected_copy(),
            prefix: self.prefix.clone(),
            format: self.format,
            writers: WriterLocks::new(),
            listing: super::ListingSnapshot::default(),
            combiner: Combiner::default(),
            refuse_unreadable: self.refuse_unreadable,
        }
    }
}

/// Writes to one session from this process take turns: read-modify-write
/// attempts that would only collide and retry against each other (a page's
/// parallel requests) queue here instead, leaving the compare-and-set to
/// settle races with other processes. Sessions share a lock only when their
/// ids fall in the same of these shards.
struct WriterLocks([tokio::sync::Mutex<()>; WRITER_SHARDS]);

const WRITER_SHARDS: usize = 64;

/// After another writer won: the retries spread out so that many contenders
/// don't collide again in lockstep.
async fn backoff(attempt: u32) {
    if attempt >= 2 {
        let micros = rand::thread_rng().gen_range(0..200 * u64::from(attempt.min(10)));
        tokio::time::sleep(Duration::from_micros(micros)).await;
    }
}

impl WriterLocks {
    fn new() -> Self {
        Self(std::array::from_fn(|_| tokio::sync::Mutex::new(())))
    }

    fn of(&self, id: &SessionId) -> &tokio::sync::Mutex<()> {
        use std::hash::{BuildHasher as _, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(id.as_str());
        &self.0[(hash % WRITER_SHARDS as u64) as usize]
    }
}

/// The URL may hold a password: show only where the server is.
impl fmt::Debug for FlaskSessionRedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlaskSessionRedisStore")
            .field("address", &self.shared.link.address())
            .field("prefix", &self.shared.prefix)
            .field("format", &self.shared.format)
            .field("connected", &self.shared.link.is_connected())
            .finish()
    }
}

const PICKLED: &str = "a stored session that was pickled, as Flask-Session before 0.7 stores \
     them (tessera never unpickles); an application with such a Flask-Session shares this \
     prefix: upgrade it to 0.7 or later, which reads and writes msgpack or JSON, before sharing \
     sessions with it";

/// A session as read for a write: its value and whether it may be written.
struct Snapshot {
    value: Vec<u8>,
    data: Option<Map>,
    live: bool,
}

/// `LOAD`'s reply: value, created, expires, absolute, owner, and 1 if
/// another writer set the TTL last.
type LoadReply = Option<(
    Vec<u8>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    i64,
)>;

impl FlaskSessionRedisStore {
    /// A store on the server at `url` (the forms [`RedisStore::new`](super::RedisStore::new) takes)
    /// writing sessions in `format`, with keys under [`DEFAULT_PREFIX`]
    /// (Flask-Session's default too). The URL is checked now; nothing is
    /// connected until the first operation.
    pub fn new(url: &str, format: SerializationFormat) -> Result<Self, StoreError> {
        Ok(Self {
            shared: Arc::new(Shared {
                link: Link::open(url)?,
                prefix: DEFAULT_PREFIX.to_owned(),
                format,
                writers: WriterLocks::new(),
                listing: super::ListingSnapshot::default(),
                combiner: Combiner::default(),
                refuse_unreadable: false,
            }),
        })
    }

    /// Loads of a stored value that neither format reads (or a pickled
    /// one) fail with [`StoreError::Corrupt`], saying why, rather than
    /// reading as no session with the reason logged. For tools that inspect
    /// or revoke stored sessions, to whom "no session" would be untrue; an
    /// application keeps the default, under which such a visitor gets a new
    /// session, as Flask-Session gives one.
    #[must_use]
    pub fn refusing_unreadable(mut self) -> Self {
        self.shared_mut().refuse_unreadable = true;
        self
    }

    /// Puts every key under `prefix` (Flask-Session's `SESSION_KEY_PREFIX`).
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
    /// needed, shared as [`RedisStore`](super::RedisStore)'s are (see
    /// [`RedisStore::with_connections`](super::RedisStore::with_connections)
    /// and [Connections](super#connections)).
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

    /// The format sessions are written in.
    pub fn format(&self) -> SerializationFormat {
        self.shared.format
    }

    /// For the builder methods. A task serving queued loads or increments
    /// may still hold the state it was given just after its callers were
    /// answered; the builder then configures a copy that shares nothing
    /// with that task rather than changing what it runs on.
    fn shared_mut(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.shared)
    }

    /// In one allocation, as `RedisStore`'s session key.
    fn value_key(&self, id: &SessionId) -> String {
        [&*self.shared.prefix, id.as_str()].concat()
    }

    fn metadata_key(&self, id: &SessionId) -> String {
        [&*self.shared.prefix, "{", id.as_str(), "}"].concat()
    }

    fn user_key(&self, user: &str) -> String {
        format!("{}user:{user}", self.shared.prefix)
    }

    fn expiry_key(&self) -> String {
        format!("{}expiry", self.shared.prefix)
    }

    /// The layout the sessions already under this store's prefix are in,
    /// judged from a few of them: [`Layout::Tessera`] means an application
    /// keeps tessera's own layout there, which this store does not read.
    /// `None` when there is nothing to judge from. See
    /// [`RedisStore::sample_layout`](super::RedisStore::sample_layout).
    pub async fn sample_layout(&self) -> Result<Option<Layout>, StoreError> {
        self.shared.link.sample_layout(&self.shared.prefix).await
    }

    /// See [`RedisStore::indexed_prefixes`](super::RedisStore::indexed_prefixes).
    pub async fn indexed_prefixes(&self) -> Result<Vec<String>, StoreError> {
        self.shared.link.indexed_prefixes(&self.shared.prefix).await
    }

    /// The session's data, or `None` (with a warning) if neither format can
    /// read it: one unreadable value must not fail every request of its
    /// visitor.
    fn decode(&self, id: &SessionId, value: &[u8]) -> Option<Map> {
        match self.shared.format.decode(value) {
            Ok(data) => Some(data),
            Err(_) if pickled(value) => {
                tracing::error!(session = %id.fingerprint(), "ignoring {PICKLED}");
                None
            }
            Err(error) => {
                tracing::error!(
                    session = %id.fingerprint(),
                    %error,
                    "ignoring a stored session that is neither msgpack nor JSON"
                );
                None
            }
        }
    }

    /// [`decode`](Self::decode) for a load, which fails instead when
    /// [`refusing_unreadable`](Self::refusing_unreadable).
    fn decode_loaded(&self, id: &SessionId, value: &[u8]) -> Result<Option<Map>, StoreError> {
        if !self.shared.refuse_unreadable {
            return Ok(self.decode(id, value));
        }
        self.shared.format.decode(value).map(Some).map_err(|error| {
            if pickled(value) {
                StoreError::corrupt(PICKLED)
            } else {
                StoreError::corrupt(Reason::caused_by(error.to_string(), error))
            }
        })
    }

    fn encode(&self, data: &Map) -> Result<Vec<u8>, StoreError> {
        self.shared.format.encode(data).map_err(|error| {
            StoreError::unrepresentable(Reason::caused_by(error.to_string(), error))
        })
    }

    /// The session's value and record (without its data), and whether
    /// another writer set its TTL last.
    async fn fetch(
        &self,
        id: &SessionId,
        now: u64,
    ) -> Result<Option<(Vec<u8>, Record, bool)>, StoreError> {
        let mut call = ScriptCall::new(&FLASK_SCRIPTS.load, &[]);
        call.arg(&self.shared.prefix).arg(id.as_str()).arg(now);
        let reply: LoadReply = self.shared.link.read_script(&call).await?;
        let Some((value, created, expires, absolute, user, foreign)) = reply else {
            return Ok(None);
        };
        let record = Record {
            data: Map::new(),
            user_id: user,
            created_at: created
                .map(|at| parse_time(&at, "created_at"))
                .transpose()?
                .unwrap_or(now),
            expires_at: parse_time(&expires, "expires_at")?,
            absolute_expires_at: absolute
                .map(|at| parse_time(&at, "absolute_expires_at"))
                .transpose()?,
        };
        Ok(Some((value, record, foreign == 1)))
    }

    async fn snapshot(&self, id: &SessionId, now: u64) -> Result<Option<Snapshot>, StoreError> {
        let Some((value, record, _)) = self.fetch(id, now).await? else {
            return Ok(None);
        };
        let data = self.decode(id, &value);
        Ok(Some(Snapshot {
            live: record.is_live(now) && data.is_some(),
            value,
            data,
        }))
    }

    /// `changes` applied (see [`modify_or_delete`](Self::modify_or_delete)).
    async fn apply(
        &self,
        id: &SessionId,
        changes: &Changes,
        now: u64,
        delete_if_empty: bool,
    ) -> Result<UpdateOutcome, StoreError> {
        // Only the expiry or the owner changes: the value stays as it is,
        // neither read nor written (a large session's value would go
        // through Lua twice and be hashed), even if this store could not
        // write it (a JSON value holding an integer msgpack cannot, read by
        // a msgpack store).
        let data_changes = changes.changes_data();
        if !data_changes && !delete_if_empty {
            let call = self.write_call(
                id,
                now,
                (changes.expires_at, changes.absolute_expires_at),
                changes.user_id.as_ref(),
                None,
            );
            return Ok(match self.shared.link.write::<i64>(&call).await? {
                0 => UpdateOutcome::Vanished,
                _ => UpdateOutcome::Updated,
            });
        }
        let applied = self
            .modify_or_delete(
                id,
                now,
                (changes.expires_at, changes.absolute_expires_at),
                changes.user_id.as_ref(),
                data_changes,
                delete_if_empty,
                |data| {
                    // The data only: the times and owner go to the metadata
                    // through the write script.
                    let mut record = Record {
                        data: std::mem::take(data),
                        user_id: None,
                        created_at: 0,
                        expires_at: 0,
                        absolute_expires_at: None,
                    };
                    changes.apply_to(&mut record);
                    *data = record.data;
                    Ok(())
                },
            )
            .await?;
        Ok(match applied {
            None => UpdateOutcome::Vanished,
            Some(((), true)) => UpdateOutcome::Deleted,
            Some(((), false)) => UpdateOutcome::Updated,
        })
    }

    /// Applies `change` to the session's data and writes the result if no
    /// one wrote meanwhile, else starts over from what is there now.
    /// `None` if there is no live session. `expiries` are the new idle and
    /// absolute ones, if any (as in [`Changes`]).
    async fn modify<T>(
        &self,
        id: &SessionId,
        now: u64,
        expiries: (Option<u64>, Option<u64>),
        owner: Option<&Option<String>>,
        changes_data: bool,
        change: impl FnMut(&mut Map) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let modified = self
            .modify_or_delete(id, now, expiries, owner, changes_data, false, change)
            .await?;
        Ok(modified.map(|(result, _)| result))
    }

    /// [`modify`](Self::modify), deleting the session instead of writing it
    /// if asked and the change leaves it with no data (under the same check
    /// that no one wrote meanwhile), even if it has an owner, unless the
    /// change gives it one. The flag says whether it was deleted.
    ///
    /// Other stores keep an owned session with no data: its user is logged
    /// in. Here the Flask app shares it, and Flask-Session counts a session
    /// holding nothing but `_permanent` as none: its logout (`clear()`, then
    /// a flash message that tessera shows) leaves such a session under the
    /// same id, and its `regenerate()` skips it, so the next login through
    /// the Flask app in that browser would inherit tessera's owner, its
    /// device list and its "log out everywhere".
    ///
    /// Writes of one session take turns, and the whole operation, the wait
    /// for its turn included, fails after [`RESPONSE_TIMEOUT`]: without that
    /// bound, while Redis stalls, each write waited out the timeouts of
    /// every write queued before it.
    #[allow(clippy::too_many_arguments)]
    async fn modify_or_delete<T>(
        &self,
        id: &SessionId,
        now: u64,
        expiries: (Option<u64>, Option<u64>),
        owner: Option<&Option<String>>,
        changes_data: bool,
        delete_if_empty: bool,
        change: impl FnMut(&mut Map) -> Result<T, StoreError>,
    ) -> Result<Option<(T, bool)>, StoreError> {
        let in_turn = self.modify_or_delete_in_turn(
            id,
            now,
            expiries,
            owner,
            changes_data,
            delete_if_empty,
            change,
        );
        tokio::time::timeout(RESPONSE_TIMEOUT, in_turn)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::unavailable(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "Redis at {} did not complete the write within {RESPONSE_TIMEOUT:?}: \
                         it or the network stalled, or this instance queued more writes \
                         than it could send (writes of one session take turns, and this one \
                         waited for those before it)",
                        self.shared.link.address()
                    ),
                )))
            })
    }

    #[allow(clippy::too_many_arguments)]
    async fn modify_or_delete_in_turn<T>(
        &self,
        id: &SessionId,
        now: u64,
        (expires_at, absolute_expires_at): (Option<u64>, Option<u64>),
        owner: Option<&Option<String>>,
        changes_data: bool,
        delete_if_empty: bool,
        mut change: impl FnMut(&mut Map) -> Result<T, StoreError>,
    ) -> Result<Option<(T, bool)>, StoreError> {
        let gives_an_owner = matches!(owner, Some(Some(_)));
        let _turn = self.shared.writers.of(id).lock().await;
        for attempt in 0..MAX_ATTEMPTS {
            let Some(Snapshot {
                value,
                data: Some(mut data),
                live: true,
            }) = self.snapshot(id, now).await?
            else {
                return Ok(None);
            };
            let result = change(&mut data)?;
            if delete_if_empty && !gives_an_owner && !holds_data(&data) {
                let mut call = ScriptCall::new(
                    &FLASK_SCRIPTS.delete_if_unchanged,
                    &[&self.value_key(id), &self.expiry_key()],
                );
                call.arg(&self.shared.prefix)
                    .arg(id.as_str())
                    .arg(crate::key::hex(&sha1_of(&value)));
                match self.shared.link.write::<i64>(&call).await? {
                    1 => return Ok(Some((result, true))),
                    0 => return Ok(None),
                    _ => {
                        backoff(attempt).await;
                        continue;
                    }
                }
            }
            let encoded = if changes_data {
                Some(
                    self.shared
                        .format
                        .encode_keeping(&data, &value)
                        .map_err(|error| {
                            StoreError::unrepresentable(Reason::caused_by(error.to_string(), error))
                        })?,
                )
            } else {
                None
            };
            let written = (value.as_slice(), encoded.as_deref().unwrap_or(&value));
            let call = self.write_call(
                id,
                now,
                (expires_at, absolute_expires_at),
                owner,
                Some(written),
            );
            match self.shared.link.write::<i64>(&call).await? {
                1 => return Ok(Some((result, false))),
                0 => return Ok(None),
                _ => backoff(attempt).await,
            }
        }
        Err(StoreError::Unavailable(
            format!("session kept changing under {MAX_ATTEMPTS} attempts to save it").into(),
        ))
    }

    /// Deletes the session found past its deadline, unless it was written
    /// anew since `value` was read.
    async fn end_expired(&self, id: &SessionId, value: &[u8], now: u64) -> Result<(), StoreError> {
        let mut call = ScriptCall::new(
            &FLASK_SCRIPTS.end_expired,
            &[&self.value_key(id), &self.expiry_key()],
        );
        call.arg(&self.shared.prefix)
            .arg(id.as_str())
            .arg(now)
            .arg(crate::key::hex(&sha1_of(value)));
        self.shared.link.write::<i64>(&call).await?;
        Ok(())
    }

    /// The write script's call: the new times and owner, and, if
    /// `value` is given, the value read (whose hash the script checks) and
    /// the one to store; without it the stored value is kept as it is.
    fn write_call(
        &self,
        id: &SessionId,
        now: u64,
        (expires_at, absolute_expires_at): (Option<u64>, Option<u64>),
        owner: Option<&Option<String>>,
        value: Option<(&[u8], &[u8])>,
    ) -> ScriptCall<'static> {
        let (owner_change, owner) = owner_change_args(owner);
        let (read, written) = value.map_or((String::new(), &[][..]), |(read, written)| {
            (crate::key::hex(&sha1_of(read)), written)
        });
        let mut call = ScriptCall::new(
            &FLASK_SCRIPTS.write,
            &[
                &self.value_key(id),
                &self.metadata_key(id),
                &self.expiry_key(),
            ],
        );
        call.arg(&self.shared.prefix)
            .arg(id.as_str())
            .arg(now)
            .arg(read)
            .arg(written)
            .arg(expires_at.map_or(String::new(), |at| clamp(at).to_string()))
            .arg(owner_change)
            .arg(owner)
            .arg(absolute_expires_at.map_or(String::new(), |at| clamp(at).to_string()));
        call
    }

    /// Every session id under the prefix, Flask-Session's included.
    async fn scan_ids(&self) -> Result<Vec<SessionId>, StoreError> {
        let mut cursor: u64 = 0;
        let mut ids = Vec::new();
        loop {
            let (next, keys) = self
                .shared
                .link
                .scan_values(&self.shared.prefix, cursor)
                .await?;
            ids.extend(
                keys.iter()
                    .filter_map(|key| key.strip_prefix(&self.shared.prefix))
                    .filter_map(SessionId::parse),
            );
            if next == 0 {
                return Ok(ids);
            }
            cursor = next;
        }
    }

    async fn info(
        &self,
        ids: &[SessionId],
        now: u64,
    ) -> Result<Vec<Listed<SessionInfo>>, StoreError> {
        // Bytes, so that one record's field that is not UTF-8 fails that
        // record, not the whole reply.
        type InfoRow = Option<(Option<Vec<u8>>, Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>)>;
        let mut call = ScriptCall::new(&FLASK_SCRIPTS.info, &[]);
        call.arg(&self.shared.prefix).arg(now);
        for id in ids {
            call.arg(id.as_str());
        }
        let rows: Vec<::redis::Value> = self.shared.link.read_script(&call).await?;
        let listed = ids.iter().zip(rows).map(|(id, row)| {
            let row = match row {
                // What reading this session raised in the script.
                ::redis::Value::BulkString(error) => {
                    let error = StoreError::corrupt(format!(
                        "its keys could not be read: {}",
                        String::from_utf8_lossy(&error)
                    ));
                    return Listed::Unreadable(error);
                }
                row => ::redis::from_redis_value::<InfoRow>(row),
            };
            let row = match row {
                Ok(row) => row,
                Err(error) => {
                    let error = StoreError::corrupt(Reason::caused_by(
                        format!("unexpected reply from Redis: {error}"),
                        error,
                    ));
                    return Listed::Unreadable(error);
                }
            };
            let Some((created, expires, absolute, user)) = row else {
                return Listed::Gone;
            };
            let parsed = (|| {
                Ok::<_, StoreError>(SessionInfo {
                    id: id.clone(),
                    user_id: user.map(|user| field_text(user, "user")).transpose()?,
                    created_at: created
                        .map(|at| field_time(at, "created_at"))
                        .transpose()?
                        .unwrap_or(now),
                    expires_at: field_time(expires, "expires_at")?,
                    absolute_expires_at: absolute
                        .map(|at| field_time(at, "absolute_expires_at"))
                        .transpose()?,
                })
            })();
            parsed.map_or_else(Listed::Unreadable, Listed::Found)
        });
        Ok(listed.collect())
    }
}

fn sha1_of(bytes: &[u8]) -> [u8; 20] {
    use sha1::Digest as _;
    sha1::Sha1::digest(bytes).into()
}

/// `text` with Redis glob characters escaped, for a `MATCH` pattern.
pub(super) fn escape_glob(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Whether `value` starts as a pickle of protocol 2 to 5 does (`PROTO` and
/// its number; Flask-Session before 0.7 used the highest, 4 or 5). As msgpack
/// that is an empty map followed by more bytes, which no encoder writes.
pub(super) fn pickled(value: &[u8]) -> bool {
    matches!(value, [0x80, 2..=5, _, ..])
}

impl Combining for FlaskSessionRedisStore {
    fn combiner(&self) -> &Combiner {
        &self.shared.combiner
    }

    fn handle(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }

    async fn load_alone(&self, id: &SessionId, now: u64) -> Result<Option<Record>, StoreError> {
        let now = clamp(now);
        let Some((value, mut record, foreign)) = self.fetch(id, now).await? else {
            return Ok(None);
        };
        if !record.is_live(now) {
            // Past its absolute expiry, yet Flask-Session, which knows
            // nothing of it, keeps the value alive: ended now, for both
            // apps, before the metadata holding the deadline runs out and
            // the session would read as one Flask-Session made. A value
            // tessera wrote last dies at the deadline by its TTL.
            if foreign {
                self.end_expired(id, &value, now).await?;
            }
            return Ok(None);
        }
        let Some(data) = self.decode_loaded(id, &value)? else {
            return Ok(None);
        };
        record.data = data;
        Ok(Some(record))
    }

    async fn increment_alone(
        &self,
        id: &SessionId,
        key: &str,
        by: i64,
        now: u64,
    ) -> Result<Option<i64>, StoreError> {
        self.modify(id, clamp(now), (None, None), None, true, |data| {
            let value = incremented(key, data.get(key), by)?;
            data.insert_borrowed(key, Value::from(value));
            Ok(value)
        })
        .await
    }
}

#[async_trait::async_trait]
impl SessionStore for FlaskSessionRedisStore {
    async fn setup_warnings(&self) -> Result<Vec<String>, StoreError> {
        let layout = self.sample_layout().await?;
        let mut warnings: Vec<String> = layout
            .and_then(|layout| {
                super::layout_warning(&self.shared.prefix, Layout::FlaskSession, layout)
            })
            .into_iter()
            .collect();
        if matches!(layout, Some(Layout::FlaskSession | Layout::Both))
            && self.shared.link.sample_pickled(&self.shared.prefix).await?
        {
            warnings.push(format!(
                "sessions under the key prefix {:?} are pickled, as Flask-Session before 0.7 \
                 stores them: tessera never unpickles, so their visitors start new sessions \
                 here; upgrade the Flask application sharing the prefix to Flask-Session 0.7 \
                 or later (msgpack or JSON) before sharing sessions with it",
                self.shared.prefix
            ));
        }
        Ok(warnings)
    }

    async fn load(&self, id: &SessionId, now: u64) -> Result<Option<Record>, StoreError> {
        combine::load(self, id, now).await
    }

    async fn create(&self, id: &SessionId, record: &Record) -> Result<bool, StoreError> {
        let mut call = ScriptCall::new(
            &FLASK_SCRIPTS.create,
            &[
                &self.value_key(id),
                &self.metadata_key(id),
                &self.expiry_key(),
            ],
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
            .arg(record.user_id.as_deref().unwrap_or(""))
            .arg(self.encode(&record.data)?);
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
            return Ok(self
                .snapshot(id, now)
                .await?
                .is_some_and(|snapshot| snapshot.live));
        }
        Ok(self.apply(id, changes, now, false).await? != UpdateOutcome::Vanished)
    }

    async fn update_or_delete_if_empty(
        &self,
        id: &SessionId,
        changes: &Changes,
        now: u64,
    ) -> Result<UpdateOutcome, StoreError> {
        self.apply(id, changes, clamp(now), true).await
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let mut call = ScriptCall::new(
            &FLASK_SCRIPTS.delete,
            &[&self.value_key(id), &self.expiry_key()],
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
            &FLASK_SCRIPTS.cycle,
            &[
                &self.value_key(old),
                &self.metadata_key(old),
                &self.value_key(new),
                &self.metadata_key(new),
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
        self.modify(id, clamp(now), (None, None), None, true, |data| {
            append_in_map(data, key, value)
        })
        .await
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
        let (ids, start) = match user_id {
            Some(user) => {
                let members = ::redis::cmd("SMEMBERS").arg(self.user_key(user)).clone();
                self.shared
                    .listing
                    .ids_after(user_id, after, self.shared.link.read_ids(&members))
                    .await?
            }
            None => {
                self.shared
                    .listing
                    .ids_after(None, after, self.scan_ids())
                    .await?
            }
        };

        let mut found = Vec::new();
        let mut stale = Vec::new();
        let mut left_out = LeftOut::default();
        let mut rest = &ids[start..];
        while found.len() < limit && !rest.is_empty() {
            let (chunk, tail) =
                rest.split_at((limit - found.len()).min(LIST_FETCH).min(rest.len()));
            rest = tail;
            for (id, info) in chunk.iter().zip(self.info(chunk, now).await?) {
                let Some(info) = info.found(id, &mut stale, &mut left_out) else {
                    continue;
                };
                if user_id.is_some() && info.user_id.as_deref() != user_id {
                    stale.push(id);
                    continue;
                }
                if now < deadline(info.expires_at, info.absolute_expires_at) {
                    left_out.listed();
                    found.push(info);
                }
            }
        }
        left_out.finish(!found.is_empty());
        if let (Some(user), false) = (user_id, stale.is_empty()) {
            // The same check as the hash layout's: the owner lives in the
            // metadata hash, which is where that script looks.
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
        super::delete_user_in_batches(
            &self.shared.link,
            &FLASK_SCRIPTS.delete_user,
            self.user_key(user_id),
            self.expiry_key(),
            &self.shared.prefix,
            user_id,
        )
        .await
    }

    async fn purge_expired(&self, now: u64, batch: usize) -> Result<u64, StoreError> {
        let (link, prefix) = (&self.shared.link, &self.shared.prefix);
        let index = self.expiry_key();
        super::purge_with(link, &FLASK_SCRIPTS.purge, &index, prefix, now, batch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A builder on a store whose state a task serving queued increments
    /// still holds configures a copy of its own, as on [`RedisStore`](super::super::RedisStore)
    /// (where a server is at hand to race real increments).
    #[test]
    fn a_builder_on_a_store_still_held_configures_a_copy() {
        let store = FlaskSessionRedisStore::new("redis://127.0.0.1:1/", SerializationFormat::Json)
            .expect("a Redis URL");
        let held = store.handle();
        let store = store.with_prefix("elsewhere:").with_connections(3);
        assert_eq!((store.prefix(), store.connections()), ("elsewhere:", 3));
        assert_eq!((held.prefix(), held.connections()), (DEFAULT_PREFIX, 1));
        assert_eq!(store.format(), held.format());
    }

    /// As an unreadable record of tessera's own layout is (README,
    /// "Unreadable records"): the session is lost to its visitor.
    #[test]
    fn unreadable_records_are_ignored_with_an_error_logged() {
        #[derive(Clone, Default)]
        struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("lock").extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let store = FlaskSessionRedisStore::new("redis://127.0.0.1:1/", SerializationFormat::Json)
            .expect("a Redis URL");
        let id = SessionId::generate();
        let deep = format!("{{\"a\": {}1{}}}", "[".repeat(200), "]".repeat(200));
        let pickle = [
            0x80, 0x04, 0x95, 0x0a, 0, 0, 0, 0, 0, 0, 0, b'}', 0x94, b'.',
        ];
        for record in [deep.as_bytes(), &pickle, b"\xff not a session"] {
            let lines = Lines::default();
            let writer = lines.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .finish();
            let decoded =
                tracing::subscriber::with_default(subscriber, || store.decode(&id, record));
            assert_eq!(decoded, None);
            let logged = String::from_utf8(lines.0.lock().expect("lock").clone()).expect("text");
            assert!(logged.contains("ERROR"), "{record:?}: {logged}");
        }
    }

    #[test]
    fn pickles_are_told_from_what_msgpack_and_json_encoders_write() {
        // pickle.dumps({'a': 1}, protocol=N) for N = 2, 4, 5.
        for pickle in [
            "80027d710058010000006171014b01732e",
            "8004950a000000000000007d948c0161944b01732e",
            "8005950a000000000000007d948c0161944b01732e",
        ] {
            let bytes: Vec<u8> = (0..pickle.len())
                .step_by(2)
                .map(|at| u8::from_str_radix(&pickle[at..at + 2], 16).expect("hex"))
                .collect();
            assert!(pickled(&bytes), "{pickle}");
            assert!(SerializationFormat::Msgpack.decode(&bytes).is_err());
        }
        let mut data = Map::new();
        assert!(!pickled(&[0x80]), "msgspec's empty map");
        for keys in 0..4 {
            for format in [SerializationFormat::Msgpack, SerializationFormat::Json] {
                let written = format.encode(&data).expect("encodes");
                assert!(!pickled(&written), "{written:?}");
            }
            data.insert(format!("k{keys}"), Value::from(2));
        }
    }

    #[test]
    fn scripts_carry_only_the_helpers_they_call() {
        super::super::tests::assert_scripts_define_exactly_the_helpers_they_call(
            &[LUA_CONSTANTS, FLASK_LUA_CONSTANTS],
            &[LUA_HELPERS, FLASK_LUA_HELPERS],
            &[
                LOAD,
                CREATE,
                WRITE,
                DELETE,
                DELETE_IF_UNCHANGED,
                END_EXPIRED,
                CYCLE,
                INFO,
                PURGE,
                DELETE_USER,
            ],
        );
        // Through set_blob: ttl_ms, a helper of the shared set.
        let write = lua_source(
            &[LUA_CONSTANTS, FLASK_LUA_CONSTANTS],
            &[LUA_HELPERS, FLASK_LUA_HELPERS],
            WRITE,
        );
        assert!(write.contains("local function set_blob("), "{write}");
        assert!(write.contains("local function ttl_ms("), "{write}");
    }

    #[test]
    fn glob_characters_in_the_prefix_are_escaped() {
        assert_eq!(escape_glob("session:"), "session:");
        assert_eq!(escape_glob("{a}*?[x]\\:"), "{a}\\*\\?\\[x\\]\\\\:");
    }
}
