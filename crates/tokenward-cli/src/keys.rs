//! `tokenward keys`: keyring file management. Key material is never printed.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;

use serde_json::json;
use tokenward_envelope::{Cipher, KeyVersion, Keyring};

use crate::cli::{KeysArgs, KeysCommand, ListFormat};
use crate::config::{Global, keyring_failure, load_keyring_file};
use crate::failure::{Code, Failure};

pub(crate) fn run(global: &Global, args: &KeysArgs) -> Result<(), Failure> {
    let path = global.keyring_path()?;
    match args.command {
        KeysCommand::Generate { force } => {
            if path.exists() && !force {
                return Err(Failure::new(
                    Code::Refused,
                    "the keyring file exists; pass --force to replace it (its keys are lost)",
                ));
            }
            let keyring = Keyring::generate().map_err(|e| keyring_failure(&e))?;
            keyring.save_file(&path).map_err(|e| keyring_failure(&e))?;
            say(&format!(
                "generated a keyring with primary key {} (file mode 0600)",
                primary(&keyring)
            ))
        }
        KeysCommand::List { format } => {
            let keyring = load_keyring_file(&path)?;
            list(&keyring, format)
        }
        KeysCommand::Add => {
            let keyring = load_keyring_file(&path)?;
            let version = keyring.add_staged().map_err(|e| keyring_failure(&e))?;
            keyring.save_file(&path).map_err(|e| keyring_failure(&e))?;
            say(&format!(
                "added key {version}, staged: distribute the keyring, then promote it"
            ))
        }
        KeysCommand::Promote { version } => {
            let keyring = load_keyring_file(&path)?;
            let version = parse_version(version)?;
            keyring.promote(version).map_err(|e| keyring_failure(&e))?;
            keyring.save_file(&path).map_err(|e| keyring_failure(&e))?;
            say(&format!(
                "key {version} is primary; rewrap the vault (tokenward rewrap) before disabling older keys"
            ))
        }
        KeysCommand::Disable {
            version,
            no_vault_check,
        } => {
            let keyring = Arc::new(load_keyring_file(&path)?);
            let version = parse_version(version)?;
            if !keyring.keys().iter().any(|k| k.version == version) {
                return Err(Failure::new(
                    Code::Refused,
                    format!("keyring: unknown key {version}"),
                ));
            }
            if !no_vault_check {
                check_unused(global, &keyring, version)?;
            }
            keyring.disable(version).map_err(|e| keyring_failure(&e))?;
            keyring.save_file(&path).map_err(|e| keyring_failure(&e))?;
            say(&format!("key {version} is disabled"))
        }
    }
}

/// Refuses to disable a version that still protects an envelope in the configured vault.
fn check_unused(
    global: &Global,
    keyring: &Arc<Keyring>,
    version: KeyVersion,
) -> Result<(), Failure> {
    if global.vault_url().is_none() {
        return Err(Failure::new(
            Code::Refused,
            "no vault configured to check that no envelope is under the version; set TOKENWARD_VAULT_URL or pass --no-vault-check",
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::io("could not start the async runtime", &e))?;
    let count = runtime.block_on(async {
        let vault = global.open_vault(Cipher::new(Arc::clone(keyring))).await?;
        let count = tokenward_vault::Vault::envelopes_under(&vault, version)
            .await
            .map_err(|e| Failure::caused(Code::Vault, "vault", &e));
        vault.close().await;
        count
    })?;
    if count > 0 {
        return Err(Failure::new(
            Code::Refused,
            format!(
                "{count} envelope(s) are still under key {version}; run tokenward rewrap first"
            ),
        ));
    }
    Ok(())
}

fn list(keyring: &Keyring, format: ListFormat) -> Result<(), Failure> {
    let keys = keyring.keys();
    let text = match format {
        ListFormat::Text => {
            let mut text = String::from("VERSION  STATE\n");
            for key in &keys {
                let _ = writeln!(text, "{:<8} {}", key.version.to_string(), key.state);
            }
            if let Some(min) = keyring.min_decrypt_version() {
                let _ = writeln!(text, "minimum decryption version: {min}");
            }
            text
        }
        ListFormat::Json => {
            let keys: Vec<_> = keys
                .iter()
                .map(|k| json!({"version": u32::from(k.version), "state": k.state.to_string()}))
                .collect();
            let value = json!({
                "primary": keyring.primary_version().map(u32::from),
                "min_decrypt_version": keyring.min_decrypt_version().map(u32::from),
                "keys": keys,
            });
            format!("{value}\n")
        }
    };
    write_stdout(text.as_bytes())
}

/// A key version from the command line (versions start at 1).
pub(crate) fn parse_version(version: u32) -> Result<KeyVersion, Failure> {
    KeyVersion::try_from(version).map_err(|_| Failure::new(Code::Usage, "key versions start at 1"))
}

fn primary(keyring: &Keyring) -> String {
    keyring
        .primary_version()
        .map_or_else(|| "none".to_owned(), |v| v.to_string())
}

/// A status line on stdout.
fn say(line: &str) -> Result<(), Failure> {
    write_stdout(format!("{line}\n").as_bytes())
}

/// Writes to stdout; a closed pipe is an I/O failure.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Failure::io("could not write to stdout", &e))
}
