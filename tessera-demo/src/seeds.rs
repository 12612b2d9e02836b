//! The tutorials' own routes, with their exact texts.
//!
//! Every handler takes the request's [`Session`] and answers plain text or a
//! redirect; bad form input is a `400 Bad Request`, never a panic.

use axum::extract::rejection::FormRejection;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use tessera::{Session, Value};

/// Longest accepted `username` or `pet`, in characters: the session must
/// still fit in a cookie (`MAX_COOKIE_SIZE`, 4093 bytes by default).
pub(crate) const MAX_FIELD_CHARS: usize = 256;

/// A session value as the seeds' f-strings show it: strings as they are,
/// anything else (written by some other app sharing the key) as tagged JSON.
pub(crate) fn value_text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_tagged_json(), str::to_owned)
}

// ---- seed 000: Flask Tutorials: Session Configuration

/// `session['username'] = 'your_username'`
pub(crate) async fn set_session(session: Session) -> &'static str {
    session.insert_value("username", "your_username");
    "Session data set."
}

/// `f'Welcome, {session["username"]}!'` or `'No session data found.'`
pub(crate) async fn get_session(session: Session) -> String {
    match session.get_value("username") {
        Some(username) => format!("Welcome, {}!", value_text(&username)),
        None => "No session data found.".to_owned(),
    }
}

/// `session.pop('username', None)`
pub(crate) async fn delete_session(session: Session) -> &'static str {
    session.remove("username");
    "Session data deleted."
}

// ---- seed 001: Flask Sessions

/// `session['Username'] = 'Admin'`
pub(crate) async fn setsession(session: Session) -> &'static str {
    session.insert_value("Username", "Admin");
    "The session has been Set"
}

/// `f"Welcome {Username}"` or `"Welcome Anonymous"`
pub(crate) async fn getsession(session: Session) -> String {
    match session.get_value("Username") {
        Some(username) => format!("Welcome {}", value_text(&username)),
        None => "Welcome Anonymous".to_owned(),
    }
}

/// `session.pop('Username', None)`
pub(crate) async fn popsession(session: Session) -> &'static str {
    session.remove("Username");
    "Session Deleted"
}

// ---- seed 002: Flask session object

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    username: Option<String>,
}

/// `session['username'] = request.form['username']`, then back to `/`.
pub(crate) async fn login(
    session: Session,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let username = match form {
        Ok(Form(LoginForm { username })) => username.unwrap_or_default(),
        Err(rejection) => return bad_form(&rejection),
    };
    if username.trim().is_empty() {
        return bad_request(
            "The login form needs a non-empty `username` field, e.g. username=alice.",
        );
    }
    if let Err(message) = check_length("username", &username) {
        return bad_request(&message);
    }
    session.flash(format!("Logged in as {username}"));
    session.insert_value("username", username);
    redirect_home()
}

/// `session.pop('username', None)`, then back to `/`.
pub(crate) async fn logout(session: Session) -> Response {
    if session.remove("username").is_some() {
        session.flash("Logged out");
    } else {
        session.flash("You were not logged in");
    }
    redirect_home()
}

// ---- seed 003: Introduction to sessions

#[derive(Debug, Deserialize)]
pub(crate) struct PetForm {
    pet: Option<String>,
    remember: Option<String>,
}

/// `session['pet_name'] = request.form.get('pet')`; a `remember` field makes
/// the session permanent (`session.permanent = True`). Then back to `/`.
pub(crate) async fn petname(
    session: Session,
    form: Result<Form<PetForm>, FormRejection>,
) -> Response {
    let PetForm { pet, remember } = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return bad_form(&rejection),
    };
    if let Some(pet) = &pet {
        if let Err(message) = check_length("pet", pet) {
            return bad_request(&message);
        }
    }
    // As in Flask, a missing field stores None and an empty one "": both mean
    // "I do not know your pet's name".
    let known = pet.as_deref().is_some_and(|pet| !pet.is_empty());
    session.insert_value("pet_name", pet.map_or(Value::Null, Value::String));
    session.flash(if known {
        "Pet name saved"
    } else {
        "Pet name cleared"
    });
    if remember.is_some() {
        session.set_permanent(true);
        session.flash("Remembered: this session is now permanent");
    }
    redirect_home()
}

// ---- helpers

/// Flask's `redirect('/')`: `302 Found`.
fn redirect_home() -> Response {
    (StatusCode::FOUND, [(header::LOCATION, "/")]).into_response()
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, format!("Bad Request: {message}\n")).into_response()
}

fn bad_form(rejection: &FormRejection) -> Response {
    bad_request(&format!(
        "expected an application/x-www-form-urlencoded form ({})",
        rejection.body_text()
    ))
}

fn check_length(field: &str, value: &str) -> Result<(), String> {
    let chars = value.chars().count();
    if chars > MAX_FIELD_CHARS {
        Err(format!(
            "`{field}` is {chars} characters long; at most {MAX_FIELD_CHARS} fit in a session cookie."
        ))
    } else {
        Ok(())
    }
}
