//! Streaming JSON scrubber: JSON bytes in, redacted JSON bytes out, with no tree in between.
//!
//! For payloads we did not produce (Plaid responses, webhook bodies, request dumps). One pass
//! over the input with an explicit stack (a bit per level, so no recursion and no allocation
//! per level): each token is validated and written out as soon as it is read.
//!
//! - Every object member goes through [`Policy::field`]. `Redact` replaces the whole value
//!   (string, number, boolean, null, object or array) with the placeholder as a JSON string,
//!   except a string that already is a placeholder, which is kept (so scrubbing twice equals
//!   scrubbing once). The skipped value is still validated.
//! - Object keys and every kept string value go through [`Policy::scrub_text`], after
//!   unescaping: a token spelled with `\u002d` escapes is still a token.
//! - In allow-list mode [`Policy::field`] redacts every key not on the list, at every depth;
//!   values outside any object (a top-level string, elements of a top-level array) have no
//!   key, so only the value rules apply to them.
//! - Strings without a backslash take a fast path: the closing quote is found a word at a time
//!   (then with `memchr`), the bytes are checked (UTF-8, no control characters) and copied
//!   through if the value rules leave them alone. Other strings are unescaped into one reused
//!   buffer and re-escaped minimally.
//! - Repeated keys and short clean values are remembered for the rest of the call (a small
//!   table of positions in the input), so a response that repeats the same keys for every
//!   transaction decides each key once.
//! - Numbers, `true`, `false` and `null` are validated and copied verbatim.
//! - Insignificant whitespace is dropped: the output is compact JSON.
//!
//! # Security
//!
//! Malformed JSON never passes through unscrubbed: on any error the output buffer is cut back
//! to its length before the call. Error messages carry a byte offset and a reason, never input
//! bytes, which could be secrets.

use std::borrow::Cow;
use std::io;

use crate::{FieldAction, Policy, is_placeholder};

/// The deepest nesting of arrays and objects that [`scrub_json`] accepts: 127 levels.
///
/// This is the limit `serde_json` applies by default, so whatever the scrubber writes,
/// `serde_json` reads back. Deeper documents fail with [`JsonError::TooDeep`].
pub const MAX_JSON_DEPTH: usize = 127;

/// Why a document could not be scrubbed.
///
/// Every variant carries the byte offset in the input where the problem was found. Messages
/// never quote input bytes, which could be secrets.
///
/// ```
/// use tokenward_redact::{JsonError, Policy, scrub_json_to_vec};
///
/// let err = scrub_json_to_vec(&Policy::plaid(), br#"{"a": tru"#).unwrap_err();
/// assert_eq!(err, JsonError::Truncated { offset: 9 });
/// assert_eq!(err.to_string(), "input ends early at offset 9");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// A byte that JSON does not allow where it stands: a malformed number or literal, a
    /// missing `:` or `,`, a control character inside a string, a byte-order mark.
    #[error("unexpected byte at offset {offset}")]
    UnexpectedByte {
        /// Offset of the byte.
        offset: usize,
    },
    /// A string whose closing quote never comes.
    #[error("unterminated string starting at offset {offset}")]
    UnterminatedString {
        /// Offset of the opening quote.
        offset: usize,
    },
    /// A backslash escape that JSON does not define, a `\u` escape without four hex digits, or
    /// an unpaired UTF-16 surrogate.
    #[error("invalid escape at offset {offset}")]
    BadEscape {
        /// Offset of the backslash.
        offset: usize,
    },
    /// Bytes inside a string that are not UTF-8.
    #[error("invalid utf-8 at offset {offset}")]
    InvalidUtf8 {
        /// Offset of the first byte that is not UTF-8.
        offset: usize,
    },
    /// Something other than whitespace after the document.
    #[error("trailing data at offset {offset}")]
    TrailingData {
        /// Offset of the first byte after the document.
        offset: usize,
    },
    /// Arrays and objects nested deeper than [`MAX_JSON_DEPTH`].
    #[error("nesting deeper than {MAX_JSON_DEPTH} levels at offset {offset}")]
    TooDeep {
        /// Offset of the opening bracket one level too deep.
        offset: usize,
    },
    /// The input ends before the document does (this includes an empty input).
    #[error("input ends early at offset {offset}")]
    Truncated {
        /// The input's length.
        offset: usize,
    },
}

impl JsonError {
    /// The byte offset in the input where the problem was found.
    ///
    /// ```
    /// use tokenward_redact::{Policy, scrub_json_to_vec};
    ///
    /// let err = scrub_json_to_vec(&Policy::plaid(), b"[1, 2] 3").unwrap_err();
    /// assert_eq!(err.offset(), 7);
    /// ```
    #[must_use]
    pub fn offset(&self) -> usize {
        match *self {
            JsonError::UnexpectedByte { offset }
            | JsonError::UnterminatedString { offset }
            | JsonError::BadEscape { offset }
            | JsonError::InvalidUtf8 { offset }
            | JsonError::TrailingData { offset }
            | JsonError::TooDeep { offset }
            | JsonError::Truncated { offset } => offset,
        }
    }
}

/// Scrubs one JSON document (RFC 8259, UTF-8, any value at the top) and appends the result to
/// `out` as compact JSON.
///
/// Each object member is decided by [`Policy::field`] on its key: a redacted member's whole
/// value becomes the placeholder string (a string that already is a placeholder is kept); a
/// kept member's value is scrubbed in the same way, member by member. Object keys and kept
/// string values go through [`Policy::scrub_text`] after unescaping. Array elements share
/// their member's decision. In allow-list mode every key not on the list is redacted, at every
/// depth. Numbers, booleans and `null` are copied verbatim; whitespace between tokens is
/// dropped.
///
/// `out` is only appended to, so one buffer can be cleared and reused across calls.
///
/// ```
/// use tokenward_redact::{Policy, scrub_json};
///
/// let body = br#"{"access_token": "access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6",
///                 "item_id": "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6", "request_id": "m8MDnv9okwxFNBV"}"#;
/// let mut out = Vec::new();
/// scrub_json(&Policy::plaid(), body, &mut out)?;
/// assert_eq!(
///     out,
///     br#"{"access_token":"[REDACTED:plaid.access_token]","item_id":"eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6","request_id":"m8MDnv9okwxFNBV"}"#
/// );
/// # Ok::<(), tokenward_redact::JsonError>(())
/// ```
///
/// # Errors
///
/// [`JsonError`] when `input` is not one well-formed JSON document, or nests deeper than
/// [`MAX_JSON_DEPTH`].
///
/// # Security
///
/// Malformed JSON never passes through unscrubbed: on error, `out` is truncated back to its
/// length before the call, so it holds no part of the document.
pub fn scrub_json(policy: &Policy, input: &[u8], out: &mut Vec<u8>) -> Result<(), JsonError> {
    let start = out.len();
    let result = Scrubber::new(policy, input, out).run();
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Scrubs one JSON document into a new vector: [`scrub_json`] for callers without a buffer to
/// reuse.
///
/// ```
/// use tokenward_redact::{Policy, scrub_json_to_vec};
///
/// let webhook = br#"{"webhook_type": "ITEM", "note": "token access\u002dsandbox\u002d8ab976e6-64bc-4b38"}"#;
/// let out = scrub_json_to_vec(&Policy::plaid(), webhook)?;
/// assert_eq!(out, br#"{"webhook_type":"ITEM","note":"token [REDACTED:plaid.access_token]"}"#);
/// # Ok::<(), tokenward_redact::JsonError>(())
/// ```
///
/// # Errors
///
/// As [`scrub_json`]; no partial output is returned.
pub fn scrub_json_to_vec(policy: &Policy, input: &[u8]) -> Result<Vec<u8>, JsonError> {
    let mut out = Vec::new();
    scrub_json(policy, input, &mut out)?;
    Ok(out)
}

/// Scrubs one JSON document and writes the result to `writer`.
///
/// The whole output is built in memory first and written with one `write_all`, so a malformed
/// document writes nothing at all.
///
/// ```
/// use tokenward_redact::{Policy, scrub_json_to_writer};
///
/// let mut log = Vec::new();
/// scrub_json_to_writer(&Policy::plaid(), br#"{"secret": 42}"#, &mut log)?;
/// assert_eq!(log, br#"{"secret":"[REDACTED:plaid.client_secret]"}"#);
///
/// let err = scrub_json_to_writer(&Policy::plaid(), br#"{"secret": "#, &mut log).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
/// assert_eq!(log.len(), 43, "nothing more was written");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// An [`io::Error`] of kind [`InvalidData`](io::ErrorKind::InvalidData) wrapping the
/// [`JsonError`] for malformed input, or the writer's own error.
pub fn scrub_json_to_writer<W: io::Write>(
    policy: &Policy,
    input: &[u8],
    mut writer: W,
) -> io::Result<()> {
    let out = scrub_json_to_vec(policy, input)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    writer.write_all(&out)
}

/// What the parser expects next.
#[derive(Clone, Copy)]
enum State<'p> {
    /// A value, to be treated as the action says.
    Value(FieldAction<'p>),
    /// After `[`: a value or `]`.
    FirstElement,
    /// After `{`: a key or `}`.
    FirstKey,
    /// After `,` in an object: a key.
    Key,
    /// After a value: `,`, a closing bracket, or the end of the document.
    AfterValue,
}

struct Scrubber<'i, 'o, 'p> {
    policy: &'p Policy,
    input: &'i [u8],
    pos: usize,
    out: &'o mut Vec<u8>,
    /// Unescaped string contents, reused for every string that has escapes.
    scratch: String,
    /// Bit `d` is set when the container at depth `d + 1` is an object (else an array).
    objects: u128,
    /// Open containers.
    depth: usize,
    /// The depth of the redacted container being skipped (validated, not written), or 0.
    skip: usize,
    /// Decisions already taken for repeated keys and values.
    memo: Memo<'p>,
}

impl<'i, 'o, 'p> Scrubber<'i, 'o, 'p> {
    fn new(policy: &'p Policy, input: &'i [u8], out: &'o mut Vec<u8>) -> Self {
        Scrubber {
            policy,
            input,
            pos: 0,
            out,
            scratch: String::new(),
            objects: 0,
            depth: 0,
            skip: 0,
            memo: Memo::new(input.len()),
        }
    }

    fn run(mut self) -> Result<(), JsonError> {
        self.out.reserve(self.input.len());
        let mut state = State::Value(FieldAction::Keep);
        loop {
            self.skip_whitespace();
            state = match state {
                State::Value(action) => self.value(action)?,
                State::FirstElement if self.peek() == Some(b']') => self.close(b']'),
                // Array elements share the member's decision: a redacted array is skipped
                // whole, so an element that is reached is kept.
                State::FirstElement => self.value(FieldAction::Keep)?,
                State::FirstKey if self.peek() == Some(b'}') => self.close(b'}'),
                State::FirstKey | State::Key => State::Value(self.member_key()?),
                State::AfterValue if self.depth == 0 => break,
                State::AfterValue => self.after_value()?,
            };
        }
        if self.pos < self.input.len() {
            return Err(JsonError::TrailingData { offset: self.pos });
        }
        Ok(())
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn truncated(&self) -> JsonError {
        JsonError::Truncated {
            offset: self.input.len(),
        }
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    fn writing(&self) -> bool {
        self.skip == 0
    }

    fn in_object(&self) -> bool {
        self.depth > 0 && self.objects & (1 << (self.depth - 1)) != 0
    }

    /// One value at `pos`.
    fn value(&mut self, action: FieldAction<'p>) -> Result<State<'p>, JsonError> {
        let start = self.pos;
        let end = match self.peek() {
            None => return Err(self.truncated()),
            Some(b @ (b'{' | b'[')) => return self.open(b, action),
            Some(b'"') => {
                self.string_value(action)?;
                return Ok(State::AfterValue);
            }
            Some(b'-' | b'0'..=b'9') => scan_number(self.input, start)?,
            Some(b't') => scan_literal(self.input, start, b"true")?,
            Some(b'f') => scan_literal(self.input, start, b"false")?,
            Some(b'n') => scan_literal(self.input, start, b"null")?,
            Some(_) => return Err(JsonError::UnexpectedByte { offset: start }),
        };
        self.pos = end;
        if self.writing() {
            match action {
                FieldAction::Keep => self
                    .out
                    .extend_from_slice(self.input.get(start..end).unwrap_or_default()),
                FieldAction::Redact(placeholder) => write_escaped(self.out, placeholder),
            }
        }
        Ok(State::AfterValue)
    }

    /// `{` or `[` at `pos`.
    fn open(&mut self, bracket: u8, action: FieldAction<'p>) -> Result<State<'p>, JsonError> {
        if self.depth >= MAX_JSON_DEPTH {
            return Err(JsonError::TooDeep { offset: self.pos });
        }
        let bit = 1u128 << self.depth;
        let object = bracket == b'{';
        if object {
            self.objects |= bit;
        } else {
            self.objects &= !bit;
        }
        self.depth += 1;
        self.pos += 1;
        if self.writing() {
            match action {
                FieldAction::Keep => self.out.push(bracket),
                FieldAction::Redact(placeholder) => {
                    write_escaped(self.out, placeholder);
                    self.skip = self.depth;
                }
            }
        }
        Ok(if object {
            State::FirstKey
        } else {
            State::FirstElement
        })
    }

    /// The closing bracket at `pos`, already checked to match the open container.
    fn close(&mut self, bracket: u8) -> State<'p> {
        if self.writing() {
            self.out.push(bracket);
        } else if self.skip == self.depth {
            // The end of the redacted container: its placeholder is already written.
            self.skip = 0;
        }
        self.depth -= 1;
        self.pos += 1;
        State::AfterValue
    }

    /// After a value inside a container: `,` or the matching closing bracket.
    fn after_value(&mut self) -> Result<State<'p>, JsonError> {
        let object = self.in_object();
        match self.peek() {
            None => Err(self.truncated()),
            Some(b',') => {
                self.pos += 1;
                if self.writing() {
                    self.out.push(b',');
                }
                Ok(if object {
                    State::Key
                } else {
                    State::Value(FieldAction::Keep)
                })
            }
            Some(b'}') if object => Ok(self.close(b'}')),
            Some(b']') if !object => Ok(self.close(b']')),
            Some(_) => Err(JsonError::UnexpectedByte { offset: self.pos }),
        }
    }

    /// A member's key and its `:`; returns what to do with the member's value.
    fn member_key(&mut self) -> Result<FieldAction<'p>, JsonError> {
        match self.peek() {
            None => return Err(self.truncated()),
            Some(b'"') => {}
            Some(_) => return Err(JsonError::UnexpectedByte { offset: self.pos }),
        }
        let open = self.pos;
        let action = if let Some(raw) = plain_string(self.input, open) {
            self.pos = open + raw.len() + 2;
            let slots = self.memo.slots(raw);
            if let Some(action) = self.memo.key(self.input, raw, slots) {
                if self.writing() {
                    write_plain(self.out, raw);
                }
                action
            } else {
                let key = checked_str(raw, open + 1)?;
                if self.writing() {
                    let (action, unchanged) = scrub_key(self.policy, self.out, key, true);
                    if unchanged {
                        self.memo.remember_key(slots, open + 1, raw.len(), action);
                    }
                    action
                } else {
                    FieldAction::Keep
                }
            }
        } else {
            let (key, _) = read_string(self.input, &mut self.pos, &mut self.scratch)?;
            // (`self.skip` directly: `key` borrows `self.scratch`.)
            if self.skip == 0 {
                scrub_key(self.policy, self.out, key, false).0
            } else {
                FieldAction::Keep
            }
        };
        self.skip_whitespace();
        match self.peek() {
            None => Err(self.truncated()),
            Some(b':') => {
                self.pos += 1;
                if self.writing() {
                    self.out.push(b':');
                }
                Ok(action)
            }
            Some(_) => Err(JsonError::UnexpectedByte { offset: self.pos }),
        }
    }

    /// A string value at `pos`.
    fn string_value(&mut self, action: FieldAction<'p>) -> Result<(), JsonError> {
        let open = self.pos;
        let Some(raw) = plain_string(self.input, open) else {
            let (text, plain) = read_string(self.input, &mut self.pos, &mut self.scratch)?;
            // (`self.skip` directly: `text` borrows `self.scratch`.)
            if self.skip == 0 {
                scrub_value(self.policy, self.out, text, plain, action);
            }
            return Ok(());
        };
        self.pos = open + raw.len() + 2;
        let slots = self.memo.slots(raw);
        if matches!(action, FieldAction::Keep) && self.memo.clean(self.input, raw, slots) {
            if self.writing() {
                write_plain(self.out, raw);
            }
            return Ok(());
        }
        let text = checked_str(raw, open + 1)?;
        if self.writing()
            && scrub_value(self.policy, self.out, text, true, action)
            && raw.len() <= MEMO_MAX_VALUE
        {
            self.memo.remember_clean(slots, open + 1, raw.len());
        }
        Ok(())
    }
}

/// The shortest input that gets a memo, in bytes.
pub(crate) const MEMO_MIN_INPUT: usize = 2048;
/// Input bytes per memo slot: tables grow with the input, from 64 to 512 slots.
const MEMO_BYTES_PER_SLOT: usize = 32;
/// The most slots in a memo table: `1 << MEMO_MAX_BITS`.
const MEMO_MAX_BITS: u32 = 9;
/// The longest string value the memo remembers, in bytes.
const MEMO_MAX_VALUE: usize = 64;

/// Decisions already taken during one call, so that repeated keys and values (a Plaid response
/// repeats every key for each transaction) are checked and scrubbed once.
///
/// Each string may sit in one of two slots chosen by its hash, and a slot holds a position in
/// the input, so there is nothing to allocate per string, a collision only costs a miss, and no
/// input can make a lookup slow (two comparisons at most). Only non-empty strings spelled
/// without escapes that the value rules left unchanged are remembered: a hit is byte-equal to a
/// string already checked (UTF-8, no control characters) and found clean, so it is copied
/// through as it stands. Inputs under [`MEMO_MIN_INPUT`] get no tables (setting them up would
/// cost more than it saves); lookups then simply miss.
struct Memo<'p> {
    /// Each table has `1 << bits` slots (none when 0).
    bits: u32,
    /// Keys: position and length in the input, and the field decision.
    keys: Vec<(usize, usize, FieldAction<'p>)>,
    /// Values kept as they are under [`FieldAction::Keep`]: position and length.
    values: Vec<(usize, usize)>,
}

impl<'p> Memo<'p> {
    fn new(input_len: usize) -> Self {
        let bits = if input_len >= MEMO_MIN_INPUT {
            (input_len / MEMO_BYTES_PER_SLOT).ilog2().min(MEMO_MAX_BITS)
        } else {
            0
        };
        let slots = if bits == 0 { 0 } else { 1 << bits };
        Memo {
            bits,
            keys: vec![(0, 0, FieldAction::Keep); slots],
            values: vec![(0, 0); slots],
        }
    }

    /// The two slots where `bytes` may sit, from a multiplicative hash of the length and three
    /// 8-byte windows (head, middle, tail).
    fn slots(&self, bytes: &[u8]) -> [usize; 2] {
        if self.bits == 0 {
            return [0, 0];
        }
        let len = bytes.len();
        let word = |chunk: Option<&[u8; 8]>| chunk.map_or(0, |w| u64::from_le_bytes(*w));
        let mixed = if len >= 8 {
            word(bytes.first_chunk())
                ^ word(bytes.get(len / 2 - 4..).and_then(<[u8]>::first_chunk)).rotate_left(21)
                ^ word(bytes.last_chunk()).rotate_left(42)
        } else {
            bytes.iter().fold(0, |w, &b| w << 8 | u64::from(b))
        };
        let hash =
            (mixed ^ u64::try_from(len).unwrap_or_default()).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mask = (1 << self.bits) - 1;
        let slot = |bits: u64| usize::try_from(bits & mask).unwrap_or_default();
        [
            slot(hash >> (64 - self.bits)),
            slot(hash >> (64 - 2 * self.bits)),
        ]
    }

    /// The decision remembered for the key `raw`.
    fn key(&self, input: &[u8], raw: &[u8], slots: [usize; 2]) -> Option<FieldAction<'p>> {
        slots.iter().find_map(|&slot| {
            self.keys
                .get(slot)
                .filter(|&&(at, len, _)| same(input, at, len, raw))
                .map(|&(_, _, action)| action)
        })
    }

    fn remember_key(&mut self, slots: [usize; 2], at: usize, len: usize, action: FieldAction<'p>) {
        let slot = pick_slot(slots, |slot| self.keys.get(slot).map(|entry| entry.1));
        if let Some(entry) = self.keys.get_mut(slot) {
            *entry = (at, len, action);
        }
    }

    /// Whether the value `raw` is known to come through the value rules unchanged.
    fn clean(&self, input: &[u8], raw: &[u8], slots: [usize; 2]) -> bool {
        slots.iter().any(|&slot| {
            self.values
                .get(slot)
                .is_some_and(|&(at, len)| same(input, at, len, raw))
        })
    }

    fn remember_clean(&mut self, slots: [usize; 2], at: usize, len: usize) {
        let slot = pick_slot(slots, |slot| self.values.get(slot).map(|entry| entry.1));
        if let Some(entry) = self.values.get_mut(slot) {
            *entry = (at, len);
        }
    }
}

/// The first of two slots that is free (its entry's length is 0), else the first.
fn pick_slot(slots: [usize; 2], len_at: impl Fn(usize) -> Option<usize>) -> usize {
    let [first, second] = slots;
    if len_at(first) != Some(0) && len_at(second) == Some(0) {
        second
    } else {
        first
    }
}

/// Whether the memo entry `input[at..at + len]` is `raw`. Empty entries never match.
fn same(input: &[u8], at: usize, len: usize, raw: &[u8]) -> bool {
    len != 0
        && len == raw.len()
        && input.get(at..at + len).is_some_and(|stored| {
            // Up to 16 bytes: two overlapping 8-byte words, without a call to `memcmp`.
            match (stored.first_chunk::<8>(), stored.last_chunk::<8>()) {
                (Some(head), Some(tail)) if len <= 16 => {
                    raw.first_chunk::<8>() == Some(head) && raw.last_chunk::<8>() == Some(tail)
                }
                _ => stored == raw,
            }
        })
}

/// The contents of the string whose opening quote is at `open`, if it has no backslash (not yet
/// checked for UTF-8 or control characters). `None` for a string with escapes and for an
/// unterminated one, which [`read_string`] then reads or reports.
fn plain_string(input: &[u8], open: usize) -> Option<&[u8]> {
    let tail = input.get(open + 1..)?;
    let stop = find_quote_or_backslash(tail)?;
    (tail.get(stop) == Some(&b'"'))
        .then(|| tail.get(..stop))
        .flatten()
}

/// The offset of the first `"` or `\` in `bytes`. Most strings in API payloads are short, so
/// the first 32 bytes are checked eight at a time in a register before calling `memchr`.
fn find_quote_or_backslash(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte of `w` that equals `b`; the lowest one set is exact.
    let equal = |w: u64, b: u8| {
        let x = w ^ (ONES * u64::from(b));
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    let mut at = 0;
    while at < 32 {
        let Some(chunk) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) else {
            break;
        };
        let w = u64::from_le_bytes(*chunk);
        let hits = equal(w, b'"') | equal(w, b'\\');
        if hits != 0 {
            return Some(at + usize::try_from(hits.trailing_zeros() / 8).unwrap_or_default());
        }
        at += 8;
    }
    memchr::memchr2(b'"', b'\\', bytes.get(at..)?).map(|i| at + i)
}

/// Writes the scrubbed `key` and decides its member. Returns the decision, and whether the key
/// came through unchanged.
fn scrub_key<'p>(
    policy: &'p Policy,
    out: &mut Vec<u8>,
    key: &str,
    plain: bool,
) -> (FieldAction<'p>, bool) {
    let scrubbed = policy.scrub_text(key);
    // Decide on the key as written and, if the value rules changed it, as written out: a
    // second pass sees only the latter, so this keeps scrubbing idempotent.
    let action = match policy.field(key) {
        FieldAction::Keep if matches!(scrubbed, Cow::Owned(_)) => policy.field(&scrubbed),
        action => action,
    };
    match scrubbed {
        Cow::Borrowed(key) => {
            write_str(out, key, plain);
            (action, true)
        }
        Cow::Owned(key) => {
            write_escaped(out, &key);
            (action, false)
        }
    }
}

/// Writes a string value as `action` says. Returns whether it was kept unchanged.
fn scrub_value(
    policy: &Policy,
    out: &mut Vec<u8>,
    text: &str,
    plain: bool,
    action: FieldAction<'_>,
) -> bool {
    match action {
        // Already a placeholder: keep it, so that scrubbing twice equals scrubbing once.
        FieldAction::Redact(_) if is_placeholder(text) => write_str(out, text, plain),
        FieldAction::Redact(placeholder) => write_escaped(out, placeholder),
        FieldAction::Keep => match policy.scrub_text(text) {
            Cow::Borrowed(text) => {
                write_str(out, text, plain);
                return true;
            }
            Cow::Owned(text) => write_escaped(out, &text),
        },
    }
    false
}

/// Reads the string whose opening quote is at `*pos`, moves `*pos` past its closing quote and
/// returns its contents, and whether the input spelled them without escapes (then they need
/// none on output either: no quote, backslash or control character).
fn read_string<'t>(
    input: &'t [u8],
    pos: &mut usize,
    scratch: &'t mut String,
) -> Result<(&'t str, bool), JsonError> {
    let open = *pos;
    let unterminated = JsonError::UnterminatedString { offset: open };
    let mut at = open + 1;
    let tail = input.get(at..).unwrap_or_default();
    let mut stop = memchr::memchr2(b'"', b'\\', tail).ok_or(unterminated)?;
    if tail.get(stop) == Some(&b'"') {
        let text = checked_str(tail.get(..stop).unwrap_or_default(), at)?;
        *pos = at + stop + 1;
        return Ok((text, true));
    }
    scratch.clear();
    loop {
        let run = input.get(at..at + stop).unwrap_or_default();
        scratch.push_str(checked_str(run, at)?);
        at += stop;
        if input.get(at) == Some(&b'"') {
            break;
        }
        at = unescape(input, open, at, scratch)?;
        let tail = input.get(at..).unwrap_or_default();
        stop = memchr::memchr2(b'"', b'\\', tail).ok_or(unterminated)?;
    }
    *pos = at + 1;
    Ok((scratch.as_str(), false))
}

/// The bytes of a run between escapes (which starts at `offset`) as a `str`: UTF-8 without
/// control characters. A run can be checked on its own because an escape starts with an ASCII
/// backslash, which never falls inside a multi-byte character.
fn checked_str(run: &[u8], offset: usize) -> Result<&str, JsonError> {
    if let Some(at) = run.iter().position(|&b| b < 0x20) {
        return Err(JsonError::UnexpectedByte {
            offset: offset + at,
        });
    }
    std::str::from_utf8(run).map_err(|e| JsonError::InvalidUtf8 {
        offset: offset + e.valid_up_to(),
    })
}

/// Decodes the escape whose backslash is at `at` (in the string opened at `open`) onto
/// `scratch` and returns the offset after it.
fn unescape(
    input: &[u8],
    open: usize,
    at: usize,
    scratch: &mut String,
) -> Result<usize, JsonError> {
    let bad = JsonError::BadEscape { offset: at };
    let c = match input.get(at + 1) {
        None => return Err(JsonError::UnterminatedString { offset: open }),
        Some(b'"') => '"',
        Some(b'\\') => '\\',
        Some(b'/') => '/',
        Some(b'b') => '\u{8}',
        Some(b'f') => '\u{c}',
        Some(b'n') => '\n',
        Some(b'r') => '\r',
        Some(b't') => '\t',
        Some(b'u') => {
            let high = hex4(input, open, at, at + 2)?;
            if (0xDC00..=0xDFFF).contains(&high) {
                return Err(bad);
            }
            if !(0xD800..=0xDBFF).contains(&high) {
                scratch.push(char::from_u32(high).ok_or(bad)?);
                return Ok(at + 6);
            }
            // A high surrogate must be followed by an escaped low surrogate.
            match (input.get(at + 6), input.get(at + 7)) {
                (None, _) | (Some(b'\\'), None) => {
                    return Err(JsonError::UnterminatedString { offset: open });
                }
                (Some(b'\\'), Some(b'u')) => {}
                _ => return Err(bad),
            }
            let low = hex4(input, open, at, at + 8)?;
            if !(0xDC00..=0xDFFF).contains(&low) {
                return Err(bad);
            }
            let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
            scratch.push(char::from_u32(code).ok_or(bad)?);
            return Ok(at + 12);
        }
        Some(_) => return Err(bad),
    };
    scratch.push(c);
    Ok(at + 2)
}

/// The four hex digits at `from`, part of the escape at `at` in the string opened at `open`.
fn hex4(input: &[u8], open: usize, at: usize, from: usize) -> Result<u32, JsonError> {
    let mut code = 0;
    for i in from..from + 4 {
        let digit = match input.get(i) {
            None => return Err(JsonError::UnterminatedString { offset: open }),
            Some(&b) => char::from(b)
                .to_digit(16)
                .ok_or(JsonError::BadEscape { offset: at })?,
        };
        code = code << 4 | digit;
    }
    Ok(code)
}

/// Checks the number starting at `start` (RFC 8259 grammar) and returns the offset after it.
fn scan_number(input: &[u8], start: usize) -> Result<usize, JsonError> {
    let mut at = start;
    if input.get(at) == Some(&b'-') {
        at += 1;
    }
    match input.get(at) {
        Some(b'0') => at += 1,
        Some(b'1'..=b'9') => at = skip_digits(input, at),
        _ => return Err(missing_digit(input, at)),
    }
    if input.get(at) == Some(&b'.') {
        at = digits(input, at + 1)?;
    }
    if let Some(b'e' | b'E') = input.get(at) {
        at += 1;
        if let Some(b'+' | b'-') = input.get(at) {
            at += 1;
        }
        at = digits(input, at)?;
    }
    Ok(at)
}

/// One or more digits at `at`; the offset after them.
fn digits(input: &[u8], at: usize) -> Result<usize, JsonError> {
    match input.get(at) {
        Some(b'0'..=b'9') => Ok(skip_digits(input, at)),
        _ => Err(missing_digit(input, at)),
    }
}

fn skip_digits(input: &[u8], mut at: usize) -> usize {
    while input.get(at).is_some_and(u8::is_ascii_digit) {
        at += 1;
    }
    at
}

fn missing_digit(input: &[u8], at: usize) -> JsonError {
    if at >= input.len() {
        JsonError::Truncated {
            offset: input.len(),
        }
    } else {
        JsonError::UnexpectedByte { offset: at }
    }
}

/// Checks that `word` (`true`, `false` or `null`) stands at `start`; the offset after it.
fn scan_literal(input: &[u8], start: usize, word: &[u8]) -> Result<usize, JsonError> {
    for (i, &expected) in word.iter().enumerate() {
        match input.get(start + i) {
            None => {
                return Err(JsonError::Truncated {
                    offset: input.len(),
                });
            }
            Some(&b) if b != expected => {
                return Err(JsonError::UnexpectedByte { offset: start + i });
            }
            Some(_) => {}
        }
    }
    Ok(start + word.len())
}

/// Writes a string that needs no escapes when `plain`, else escaped.
fn write_str(out: &mut Vec<u8>, text: &str, plain: bool) {
    if plain {
        write_plain(out, text.as_bytes());
    } else {
        write_escaped(out, text);
    }
}

/// Writes string contents that need no escapes (checked by the caller) between quotes.
fn write_plain(out: &mut Vec<u8>, raw: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(raw);
    out.push(b'"');
}

/// Writes `text` as a JSON string with minimal escapes: `"`, `\` and control characters.
fn write_escaped(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            0x00..=0x1f => 0,
            _ => continue,
        };
        out.extend_from_slice(bytes.get(start..i).unwrap_or_default());
        if short == 0 {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex_digit(b >> 4), hex_digit(b)]);
        } else {
            out.extend_from_slice(&[b'\\', short]);
        }
        start = i + 1;
    }
    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
    out.push(b'"');
}

/// The lowercase hex digit for the low four bits of `n`.
fn hex_digit(n: u8) -> u8 {
    let n = n & 0x0f;
    if n < 10 { b'0' + n } else { b'a' + n - 10 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrub(input: &str) -> Result<String, JsonError> {
        scrub_json_to_vec(&Policy::plaid(), input.as_bytes())
            .map(|out| String::from_utf8(out).unwrap_or_default())
    }

    #[test]
    fn escapes_round_trip() {
        let input = r#"["a\"b\\c\/d\b\f\n\r\t\u0001\u00e9\ud83d\ude00"]"#;
        assert_eq!(
            scrub(input),
            Ok("[\"a\\\"b\\\\c/d\\b\\f\\n\\r\\t\\u0001\u{e9}\u{1f600}\"]".to_owned())
        );
    }

    #[test]
    fn redacted_containers_are_skipped_whole() {
        assert_eq!(
            scrub(r#"{"secret":{"a":[1,{"b":"c"}],"d":null},"x":[{"account":[1,2]}]}"#),
            Ok(
                r#"{"secret":"[REDACTED:plaid.client_secret]","x":[{"account":"[REDACTED:bank.account_number]"}]}"#
                    .to_owned()
            )
        );
    }

    #[test]
    fn errors_carry_offsets() {
        let cases = [
            ("", JsonError::Truncated { offset: 0 }),
            ("  ", JsonError::Truncated { offset: 2 }),
            ("[1,]", JsonError::UnexpectedByte { offset: 3 }),
            ("{\"a\" 1}", JsonError::UnexpectedByte { offset: 5 }),
            ("[\"abc", JsonError::UnterminatedString { offset: 1 }),
            ("[\"\\x\"]", JsonError::BadEscape { offset: 2 }),
            ("[\"\\ud800\"]", JsonError::BadEscape { offset: 2 }),
            ("[\"\\udc00\"]", JsonError::BadEscape { offset: 2 }),
            ("[\"\\ud800\\u0041\"]", JsonError::BadEscape { offset: 2 }),
            ("[\"\\u12", JsonError::UnterminatedString { offset: 1 }),
            ("1 2", JsonError::TrailingData { offset: 2 }),
            ("[01]", JsonError::UnexpectedByte { offset: 2 }),
            ("-", JsonError::Truncated { offset: 1 }),
            ("1.", JsonError::Truncated { offset: 2 }),
            ("1e+x", JsonError::UnexpectedByte { offset: 3 }),
            ("nul", JsonError::Truncated { offset: 3 }),
            ("nulL", JsonError::UnexpectedByte { offset: 3 }),
            ("[1}", JsonError::UnexpectedByte { offset: 2 }),
            ("{\"a\":1]", JsonError::UnexpectedByte { offset: 6 }),
            ("\"a\u{1}\"", JsonError::UnexpectedByte { offset: 2 }),
        ];
        for (input, want) in cases {
            assert_eq!(scrub(input), Err(want), "{input:?}");
        }
        assert_eq!(
            scrub_json_to_vec(&Policy::plaid(), b"[\"\xff\"]"),
            Err(JsonError::InvalidUtf8 { offset: 2 })
        );
    }

    #[test]
    fn depth_limit_is_serde_json_s() {
        let ok = "[".repeat(MAX_JSON_DEPTH) + &"]".repeat(MAX_JSON_DEPTH);
        assert_eq!(scrub(&ok), Ok(ok.clone()));
        assert!(serde_json::from_str::<serde_json::Value>(&ok).is_ok());
        let deep = "[".repeat(MAX_JSON_DEPTH + 1) + &"]".repeat(MAX_JSON_DEPTH + 1);
        assert_eq!(
            scrub(&deep),
            Err(JsonError::TooDeep {
                offset: MAX_JSON_DEPTH
            })
        );
        assert!(serde_json::from_str::<serde_json::Value>(&deep).is_err());
    }
}
