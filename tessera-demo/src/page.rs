//! The HTML pages: `/` (status, forms for every example, the session's
//! contents) and seed 003's `GET /petname` form, and what the other pages
//! share.
//!
//! Every string that comes from a visitor or a cookie goes through [`escape`].

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use tessera::{Flash, Session, SessionType, Value};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

use crate::seeds::value_text;
use crate::{AppState, ConfigInfo};

/// No scripts, no external anything: inline styles and same-origin forms only.
const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";

const STYLE: &str = "\
body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f5f6f8;color:#1d2430}
main{max-width:48rem;margin:1.5rem auto;padding:0 1rem}
h1{margin:0;font-size:1.6rem}
.lead{color:#5a6472;margin:.2rem 0 1rem}
section{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:.9rem 1.2rem;margin:1rem 0}
h2{font-size:1.05rem;margin:0 0 .4rem}
h2 small{font-weight:normal;color:#5a6472}
.status{font-weight:600;margin:.3rem 0}
.flashes{list-style:none;padding:0;margin:0}
.flashes li{background:#e7f5ea;border:1px solid #b3dcbc;border-radius:6px;padding:.45rem .8rem;margin:.4rem 0}
form{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:.5rem 0}
input[type=text]{padding:.3rem .5rem;border:1px solid #c4cad3;border-radius:4px;font:inherit}
button,input[type=submit]{padding:.3rem .9rem;border:0;border-radius:4px;background:#2f6feb;color:#fff;font:inherit;cursor:pointer}
a{color:#2058c9}
ul.links{margin:.3rem 0;padding-left:1.2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #eceff3;vertical-align:top}
code,pre{font-family:ui-monospace,'SF Mono',Menlo,Consolas,monospace;font-size:.88em}
pre{background:#f1f3f6;padding:.6rem .8rem;border-radius:4px;white-space:pre-wrap;word-break:break-all;margin:.5rem 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.3rem 0}
dt{color:#5a6472}
dd{margin:0}
.muted{color:#5a6472}
";

/// `GET /`: seed 002's and seed 003's index views in one page, plus the
/// forms and links to try every example and a look inside the session.
pub(crate) async fn index(State(state): State<AppState>, session: Session) -> Response {
    let flashes = session.take_flashes();
    let username = session.get_value("username");
    let pet_name = session.get_value("pet_name").filter(truthy);

    let mut body = String::new();
    write_flashes(&mut body, &flashes);
    write_login(&mut body, username.as_ref());
    write_pet(&mut body, pet_name.as_ref());
    write_examples(&mut body);
    write_counter_and_cart(&mut body, &session);
    write_api(&mut body);
    write_session_panel(&mut body, &state, &session, SystemTime::now());
    html_response(page("tessera demo", &body))
}

/// `GET /petname`: seed 003's form, with the "Session Life" checkbox.
/// It does not touch the session.
pub(crate) async fn petname_form() -> Response {
    let body = "<section><h2>What is your pet's name? <small>seed 003</small></h2>\
        <form method=\"POST\" action=\"/petname\">\
        <input type=\"text\" name=\"pet\" aria-label=\"Pet name\">\
        <label><input type=\"checkbox\" name=\"remember\"> Remember me \
        (a permanent session)</label>\
        <input type=\"submit\"></form>\
        <p><a href=\"/\">Back to the demo</a></p></section>";
    html_response(page("Pet name · tessera demo", body))
}

pub(crate) fn html_response(html: String) -> Response {
    ([(header::CONTENT_SECURITY_POLICY, CSP)], Html(html)).into_response()
}

pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head>\n<body><main>\
         <h1>tessera demo</h1>\
         <p class=\"lead\">Four Flask session tutorials, served by Rust with Flask's \
         session rules (and, with SESSION_TYPE=cookie, cookies Flask itself can \
         read).</p>\n{body}\n</main></body></html>\n",
        title = escape(title),
    )
}

fn write_flashes(out: &mut String, flashes: &[Flash]) {
    if flashes.is_empty() {
        return;
    }
    out.push_str("<ul class=\"flashes\">");
    for flash in flashes {
        let _ = write!(
            out,
            "<li class=\"flash-{}\">{}</li>",
            escape(&flash.category),
            escape(&flash.text())
        );
    }
    out.push_str("</ul>\n");
}

fn write_login(out: &mut String, username: Option<&Value>) {
    out.push_str("<section><h2>Log in <small>seed 002: Flask session object</small></h2>");
    match username {
        Some(name) => {
            let _ = write!(
                out,
                "<p class=\"status\">Logged in as {}</p>",
                escape(&value_text(name))
            );
        }
        None => out.push_str("<p class=\"status\">You are not logged in</p>"),
    }
    out.push_str(
        "<form method=\"post\" action=\"/login\">\
         <input type=\"text\" name=\"username\" placeholder=\"username\" aria-label=\"Username\" required>\
         <button type=\"submit\">Log in</button></form>\
         <p><a href=\"/logout\">Log out</a> · <a href=\"/sessions\">Your sessions</a> \
         (every browser you are logged in from, and \"log out everywhere\")</p></section>\n",
    );
}

fn write_pet(out: &mut String, pet_name: Option<&Value>) {
    out.push_str("<section><h2>Your pet <small>seed 003: Introduction to sessions</small></h2>");
    match pet_name {
        Some(pet) => {
            let _ = write!(
                out,
                "<p class=\"status\">Your pet's name is {}.</p>",
                escape(&value_text(pet))
            );
        }
        None => out.push_str("<p class=\"status\">I do not know your pet's name.</p>"),
    }
    out.push_str(
        "<form method=\"post\" action=\"/petname\">\
         <input type=\"text\" name=\"pet\" placeholder=\"pet name\" aria-label=\"Pet name\" required>\
         <label><input type=\"checkbox\" name=\"remember\"> Remember me (a permanent session)</label>\
         <button type=\"submit\">Save</button></form>\
         <p class=\"muted\">Or use the tutorial's own form at <a href=\"/petname\">/petname</a>.</p>\
         </section>\n",
    );
}

fn write_examples(out: &mut String) {
    out.push_str(
        "<section><h2>Set, get, delete</h2>\
         <p class=\"muted\">Plain-text answers; come back here to see the session change.</p>\
         <p>Seed 000: Flask Tutorials: Session Configuration</p><ul class=\"links\">\
         <li><a href=\"/set_session\">/set_session</a>: <code>session['username'] = 'your_username'</code></li>\
         <li><a href=\"/get_session\">/get_session</a>: <code>Welcome, {session[\"username\"]}!</code></li>\
         <li><a href=\"/delete_session\">/delete_session</a>: <code>session.pop('username', None)</code></li>\
         </ul><p>Seed 001: Flask Sessions</p><ul class=\"links\">\
         <li><a href=\"/setsession\">/setsession</a>: <code>session['Username'] = 'Admin'</code></li>\
         <li><a href=\"/getsession\">/getsession</a>: <code>Welcome {Username}</code></li>\
         <li><a href=\"/popsession\">/popsession</a>: <code>session.pop('Username', None)</code></li>\
         </ul></section>\n",
    );
}

fn write_counter_and_cart(out: &mut String, session: &Session) {
    let visits = session
        .get_value("visits")
        .map_or_else(|| "0".to_owned(), |visits| value_text(&visits));
    let cart = session.get_value("cart");
    let _ = write!(
        out,
        "<section><h2>Visits and cart <small>atomic server-side</small></h2>\
         <p class=\"muted\">Server-side, parallel requests never lose a visit or an item \
         (<code>session.increment</code>, <code>session.append</code>). Both answer plain \
         text or JSON; come back here to see the session change.</p>\
         <p class=\"status\">Visits counted: {}</p>\
         <form method=\"post\" action=\"/visits\"><button type=\"submit\">Count a visit</button></form>",
        escape(&visits)
    );
    match cart
        .as_ref()
        .and_then(Value::as_slice)
        .filter(|items| !items.is_empty())
    {
        Some(items) => {
            out.push_str("<p class=\"status\">Your cart:</p><ul class=\"cart\">");
            for item in items {
                let _ = write!(out, "<li>{}</li>", escape(&value_text(item)));
            }
            out.push_str("</ul>");
        }
        None => out.push_str("<p class=\"status\">Your cart is empty.</p>"),
    }
    out.push_str(
        "<form method=\"post\" action=\"/cart\">\
         <input type=\"text\" name=\"item\" placeholder=\"item\" aria-label=\"Cart item\" required>\
         <button type=\"submit\">Add to cart</button></form></section>\n",
    );
}

fn write_api(out: &mut String) {
    out.push_str(
        "<section><h2>The session as JSON</h2><ul class=\"links\">\
         <li><a href=\"/api/session\">GET /api/session</a>: every key, as plain JSON</li>\
         <li><code>PUT /api/session/{key}</code> with a JSON body: sets the key, \
         e.g. <code>curl -X PUT -b cookies -c cookies -d '\"dark\"' …/api/session/theme</code></li>\
         <li><code>DELETE /api/session/{key}</code>: removes the key</li>\
         </ul></section>\n",
    );
}

fn write_session_panel(out: &mut String, state: &AppState, session: &Session, now: SystemTime) {
    let info = &state.info;
    let server_side = info.session_type.is_server_side();
    let cookie_kind = crate::cookie_kind(info.session_type);
    let data = session.to_map();
    let permanent = session.permanent();
    let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let lifetime = info.lifetime.as_secs();

    out.push_str("<section><h2>This session</h2><dl>");
    let mut row = |name: &str, value: String| {
        let _ = write!(out, "<dt>{}</dt><dd>{value}</dd>", escape(name));
    };
    row(
        "SESSION_TYPE",
        format!("<code>{}</code>", escape(&info.session_type.to_string())),
    );
    row(
        "Cookie",
        format!("<code>{}</code>", escape(&info.cookie_name)),
    );
    row(
        "Session id",
        match (server_side, session.id()) {
            (true, Some(id)) => format!(
                "<code>#{}</code> (a fingerprint: the cookie holds the id itself, the data \
                 lives in the store)",
                escape(&id.fingerprint())
            ),
            (true, None) => "none yet: nothing is stored for this browser".to_owned(),
            (false, _) => format!("none: the {cookie_kind} holds the data itself"),
        },
    );
    row(
        "PERMANENT_SESSION_LIFETIME",
        format!("{lifetime} s ({})", human_duration(info.lifetime)),
    );
    row("New", yes_no(session.is_new()).to_owned());
    row("Permanent", yes_no(permanent).to_owned());
    if server_side {
        row(
            "User",
            session.user_id().map_or_else(
                || "none (logging in ties the session to a user)".to_owned(),
                |user| escape(&user),
            ),
        );
        // A read that changes nothing moves the stored expiry only once it
        // has fallen behind by a tenth of the lifetime (at most a day): the
        // session may end up to that much sooner after a read.
        let refresh_step =
            (info.lifetime / 10).clamp(Duration::from_secs(1), Duration::from_secs(86_400));
        let unused = if info.refresh_each_request {
            format!(
                "{} to {}",
                human_duration(info.lifetime.saturating_sub(refresh_step)),
                human_duration(info.lifetime)
            )
        } else {
            human_duration(info.lifetime)
        };
        // Without the refresh, a read leaves the expiry where the last
        // write put it.
        let last = if info.refresh_each_request {
            "used"
        } else {
            "changed (SESSION_REFRESH_EACH_REQUEST=false: reading it does not extend it)"
        };
        let mut expires = if permanent {
            format!("{unused} after it was last {last}")
        } else {
            format!("when the browser closes, or {unused} after it was last {last}")
        };
        if let Some(absolute) = info.absolute_lifetime {
            let _ = write!(
                expires,
                ", and at the latest {} after it was created \
                 (TESSERA_SESSION_ABSOLUTE_LIFETIME), however active",
                human_duration(absolute)
            );
        }
        row("Expires", expires);
    } else {
        write_cookie_rows(
            &mut row,
            session,
            permanent,
            data.is_empty(),
            info,
            now_secs,
        );
    }
    out.push_str("</dl>");

    if data.is_empty() {
        out.push_str("<p class=\"muted\">The session is empty.</p>");
    } else {
        out.push_str(
            "<table><thead><tr><th>key</th><th>value (tagged JSON)</th></tr></thead><tbody>",
        );
        for (key, value) in &data {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td><code>{}</code></td></tr>",
                escape(key),
                escape(&value.to_tagged_json())
            );
        }
        out.push_str("</tbody></table>");
    }
    let _ = writeln!(
        out,
        "<p class=\"muted\">As Flask's tagged JSON ({}):</p><pre>{}</pre></section>",
        if server_side {
            "what the store keeps".to_owned()
        } else {
            format!("the {cookie_kind}'s payload")
        },
        escape(&tessera::tagged::map_to_string(&data))
    );
}

/// What only a cookie session can tell: when it was signed, and whether this
/// response sends a new cookie.
fn write_cookie_rows(
    row: &mut impl FnMut(&str, String),
    session: &Session,
    permanent: bool,
    empty: bool,
    info: &ConfigInfo,
    now_secs: u64,
) {
    let lifetime = info.lifetime.as_secs();
    row(
        // An encrypted cookie carries the time it was sealed, signed by nothing.
        if info.session_type == SessionType::EncryptedCookie {
            "Sealed"
        } else {
            "Signed"
        },
        match session.signed_at() {
            Some(signed) => format!(
                "{} ({} ago), the cookie your browser sent",
                format_unix(signed),
                human_duration(Duration::from_secs(now_secs.saturating_sub(signed)))
            ),
            None => "no valid session cookie came with this request".to_owned(),
        },
    );
    let resent = session.is_modified() || (permanent && info.refresh_each_request);
    row(
        "Expires",
        if permanent {
            let renewed = now_secs.saturating_add(lifetime);
            let mut text = match session.signed_at() {
                Some(signed) => format_unix(signed.saturating_add(lifetime)),
                None => format_unix(renewed),
            };
            if resent && session.signed_at().is_some_and(|signed| signed != now_secs) {
                let _ = write!(
                    text,
                    "; this response renews it until {}",
                    format_unix(renewed)
                );
            }
            text
        } else {
            // The server refuses a cookie signed longer ago than the
            // lifetime, whether the browser kept it or not (as Flask does).
            let unused = human_duration(Duration::from_secs(lifetime));
            match session.signed_at() {
                Some(signed) => format!(
                    "when the browser closes, or {unused} after it was last sent ({})",
                    format_unix(signed.saturating_add(lifetime))
                ),
                None => format!("when the browser closes, or {unused} after it is sent"),
            }
        },
    );
    row(
        "This response",
        match (empty, session.is_modified(), resent) {
            (true, true, _) => "deletes the cookie (the session is now empty)",
            (true, false, _) => "sends no cookie (the session is empty)",
            (false, true, _) => "sends a new cookie (the session changed)",
            (false, false, true) => "sends a new cookie (permanent sessions are refreshed)",
            (false, false, false) => "sends no cookie (nothing changed)",
        }
        .to_owned(),
    );
}

/// Python's truthiness, as in seed 003's `if pet_name:`.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) | Value::Markup(s) => !s.is_empty(),
        Value::List(items) | Value::Tuple(items) => !items.is_empty(),
        Value::Dict(map) => !map.is_empty(),
        Value::Bytes(bytes) => !bytes.is_empty(),
        _ => true,
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

fn yes_no(flag: bool) -> &'static str {
    if flag {
        "yes"
    } else {
        "no"
    }
}

const DATE_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");

/// Unix seconds as a UTC date and time.
pub(crate) fn format_unix(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|time| time.format(DATE_FORMAT).ok())
        .unwrap_or_else(|| format!("{secs} (Unix time)"))
}

/// A duration in its two largest units: "31 days", "1 hour 30 minutes".
fn human_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    let units = [
        (secs / 86_400, "day"),
        (secs / 3_600 % 24, "hour"),
        (secs / 60 % 60, "minute"),
        (secs % 60, "second"),
    ];
    let parts: Vec<String> = units
        .iter()
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}{}", if *n == 1 { "" } else { "s" }))
        .collect();
    if parts.is_empty() {
        "0 seconds".to_owned()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(Duration::from_secs(2_678_400)), "31 days");
        assert_eq!(
            human_duration(Duration::from_secs(5_400)),
            "1 hour 30 minutes"
        );
        assert_eq!(human_duration(Duration::from_secs(86_401)), "1 day");
        assert_eq!(human_duration(Duration::from_secs(1)), "1 second");
        assert_eq!(human_duration(Duration::ZERO), "0 seconds");
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(format_unix(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert!(format_unix(u64::MAX).contains("Unix time"));
    }

    #[test]
    fn truthiness_follows_python() {
        assert!(!truthy(&Value::Null));
        assert!(!truthy(&Value::from("")));
        assert!(truthy(&Value::from("Rex")));
        assert!(!truthy(&Value::from(false)));
    }
}
