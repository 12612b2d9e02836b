//! Helpers shared by the layer tests: one request through a router, and
//! reading what came back.

use axum::body::Body;
use axum::http::{header, HeaderMap, Request};
use axum::response::Response;
use axum::Router;
use tower::ServiceExt;

/// Sends one request through `app`, with the `Cookie` header if given.
pub(crate) async fn request(
    app: &Router,
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    body: &str,
) -> Response {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    app.clone()
        .oneshot(request.body(Body::from(body.to_owned())).expect("request"))
        .await
        .expect("infallible")
}

/// The response body as text.
pub(crate) async fn text(response: Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

/// Every `Set-Cookie` header.
pub(crate) fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect()
}

/// The `name=value` part of the only `Set-Cookie`, ready for a `Cookie` header.
pub(crate) fn cookie_pair(response: &Response) -> String {
    let cookies = set_cookies(response.headers());
    assert_eq!(cookies.len(), 1, "expected one Set-Cookie: {cookies:?}");
    cookies[0].split(';').next().expect("pair").to_owned()
}
