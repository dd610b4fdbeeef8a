//! `tokenward`: the operator command line of tokenward.
//!
//! Keyring files, sealing and opening envelopes, scrubbing logs, verifying Plaid webhooks,
//! rotating access tokens, closing Items an operator has resolved, rewrapping the vault under a new KEK, audit reports for compliance
//! reviews, and the Plaid emulator. The README lists the commands, the variables and the exit
//! codes.
//!
//! Every failure is one scrubbed line on stderr (`error: …`) and a documented exit code; no
//! secret is ever printed.

#![forbid(unsafe_code)]

mod audit;
mod cli;
mod config;
mod failure;
mod keys;
mod resolve;
mod rewrap;
mod rotate;
mod sandbox;
mod scrub;
mod seal;
mod webhook;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};
use crate::failure::{Code, Failure, print_error};

fn main() -> ExitCode {
    // A bug must not print a secret or a backtrace: one scrubbed line instead.
    std::panic::set_hook(Box::new(|info| {
        let message =
            tokenward_redact::report::scrub_panic(info, &tokenward_redact::Policy::plaid());
        let first = message.lines().nth(1).unwrap_or("panic");
        print_error(&format!("internal error: {}", failure::one_line(first)));
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    match std::panic::catch_unwind(move || run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(failure)) => failure.report(),
        Err(_) => ExitCode::from(Code::Failure as u8),
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let global = cli.global;
    match cli.command {
        // No runtime needed.
        Command::Keys(args) => keys::run(&global, &args),
        Command::Seal(args) => seal::seal(&global, &args),
        Command::Open(args) => seal::open(&global, &args),
        Command::Scrub(args) => scrub::run(&args),
        command => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Failure::io("could not start the async runtime", &e))?;
            runtime.block_on(async move {
                match command {
                    Command::VerifyWebhook(args) => webhook::run(&global, args).await,
                    Command::Rotate(args) => rotate::run(&global, args).await,
                    Command::Resolve(args) => resolve::run(&global, args).await,
                    Command::Rewrap(args) => rewrap::run(&global, args).await,
                    Command::Audit(args) => audit::run(&global, args).await,
                    Command::Sandbox(args) => sandbox::run(args).await,
                    Command::Keys(_) | Command::Seal(_) | Command::Open(_) | Command::Scrub(_) => {
                        Ok(())
                    }
                }
            })
        }
    }
}

/// `--help` and `--version` print as clap renders them; a usage error is one scrubbed line.
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            Failure::new(Code::Usage, "a command is required (see --help)").report()
        }
        _ => {
            let rendered = error.render().to_string();
            // The message and its details, without the usage block and the tips.
            let message = rendered.split("\n\nUsage:").next().unwrap_or_default();
            let message: Vec<&str> = message
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with("tip:"))
                .collect();
            let message = message.join(" ");
            let message = message.trim_start_matches("error: ");
            Failure::new(Code::Usage, format!("{message} (see --help)")).report()
        }
    }
}
