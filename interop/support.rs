//! Shared by the Rust interop tests (included with `#[path]`): finds the
//! venv's python, creating the venv on first use.

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
