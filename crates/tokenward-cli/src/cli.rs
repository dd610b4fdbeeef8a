//! The command line: commands, flags and their help.

// Doc comments here are `--help` text, where backticks would be printed as they are.
#![allow(clippy::doc_markdown, reason = "doc comments are --help text")]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Global;

const AFTER_HELP: &str = concat!(
    "Configuration (flags win over variables):\n",
    "  TOKENWARD_KEYRING_FILE  keyring file (0600; refused when group- or world-accessible)\n",
    "  TOKENWARD_KEYRING       the keyring itself (its JSON export), instead of a file\n",
    "  TOKENWARD_VAULT_URL     vault: sqlite:PATH or postgres://USER@HOST/DB\n",
    "  PLAID_CLIENT_ID         Plaid client id\n",
    "  PLAID_SECRET            Plaid secret (never printed)\n",
    "  PLAID_ENV               sandbox (default), production, or a base URL\n",
    "  TOKENWARD_PLAID_URL     base URL overriding PLAID_ENV (e.g. the emulator)\n",
    "\n",
    "Exit codes:\n",
    "  0  success\n",
    "  1  I/O failure (stdin, stdout, a file) or an internal error\n",
    "  2  usage error (bad flags or arguments)\n",
    "  3  configuration error (variables, keyring file or its permissions, vault URL, credentials)\n",
    "  4  refused by a safety rule (plaintext to a terminal, disabling a key in use, overwriting,\n",
    "     resolving an Item that is not orphaned, dead or quarantined)\n",
    "  5  malformed input (envelope, JSON for scrub --json, context, webhook body, unknown Item)\n",
    "  6  verification failed (envelope did not open; webhook signature, age, body, key)\n",
    "  7  Plaid or network error (including fetching a webhook verification key)\n",
    "  8  vault error (open, read or write)\n",
    "  9  incomplete (Items not rotated, rewrap paused or stopped early, an Item held by another\n",
    "     worker: rerun to resume)\n",
    "\n",
    "Every failure is one line on stderr, starting with `error:`; no secret is ever printed.\n",
    "\n",
    "Examples:\n",
    "  tokenward keys generate --keyring-file keyring.json\n",
    "  echo -n \"$TOKEN\" | tokenward seal --context item_id=it-1 > token.twe\n",
    "  tokenward scrub < app.log > app.scrubbed.log\n",
    "  tokenward audit --format markdown > evidence.md",
);

/// The tokenward operator CLI: keyrings, envelopes, scrubbing, webhooks, rotation, rewrap,
/// audit and the Plaid emulator.
#[derive(Debug, Parser)]
#[command(name = "tokenward", version, about, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Manage a keyring file: generate, list, add, promote, disable.
    #[command(
        after_help = "Examples:\n  export TOKENWARD_KEYRING_FILE=/etc/tokenward/keyring.json\n  tokenward keys generate\n  tokenward keys add\n  tokenward keys promote 2\n  tokenward rewrap && tokenward keys disable 1\n\nFiles are written with mode 0600, atomically; a keyring file that its group or others can\nread or write is refused. No command prints key material."
    )]
    Keys(KeysArgs),
    /// Seal stdin into an envelope (text form) on stdout.
    #[command(
        after_help = "Examples:\n  echo -n \"$TOKEN\" | tokenward seal --context item_id=it-1 --context user_id=u-1 > token.twe"
    )]
    Seal(SealArgs),
    /// Open an envelope (text form) from stdin; the plaintext goes to stdout.
    #[command(
        after_help = "Examples:\n  tokenward open --context item_id=it-1 --context user_id=u-1 < token.twe > token.txt\n\nRefuses to write plaintext to a terminal unless --to-terminal is given."
    )]
    Open(OpenArgs),
    /// Scrub secrets from stdin to stdout (text by default, or JSON).
    #[command(
        after_help = "Examples:\n  tokenward scrub < app.log > app.scrubbed.log\n  tokenward scrub --json < events.ndjson > events.scrubbed.ndjson\n  tokenward scrub --json --whole < response.json\n\nText is scrubbed line by line with bounded memory: a line longer than 1 MiB is cut at a\nsafe point (never inside a match) and its parts overlap by 64 KiB.\nWith --json every line is one JSON document (NDJSON; blank lines pass through); with\n--whole all of stdin is one document (at most --max-document-bytes). Malformed JSON is an\nerror (exit 5) and nothing of that document is written."
    )]
    Scrub(ScrubArgs),
    /// Verify a Plaid webhook: the Plaid-Verification header value and the raw body.
    #[command(
        after_help = "Examples:\n  tokenward verify-webhook --header-file header.txt --body body.json\n  tokenward verify-webhook --header \"$JWT\" --body body.json --plaid-url http://127.0.0.1:8080\n\nPrints the verified webhook type and code. Exit 6: rejected (signature, age, body hash,\nunknown or expired key); exit 3: configuration; exit 7: network or Plaid error."
    )]
    VerifyWebhook(VerifyWebhookArgs),
    /// Rotate Items' access tokens at Plaid (one Item, or a plan over many).
    #[command(
        after_help = "Examples:\n  tokenward rotate --item ITEM_ID --actor alice --reason manual\n  tokenward rotate --kek-version 1 --actor alice --dry-run\n  tokenward rotate --all --actor scheduler --reason scheduled --rate 2"
    )]
    Rotate(RotateArgs),
    /// Close an orphaned, dead or quarantined Item (it becomes retired), with who and why.
    #[command(
        after_help = "Examples:\n  tokenward resolve --item ITEM_ID --actor alice --note \"INC-1042: user relinked, old Item removed at Plaid\"\n  tokenward resolve --item ITEM_ID --actor alice --note \"ticket OPS-7\" --format json\n\nFor an Item no rotation can bring back: orphaned (Plaid rotated the token, the answer was\nlost), dead, or quarantined. Act at Plaid first (relink the user, remove the Item), then\nresolve: the Item becomes retired, out of traffic for good, and the audit journal records\nthe actor and `operator_resolved: NOTE`. Plaid is not called; only the keyring and the\nvault are needed. An Item already retired is left as it is (exit 0). Exit 4: the Item is in\nanother state (active, unknown, …); exit 5: no such Item; exit 9: another worker holds the\nItem (rerun); exit 2: an empty or unusable --actor or --note (a token-shaped note is\nrefused: the journal never stores one)."
    )]
    Resolve(ResolveArgs),
    /// Rewrap every envelope in the vault under the keyring's primary KEK.
    #[command(
        after_help = "Examples:\n  tokenward keys add && tokenward keys promote 2\n  tokenward rewrap --dry-run\n  tokenward rewrap --batch-size 1000\n\nThe job is saved in the vault after every batch: a rerun after a crash (or after\n--max-batches) resumes it. Verified at the end: nothing left under older versions and a\nsample opens."
    )]
    Rewrap(RewrapArgs),
    /// An evidence report for a compliance review.
    #[command(
        after_help = "Examples:\n  tokenward audit\n  tokenward audit --format json > evidence.json\n  tokenward audit --format markdown > evidence.md\n\nReports KEK versions and the envelopes each protects, Items by credential and health\nstate, the last rotation per Item, orphaned Items and a redaction self-test."
    )]
    Audit(AuditArgs),
    /// Run the Plaid emulator on a local address.
    #[command(
        after_help = "Examples:\n  tokenward sandbox --listen 127.0.0.1:8080\n  PLAID_CLIENT_ID=id PLAID_SECRET=s tokenward sandbox --fixed-credentials\n\nPrints `listening on http://ADDR` once it accepts connections; stops on Ctrl-C or SIGTERM."
    )]
    Sandbox(SandboxArgs),
}

#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    #[command(subcommand)]
    pub(crate) command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a keyring file with one new primary key (version 1), mode 0600.
    #[command(
        after_help = "Example:\n  tokenward keys generate --keyring-file /etc/tokenward/keyring.json"
    )]
    Generate {
        /// Replace an existing file (its keys are lost: envelopes under them never open again).
        #[arg(long)]
        force: bool,
    },
    /// List the key versions and their states (never key material).
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Add a new staged key version (opens, does not seal until promoted).
    Add,
    /// Make a version the primary (the old primary becomes decrypt-only).
    Promote {
        /// The version to promote.
        version: u32,
    },
    /// Disable a version (neither opens nor seals). Refused while any envelope in the vault is
    /// still under it; without a vault configured, --no-vault-check is required.
    Disable {
        /// The version to disable.
        version: u32,
        /// Disable without checking the vault.
        #[arg(long)]
        no_vault_check: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ListFormat {
    /// A table.
    Text,
    /// JSON.
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct SealArgs {
    /// A context entry, `key=value` (repeatable; at least one), bound to the envelope.
    #[arg(long = "context", value_name = "KEY=VALUE", required = true)]
    pub(crate) context: Vec<String>,
    /// Seal stdin exactly; by default one trailing newline is dropped (`echo` adds one).
    #[arg(long)]
    pub(crate) keep_newline: bool,
}

#[derive(Debug, Args)]
pub(crate) struct OpenArgs {
    /// A context entry, `key=value` (repeatable), exactly as sealed.
    #[arg(long = "context", value_name = "KEY=VALUE", required = true)]
    pub(crate) context: Vec<String>,
    /// Allow writing the plaintext to a terminal.
    #[arg(long)]
    pub(crate) to_terminal: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ScrubArgs {
    /// Input is JSON: one document per line (NDJSON), or all of stdin with --whole.
    #[arg(long)]
    pub(crate) json: bool,
    /// With --json: all of stdin is one document.
    #[arg(long, requires = "json")]
    pub(crate) whole: bool,
    /// With --json: the largest document accepted, in bytes.
    #[arg(long, default_value_t = 16 * 1024 * 1024, value_name = "BYTES")]
    pub(crate) max_document_bytes: usize,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyWebhookArgs {
    /// The Plaid-Verification header value.
    #[arg(
        long,
        conflicts_with = "header_file",
        required_unless_present = "header_file"
    )]
    pub(crate) header: Option<String>,
    /// A file holding the Plaid-Verification header value.
    #[arg(long, value_name = "PATH")]
    pub(crate) header_file: Option<PathBuf>,
    /// The raw body file, byte for byte as received.
    #[arg(long, value_name = "PATH")]
    pub(crate) body: PathBuf,
    /// Largest accepted age of the webhook, in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub(crate) max_age: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub(crate) format: ListFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReasonArg {
    /// The periodic rotation policy.
    Scheduled,
    /// An operator asked for it.
    Manual,
    /// The token may have leaked (incident lane, first).
    Compromise,
    /// The KEK protecting the token may have leaked (incident lane, first).
    KekCompromise,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("selection").required(true).args(["item", "kek_version", "state", "all"]))]
pub(crate) struct RotateArgs {
    /// Rotate this Item (repeatable).
    #[arg(long, value_name = "ITEM_ID")]
    pub(crate) item: Vec<String>,
    /// Rotate every Item whose envelope is under this KEK version.
    #[arg(long, value_name = "VERSION")]
    pub(crate) kek_version: Option<u32>,
    /// Rotate every Item in this credential or health state (e.g. active, expiring_soon).
    #[arg(long, value_name = "STATE")]
    pub(crate) state: Option<String>,
    /// Rotate every Item in the vault.
    #[arg(long)]
    pub(crate) all: bool,
    /// Why (recorded in the audit journal).
    #[arg(long, value_enum, default_value_t = ReasonArg::Manual)]
    pub(crate) reason: ReasonArg,
    /// Who (recorded in the audit journal).
    #[arg(long, value_name = "NAME")]
    pub(crate) actor: String,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Rotations per second (one Plaid client's budget).
    #[arg(long, default_value_t = 5.0, value_name = "PER_SECOND")]
    pub(crate) rate: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub(crate) format: ListFormat,
}

#[derive(Debug, Args)]
pub(crate) struct ResolveArgs {
    /// The Item to close.
    #[arg(long, value_name = "ITEM_ID")]
    pub(crate) item: String,
    /// Who (recorded in the audit journal).
    #[arg(long, value_name = "NAME")]
    pub(crate) actor: String,
    /// Why: a ticket, what was done at Plaid (recorded in the audit journal; never a token).
    #[arg(long, value_name = "TEXT")]
    pub(crate) note: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub(crate) format: ListFormat,
}

#[derive(Debug, Args)]
pub(crate) struct RewrapArgs {
    /// Print what would be rewrapped and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Envelopes per batch.
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub(crate) batch_size: u32,
    /// Stop after this many batches (the job stays saved; a rerun resumes it).
    #[arg(long, value_name = "N")]
    pub(crate) max_batches: Option<u64>,
    /// The job's id in the vault.
    #[arg(long, default_value = "kek-rewrap", value_name = "ID")]
    pub(crate) job_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormat {
    /// Plain text.
    Text,
    /// JSON.
    Json,
    /// Markdown.
    Markdown,
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub(crate) format: ReportFormat,
}

#[derive(Debug, Args)]
pub(crate) struct SandboxArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub(crate) listen: std::net::SocketAddr,
    /// Accept only this client id (default: $PLAID_CLIENT_ID with --fixed-credentials).
    #[arg(long, value_name = "ID")]
    pub(crate) client_id: Option<String>,
    /// Read the secret that goes with the client id from this variable.
    #[arg(long, default_value = "PLAID_SECRET", value_name = "VAR")]
    pub(crate) secret_env: String,
    /// Accept only PLAID_CLIENT_ID / the secret; without it any non-empty pair is accepted.
    #[arg(long)]
    pub(crate) fixed_credentials: bool,
    /// Seed for ids, accounts and transactions.
    #[arg(long)]
    pub(crate) seed: Option<u64>,
}
