//! Flask's sessions for Rust web services.
//!
//! Tessera gives tower, axum and actix-web services the `session` Flask users know: a
//! dict-like, typed per-visitor store with Flask's semantics (permanent
//! sessions, lifetime, refresh, `modified`/`accessed`, flash messages),
//! configured with Flask's names and defaults, in signed cookies that are
//! **byte-compatible with Flask's**: a Rust service and a Flask app sharing a
//! `SECRET_KEY` accept each other's sessions.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use tessera::{Session, SessionConfig, SessionLayer};
//!
//! async fn set_session(session: Session) -> &'static str {
//!     session.insert("username", "your_username").ok();
//!     "Session data set."
//! }
//!
//! async fn get_session(session: Session) -> String {
//!     match session.get::<String>("username").ok().flatten() {
//!         Some(name) => format!("Welcome, {name}!"),
//!         None => "No session data found.".to_owned(),
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = SessionConfig::builder()
//!     .secret_key(std::env::var("SECRET_KEY")?)
//!     .build()?;
//! let app = Router::new()
//!     .route("/set_session", get(set_session))
//!     .route("/get_session", get(get_session))
//!     .layer(SessionLayer::new(config));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! The same sessions run on actix-web with the `actix` feature:
//! wrap the app in `tessera::actix::SessionMiddleware` and take a
//! [`Session`] in handlers. Both integrations are thin adapters over one core,
//! so they follow the same rules.
//!
//! Hostile cookies (tampered, expired, malformed, oversized, zlib bombs,
//! signed non-objects) never fail a request: they give an empty session.

#[cfg(feature = "actix")]
pub mod actix;
mod codec;
pub mod config;
mod cookie_header;
mod core;
mod deflate_bound;
mod email_date;
mod encrypted;
#[cfg(feature = "axum")]
mod extract;
mod key;
mod layer;
pub mod map;
mod python_base64;
mod rejection;
mod scratch;
mod server;
mod session;
mod signing;
pub mod store;
pub mod tagged;
mod value;
mod value_serde;
mod words;

pub use codec::{
    decode_unverified, CookieCodec, DecodeError, Decoded, DEFAULT_MAX_PAYLOAD_SIZE, DEFAULT_SALT,
};
pub use config::{
    ConfigError, SameSite, SessionConfig, SessionConfigBuilder, SessionType, UnknownName,
};
pub use cookie_header::{cookie_values, CookieValues};
pub use key::SecretKey;
pub use layer::{ResponseFuture, SessionLayer, SessionService};
pub use map::Map;
pub use rejection::SessionRejection;
pub use session::{
    Flash, Session, SessionError, DEFAULT_FLASH_CATEGORY, FLASHES_KEY, PERMANENT_KEY,
};
pub use signing::SignatureError;
pub use store::{
    Changes, MemoryStore, Record, SessionId, SessionInfo, SessionStore, StoreError, UpdateOutcome,
};
pub use value::{Number, Value};

/// The `time` crate this version of tessera uses, for [`Value::DateTime`]
/// without a dependency of your own to keep in step.
pub use time;

// The README's Rust examples (those not marked `ignore`), compiled by
// `cargo test --doc` so that they keep up with the API. One of them is
// actix-web's, and axum is a default feature.
#[cfg(all(doctest, feature = "axum", feature = "actix"))]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;
