//! The axum extractor for [`Session`].

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;

use crate::session::Session;

/// Why a [`Session`] could not be extracted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The route is not wrapped in a [`SessionLayer`](crate::SessionLayer).
    #[error("no session on this request: wrap the router in tessera::SessionLayer")]
    MissingLayer,
    /// The server-side store could not load the session.
    #[error("the session store is unavailable; try again shortly")]
    StoreUnavailable,
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        match self {
            SessionRejection::MissingLayer => {
                tracing::error!("{self}");
                (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
            }
            SessionRejection::StoreUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(http::header::RETRY_AFTER, "1")],
                self.to_string(),
            )
                .into_response(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = SessionRejection;

    /// Server-side, this is where the session is loaded: a handler that does
    /// not take a `Session` costs no store call.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let session = parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(SessionRejection::MissingLayer)?;
        session.load().await.map_err(|error| {
            tracing::error!(%error, "could not load the session; answering 503");
            SessionRejection::StoreUnavailable
        })?;
        Ok(session)
    }
}
