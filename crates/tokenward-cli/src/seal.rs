//! `tokenward seal` and `tokenward open`: stdin to stdout.

use std::io::{IsTerminal as _, Read as _};

use secrecy::ExposeSecret as _;
use tokenward_envelope::{Context, Envelope, EnvelopeError, MAX_ENVELOPE_LEN, MAX_PLAINTEXT_LEN};
use zeroize::Zeroizing;

use crate::cli::{OpenArgs, SealArgs};
use crate::config::Global;
use crate::failure::{Code, Failure};
use crate::keys::write_stdout;

pub(crate) fn seal(global: &Global, args: &SealArgs) -> Result<(), Failure> {
    let context = parse_context(&args.context)?;
    let cipher = global.cipher()?;
    let mut plaintext = read_stdin(MAX_PLAINTEXT_LEN + 2, "plaintext")?;
    if !args.keep_newline {
        strip_one_newline(&mut plaintext);
    }
    if plaintext.is_empty() {
        return Err(Failure::new(Code::Input, "nothing to seal: stdin is empty"));
    }
    let envelope = cipher
        .seal(&plaintext, &context)
        .map_err(|e| envelope_failure(&e))?;
    write_stdout(format!("{}\n", envelope.to_text()).as_bytes())
}

pub(crate) fn open(global: &Global, args: &OpenArgs) -> Result<(), Failure> {
    let to_terminal = std::io::stdout().is_terminal();
    refuse_terminal(to_terminal, args.to_terminal)?;
    let context = parse_context(&args.context)?;
    let cipher = global.cipher()?;
    // The text form is base64: 4/3 of the binary size, plus the prefix and a newline.
    let input = read_stdin(MAX_ENVELOPE_LEN / 3 * 4 + 64, "envelope")?;
    let text = std::str::from_utf8(&input)
        .map_err(|_| Failure::new(Code::Input, "malformed envelope: not UTF-8 text"))?;
    let envelope = Envelope::from_text(text.trim())
        .map_err(|e| Failure::caused(Code::Input, "malformed envelope", &e))?;
    let plaintext = cipher
        .open(&envelope, &context)
        .map_err(|e| envelope_failure(&e))?;
    write_stdout(plaintext.expose_secret())
}

/// Plaintext is not written to a terminal (screens are recorded, shared and scrolled back)
/// unless the operator says so.
pub(crate) fn refuse_terminal(stdout_is_terminal: bool, allowed: bool) -> Result<(), Failure> {
    if stdout_is_terminal && !allowed {
        return Err(Failure::new(
            Code::Refused,
            "refusing to write plaintext to a terminal; redirect stdout, or pass --to-terminal",
        ));
    }
    Ok(())
}

/// Parses repeated `key=value` flags into a context (split at the first `=`).
pub(crate) fn parse_context(entries: &[String]) -> Result<Context, Failure> {
    let mut context = Context::new();
    for entry in entries {
        let Some((key, value)) = entry.split_once('=') else {
            return Err(Failure::new(
                Code::Usage,
                "--context takes key=value (e.g. --context item_id=it-1)",
            ));
        };
        context
            .insert(key, value)
            .map_err(|e| Failure::caused(Code::Input, "invalid context", &e))?;
    }
    Ok(context)
}

fn envelope_failure(error: &EnvelopeError) -> Failure {
    match error {
        EnvelopeError::Authentication => Failure::caused(Code::Rejected, "open", error),
        EnvelopeError::Malformed(_) | EnvelopeError::Context(_) | EnvelopeError::NotUtf8 => {
            Failure::caused(Code::Input, "envelope", error)
        }
        EnvelopeError::PlaintextTooLarge { .. } => Failure::caused(Code::Input, "seal", error),
        EnvelopeError::Randomness => Failure::caused(Code::Failure, "envelope", error),
        _ => Failure::caused(Code::Config, "keyring", error),
    }
}

/// Reads all of stdin, at most `limit` bytes (more is malformed input), into a buffer that is
/// zeroized when dropped.
fn read_stdin(limit: usize, what: &str) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut buffer = Zeroizing::new(Vec::new());
    let limit_plus_one = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    std::io::stdin()
        .lock()
        .take(limit_plus_one)
        .read_to_end(&mut buffer)
        .map_err(|e| Failure::io("could not read stdin", &e))?;
    if buffer.len() > limit {
        return Err(Failure::new(
            Code::Input,
            format!("the {what} on stdin is larger than {limit} bytes"),
        ));
    }
    Ok(buffer)
}

fn strip_one_newline(bytes: &mut Vec<u8>) {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_is_refused_on_a_terminal_unless_allowed() {
        let refused = refuse_terminal(true, false).err().map(|f| f.code());
        assert_eq!(refused, Some(Code::Refused));
        assert!(refuse_terminal(true, true).is_ok());
        assert!(refuse_terminal(false, false).is_ok());
    }

    #[test]
    fn contexts_split_at_the_first_equals_sign() {
        let context = parse_context(&["a=b=c".to_owned(), "item_id=1".to_owned()]);
        let context = context.ok();
        assert_eq!(context.as_ref().and_then(|c| c.get("a")), Some("b=c"));
        let bad = parse_context(&["novalue".to_owned()])
            .err()
            .map(|f| f.code());
        assert_eq!(bad, Some(Code::Usage));
    }

    #[test]
    fn one_trailing_newline_is_dropped() {
        let mut bytes = b"tok\r\n".to_vec();
        strip_one_newline(&mut bytes);
        assert_eq!(bytes, b"tok");
        let mut bytes = b"tok\n\n".to_vec();
        strip_one_newline(&mut bytes);
        assert_eq!(bytes, b"tok\n");
    }
}
