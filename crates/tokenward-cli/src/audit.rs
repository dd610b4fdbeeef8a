//! `tokenward audit`: an evidence report for a compliance review.
//!
//! KEK versions and the envelopes each protects, Items by credential and health state, the
//! last rotation per Item, orphaned Items and Items that need an operator, open rotation
//! attempts and unfinished rewrap jobs, and a redaction self-test that plants a canary of every
//! kind of secret and shows the scrubbers remove it. No token, key or user id is in it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tokenward_redact::{PLACEHOLDER_PREFIX, Policy, scrub_json_to_vec};
use tokenward_vault::{AuditEvent, CredentialState, HealthState, SqlVault, Timestamp, Vault};

use crate::cli::{AuditArgs, ReportFormat};
use crate::config::Global;
use crate::failure::{Code, Failure};
use crate::keys::write_stdout;
use crate::rotate::all_items;

pub(crate) async fn run(global: &Global, args: AuditArgs) -> Result<(), Failure> {
    let cipher = global.cipher()?;
    let vault = global.open_vault(cipher).await?;
    let report = collect(&vault).await;
    vault.close().await;
    let report = report?;
    let text = match args.format {
        ReportFormat::Text => render_text(&report),
        ReportFormat::Json => {
            let mut json = serde_json::to_string_pretty(&report)
                .map_err(|e| Failure::caused(Code::Failure, "audit", &e))?;
            json.push('\n');
            json
        }
        ReportFormat::Markdown => render_markdown(&report),
    };
    // Nothing secret is collected; scrubbed anyway, as every output is.
    write_stdout(Policy::plaid().scrub_text(&text).as_bytes())?;
    if report.redaction_self_test.passed {
        Ok(())
    } else {
        Err(Failure::new(
            Code::Failure,
            "the redaction self-test failed: a planted canary survived scrubbing",
        ))
    }
}

#[derive(Debug, Serialize)]
struct Report {
    generated_at: String,
    tokenward_version: &'static str,
    vault_backend: String,
    primary_kek_version: Option<u32>,
    kek_versions: Vec<KekRow>,
    /// Versions that envelopes name but the keyring does not hold.
    unknown_kek_versions: Vec<KekRow>,
    items_total: usize,
    credential_states: BTreeMap<&'static str, usize>,
    health_states: BTreeMap<&'static str, usize>,
    items: Vec<ItemRow>,
    orphaned_items: Vec<String>,
    needs_operator: Vec<ItemRow>,
    open_rotation_attempts: usize,
    unfinished_rewrap_jobs: usize,
    redaction_self_test: SelfTest,
}

#[derive(Debug, Serialize)]
struct KekRow {
    version: u32,
    state: String,
    /// Current envelopes of Items under this version.
    items: u64,
    /// Every envelope under it (current and stashed by rotation attempts).
    envelopes: u64,
}

#[derive(Debug, Clone, Serialize)]
struct ItemRow {
    item_id: String,
    credential_state: &'static str,
    health_state: &'static str,
    token_version: u64,
    kek_version: u32,
    last_rotation: Option<String>,
}

#[derive(Debug, Serialize)]
struct SelfTest {
    passed: bool,
    cases: Vec<SelfTestCase>,
}

#[derive(Debug, Serialize)]
struct SelfTestCase {
    kind: &'static str,
    text_scrubbed: bool,
    json_scrubbed: bool,
}

async fn collect(vault: &SqlVault) -> Result<Report, Failure> {
    let read = |e: &tokenward_vault::ReadError| Failure::caused(Code::Vault, "vault", e);
    let keyring = vault.cipher().keyring();
    let (kek_versions, unknown_kek_versions) = kek_rows(vault).await?;
    let records = all_items(vault).await?;
    let mut credential_states: BTreeMap<&'static str, usize> = CredentialState::ALL
        .iter()
        .map(|s| (s.as_str(), 0))
        .collect();
    let mut health_states: BTreeMap<&'static str, usize> =
        HealthState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    let mut items = Vec::with_capacity(records.len());
    for record in &records {
        *credential_states
            .entry(record.credential_state.as_str())
            .or_default() += 1;
        *health_states
            .entry(record.health_state.as_str())
            .or_default() += 1;
        let journal = vault.audit(&record.item_id).await.map_err(|e| read(&e))?;
        let last_rotation = journal
            .iter()
            .rev()
            .find(|r| {
                matches!(
                    r.event,
                    AuditEvent::TokenPromoted | AuditEvent::TokenUpdated
                )
            })
            .map(|r| time(r.at));
        items.push(ItemRow {
            item_id: record.item_id.as_str().to_owned(),
            credential_state: record.credential_state.as_str(),
            health_state: record.health_state.as_str(),
            token_version: record.token_version,
            kek_version: u32::from(record.kek_version),
            last_rotation,
        });
    }
    let orphaned_items = items
        .iter()
        .filter(|i| i.credential_state == CredentialState::Orphaned.as_str())
        .map(|i| i.item_id.clone())
        .collect();
    let attention = [
        CredentialState::Orphaned,
        CredentialState::Quarantined,
        CredentialState::Dead,
        CredentialState::Unknown,
        CredentialState::Reconcile,
    ];
    let needs_operator = items
        .iter()
        .filter(|i| attention.iter().any(|s| s.as_str() == i.credential_state))
        .cloned()
        .collect();
    let open_rotation_attempts = vault.open_attempts().await.map_err(|e| read(&e))?.len();
    let unfinished_rewrap_jobs = vault
        .unfinished_rewrap_jobs()
        .await
        .map_err(|e| read(&e))?
        .len();
    Ok(Report {
        generated_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        tokenward_version: env!("CARGO_PKG_VERSION"),
        vault_backend: format!("{:?}", vault.backend()).to_lowercase(),
        primary_kek_version: keyring.primary_version().map(u32::from),
        kek_versions,
        unknown_kek_versions,
        items_total: items.len(),
        credential_states,
        health_states,
        items,
        orphaned_items,
        needs_operator,
        open_rotation_attempts,
        unfinished_rewrap_jobs,
        redaction_self_test: self_test(&Policy::plaid()),
    })
}

/// The keyring's versions with their counts, and versions envelopes name that it lacks.
async fn kek_rows(vault: &SqlVault) -> Result<(Vec<KekRow>, Vec<KekRow>), Failure> {
    let read = |e: &tokenward_vault::ReadError| Failure::caused(Code::Vault, "vault", e);
    let keyring = vault.cipher().keyring();
    let counts: BTreeMap<u32, u64> = vault
        .count_by_kek_version()
        .await
        .map_err(|e| read(&e))?
        .into_iter()
        .map(|(v, n)| (u32::from(v), n))
        .collect();
    let mut kek_versions = Vec::new();
    for info in keyring.keys() {
        let envelopes = vault
            .envelopes_under(info.version)
            .await
            .map_err(|e| read(&e))?;
        kek_versions.push(KekRow {
            version: u32::from(info.version),
            state: info.state.to_string(),
            items: counts.get(&u32::from(info.version)).copied().unwrap_or(0),
            envelopes,
        });
    }
    let unknown_kek_versions = counts
        .iter()
        .filter(|(v, _)| !kek_versions.iter().any(|k| k.version == **v))
        .map(|(v, n)| KekRow {
            version: *v,
            state: "unknown to the keyring".to_owned(),
            items: *n,
            envelopes: *n,
        })
        .collect();

    Ok((kek_versions, unknown_kek_versions))
}

fn time(at: Timestamp) -> String {
    DateTime::<Utc>::from_timestamp_millis(at.unix_millis()).map_or_else(
        || format!("{}ms", at.unix_millis()),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// One canary per kind of secret: (kind, the secret part, a log line holding it, a JSON
/// document holding it). Built at run time, never printed.
fn canaries() -> Vec<(&'static str, String, String, String)> {
    let id = "7e57ca4a-11e5-4bad-8c0d-5e1f7e57ca4a";
    let token = |kind: &str| format!("{kind}-production-{id}");
    let mut cases = Vec::new();
    for (kind, prefix) in [
        ("plaid access token", "access"),
        ("plaid public token", "public"),
        ("plaid link token", "link"),
        ("plaid processor token", "processor"),
        ("plaid user token", "user"),
    ] {
        let secret = token(prefix);
        let line = format!("exchange ok item=it-1 token={secret} status=200");
        let json = format!(r#"{{"message":"token {secret} stored","token":"{secret}"}}"#);
        cases.push((kind, secret, line, json));
    }
    let secret = "Zq8w7e6r5t4y3u2i1o0p9a8s7d6f5g".to_owned();
    cases.push((
        "plaid client secret",
        secret.clone(),
        format!("request headers PLAID-SECRET: {secret}"),
        format!(r#"{{"client_id":"abc","secret":"{secret}"}}"#),
    ));
    let secret = "sk9Xq2LmN8pR4tV7wY1zB3cDe5".to_owned();
    cases.push((
        "bearer credential",
        secret.clone(),
        format!("Authorization: Bearer {secret}"),
        format!(r#"{{"headers":{{"authorization":"Bearer {secret}"}}}}"#),
    ));
    let secret =
        "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ0ZXN0LWNhbmFyeSJ9.c2lnbmF0dXJlLWNhbmFyeQ".to_owned();
    cases.push((
        "jwt",
        secret.clone(),
        format!("webhook header {secret} received"),
        format!(r#"{{"jwt_note":"got {secret}"}}"#),
    ));
    let secret = "021000021".to_owned();
    cases.push((
        "routing number",
        secret.clone(),
        format!(r#"ach {{"routing": "{secret}"}}"#),
        format!(r#"{{"numbers":{{"routing":"{secret}"}}}}"#),
    ));
    cases
}

fn self_test(policy: &Policy) -> SelfTest {
    self_test_with(
        |line| policy.scrub_text(line).into_owned(),
        |json| scrub_json_to_vec(policy, json).ok(),
    )
}

/// The self-test over any text and JSON scrubber (`None`: the JSON scrubber failed).
fn self_test_with(
    text: impl Fn(&str) -> String,
    json: impl Fn(&[u8]) -> Option<Vec<u8>>,
) -> SelfTest {
    let cases: Vec<SelfTestCase> = canaries()
        .into_iter()
        .map(|(kind, secret, line, document)| {
            let out = text(&line);
            let text_scrubbed = !out.contains(&secret) && out.contains(PLACEHOLDER_PREFIX);
            let json_scrubbed = json(document.as_bytes()).is_some_and(|out| {
                let out = String::from_utf8_lossy(&out);
                !out.contains(&secret) && out.contains(PLACEHOLDER_PREFIX)
            });
            SelfTestCase {
                kind,
                text_scrubbed,
                json_scrubbed,
            }
        })
        .collect();
    SelfTest {
        passed: cases.iter().all(|c| c.text_scrubbed && c.json_scrubbed),
        cases,
    }
}

fn pass(ok: bool) -> &'static str {
    if ok { "pass" } else { "FAIL" }
}

fn render_text(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "tokenward audit report");
    let _ = writeln!(s, "generated at: {}", r.generated_at);
    let _ = writeln!(s, "tokenward version: {}", r.tokenward_version);
    let _ = writeln!(s, "vault backend: {}", r.vault_backend);
    let _ = writeln!(s);
    let _ = writeln!(s, "KEK versions (primary: {}):", opt(r.primary_kek_version));
    for k in r.kek_versions.iter().chain(&r.unknown_kek_versions) {
        let _ = writeln!(
            s,
            "  version {:<4} {:<22} items {:<8} envelopes {}",
            k.version, k.state, k.items, k.envelopes
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "Items: {}", r.items_total);
    let _ = writeln!(s, "  by credential state:");
    for (state, n) in r.credential_states.iter().filter(|(_, n)| **n > 0) {
        let _ = writeln!(s, "    {state:<14} {n}");
    }
    let _ = writeln!(s, "  by health state:");
    for (state, n) in r.health_states.iter().filter(|(_, n)| **n > 0) {
        let _ = writeln!(s, "    {state:<18} {n}");
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "Last rotation per Item:");
    for i in &r.items {
        let _ = writeln!(
            s,
            "  {}  v{}  kek {}  {}/{}  last rotation: {}",
            i.item_id,
            i.token_version,
            i.kek_version,
            i.credential_state,
            i.health_state,
            i.last_rotation.as_deref().unwrap_or("never")
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "Orphaned Items: {}", r.orphaned_items.len());
    for id in &r.orphaned_items {
        let _ = writeln!(s, "  {id}");
    }
    let _ = writeln!(s, "Items that need an operator: {}", r.needs_operator.len());
    for i in &r.needs_operator {
        let _ = writeln!(s, "  {}  {}", i.item_id, i.credential_state);
    }
    let _ = writeln!(s, "Open rotation attempts: {}", r.open_rotation_attempts);
    let _ = writeln!(s, "Unfinished rewrap jobs: {}", r.unfinished_rewrap_jobs);
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Redaction self-test: {}",
        pass(r.redaction_self_test.passed)
    );
    for c in &r.redaction_self_test.cases {
        let _ = writeln!(
            s,
            "  {:<24} text {}  json {}",
            c.kind,
            pass(c.text_scrubbed),
            pass(c.json_scrubbed)
        );
    }
    s
}

fn render_markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# tokenward audit report\n");
    let _ = writeln!(s, "- Generated at: {}", r.generated_at);
    let _ = writeln!(s, "- tokenward version: {}", r.tokenward_version);
    let _ = writeln!(s, "- Vault backend: {}", r.vault_backend);
    let _ = writeln!(s, "- Primary KEK version: {}\n", opt(r.primary_kek_version));
    let _ = writeln!(s, "## KEK versions\n");
    let _ = writeln!(
        s,
        "| version | state | items | envelopes |\n|---|---|---|---|"
    );
    for k in r.kek_versions.iter().chain(&r.unknown_kek_versions) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            k.version, k.state, k.items, k.envelopes
        );
    }
    let _ = writeln!(s, "\n## Items by state\n");
    let _ = writeln!(s, "Total: {}\n", r.items_total);
    let _ = writeln!(s, "| credential state | items |\n|---|---|");
    for (state, n) in &r.credential_states {
        let _ = writeln!(s, "| {state} | {n} |");
    }
    let _ = writeln!(s, "\n| health state | items |\n|---|---|");
    for (state, n) in &r.health_states {
        let _ = writeln!(s, "| {state} | {n} |");
    }
    let _ = writeln!(s, "\n## Last rotation per Item\n");
    let _ = writeln!(
        s,
        "| item | token version | KEK version | credential | health | last rotation |\n|---|---|---|---|---|---|"
    );
    for i in &r.items {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | {} |",
            i.item_id,
            i.token_version,
            i.kek_version,
            i.credential_state,
            i.health_state,
            i.last_rotation.as_deref().unwrap_or("never")
        );
    }
    let _ = writeln!(s, "\n## Orphaned Items and Items that need an operator\n");
    if r.needs_operator.is_empty() {
        let _ = writeln!(s, "None.");
    }
    for i in &r.needs_operator {
        let _ = writeln!(s, "- `{}`: {}", i.item_id, i.credential_state);
    }
    let _ = writeln!(
        s,
        "\nOpen rotation attempts: {}. Unfinished rewrap jobs: {}.",
        r.open_rotation_attempts, r.unfinished_rewrap_jobs
    );
    let _ = writeln!(
        s,
        "\n## Redaction self-test: {}\n",
        pass(r.redaction_self_test.passed)
    );
    let _ = writeln!(
        s,
        "| canary | text scrubber | JSON scrubber |\n|---|---|---|"
    );
    for c in &r.redaction_self_test.cases {
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            c.kind,
            pass(c.text_scrubbed),
            pass(c.json_scrubbed)
        );
    }
    s
}

fn opt(v: Option<u32>) -> String {
    v.map_or_else(|| "none".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_canary_is_scrubbed_by_both_scrubbers() {
        let test = self_test(&Policy::plaid());
        for case in &test.cases {
            assert!(case.text_scrubbed && case.json_scrubbed, "{}", case.kind);
        }
        assert!(test.passed);
        assert!(test.cases.len() >= 9);
    }

    #[test]
    fn the_self_test_fails_when_a_scrubber_misses() {
        // A scrubber that passes everything through must fail every case.
        let test = self_test_with(str::to_owned, |json| Some(json.to_vec()));
        assert!(!test.passed);
        assert!(
            test.cases
                .iter()
                .all(|c| !c.text_scrubbed && !c.json_scrubbed)
        );
        // One that misses only one kind fails only that case.
        let policy = Policy::plaid();
        let test = self_test_with(
            |line| {
                if line.contains("Bearer") {
                    line.to_owned()
                } else {
                    policy.scrub_text(line).into_owned()
                }
            },
            |json| scrub_json_to_vec(&policy, json).ok(),
        );
        assert!(!test.passed);
        let failed: Vec<_> = test
            .cases
            .iter()
            .filter(|c| !c.text_scrubbed)
            .map(|c| c.kind)
            .collect();
        assert_eq!(failed, ["bearer credential"]);
    }
}
