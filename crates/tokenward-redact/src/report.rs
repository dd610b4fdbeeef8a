//! Helpers for error reporters and panic hooks: scrub what they print.
//!
//! - [`install_panic_hook`] replaces the process panic hook with one that prints the panic
//!   report (thread, location, message, backtrace) scrubbed.
//! - [`scrub_error_chain`] renders an error and all its causes, scrubbed, on one line.
//! - [`ScrubbedError`] is an error that holds only scrubbed text, level by level, for handing
//!   an error to a reporter (Sentry, an HTTP response, a job queue) that would otherwise print
//!   the original.
//!
//! ```
//! use tokenward_redact::Policy;
//! use tokenward_redact::report::{ScrubbedError, scrub_error_chain};
//!
//! let policy = Policy::plaid();
//! let err = std::io::Error::other("bad token access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6");
//! assert_eq!(scrub_error_chain(&err, &policy), "bad token [REDACTED:plaid.access_token]");
//! let safe = ScrubbedError::new(&err, &policy);
//! assert_eq!(safe.to_string(), "bad token [REDACTED:plaid.access_token]");
//! ```

use std::backtrace::{Backtrace, BacktraceStatus};
use std::error::Error;
use std::fmt::{self, Write as _};
use std::io::{self, Write};
use std::panic::PanicHookInfo;
use std::sync::{Mutex, PoisonError};

use crate::Policy;

/// How many levels of `source()` are followed; deeper causes are replaced by `…`.
const MAX_CHAIN: usize = 64;

/// Replaces the process panic hook with one that prints a scrubbed panic report to stderr.
///
/// The report has the shape of the standard one:
///
/// ```text
/// thread 'main' panicked at src/main.rs:10:5:
/// exchange failed for [REDACTED:plaid.access_token]
/// note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
/// ```
///
/// and everything in it (thread name, location, message, backtrace) goes through
/// [`Policy::scrub_text`]. The payload is shown when it is a `&str` or a `String` (what `panic!`
/// produces); any other payload is shown as `Box<dyn Any>`, as the standard hook does.
///
/// # What is lost
///
/// - **The previous hook is dropped, not called.** It cannot be given a scrubbed copy of the
///   panic (`PanicHookInfo` cannot be built outside `std`), and the standard hook prints the
///   raw message, so calling it would leak. Re-create the side effects of a hook you need in
///   a hook of your own built on [`scrub_panic`]. A hook installed *later* replaces this one
///   and sees the raw message (a Sentry panic integration, for example, needs its own
///   scrubbing).
/// - **Backtraces** come from [`Backtrace::capture`], so `RUST_BACKTRACE` / `RUST_LIB_BACKTRACE`
///   still decide whether one is printed. The "short" style is imitated by cutting the
///   rendered frames at the runtime's marker frames (and shown in full if they are missing);
///   std's other details (such as printing the backtrace note only on the first panic) are
///   not reproduced.
/// - Write errors on stderr are ignored (a panic hook has nowhere to report them), and the
///   hook never panics itself.
///
/// # Panics
///
/// If called from a thread that is panicking (as [`std::panic::take_hook`] does).
pub fn install_panic_hook(policy: Policy) {
    install(policy, Output::Stderr);
}

/// As [`install_panic_hook`], writing the report to `out` instead of stderr. For tests.
#[doc(hidden)]
pub fn install_panic_hook_to(policy: Policy, out: Box<dyn Write + Send>) {
    install(policy, Output::Writer(Mutex::new(out)));
}

/// The scrubbed message and location of a panic, as [`install_panic_hook`] prints them
/// (`panicked at <location>:\n<message>`, without thread name or backtrace): for a panic hook
/// of your own that sends panics to a reporter.
#[must_use]
pub fn scrub_panic(info: &PanicHookInfo<'_>, policy: &Policy) -> String {
    let mut report = String::new();
    write_panic(&mut report, info);
    scrub_into_string(policy, report)
}

/// Renders `err` and its `source()` chain as `error: cause: cause…`, scrubbed with `policy`.
///
/// The whole line is scrubbed at once, so a secret is found even when its key and its value
/// sit in neighbouring levels. At most 64 levels are followed; deeper ones show as `…`.
#[must_use]
pub fn scrub_error_chain(err: &(dyn Error + 'static), policy: &Policy) -> String {
    let mut line = String::new();
    let mut level = Some(err);
    let mut depth = 0;
    while let Some(e) = level {
        if depth > 0 {
            line.push_str(": ");
        }
        if depth == MAX_CHAIN {
            line.push('…');
            break;
        }
        // Writing to a String cannot fail.
        let _ = write!(line, "{e}");
        level = e.source();
        depth += 1;
    }
    scrub_into_string(policy, line)
}

/// An error that holds only scrubbed text: the `Display` of each level of an error's
/// `source()` chain, each scrubbed with a policy.
///
/// `Display` shows the top level; the alternate form (`{:#}`) shows the whole chain as
/// `error: cause: cause…`. `source()` returns the next scrubbed level, so reporters that walk
/// the chain (Sentry's `capture_error`, `anyhow`) see every level, scrubbed. `Debug` shows the
/// same scrubbed text (a message and a `Caused by:` list) and never the original's `Debug`,
/// which often prints fields by name (`password: "…"`) that value rules cannot recognise.
///
/// The original error's type is not kept: reporters that name errors by type see
/// `ScrubbedError`.
#[derive(Clone, PartialEq, Eq)]
pub struct ScrubbedError {
    message: Box<str>,
    source: Option<Box<ScrubbedError>>,
}

impl ScrubbedError {
    /// Copies `err`'s chain (at most 64 levels), scrubbing each level's `Display` with `policy`.
    #[must_use]
    pub fn new(err: &(dyn Error + 'static), policy: &Policy) -> ScrubbedError {
        let mut levels = Vec::new();
        let mut level = Some(err);
        while let Some(e) = level {
            if levels.len() == MAX_CHAIN {
                levels.push("…".to_owned());
                break;
            }
            levels.push(scrub_into_string(policy, e.to_string()));
            level = e.source();
        }
        // Built from the deepest cause up; `levels` holds at least `err` itself.
        let mut levels = levels.into_iter().rev();
        let mut chain = ScrubbedError {
            message: levels.next().unwrap_or_default().into_boxed_str(),
            source: None,
        };
        for message in levels {
            chain = ScrubbedError {
                message: message.into_boxed_str(),
                source: Some(Box::new(chain)),
            };
        }
        chain
    }

    /// The scrubbed message of this level.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    fn chain(&self) -> impl Iterator<Item = &ScrubbedError> {
        std::iter::successors(Some(self), |e| e.source.as_deref())
    }
}

impl fmt::Display for ScrubbedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            for (i, level) in self.chain().enumerate() {
                if i > 0 {
                    f.write_str(": ")?;
                }
                f.write_str(&level.message)?;
            }
            Ok(())
        } else {
            f.write_str(&self.message)
        }
    }
}

impl fmt::Debug for ScrubbedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if self.source.is_some() {
            f.write_str("\n\nCaused by:")?;
            for (i, cause) in self.chain().skip(1).enumerate() {
                write!(f, "\n    {i}: {}", cause.message)?;
            }
        }
        Ok(())
    }
}

impl Error for ScrubbedError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

/// Where the panic hook writes.
enum Output {
    Stderr,
    Writer(Mutex<Box<dyn Write + Send>>),
}

fn install(policy: Policy, out: Output) {
    // The previous hook (by default std's, which prints the raw message) is dropped: see
    // `install_panic_hook`.
    drop(std::panic::take_hook());
    std::panic::set_hook(Box::new(move |info| {
        let report = render_report(info, &policy);
        // Nothing can be done about a failed write inside a panic hook.
        let _ = match &out {
            Output::Stderr => io::stderr().lock().write_all(report.as_bytes()),
            Output::Writer(w) => {
                let mut w = w.lock().unwrap_or_else(PoisonError::into_inner);
                w.write_all(report.as_bytes()).and_then(|()| w.flush())
            }
        };
    }));
}

/// The whole report the hook prints, scrubbed.
fn render_report(info: &PanicHookInfo<'_>, policy: &Policy) -> String {
    let mut report = String::new();
    let thread = std::thread::current();
    let _ = write!(report, "thread '{}' ", thread.name().unwrap_or("<unnamed>"));
    write_panic(&mut report, info);
    report.push('\n');
    let backtrace = Backtrace::capture();
    match backtrace.status() {
        BacktraceStatus::Captured => {
            let full = backtrace.to_string();
            let full_style = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v == "full");
            report.push_str("stack backtrace:\n");
            if let Some(short) = short_backtrace(&full).filter(|_| !full_style) {
                report.push_str(&short);
                report.push_str(
                    "note: Some details are omitted, run with `RUST_BACKTRACE=full` for a \
                     verbose backtrace.\n",
                );
            } else {
                report.push_str(&full);
                report.push('\n');
            }
        }
        BacktraceStatus::Disabled => report.push_str(
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
        ),
        _ => {}
    }
    scrub_into_string(policy, report)
}

/// The frames of a rendered backtrace between the runtime's markers (those of the panic
/// machinery and of the hook before, those of thread start-up after), renumbered: the
/// standard hook's "short" style. `None` when the markers are not found.
fn short_backtrace(full: &str) -> Option<String> {
    fn symbol<'a>(frame: &[&'a str]) -> &'a str {
        frame.first().copied().unwrap_or_default()
    }

    // A frame is a line `<spaces><n>: <symbol>` followed by its `at <file>` lines.
    let mut frames: Vec<Vec<&str>> = Vec::new();
    for line in full.lines() {
        let trimmed = line.trim_start();
        let is_header = trimmed
            .split_once(": ")
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        match frames.last_mut() {
            Some(frame) if !is_header => frame.push(line),
            _ => frames.push(vec![line]),
        }
    }
    let start = frames
        .iter()
        .position(|f| symbol(f).contains("__rust_end_short_backtrace"))?
        + 1;
    let end = frames
        .iter()
        .position(|f| symbol(f).contains("__rust_begin_short_backtrace"))
        .unwrap_or(frames.len());
    let mut out = String::new();
    for (i, frame) in frames.get(start..end)?.iter().enumerate() {
        for (j, line) in frame.iter().enumerate() {
            if j == 0 {
                let (_, rest) = line.trim_start().split_once(": ").unwrap_or(("", line));
                let _ = writeln!(out, "{i:>4}: {rest}");
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Some(out)
}

/// `panicked at <location>:\n<message>`, unscrubbed.
fn write_panic(out: &mut String, info: &PanicHookInfo<'_>) {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>");
    // Writing to a String cannot fail.
    let _ = match info.location() {
        Some(location) => write!(out, "panicked at {location}:\n{message}"),
        None => write!(out, "panicked:\n{message}"),
    };
}

fn scrub_into_string(policy: &Policy, text: String) -> String {
    match policy.scrub_text(&text) {
        std::borrow::Cow::Borrowed(_) => None,
        std::borrow::Cow::Owned(scrubbed) => Some(scrubbed),
    }
    .unwrap_or(text)
}
