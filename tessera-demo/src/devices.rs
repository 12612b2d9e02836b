//! "Your sessions": the logged-in user's sessions (one per browser or
//! device), and "log out everywhere". Both need server-side sessions: a
//! cookie session lives only in the cookie, so it can be neither listed nor
//! ended from the server.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tessera::{Session, SessionInfo, Value};

use crate::page::{escape, format_unix, html_response, page};
use crate::respond::{check_name, conflict, flash, redirect_home, session_failure};
use crate::AppState;

/// `GET /sessions`: the user's live sessions, this one marked, with a
/// "log out everywhere" button.
pub(crate) async fn list(State(state): State<AppState>, uri: Uri, session: Session) -> Response {
    let session_type = state.info.session_type;
    if !session_type.is_server_side() {
        return sessions_page(&format!(
            "<p class=\"status\">Listing your sessions needs server-side sessions.</p>\
             <p>This demo runs with <code>SESSION_TYPE={}</code>: your session lives only in \
             your browser's {}, so the server keeps no list of sessions and cannot \
             end a copy of a cookie. Start the demo with <code>SESSION_TYPE=sqlite</code> (its \
             default) or <code>SESSION_TYPE=memory</code> to see them.</p>",
            escape(&session_type.to_string()),
            crate::cookie_kind(session_type)
        ));
    }
    let user = match (session.user_id(), logged_in_as(&session)) {
        (Some(owner), Some(username)) if owner == username => Some(owner),
        // Logged in (again) through Flask-Session, which sets `username`
        // and knows nothing of the owner: the page says who is logged in,
        // so tie the session to them, as the demo's own login does, and
        // come back once the tie is stored (`?tied` marks the way back). A
        // reload of that page, or a login there as another user since, ties
        // it again and lists at once: the listing stores the tie first.
        (_, Some(username)) => {
            session.set_user_id(Some(&username));
            if uri.query() != Some(TIED_QUERY) {
                return (StatusCode::SEE_OTHER, [(header::LOCATION, TIED_LOCATION)])
                    .into_response();
            }
            Some(username)
        }
        // Logged out through Flask-Session, which leaves the owner: not
        // this user's sessions any more.
        (Some(_), None) => {
            session.set_user_id(None);
            None
        }
        _ => None,
    };
    let Some(user) = user else {
        return sessions_page(
            "<p class=\"status\">You are not logged in.</p>\
             <p>Log in on <a href=\"/\">the demo page</a> to see your sessions.</p>",
        );
    };
    let mut sessions = match session.user_sessions().await {
        Ok(sessions) => sessions,
        Err(error) => return session_failure(error),
    };
    sessions.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
    let current = session.id();

    let mut body = format!(
        "<p class=\"status\">{} has {}: one for each browser or device logged in.</p>",
        escape(&user),
        count(
            u64::try_from(sessions.len()).unwrap_or(u64::MAX),
            "live session"
        ),
    );
    body.push_str(
        "<table><thead><tr><th>session</th><th>created</th><th>expires</th><th></th></tr>\
         </thead><tbody>",
    );
    for info in &sessions {
        let this = current.as_ref() == Some(&info.id);
        let _ = write!(
            body,
            "<tr><td><code>#{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&info.id.fingerprint()),
            format_unix(info.created_at),
            format_unix(expires_at(info)),
            if this {
                "<strong>this device</strong>"
            } else {
                ""
            }
        );
    }
    body.push_str("</tbody></table>");
    if current.is_none() {
        body.push_str(
            "<p class=\"muted\">This browser's session is not stored yet, so it is not listed.</p>",
        );
    }
    body.push_str(
        "<p class=\"muted\">Only a fingerprint of each session id is shown: the id itself is \
         the credential in the cookie.</p>\
         <form method=\"post\" action=\"/sessions/logout-everywhere\">\
         <button type=\"submit\">Log out everywhere</button></form>\
         <p class=\"muted\">Ends every session above, this one included: a copied cookie \
         stops working at once.</p>",
    );
    sessions_page(&body)
}

/// `POST /sessions/logout-everywhere`: ends every session of the user (or
/// just this one without a user), then back to `/` with a flash saying how
/// many ended.
pub(crate) async fn logout_everywhere(State(state): State<AppState>, session: Session) -> Response {
    if !state.info.session_type.is_server_side() {
        return conflict(&format!(
            "log out everywhere needs server-side sessions, and this demo runs with \
             SESSION_TYPE={}: a cookie session lives only in the browser, so the server cannot \
             end copies of it. Use /logout to log out in this browser, or start the demo with \
             SESSION_TYPE=sqlite (its default) or memory.",
            state.info.session_type
        ));
    }
    // A login through Flask-Session (sharing the store) sets `username`
    // but ties the session to no user, and a login there as another user,
    // or a logout, leaves the tie as it was: brought in line with who the
    // page says is logged in first, as on "your sessions", so that
    // "everywhere" means that user's sessions, as after the demo's own login.
    match (session.user_id(), logged_in_as(&session)) {
        (Some(owner), Some(username)) if owner == username => {}
        (_, Some(username)) => session.set_user_id(Some(&username)),
        (Some(_), None) => session.set_user_id(None),
        (None, None) => {}
    }
    // The store counts this session among the user's: `log_out_everywhere`
    // stores the tie first.
    match session.log_out_everywhere().await {
        Ok(ended) => {
            flash(
                &session,
                format!("Logged out everywhere: {} ended", count(ended, "session")),
            );
            redirect_home()
        }
        Err(error) => session_failure(error),
    }
}

/// Where `GET /sessions` comes back to after tying a session, and the query
/// that tells it so.
const TIED_LOCATION: &str = "/sessions?tied";
const TIED_QUERY: &str = "tied";

/// Who the page says is logged in: `username`, which the demo's login and
/// a Flask app sharing the store both set (the demo also ties the session
/// to that user; the Flask app ties it to no one, and leaves the tie when
/// it logs out or in as another user).
fn logged_in_as(session: &Session) -> Option<String> {
    match session.get_value("username") {
        // One the login form would refuse (put through the JSON API, or by
        // a Flask app sharing the store) ties the session to no one: a NUL
        // character is no user id PostgreSQL stores.
        Some(Value::String(username))
            if !username.trim().is_empty() && check_name("username", &username).is_ok() =>
        {
            Some(username)
        }
        _ => None,
    }
}

/// When the session ends unless used again (or at its absolute expiry).
fn expires_at(info: &SessionInfo) -> u64 {
    info.absolute_expires_at
        .map_or(info.expires_at, |absolute| absolute.min(info.expires_at))
}

fn count(n: u64, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

fn sessions_page(body: &str) -> Response {
    html_response(page(
        "Your sessions · tessera demo",
        &format!(
            "<section><h2>Your sessions</h2>{body}<p><a href=\"/\">Back to the demo</a></p></section>"
        ),
    ))
}
