//! `tokenward scrub`: stdin to stdout, text (line by line, bounded memory) or JSON.
//!
//! # Long lines
//!
//! A line is normally scrubbed whole. A line longer than [`CHUNK`] is cut: the cut is placed at
//! an ASCII whitespace byte at least [`OVERLAP`] bytes before the end of the buffered part, and
//! only where scrubbing the two sides separately gives exactly what scrubbing the buffer whole
//! gives, which proves that no match in the buffer spans the cut. Everything after the cut
//! stays buffered and is scrubbed again with the bytes that follow, so a secret that starts
//! before the end of one read and ends in the next is still caught. A match would have to be
//! longer than [`OVERLAP`] to begin before a cut and reach past the buffer (no Plaid token,
//! bearer credential or JWT in practice comes close). A long line with no such cut point is
//! refused (exit 5) rather than written unscrubbed.

use std::borrow::Cow;
use std::io::{self, BufWriter, Read, Write};

use tokenward_redact::{JsonError, Policy, scrub_json};

use crate::cli::ScrubArgs;
use crate::failure::{Code, Failure};

/// A line longer than this is cut (bytes).
pub(crate) const CHUNK: usize = 1024 * 1024;
/// How much of the buffer stays behind a cut, to be scrubbed again with what follows.
pub(crate) const OVERLAP: usize = 64 * 1024;
/// Cut points tried per long buffer before giving up.
const MAX_CUT_TRIES: usize = 64;
/// Bytes read at a time.
const READ_SIZE: usize = 64 * 1024;

pub(crate) fn run(args: &ScrubArgs) -> Result<(), Failure> {
    let policy = Policy::plaid();
    let stdin = io::stdin().lock();
    let stdout = BufWriter::new(io::stdout().lock());
    if args.json && args.whole {
        scrub_json_whole(&policy, stdin, stdout, args.max_document_bytes)
    } else if args.json {
        scrub_ndjson(&policy, stdin, stdout, args.max_document_bytes)
    } else {
        scrub_text_stream(&policy, stdin, stdout)
    }
}

/// Scrubs free text from `input` to `output`, line by line, in bounded memory.
pub(crate) fn scrub_text_stream(
    policy: &Policy,
    mut input: impl Read,
    mut output: impl Write,
) -> Result<(), Failure> {
    let mut scrubber = TextScrubber::new(policy);
    let mut buffer = vec![0u8; READ_SIZE];
    loop {
        let read = match input.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Failure::io("could not read stdin", &e)),
        };
        let bytes = buffer.get(..read).unwrap_or_default();
        scrubber.push(bytes, &mut output)?;
    }
    scrubber.finish(&mut output)?;
    output
        .flush()
        .map_err(|e| Failure::io("could not write to stdout", &e))
}

/// The state of a text scrub: the current line (decoded), and up to three bytes of a UTF-8
/// sequence cut by a read.
struct TextScrubber<'p> {
    policy: &'p Policy,
    line: String,
    pending: Vec<u8>,
}

impl<'p> TextScrubber<'p> {
    fn new(policy: &'p Policy) -> Self {
        TextScrubber {
            policy,
            line: String::new(),
            pending: Vec::new(),
        }
    }

    fn push(&mut self, bytes: &[u8], out: &mut impl Write) -> Result<(), Failure> {
        let mut rest = bytes;
        while !rest.is_empty() {
            if let Some(at) = memchr_newline(rest) {
                let (segment, after) = rest.split_at(at);
                self.append(segment);
                // A UTF-8 sequence cannot contain a newline: what is pending is invalid.
                self.flush_pending();
                self.line.push('\n');
                self.emit_line(out)?;
                rest = after.get(1..).unwrap_or_default();
            } else {
                self.append(rest);
                rest = &[];
            }
            while self.line.len() > CHUNK {
                self.emit_prefix(out)?;
            }
        }
        Ok(())
    }

    fn finish(mut self, out: &mut impl Write) -> Result<(), Failure> {
        self.flush_pending();
        if !self.line.is_empty() {
            self.emit_line(out)?;
        }
        Ok(())
    }

    /// Decodes `bytes` (after any pending bytes) into the line; invalid sequences become
    /// U+FFFD, an incomplete one at the end waits for the next read.
    fn append(&mut self, bytes: &[u8]) {
        let joined: Cow<'_, [u8]> = if self.pending.is_empty() {
            Cow::Borrowed(bytes)
        } else {
            let mut joined = std::mem::take(&mut self.pending);
            joined.extend_from_slice(bytes);
            Cow::Owned(joined)
        };
        let mut rest: &[u8] = &joined;
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    self.line.push_str(text);
                    return;
                }
                Err(error) => {
                    let (valid, after) = rest.split_at(error.valid_up_to());
                    self.line
                        .push_str(std::str::from_utf8(valid).unwrap_or_default());
                    let Some(len) = error.error_len() else {
                        self.pending = after.to_vec();
                        return;
                    };
                    self.line.push('\u{fffd}');
                    rest = after.get(len..).unwrap_or_default();
                }
            }
        }
    }

    fn flush_pending(&mut self) {
        if !self.pending.is_empty() {
            self.pending.clear();
            self.line.push('\u{fffd}');
        }
    }

    fn emit_line(&mut self, out: &mut impl Write) -> Result<(), Failure> {
        let scrubbed = self.policy.scrub_text(&self.line);
        write_out(out, scrubbed.as_bytes())?;
        self.line.clear();
        Ok(())
    }

    /// Writes the scrubbed part of a long line before a safe cut and keeps the rest.
    fn emit_prefix(&mut self, out: &mut impl Write) -> Result<(), Failure> {
        let cut = safe_cut(self.policy, &self.line).ok_or_else(|| {
            Failure::new(
                Code::Input,
                format!(
                    "a line longer than {CHUNK} bytes has no safe place to cut it (no whitespace outside a secret-like run); nothing of it was written"
                ),
            )
        })?;
        let (head, _) = self.line.split_at(cut);
        let scrubbed = self.policy.scrub_text(head);
        write_out(out, scrubbed.as_bytes())?;
        self.line.drain(..cut);
        Ok(())
    }
}

/// A cut position in `text` (a long buffer) such that no match spans it, at ASCII whitespace
/// at least [`OVERLAP`] bytes before the end; `None` when no such position is found.
fn safe_cut(policy: &Policy, text: &str) -> Option<usize> {
    let whole = policy.scrub_text(text);
    let limit = text.len().checked_sub(OVERLAP)?;
    let bytes = text.as_bytes();
    let mut tries = 0;
    let mut at = limit;
    while at > 0 && tries < MAX_CUT_TRIES {
        // The next whitespace byte at or before `at` (an ASCII byte: always a char boundary).
        let candidate = bytes
            .get(..=at)
            .and_then(|head| head.iter().rposition(u8::is_ascii_whitespace))?;
        let cut = candidate + 1;
        let (head, tail) = text.split_at(cut);
        let left = policy.scrub_text(head);
        let right = policy.scrub_text(tail);
        if whole.len() == left.len() + right.len()
            && whole.starts_with(left.as_ref())
            && whole.ends_with(right.as_ref())
        {
            return Some(cut);
        }
        tries += 1;
        // Step back past this run, by at least a little, to find another candidate.
        at = candidate.checked_sub(1 + (limit - candidate.min(limit)) / 8)?;
    }
    None
}

/// NDJSON: every line is one JSON document, scrubbed; blank lines pass through.
fn scrub_ndjson(
    policy: &Policy,
    input: impl Read,
    mut output: impl Write,
    max: usize,
) -> Result<(), Failure> {
    let mut reader = io::BufReader::with_capacity(READ_SIZE, input);
    let mut line = Vec::new();
    let mut number = 0u64;
    let mut scrubbed = Vec::new();
    loop {
        line.clear();
        number += 1;
        let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(2);
        let read = io::BufRead::read_until(&mut (&mut reader).take(limit), b'\n', &mut line)
            .map_err(|e| Failure::io("could not read stdin", &e))?;
        if read == 0 {
            break;
        }
        let ended = line.last() == Some(&b'\n');
        let document = trim_line_end(&line);
        if document.len() > max {
            return Err(Failure::new(
                Code::Input,
                format!(
                    "line {number}: the JSON document is larger than {max} bytes (--max-document-bytes)"
                ),
            ));
        }
        if document.iter().all(u8::is_ascii_whitespace) {
            write_out(&mut output, &line)?;
            continue;
        }
        scrubbed.clear();
        scrub_json(policy, document, &mut scrubbed).map_err(|e| json_failure(&e, Some(number)))?;
        if ended {
            scrubbed.push(b'\n');
        }
        write_out(&mut output, &scrubbed)?;
    }
    output
        .flush()
        .map_err(|e| Failure::io("could not write to stdout", &e))
}

/// All of stdin is one JSON document.
fn scrub_json_whole(
    policy: &Policy,
    input: impl Read,
    mut output: impl Write,
    max: usize,
) -> Result<(), Failure> {
    let mut document = Vec::new();
    input
        .take(u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut document)
        .map_err(|e| Failure::io("could not read stdin", &e))?;
    if document.len() > max {
        return Err(Failure::new(
            Code::Input,
            format!("the JSON document is larger than {max} bytes (--max-document-bytes)"),
        ));
    }
    let mut scrubbed = Vec::new();
    scrub_json(policy, trim_line_end(&document), &mut scrubbed)
        .map_err(|e| json_failure(&e, None))?;
    scrubbed.push(b'\n');
    write_out(&mut output, &scrubbed)?;
    output
        .flush()
        .map_err(|e| Failure::io("could not write to stdout", &e))
}

fn json_failure(error: &JsonError, line: Option<u64>) -> Failure {
    let context = match line {
        Some(n) => format!("malformed JSON on line {n} (nothing of it was written)"),
        None => "malformed JSON (nothing was written)".to_owned(),
    };
    Failure::caused(Code::Input, &context, error)
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| !matches!(b, b'\n' | b'\r'))
        .map_or(0, |i| i + 1);
    line.get(..end).unwrap_or_default()
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

fn write_out(out: &mut impl Write, bytes: &[u8]) -> Result<(), Failure> {
    out.write_all(bytes)
        .map_err(|e| Failure::io("could not write to stdout", &e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    const TOKEN: &str = "access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6";

    /// Feeds `input` in reads of `step` bytes.
    fn scrub_in_steps(input: &[u8], step: usize) -> Result<Vec<u8>, Failure> {
        let policy = Policy::plaid();
        let mut scrubber = TextScrubber::new(&policy);
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            scrubber.push(piece, &mut out)?;
        }
        scrubber.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn a_token_split_across_reads_is_caught() {
        let line = format!("start {TOKEN} end\nnext {TOKEN}");
        for step in [1, 2, 7, 13, 64] {
            let out = String::from_utf8(scrub_in_steps(line.as_bytes(), step).unwrap()).unwrap();
            assert!(!out.contains("de3ce8ef"), "step {step}: {out}");
            assert_eq!(out.matches("[REDACTED:plaid.access_token]").count(), 2);
        }
    }

    #[test]
    fn a_huge_line_is_cut_safely_and_every_token_in_it_is_caught() {
        // Tokens every ~10 KB, including across every chunk boundary, and a bearer
        // credential whose "Bearer " and value could be split by a naive cut.
        let mut line = String::new();
        let mut planted = 0;
        while line.len() < 5 * CHUNK {
            line.push_str(&"word ".repeat(2000));
            line.push_str(TOKEN);
            line.push_str(" Authorization: Bearer sk9Xq2LmN8pR4tV7wY1zB3cD ");
            planted += 1;
        }
        line.push('\n');
        let out = String::from_utf8(scrub_in_steps(line.as_bytes(), 65_536).unwrap()).unwrap();
        assert!(!out.contains("de3ce8ef"));
        assert!(!out.contains("sk9Xq2LmN8pR4tV7wY1zB3cD"));
        assert_eq!(
            out.matches("[REDACTED:plaid.access_token]").count(),
            planted
        );
        assert_eq!(out, Policy::plaid().scrub_text(&line));
    }

    #[test]
    fn a_huge_line_without_a_safe_cut_is_refused() {
        let line = "x".repeat(2 * CHUNK);
        let failure = scrub_in_steps(line.as_bytes(), 65_536).err().unwrap();
        assert_eq!(failure.code(), Code::Input);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        let out = scrub_in_steps(b"ok \xff\xfe \xe2\x82\n\xe2\x82\xac", 1).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ok \u{fffd}\u{fffd} \u{fffd}\n\u{20ac}"
        );
    }

    #[test]
    fn malformed_ndjson_is_an_error_and_is_not_passed_through() {
        let policy = Policy::plaid();
        let input = format!("{{\"a\":1}}\n\n{{\"access_token\":\"{TOKEN}\"\n");
        let mut out = Vec::new();
        let failure = scrub_ndjson(&policy, input.as_bytes(), &mut out, 1024)
            .err()
            .unwrap();
        assert_eq!(failure.code(), Code::Input);
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out, "{\"a\":1}\n\n");
    }
}
