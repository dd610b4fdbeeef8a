//! Entry points for fuzzers and for the seed-corpus tests: each takes arbitrary bytes and must
//! never panic on them. The `fuzz/` targets are three-line shims over these. A panic here *is*
//! the finding, so these hooks panic where an invariant of the scrubbers breaks:
//!
//! - malformed input gives an error (never a panic) and leaves no output behind;
//! - the JSON scrubber accepts exactly what `serde_json` accepts, and what it writes parses;
//! - scrubbing the output again changes nothing (idempotence), under every policy;
//! - the text scrubber's shortcuts (the anchor search and the screens in front of it) give what
//!   the rule regex over the whole text gives;
//! - a canary planted in the input (a Plaid token built from the fuzz bytes, plain and
//!   `\u`-escaped, as a value, as a key and inside the input; an ABA routing number in text)
//!   never survives.
#![allow(
    clippy::panic,
    reason = "a fuzz hook reports a broken invariant by panicking"
)]

use std::fmt::Write as _;
use std::sync::OnceLock;

use crate::{Fingerprinter, Policy, PolicyBuilder, is_placeholder, scrub_json, scrub_json_to_vec};

/// Scrubs arbitrary bytes as JSON under several policies and checks the scrubber's invariants;
/// then plants canaries in and around the input and checks that none survives.
pub fn json_scrub(data: &[u8]) {
    let policies = policies();
    let parsed = serde_json::from_slice::<serde_json::Value>(data);
    let result = check_json(&policies.plaid, data);
    match (&result, &parsed) {
        (Err(e), Ok(_)) => panic!("rejects JSON that serde_json accepts: {e}"),
        (Ok(_), Err(e)) if !out_of_range(e) => {
            panic!("accepts JSON that serde_json rejects: {e}")
        }
        _ => {}
    }
    if let Ok(out) = &result {
        assert!(
            parsed.is_err() || serde_json::from_slice::<serde_json::Value>(out).is_ok(),
            "output does not parse"
        );
    }
    // Padded with trailing whitespace past the size where the scrubber starts to memoize
    // decisions: the same verdict and the same output.
    let mut padded = data.to_vec();
    padded.resize(data.len().max(crate::json::MEMO_MIN_INPUT) + 1, b' ');
    assert_eq!(
        scrub_json_to_vec(&policies.plaid, &padded).ok(),
        result.as_ref().ok().cloned(),
        "memoizing changed the result"
    );
    // Validation does not depend on the policy: the same input fails the same way.
    for policy in [
        &policies.fingerprinted,
        &policies.allow,
        &policies.allow_none,
    ] {
        let other = check_json(policy, data);
        assert_eq!(
            other.as_ref().err(),
            result.as_ref().err(),
            "the policy changed the verdict"
        );
    }
    if let Ok(out) = scrub_json_to_vec(&policies.allow_none, data) {
        fails_closed(&out);
    }

    let canary = Canary::from(data);
    let text = String::from_utf8_lossy(data);
    let mut planted = Vec::new();
    planted.push(json_doc(&[
        b"{\"note\":\"paid via ",
        canary.token.as_bytes(),
        b" and ~ ",
        canary.routing.as_bytes(),
        b" ~\",\"doc\":",
        data,
        b"}",
    ]));
    planted.push(json_doc(&[
        b"{\"",
        canary.token.as_bytes(),
        b"\":",
        data,
        b"}",
    ]));
    planted.push(json_doc(&[
        b"[",
        data,
        b",\"",
        canary.escaped().as_bytes(),
        b"\"]",
    ]));
    // Inside the input: in a string it must be scrubbed; elsewhere the input stops being JSON.
    let at = canary.position(data.len());
    planted.push(json_doc(&[
        data.get(..at).unwrap_or_default(),
        canary.inline().as_bytes(),
        data.get(at..).unwrap_or_default(),
    ]));
    // The input as text inside a JSON string, escaped by serde_json, canaries planted within.
    let at = canary.char_position(&text);
    let inner = format!(
        "{}{}{}",
        text.get(..at).unwrap_or_default(),
        canary.inline(),
        text.get(at..).unwrap_or_default()
    );
    if let Ok(string) = serde_json::to_string(&inner) {
        planted.push(format!("{{\"text\":{string}}}").into_bytes());
    }
    for doc in &planted {
        if let Ok(out) = check_json(&policies.plaid, doc) {
            canary.assert_absent(&visible_strings(&out), data);
        }
    }
}

/// Scrubs arbitrary bytes (lossily decoded) as free text and checks idempotence, the byte mode's
/// length, and that planted canaries never survive.
pub fn text_scrub(data: &[u8]) {
    let policies = policies();
    let text = String::from_utf8_lossy(data);
    for policy in [&policies.plaid, &policies.fingerprinted] {
        let once = policy.scrub_text(&text);
        let twice = policy.scrub_text(&once);
        assert_eq!(twice, once, "scrubbing text twice differs from once");
        assert_eq!(
            once,
            policy.scrub_text_full_scan(&text),
            "the scrubber's shortcuts changed the result"
        );
    }
    let mut bytes = data.to_vec();
    let _ = policies.plaid.scrub_bytes_in_place(&mut bytes);
    assert_eq!(bytes.len(), data.len(), "byte mode changed the length");

    let canary = Canary::from(data);
    let at = canary.char_position(&text);
    let planted = format!(
        "{}{}{}",
        text.get(..at).unwrap_or_default(),
        canary.inline(),
        text.get(at..).unwrap_or_default()
    );
    let out = policies.plaid.scrub_text(&planted);
    canary.assert_absent(&out, data);
    assert_eq!(
        out,
        policies.plaid.scrub_text_full_scan(&planted),
        "the scrubber's shortcuts changed the result"
    );
    let again = policies.plaid.scrub_text(&out);
    assert_eq!(again, out, "scrubbing planted text twice differs from once");
}

struct Policies {
    plaid: Policy,
    fingerprinted: Policy,
    allow: Policy,
    allow_none: Policy,
}

/// The policies under test, built once.
fn policies() -> &'static Policies {
    static POLICIES: OnceLock<Policies> = OnceLock::new();
    POLICIES.get_or_init(|| {
        let fingerprinter =
            Fingerprinter::new(&[0x42; 32]).unwrap_or_else(|e| panic!("fingerprinter: {e}"));
        let build = |builder: PolicyBuilder| {
            builder
                .build()
                .unwrap_or_else(|e| panic!("fuzz policy: {e}"))
        };
        Policies {
            plaid: Policy::plaid(),
            fingerprinted: build(PolicyBuilder::plaid().fingerprints(fingerprinter)),
            allow: build(PolicyBuilder::plaid().allow_only([
                "transactions",
                "accounts",
                "amount",
                "date",
                "name",
                "merchant_name",
                "access_token",
            ])),
            allow_none: build(PolicyBuilder::plaid().allow_only(Vec::<String>::new())),
        }
    })
}

/// Scrubs `data` under `policy` and checks what holds for every policy: an error leaves no
/// output behind; a success scrubs to itself again.
fn check_json(policy: &Policy, data: &[u8]) -> Result<Vec<u8>, crate::JsonError> {
    let mut out = b"prefix".to_vec();
    let result = scrub_json(policy, data, &mut out);
    if let Err(e) = result {
        assert_eq!(out, b"prefix", "malformed input ({e}) left output behind");
        return Err(e);
    }
    let out = out.split_off(6);
    match scrub_json_to_vec(policy, &out) {
        Ok(again) => assert!(
            again == out,
            "scrubbing twice differs from once:\n once: {}\ntwice: {}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&again)
        ),
        Err(e) => panic!("the scrubber's own output is malformed: {e}"),
    }
    Ok(out)
}

/// Under an empty allow-list, every member of a top-level object is a placeholder.
fn fails_closed(out: &[u8]) {
    if let Ok(serde_json::Value::Object(members)) = serde_json::from_slice(out) {
        for value in members.values() {
            assert!(
                value.as_str().is_some_and(is_placeholder),
                "an empty allow-list let a value through"
            );
        }
    }
}

/// Whether `serde_json` refused the input only for a number it cannot hold (the scrubber copies
/// numbers verbatim and does not convert them).
fn out_of_range(e: &serde_json::Error) -> bool {
    e.to_string().starts_with("number out of range")
}

fn json_doc(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Plaid token types and environments for canaries.
const KINDS: [&str; 7] = [
    "access",
    "public",
    "link",
    "processor",
    "user",
    "payment",
    "transfer",
];
const ENVS: [&str; 3] = ["sandbox", "development", "production"];

/// Secrets built from the fuzz input, to plant and look for.
struct Canary {
    /// A Plaid token, e.g. `access-sandbox-<uuid>`.
    token: String,
    /// The token's identifier: the part that must never be seen again.
    id: String,
    /// A nine-digit ABA routing number (valid checksum and Federal Reserve prefix).
    routing: String,
    /// A byte of the input, to choose positions with.
    pick: usize,
}

impl Canary {
    fn from(data: &[u8]) -> Self {
        let mut raw = [0x5a_u8; 24];
        for (r, d) in raw.iter_mut().zip(data) {
            *r = *d;
        }
        let word = |at: usize| -> [u8; 8] {
            let mut w = [0; 8];
            for (o, r) in w.iter_mut().zip(raw.iter().skip(at)) {
                *o = *r;
            }
            w
        };
        let [a0, a1, a2, a3, b0, b1, c0, c1] = word(0);
        let [d0, d1, e0, e1, e2, e3, e4, e5] = word(8);
        let id = format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            u32::from_be_bytes([a0, a1, a2, a3]),
            u16::from_be_bytes([b0, b1]),
            u16::from_be_bytes([c0, c1]),
            u16::from_be_bytes([d0, d1]),
            u64::from_be_bytes([0, 0, e0, e1, e2, e3, e4, e5]),
        );
        let [k, v, p, r1, r2, r3, r4, r5] = word(16);
        let kind = KINDS.get(usize::from(k) % KINDS.len()).unwrap_or(&"access");
        let env = ENVS.get(usize::from(v) % ENVS.len()).unwrap_or(&"sandbox");
        Canary {
            token: format!("{kind}-{env}-{id}"),
            id,
            routing: routing_number(p, [r1, r2, r3, r4, r5, k]),
            pick: usize::from(data.last().copied().unwrap_or(0)),
        }
    }

    /// The token and the routing number between separators, ready to insert into text.
    fn inline(&self) -> String {
        format!(" {} ~ {} ~ ", self.token, self.routing)
    }

    /// The token with every `-` (and its first letter) written as a `\u` escape.
    fn escaped(&self) -> String {
        let mut out = String::new();
        for (i, c) in self.token.chars().enumerate() {
            if c == '-' || i == 0 {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            } else {
                out.push(c);
            }
        }
        out
    }

    /// A byte position in `0..=len`.
    fn position(&self, len: usize) -> usize {
        (self.pick * 7919) % (len + 1)
    }

    /// A char boundary in `text`.
    fn char_position(&self, text: &str) -> usize {
        let mut at = self.position(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    }

    /// Panics if `visible` (scrubbed text, or the strings of a scrubbed document) shows the
    /// token's identifier or the routing number standing alone, unless the input itself holds
    /// them (the fuzzer learns compared strings and may write the digits as a number, which is
    /// copied verbatim).
    fn assert_absent(&self, visible: &str, input: &[u8]) {
        let in_input = |needle: &str| memchr::memmem::find(input, needle.as_bytes()).is_some();
        assert!(
            in_input(&self.id) || !visible.contains(&self.id),
            "a planted token survived: {}\nvisible: {visible}",
            self.token,
        );
        assert!(
            in_input(&self.routing) || !stands_alone(visible, &self.routing),
            "a planted routing number survived: {}\nvisible: {visible}",
            self.routing,
        );
    }
}

/// Whether `needle` occurs in `hay` without a letter, digit or `_` on either side.
fn stands_alone(hay: &str, needle: &str) -> bool {
    let word = |b: Option<&u8>| b.is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_');
    let bytes = hay.as_bytes();
    memchr::memmem::find_iter(bytes, needle.as_bytes()).any(|at| {
        let before = at.checked_sub(1).and_then(|i| bytes.get(i));
        !word(before) && !word(bytes.get(at + needle.len()))
    })
}

/// The keys and string values of a scrubbed document, decoded, one per line: what a reader of
/// the document sees (escapes such as `\u0000` would otherwise put digits next to digits).
fn visible_strings(out: &[u8]) -> String {
    fn walk(value: &serde_json::Value, text: &mut String) {
        match value {
            serde_json::Value::String(s) => {
                text.push_str(s);
                text.push('\n');
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, text)),
            serde_json::Value::Object(members) => {
                for (key, v) in members {
                    text.push_str(key);
                    text.push('\n');
                    walk(v, text);
                }
            }
            _ => {}
        }
    }
    // Only a number `serde_json` cannot hold stops it; the raw bytes then have to do.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(out) else {
        return String::from_utf8_lossy(out).into_owned();
    };
    let mut text = String::new();
    walk(&value, &mut text);
    text
}

/// A routing number from six bytes: a Federal Reserve prefix, six digits, and the check digit.
fn routing_number(prefix: u8, digits: [u8; 6]) -> String {
    const PREFIXES: [u8; 37] = [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
        61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72,
    ];
    let head = PREFIXES
        .get(usize::from(prefix) % (PREFIXES.len() + 1))
        .copied()
        .unwrap_or(80);
    let mut d = vec![u32::from(head / 10), u32::from(head % 10)];
    d.extend(digits.iter().map(|b| u32::from(b % 10)));
    // 3(d1+d4+d7) + 7(d2+d5+d8) + (d3+d6+d9) ≡ 0 (mod 10).
    let weights = [3, 7, 1, 3, 7, 1, 3, 7];
    let sum: u32 = d.iter().zip(weights).map(|(x, w)| x * w).sum();
    d.push((10 - sum % 10) % 10);
    d.iter()
        .map(|x| char::from(b'0' + u8::try_from(*x).unwrap_or(0)))
        .collect()
}
