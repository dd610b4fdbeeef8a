//! The `tracing` integration: a redacting event formatter, field formatter and writer.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::io;

use tracing::field::{DisplayValue, Field, Value, Visit, display};
use tracing::span::Record;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use super::scrub_output;
use crate::{FieldAction, Policy};

/// How many bytes of an unfinished line a [`RedactingWriter`] holds by default: 64 KiB.
pub const DEFAULT_LINE_LIMIT: usize = 64 * 1024;

/// The smallest line limit [`RedactingMakeWriter::with_line_limit`] accepts: 1 KiB.
pub const MIN_LINE_LIMIT: usize = 1024;

/// Written in place of the rest of a line that grew past a [`RedactingWriter`]'s limit.
pub const TRUNCATION_MARKER: &str = "[TRUNCATED]";

/// The `fmt` layer [`redacting_fmt_layer`] returns: the default full format with redacting event
/// and field formatters, writing to stdout. Change the writer with `.with_writer(…)`.
pub type RedactingFmtLayer<S> = tracing_subscriber::fmt::Layer<
    S,
    RedactingFields,
    RedactingFormat<Format<Full>>,
    fn() -> io::Stdout,
>;

/// A `tracing-subscriber` `fmt` layer that redacts every event and span field by name and
/// scrubs every value and every line: the one-liner for a service's `main`.
///
/// ```
/// use tokenward_redact::Policy;
/// use tokenward_redact::integrations::redacting_fmt_layer;
/// use tracing_subscriber::layer::SubscriberExt as _;
///
/// let subscriber = tracing_subscriber::registry().with(redacting_fmt_layer(Policy::plaid()));
/// // In `main`: tracing::subscriber::set_global_default(subscriber)?;
/// let _guard = tracing::subscriber::set_default(subscriber);
/// tracing::info!(access_token = "not-token-shaped", "exchange ok");
/// // stdout: "… INFO …: exchange ok access_token=[REDACTED:plaid.access_token]"
/// ```
///
/// The writer can be changed (`.with_writer(std::io::stderr)`); the formatters cannot without
/// losing redaction, so for another format assemble the layer yourself. The JSON formatter
/// needs `tracing-subscriber`'s `json` feature:
///
/// ```
/// use tokenward_redact::integrations::{RedactingFields, RedactingFormat};
/// use tracing_subscriber::layer::SubscriberExt as _;
///
/// let policy = tokenward_redact::Policy::plaid();
/// let layer = tracing_subscriber::fmt::layer()
///     .json()
///     .fmt_fields(RedactingFields::json(policy.clone()))
///     .map_event_format(|format| RedactingFormat::new(format, policy));
/// let subscriber = tracing_subscriber::registry().with(layer);
/// # drop(subscriber);
/// ```
///
/// # Security
///
/// Layers installed beside this one (OpenTelemetry, Sentry…) still receive raw field values;
/// see the [module documentation](super#security).
#[must_use]
pub fn redacting_fmt_layer<S>(policy: Policy) -> RedactingFmtLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .fmt_fields(RedactingFields::new(policy.clone()))
        .event_format(RedactingFormat::new(
            tracing_subscriber::fmt::format(),
            policy,
        ))
}

/// Wraps any event formatter (`FormatEvent`) so that it never sees a raw field and never
/// writes an unscrubbed line.
///
/// For each event it:
///
/// 1. rebuilds the event with every field redacted by name ([`Policy::field`]; for dotted names
///    such as `request.password` the last segment is checked too, except in allow-list mode)
///    and every value scrubbed ([`Policy::scrub_text`]): strings, `?debug` and `%display`
///    values as formatted text, errors as their whole `source()` chain, bytes as text (in
///    place when they are not UTF-8), and numbers by their decimal text. The `message` field
///    is never redacted by name, only scrubbed;
/// 2. lets the inner formatter format that event into a buffer (so `Full`, `Compact`, `Pretty`,
///    `Json` and custom formatters all print redacted fields);
/// 3. scrubs the formatted text once more, which covers span fields, span names and targets:
///    a line that is a JSON object with [`scrub_json`](crate::scrub_json) (field rules on
///    every key, value rules on every string), other text with [`Policy::scrub_text`]; then
///    writes it.
///
/// If the inner formatter fails, nothing is written.
///
/// Span fields are formatted by the layer's field formatter when the span is created, not
/// here: use [`RedactingFields`] as that formatter to redact them by name (step 3 still
/// scrubs their values).
///
/// The inner formatter writes into a plain buffer, so ANSI colours are off unless the inner
/// formatter enables them itself (`format().with_ansi(true)`).
///
/// Rebuilding the event uses `FieldSet::value_set_all`, the constructor `tracing`'s own macros
/// expand to (tracing-core 0.1.35 or later).
#[derive(Debug, Clone)]
pub struct RedactingFormat<F> {
    inner: F,
    policy: Policy,
}

impl<F> RedactingFormat<F> {
    /// Wraps `inner`, redacting with `policy`.
    #[must_use]
    pub fn new(inner: F, policy: Policy) -> Self {
        RedactingFormat { inner, policy }
    }

    /// The wrapped formatter.
    #[must_use]
    pub fn inner(&self) -> &F {
        &self.inner
    }
}

impl<S, N, F> FormatEvent<S, N> for RedactingFormat<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        with_scrubbed_event(&self.policy, event, |scrubbed| {
            self.inner
                .format_event(ctx, Writer::new(&mut line), scrubbed)
        })?;
        writer.write_str(&scrub_output(&self.policy, &line))
    }
}

/// A field formatter (`FormatFields`) that redacts by name and scrubs every value.
///
/// Every kind of field is covered: `str`, `?debug`, `%display`, errors (the whole `source()`
/// chain, scrubbed), bytes (scrubbed as text when they are UTF-8, otherwise in place with
/// length-keeping placeholders; printed escaped), and integers and floats (their decimal text
/// is scrubbed, so a nine-digit routing number logged as a number is caught). A
/// field the policy redacts by name is written as `name=[REDACTED:<tag>]` whatever its type.
///
/// Use [`RedactingFields::new`] with the text formatters (`Full`, `Compact`, `Pretty`) and
/// [`RedactingFields::json`] with the JSON formatter, whose span fields must be JSON objects
/// (it panics on anything else in debug builds).
#[derive(Debug, Clone)]
pub struct RedactingFields {
    policy: Policy,
    json: bool,
}

impl RedactingFields {
    /// Fields as `key=value` text separated by spaces, like `tracing-subscriber`'s default;
    /// strings are quoted and escaped, the message is written bare.
    #[must_use]
    pub fn new(policy: Policy) -> Self {
        RedactingFields {
            policy,
            json: false,
        }
    }

    /// Fields as a JSON object, as the JSON formatter expects for span fields: strings,
    /// numbers and booleans keep their JSON types, bytes are arrays of numbers, and redacted
    /// fields are placeholder strings.
    #[must_use]
    pub fn json(policy: Policy) -> Self {
        RedactingFields { policy, json: true }
    }
}

impl<'writer> FormatFields<'writer> for RedactingFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        if self.json {
            let mut sink = JsonSink::default();
            fields.record(&mut Scrubber::new(&self.policy, &mut sink));
            let text = serde_json::to_string(&sink.map).map_err(|_| fmt::Error)?;
            writer.write_str(&text)
        } else {
            let mut scrubber = Scrubber::new(&self.policy, TextSink::new(writer));
            fields.record(&mut scrubber);
            scrubber.sink.result
        }
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &Record<'_>,
    ) -> fmt::Result {
        if !self.json {
            if !current.fields.is_empty() {
                current.fields.push(' ');
            }
            return self.format_fields(current.as_writer(), fields);
        }
        // JSON span fields are one object: merge the new fields into it.
        let map = if current.fields.is_empty() {
            serde_json::Map::new()
        } else {
            serde_json::from_str(&current.fields).map_err(|_| fmt::Error)?
        };
        let mut sink = JsonSink { map };
        fields.record(&mut Scrubber::new(&self.policy, &mut sink));
        current.fields = serde_json::to_string(&sink.map).map_err(|_| fmt::Error)?;
        Ok(())
    }
}

/// Wraps any `MakeWriter` so that every byte a formatter writes is scrubbed before it reaches
/// the inner writer.
///
/// Each writer it makes ([`RedactingWriter`], one per event) holds what it is given and writes
/// it to the inner writer scrubbed, in one piece, when it is dropped at the end of the event.
/// Before that it only ever passes on whole lines (on `flush`, or when the buffer is full), so
/// a secret split across `write` calls is still found. Lines that are JSON objects are
/// scrubbed with [`scrub_json`](crate::scrub_json) (field rules on every key, value rules on
/// every string), other text with [`Policy::scrub_text`].
///
/// - **Bounded.** An unfinished line is held up to a limit ([`DEFAULT_LINE_LIMIT`], 64 KiB;
///   see [`with_line_limit`](Self::with_line_limit)). A line that grows past it is truncated:
///   its head, cut just after the last ASCII byte that cannot be part of a secret (not a
///   letter, digit or one of `-._~+/=`), is scrubbed and written followed by
///   [`TRUNCATION_MARKER`], and the rest of the line is discarded up to its newline. So no
///   token, JWT or key–value pair is cut in two and half of it written in clear; the cost is
///   lost text. A custom rule whose matches contain other characters could in principle be
///   cut at such a byte. The head of a JSON line is dropped as well (cut short, it no longer
///   parses, so field rules could not be applied). Complete lines arriving in one `write`, as
///   the `fmt` layer writes each event, are never truncated.
/// - **Lossy UTF-8.** Bytes that are not UTF-8 are replaced by U+FFFD before scrubbing.
/// - **Flush.** `flush` writes the complete lines held and flushes the inner writer; an
///   unfinished line stays held until its newline or the drop.
/// - **Bytes, not fields.** Outside JSON lines the writer cannot redact by field name; inside
///   them JSON numbers are not checked (a routing number logged as an integer passes); and
///   values a formatter encodes (byte fields as hex or as arrays of numbers) are not
///   recognised anywhere. Use [`RedactingFormat`] for events; this writer is the net for
///   everything else.
#[derive(Debug, Clone)]
pub struct RedactingMakeWriter<M> {
    inner: M,
    policy: Policy,
    line_limit: usize,
}

impl<M> RedactingMakeWriter<M> {
    /// Wraps `inner`, scrubbing with `policy`, holding at most [`DEFAULT_LINE_LIMIT`] bytes of
    /// an unfinished line.
    #[must_use]
    pub fn new(inner: M, policy: Policy) -> Self {
        RedactingMakeWriter {
            inner,
            policy,
            line_limit: DEFAULT_LINE_LIMIT,
        }
    }

    /// Sets how many bytes of an unfinished line are held before it is truncated; values below
    /// [`MIN_LINE_LIMIT`] are raised to it.
    #[must_use]
    pub fn with_line_limit(mut self, bytes: usize) -> Self {
        self.line_limit = bytes.max(MIN_LINE_LIMIT);
        self
    }

    fn wrap<W: io::Write>(&self, inner: W) -> RedactingWriter<'_, W> {
        RedactingWriter {
            inner,
            policy: &self.policy,
            limit: self.line_limit,
            buf: Vec::new(),
            discarding: false,
        }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingMakeWriter<M> {
    type Writer = RedactingWriter<'a, M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        self.wrap(self.inner.make_writer())
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        self.wrap(self.inner.make_writer_for(meta))
    }
}

/// The writer a [`RedactingMakeWriter`] makes: buffers, scrubs and forwards whole lines (see
/// there for the rules).
pub struct RedactingWriter<'a, W: io::Write> {
    inner: W,
    policy: &'a Policy,
    limit: usize,
    buf: Vec<u8>,
    /// Dropping input up to the next newline: the rest of a truncated line.
    discarding: bool,
}

impl<W: io::Write> io::Write for RedactingWriter<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.push(data)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.emit_lines()?;
        self.inner.flush()
    }
}

impl<W: io::Write> RedactingWriter<'_, W> {
    fn push(&mut self, mut data: &[u8]) -> io::Result<()> {
        if self.discarding {
            let Some(newline) = memchr::memchr(b'\n', data) else {
                return Ok(());
            };
            self.discarding = false;
            // Keep the newline: it ends the truncated line.
            data = data.get(newline..).unwrap_or_default();
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() > self.limit {
            self.emit_lines()?;
            if self.buf.len() > self.limit {
                self.truncate()?;
            }
        }
        Ok(())
    }

    /// Scrubs and writes every complete line held.
    fn emit_lines(&mut self) -> io::Result<()> {
        if let Some(last) = memchr::memrchr(b'\n', &self.buf) {
            let rest = self.buf.split_off(last + 1);
            let lines = std::mem::replace(&mut self.buf, rest);
            self.emit(&lines)?;
        }
        Ok(())
    }

    /// Writes the scrubbed head of an over-long unfinished line and the marker; drops the rest.
    fn truncate(&mut self) -> io::Result<()> {
        let head = self.buf.get(..self.limit).unwrap_or(&self.buf);
        // Cut after a byte that no built-in secret contains, so nothing is cut in two.
        let cut = head
            .iter()
            .rposition(|&b| b.is_ascii() && !is_secret_byte(b))
            .map_or(0, |i| i + 1);
        let head = String::from_utf8_lossy(head.get(..cut).unwrap_or_default());
        // The head of a JSON line no longer parses, so field rules could not be applied to it:
        // it is dropped too.
        let mut out = if head.trim_start().starts_with('{') {
            String::new()
        } else {
            scrub_output(self.policy, &head).into_owned()
        };
        out.push_str(TRUNCATION_MARKER);
        self.buf.clear();
        self.discarding = true;
        self.inner.write_all(out.as_bytes())
    }

    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        let text = String::from_utf8_lossy(bytes);
        self.inner
            .write_all(scrub_output(self.policy, &text).as_bytes())
    }
}

impl<W: io::Write> Drop for RedactingWriter<'_, W> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            // A drop cannot report an error; the bytes are lost, never written unscrubbed.
            let _ = self.emit(&rest);
        }
    }
}

impl<W: io::Write> fmt::Debug for RedactingWriter<'_, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedactingWriter")
            .field("buffered", &self.buf.len())
            .field("line_limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// Whether `b` can be part of a built-in secret (tokens, JWTs, bearer credentials, ids).
fn is_secret_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

// ---------------------------------------------------------------------------------------------
// Field scrubbing, shared by the event rebuild and the field formatters.

/// A field value as `tracing` hands it to a visitor.
#[derive(Clone, Copy)]
enum Raw<'v> {
    Str(&'v str),
    Debug(&'v dyn fmt::Debug),
    Error(&'v (dyn Error + 'static)),
    Bytes(&'v [u8]),
    I64(i64),
    U64(u64),
    I128(i128),
    U128(u128),
    F64(f64),
    Bool(bool),
}

/// A field value after redaction, in a form `tracing` can record again.
enum Scrubbed {
    /// A string (recorded with `record_str`).
    Str(String),
    /// Already-formatted text: debug and display values, errors, placeholders.
    Text(DisplayValue<String>),
    Bytes(Box<[u8]>),
    I64(i64),
    U64(u64),
    I128(i128),
    U128(u128),
    F64(f64),
    Bool(bool),
}

impl Scrubbed {
    fn text(s: String) -> Scrubbed {
        Scrubbed::Text(display(s))
    }

    fn as_value(&self) -> &dyn Value {
        match self {
            Scrubbed::Str(v) => v,
            Scrubbed::Text(v) => v,
            Scrubbed::Bytes(v) => v,
            Scrubbed::I64(v) => v,
            Scrubbed::U64(v) => v,
            Scrubbed::I128(v) => v,
            Scrubbed::U128(v) => v,
            Scrubbed::F64(v) => v,
            Scrubbed::Bool(v) => v,
        }
    }
}

/// What the policy does with a field: the `r#` of raw identifiers is dropped first, and for a
/// dotted name the last segment is checked too (outside allow-list mode, where the full name
/// decides).
fn field_action<'p>(policy: &'p Policy, name: &str) -> FieldAction<'p> {
    let name = name.strip_prefix("r#").unwrap_or(name);
    match policy.field(name) {
        FieldAction::Keep if !policy.is_allow_list() => name
            .rsplit_once('.')
            .map_or(FieldAction::Keep, |(_, last)| policy.field(last)),
        action => action,
    }
}

fn scrub_field(policy: &Policy, name: &str, raw: Raw<'_>) -> Scrubbed {
    // The message is the event's text, not a data field: scrubbed, never redacted by name.
    if name != "message"
        && let FieldAction::Redact(placeholder) = field_action(policy, name)
    {
        return Scrubbed::text(placeholder.to_owned());
    }
    match raw {
        Raw::Str(s) => Scrubbed::Str(policy.scrub_text(s).into_owned()),
        Raw::Debug(d) => Scrubbed::text(scrub_owned(policy, format!("{d:?}"))),
        Raw::Error(e) => Scrubbed::text(crate::report::scrub_error_chain(e, policy)),
        Raw::Bytes(b) => Scrubbed::Bytes(scrub_bytes(policy, b)),
        Raw::I64(v) => number(policy, v, Scrubbed::I64),
        Raw::U64(v) => number(policy, v, Scrubbed::U64),
        Raw::I128(v) => number(policy, v, Scrubbed::I128),
        Raw::U128(v) => number(policy, v, Scrubbed::U128),
        Raw::F64(v) => number(policy, v, Scrubbed::F64),
        Raw::Bool(v) => Scrubbed::Bool(v),
    }
}

/// Bytes that are UTF-8 are scrubbed as text (fixed-width placeholders, as everywhere else);
/// binary is scrubbed in place, so offsets keep their meaning.
fn scrub_bytes(policy: &Policy, bytes: &[u8]) -> Box<[u8]> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return policy.scrub_text(text).into_owned().into_bytes().into();
    }
    let mut bytes = bytes.to_vec();
    policy.scrub_bytes_in_place(&mut bytes);
    bytes.into()
}

/// Keeps a number as a number unless its decimal text matches a value rule.
fn number<T: fmt::Display>(policy: &Policy, v: T, keep: fn(T) -> Scrubbed) -> Scrubbed {
    match policy.scrub_text(&v.to_string()) {
        Cow::Borrowed(_) => keep(v),
        Cow::Owned(scrubbed) => Scrubbed::text(scrubbed),
    }
}

fn scrub_owned(policy: &Policy, text: String) -> String {
    match policy.scrub_text(&text) {
        Cow::Borrowed(_) => None,
        Cow::Owned(scrubbed) => Some(scrubbed),
    }
    .unwrap_or(text)
}

/// Receives scrubbed fields.
trait Sink {
    fn put(&mut self, field: &Field, value: Scrubbed);
}

impl<K: Sink + ?Sized> Sink for &mut K {
    fn put(&mut self, field: &Field, value: Scrubbed) {
        (**self).put(field, value);
    }
}

/// A visitor that scrubs every kind of value before handing it to a sink.
struct Scrubber<'p, K> {
    policy: &'p Policy,
    sink: K,
}

impl<'p, K: Sink> Scrubber<'p, K> {
    fn new(policy: &'p Policy, sink: K) -> Self {
        Scrubber { policy, sink }
    }

    fn put(&mut self, field: &Field, raw: Raw<'_>) {
        let value = scrub_field(self.policy, field.name(), raw);
        self.sink.put(field, value);
    }
}

impl<K: Sink> Visit for Scrubber<'_, K> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Raw::F64(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Raw::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Raw::U64(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.put(field, Raw::I128(value));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.put(field, Raw::U128(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Raw::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Raw::Str(value));
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.put(field, Raw::Bytes(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        self.put(field, Raw::Error(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Raw::Debug(value));
    }
}

/// Collects an event's scrubbed values by field index, to rebuild the event.
struct EventSink {
    values: Vec<Option<Scrubbed>>,
}

impl Sink for EventSink {
    fn put(&mut self, field: &Field, value: Scrubbed) {
        if let Some(slot) = self.values.get_mut(field.index()) {
            *slot = Some(value);
        }
    }
}

/// Calls `f` with a copy of `event` whose fields are redacted and scrubbed (same metadata,
/// same parent).
fn with_scrubbed_event<R>(
    policy: &Policy,
    event: &Event<'_>,
    f: impl FnOnce(&Event<'_>) -> R,
) -> R {
    let meta = event.metadata();
    let fields = meta.fields();
    let mut sink = EventSink {
        values: std::iter::repeat_with(|| None).take(fields.len()).collect(),
    };
    event.record(&mut Scrubber::new(policy, &mut sink));
    let values: Vec<Option<&dyn Value>> = sink
        .values
        .iter()
        .map(|v| v.as_ref().map(Scrubbed::as_value))
        .collect();
    let value_set = fields.value_set_all(&values);
    let scrubbed = if event.is_root() {
        Event::new_child_of(None, meta, &value_set)
    } else if let Some(parent) = event.parent() {
        Event::new_child_of(parent.clone(), meta, &value_set)
    } else {
        Event::new(meta, &value_set)
    };
    f(&scrubbed)
}

/// Writes fields as `key=value` text.
struct TextSink<'w> {
    writer: Writer<'w>,
    empty: bool,
    result: fmt::Result,
}

impl<'w> TextSink<'w> {
    fn new(writer: Writer<'w>) -> Self {
        TextSink {
            writer,
            empty: true,
            result: Ok(()),
        }
    }
}

impl Sink for TextSink<'_> {
    fn put(&mut self, field: &Field, value: Scrubbed) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        // What `tracing-log` adds to events made from `log` records: the formatter has already
        // put it in the line's header, as tracing-subscriber's default visitor assumes.
        if matches!(
            name,
            "log.target" | "log.module_path" | "log.file" | "log.line"
        ) {
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        let sep = if self.empty { "" } else { " " };
        self.empty = false;
        let w = &mut self.writer;
        self.result = if name == "message" {
            match &value {
                Scrubbed::Str(s) => write!(w, "{sep}{s}"),
                other => write!(w, "{sep}{}", TextValue(other)),
            }
        } else {
            write!(w, "{sep}{name}={}", TextValue(&value))
        };
    }
}

/// A scrubbed value as text: strings quoted and escaped, bytes escaped, the rest as is.
struct TextValue<'a>(&'a Scrubbed);

impl fmt::Display for TextValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Scrubbed::Str(v) => write!(f, "{v:?}"),
            Scrubbed::Text(v) => write!(f, "{v}"),
            Scrubbed::Bytes(v) => write!(f, "b\"{}\"", v.escape_ascii()),
            Scrubbed::I64(v) => write!(f, "{v}"),
            Scrubbed::U64(v) => write!(f, "{v}"),
            Scrubbed::I128(v) => write!(f, "{v}"),
            Scrubbed::U128(v) => write!(f, "{v}"),
            Scrubbed::F64(v) => write!(f, "{v}"),
            Scrubbed::Bool(v) => write!(f, "{v}"),
        }
    }
}

/// Collects fields into a JSON object.
#[derive(Default)]
struct JsonSink {
    map: serde_json::Map<String, serde_json::Value>,
}

impl Sink for JsonSink {
    fn put(&mut self, field: &Field, value: Scrubbed) {
        use serde_json::Value as J;
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        let json = match value {
            Scrubbed::Str(v) => J::String(v),
            Scrubbed::Text(v) => J::String(v.to_string()),
            Scrubbed::Bytes(v) => J::from(&*v),
            Scrubbed::I64(v) => J::from(v),
            Scrubbed::U64(v) => J::from(v),
            // JSON numbers beyond 64 bits lose precision in most readers: text, as
            // tracing-subscriber's JSON visitor does.
            Scrubbed::I128(v) => J::String(v.to_string()),
            Scrubbed::U128(v) => J::String(v.to_string()),
            Scrubbed::F64(v) => J::from(v),
            Scrubbed::Bool(v) => J::Bool(v),
        };
        self.map.insert(name.to_owned(), json);
    }
}
