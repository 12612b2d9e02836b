//! What the CLI tests share: one run of the real binary, and the check that
//! a refusal is one `error: ` line with exit 1.

use std::process::Output;

/// The outcome of one run of `tessera`.
pub(crate) struct Run {
    pub(crate) status: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            status: output.status.code(),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }
}

impl Run {
    /// Checks a refusal: exit 1, nothing on stdout, one `error: ` line on
    /// stderr; returns that line.
    pub(crate) fn refusal(&self) -> &str {
        assert_eq!(
            self.status,
            Some(1),
            "expected exit 1, stderr: {:?}",
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{:?}", self.stderr);
        assert!(self.stdout.is_empty(), "stdout: {:?}", self.stdout);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one stderr line: {:?}",
            self.stderr
        );
        assert!(lines[0].starts_with("error: "), "{:?}", lines[0]);
        lines[0]
    }
}
