//! Running the built `tokenward` binary, the leak scan every run goes through, and the keyring
//! and `SQLite` vault in a temporary directory the binary is configured for.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unreachable_pub,
    reason = "test support: failures should be loud; not every test file uses every function"
)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One finished run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn stdout_text(&self) -> String {
        String::from_utf8(self.stdout.clone()).unwrap()
    }

    /// Asserts success and returns stdout as text.
    #[track_caller]
    pub fn ok(&self) -> String {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        self.stdout_text()
    }

    /// Asserts the exit code of a failure, and that stderr is exactly one `error:` line.
    #[track_caller]
    pub fn fails(&self, code: i32) -> &str {
        assert_eq!(self.code, code, "stderr: {}", self.stderr);
        assert!(self.stderr.starts_with("error: "), "{:?}", self.stderr);
        assert_eq!(self.stderr.lines().count(), 1, "{:?}", self.stderr);
        assert!(self.stderr.ends_with('\n'));
        &self.stderr
    }
}

/// The binary with a clean environment (plus `env`), `stdin` piped in; every output is
/// scanned for `secrets`.
pub struct Cli {
    pub env: Vec<(String, String)>,
    pub secrets: Vec<String>,
}

impl Cli {
    pub fn new() -> Self {
        Cli {
            env: Vec::new(),
            secrets: Vec::new(),
        }
    }

    pub fn env(mut self, name: &str, value: impl AsRef<str>) -> Self {
        self.set(name, value);
        self
    }

    pub fn set(&mut self, name: &str, value: impl AsRef<str>) {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_owned(), value.as_ref().to_owned()));
    }

    pub fn unset(&mut self, name: &str) {
        self.env.retain(|(n, _)| n != name);
    }

    /// A copy with the same environment and planted secrets.
    pub fn clone_for_test(&self) -> Cli {
        Cli {
            env: self.env.clone(),
            secrets: self.secrets.clone(),
        }
    }

    /// A secret no output may contain.
    pub fn plant(&mut self, secret: impl Into<String>) {
        self.secrets.push(secret.into());
    }

    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Run {
        let run = run_binary(&self.env, args, stdin);
        self.scan(&run, args);
        run
    }

    /// Like [`Cli::run`], but the plaintext on stdout is expected (`open`): only stderr is
    /// scanned.
    pub fn run_expecting_plaintext(&self, args: &[&str], stdin: &[u8]) -> Run {
        let run = run_binary(&self.env, args, stdin);
        for secret in &self.secrets {
            assert!(
                !run.stderr.contains(secret.as_str()),
                "{args:?} leaked on stderr"
            );
        }
        run
    }

    #[track_caller]
    pub fn scan(&self, run: &Run, args: &[&str]) {
        let stdout = String::from_utf8_lossy(&run.stdout);
        for secret in &self.secrets {
            assert!(
                !stdout.contains(secret.as_str()),
                "{args:?} leaked a planted secret on stdout"
            );
            assert!(
                !run.stderr.contains(secret.as_str()),
                "{args:?} leaked a planted secret on stderr"
            );
        }
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        assert!(!run.stderr.contains("RUST_BACKTRACE"), "{}", run.stderr);
    }
}

pub fn run_binary(env: &[(String, String)], args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokenward"))
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // A command that does not read stdin closes it: ignore the broken pipe.
        let _ = input.write_all(&bytes);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: output.stdout,
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// A keyring file made by `tokenward keys generate` in `dir`.
pub fn keyring(dir: &Path) -> PathBuf {
    let path = dir.join("keyring.json");
    let run = run_binary(
        &[(
            "TOKENWARD_KEYRING_FILE".to_owned(),
            path.display().to_string(),
        )],
        &["keys", "generate"],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    path
}

/// Every string value in a keyring file (key material among them), for the leak scan.
pub fn keyring_strings(path: &Path) -> Vec<String> {
    fn walk(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::String(s) if s.len() >= 16 => out.push(s.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let text = std::fs::read_to_string(path).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    walk(&value, &mut out);
    assert!(!out.is_empty(), "the keyring file holds key material");
    out
}

/// A keyring and an `SQLite` vault path in a temporary directory, and the binary configured
/// for both (the keyring's strings planted).
pub struct Setup {
    pub _dir: tempfile::TempDir,
    pub keyring: PathBuf,
    pub vault: PathBuf,
    pub cli: Cli,
}

/// A new keyring in a new temporary directory, the vault path beside it, and the binary
/// configured for both and nothing else.
pub fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let keyring = keyring(dir.path());
    let vault = dir.path().join("vault.db");
    let mut cli = Cli::new()
        .env("TOKENWARD_KEYRING_FILE", keyring.display().to_string())
        .env("TOKENWARD_VAULT_URL", format!("sqlite:{}", vault.display()));
    for secret in keyring_strings(&keyring) {
        cli.plant(secret);
    }
    Setup {
        _dir: dir,
        keyring,
        vault,
        cli,
    }
}

/// The setup's vault, opened with its keyring.
pub async fn open_vault(setup: &Setup) -> tokenward_vault::SqlVault {
    let keyring = tokenward_envelope::Keyring::load_file(&setup.keyring).unwrap();
    tokenward_vault::SqlVault::sqlite_file(
        &setup.vault,
        tokenward_envelope::Cipher::new(std::sync::Arc::new(keyring)),
    )
    .await
    .unwrap()
}

/// Now, as a vault timestamp.
pub fn now() -> tokenward_vault::Timestamp {
    tokenward_vault::Timestamp::from_system_time(std::time::SystemTime::now()).unwrap()
}

/// The made-up access token number `n`.
pub fn token(n: u32) -> String {
    format!("access-sandbox-00000000-0000-4000-8000-{n:012}")
}
