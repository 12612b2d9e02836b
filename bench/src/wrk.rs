//! Parsing what `wrk --latency` prints.
//!
//! ```text
//! Running 2s test @ http://127.0.0.1:40000/
//!   1 threads and 16 connections
//!   Thread Stats   Avg      Stdev     Max   +/- Stdev
//!     Latency   245.12us  100.00us   2.00ms   90.00%
//!     Req/Sec    60.00k     2.00k   65.00k    80.00%
//!   Latency Distribution
//!      50%  230.00us
//!      75%  260.00us
//!      90%  300.00us
//!      99%  500.00us
//!   120000 requests in 2.00s, 15.00MB read
//!   Socket errors: connect 0, read 0, write 0, timeout 3
//!   Non-2xx or 3xx responses: 5
//! Requests/sec:  60000.00
//! Transfer/sec:      7.50MB
//! ```
//!
//! The `Socket errors` and `Non-2xx` lines appear only when there are some.

/// The numbers of one wrk run.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WrkResult {
    /// Completed responses (any status).
    pub requests: u64,
    /// `Requests/sec`.
    pub requests_per_sec: f64,
    /// The median latency, in milliseconds.
    pub p50_ms: f64,
    /// The 99th percentile latency, in milliseconds.
    pub p99_ms: f64,
    /// Responses with a status of 400 or more (wrk's "Non-2xx or 3xx").
    pub non_2xx: u64,
    /// Socket errors: connect, read, write, timeout.
    pub socket_errors: SocketErrors,
}

impl WrkResult {
    /// Responses wrk counted as successful (2xx or 3xx).
    pub fn acknowledged(&self) -> u64 {
        self.requests.saturating_sub(self.non_2xx)
    }
}

/// wrk's `Socket errors` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SocketErrors {
    /// Connections that could not be made.
    pub connect: u64,
    /// Read errors.
    pub read: u64,
    /// Write errors.
    pub write: u64,
    /// Requests without a response within wrk's timeout (2 s by default).
    pub timeout: u64,
}

impl SocketErrors {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.connect + self.read + self.write + self.timeout
    }
}

/// What was missing or malformed in wrk's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot parse wrk's output: {}", self.0)
    }
}

impl std::error::Error for ParseError {}

/// A duration as wrk prints it (`245.12us`, `1.20ms`, `2.00s`, `1.00m`),
/// in milliseconds.
pub fn parse_duration_ms(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let factor = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1_000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return None,
    };
    Some(value * factor)
}

/// Parses the output of `wrk --latency` (stdout).
pub fn parse(output: &str) -> Result<WrkResult, ParseError> {
    let mut result = WrkResult::default();
    let (mut requests, mut rate, mut p50, mut p99) = (None, None, None, None);
    for line in output.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            rate = rest.trim().parse::<f64>().ok();
        } else if let Some(rest) = line.strip_prefix("50%") {
            p50 = parse_duration_ms(rest);
        } else if let Some(rest) = line.strip_prefix("99%") {
            p99 = parse_duration_ms(rest);
        } else if let Some((count, _)) = line.split_once(" requests in ") {
            requests = count.trim().parse::<u64>().ok();
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            result.non_2xx = rest
                .trim()
                .parse()
                .map_err(|_| ParseError(format!("bad line {line:?}")))?;
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            for part in rest.split(',') {
                let mut words = part.split_whitespace();
                let (Some(kind), Some(count)) = (words.next(), words.next()) else {
                    return Err(ParseError(format!("bad line {line:?}")));
                };
                let count: u64 = count
                    .parse()
                    .map_err(|_| ParseError(format!("bad line {line:?}")))?;
                match kind {
                    "connect" => result.socket_errors.connect = count,
                    "read" => result.socket_errors.read = count,
                    "write" => result.socket_errors.write = count,
                    "timeout" => result.socket_errors.timeout = count,
                    _ => {}
                }
            }
        }
    }
    result.requests = requests.ok_or_else(|| ParseError("no `N requests in` line".into()))?;
    result.requests_per_sec = rate.ok_or_else(|| ParseError("no `Requests/sec:` line".into()))?;
    result.p50_ms = p50.ok_or_else(|| ParseError("no 50% latency (run with --latency)".into()))?;
    result.p99_ms = p99.ok_or_else(|| ParseError("no 99% latency (run with --latency)".into()))?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLEAN: &str = "Running 2s test @ http://127.0.0.1:40000/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   245.12us  100.00us   2.00ms   90.00%
    Req/Sec    60.00k     2.00k   65.00k    80.00%
  Latency Distribution
     50%  230.00us
     75%  260.00us
     90%  300.00us
     99%    1.50ms
  120000 requests in 2.00s, 15.00MB read
Requests/sec:  60000.00
Transfer/sec:      7.50MB
";

    const WITH_ERRORS: &str = "Running 8s test @ http://127.0.0.1:40001/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    52.31ms   80.12ms    1.99s    95.00%
    Req/Sec   400.00     50.00   500.00     70.00%
  Latency Distribution
     50%   20.10ms
     75%   40.00ms
     90%   90.00ms
     99%    1.20s
  3201 requests in 8.01s, 500.00KB read
  Socket errors: connect 0, read 2, write 0, timeout 7
  Non-2xx or 3xx responses: 12
Requests/sec:    399.63
Transfer/sec:     62.42KB
";

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn parses_a_clean_run() {
        let result = parse(CLEAN).expect("parses");
        assert_eq!(result.requests, 120_000);
        assert!(close(result.requests_per_sec, 60_000.0));
        assert!(close(result.p50_ms, 0.23));
        assert!(close(result.p99_ms, 1.5));
        assert_eq!(result.non_2xx, 0);
        assert_eq!(result.socket_errors, SocketErrors::default());
        assert_eq!(result.acknowledged(), 120_000);
    }

    #[test]
    fn parses_errors_and_non_2xx() {
        let result = parse(WITH_ERRORS).expect("parses");
        assert_eq!(result.requests, 3201);
        assert!(close(result.requests_per_sec, 399.63));
        assert!(close(result.p50_ms, 20.1));
        assert!(close(result.p99_ms, 1200.0));
        assert_eq!(result.non_2xx, 12);
        assert_eq!(
            result.socket_errors,
            SocketErrors {
                connect: 0,
                read: 2,
                write: 0,
                timeout: 7
            }
        );
        assert_eq!(result.socket_errors.total(), 9);
        assert_eq!(result.acknowledged(), 3189);
    }

    #[test]
    fn refuses_output_without_latency_distribution() {
        let output = CLEAN.replace("     50%  230.00us\n", "");
        assert!(parse(&output).is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("1.00m"), Some(60_000.0));
        assert_eq!(parse_duration_ms("  2.00s"), Some(2_000.0));
        assert_eq!(parse_duration_ms("12.5ms"), Some(12.5));
        assert_eq!(parse_duration_ms("abc"), None);
        assert_eq!(parse_duration_ms("3.0ns"), None);
    }
}
