//! The `log` integration: a logger wrapper that scrubs every record's message.

use std::borrow::Cow;

use log::{LevelFilter, Log, Metadata, Record, SetLoggerError};

use crate::Policy;

/// Wraps a [`log::Log`] so that it only ever sees scrubbed messages.
///
/// Each record's message (`record.args()`) is formatted, scrubbed with [`Policy::scrub_text`]
/// and handed to the inner logger in a rebuilt [`Record`] with the same level, target, module
/// path, file and line. `enabled` and `flush` are forwarded, and a record the inner logger
/// does not want is not formatted at all.
///
/// - **Key–values.** Records are rebuilt without structured key–values, so with `log`'s `kv`
///   feature turned on somewhere in the build they are dropped, never passed on unscrubbed.
///   (This crate does not enable `kv`, and so cannot scrub them one by one.)
/// - **Targets and paths** pass unchanged: they come from the source code, not from data.
///
/// ```
/// use tokenward_redact::Policy;
/// use tokenward_redact::integrations::RedactingLogger;
///
/// # struct Stderr;
/// # impl log::Log for Stderr {
/// #     fn enabled(&self, _: &log::Metadata<'_>) -> bool { true }
/// #     fn log(&self, _: &log::Record<'_>) {}
/// #     fn flush(&self) {}
/// # }
/// let logger = RedactingLogger::new(Stderr, Policy::plaid());
/// // log::set_boxed_logger(Box::new(logger))?; or use `init_redacting_logger`.
/// # drop(logger);
/// ```
#[derive(Debug)]
pub struct RedactingLogger<L> {
    inner: L,
    policy: Policy,
}

impl<L: Log> RedactingLogger<L> {
    /// Wraps `inner`, scrubbing with `policy`.
    #[must_use]
    pub fn new(inner: L, policy: Policy) -> Self {
        RedactingLogger { inner, policy }
    }

    /// The wrapped logger.
    #[must_use]
    pub fn inner(&self) -> &L {
        &self.inner
    }
}

impl<L: Log> Log for RedactingLogger<L> {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.inner.enabled(record.metadata()) {
            return;
        }
        let formatted;
        let message = if let Some(literal) = record.args().as_str() {
            literal
        } else {
            formatted = record.args().to_string();
            &formatted
        };
        let scrubbed: Cow<'_, str> = self.policy.scrub_text(message);
        let mut builder = Record::builder();
        builder
            .metadata(record.metadata().clone())
            .line(record.line());
        match record.module_path_static() {
            Some(path) => builder.module_path_static(Some(path)),
            None => builder.module_path(record.module_path()),
        };
        match record.file_static() {
            Some(file) => builder.file_static(Some(file)),
            None => builder.file(record.file()),
        };
        // `format_args!` borrows temporaries, so the record is built and logged in one statement.
        self.inner
            .log(&builder.args(format_args!("{scrubbed}")).build());
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// Installs `logger`, wrapped in a [`RedactingLogger`] with `policy`, as the global `log`
/// logger and sets the maximum level.
///
/// # Errors
///
/// [`SetLoggerError`] if a global logger was already installed.
pub fn init_redacting_logger<L: Log + 'static>(
    logger: L,
    policy: Policy,
    max_level: LevelFilter,
) -> Result<(), SetLoggerError> {
    log::set_boxed_logger(Box::new(RedactingLogger::new(logger, policy)))?;
    log::set_max_level(max_level);
    Ok(())
}
