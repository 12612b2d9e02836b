//! The tessera demo: one axum app serving the examples of four Flask session
//! tutorials, with sessions stored the way Flask stores them.
//!
//! [`build_app`] builds the router from a [`SessionConfig`], so tests can run
//! it in-process; [`cli::run`] is what the `tessera-demo` binary does
//! (configuration from the environment, secret key file, listening, graceful
//! shutdown).
//!
//! | route | seed | what it does |
//! |---|---|---|
//! | `GET /` | 002, 003 | the page: login and pet name status, forms, the session's contents |
//! | `GET /set_session`, `/get_session`, `/delete_session` | 000 | `session["username"]` |
//! | `GET /setsession`, `/getsession`, `/popsession` | 001 | `session["Username"]` |
//! | `POST /login`, `GET /logout` | 002 | log in with a form field `username`, log out |
//! | `GET /petname`, `POST /petname` | 003 | a form for `pet` (and `remember`: a permanent session) |

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tessera::{SessionConfig, SessionLayer, SessionType};

pub mod cli;
mod page;
pub mod secret;
mod seeds;

/// What the page shows about the configuration.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) info: Arc<ConfigInfo>,
}

#[derive(Debug)]
pub(crate) struct ConfigInfo {
    pub(crate) session_type: SessionType,
    pub(crate) lifetime: Duration,
    pub(crate) refresh_each_request: bool,
    pub(crate) cookie_name: String,
}

/// The demo's router, with every route wrapped in a [`SessionLayer`] for `config`.
pub fn build_app(config: SessionConfig) -> Router {
    let state = AppState {
        info: Arc::new(ConfigInfo {
            session_type: config.session_type(),
            lifetime: config.permanent_session_lifetime(),
            refresh_each_request: config.refresh_each_request(),
            cookie_name: config.cookie_name().to_owned(),
        }),
    };
    Router::new()
        .route("/", get(page::index))
        // Seed 000: Flask Tutorials: Session Configuration.
        .route("/set_session", get(seeds::set_session))
        .route("/get_session", get(seeds::get_session))
        .route("/delete_session", get(seeds::delete_session))
        // Seed 001: Flask Sessions.
        .route("/setsession", get(seeds::setsession))
        .route("/getsession", get(seeds::getsession))
        .route("/popsession", get(seeds::popsession))
        // Seed 002: Flask session object.
        .route("/login", post(seeds::login))
        .route("/logout", get(seeds::logout))
        // Seed 003: Introduction to sessions.
        .route("/petname", get(page::petname_form).post(seeds::petname))
        .fallback(not_found)
        .with_state(state)
        .layer(SessionLayer::new(config))
        .layer(middleware::from_fn(log_request))
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "Not Found")
}

/// One log line per request: method, path, status.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::info!(%method, %path, status = response.status().as_u16(), "request");
    response
}
