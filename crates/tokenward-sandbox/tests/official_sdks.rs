#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs,
    reason = "test code"
)]
//! Plaid's official client libraries against the emulator binary, unchanged.
//!
//! `bash scripts/test` installs plaid-python and plaid-node (pinned in `scripts/compat/`) under
//! `target/compat` and sets `TOKENWARD_COMPAT_PYTHON` and `TOKENWARD_COMPAT_NODE_PATH`. Each
//! test starts `tokenward-sandbox --listen 127.0.0.1:0 --client-id … --secret …`, runs the
//! library's script over the whole token lifecycle (link token, public token, exchange,
//! accounts, balances, transactions get and sync, item get, webhook update and a signed webhook,
//! reset login, invalidate, remove, bad credentials) and checks it succeeded and printed no
//! token. Without the variables the tests skip and say so; under `CI=true` that is a failure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const CLIENT_ID: &str = "5f1c2b3a4d5e6f7a8b9c0d1e";
const SECRET: &str = "0123456789abcdef0123456789abcd";

/// The emulator binary, killed on drop.
struct Emulator {
    child: Child,
    url: String,
}

impl Emulator {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tokenward-sandbox"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--client-id",
                CLIENT_ID,
                "--secret",
                SECRET,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tokenward-sandbox");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self { child, url }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The variable's value, or `None` after saying why the test skips (a failure under CI).
fn required(var: &str, what: &str) -> Option<String> {
    if let Ok(value) = std::env::var(var) {
        return Some(value);
    }
    let message = format!(
        "{var} is not set: skipping the {what} compatibility test (run `bash scripts/test`, \
         which installs it)"
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{message}; required under CI=true"
    );
    eprintln!("{message}");
    None
}

fn run_script(mut command: Command, emulator: &Emulator) {
    let output = command
        .env("TOKENWARD_SANDBOX_URL", &emulator.url)
        .env("CLIENT_ID", CLIENT_ID)
        .env("SECRET", SECRET)
        .output()
        .expect("run the compatibility script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}{stderr}");
    assert!(
        output.status.success(),
        "the official library failed against the emulator"
    );
    for needle in [
        "access-sandbox-",
        "public-sandbox-",
        "link-sandbox-",
        SECRET,
    ] {
        assert!(
            !stdout.contains(needle) && !stderr.contains(needle),
            "script output leaked {needle}"
        );
    }
    assert!(!stdout.contains("FAIL"));
}

#[test]
fn plaid_python_works_unchanged() {
    let Some(python) = required("TOKENWARD_COMPAT_PYTHON", "plaid-python") else {
        return;
    };
    let emulator = Emulator::start();
    let mut command = Command::new(python);
    command.arg(repo_root().join("scripts/compat/python_sdk.py"));
    run_script(command, &emulator);
}

#[test]
fn plaid_node_works_unchanged() {
    let Some(node_path) = required("TOKENWARD_COMPAT_NODE_PATH", "plaid-node") else {
        return;
    };
    let emulator = Emulator::start();
    let mut command = Command::new("node");
    command
        .arg(repo_root().join("scripts/compat/node_sdk.js"))
        .env("NODE_PATH", node_path);
    run_script(command, &emulator);
}
