//! A tiny blocking HTTP/1.1 client for the orchestrator's few requests:
//! create a session, read the counter back, see whether a server is up.

use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A response: status, `Set-Cookie` values, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Every `Set-Cookie` header's value, in order.
    pub set_cookies: Vec<String>,
    /// The body, decoded from chunked transfer encoding if it was.
    pub body: String,
}

impl Response {
    /// The `name=value` pairs of the cookies the response set, joined as a
    /// `Cookie` header value (`a=1; b=2`); empty if it set none.
    pub fn cookie_header(&self) -> String {
        self.set_cookies
            .iter()
            .filter_map(|set_cookie| set_cookie.split(';').next())
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// `GET /` on `127.0.0.1:port`, with `Cookie: cookie` if not empty.
pub fn get(port: u16, cookie: &str) -> io::Result<Response> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut request = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if !cookie.is_empty() {
        request.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// Parses a whole HTTP/1.1 response read until the server closed.
pub fn parse_response(raw: &[u8]) -> io::Result<Response> {
    let head_end = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of headers in the response"))?;
    let head = std::str::from_utf8(&raw[..head_end])
        .map_err(|_| invalid("response headers are not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let mut set_cookies = Vec::new();
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("set-cookie") {
            set_cookies.push(value.to_owned());
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
    }
    let mut body = &raw[head_end + 4..];
    let decoded;
    if chunked {
        decoded = dechunk(body)?;
        body = &decoded;
    } else if let Some(length) = length {
        body = &body[..length.min(body.len())];
    }
    Ok(Response {
        status,
        set_cookies,
        body: String::from_utf8_lossy(body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|window| window == b"\r\n")
            .ok_or_else(|| invalid("truncated chunked body"))?;
        let size_text = std::str::from_utf8(&data[..line_end])
            .map_err(|_| invalid("bad chunk size"))?
            .split(';')
            .next()
            .unwrap_or_default()
            .trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = data.get(..size).ok_or_else(|| invalid("truncated chunk"))?;
        body.extend_from_slice(chunk);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_cookies_and_body() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nset-cookie: session=abc.def; HttpOnly; Path=/\r\nSet-Cookie: other=1\r\nvary: Cookie\r\ncontent-length: 2\r\n\r\n17";
        let response = parse_response(raw).expect("parses");
        assert_eq!(response.status, 200);
        assert_eq!(response.body, "17");
        assert_eq!(response.cookie_header(), "session=abc.def; other=1");
    }

    #[test]
    fn decodes_chunked_bodies() {
        let raw = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let response = parse_response(raw).expect("parses");
        assert_eq!(response.status, 503);
        assert_eq!(response.body, "abcde");
        assert_eq!(response.cookie_header(), "");
    }
}
