//! Configuration from flags and the environment: the keyring, the vault, the Plaid client.

// The flags' doc comments are `--help` text, where backticks would be printed as they are.
#![allow(clippy::doc_markdown, reason = "doc comments are --help text")]

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokenward_envelope::{Cipher, KEYRING_ENV, KEYRING_FILE_ENV, Keyring, KeyringError};
use tokenward_plaid::{Environment, HttpPlaidClient};
use tokenward_vault::SqlVault;

use crate::failure::{Code, Failure};

/// The vault's URL: `sqlite:PATH`, `sqlite://PATH` or `postgres://…`.
pub(crate) const VAULT_URL_ENV: &str = "TOKENWARD_VAULT_URL";
/// Overrides `PLAID_ENV` with a base URL (the emulator, a proxy).
pub(crate) const PLAID_URL_ENV: &str = "TOKENWARD_PLAID_URL";

/// Options shared by every command. `Debug` shows the vault URL's scheme only: the URL may
/// hold a password.
#[derive(Clone, Default, clap::Args)]
pub(crate) struct Global {
    /// Keyring file (default: $TOKENWARD_KEYRING_FILE; or the keyring itself in
    /// $TOKENWARD_KEYRING).
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) keyring_file: Option<PathBuf>,

    /// Vault URL: sqlite:PATH or postgres://… (default: $TOKENWARD_VAULT_URL). A URL with a
    /// password is visible in the process list: prefer the variable.
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) vault: Option<String>,

    /// Plaid base URL, overriding PLAID_ENV (default: $TOKENWARD_PLAID_URL), e.g. the
    /// emulator's http://127.0.0.1:PORT.
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) plaid_url: Option<String>,
}

impl fmt::Debug for Global {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Global")
            .field("keyring_file", &self.keyring_file)
            .field("vault", &self.vault.as_deref().map(redacted_url))
            .field("plaid_url", &self.plaid_url)
            .finish()
    }
}

/// A vault URL as `scheme:[REDACTED]` for the schemes the vault knows, else `[REDACTED]`
/// (what precedes a colon could be a user name).
fn redacted_url(url: &str) -> String {
    match url.trim().split_once(':') {
        Some((scheme @ ("sqlite" | "postgres" | "postgresql"), _)) => {
            format!("{scheme}:[REDACTED]")
        }
        _ => "[REDACTED]".to_owned(),
    }
}

impl Global {
    /// The keyring file named by `--keyring-file` or `TOKENWARD_KEYRING_FILE`.
    pub(crate) fn keyring_path(&self) -> Result<PathBuf, Failure> {
        if let Some(path) = &self.keyring_file {
            return Ok(path.clone());
        }
        match std::env::var_os(KEYRING_FILE_ENV) {
            Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
            _ => Err(Failure::new(
                Code::Config,
                format!("no keyring file: pass --keyring-file or set {KEYRING_FILE_ENV}"),
            )),
        }
    }

    /// The keyring: `--keyring-file`, else `TOKENWARD_KEYRING`, else `TOKENWARD_KEYRING_FILE`.
    pub(crate) fn keyring(&self) -> Result<Keyring, Failure> {
        match &self.keyring_file {
            Some(path) => load_keyring_file(path),
            None => Keyring::from_env().map_err(|e| keyring_failure(&e)),
        }
    }

    /// A cipher over [`Global::keyring`].
    pub(crate) fn cipher(&self) -> Result<Cipher, Failure> {
        Ok(Cipher::new(Arc::new(self.keyring()?)))
    }

    /// The vault URL, if configured.
    pub(crate) fn vault_url(&self) -> Option<String> {
        self.vault
            .clone()
            .or_else(|| std::env::var(VAULT_URL_ENV).ok())
            .filter(|url| !url.trim().is_empty())
    }

    /// Opens the vault named by `--vault` or `TOKENWARD_VAULT_URL` with `cipher`. A `SQLite`
    /// file must already exist (a typo must not create an empty vault).
    pub(crate) async fn open_vault(&self, cipher: Cipher) -> Result<SqlVault, Failure> {
        let url = self.vault_url().ok_or_else(|| {
            Failure::new(
                Code::Config,
                format!(
                    "no vault: pass --vault or set {VAULT_URL_ENV} (sqlite:PATH or postgres://…)"
                ),
            )
        })?;
        open_vault(url.trim(), cipher).await
    }

    /// The Plaid client: `PLAID_CLIENT_ID`, `PLAID_SECRET`, and `--plaid-url` /
    /// `TOKENWARD_PLAID_URL` / `PLAID_ENV` for the environment.
    pub(crate) fn plaid_client(&self) -> Result<HttpPlaidClient, Failure> {
        let base_url = self
            .plaid_url
            .clone()
            .or_else(|| std::env::var(PLAID_URL_ENV).ok())
            .filter(|url| !url.trim().is_empty());
        if let Some(url) = &base_url {
            Environment::parse(url, "the Plaid base URL")
                .map_err(|e| Failure::caused(Code::Config, "plaid", &e))?;
        }
        HttpPlaidClient::from_lookup(|name| {
            if name == "PLAID_ENV"
                && let Some(url) = &base_url
            {
                return Some(url.clone());
            }
            match std::env::var(name) {
                Ok(value) => Some(value),
                Err(std::env::VarError::NotPresent) => None,
                Err(std::env::VarError::NotUnicode(_)) => Some("\u{fffd}".to_owned()),
            }
        })
        .map_err(|e| Failure::caused(Code::Config, "plaid", &e))
    }
}

/// Loads a keyring file (refused when others can read or write it).
pub(crate) fn load_keyring_file(path: &Path) -> Result<Keyring, Failure> {
    Keyring::load_file(path).map_err(|e| keyring_failure(&e))
}

/// Maps a keyring error to a failure with its exit code.
pub(crate) fn keyring_failure(error: &KeyringError) -> Failure {
    match error {
        KeyringError::NotConfigured => Failure::new(
            Code::Config,
            format!(
                "no keyring: pass --keyring-file, or set {KEYRING_FILE_ENV} (a keyring file) or {KEYRING_ENV} (the keyring itself)"
            ),
        ),
        KeyringError::InsecurePermissions { .. }
        | KeyringError::Io { .. }
        | KeyringError::Invalid(_) => Failure::caused(Code::Config, "keyring", error),
        KeyringError::Randomness => Failure::caused(Code::Failure, "keyring", error),
        _ => Failure::caused(Code::Refused, "keyring", error),
    }
}

async fn open_vault(url: &str, cipher: Cipher) -> Result<SqlVault, Failure> {
    let opened = if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() || path == ":memory:" {
            return Err(Failure::new(
                Code::Config,
                "the vault URL must name a SQLite file (sqlite:PATH)",
            ));
        }
        if !Path::new(path).is_file() {
            return Err(Failure::new(
                Code::Config,
                "the vault's SQLite file does not exist (check the vault URL)",
            ));
        }
        SqlVault::sqlite_file(path, cipher).await
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        SqlVault::postgres(url, cipher).await
    } else {
        // The URL itself is not echoed: it may hold a password.
        return Err(Failure::new(
            Code::Config,
            "the vault URL must start with sqlite: or postgres://",
        ));
    };
    opened.map_err(|e| match e {
        tokenward_vault::OpenError::Config(_) => Failure::caused(Code::Config, "vault", &e),
        _ => Failure::caused(Code::Vault, "vault: could not open", &e),
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::Cli;

    #[test]
    fn debug_never_shows_the_vault_url() {
        let canary = "pw-canary-5f1e";
        let url = format!("postgres://tokenward:{canary}@db.internal/vault");
        let global = Global {
            vault: Some(url.clone()),
            ..Global::default()
        };
        let debug = format!("{global:?}");
        assert!(!debug.contains(canary), "{debug}");
        assert!(debug.contains("postgres:[REDACTED]"), "{debug}");

        let cli =
            Cli::try_parse_from(["tokenward", "--vault", url.as_str(), "audit"]).expect("parses");
        let debug = format!("{cli:?}");
        assert!(!debug.contains(canary), "{debug}");

        let odd = Global {
            vault: Some(format!("admin:{canary}@host")),
            ..Global::default()
        };
        let debug = format!("{odd:?}");
        assert!(
            !debug.contains(canary) && !debug.contains("admin"),
            "{debug}"
        );
    }
}
