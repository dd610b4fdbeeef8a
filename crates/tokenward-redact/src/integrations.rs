//! Logging integrations: scrub what `tracing` and `log` write.
//!
//! # `tracing` (feature `tracing`)
//!
//! Three pieces, which combine:
//!
//! - `RedactingFormat` wraps any event formatter (`Full`, `Compact`, `Pretty`, `Json` or your
//!   own). Before the inner formatter runs, it rebuilds the event with every field redacted by
//!   name and scrubbed by value, for every kind of value (`str`, `?debug`, `%display`, errors
//!   with their whole `source()` chain, bytes, numbers); then it scrubs the formatted text
//!   (JSON lines key-aware, other text by value). The formatter never sees a raw field,
//!   whatever its output format.
//! - `RedactingFields` formats span fields (and, for `Full` and `Compact`, event fields) the
//!   same way: `key=value` text with `RedactingFields::new`, a JSON object for the JSON
//!   formatter with `RedactingFields::json`. Span fields are formatted once, when the span is
//!   created or recorded, so they need this to be redacted by name.
//! - `RedactingMakeWriter` wraps any writer and scrubs the bytes every formatter writes, line
//!   by line, bounded. It knows nothing about fields, so outside JSON lines it redacts by value
//!   only: it is the net for formatters you do not control.
//!
//! `redacting_fmt_layer(policy)` puts the first two together: the one-liner for a service's
//! `main`. Its documentation shows that and the JSON set-up.
//!
//! # `log` (feature `log`)
//!
//! `RedactingLogger` wraps any `log::Log` and scrubs each record's message;
//! `init_redacting_logger` installs one as the global logger. (With `tracing-log`, `log`
//! records become `tracing` events and the `tracing` pieces cover them instead.)
//!
//! # Security
//!
//! - **Other layers see raw values.** A `tracing` layer cannot rewrite an event's fields for
//!   its siblings: an OpenTelemetry exporter, a Sentry layer or any other `Layer` installed
//!   beside the redacting formatter receives the original event. Give each of them its own
//!   hook (Sentry's `before_send`, an OpenTelemetry redaction processor, and
//!   [`ScrubbedError`](crate::report::ScrubbedError) for errors) or keep them away from
//!   secrets.
//! - Writer-only scrubbing (`RedactingMakeWriter` without `RedactingFormat`) cannot see values
//!   that a formatter encodes: `Full` prints byte fields as hex and `Json` as arrays of
//!   numbers, and outside JSON lines field names are not known. Use `RedactingFormat` for
//!   events.
//! - There is no switch that turns redaction off.

#[cfg(feature = "log")]
mod log_wrapper;
#[cfg(feature = "tracing")]
mod tracing_layer;

#[cfg(feature = "log")]
pub use log_wrapper::{RedactingLogger, init_redacting_logger};
#[cfg(feature = "tracing")]
pub use tracing_layer::{
    DEFAULT_LINE_LIMIT, MIN_LINE_LIMIT, RedactingFields, RedactingFmtLayer, RedactingFormat,
    RedactingMakeWriter, RedactingWriter, TRUNCATION_MARKER, redacting_fmt_layer,
};

#[cfg(feature = "tracing")]
use std::borrow::Cow;

#[cfg(feature = "tracing")]
use crate::Policy;

/// The keys `tracing-subscriber`'s JSON formatter writes around an event's fields.
///
/// Formatted JSON lines are scrubbed with [`scrub_json`](crate::scrub_json), which applies
/// field rules to every key. With an allow-list policy, allow these keys as well as your own
/// fields, or the formatter's envelope (timestamp, level, target, the `fields` object…) is
/// redacted as `not_allowed` too:
///
/// ```
/// use tokenward_redact::Policy;
/// use tokenward_redact::integrations::TRACING_JSON_KEYS;
///
/// let policy = Policy::builder()
///     .allow_only(["amount", "item_id"].iter().chain(TRACING_JSON_KEYS))
///     .build()?;
/// # Ok::<(), tokenward_redact::PolicyError>(())
/// ```
#[cfg(feature = "tracing")]
pub const TRACING_JSON_KEYS: &[&str] = &[
    "timestamp",
    "level",
    "fields",
    "message",
    "target",
    "filename",
    "line_number",
    "span",
    "spans",
    "name",
    "threadName",
    "threadId",
];

/// Scrubs formatter output.
///
/// A line that is a JSON object (as the JSON formatter writes them) goes through
/// [`scrub_json`](crate::scrub_json): field rules on every key at every depth, value rules on
/// every string. Numbers are left as they are there, so the line stays valid JSON. Any other
/// text, and a line that only looks like JSON but does not parse, goes through
/// [`Policy::scrub_text`].
#[cfg(feature = "tracing")]
pub(crate) fn scrub_output<'t>(policy: &Policy, text: &'t str) -> Cow<'t, str> {
    if !text.split('\n').any(looks_like_json) {
        return policy.scrub_text(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut json = Vec::new();
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let (body, end) = line.split_at_checked(body.len()).unwrap_or((line, ""));
        if looks_like_json(body) {
            json.clear();
            if crate::scrub_json(policy, body.trim().as_bytes(), &mut json).is_ok()
                && let Ok(scrubbed) = std::str::from_utf8(&json)
            {
                out.push_str(scrubbed);
                out.push_str(end);
                continue;
            }
        }
        out.push_str(&policy.scrub_text(line));
    }
    Cow::Owned(out)
}

#[cfg(feature = "tracing")]
fn looks_like_json(line: &str) -> bool {
    let line = line.trim();
    line.starts_with('{') && line.ends_with('}')
}
