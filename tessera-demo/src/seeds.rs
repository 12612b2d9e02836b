//! The tutorials' own routes, with their exact texts.
//!
//! Every handler takes the request's [`Session`] and answers plain text or a
//! redirect; bad form input is a `400 Bad Request`, never a panic.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera::{Session, SessionError, Value};

use crate::api::undo_if_too_large;
use crate::respond::{
    bad_request, check_length, check_name, flash, form_fields, redirect_home, session_failure,
    FormBody,
};
use crate::AppState;

/// A session value as the seeds' f-strings show it: strings as they are,
/// anything else (written by some other app sharing the key) as tagged JSON.
pub(crate) fn value_text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_tagged_json(), str::to_owned)
}

// ---- seed 000: Flask Tutorials: Session Configuration

/// `session['username'] = 'your_username'`
///
/// The tutorial's way of logging in, so server-side it is one, as `/login`'s:
/// a new id, and the session tied to that user, so that "your sessions" and
/// "log out everywhere" agree with the page's "Logged in as".
pub(crate) async fn set_session(State(state): State<AppState>, session: Session) -> Response {
    const USERNAME: &str = "your_username";
    if session.user_id().as_deref() != Some(USERNAME) {
        match session.cycle_id().await {
            Ok(()) | Err(SessionError::Revoked) => {}
            Err(error) => return session_failure(error),
        }
        session.set_user_id(Some(USERNAME));
    }
    let before = session.to_map();
    session.insert_value("username", USERNAME);
    if let Some(too_large) = undo_if_too_large(&state, &session, before) {
        return too_large;
    }
    "Session data set.".into_response()
}

/// `f'Welcome, {session["username"]}!'` or `'No session data found.'`
pub(crate) async fn get_session(session: Session) -> String {
    match session.get_value("username") {
        Some(username) => format!("Welcome, {}!", value_text(&username)),
        None => "No session data found.".to_owned(),
    }
}

/// `session.pop('username', None)`, and the session no longer tied to the
/// user, whom the page then no longer shows as logged in either.
pub(crate) async fn delete_session(session: Session) -> &'static str {
    session.remove("username");
    if session.user_id().is_some() {
        session.set_user_id(None);
    }
    "Session data deleted."
}

// ---- seed 001: Flask Sessions

/// `session['Username'] = 'Admin'`
pub(crate) async fn setsession(State(state): State<AppState>, session: Session) -> Response {
    let before = session.to_map();
    session.insert_value("Username", "Admin");
    if let Some(too_large) = undo_if_too_large(&state, &session, before) {
        return too_large;
    }
    "The session has been Set".into_response()
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
///
/// Server-side, the session first gets a fresh id (an id planted before
/// login, session fixation, is worthless afterwards) and is tied to the user,
/// so it is listed on `/sessions` and ended by "log out everywhere".
pub(crate) async fn login(
    State(state): State<AppState>,
    session: Session,
    form: FormBody,
) -> Response {
    let username = match form_fields(form) {
        Ok(LoginForm { username }) => username.unwrap_or_default(),
        Err(response) => return *response,
    };
    if username.trim().is_empty() {
        return bad_request(
            "The login form needs a non-empty `username` field, e.g. username=alice.",
        );
    }
    if let Err(message) = check_name("username", &username) {
        return bad_request(&message);
    }
    match session.cycle_id().await {
        // Revoked: the session ended meanwhile; the login starts a fresh one.
        Ok(()) | Err(SessionError::Revoked) => {}
        Err(error) => return session_failure(error),
    }
    let before = session.to_map();
    session.set_user_id(Some(&username));
    flash(&session, format!("Logged in as {username}"));
    session.insert_value("username", username);
    if let Some(too_large) = undo_if_too_large(&state, &session, before) {
        return too_large;
    }
    redirect_home()
}

/// `session.pop('username', None)`, then back to `/`.
///
/// Server-side, logging out someone who was logged in ends the whole session
/// in the store, so a copy of the cookie is worthless at once; the flash then
/// starts a fresh, anonymous session. A visitor who was not logged in keeps
/// the rest of their session, as the tutorial's `pop` does.
pub(crate) async fn logout(State(state): State<AppState>, session: Session) -> Response {
    let logged_in = session.remove("username").is_some() || session.user_id().is_some();
    if logged_in && state.info.session_type.is_server_side() {
        if let Err(error) = session.destroy().await {
            return session_failure(error);
        }
    }
    let before = session.to_map();
    flash(
        &session,
        if logged_in {
            "Logged out"
        } else {
            "You were not logged in"
        },
    );
    // In cookie mode a session filled up to the cookie limit has no room for
    // the message: the logout goes without it, and if even that is too large
    // for browsers (which would drop the cookie and keep the old one,
    // logged in), without the rest of the session too.
    if state.info.cookie_overflow(&session).is_some() {
        session.update(|data| *data = before);
        if logged_in && state.info.cookie_overflow(&session).is_some() {
            session.clear();
        }
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
    State(state): State<AppState>,
    session: Session,
    form: FormBody,
) -> Response {
    let PetForm { pet, remember } = match form_fields(form) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    if let Some(pet) = &pet {
        if let Err(message) = check_length("pet", pet) {
            return bad_request(&message);
        }
    }
    // As in Flask, a missing field stores None and an empty one "": both mean
    // "I do not know your pet's name".
    let known = pet.as_deref().is_some_and(|pet| !pet.is_empty());
    let before = session.to_map();
    session.insert_value("pet_name", pet.map_or(Value::Null, Value::String));
    flash(
        &session,
        if known {
            "Pet name saved"
        } else {
            "Pet name cleared"
        },
    );
    if remember.is_some() {
        let permanent_from_the_start =
            state.info.session_type.is_server_side() && state.info.session_permanent;
        flash(
            &session,
            match session.permanent() {
                // Server-side sessions are permanent from the start unless
                // SESSION_PERMANENT=false, as in Flask-Session.
                true if permanent_from_the_start => {
                    "Remembered: this session was permanent already (SESSION_PERMANENT=true, \
                 Flask-Session's default), so it outlives the browser either way"
                }
                true => "Remembered: this session was permanent already",
                false => "Remembered: this session is now permanent",
            },
        );
        session.set_permanent(true);
    }
    if let Some(too_large) = undo_if_too_large(&state, &session, before) {
        return too_large;
    }
    redirect_home()
}
