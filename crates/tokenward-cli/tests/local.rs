//! The commands that need no service: `keys`, `seal`, `open`, `scrub`, and the usage errors.
//! Every run goes through the leak scan of `support::Cli`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    missing_docs,
    reason = "test code: failures should be loud; a skipped test says why on stderr"
)]

mod support;

use std::os::unix::fs::PermissionsExt as _;

use support::{Cli, keyring, keyring_strings};
use tokenward_testkit::canary;

fn cli_with_keyring(dir: &std::path::Path) -> Cli {
    let path = keyring(dir);
    let mut cli = Cli::new().env("TOKENWARD_KEYRING_FILE", path.display().to_string());
    for secret in keyring_strings(&path) {
        cli.plant(secret);
    }
    cli
}

/// The binary with a keyring in `dir`, and the canary access token (planted) sealed under
/// `item_id=1`: the envelope's text form.
fn sealed_canary(dir: &std::path::Path) -> (Cli, String) {
    let mut cli = cli_with_keyring(dir);
    cli.plant(canary::ACCESS_SANDBOX);
    let sealed = cli
        .run(
            &["seal", "--context", "item_id=1"],
            canary::ACCESS_SANDBOX.as_bytes(),
        )
        .ok();
    (cli, sealed)
}

#[test]
fn keys_generate_list_add_promote_disable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring.json");
    let mut cli = Cli::new().env("TOKENWARD_KEYRING_FILE", path.display().to_string());
    cli.run(&["keys", "generate"], b"").ok();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    for secret in keyring_strings(&path) {
        cli.plant(secret);
    }
    // A second generate would lose the keys.
    cli.run(&["keys", "generate"], b"").fails(4);

    cli.run(&["keys", "add"], b"").ok();
    let listed = cli.run(&["keys", "list"], b"").ok();
    assert!(
        listed.contains("v1") && listed.contains("primary"),
        "{listed}"
    );
    assert!(
        listed.contains("v2") && listed.contains("staged"),
        "{listed}"
    );
    cli.run(&["keys", "promote", "2"], b"").ok();
    // Without a vault to check, disabling is refused unless asked for explicitly.
    cli.run(&["keys", "disable", "1"], b"").fails(4);
    cli.run(&["keys", "disable", "1", "--no-vault-check"], b"")
        .ok();
    let json = cli.run(&["keys", "list", "--format", "json"], b"").ok();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["primary"], 2);
    assert_eq!(value["keys"][0]["state"], "disabled");
    assert_eq!(value["keys"][1]["state"], "primary");
    // New material was added: scan for it too.
    for secret in keyring_strings(&path) {
        cli.plant(secret);
    }
    cli.run(&["keys", "list"], b"").ok();
    cli.run(&["keys", "promote", "9"], b"").fails(4);
    cli.run(&["keys", "promote", "0"], b"").fails(2);
}

#[test]
fn a_keyring_file_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cli = cli_with_keyring(dir.path());
    let path = dir.path().join("keyring.json");
    for mode in [0o640, 0o604, 0o660] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let run = cli.run(&["keys", "list"], b"");
        assert!(run.fails(3).contains("chmod 600"), "{}", run.stderr);
        let run = cli.run(&["seal", "--context", "item_id=1"], b"x");
        run.fails(3);
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    cli.run(&["keys", "list"], b"").ok();
}

#[test]
fn missing_configuration_is_exit_3() {
    let cli = Cli::new();
    let run = cli.run(&["keys", "list"], b"");
    assert!(run.fails(3).contains("TOKENWARD_KEYRING_FILE"));
    let run = cli.run(&["seal", "--context", "item_id=1"], b"x");
    assert!(run.fails(3).contains("TOKENWARD_KEYRING"));
    let run = cli.run(&["audit"], b"");
    run.fails(3);
    let missing = Cli::new().env("TOKENWARD_KEYRING_FILE", "/nonexistent/keyring.json");
    missing.run(&["keys", "list"], b"").fails(3);
}

#[test]
fn seal_then_open_round_trips_and_binds_the_context() {
    let dir = tempfile::tempdir().unwrap();
    let mut cli = cli_with_keyring(dir.path());
    cli.plant(canary::ACCESS_SANDBOX);
    let ctx = ["--context", "item_id=it-1", "--context", "user_id=u-1"];
    let sealed = cli
        .run(
            &[&["seal"], &ctx[..]].concat(),
            format!("{}\n", canary::ACCESS_SANDBOX).as_bytes(),
        )
        .ok();
    assert!(
        sealed.starts_with("twe1:") && sealed.ends_with('\n'),
        "{sealed}"
    );

    let opened = cli.run_expecting_plaintext(&[&["open"], &ctx[..]].concat(), sealed.as_bytes());
    assert_eq!(opened.code, 0, "{}", opened.stderr);
    assert_eq!(
        opened.stdout,
        canary::ACCESS_SANDBOX.as_bytes(),
        "the newline was dropped"
    );
    assert!(opened.stderr.is_empty());

    // Context order does not matter; a different value or a missing entry does.
    let swapped = ["--context", "user_id=u-1", "--context", "item_id=it-1"];
    let opened =
        cli.run_expecting_plaintext(&[&["open"], &swapped[..]].concat(), sealed.as_bytes());
    assert_eq!(opened.code, 0);
    let wrong = cli.run(
        &[
            "open",
            "--context",
            "item_id=it-2",
            "--context",
            "user_id=u-1",
        ],
        sealed.as_bytes(),
    );
    assert!(
        wrong
            .fails(6)
            .contains("wrong key, wrong context, or tampered data")
    );
    assert!(wrong.stdout.is_empty());
    cli.run(&["open", "--context", "item_id=it-1"], sealed.as_bytes())
        .fails(6);

    // --keep-newline seals stdin exactly.
    let exact = cli
        .run(&["seal", "--keep-newline", "--context", "k=v"], b"abc\n")
        .ok();
    let opened = cli.run_expecting_plaintext(&["open", "--context", "k=v"], exact.as_bytes());
    assert_eq!(opened.stdout, b"abc\n");
}

#[test]
fn tampered_and_malformed_envelopes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cli, sealed) = sealed_canary(dir.path());
    let sealed = sealed.trim();
    // Flip one character in every region of the text form (header, wrapped key, nonce,
    // ciphertext, tag): each is refused, never opened.
    let bytes = sealed.as_bytes();
    for at in (6..bytes.len()).step_by(17) {
        let mut tampered = bytes.to_vec();
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        let run = cli.run(&["open", "--context", "item_id=1"], &tampered);
        assert!(
            run.code == 6 || run.code == 5,
            "offset {at}: exit {} {}",
            run.code,
            run.stderr
        );
        run.fails(run.code);
        assert!(run.stdout.is_empty());
    }
    for malformed in [&b"not an envelope"[..], b"twe1:!!!", b"", b"\xff\xfe"] {
        cli.run(&["open", "--context", "item_id=1"], malformed)
            .fails(5);
    }
    cli.run(&["open", "--context", "novalue"], sealed.as_bytes())
        .fails(2);
    cli.run(&["seal", "--context", "item_id=1"], b"").fails(5);
}

#[test]
fn scrub_text_removes_every_planted_secret() {
    let mut cli = Cli::new();
    let secrets = [
        canary::ACCESS_SANDBOX,
        canary::ACCESS_PRODUCTION,
        canary::PUBLIC_SANDBOX,
        canary::LINK_PRODUCTION,
        canary::PROCESSOR_SANDBOX,
        canary::JWT,
        canary::PLAID_SECRET,
    ];
    for secret in secrets {
        cli.plant(secret);
    }
    let log = format!(
        "GET /accounts token={}\nexchange {} then {}\n{} {}\njwt {}\nPLAID-SECRET: {}\nclean line\n\nlast line without newline",
        canary::ACCESS_SANDBOX,
        canary::PUBLIC_SANDBOX,
        canary::ACCESS_PRODUCTION,
        canary::LINK_PRODUCTION,
        canary::PROCESSOR_SANDBOX,
        canary::JWT,
        canary::PLAID_SECRET,
    );
    let out = cli.run(&["scrub"], log.as_bytes()).ok();
    assert_eq!(out.lines().count(), log.lines().count());
    assert!(out.contains("GET /accounts token=[REDACTED:plaid.access_token]\n"));
    assert!(out.contains("clean line\n\nlast line without newline"));
    assert!(!out.ends_with('\n'));
}

#[test]
fn scrub_handles_a_huge_line_with_tokens_across_every_boundary() {
    let mut cli = Cli::new();
    cli.plant(canary::ACCESS_PRODUCTION);
    let mut line = String::new();
    let mut planted = 0;
    while line.len() < 3 * 1024 * 1024 {
        line.push_str(&"lorem ipsum ".repeat(700));
        line.push_str(canary::ACCESS_PRODUCTION);
        line.push(' ');
        planted += 1;
    }
    line.push('\n');
    let out = cli.run(&["scrub"], line.as_bytes()).ok();
    assert_eq!(
        out.matches("[REDACTED:plaid.access_token]").count(),
        planted
    );
    assert_eq!(
        out.len(),
        line.len() - planted * (canary::ACCESS_PRODUCTION.len() - 29)
    );
}

#[test]
fn scrub_json_is_ndjson_or_one_document_and_refuses_malformed_input() {
    let mut cli = Cli::new();
    cli.plant(canary::ACCESS_SANDBOX);
    cli.plant(canary::PLAID_SECRET);
    let ndjson = format!(
        "{{\"access_token\":\"{}\",\"n\":1}}\n\n{{\"note\":\"secret={}\"}}\n",
        canary::ACCESS_SANDBOX,
        canary::PLAID_SECRET
    );
    let out = cli.run(&["scrub", "--json"], ndjson.as_bytes()).ok();
    assert_eq!(out.lines().count(), 3);
    assert!(out.starts_with("{\"access_token\":\"[REDACTED:plaid.access_token]\",\"n\":1}\n\n"));

    let pretty = format!(
        "{{\n  \"item\": {{\n    \"access_token\": \"{}\"\n  }}\n}}\n",
        canary::ACCESS_SANDBOX
    );
    let out = cli
        .run(&["scrub", "--json", "--whole"], pretty.as_bytes())
        .ok();
    assert_eq!(
        out,
        "{\"item\":{\"access_token\":\"[REDACTED:plaid.access_token]\"}}\n"
    );
    // Pretty JSON read as NDJSON is malformed (line 1 is `{`): an error, nothing passed.
    let run = cli.run(&["scrub", "--json"], pretty.as_bytes());
    assert!(run.fails(5).contains("line 1"));
    assert!(run.stdout.is_empty());

    // A malformed line after good ones: the good ones are out, the bad one is not.
    let mixed = format!(
        "{{\"ok\":true}}\n{{\"access_token\":\"{}\" oops}}\n{{\"never\":1}}\n",
        canary::ACCESS_SANDBOX
    );
    let run = cli.run(&["scrub", "--json"], mixed.as_bytes());
    assert!(run.fails(5).contains("line 2"));
    assert_eq!(run.stdout_text(), "{\"ok\":true}\n");
    cli.run(&["scrub", "--json", "--whole"], b"[1, 2").fails(5);
    cli.run(
        &["scrub", "--json", "--max-document-bytes", "8"],
        b"{\"a\":\"0123456789\"}\n",
    )
    .fails(5);
    cli.run(&["scrub", "--whole"], b"{}").fails(2);
}

#[test]
fn usage_errors_are_one_line_and_exit_2() {
    let mut cli = Cli::new();
    cli.plant(canary::ACCESS_SANDBOX);
    cli.run(&[], b"").fails(2);
    cli.run(&["no-such-command"], b"").fails(2);
    cli.run(&["rotate", "--actor", "a"], b"").fails(2);
    // A value echoed back by the parser is scrubbed.
    let run = cli.run(&["keys", "promote", canary::ACCESS_SANDBOX], b"");
    assert!(
        run.fails(2).contains("[REDACTED:plaid.access_token]"),
        "{}",
        run.stderr
    );
    let help = cli.run(&["--help"], b"").ok();
    for code in 0..=9 {
        assert!(
            help.contains(&format!("\n  {code}  ")),
            "exit code {code} in --help"
        );
    }
    for variable in [
        "TOKENWARD_KEYRING_FILE",
        "TOKENWARD_KEYRING",
        "TOKENWARD_VAULT_URL",
        "PLAID_CLIENT_ID",
        "PLAID_SECRET",
        "PLAID_ENV",
        "TOKENWARD_PLAID_URL",
    ] {
        assert!(help.contains(variable), "{variable} in --help");
    }
    for command in [
        "keys",
        "seal",
        "open",
        "scrub",
        "verify-webhook",
        "rotate",
        "rewrap",
        "audit",
        "sandbox",
    ] {
        let help = cli.run(&[command, "--help"], b"").ok();
        assert!(help.contains("Example"), "{command} --help has examples");
    }
}

#[test]
fn open_refuses_to_write_plaintext_to_a_terminal() {
    // util-linux `script` gives the command a pseudo-terminal as stdout.
    let Ok(status) = std::process::Command::new("script")
        .arg("--version")
        .output()
    else {
        eprintln!("skipped: `script` (util-linux) is not installed, so no terminal to test with");
        return;
    };
    assert!(status.status.success());
    let dir = tempfile::tempdir().unwrap();
    let (_, sealed) = sealed_canary(dir.path());
    let envelope = dir.path().join("token.twe");
    std::fs::write(&envelope, sealed).unwrap();
    let keyring = dir.path().join("keyring.json");
    let on_terminal = |extra: &str| {
        let command = format!(
            "{} open --context item_id=1 {extra} < {}",
            env!("CARGO_BIN_EXE_tokenward"),
            envelope.display()
        );
        std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("TOKENWARD_KEYRING_FILE", &keyring)
            .output()
            .unwrap()
    };
    let refused = on_terminal("");
    assert_eq!(refused.status.code(), Some(4));
    let screen = String::from_utf8_lossy(&refused.stdout);
    assert!(
        screen.contains("refusing to write plaintext to a terminal"),
        "{screen}"
    );
    assert!(!screen.contains(canary::ACCESS_SANDBOX));
    let allowed = on_terminal("--to-terminal");
    assert_eq!(allowed.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&allowed.stdout).contains(canary::ACCESS_SANDBOX));
}

#[test]
fn the_keyring_can_come_from_a_variable() {
    let dir = tempfile::tempdir().unwrap();
    let path = keyring(dir.path());
    let json = std::fs::read_to_string(&path).unwrap();
    let mut cli = Cli::new().env("TOKENWARD_KEYRING", json.trim());
    for secret in keyring_strings(&path) {
        cli.plant(secret);
    }
    let sealed = cli.run(&["seal", "--context", "a=b"], b"hello").ok();
    let opened = cli.run_expecting_plaintext(&["open", "--context", "a=b"], sealed.as_bytes());
    assert_eq!(opened.stdout, b"hello");
    let broken = Cli::new().env("TOKENWARD_KEYRING", "{not json");
    broken.run(&["seal", "--context", "a=b"], b"hello").fails(3);
}
