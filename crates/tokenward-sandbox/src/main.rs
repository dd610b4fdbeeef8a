//! `tokenward-sandbox`: run the Plaid emulator on a local address.
//!
//! ```text
//! tokenward-sandbox --listen 127.0.0.1:8080 [--client-id ID (--secret SECRET | --secret-env VAR)]
//! ```
//!
//! Prints `listening on http://ADDR` on stdout once it accepts connections, and nothing else;
//! stops on Ctrl-C or SIGTERM. Errors go to stderr and never contain the secret.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use tokenward_redact::{ClientId, ClientSecret};
use tokenward_sandbox::{Limits, Sandbox};

/// A stateful, Plaid-compatible emulator (tokenward).
#[derive(Parser)]
#[command(name = "tokenward-sandbox", version, about)]
struct Args {
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,

    /// Accept only this client id (requires --secret or --secret-env); without it any
    /// non-empty client id and secret are accepted.
    #[arg(long, requires = "secret_source")]
    client_id: Option<String>,

    /// The secret that goes with --client-id. Visible in the process list: prefer
    /// --secret-env.
    #[arg(long, group = "secret_source", requires = "client_id")]
    secret: Option<String>,

    /// Read the secret that goes with --client-id from this environment variable.
    #[arg(
        long,
        group = "secret_source",
        requires = "client_id",
        value_name = "VAR"
    )]
    secret_env: Option<String>,

    /// Seed for item ids, accounts and transactions (deterministic data).
    #[arg(long)]
    seed: Option<u64>,

    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    max_body_bytes: usize,

    /// Most Items held at once.
    #[arg(long, default_value_t = 1_000)]
    max_items: usize,
}

#[allow(
    clippy::print_stderr,
    reason = "a command-line tool reports its errors on stderr"
)]
fn fail(message: &str) -> ExitCode {
    eprintln!("tokenward-sandbox: {message}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let args = Args::parse();
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    else {
        return fail("could not start the async runtime");
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let mut builder = Sandbox::builder().listen(args.listen);
    let mut limits = Limits::default();
    limits.max_body_bytes = args.max_body_bytes;
    limits.max_items = args.max_items;
    builder = builder.limits(limits);
    if let Some(seed) = args.seed {
        builder = builder.seed(seed);
    }
    if let Some(client_id) = args.client_id {
        let secret = match (args.secret, args.secret_env) {
            (Some(secret), _) => secret,
            (None, Some(var)) => match std::env::var(&var) {
                Ok(secret) => secret,
                Err(_) => return fail("the variable named by --secret-env is not set"),
            },
            (None, None) => return fail("--client-id needs --secret or --secret-env"),
        };
        let Ok(client_id) = ClientId::new(client_id) else {
            return fail("--client-id must be 1 to 128 printable ASCII characters");
        };
        let Ok(secret) = ClientSecret::new(secret) else {
            return fail("the secret must be 1 to 128 printable ASCII characters");
        };
        builder = builder.credentials(&client_id, &secret);
    }
    let sandbox = match builder.start().await {
        Ok(sandbox) => sandbox,
        Err(error) => return fail(&error.to_string()),
    };
    announce(&sandbox.base_url());
    wait_for_signal().await;
    sandbox.shutdown().await;
    ExitCode::SUCCESS
}

#[allow(
    clippy::print_stdout,
    reason = "the one line the binary prints: where it listens"
)]
fn announce(base_url: &str) {
    use std::io::Write as _;
    println!("listening on {base_url}");
    let _ = std::io::stdout().flush();
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
