//! The session as JSON, and the atomic counter and cart: the same routes in
//! every `SESSION_TYPE`.
//!
//! Server-side, requests sharing one session that write different keys all
//! persist (the store merges changes key by key), and `POST /visits` and
//! `POST /cart` use the store's atomic increment and append, so parallel
//! requests lose nothing. A cookie session can only offer that within one
//! request: parallel requests each send back their own cookie and the last
//! one wins, as in Flask.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use tessera::{Map, Session, Value};

use crate::respond::{
    bad_request, check_length, check_name, form_fields, session_failure, FormBody,
};
use crate::AppState;

/// The largest JSON body `PUT /api/session/{key}` accepts, in bytes.
pub(crate) const MAX_JSON_BYTES: usize = 16 * 1024;

/// The most a visitor's session may hold, as Flask's tagged JSON, in every
/// mode: the demo lets anyone write any key, and without a bound one
/// visitor could grow a server-side session (and the work of every request
/// on it) without end, or a cookie session past what a cookie read accepts
/// (compressed, a cookie under 4 KB can hold far more).
pub(crate) const MAX_SESSION_JSON_BYTES: usize = 64 * 1024;

/// The size of a session holding `data`, as Flask's tagged JSON.
fn json_size(data: &Map) -> usize {
    tessera::tagged::to_string(&Value::Dict(data.clone())).len()
}

/// `413` if a session holding `data` would exceed
/// [`MAX_SESSION_JSON_BYTES`].
fn too_large_a_session(data: &Map) -> Option<Response> {
    let size = json_size(data);
    if size <= MAX_SESSION_JSON_BYTES {
        return None;
    }
    Some(
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Payload Too Large: the session would hold {size} bytes of JSON; the demo keeps \
             sessions under {MAX_SESSION_JSON_BYTES}. Nothing was changed: remove keys \
             (DELETE /api/session/{{key}}) to make room.\n"
            ),
        )
            .into_response(),
    )
}

/// `GET /api/session`: every key, as plain JSON (tuples as arrays, bytes as
/// arrays of numbers, UUIDs and datetimes as strings), numbers exactly as
/// stored up to 128-bit integers (beyond, the nearest float; Python's `NaN`
/// and infinities, which JSON lacks, as `null`).
pub(crate) async fn show(session: Session) -> Response {
    Json(Value::Dict(session.to_map())).into_response()
}

/// `PUT /api/session/{key}`: the JSON body becomes the key's value; answers
/// the value as stored.
pub(crate) async fn put(
    State(state): State<AppState>,
    session: Session,
    key: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let key = match checked_key(key) {
        Ok(key) => key,
        Err(message) => return bad_request(&message),
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            return (
                rejection.status(),
                format!("could not read the body: {}\n", rejection.body_text()),
            )
                .into_response()
        }
    };
    if body.len() > MAX_JSON_BYTES {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Payload Too Large: the JSON value is {} bytes; at most {MAX_JSON_BYTES} are accepted.\n",
                body.len()
            ),
        )
            .into_response();
    }
    // Read as Flask reads a session: numbers exactly (any size of integer),
    // written as Python writes them (`1E5` is `100000.0`), and tagged values
    // ({" t": [...]} a tuple, ...) too; but a `" d"` that is no date is
    // refused, where Flask's reading would store `null` instead.
    let parsed = std::str::from_utf8(&body)
        .map_err(|error| error.to_string())
        .and_then(|text| tessera::tagged::from_str_strict(text).map_err(|error| error.to_string()))
        .map(|mut value| {
            tessera::tagged::python_numbers(&mut value);
            value
        });
    let value = match parsed {
        Ok(value) => value,
        Err(error) => {
            return bad_request(&format!(
                "the body must be one JSON value, such as \"dark\", 42, [1, 2] or {{\"a\": true}} \
                 ({error})"
            ))
        }
    };
    if nests_too_deep_for_a_session(&key, &value) {
        return bad_request(&format!(
            "the value nests more than {} levels deep ({} under a key named like one of Flask's \
             tags, such as \" t\"); inside the session, which adds a level, it could not be \
             read back.",
            tessera::tagged::MAX_DEPTH - 1,
            tessera::tagged::MAX_DEPTH - 2
        ));
    }
    let value = match state.info.flask_format {
        // Saved only after the handler, where a refusal could only be a 500;
        // and what the format keeps of it (in JSON, bytes become base64
        // text, tuples lists) is what is answered, and what later reads get.
        Some(format) => match format
            .encode(&Map::from([(key.as_str(), value)]))
            .and_then(|bytes| format.decode(&bytes))
        {
            Ok(mut stored) => stored.remove(&key).unwrap_or(Value::Null),
            Err(error) => {
                return bad_request(&format!(
                    "the value cannot be stored in Flask-Session's {} format \
                     (SESSION_SERIALIZATION_FORMAT): {error}",
                    format.as_str()
                ))
            }
        },
        None => value,
    };
    let before = session.to_map();
    let mut after = before.clone();
    after.insert(key.clone(), value.clone());
    if let Some(too_large) = too_large_a_session(&after) {
        return too_large;
    }
    if let Some(too_large) = too_large_to_write(&state, &before, &after) {
        return too_large;
    }
    session.insert_value(key.clone(), value);
    Json(session.get_value(&key).unwrap_or(Value::Null)).into_response()
}

/// Whether `value` under `key`, put in a session (one level more, two for a
/// tag's name), would nest deeper than a session is read: the cookie could
/// not be sent, nor the session read back from a store.
fn nests_too_deep_for_a_session(key: &str, value: &Value) -> bool {
    let session = Value::Dict(Map::from([(key, value.clone())]));
    tessera::tagged::from_str(&tessera::tagged::to_string(&session)).is_err()
}

/// `DELETE /api/session/{key}`: `204 No Content`, whether or not it was there.
pub(crate) async fn delete(session: Session, key: Result<Path<String>, PathRejection>) -> Response {
    match checked_key(key) {
        Ok(key) => {
            session.remove(&key);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(message) => bad_request(&message),
    }
}

/// In cookie mode, when the writes made since `before` was taken would make
/// the cookie larger than browsers keep: puts `before` back and answers
/// `413`, so that the visitor keeps a working session rather than a cookie
/// the browser drops. A write to a session over the limit already (which
/// `MAX_COOKIE_SIZE` lowered since, or another app, made so) that leaves
/// it no larger goes through, as the library sends it: refused, the
/// visitor could change nothing, not even to make it smaller.
pub(crate) fn undo_if_too_large(
    state: &AppState,
    session: &Session,
    before: Map,
) -> Option<Response> {
    let size = overflow_from(state, &before, &session.to_map())?;
    session.update(|data| *data = before);
    Some(too_large_for_a_cookie(size))
}

/// [`undo_if_too_large`] before the write, for a handler that knows what
/// the session would hold after it (`after`): the session is not touched,
/// so the `413` carries no cookie, where one written and put back is sent
/// again, as Flask sends a session it marked modified.
fn too_large_to_write(state: &AppState, before: &Map, after: &Map) -> Option<Response> {
    overflow_from(state, before, after).map(too_large_for_a_cookie)
}

/// The cookie size of `after`, if going from `before` to it is refused.
fn overflow_from(state: &AppState, before: &Map, after: &Map) -> Option<usize> {
    let size = state.info.overflow_of(after)?;
    let shrinks = state
        .info
        .overflow_of(before)
        .is_some_and(|before| size <= before);
    (!shrinks).then_some(size)
}

/// `413`: in cookie mode, the write would make the cookie larger than
/// browsers keep; it was refused before it was made, or undone (then the
/// unchanged cookie is sent again, as the session was written).
fn too_large_for_a_cookie(size: usize) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "Payload Too Large: the session cookie would be about {size} bytes, over \
             MAX_COOKIE_SIZE, and browsers drop such cookies; nothing was changed. Server-side \
             sessions (SESSION_TYPE=sqlite or memory) hold much more.\n"
        ),
    )
        .into_response()
}

/// The key from the path, or why it is refused.
fn checked_key(key: Result<Path<String>, PathRejection>) -> Result<String, String> {
    let Path(key) = key.map_err(|rejection| {
        format!(
            "the key in /api/session/{{key}} must be UTF-8 text ({})",
            rejection.body_text()
        )
    })?;
    if key.is_empty() {
        return Err("the key in /api/session/{key} is empty.".to_owned());
    }
    check_name("key", &key)?;
    Ok(key)
}

/// `POST /visits`: adds one to `visits`, atomically; answers the new count.
pub(crate) async fn visit(State(state): State<AppState>, session: Session) -> Response {
    let before = session.to_map();
    match session.increment("visits", 1).await {
        Ok(visits) => {
            if let Some(too_large) = undo_if_too_large(&state, &session, before) {
                return too_large;
            }
            visits.to_string().into_response()
        }
        Err(error) => session_failure(error),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CartForm {
    item: Option<String>,
}

/// `POST /cart` with a form field `item`: appends it to `cart`, atomically;
/// answers the whole cart as a JSON array.
pub(crate) async fn add_to_cart(
    State(state): State<AppState>,
    session: Session,
    form: FormBody,
) -> Response {
    let item = match form_fields(form) {
        Ok(CartForm { item }) => item.unwrap_or_default(),
        Err(response) => return *response,
    };
    if item.trim().is_empty() {
        return bad_request("the cart form needs a non-empty `item` field, e.g. item=apple.");
    }
    if let Err(message) = check_length("item", &item) {
        return bad_request(&message);
    }
    let before = session.to_map();
    // Checked before: the append is saved at once in a server-side store.
    let mut after = before.clone();
    let mut cart = match after.get("cart") {
        Some(Value::List(items)) => items.clone(),
        _ => Vec::new(),
    };
    cart.push(Value::from(item.as_str()));
    after.insert("cart".to_owned(), Value::List(cart));
    if let Some(too_large) = too_large_a_session(&after) {
        return too_large;
    }
    if let Some(too_large) = too_large_to_write(&state, &before, &after) {
        return too_large;
    }
    if let Err(error) = session.append("cart", item).await {
        return session_failure(error);
    }
    Json(session.get_value("cart").unwrap_or(Value::List(Vec::new()))).into_response()
}
