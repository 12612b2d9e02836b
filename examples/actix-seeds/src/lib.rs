//! The seed routes of the tessera demo (the Flask session tutorials'
//! examples) on actix-web, with `tessera::actix::SessionMiddleware` and the
//! `Session` extractor: the same texts, the same redirects and flashes, and
//! the same cookies, which the axum demo and Flask accept when they share
//! the `SECRET_KEY`.
//!
//! [`configure`] adds the routes to an app wrapped in the middleware, and
//! [`time_limited`] cuts off a request that takes too long; the binary
//! (`src/main.rs`, which says how to run it) serves them.
//!
//! | route | seed | what it does |
//! |---|---|---|
//! | `GET /` | 002, 003 | login state, pet name and the flashed messages |
//! | `GET /set_session`, `/get_session`, `/delete_session` | 000 | `session["username"]` |
//! | `GET /setsession`, `/getsession`, `/popsession` | 001 | `session["Username"]` |
//! | `POST /login`, `GET /logout` | 002 | log in with a form field `username` (server-side: a fresh id, tied to the user), log out (server-side: the session ends) |
//! | `GET /petname`, `POST /petname` | 003 | a form for `pet` (and `remember`: a permanent session) |
//!
//! Forms are read as Flask's `request.form` reads them (URL-encoded or
//! multipart, the first of repeated fields counting, no fields from any
//! other body). Bad form input (no `username`, or one that is blank, or a
//! field over 256 characters) answers `400 Bad Request` saying what is
//! wrong; a session store that fails answers `503` with `Retry-After`.

use std::fmt::Write as _;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers, Next};
use actix_web::{web, HttpRequest, HttpResponse};
use tessera::{Flash, Session, SessionError, Value};

/// Longest accepted `username` or `pet`, in characters, so that one field
/// cannot take a cookie session's whole room. It does not make every session
/// fit in a cookie (`MAX_COOKIE_SIZE`, 4093 bytes by default): a name of
/// characters outside ASCII takes up to 12 bytes each in the cookie's JSON,
/// and flashes pile up until shown. Unlike the demo, which answers 413, this
/// example does as Flask does with a session too large: it sends the cookie
/// and logs an error (browsers drop such a cookie); with
/// `TESSERA_REFUSE_OVERSIZED_COOKIES=true` it answers 500 instead.
const MAX_FIELD_CHARS: usize = 256;

/// No scripts and nothing external: the pages are text and same-origin forms.
const CSP: &str = "default-src 'none'; form-action 'self'; frame-ancestors 'none'";

/// How long the binary gives a request, its body and its answer included,
/// before [`time_limited`] cuts it off: the demo's default.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Middleware (for `actix_web::middleware::from_fn`) answering `408
/// Request Timeout`, in words and with the connection closed, to a request
/// not answered within `limit`. actix-web limits how long a request's head
/// may take to arrive (`client_request_timeout`, 5 s), not its body: a form
/// whose body never comes would otherwise hold its connection for as long
/// as the client likes. Wrap it outside the sessions (the last `wrap`):
/// like a request whose client went away, one cut off saves nothing more,
/// but what had reached the store stays.
///
/// ```no_run
/// use actix_web::middleware::from_fn;
/// use actix_web::App;
/// use tessera_example_actix_seeds::{time_limited, REQUEST_TIMEOUT};
///
/// # fn app(sessions: tessera::actix::SessionMiddleware) {
/// let app = App::new()
///     .wrap(sessions)
///     .wrap(from_fn(|request, next| time_limited(REQUEST_TIMEOUT, request, next)))
///     .configure(tessera_example_actix_seeds::configure);
/// # }
/// ```
pub async fn time_limited<B: MessageBody + 'static>(
    limit: Duration,
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    // Not the request itself: a clone of it held here would keep the
    // router from setting its path parameters, which needs it unshared.
    let (method, path) = (request.method().clone(), request.path().to_owned());
    match actix_web::rt::time::timeout(limit, next.call(request)).await {
        Ok(answered) => answered,
        Err(_) => {
            tracing::warn!(%method, path, "request cut off after {} s: 408", limit.as_secs_f64());
            let response = HttpResponse::RequestTimeout()
                .force_close()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .content_type("text/plain; charset=utf-8")
                .body(format!(
                    "Request Timeout: the request took longer than {} s (a body sent too slowly \
                     or not finished, or a session store slow to answer) and was cut off.\n",
                    limit.as_secs_f64()
                ));
            // actix-web answers an error with its response: this one.
            Err(InternalError::from_response("request timeout", response).into())
        }
    }
}

/// The routes. Wrap the app in `tessera::actix::SessionMiddleware`:
///
/// ```no_run
/// use actix_web::App;
/// use tessera::actix::SessionMiddleware;
/// use tessera::SessionConfig;
///
/// # fn app() -> Result<(), tessera::ConfigError> {
/// let sessions = SessionMiddleware::new(SessionConfig::from_env()?);
/// let app = App::new()
///     .wrap(sessions)
///     .configure(tessera_example_actix_seeds::configure);
/// # Ok(()) }
/// ```
pub fn configure(cfg: &mut web::ServiceConfig) {
    // Resources rather than `cfg.route`, whose method guard would make a
    // wrong method a 404: the demo (and Flask) answer 405, with a text.
    // Every GET route answers HEAD too, as Flask's and axum's do (actix
    // sends no body).
    cfg.service(
        web::scope("")
            .wrap(ErrorHandlers::new().handler(
                actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
                explain_method_not_allowed,
            ))
            .configure(routes),
    );
}

/// Every route, and the 404 for any other path.
fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").get(index).head(index))
        // Seed 000: Flask Tutorials: Session Configuration.
        .service(
            web::resource("/set_session")
                .get(set_session)
                .head(set_session),
        )
        .service(
            web::resource("/get_session")
                .get(get_session)
                .head(get_session),
        )
        .service(
            web::resource("/delete_session")
                .get(delete_session)
                .head(delete_session),
        )
        // Seed 001: Flask Sessions.
        .service(
            web::resource("/setsession")
                .get(setsession)
                .head(setsession),
        )
        .service(
            web::resource("/getsession")
                .get(getsession)
                .head(getsession),
        )
        .service(
            web::resource("/popsession")
                .get(popsession)
                .head(popsession),
        )
        // Seed 002: Flask session object.
        .service(web::resource("/login").post(login))
        .service(web::resource("/logout").get(logout).head(logout))
        // Seed 003: Introduction to sessions.
        .service(
            web::resource("/petname")
                .get(petname_form)
                .head(petname_form)
                .post(petname),
        )
        .default_service(web::to(|| async {
            HttpResponse::NotFound()
                .content_type("text/plain; charset=utf-8")
                .body("Not Found")
        }));
}

/// actix-web's 405 (which carries `Allow`) with the demo's text: a browser
/// shows an empty 405 as a broken page (a form's URL opened from the
/// address bar, say).
fn explain_method_not_allowed<B>(
    response: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let text = format!(
        "Method Not Allowed: {} does not take {} (the Allow header lists what it takes)\n",
        response.request().path(),
        response.request().method()
    );
    let (request, mut response) = response.into_parts();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let response = ServiceResponse::new(request, response.set_body(text))
        .map_into_boxed_body()
        .map_into_right_body();
    Ok(ErrorHandlerResponse::Response(response))
}

/// A session value as the seeds' f-strings show it: strings as they are,
/// anything else (written by some other app sharing the key) as tagged JSON.
fn value_text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_tagged_json(), str::to_owned)
}

// ---- seed 000: Flask Tutorials: Session Configuration

/// `session['username'] = 'your_username'`
async fn set_session(session: Session) -> &'static str {
    session.insert_value("username", "your_username");
    "Session data set."
}

/// `f'Welcome, {session["username"]}!'` or `'No session data found.'`
async fn get_session(session: Session) -> String {
    match session.get_value("username") {
        Some(username) => format!("Welcome, {}!", value_text(&username)),
        None => "No session data found.".to_owned(),
    }
}

/// `session.pop('username', None)`
async fn delete_session(session: Session) -> &'static str {
    session.remove("username");
    "Session data deleted."
}

// ---- seed 001: Flask Sessions

/// `session['Username'] = 'Admin'`
async fn setsession(session: Session) -> &'static str {
    session.insert_value("Username", "Admin");
    "The session has been Set"
}

/// `f"Welcome {Username}"` or `"Welcome Anonymous"`
async fn getsession(session: Session) -> String {
    match session.get_value("Username") {
        Some(username) => format!("Welcome {}", value_text(&username)),
        None => "Welcome Anonymous".to_owned(),
    }
}

/// `session.pop('Username', None)`
async fn popsession(session: Session) -> &'static str {
    session.remove("Username");
    "Session Deleted"
}

// ---- seed 002: Flask session object

/// `session['username'] = request.form['username']`, then back to `/`.
///
/// Server-side, the session first gets a fresh id (an id planted before
/// login, session fixation, is worthless afterwards) and is tied to the user.
async fn login(session: Session, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let fields = form_fields(&request, body).await;
    let username = field(&fields, "username").unwrap_or_default();
    if username.trim().is_empty() {
        return bad_request(
            "The login form needs a non-empty `username` field, e.g. username=alice.",
        );
    }
    if let Err(message) = check_length("username", &username) {
        return bad_request(&message);
    }
    match session.cycle_id().await {
        // Revoked: the session ended meanwhile; the login starts a fresh one.
        Ok(()) | Err(SessionError::Revoked) => {}
        Err(error) => return session_failure(&error),
    }
    session.set_user_id(Some(&username));
    session.flash(format!("Logged in as {username}"));
    session.insert_value("username", username);
    redirect_home()
}

/// `session.pop('username', None)`, then back to `/`.
///
/// Server-side, logging out someone who was logged in ends the whole session
/// in the store, so a copy of the cookie is worthless at once; the flash then
/// starts a fresh, anonymous session. A visitor who was not logged in keeps
/// the rest of their session, as the tutorial's `pop` does.
async fn logout(session: Session) -> HttpResponse {
    let logged_in = session.remove("username").is_some() || session.user_id().is_some();
    // Only server-side sessions have an id, and a logged-in one is stored,
    // so this tells the two apart without the app knowing SESSION_TYPE. A
    // cookie session keeps its other keys, as in Flask.
    if logged_in && session.id().is_some() {
        if let Err(error) = session.destroy().await {
            return session_failure(&error);
        }
    }
    session.flash(if logged_in {
        "Logged out"
    } else {
        "You were not logged in"
    });
    redirect_home()
}

// ---- seed 003: Introduction to sessions

/// `GET /petname`: the tutorial's form. It does not touch the session, so it
/// costs no store call.
async fn petname_form() -> HttpResponse {
    html(page(
        "Pet name",
        "<form method=\"post\" action=\"/petname\">\
         <label>What is your pet's name? <input type=\"text\" name=\"pet\"></label>\n\
         <label><input type=\"checkbox\" name=\"remember\"> Remember me \
         (a permanent session)</label>\n\
         <button type=\"submit\">Save</button></form>\n\
         <p><a href=\"/\">Back</a></p>",
    ))
}

/// `session['pet_name'] = request.form.get('pet')`; a `remember` field makes
/// the session permanent (`session.permanent = True`). Then back to `/`.
async fn petname(session: Session, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let fields = form_fields(&request, body).await;
    let (pet, remember) = (field(&fields, "pet"), field(&fields, "remember"));
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
        session.flash(match session.permanent() {
            // Server-side sessions are permanent from the start unless
            // SESSION_PERMANENT=false, as in Flask-Session.
            true if session.is_server_side() => {
                "Remembered: this session was permanent already (SESSION_PERMANENT=true, \
                 Flask-Session's default), so it outlives the browser either way"
            }
            true => "Remembered: this session was permanent already",
            false => "Remembered: this session is now permanent",
        });
        session.set_permanent(true);
    }
    redirect_home()
}

// ---- the index page

/// `GET /`: seed 002's and seed 003's index views, and the flashed messages
/// (shown once: taking them removes them from the session).
async fn index(session: Session) -> HttpResponse {
    let flashes = session.take_flashes();
    let username = session.get_value("username");
    let pet_name = session.get_value("pet_name").filter(truthy);

    let mut body = String::new();
    write_flashes(&mut body, &flashes);
    match username {
        Some(name) => {
            let _ = writeln!(
                body,
                "<p class=\"status\">Logged in as {}</p>",
                escape(&value_text(&name))
            );
        }
        None => body.push_str("<p class=\"status\">You are not logged in</p>\n"),
    }
    body.push_str(
        "<form method=\"post\" action=\"/login\">\
         <input type=\"text\" name=\"username\" aria-label=\"Username\" required> \
         <button type=\"submit\">Log in</button></form>\n\
         <p><a href=\"/logout\">Log out</a></p>\n",
    );
    match pet_name {
        Some(pet) => {
            let _ = writeln!(
                body,
                "<p class=\"status\">Your pet's name is {}.</p>",
                escape(&value_text(&pet))
            );
        }
        None => body.push_str("<p class=\"status\">I do not know your pet's name.</p>\n"),
    }
    body.push_str(
        "<p><a href=\"/petname\">Tell me your pet's name</a></p>\n\
         <p>Seed 000: <a href=\"/set_session\">/set_session</a> \
         <a href=\"/get_session\">/get_session</a> \
         <a href=\"/delete_session\">/delete_session</a></p>\n\
         <p>Seed 001: <a href=\"/setsession\">/setsession</a> \
         <a href=\"/getsession\">/getsession</a> \
         <a href=\"/popsession\">/popsession</a></p>",
    );
    html(page("tessera on actix-web", &body))
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

/// Python's truthiness, for Flask's `{% if session.pet_name %}`.
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

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n{body}\n</body></html>\n",
        title = escape(title),
    )
}

/// Escapes text for HTML element content and quoted attribute values: every
/// name and pet name comes from a visitor or a cookie.
fn escape(text: &str) -> String {
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

// ---- responses

fn html(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .body(body)
}

/// Flask's `redirect('/')`: `302 Found`.
fn redirect_home() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/"))
        .finish()
}

fn bad_request(message: &str) -> HttpResponse {
    HttpResponse::BadRequest()
        .content_type("text/plain; charset=utf-8")
        .body(format!("Bad Request: {message}\n"))
}

/// A request's form fields, in order, as Flask's `request.form` has them:
/// from an `application/x-www-form-urlencoded` body, or a
/// `multipart/form-data` one (`curl -F`), whose file parts are Flask's
/// `request.files`, not fields. Any other body gives no fields, as in Flask,
/// and so does a multipart body that cannot be read (Werkzeug reads none
/// from it).
async fn form_fields(request: &HttpRequest, body: web::Bytes) -> Vec<(String, String)> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return form_urlencoded::parse(&body).into_owned().collect();
    }
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return Vec::new();
    }
    multipart_fields(content_type, body)
        .await
        .unwrap_or_default()
}

async fn multipart_fields(
    content_type: &str,
    body: web::Bytes,
) -> Result<Vec<(String, String)>, multer::Error> {
    let boundary = multer::parse_boundary(content_type)?;
    let body = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut form = multer::Multipart::new(body, boundary);
    let mut fields = Vec::new();
    while let Some(part) = form.next_field().await? {
        let Some(name) = part.name().map(str::to_owned) else {
            continue;
        };
        if part.file_name().is_some() {
            continue;
        }
        fields.push((name, part.text().await?));
    }
    Ok(fields)
}

/// `request.form.get(name)`: the first value of a repeated field.
fn field(fields: &[(String, String)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(field, _)| field == name)
        .map(|(_, value)| value.clone())
}

fn check_length(field: &str, value: &str) -> Result<(), String> {
    let chars = value.chars().count();
    if chars > MAX_FIELD_CHARS {
        Err(format!(
            "`{field}` is {chars} characters long; at most {MAX_FIELD_CHARS} are accepted (in \
             cookie mode the whole session must fit in a cookie of about 4 KB)."
        ))
    } else {
        Ok(())
    }
}

/// A session operation that failed: the store (`503` with `Retry-After`, as
/// the extractor answers, so the client retries), or the session's state,
/// such as a session ended by another request meanwhile (`409`).
fn session_failure(error: &SessionError) -> HttpResponse {
    if let SessionError::Store(store) = error {
        tracing::error!(error = %store, "session store failed; answering 503");
        return HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "1"))
            .content_type("text/plain; charset=utf-8")
            .body("Service Unavailable: the session store is unavailable; try again shortly.\n");
    }
    HttpResponse::Conflict()
        .content_type("text/plain; charset=utf-8")
        .body(format!("Conflict: {error}\n"))
}
