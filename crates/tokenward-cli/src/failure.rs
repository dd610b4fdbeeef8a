//! Failures: one line on stderr, scrubbed, and a documented exit code.

use std::error::Error;
use std::fmt;
use std::io::Write as _;
use std::process::ExitCode;

use tokenward_redact::Policy;

/// The exit codes of every command (listed in `--help` and the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    /// Reading or writing a stream or file failed, or an unexpected internal error.
    Failure = 1,
    /// Bad flags or arguments.
    Usage = 2,
    /// Missing or invalid configuration: variables, keyring file (including its permissions),
    /// vault URL, Plaid credentials.
    Config = 3,
    /// A safety rule refused the operation (plaintext to a terminal, disabling a key still in
    /// use, overwriting a keyring).
    Refused = 4,
    /// The input is malformed: an envelope, JSON for `scrub --json`, a context, a body file.
    Input = 5,
    /// Verification failed: an envelope did not open (wrong key, wrong context, tampered), or
    /// a webhook was rejected (bad signature, stale, body mismatch, unknown key).
    Rejected = 6,
    /// Plaid or the network failed (including fetching a webhook verification key).
    Network = 7,
    /// The vault could not be opened, read or written.
    Vault = 8,
    /// The job did not finish: some Items were not rotated, or the rewrap job paused or
    /// stopped early (rerun to resume).
    Incomplete = 9,
}

/// Why a command failed. The message is scrubbed when the failure is made, so neither its
/// `Display` nor its `Debug` can show a secret.
#[derive(Debug)]
pub(crate) struct Failure {
    code: Code,
    message: String,
}

impl Failure {
    /// A failure with its own message, scrubbed.
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        let message = message.into();
        let message = match Policy::plaid().scrub_text(&message) {
            std::borrow::Cow::Borrowed(_) => message,
            std::borrow::Cow::Owned(scrubbed) => scrubbed,
        };
        Failure { code, message }
    }

    /// A failure whose message is `context: ` and the error's chain of causes, scrubbed.
    pub(crate) fn caused(code: Code, context: &str, error: &(dyn Error + 'static)) -> Self {
        Failure::new(code, format!("{context}: {}", chain_text(error)))
    }

    /// A failure to read or write a stream or file.
    pub(crate) fn io(context: &str, error: &std::io::Error) -> Self {
        Failure::caused(Code::Failure, context, error)
    }

    /// The exit code.
    pub(crate) fn code(&self) -> Code {
        self.code
    }

    /// The message as printed: scrubbed, on one line.
    pub(crate) fn line(&self) -> String {
        one_line(&self.message)
    }

    /// Prints `error: …` on stderr and returns the exit code.
    pub(crate) fn report(&self) -> ExitCode {
        print_error(&self.line());
        ExitCode::from(self.code() as u8)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line())
    }
}

/// The error and its causes on one line, scrubbed. A cause whose text the line already holds
/// (many errors print their source in their own message) is not repeated.
pub(crate) fn chain(error: &(dyn Error + 'static)) -> String {
    Policy::plaid().scrub_text(&chain_text(error)).into_owned()
}

/// [`chain`] before scrubbing.
fn chain_text(error: &(dyn Error + 'static)) -> String {
    const MAX_CAUSES: usize = 16;
    let mut line = error.to_string();
    let mut cause = error.source();
    let mut depth = 0;
    while let Some(next) = cause {
        if depth == MAX_CAUSES {
            line.push_str(": …");
            break;
        }
        let text = next.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = next.source();
        depth += 1;
    }
    line
}

/// Writes `error: <line>` to stderr (errors writing it are ignored: there is nowhere left to
/// report them).
pub(crate) fn print_error(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {line}");
}

/// Control characters (newlines included) become spaces, so a message is one line and cannot
/// move the terminal's cursor.
pub(crate) fn one_line(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    out.truncate(out.trim_end().len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "outer: {}", self.0)
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn causes_are_not_repeated_and_are_scrubbed() {
        let token = "access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6";
        let inner = std::io::Error::other(format!("refused {token}"));
        assert_eq!(
            chain(&Outer(inner)),
            "outer: refused [REDACTED:plaid.access_token]"
        );
        let plain = std::io::Error::other("alone");
        assert_eq!(chain(&plain), "alone");
    }

    #[test]
    fn messages_are_one_scrubbed_line() {
        let token = "access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6";
        let failure = Failure::new(Code::Input, format!("bad\n{token}\x1b[2J\n"));
        assert_eq!(failure.line(), "bad [REDACTED:plaid.access_token] [2J");
        assert_eq!(failure.code(), Code::Input);
    }

    #[test]
    fn debug_never_shows_the_unscrubbed_message() {
        let token = "access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6";
        let failure = Failure::new(Code::Usage, format!("unexpected argument '{token}'"));
        let debug = format!("{failure:?}");
        assert!(!debug.contains(token), "{debug}");
        assert!(debug.contains("[REDACTED:plaid.access_token]"), "{debug}");
        let caused = Failure::caused(
            Code::Input,
            "context",
            &std::io::Error::other(format!("refused {token}")),
        );
        assert!(!format!("{caused:?}").contains(token));
    }
}
