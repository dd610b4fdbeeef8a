//! The `tokenward-sandbox` binary: starts, announces its address, serves, stops.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::too_many_lines,
    clippy::struct_field_names,
    missing_docs,
    reason = "test code"
)]

mod common;

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_tokenward-sandbox");

/// Kills the child when the test ends, passed or not.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary and reads its announce line.
fn spawn(
    args: &[&str],
    env: &[(&str, &str)],
) -> (Guard, String, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let guard = Guard(child);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let base = line
        .strip_suffix('\n')
        .and_then(|l| l.strip_prefix("listening on "))
        .expect("announce line");
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    (guard, base.to_owned(), reader)
}

#[tokio::test]
async fn serves_with_fixed_credentials_and_stops_on_sigterm() {
    let (mut child, base, mut reader) = spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--client-id",
            common::CLIENT_ID,
            "--secret-env",
            "TW_SECRET",
        ],
        &[("TW_SECRET", common::SECRET)],
    );
    let http = common::http_client();
    let response = http
        .post(format!("{base}/sandbox/public_token/create"))
        .header("PLAID-CLIENT-ID", common::CLIENT_ID)
        .header("PLAID-SECRET", common::SECRET)
        .json(&json!({"institution_id": "ins_109508", "initial_products": ["transactions"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["public_token"]
            .as_str()
            .unwrap()
            .starts_with("public-sandbox-")
    );
    let response = http
        .post(format!("{base}/item/get"))
        .header("PLAID-CLIENT-ID", common::CLIENT_ID)
        .header("PLAID-SECRET", "wrong-secret")
        .json(&json!({"access_token": "access-sandbox-x"}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], "INVALID_API_KEYS");

    // SIGTERM: a clean exit, and nothing else printed (no secret, no backtrace).
    let pid = child.0.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let exit = child.0.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(rest, "");
    assert_eq!(stderr, "");
}

#[tokio::test]
async fn serves_with_a_secret_flag() {
    let (_child, base, _reader) = spawn(
        &[
            "--client-id",
            common::CLIENT_ID,
            "--secret",
            common::SECRET,
            "--seed",
            "7",
        ],
        &[],
    );
    let response = common::http_client()
        .post(format!("{base}/webhook_verification_key/get"))
        .header("PLAID-CLIENT-ID", common::CLIENT_ID)
        .header("PLAID-SECRET", common::SECRET)
        .json(&json!({"key_id": "unknown"}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], "INVALID_WEBHOOK_VERIFICATION_KEY_ID");
}

#[test]
fn missing_secret_env_is_an_error_without_the_secret() {
    let output = Command::new(BIN)
        .args([
            "--client-id",
            common::CLIENT_ID,
            "--secret-env",
            "TOKENWARD_SANDBOX_UNSET_VAR",
        ])
        .env_remove("TOKENWARD_SANDBOX_UNSET_VAR")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--secret-env"), "{stderr}");
}

#[test]
fn client_id_without_secret_is_a_usage_error() {
    let output = Command::new(BIN)
        .args(["--client-id", common::CLIENT_ID])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--secret"), "{stderr}");
    let output = Command::new(BIN)
        .args(["--secret", common::SECRET])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains(common::SECRET), "{stderr}");
}
