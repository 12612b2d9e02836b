//! The axum extractor for [`Session`].

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

use crate::rejection::{loaded, SessionRejection};
use crate::session::{Session, SessionError};

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        self.log();
        let mut response = text_response(self.status(), self.retry_after(), self.client_message());
        if self.varies_with_cookie() {
            response
                .headers_mut()
                .insert(http::header::VARY, http::HeaderValue::from_static("Cookie"));
        }
        response
    }
}

/// Lets handlers return `Result<_, SessionError>` and use `?` on session
/// operations: see [`SessionError::status`] for the status each answers.
impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        self.log();
        text_response(self.status(), self.retry_after(), self.client_message())
    }
}

/// A plain-text response, with `Retry-After` if given.
fn text_response(
    status: http::StatusCode,
    retry_after: Option<&'static str>,
    body: String,
) -> Response {
    let mut response = (status, body).into_response();
    if let Some(retry_after) = retry_after {
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static(retry_after),
        );
    }
    response
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = SessionRejection;

    /// Server-side, this is where the session is loaded: a handler that does
    /// not take a `Session` costs no store call.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        loaded(
            parts.extensions.get::<Session>().cloned(),
            crate::store::Outcome::Answered503,
        )
        .await
    }
}

/// `Option<Session>`: `None` on a route the session layer does not cover,
/// instead of the 500 that `Session` answers there. A store that cannot be
/// reached is still a 503: a session that exists but cannot be loaded is
/// not the same as none.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Session {
    type Rejection = SessionRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match parts.extensions.get::<Session>().cloned() {
            None => Ok(None),
            session => loaded(session, crate::store::Outcome::Answered503)
                .await
                .map(Some),
        }
    }
}
