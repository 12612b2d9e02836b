//! Responses every handler shares: redirects, clear `400`s, and session
//! failures mapped to the status a client can act on (`503` for an outage,
//! `409` for a session ended meanwhile; `500` only where trying again
//! cannot help).

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use tessera::{Session, SessionError, Value};

/// Longest accepted `username`, `pet`, cart `item` or API key, in
/// characters: in cookie mode the session must still fit in a cookie
/// (`MAX_COOKIE_SIZE`, 4093 bytes by default).
pub(crate) const MAX_FIELD_CHARS: usize = 256;

/// How many flash messages a session keeps for its next page: a client
/// that never loads the page that shows them (a script repeating a login or
/// a logout) would otherwise grow the stored session without end, past what
/// the demo lets a visitor store.
pub(crate) const MAX_PENDING_FLASHES: usize = 20;

/// `flash(message)`, unless [`MAX_PENDING_FLASHES`] messages wait to be
/// shown already. (Dropping the oldest instead would rewrite the whole
/// list, where a flash is stored as an edit of it that keeps what
/// concurrent requests flash or show.)
pub(crate) fn flash(session: &Session, message: impl Into<String>) {
    let pending = match session.get_value(tessera::FLASHES_KEY) {
        Some(Value::List(messages)) => messages.len(),
        _ => 0,
    };
    if pending < MAX_PENDING_FLASHES {
        session.flash(message.into());
    }
}

/// Flask's `redirect('/')`: `302 Found`.
pub(crate) fn redirect_home() -> Response {
    (StatusCode::FOUND, [(header::LOCATION, "/")]).into_response()
}

pub(crate) fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, format!("Bad Request: {message}\n")).into_response()
}

/// A request's form fields, in order, as Flask's `request.form` has them:
/// from an `application/x-www-form-urlencoded` body, or a
/// `multipart/form-data` one (`curl -F`, a form with that `enctype`), whose
/// file parts are Flask's `request.files`, not fields. Any other body gives
/// no fields, as in Flask, and so does a multipart body that cannot be
/// read (Werkzeug reads none from it). A body too large to read is a `413`.
pub(crate) struct FormBody(Result<Vec<(String, String)>, Box<Response>>);

impl<S: Send + Sync> FromRequest<S> for FormBody {
    type Rejection = Infallible;

    async fn from_request(request: Request, state: &S) -> Result<Self, Infallible> {
        // The media type without its parameters, in any case, as Werkzeug
        // reads it (`APPLICATION/X-WWW-FORM-URLENCODED` is a form too).
        let media_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .map(|essence| essence.trim().to_ascii_lowercase());
        let fields = match media_type.as_deref() {
            Some("multipart/form-data") => {
                multipart_fields(Multipart::from_request(request, state).await).await
            }
            Some("application/x-www-form-urlencoded") => {
                urlencoded_fields(Bytes::from_request(request, state).await)
            }
            _ => Ok(Vec::new()),
        };
        Ok(Self(fields))
    }
}

fn too_large() -> Box<Response> {
    Box::new(
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload Too Large: the form is larger than this server reads.\n",
        )
            .into_response(),
    )
}

fn urlencoded_fields(
    form: Result<Bytes, BytesRejection>,
) -> Result<Vec<(String, String)>, Box<Response>> {
    let body = match form {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(too_large())
        }
        Err(rejection) => {
            return Err(Box::new(bad_request(&format!(
                "the form could not be read ({})",
                rejection.body_text()
            ))))
        }
    };
    Ok(werkzeug_urlencoded_fields(&body))
}

/// An urlencoded body's fields as Werkzeug 3 reads them: a body that is not
/// UTF-8 has none at all; fields are split on `&` (empty ones skipped) and
/// at their first `=`; `+` is a space; and percent-escapes that decode to no
/// UTF-8 are left escaped (`%FF` stays `%FF`, in capitals) rather than
/// replaced, so a name reads back as it was typed.
fn werkzeug_urlencoded_fields(body: &[u8]) -> Vec<(String, String)> {
    if std::str::from_utf8(body).is_err() {
        return Vec::new();
    }
    body.split(|&byte| byte == b'&')
        .filter(|field| !field.is_empty())
        .map(|field| match field.iter().position(|&byte| byte == b'=') {
            Some(at) => (unquote_plus(&field[..at]), unquote_plus(&field[at + 1..])),
            None => (unquote_plus(field), String::new()),
        })
        .collect()
}

fn unquote_plus(text: &[u8]) -> String {
    let spaced: Vec<u8> = text
        .iter()
        .map(|&byte| if byte == b'+' { b' ' } else { byte })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A part's `charset` parameter as Werkzeug's `parse_options_header` reads
/// it from the part's raw `Content-Type`: `name=value` with no blank around
/// `=`, the value a token or a quoted string, the last one named `charset`
/// winning, in lowercase. Whatever else the header holds does not hide it.
fn part_charset(content_type: &[u8]) -> Option<String> {
    let token = |byte: &u8| byte.is_ascii_alphanumeric() || b"!#$%&*+-.^_`|~".contains(byte);
    let mut charset = None;
    for parameter in content_type.split(|&byte| byte == b';').skip(1) {
        let parameter = parameter.trim_ascii_start();
        let name_length = parameter.iter().take_while(|byte| token(byte)).count();
        let (name, rest) = parameter.split_at(name_length);
        let Some(value) = rest.strip_prefix(b"=") else {
            continue;
        };
        if !name.eq_ignore_ascii_case(b"charset") {
            continue;
        }
        let value = match value.strip_prefix(b"\"") {
            Some(quoted) => match quoted.iter().position(|&byte| byte == b'"') {
                Some(end) => &quoted[..end],
                None => continue,
            },
            None => &value[..value.iter().take_while(|byte| token(byte)).count()],
        };
        if !value.is_empty() {
            charset = Some(String::from_utf8_lossy(value).to_ascii_lowercase());
        }
    }
    charset
}

/// A multipart text field's bytes as Werkzeug 3 decodes them: in the part's
/// `charset` if it is one of the four it trusts, else UTF-8; bytes that do
/// not decode become U+FFFD, and a byte order mark is a character like any
/// other, not a choice of encoding.
fn werkzeug_part_text(bytes: &[u8], content_type: Option<&[u8]>) -> String {
    match part_charset(content_type.unwrap_or_default()).as_deref() {
        Some("iso-8859-1") => bytes.iter().copied().map(char::from).collect(),
        Some("ascii" | "us-ascii") => bytes
            .iter()
            .map(|&byte| {
                if byte.is_ascii() {
                    char::from(byte)
                } else {
                    char::REPLACEMENT_CHARACTER
                }
            })
            .collect(),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

async fn multipart_fields(
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Vec<(String, String)>, Box<Response>> {
    // Too large is a 413; otherwise, as Werkzeug, no fields at all.
    let refused = |status: StatusCode| {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Err(too_large())
        } else {
            Ok(Vec::new())
        }
    };
    let mut form = match form {
        Ok(form) => form,
        Err(rejection) => return refused(rejection.status()),
    };
    let mut fields = Vec::new();
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Ok(fields),
            Err(error) => return refused(error.status()),
        };
        let Some(name) = field.name().map(str::to_owned) else {
            continue;
        };
        if field.file_name().is_some() {
            continue;
        }
        // Raw: the parsed type is none at all when anything in the header
        // displeases the parser, where Werkzeug still finds the charset.
        let content_type = field
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| value.as_bytes().to_vec());
        match field.bytes().await {
            Ok(value) => fields.push((name, werkzeug_part_text(&value, content_type.as_deref()))),
            Err(error) => return refused(error.status()),
        }
    }
}

/// The fields of a form as Flask's `request.form[name]` reads them: the
/// first value of a repeated field wins.
pub(crate) fn form_fields<T: DeserializeOwned>(form: FormBody) -> Result<T, Box<Response>> {
    let mut fields = serde_json::Map::new();
    for (name, value) in form.0? {
        fields
            .entry(name)
            .or_insert_with(|| serde_json::Value::String(value));
    }
    serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|error| Box::new(bad_request(&format!("unexpected form fields ({error})"))))
}

pub(crate) fn conflict(message: &str) -> Response {
    (StatusCode::CONFLICT, format!("Conflict: {message}\n")).into_response()
}

/// A `username`, `pet`, cart `item` or API key must fit in a session cookie.
pub(crate) fn check_length(field: &str, value: &str) -> Result<(), String> {
    let chars = value.chars().count();
    if chars > MAX_FIELD_CHARS {
        Err(format!(
            "`{field}` is {chars} characters long; at most {MAX_FIELD_CHARS} are accepted (in \
             cookie mode the whole session must fit in a cookie)."
        ))
    } else {
        Ok(())
    }
}

/// An API key or a `username` (the session's user id) holds no NUL
/// character, which PostgreSQL cannot store in a key or a user id: refused
/// in every mode, so that the demo behaves the same on every store. Values
/// (a pet's name, a cart item) may hold one.
pub(crate) fn check_name(field: &str, value: &str) -> Result<(), String> {
    if value.contains('\0') {
        return Err(format!("`{field}` contains a NUL character."));
    }
    check_length(field, value)
}

/// A session operation that failed, as the client should see it:
///
/// - the store is down: `503 Service Unavailable` with `Retry-After`, as
///   the library's extractor answers;
/// - the stored session cannot be read or written back (corrupt, or holding
///   a value the store's format cannot): `500`, as the library answers;
/// - a key holds the wrong type for an atomic operation (say `visits` set to
///   a string through the API), or the session was ended by another request
///   meanwhile, or the operation needs server-side sessions: `409 Conflict`
///   saying so;
/// - a value that cannot be stored or read as asked: `400 Bad Request`.
pub(crate) fn session_failure(error: SessionError) -> Response {
    match error {
        SessionError::WrongType { .. } => conflict(&error.to_string()),
        // The library's own answer: a 503 with `Retry-After` for an outage
        // (logged at most once a second while the store stays down: one
        // line per failed request would be thousands a second), a 500
        // logged with the cause for the rest (corrupt data, a value the
        // store's format cannot hold, a store unusable as configured),
        // which fail the same way on every retry.
        SessionError::Store(_) => error.into_response(),
        SessionError::Revoked => conflict(
            "your session was ended (logged out, perhaps from another device) while this \
             request was using it; reload the page to start a new one.",
        ),
        SessionError::NotServerSide(_) => conflict(&format!(
            "{error}. Start the demo with SESSION_TYPE=sqlite (its default) or memory."
        )),
        SessionError::Deserialize { .. } | SessionError::Serialize { .. } => {
            bad_request(&error.to_string())
        }
        // A kind of failure added after this demo was written: say what it
        // is rather than guess at a status.
        _ => bad_request(&error.to_string()),
    }
}
