//! Shared by the Rust interop tests (included with `#[path]`): finds the
//! venv's python, creating the venv on first use, and runs
//! `interop/flask_tool.py`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The repository root, from a crate directory one level below it.
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The python of `.venv`, set up by `scripts/setup-python.sh` once per test binary.
pub(crate) fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let output = Command::new("bash")
            .arg(repo_root().join("scripts/setup-python.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/setup-python.sh");
        assert!(output.status.success(), "scripts/setup-python.sh failed");
        PathBuf::from(String::from_utf8(output.stdout).expect("utf-8").trim())
    })
}

/// Runs `interop/flask_tool.py ARGS` with `stdin` and returns its JSON lines.
#[allow(dead_code)] // Not every test that includes this file runs the tool.
pub(crate) fn flask_tool(args: &[&str], stdin: Option<&str>) -> Vec<serde_json::Value> {
    let mut child = Command::new(python())
        .arg(repo_root().join("interop/flask_tool.py"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start flask_tool.py");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or("").as_bytes())
        .expect("write stdin");
    drop(input);
    let output = child.wait_with_output().expect("flask_tool.py runs");
    assert!(output.status.success(), "flask_tool.py {args:?} failed");
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect()
}
