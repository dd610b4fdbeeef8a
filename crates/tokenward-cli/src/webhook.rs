//! `tokenward verify-webhook`: one delivery, checked as a receiving server would.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokenward_plaid::webhooks::{PlaidKeySource, VerifierConfig, VerifyError, WebhookVerifier};

use crate::cli::{ListFormat, VerifyWebhookArgs};
use crate::config::Global;
use crate::failure::{Code, Failure};
use crate::keys::write_stdout;

/// The largest body read (Plaid's webhooks are a few KiB).
const MAX_BODY: u64 = 1024 * 1024;
/// The largest header value read.
const MAX_HEADER: u64 = 16 * 1024;

pub(crate) async fn run(global: &Global, args: VerifyWebhookArgs) -> Result<(), Failure> {
    let header = match (&args.header, &args.header_file) {
        (Some(header), _) => header.clone(),
        (None, Some(path)) => {
            let bytes = read_limited(path, MAX_HEADER, "header file")?;
            String::from_utf8(bytes)
                .map_err(|_| Failure::new(Code::Input, "the header file is not UTF-8 text"))?
        }
        (None, None) => {
            return Err(Failure::new(Code::Usage, "pass --header or --header-file"));
        }
    };
    let body = read_limited(&args.body, MAX_BODY, "body file")?;
    let client = global.plaid_client()?;
    let config = VerifierConfig::default().with_max_age(Duration::from_secs(args.max_age));
    let checker = WebhookVerifier::with_config(PlaidKeySource::new(Arc::new(client)), config);
    let verified = checker
        .verify_now(Some(header.trim()), &body)
        .await
        .map_err(|e| verify_failure(&e))?;
    let event = &verified.event;
    let item = event.item().map(|item| item.item_id.clone());
    let text = match args.format {
        ListFormat::Text => {
            let mut text = format!(
                "verified: {} {}\n",
                event.webhook_type(),
                event.webhook_code()
            );
            if let Some(item) = &item {
                let _ = writeln!(text, "item_id: {item}");
            }
            let _ = write!(
                text,
                "key_id: {}\nissued_at: {}\nbody_sha256: {}\n",
                verified.key_id,
                verified.issued_at,
                verified.body_sha256_hex()
            );
            text
        }
        ListFormat::Json => format!(
            "{}\n",
            json!({
                "verified": true,
                "webhook_type": event.webhook_type(),
                "webhook_code": event.webhook_code(),
                "item_id": item,
                "key_id": verified.key_id,
                "issued_at": verified.issued_at,
                "body_sha256": verified.body_sha256_hex(),
            })
        ),
    };
    // Ids and codes only, but scrubbed anyway: the body is untrusted text.
    write_stdout(
        tokenward_redact::Policy::plaid()
            .scrub_text(&text)
            .as_bytes(),
    )
}

/// Rejections (exit 6) apart from configuration (3), network (7) and body (5) failures.
fn verify_failure(error: &VerifyError) -> Failure {
    match error {
        VerifyError::KeyUnavailable { .. } | VerifyError::KeyLookupThrottled => {
            Failure::caused(Code::Network, "webhook verification key", error)
        }
        VerifyError::MalformedBody(_) => Failure::caused(Code::Input, "webhook", error),
        _ => Failure::caused(Code::Rejected, "webhook rejected", error),
    }
}

fn read_limited(path: &std::path::Path, limit: u64, what: &str) -> Result<Vec<u8>, Failure> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::caused(Code::Input, &format!("could not open the {what}"), &e))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::caused(Code::Input, &format!("could not read the {what}"), &e))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(Failure::new(
            Code::Input,
            format!("the {what} is larger than {limit} bytes"),
        ));
    }
    Ok(bytes)
}
