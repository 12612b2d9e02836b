//! What the HTTP benchmark measures: every server, its framework family, its
//! baseline, the store it needs and how its counter is expected to merge.

use std::fmt;

/// A server `bench-server` can run (`--server NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ServerKind {
    /// axum 0.8 without sessions: the baseline of the axum family.
    AxumBare,
    /// axum without sessions that still carries a session's bytes: it gets
    /// a `Cookie` header and answers with a `Set-Cookie` of the length
    /// tessera's cookie sessions send, and `Vary: Cookie`, both fixed. What
    /// any cookie session costs over HTTP before doing any session work.
    AxumHeaders,
    /// axum + tessera, Flask's signed cookies.
    TesseraCookie,
    /// axum + tessera, encrypted cookies (`SessionType::EncryptedCookie`).
    TesseraEncrypted,
    /// axum + tessera, server-side in this process's memory.
    TesseraMemory,
    /// axum + tessera, server-side in SQLite.
    TesseraSqlite,
    /// axum + tessera, server-side in Redis.
    TesseraRedis,
    /// axum + tessera, server-side in PostgreSQL.
    TesseraPostgres,
    /// axum + tower-sessions 0.14, `MemoryStore`.
    TowerMemory,
    /// axum + tower-sessions 0.14, tower-sessions-sqlx-store's `SqliteStore`.
    TowerSqlite,
    /// axum + tower-sessions 0.14, tower-sessions-redis-store (fred).
    TowerRedis,
    /// axum + tower-sessions 0.14, tower-sessions-sqlx-store's `PostgresStore`.
    TowerPostgres,
    /// actix-web 4 without sessions: the baseline of the actix family.
    ActixBare,
    /// actix-web 4 + actix-session, `CookieSessionStore`.
    ActixCookie,
    /// actix-web 4 + actix-session, `RedisSessionStore`.
    ActixRedis,
    /// actix-web 4 + tessera's actix middleware, Flask's signed cookies.
    TesseraActixCookie,
    /// actix-web 4 + tessera's actix middleware, server-side in Redis.
    TesseraActixRedis,
}

impl ServerKind {
    /// The `--server` name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::AxumBare => "axum-bare",
            Self::AxumHeaders => "axum-headers",
            Self::TesseraCookie => "tessera-cookie",
            Self::TesseraEncrypted => "tessera-encrypted",
            Self::TesseraMemory => "tessera-memory",
            Self::TesseraSqlite => "tessera-sqlite",
            Self::TesseraRedis => "tessera-redis",
            Self::TesseraPostgres => "tessera-postgres",
            Self::TowerMemory => "tower-memory",
            Self::TowerSqlite => "tower-sqlite",
            Self::TowerRedis => "tower-redis",
            Self::TowerPostgres => "tower-postgres",
            Self::ActixBare => "actix-bare",
            Self::ActixCookie => "actix-cookie",
            Self::ActixRedis => "actix-redis",
            Self::TesseraActixCookie => "tessera-actix-cookie",
            Self::TesseraActixRedis => "tessera-actix-redis",
        }
    }

    /// The external store this server needs a URL for, if any.
    pub const fn store(self) -> Store {
        match self {
            Self::AxumBare | Self::AxumHeaders | Self::ActixBare => Store::None,
            Self::TesseraCookie
            | Self::TesseraEncrypted
            | Self::ActixCookie
            | Self::TesseraActixCookie => Store::Cookie,
            Self::TesseraMemory | Self::TowerMemory => Store::Memory,
            Self::TesseraSqlite | Self::TowerSqlite => Store::Sqlite,
            Self::TesseraRedis | Self::TowerRedis | Self::ActixRedis | Self::TesseraActixRedis => {
                Store::Redis
            }
            Self::TesseraPostgres | Self::TowerPostgres => Store::Postgres,
        }
    }
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a target keeps its sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// No sessions at all (a baseline).
    None,
    /// In the cookie itself.
    Cookie,
    /// In the server process's memory.
    Memory,
    /// In an SQLite file (a fresh one per run, in a temporary directory).
    Sqlite,
    /// In Redis (`--redis-url`).
    Redis,
    /// In PostgreSQL (`--postgres-url`).
    Postgres,
}

impl Store {
    /// A short name for the report.
    pub fn label(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Cookie => "cookie",
            Self::Memory => "memory",
            Self::Sqlite => "SQLite",
            Self::Redis => "Redis",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// A framework family: one table in the report, one baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// axum: bare, tessera and tower-sessions. Baseline `axum-bare`.
    Axum,
    /// actix-web: bare, tessera and actix-session. Baseline `actix-bare`.
    Actix,
    /// Flask under gunicorn. Baseline `axum-bare`.
    Flask,
}

impl Family {
    /// Every family, in report order.
    pub const ALL: [Family; 3] = [Family::Axum, Family::Actix, Family::Flask];

    /// The table's heading.
    pub fn title(self) -> &'static str {
        match self {
            Self::Axum => "axum 0.8: tessera and tower-sessions",
            Self::Actix => "actix-web 4: tessera and actix-session",
            Self::Flask => "Flask 3.1 under gunicorn (sync workers)",
        }
    }

    /// The target whose throughput this family's ratios divide by.
    pub fn baseline(self) -> &'static str {
        match self {
            Self::Axum | Self::Flask => "axum-bare",
            Self::Actix => "actix-bare",
        }
    }
}

/// How concurrent increments of one session's counter are expected to merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// No session: nothing to check.
    None,
    /// A cookie session: every request starts from the cookie it sent, so
    /// with one fixed cookie the counter stays where that cookie had it.
    Cookie,
    /// Server-side, read-modify-write of the whole session: concurrent
    /// requests overwrite each other's increments (lost updates expected).
    LastWriteWins,
    /// Server-side, atomic increments (tessera's `Session::increment`):
    /// every acknowledged request must be counted.
    Atomic,
}

/// How a target is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// `bench-server --server NAME`.
    Rust(ServerKind),
    /// gunicorn with `interop/bench_flask_app.py`, Flask's cookie sessions.
    FlaskCookie,
    /// gunicorn with `interop/bench_flask_app.py`, Flask-Session on Redis.
    FlaskSessionRedis,
}

/// One thing the benchmark measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The name used in `--only` and in the report.
    pub name: &'static str,
    /// How it is started.
    pub launch: Launch,
    /// Its table in the report.
    pub family: Family,
    /// Where its sessions live.
    pub store: Store,
    /// What its counter check expects.
    pub merge: Merge,
}

const fn rust(kind: ServerKind, family: Family, merge: Merge) -> Target {
    Target {
        name: kind.name(),
        launch: Launch::Rust(kind),
        family,
        store: kind.store(),
        merge,
    }
}

/// Every target, in the order the odd rounds run them in (even rounds run
/// them backwards). Same-backend pairs sit next to each other so they run
/// close in time, and each runs first in one round and second in the next.
pub const ALL: [Target; 19] = [
    rust(ServerKind::AxumBare, Family::Axum, Merge::None),
    rust(ServerKind::AxumHeaders, Family::Axum, Merge::None),
    rust(ServerKind::TesseraCookie, Family::Axum, Merge::Cookie),
    rust(ServerKind::TesseraEncrypted, Family::Axum, Merge::Cookie),
    rust(ServerKind::TesseraMemory, Family::Axum, Merge::Atomic),
    rust(ServerKind::TowerMemory, Family::Axum, Merge::LastWriteWins),
    rust(ServerKind::TesseraSqlite, Family::Axum, Merge::Atomic),
    rust(ServerKind::TowerSqlite, Family::Axum, Merge::LastWriteWins),
    rust(ServerKind::TesseraRedis, Family::Axum, Merge::Atomic),
    rust(ServerKind::TowerRedis, Family::Axum, Merge::LastWriteWins),
    rust(ServerKind::TesseraPostgres, Family::Axum, Merge::Atomic),
    rust(
        ServerKind::TowerPostgres,
        Family::Axum,
        Merge::LastWriteWins,
    ),
    rust(ServerKind::ActixBare, Family::Actix, Merge::None),
    rust(ServerKind::TesseraActixCookie, Family::Actix, Merge::Cookie),
    rust(ServerKind::ActixCookie, Family::Actix, Merge::Cookie),
    rust(ServerKind::TesseraActixRedis, Family::Actix, Merge::Atomic),
    rust(ServerKind::ActixRedis, Family::Actix, Merge::LastWriteWins),
    Target {
        name: "flask-cookie",
        launch: Launch::FlaskCookie,
        family: Family::Flask,
        store: Store::Cookie,
        merge: Merge::Cookie,
    },
    Target {
        name: "flask-session-redis",
        launch: Launch::FlaskSessionRedis,
        family: Family::Flask,
        store: Store::Redis,
        merge: Merge::LastWriteWins,
    },
];

/// The target called `name`.
pub fn find(name: &str) -> Option<&'static Target> {
    ALL.iter().find(|target| target.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_targets_agree_with_their_server_kind() {
        for target in ALL {
            if let Launch::Rust(kind) = target.launch {
                assert_eq!(kind.name(), target.name);
                assert_eq!(kind.store(), target.store, "{}", target.name);
                let parsed = <ServerKind as clap::ValueEnum>::from_str(target.name, false);
                assert_eq!(parsed, Ok(kind));
            }
        }
        for family in Family::ALL {
            assert!(find(family.baseline()).is_some());
        }
    }

    #[test]
    fn the_key_is_what_actix_needs() {
        assert_eq!(crate::SECRET_KEY.len(), 64);
    }
}
