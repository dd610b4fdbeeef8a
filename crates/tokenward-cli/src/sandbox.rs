//! `tokenward sandbox`: the Plaid emulator on a local address.

use tokenward_redact::{ClientId, ClientSecret};
use tokenward_sandbox::Sandbox;

use crate::cli::SandboxArgs;
use crate::failure::{Code, Failure};
use crate::keys::write_stdout;

pub(crate) async fn run(args: SandboxArgs) -> Result<(), Failure> {
    let mut builder = Sandbox::builder().listen(args.listen);
    if let Some(seed) = args.seed {
        builder = builder.seed(seed);
    }
    if args.fixed_credentials || args.client_id.is_some() {
        let client_id = match args.client_id {
            Some(id) => id,
            None => std::env::var("PLAID_CLIENT_ID").map_err(|_| {
                Failure::new(
                    Code::Config,
                    "fixed credentials need --client-id or PLAID_CLIENT_ID",
                )
            })?,
        };
        let secret = std::env::var(&args.secret_env).map_err(|_| {
            Failure::new(
                Code::Config,
                "fixed credentials need the secret in the variable named by --secret-env (default PLAID_SECRET)",
            )
        })?;
        let client_id = ClientId::new(client_id).map_err(|_| {
            Failure::new(
                Code::Config,
                "the client id must be 1 to 128 printable ASCII characters",
            )
        })?;
        let secret = ClientSecret::new(secret).map_err(|_| {
            Failure::new(
                Code::Config,
                "the secret must be 1 to 128 printable ASCII characters",
            )
        })?;
        builder = builder.credentials(&client_id, &secret);
    }
    let sandbox = builder
        .start()
        .await
        .map_err(|e| Failure::caused(Code::Config, "sandbox", &e))?;
    write_stdout(format!("listening on {}\n", sandbox.base_url()).as_bytes())?;
    wait_for_signal().await;
    sandbox.shutdown().await;
    Ok(())
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
