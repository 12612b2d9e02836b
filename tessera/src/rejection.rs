//! Why a handler could not be given its [`Session`](crate::Session), for
//! every framework's extractor.

/// Why a [`Session`](crate::Session) could not be extracted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The route is not wrapped in tessera's middleware
    /// ([`SessionLayer`](crate::SessionLayer), or `tessera::actix::SessionMiddleware`).
    #[error(
        "no session on this request: wrap the application in tessera::SessionLayer \
         (tower, axum) or tessera::actix::SessionMiddleware (actix-web)"
    )]
    MissingLayer,
    /// The server-side store could not load the session.
    #[error("the session store is unavailable; try again shortly")]
    StoreUnavailable,
    /// The server-side store failed in a way that trying again does not
    /// mend: misconfigured (tables of another shape, a URL naming a
    /// directory), answered 500 and logged with the cause.
    #[error("the session store failed; see the server's log")]
    StoreFailed,
}

/// What a client is told when the session store is unavailable, the same
/// from the extractors, the error conversions and the middleware.
#[cfg(any(feature = "axum", feature = "actix"))]
pub(crate) const STORE_UNAVAILABLE_BODY: &str =
    "Service Unavailable: the session store is unavailable; try again shortly.\n";

/// What a client is told when its session ended (a logout elsewhere, an
/// expiry) while its request wrote to it, so that nothing was saved (the
/// tower layer's responses have a body type of the application's).
#[cfg(feature = "actix")]
pub(crate) const SESSION_ENDED_BODY: &str = "Conflict: the session ended (logged out or \
    expired) or moved to a new id (a login) while this request was using it; what it changed \
    was not saved.\n";

impl SessionRejection {
    /// What the client is told: the store's outage in the words every
    /// other 503 of tessera's uses; a missing layer as the error itself, for
    /// the developer who forgot it.
    #[cfg(any(feature = "axum", feature = "actix"))]
    pub(crate) fn client_message(&self) -> String {
        match self {
            SessionRejection::StoreUnavailable => STORE_UNAVAILABLE_BODY.to_owned(),
            SessionRejection::StoreFailed => "Internal Server Error\n".to_owned(),
            SessionRejection::MissingLayer => self.to_string(),
        }
    }

    /// The status code the rejection answers with.
    pub fn status(&self) -> http::StatusCode {
        match self {
            SessionRejection::MissingLayer | SessionRejection::StoreFailed => {
                http::StatusCode::INTERNAL_SERVER_ERROR
            }
            SessionRejection::StoreUnavailable => http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `Retry-After` value the rejection sends, if any.
    pub fn retry_after(&self) -> Option<&'static str> {
        match self {
            SessionRejection::MissingLayer | SessionRejection::StoreFailed => None,
            SessionRejection::StoreUnavailable => Some("1"),
        }
    }

    /// Whether the answer depends on the request's cookie, and so must say
    /// `Vary: Cookie` (which the session's own responses carry once it was
    /// read): a store that failed to load the session was asked only
    /// because a cookie named one; the same route without it answers 200.
    #[cfg(any(feature = "axum", feature = "actix"))]
    pub(crate) fn varies_with_cookie(&self) -> bool {
        !matches!(self, SessionRejection::MissingLayer)
    }

    /// Logs what the server operator must know, once per rejection.
    #[cfg(any(feature = "axum", feature = "actix"))]
    pub(crate) fn log(&self) {
        if *self == SessionRejection::MissingLayer {
            tracing::error!("{self}");
        }
    }
}

/// The extractors' shared step: the session the middleware put on the
/// request, loaded from the store if it is server-side. A handler that does
/// not take a `Session` therefore costs no store call.
#[cfg(any(feature = "axum", feature = "actix"))]
pub(crate) async fn loaded(
    session: Option<crate::Session>,
    outcome: crate::store::Outcome,
) -> Result<crate::Session, SessionRejection> {
    let session = session.ok_or(SessionRejection::MissingLayer)?;
    session.load().await.map_err(|error| {
        if error.is_outage() {
            crate::store::STORE_OUTAGES.log_with_outcome(
                &error,
                "could not load the session",
                outcome,
            );
            SessionRejection::StoreUnavailable
        } else {
            // No retry mends it: a 500, not a 503 clients would retry.
            crate::store::STORE_FAULTS.log_with_outcome(
                &error,
                "could not load the session",
                outcome.failing(),
            );
            SessionRejection::StoreFailed
        }
    })?;
    Ok(session)
}
