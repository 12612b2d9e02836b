//! tessera's [`SessionLayer`] on a plain hyper 1 server: no axum, no
//! framework, just a [`tower::service_fn`] handler that takes the
//! [`Session`] from the request's extensions.
//!
//! [`serve`] is the whole server. The binary reads the configuration and the
//! port from the environment and calls it (see `src/main.rs` for how to run
//! it); the tests call it on port 0.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | `visit number N`, counting the visitor's visits in the session |
//! | `GET /logout` | `session cleared`; the response deletes the cookie |

use std::convert::Infallible;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tessera::{Session, SessionConfig, SessionError, SessionLayer};
use tokio::net::TcpListener;
use tower::{service_fn, Layer as _};

/// Serves the two routes on `listener`, with sessions as `config` says,
/// until the process ends.
pub async fn serve(listener: TcpListener, config: SessionConfig) {
    serve_with(listener, SessionLayer::new(config)).await;
}

/// How long a client may take to send a request's headers, and an open
/// connection may wait idle for its next request: past it hyper closes the
/// connection, so clients that send nothing, or a byte at a time
/// (slowloris), cannot hold sockets and tasks for ever. hyper applies none
/// unless given a timer.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// [`serve`] with a layer built by the caller, such as
/// [`SessionLayer::with_store`] for a store of one's own.
pub async fn serve_with(listener: TcpListener, layer: SessionLayer) {
    serve_with_header_timeout(listener, layer, HEADER_READ_TIMEOUT).await;
}

/// [`serve_with`], closing connections whose request headers take longer
/// than `header_timeout` (or that wait idle that long).
pub async fn serve_with_header_timeout(
    listener: TcpListener,
    layer: SessionLayer,
    header_timeout: Duration,
) {
    // One service for every connection: with server-side sessions, the
    // connections share the layer's store.
    let service = layer.layer(service_fn(handle));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors or memory: returning would end the
                // server over a passing condition, and retrying at once
                // would spin until connections close.
                tracing::error!(%error, "could not accept a connection");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(service.clone());
        let connection = http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // Clients hanging up mid-request are routine.
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
}

enum Route {
    Visit,
    Logout,
}

async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Routing first, so that unknown paths cost no store call.
    let route = match (request.method(), request.uri().path()) {
        // HEAD is GET without the body (hyper leaves it out), as HTTP asks.
        (&Method::GET | &Method::HEAD, "/") => Route::Visit,
        (&Method::GET | &Method::HEAD, "/logout") => Route::Logout,
        (_, "/" | "/logout") => {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return Ok(response);
        }
        _ => return Ok(text(StatusCode::NOT_FOUND, "Not Found\n")),
    };
    let Some(session) = request.extensions().get::<Session>().cloned() else {
        tracing::error!("no session on the request: the service is not wrapped in SessionLayer");
        return Ok(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error\n",
        ));
    };
    // Server-side, the layer has only read the id from the cookie; the data
    // comes from the store here (axum's and actix-web's extractors do this
    // for their handlers). Cookie sessions are loaded already.
    if let Err(error) = session.load().await {
        return Ok(session_failure(&SessionError::from(error)));
    }
    Ok(match route {
        // Atomic in the store, so parallel requests of one visitor all count.
        Route::Visit => match session.increment("visits", 1).await {
            Ok(visits) => text(StatusCode::OK, format!("visit number {visits}")),
            Err(error) => session_failure(&error),
        },
        Route::Logout => {
            session.clear();
            text(StatusCode::OK, "session cleared")
        }
    })
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// What tessera's extractors answer when the store fails: the client may
/// retry, and no write is acknowledged that was not stored.
fn unavailable() -> Response<Full<Bytes>> {
    let mut response = text(
        StatusCode::SERVICE_UNAVAILABLE,
        "Service Unavailable: the session store is unavailable; try again shortly.\n",
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Answered with the status the error says: 503 (with `Retry-After`) while
/// the store is unavailable; 409 when `visits` holds something else
/// (written by another app sharing the session) or another request ended
/// the session meanwhile, a conflict with the session's data; 500 for the
/// rest (a store that answers but fails, a misconfiguration).
fn session_failure(error: &SessionError) -> Response<Full<Bytes>> {
    let status = error.status();
    if status.is_server_error() {
        tracing::error!(%error, "session operation failed; answering {status}");
    }
    match status {
        StatusCode::SERVICE_UNAVAILABLE => unavailable(),
        StatusCode::CONFLICT => text(status, format!("Conflict: {error}\n")),
        _ => text(status, "Internal Server Error\n"),
    }
}
