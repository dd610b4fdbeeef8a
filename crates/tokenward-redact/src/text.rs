//! The value rules and the free-text scrubber.
//!
//! All value rules except one are compiled into a single regular expression. Every built-in
//! rule contains one of a few rare *anchor* literals (`-sandbox-`, `-production-`, `earer`,
//! `eyJ`, `ecret`, …); one SIMD multi-literal search (aho-corasick's Teddy) finds the anchors,
//! and the regex runs only from just before each anchor, so clean text is read once at
//! literal-search speed. With custom patterns, whose anchors we cannot know, the regex runs
//! over the whole text instead.
//!
//! Free-text routing numbers have no literal at all (any digit could begin one), so they are
//! found by a separate scan that classifies eight bytes at a time and only stops at runs of
//! nine digits, confirmed by the ABA checksum and the Federal Reserve prefix ranges.
//!
//! Short strings (the values of a serialized struct) are mostly settled before any search, by
//! two screens that each prove a necessary condition false:
//!
//! - [`certainly_clean`]: under nine bytes, or only letters, digits and `_`;
//! - no three-byte piece of any anchor, so no anchor and no rule match, and then no digit,
//!   no nine in a row, or no routing number.
//!
//! Up to [`SCREEN_MAX_LEN`] bytes, one pass of [`AnchorScreen`] (a branch-free shift-or
//! automaton, one table row a byte, two bytes a step; the multi-literal search costs more than that on short
//! text) finds the pieces and whether the text has a non-word byte and a digit; longer text is
//! tested for word bytes eight at a time. Both run in one out-of-line call,
//! [`Anchors::settle`], which the redacting serializer asks first so that clean strings are
//! written straight through.
//!
//! Either way the result is exactly what the anchored search gives; the fuzz hooks and a
//! property test check it against the full regex scan.

use std::borrow::Cow;
use std::fmt::Write as _;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::{Captures, Regex, RegexBuilder};

use crate::policy::Rule;
use crate::{Fingerprinter, Tag, is_placeholder};

/// Identifier characters after a Plaid token's `<type>-<env>-`.
const TOKEN_ID: &str = "[0-9A-Za-z][0-9A-Za-z-]{4,99}";
const ENVS: &str = "(?:sandbox|development|production)";

/// The built-in value rules: (tag, pattern). A pattern with a group named `v` redacts only that
/// group (the value after a key, the credential after `Bearer`); otherwise the whole match.
fn builtin_rules() -> Vec<(Tag, String)> {
    let kv =
        |keys: &str, value: &str| format!(r#"(?:{keys})["']?[ \t]*[:=][ \t]*["']?(?P<v>{value})"#);
    vec![
        (Tag::ACCESS_TOKEN, format!("access-{ENVS}-{TOKEN_ID}")),
        (Tag::PUBLIC_TOKEN, format!("public-{ENVS}-{TOKEN_ID}")),
        (Tag::LINK_TOKEN, format!("link-{ENVS}-{TOKEN_ID}")),
        (Tag::PROCESSOR_TOKEN, format!("processor-{ENVS}-{TOKEN_ID}")),
        (
            Tag::PLAID_TOKEN,
            format!(
                "(?:user|payment-token|payment|transfer|assets|audit-copy|credit|consumer|investments)-{ENVS}-{TOKEN_ID}"
            ),
        ),
        (Tag::BEARER, "(?:Bearer|bearer|BEARER)[ \t]+(?P<v>[A-Za-z0-9._~+/-]{8,}=*)".to_owned()),
        (
            Tag::AUTHORIZATION,
            "(?:Authorization|authorization|AUTHORIZATION)[\"']?[ \t]*[:=][ \t]*[\"']?(?:Basic|basic|BASIC)[ \t]+(?P<v>[A-Za-z0-9+/]{4,}={0,2})"
                .to_owned(),
        ),
        (Tag::JWT, "eyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]*".to_owned()),
        (
            Tag::CLIENT_SECRET,
            kv(
                "PLAID-SECRET|Plaid-Secret|plaid-secret|PLAID_SECRET|plaid_secret|client_secret|clientSecret|\"secret\"|'secret'|secret",
                "[A-Za-z0-9_-]{8,128}",
            ),
        ),
        (
            Tag::CLIENT_ID,
            kv(
                "PLAID-CLIENT-ID|Plaid-Client-Id|plaid-client-id|PLAID_CLIENT_ID|plaid_client_id|client_id|clientId",
                "[A-Za-z0-9]{8,64}",
            ),
        ),
        (
            Tag::ACCOUNT_NUMBER,
            r#""(?:account|account_number|accountNumber)"[ \t]*:[ \t]*"(?P<v>[0-9A-Za-z]{4,17})""#
                .to_owned(),
        ),
        (
            Tag::ROUTING_NUMBER,
            r#""(?:routing|wire_routing|routing_number|routingNumber|wireRouting)"[ \t]*:[ \t]*"(?P<v>[0-9]{9})""#
                .to_owned(),
        ),
    ]
}

/// Literals of which every built-in rule's match contains at least one (the rule tests cover
/// each). How far before its anchor a match can start is [`ANCHOR_LOOKBACK`].
const ANCHORS: &[&str] = &[
    "-sandbox-",
    "-development-",
    "-production-",
    "earer",
    "EARER",
    "uthorization",
    "UTHORIZATION",
    "eyJ",
    "ecret",
    "ECRET",
    "lient_id",
    "lient-id",
    "lient-Id",
    "lientId",
    "LIENT-ID",
    "LIENT_ID",
    "ccount\"",
    "ccount_number\"",
    "ccountNumber\"",
    "outing\"",
    "outing_number\"",
    "outingNumber\"",
];

/// The most bytes a built-in match can start before its anchor (`"payment-token` before
/// `-sandbox-` is the longest), with room to spare.
const ANCHOR_LOOKBACK: usize = 24;
/// How far past a match the search for a match overlapping it looks before it retries on the
/// whole rest.
const OVERLAP_WINDOW: usize = 256;
/// How much text after an anchor one regex search looks at before it retries on the whole rest.
const ANCHOR_WINDOW: usize = 2048;

/// Three-byte pieces of the [`ANCHORS`], matched without regard to ASCII case: every anchor
/// contains at least one, so text that holds none of them holds no anchor. Chosen to be rare
/// in Plaid data and logs (not `_id`, `-s`, `acc`); [`AnchorScreen::new`] checks the cover and
/// adds a piece for any anchor left out.
const ANCHOR_FRAGMENTS: &[[u8; 3]] = &[
    *b"ndb",  // -sandbox-
    *b"opm",  // -development-
    *b"-pr",  // -production-
    *b"rer",  // earer, EARER
    *b"riz",  // uthorization, UTHORIZATION
    *b"eyj",  // eyJ
    *b"ecr",  // ecret, ECRET
    *b"ien",  // lient_id, lient-id, lient-Id, lientId, LIENT-ID, LIENT_ID
    *b"nt\"", // ccount"
    *b"er\"", // ccount_number", ccountNumber", outing_number", outingNumber"
    *b"ng\"", // outing"
];

/// Text longer than this goes straight to the anchor search, which is faster on long text than
/// the byte-at-a-time screen.
const SCREEN_MAX_LEN: usize = 128;

/// The anchor literals of the built-in rules: a multi-literal search, and a cheaper screen that
/// proves short text free of them.
struct Anchors {
    search: AhoCorasick,
    /// `None` if the anchors could not be covered by 12 three-byte pieces.
    screen: Option<AnchorScreen>,
    /// Text shorter than this holds no match of a built-in rule but a free-text routing number:
    /// the shortest text any other rule's pattern matches (measured on the patterns when the
    /// rules are built), at most [`SHORT_TEXT_MAX`].
    shortest_anchored: usize,
}

/// The longest text [`short_routing_only`] settles by two of its bytes.
const SHORT_TEXT_MAX: usize = 16;

impl Anchors {
    /// How the built-in rules must search `bytes`, or `None` when they certainly leave it
    /// unchanged, in the cheapest test that can tell: text too short for any rule but a
    /// routing number by two of its bytes; ids and codes (letters, digits and `_` only) by a
    /// sixteen-bytes-a-step word test; other text up to [`SCREEN_MAX_LEN`] bytes by the screen
    /// proving that no anchor, hence no rule match, is in it, which leaves only a routing
    /// number, which needs nine digits; longer text by its bytes ([`certainly_clean`]). Out of
    /// line and a leaf (the routing check aside), so the many inlined callers stay small and
    /// the call is cheap.
    #[inline(never)]
    fn settle(&self, bytes: &[u8]) -> Option<Search> {
        // Length first: text too short for any rule but a routing number needs no screen.
        if bytes.len() < self.shortest_anchored {
            return short_routing_only(bytes);
        }
        if bytes.len() > SCREEN_MAX_LEN {
            return settle_unscreened(bytes);
        }
        // Ids, codes and enum names: only letters, digits and `_`, which no rule matches in
        // text this long (see `certainly_clean`), sixteen bytes a step; other text shows
        // another byte in its first sixteen.
        if word_only(bytes) {
            return None;
        }
        let Some(screen) = &self.screen else {
            return settle_unscreened(bytes);
        };
        let scan = screen.scan(bytes);
        // Only letters, digits and `_`: clean unless exactly nine digits (see
        // `certainly_clean`), which hold no piece and go on to the routing check.
        if !(scan.non_word || bytes.len() == 9 && bytes.iter().all(u8::is_ascii_digit)) {
            return None;
        }
        if scan.piece {
            return Some(Search::Rules);
        }
        // No anchor: only a routing number is left, and it needs digits.
        if !scan.digit {
            return None;
        }
        routing_only(bytes)
    }
}

/// [`word_only`] for sixteen bytes or more: sixteen bytes a step, stopping at the first step
/// with another byte (`false` for shorter text).
#[inline]
fn word_only_wide(bytes: &[u8]) -> bool {
    let Some(last) = bytes.last_chunk::<16>() else {
        return false;
    };
    let mut chunks = bytes.chunks_exact(16);
    for chunk in &mut chunks {
        if let Ok(chunk) = <[u8; 16]>::try_from(chunk)
            && !word_block(chunk)
        {
            return false;
        }
    }
    // The last sixteen bytes, overlapping those already tested.
    chunks.remainder().is_empty() || word_block(*last)
}

/// Whether sixteen bytes are all ASCII letters, digits or `_`, in a few vector instructions.
#[inline]
fn word_block(chunk: [u8; 16]) -> bool {
    use wide::u8x16;
    let v = u8x16::from(chunk);
    let zero = u8x16::splat(0);
    // `x - lo` wraps below `lo`, so one unsigned compare tests `lo..=lo + span`.
    let within = |x: u8x16, lo: u8, span: u8| {
        (x - u8x16::splat(lo))
            .saturating_sub(u8x16::splat(span))
            .cmp_eq(zero)
    };
    // Setting bit 5 folds `A-Z` onto `a-z`; no other byte lands in `a-z`.
    let word = within(v | u8x16::splat(0x20), b'a', 25)
        | within(v, b'0', 9)
        | v.cmp_eq(u8x16::splat(b'_'));
    word.all()
}

/// The length of the shortest text any of `rules` matches, from their parsed patterns.
fn shortest_match(rules: &[(Tag, String)]) -> Result<usize, String> {
    rules.iter().try_fold(usize::MAX, |shortest, (_, pattern)| {
        let hir = regex_syntax::Parser::new()
            .parse(pattern)
            .map_err(|e| e.to_string())?;
        Ok(shortest.min(hir.properties().minimum_len().unwrap_or(0)))
    })
}

/// [`Anchors::settle`] for text of at most [`SHORT_TEXT_MAX`] bytes that no rule but the routing
/// number can match. A routing number is nine digits in a row, and in text of 9 to 16 bytes
/// every nine bytes in a row include the eighth and the ninth (they start at the eighth byte
/// or before and end at the ninth or after): unless both are digits, there is none.
#[inline]
fn short_routing_only(bytes: &[u8]) -> Option<Search> {
    if bytes.len() <= SHORT_TEXT_MAX && !eighth_and_ninth_digits(bytes) {
        return None;
    }
    routing_only(bytes)
}

/// Whether the eighth and ninth bytes are both ASCII digits (`false` under nine bytes, where
/// there are no such two bytes, and no routing number either).
#[inline]
fn eighth_and_ninth_digits(bytes: impl AsRef<[u8]>) -> bool {
    matches!(
        bytes.as_ref().get(7..9),
        Some([b7, b8]) if b7.is_ascii_digit() && b8.is_ascii_digit()
    )
}

/// [`Anchors::settle`] for text that holds no anchor: only a routing number is left, rare
/// enough to be found in full here. Out of line, so the common path keeps few registers.
#[inline(never)]
fn routing_only(bytes: &[u8]) -> Option<Search> {
    if !nine_digit_run(bytes) {
        return None;
    }
    // Last, and its answer as it is: the call is a jump, nothing needs saving around it.
    routing_number_search(bytes)
}

/// [`Anchors::settle`] for text the screen does not take (too long, or no screen): by its bytes
/// alone. Out of line, so the common path keeps few registers.
#[inline(never)]
fn settle_unscreened(bytes: &[u8]) -> Option<Search> {
    (!certainly_clean(bytes)).then_some(Search::Rules)
}

/// What [`AnchorScreen::scan`] found in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Scan {
    /// One of the pieces, hence maybe an anchor.
    piece: bool,
    /// A byte other than an ASCII letter, digit or `_`.
    non_word: bool,
    /// An ASCII digit.
    digit: bool,
}

/// A test for "contains one of up to 12 three-byte pieces" that reads each byte once, without
/// branches, in about four instructions a byte (a shift-or automaton, as in
/// Baeza-Yates and Gonnet's bitap), and tells on the way whether the text has a byte other than
/// a letter, digit or `_`, and whether it has a digit. The state is one word of four 16-bit
/// lanes, one bit per piece; a bit is 0 where the piece is matched so far: lane 0 after its
/// first byte, lane 1 after its first two, lane 2 after all three. Each byte shifts the lanes
/// up by one and ORs in the byte's row of `table`, whose lane `k` (`k` < 3) has the bit of
/// piece `i` cleared when piece `i` has this byte at position `k`. A piece is present exactly
/// when its lane-2 bit was 0 after some byte.
///
/// Lane 3 of every row is 0, so after each byte lane 3 holds lane 2 as it was after the byte
/// before: folding the state into what was seen (an AND) after every second byte catches
/// every byte's lane 2. The bytes go in pairs, the first read from a second table of rows
/// already shifted up a lane. A pair shifts the state up two lanes, so the state after a pair
/// is the rows of the pair before it shifted up two lanes, OR-ed with its own: each pair's
/// state is computed from four bytes, none waits for the one before (a running state would
/// cost three dependent steps a pair), and only the AND into what was seen carries on. Text
/// whose length is not a multiple of eight ends with its last ten bytes as five pairs, the
/// first only as the pair before; text under ten bytes goes one byte a step.
///
/// Bits 12 and 13 of each lane are two one-byte "pieces" (clear in lanes 0 and 1 of every row
/// and of the starting state): bit 12 of lane 2 is clear in the rows of non-word bytes, bit 13
/// in the rows of digits, so they are matched exactly where such a byte is.
///
/// Pieces are matched without regard to ASCII case (a letter's two rows are alike), so `rer`
/// stands for `RER` too.
///
/// # Security
///
/// Sound as a skip only because every anchor contains a piece (ensured when it is built) and
/// every built-in match contains an anchor (what the anchored search already relies on, and a
/// property test checks): text without a piece has no anchor, hence no rule match.
struct AnchorScreen {
    /// `table[b]` (`b` < 256), the byte's row: bit `16 k + i` is 0 when piece `i` has byte `b`
    /// at position `k` (`k` < 3); bits 12 and 13 of lanes 0 and 1 are 0, of lane 2 0 for a
    /// non-word byte and a digit respectively; lane 3 is 0; every other bit is 1. Then
    /// `table[256 + b]`, the same row shifted up a lane, for the first byte of a pair (one
    /// table, so one register holds both).
    table: Box<[u64; 512]>,
}

/// Bits of one lane of [`AnchorScreen`]'s state: one per piece.
const LANE: u32 = 16;
/// The lane of [`AnchorScreen`]'s state that holds whole-piece matches.
const FULL_PIECE_SHIFT: u32 = 2 * LANE;
/// The lane that holds them as they were one byte before.
const PREVIOUS_SHIFT: u32 = 3 * LANE;
/// The bit, in each lane, matched by a byte other than a letter, digit or `_`.
const NON_WORD_BIT: u64 = 1 << 12;
/// The bit, in each lane, matched by a digit.
const DIGIT_BIT: u64 = 1 << 13;
/// The two one-byte pieces' bits in lanes 0 and 1, clear in every row and the starting state.
const FLAGS_EARLY: u64 = (NON_WORD_BIT | DIGIT_BIT) * (1 | 1 << LANE);
/// The starting state: nothing matched (lane 3 is never read before it is overwritten).
const START: u64 = !FLAGS_EARLY;
/// The most pieces a screen has.
const MAX_PIECES: usize = 12;
/// The real pieces' bits of a lane.
const PIECE_BITS: u64 = 0x0fff;

impl AnchorScreen {
    /// A screen for `anchors`, from `pieces` plus, for an anchor containing none of them, its
    /// first three bytes. `None` for an anchor shorter than three bytes or over
    /// [`MAX_PIECES`].
    fn new(anchors: &[&str], pieces: &[[u8; 3]]) -> Option<AnchorScreen> {
        let mut all: Vec<[u8; 3]> = pieces.to_vec();
        for anchor in anchors {
            let bytes = anchor.as_bytes();
            if !bytes
                .windows(3)
                .any(|w| all.iter().any(|p| p.eq_ignore_ascii_case(w)))
            {
                all.push(bytes.get(..3)?.try_into().ok()?);
            }
        }
        if all.len() > MAX_PIECES {
            return None;
        }
        let mut table = Box::new([0u64; 512]);
        for (b, row) in (0..=u8::MAX).zip(table.iter_mut()) {
            let word = b.is_ascii_alphanumeric() || b == b'_';
            let mut bits = ((1u64 << PREVIOUS_SHIFT) - 1) & !FLAGS_EARLY;
            if !word {
                bits &= !(NON_WORD_BIT << FULL_PIECE_SHIFT);
            }
            if b.is_ascii_digit() {
                bits &= !(DIGIT_BIT << FULL_PIECE_SHIFT);
            }
            *row = bits;
        }
        for (bit, piece) in (0..LANE).zip(&all) {
            for (lane, &b) in (0..3).zip(piece) {
                for b in [b.to_ascii_lowercase(), b.to_ascii_uppercase()] {
                    if let Some(row) = table.get_mut(usize::from(b)) {
                        *row &= !(1u64 << (lane * LANE + bit));
                    }
                }
            }
        }
        let (rows, shifted) = table.split_at_mut(256);
        for (to, from) in shifted.iter_mut().zip(rows.iter()) {
            *to = from << LANE;
        }
        Some(AnchorScreen { table })
    }

    /// Whether `bytes` contains one of the pieces: `false` only when it certainly holds no
    /// anchor.
    #[cfg(test)]
    fn may_hold_anchor(&self, bytes: &[u8]) -> bool {
        self.scan(bytes).piece
    }

    /// Whether `bytes` contains one of the pieces (`false` only when it certainly holds no
    /// anchor), whether it has a byte that is not a letter, digit or `_`, and whether it has a
    /// digit.
    #[inline]
    fn scan(&self, bytes: &[u8]) -> Scan {
        let table = &*self.table;
        // A byte indexes a 256-entry table: no bounds check is left.
        let row = |b: u8| table.get(usize::from(b)).copied().unwrap_or(0);
        // A pair's rows, the first read already shifted up a lane.
        let pair = |a: u8, b: u8| table.get(256 + usize::from(a)).copied().unwrap_or(0) | row(b);
        // Each pair shifts the state up two lanes, so after two pairs nothing of the state
        // before them is left: the state after a pair is the pair before's rows shifted up two
        // lanes, ORed with its own. No step waits for the one before it (a shift-or chain
        // would: about three cycles a pair); only `seen` carries on, one AND a pair.
        let step = |before: u64, rows: u64| (before << (2 * LANE)) | rows;
        let mut seen = u64::MAX;
        if let Some(tail) = bytes.last_chunk::<10>() {
            // Eight bytes a turn, pairs from the start; `before` holds the pair before's rows
            // (the starting state stands in before the first).
            let mut before = START;
            let mut chunks = bytes.chunks_exact(8);
            for chunk in &mut chunks {
                if let [b0, b1, b2, b3, b4, b5, b6, b7] = *chunk {
                    let (p0, p1, p2, p3) = (pair(b0, b1), pair(b2, b3), pair(b4, b5), pair(b6, b7));
                    seen &= step(before, p0) & step(p0, p1) & step(p1, p2) & step(p2, p3);
                    before = p3;
                }
            }
            // The last ten bytes as five pairs, the first only as the one before: the states
            // after each of the last eight bytes, whatever the length (the turns above saw at
            // least up to the eighth byte from the end; seeing a byte twice changes nothing).
            if !chunks.remainder().is_empty() {
                let [b0, b1, b2, b3, b4, b5, b6, b7, b8, b9] = *tail;
                let (p0, p1, p2, p3, p4) = (
                    pair(b0, b1),
                    pair(b2, b3),
                    pair(b4, b5),
                    pair(b6, b7),
                    pair(b8, b9),
                );
                seen &= step(p0, p1) & step(p1, p2) & step(p2, p3) & step(p3, p4);
            }
        } else {
            // Under ten bytes: one byte a step.
            let mut state = START;
            for &b in bytes {
                state = (state << LANE) | row(b);
                seen &= state;
            }
        }
        let matched = !((seen >> FULL_PIECE_SHIFT) & (seen >> PREVIOUS_SHIFT));
        Scan {
            piece: matched & PIECE_BITS != 0,
            non_word: matched & NON_WORD_BIT != 0,
            digit: matched & DIGIT_BIT != 0,
        }
    }
}

/// How [`TextRules::scrub_matches`] looks for rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Search {
    /// Near anchors when the rules have them, else over the whole text.
    Rules,
    /// Over the whole text, anchors or not.
    FullScan,
    /// Not at all: the screen has proven that no rule matches; routing numbers only.
    RoutingOnly,
}

pub(crate) struct TextRules {
    regex: Option<(Regex, regex::bytes::Regex)>,
    /// `None` when custom rules are present: the regex then scans everything.
    anchors: Option<Anchors>,
    rules: Vec<TextRule>,
    routing: Rule,
}

struct TextRule {
    rule: Rule,
    /// Extra check on the redacted text; a match that fails it is left alone.
    accept: fn(&str) -> bool,
    /// Capture group index of the whole alternative.
    whole: usize,
    /// Capture group index of the value part, if the rule redacts only part of its match.
    value: Option<usize>,
}

impl TextRules {
    pub(crate) fn compile(custom: &[(Tag, String)]) -> Result<TextRules, String> {
        let all: Vec<(Tag, String)> = builtin_rules()
            .into_iter()
            .chain(custom.iter().cloned())
            .collect();
        let mut combined = String::new();
        for (i, (_, pattern)) in all.iter().enumerate() {
            if i > 0 {
                combined.push('|');
            }
            // Rename `v` to a group unique to this rule; wrap the rule in its own group.
            let renamed = pattern.replace("(?P<v>", &format!("(?P<v{i}>"));
            // Writing to a String cannot fail.
            let _ = write!(combined, "(?P<r{i}>{renamed})");
        }
        let build = |p: &str| {
            RegexBuilder::new(p)
                .size_limit(64 << 20)
                .build()
                .map_err(|e| e.to_string())
        };
        let regex = build(&combined)?;
        let bytes = regex::bytes::RegexBuilder::new(&combined)
            .size_limit(64 << 20)
            .build()
            .map_err(|e| e.to_string())?;
        let names: Vec<Option<&str>> = regex.capture_names().collect();
        let index = |name: &str| names.iter().position(|n| *n == Some(name));
        let rules = all
            .into_iter()
            .enumerate()
            .map(|(i, (tag, _))| {
                let whole = index(&format!("r{i}")).ok_or("missing rule group")?;
                // `token_type=bearer expires_in_seconds=…` is not a credential: a bearer token
                // must mix letters and digits.
                let accept = if tag == Tag::BEARER {
                    looks_like_bearer_credential
                } else {
                    any
                };
                Ok(TextRule {
                    rule: Rule::new(tag),
                    accept,
                    whole,
                    value: index(&format!("v{i}")),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let anchors = if custom.is_empty() {
            Some(Anchors {
                search: AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostFirst)
                    .build(ANCHORS)
                    .map_err(|e| e.to_string())?,
                screen: AnchorScreen::new(ANCHORS, ANCHOR_FRAGMENTS),
                shortest_anchored: shortest_match(&builtin_rules())?.min(SHORT_TEXT_MAX),
            })
        } else {
            None
        };
        Ok(TextRules {
            regex: Some((regex, bytes)),
            anchors,
            rules,
            routing: Rule::new(Tag::ROUTING_NUMBER),
        })
    }

    pub(crate) fn empty() -> TextRules {
        TextRules {
            regex: None,
            anchors: None,
            rules: Vec::new(),
            routing: Rule::new(Tag::ROUTING_NUMBER),
        }
    }

    pub(crate) fn rule_count(&self) -> usize {
        self.rules.len() + 1
    }

    /// Scrubs `text`. Inlined for the shortcuts a caller meets most: with only built-in rules,
    /// text shorter than [`MIN_SCRUB_LEN`] is clean, and most other short text is settled by
    /// [`Anchors::settle`], a small call, before any search.
    #[inline]
    pub(crate) fn scrub<'a>(&self, text: &'a str, fp: Option<&Fingerprinter>) -> Cow<'a, str> {
        let search = match &self.anchors {
            Some(anchors) => {
                if text.len() < MIN_SCRUB_LEN {
                    return Cow::Borrowed(text);
                }
                match anchors.settle(text.as_bytes()) {
                    Some(search) => search,
                    None => return Cow::Borrowed(text),
                }
            }
            None => Search::Rules,
        };
        self.scrub_matches(text, fp, search)
    }

    /// Whether [`TextRules::scrub`] certainly returns `text` unchanged, judged by the
    /// shortcuts alone (`false` when they cannot tell): for callers that write clean text
    /// straight through and keep the scrubbing out of line.
    #[inline]
    pub(crate) fn certainly_unchanged(&self, text: &str) -> bool {
        self.anchors.as_ref().is_some_and(|anchors| {
            text.len() < MIN_SCRUB_LEN
                || (text.len() < anchors.shortest_anchored && !eighth_and_ninth_digits(text))
                || anchors.settle(text.as_bytes()).is_none()
        })
    }

    /// What [`TextRules::scrub`] returns, found the slow way: the rule regex over the whole
    /// text, no shortcut taken. The reference the fuzz hooks hold the scrubber to.
    pub(crate) fn scrub_full_scan<'a>(
        &self,
        text: &'a str,
        fp: Option<&Fingerprinter>,
    ) -> Cow<'a, str> {
        self.scrub_matches(text, fp, Search::FullScan)
    }

    /// The scrubber proper: every rule match and every routing number, replaced.
    #[inline(never)]
    fn scrub_matches<'a>(
        &self,
        text: &'a str,
        fp: Option<&Fingerprinter>,
        search: Search,
    ) -> Cow<'a, str> {
        let mut spans: Vec<(usize, usize, &Rule)> = Vec::new();
        if let Some((regex, _)) = self
            .regex
            .as_ref()
            .filter(|_| search != Search::RoutingOnly)
        {
            let mut push = |caps: &Captures<'_>| {
                if let Some((start, end, rule)) = self.matched(caps)
                    && !text.get(start..end).is_some_and(is_placeholder)
                {
                    spans.push((start, end, rule));
                }
            };
            match (&self.anchors, search) {
                (Some(anchors), Search::Rules) => {
                    anchored_search(text, regex, &anchors.search, &mut push);
                }
                _ => overlapping_search(text, regex, &mut push),
            }
        }
        // The edges of other matches count as boundaries: they become placeholders, and a
        // routing number next to one must be found now, not on a second pass.
        let edges: Vec<usize> = spans.iter().flat_map(|&(s, e, _)| [s, e]).collect();
        let mut routing = Vec::new();
        routing_numbers(
            text.as_bytes(),
            |pos| edges.contains(&pos),
            |start, end| {
                if !spans.iter().any(|&(s, e, _)| start < e && s < end) {
                    routing.push((start, end));
                }
            },
        );
        spans.extend(routing.into_iter().map(|(s, e)| (s, e, &self.routing)));
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        let spans = merge_overlaps(spans);
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (start, end, rule) in spans {
            out.push_str(text.get(last..start).unwrap_or_default());
            match (fp, text.get(start..end)) {
                (Some(fp), Some(secret)) => {
                    out.push_str(&rule.placeholder[..rule.placeholder.len() - 1]);
                    out.push(' ');
                    out.push_str(&fp.fingerprint(&rule.tag, secret));
                    out.push(']');
                }
                _ => out.push_str(&rule.placeholder),
            }
            last = end;
        }
        out.push_str(text.get(last..).unwrap_or_default());
        Cow::Owned(out)
    }

    pub(crate) fn scrub_bytes(&self, bytes: &mut [u8]) -> usize {
        let mut spans: Vec<(usize, usize, usize)> = Vec::new();
        if let Some((_, regex)) = &self.regex {
            // Overlapping matches too: each search starts one byte after the previous match's
            // start, and every match is overwritten.
            let mut at = 0;
            while at <= bytes.len() {
                let Some(caps) = regex.captures_at(bytes, at) else {
                    break;
                };
                at = caps.get(0).map_or(bytes.len() + 1, |m| m.start() + 1);
                let Some((i, rule)) = self
                    .rules
                    .iter()
                    .enumerate()
                    .find(|(_, r)| caps.get(r.whole).is_some())
                else {
                    continue;
                };
                let Some(m) = rule
                    .value
                    .and_then(|v| caps.get(v))
                    .or_else(|| caps.get(rule.whole))
                else {
                    continue;
                };
                if std::str::from_utf8(m.as_bytes()).is_ok_and(|v| (rule.accept)(v)) {
                    spans.push((m.start(), m.end(), i));
                }
            }
        }
        let mut routing = Vec::new();
        let edges: Vec<usize> = spans.iter().flat_map(|&(s, e, _)| [s, e]).collect();
        routing_numbers(
            bytes,
            |pos| edges.contains(&pos),
            |s, e| {
                if !spans.iter().any(|&(a, b, _)| s < b && a < e) {
                    routing.push((s, e));
                }
            },
        );
        let count = spans.len() + routing.len();
        let overwrite = |bytes: &mut [u8], start: usize, end: usize, placeholder: &str| {
            if let Some(dst) = bytes.get_mut(start..end) {
                let src = placeholder.as_bytes();
                for (i, b) in dst.iter_mut().enumerate() {
                    *b = src.get(i).copied().unwrap_or(b'*');
                }
            }
        };
        for (s, e, i) in spans {
            if let Some(rule) = self.rules.get(i) {
                overwrite(bytes, s, e, &rule.rule.placeholder);
            }
        }
        for (s, e) in routing {
            overwrite(bytes, s, e, &self.routing.placeholder);
        }
        count
    }

    fn matched<'r>(&'r self, caps: &Captures<'_>) -> Option<(usize, usize, &'r Rule)> {
        let rule = self.rules.iter().find(|r| caps.get(r.whole).is_some())?;
        let m = rule
            .value
            .and_then(|v| caps.get(v))
            .or_else(|| caps.get(rule.whole))?;
        (rule.accept)(m.as_str()).then_some((m.start(), m.end(), &rule.rule))
    }
}

fn any(_: &str) -> bool {
    true
}

/// Whether the value after `Bearer` looks like a credential rather than a word of prose
/// (`token_type=bearer`, "the bearer credentials"): letters and digits mixed, or both cases
/// over at least twelve bytes. A random 16-character base64 credential with no digit (about
/// 3 % of them) is still caught by its mixed case.
fn looks_like_bearer_credential(v: &str) -> bool {
    let has = |f: fn(&u8) -> bool| v.as_bytes().iter().any(f);
    let alpha = has(u8::is_ascii_alphabetic);
    (alpha && has(u8::is_ascii_digit))
        || (v.len() >= 12 && has(u8::is_ascii_uppercase) && has(u8::is_ascii_lowercase))
}

/// Strings shorter than this many bytes cannot hold a match of any built-in value rule.
///
/// The shortest built-in match is a free-text routing number: nine digits. Every other
/// built-in rule needs more: a Plaid token at least 18 bytes (`link-sandbox-` and a
/// 5-character id), a `Bearer` credential 15, a JWT 21, `secret=` and a value 15, an account
/// number after its JSON key 16.
pub const MIN_SCRUB_LEN: usize = 9;

/// Whether the built-in value rules certainly leave `text` unchanged, judged without running
/// them:
///
/// - `text` is shorter than [`MIN_SCRUB_LEN`];
/// - `text` is only ASCII letters, digits and `_` (ids, codes, enum names) and is not exactly
///   nine digits. Every built-in rule but one needs a byte outside that set (`-` in a token,
///   a space after `Bearer`, `.` in a JWT, `:` or `=` after a key, `"` around a JSON key), and
///   the free-text routing number must not touch a letter, digit or `_`, so within such a string
///   it can only be the whole string.
///
/// A custom pattern can match anything, so this is consulted only for policies without them
/// (those are exactly the rule sets with anchors).
#[inline]
pub(crate) fn certainly_clean(bytes: &[u8]) -> bool {
    bytes.len() < MIN_SCRUB_LEN
        || (word_only(bytes) && !(bytes.len() == 9 && bytes.iter().all(u8::is_ascii_digit)))
}

/// Whether every byte is an ASCII letter, digit or `_`: sixteen bytes a step from sixteen
/// bytes on ([`word_only_wide`]), one at a time below.
#[inline]
fn word_only(bytes: &[u8]) -> bool {
    if bytes.len() < 16 {
        return bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_');
    }
    word_only_wide(bytes)
}

/// Whether `bytes` has nine ASCII digits in a row or more, which a routing number needs: eight
/// bytes at a time, carrying the length of the run of digits that ends each word (eight bytes
/// cannot hold nine, so a run counts only where it crosses into the next word).
#[inline]
fn nine_digit_run(bytes: &[u8]) -> bool {
    // `others`: the high bit of each byte that is not a digit, of the `n` (1 to 8) new bytes
    // at the bottom; the rest of `others` is clear.
    let mut run = 0u32;
    let mut step = |others: u64, n: u32| {
        if others == 0 {
            run += n;
            return run >= 9;
        }
        // Digits that start these bytes finish the run before; those that end them start the
        // next. (`others` is not 0: both counts stop at a byte that is no digit.)
        if run + others.trailing_zeros() / 8 >= 9 {
            return true;
        }
        run = (others << (64 - 8 * n)).leading_zeros() / 8;
        false
    };
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        if step(non_digit_mask(load_word(chunk)), 8) {
            return true;
        }
    }
    let rest = chunks.remainder().len();
    // The last eight bytes, overlapping the words already read: only the top `rest` are new.
    rest > 0
        && bytes
            .len()
            .checked_sub(8)
            .and_then(|at| bytes.get(at..))
            .is_some_and(|last| {
                let n = u32::try_from(rest).unwrap_or(8);
                step(non_digit_mask(load_word(last)) >> (64 - 8 * n), n)
            })
}

/// The high bit of each byte of `word` that is not an ASCII digit.
#[inline]
fn non_digit_mask(word: u64) -> u64 {
    let x = word ^ (ONES * 0x30); // digits become 0..=9
    // The high bit ends up set when (x & 0x7f) >= 10 (no carry crosses bytes: 0x7f + 0x76 <
    // 0x100) or when x >= 0x80.
    ((x & !HIGHS).wrapping_add(ONES * 0x76) | x) & HIGHS
}

/// The first eight bytes of `chunk` (at least eight long) as a little-endian word.
#[inline]
fn load_word(chunk: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    if let Some(head) = chunk.get(..8) {
        w.copy_from_slice(head);
    }
    u64::from_le_bytes(w)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = ONES * 0x80;

/// Sorts spans and merges overlapping ones into one, redacted as the first one's rule: a secret
/// that overlaps another match is covered whole, never left half visible.
fn merge_overlaps(mut spans: Vec<(usize, usize, &Rule)>) -> Vec<(usize, usize, &Rule)> {
    spans.sort_by_key(|&(s, e, _)| (s, std::cmp::Reverse(e)));
    let mut merged: Vec<(usize, usize, &Rule)> = Vec::with_capacity(spans.len());
    for (s, e, rule) in spans {
        match merged.last_mut() {
            Some(last) if s < last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e, rule)),
        }
    }
    merged
}

/// Runs `regex` over the whole text, starting again one character after each match's start
/// (not after its end), so that matches overlapping an earlier one are found too.
fn overlapping_search(text: &str, regex: &Regex, found: &mut impl FnMut(&Captures<'_>)) {
    let mut at = 0;
    while let Some(caps) = regex.captures_at(text, at) {
        let Some(m) = caps.get(0) else { break };
        found(&caps);
        at = m.start() + 1;
        while !text.is_char_boundary(at) {
            at += 1;
        }
        if at > text.len() {
            break;
        }
    }
}

/// Runs `regex` only near anchors: from a little before each anchor, over a window after it
/// (retrying on the whole rest of the text when a match reaches the window's end, so a long
/// secret is never cut).
fn anchored_search(
    text: &str,
    regex: &Regex,
    anchors: &AhoCorasick,
    found: &mut impl FnMut(&Captures<'_>),
) {
    let mut pos = 0;
    while let Some(anchor) = anchors.find(aho_corasick::Input::new(text).span(pos..text.len())) {
        // Not clamped to `pos`: a match may start inside the previous one (a `Basic` value
        // that swallowed the `transfer` of `transfer-development-…`); the spans are merged.
        let mut from = anchor.start().saturating_sub(ANCHOR_LOOKBACK);
        while !text.is_char_boundary(from) {
            from -= 1;
        }
        // Every match starting before the anchor's end, and every match overlapping one found
        // (a match starting after both has an anchor of its own, visited later).
        let (mut at, mut before, mut reach) = (from, anchor.end(), anchor.end() + ANCHOR_WINDOW);
        while let Some(c) = search_window(text, regex, at, reach) {
            let Some(m) = c.get(0).filter(|m| m.start() < before) else {
                break;
            };
            found(&c);
            before = before.max(m.end());
            (at, reach) = (m.start() + 1, before + OVERLAP_WINDOW);
            while !text.is_char_boundary(at) {
                at += 1;
            }
        }
        // A match past this anchor belongs to a later anchor and is found on its turn. Anchors
        // inside a match are visited too, so a secret overlapping it is never missed.
        pos = anchor.start() + 1;
        while !text.is_char_boundary(pos) {
            pos += 1;
        }
    }
}

/// `regex.captures_at(text, at)` on `text` cut at `reach` (a character boundary at or after
/// it), searched again on the whole text when the match runs into the cut, so a long secret is
/// never shortened.
fn search_window<'t>(
    text: &'t str,
    regex: &Regex,
    at: usize,
    reach: usize,
) -> Option<Captures<'t>> {
    let mut end = reach.min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    let window = text.get(..end).unwrap_or(text);
    match regex.captures_at(window, at) {
        Some(c) if c.get(0).is_some_and(|m| m.end() == end) && end < text.len() => {
            regex.captures_at(text, at)
        }
        other => other,
    }
}

/// Checks a custom pattern on its own: it compiles within [`MAX_CUSTOM_PATTERN_SIZE`], does
/// not match the empty string, and matches no placeholder.
///
/// [`MAX_CUSTOM_PATTERN_SIZE`]: crate::MAX_CUSTOM_PATTERN_SIZE
pub(crate) fn check_custom_pattern(pattern: &str) -> Result<(), String> {
    let re = RegexBuilder::new(pattern)
        .size_limit(crate::MAX_CUSTOM_PATTERN_SIZE)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => {
                format!("compiled size is over the {limit}-byte limit")
            }
            other => other.to_string(),
        })?;
    if re.is_match("") {
        return Err("it matches the empty string".to_owned());
    }
    let samples = [
        Tag::ACCESS_TOKEN.placeholder(),
        "[REDACTED:custom.x fp1:0123456789abcdef]".to_owned(),
        Tag::NOT_ALLOWED.placeholder(),
    ];
    if samples.iter().any(|s| re.is_match(s)) {
        return Err(
            "it matches a redaction placeholder, so scrubbing would not be idempotent".to_owned(),
        );
    }
    Ok(())
}

/// Whether `digits` (nine ASCII digits) pass the ABA routing-number checksum:
/// `3(d1+d4+d7) + 7(d2+d5+d8) + (d3+d6+d9) ≡ 0 (mod 10)`.
#[must_use]
pub fn aba_checksum_ok(digits: &str) -> bool {
    let d: Vec<u32> = digits
        .bytes()
        .map(|b| u32::from(b.wrapping_sub(b'0')))
        .collect();
    if d.len() != 9 || d.iter().any(|&x| x > 9) {
        return false;
    }
    let sum: u32 = d
        .chunks(3)
        .map(|c| c.iter().zip([3, 7, 1]).map(|(x, w)| x * w).sum::<u32>())
        .sum();
    sum.is_multiple_of(10)
}

/// [`Search::RoutingOnly`] if `bytes` holds a routing number by itself (see
/// [`routing_numbers`]), else `None`.
#[inline(never)]
fn routing_number_search(bytes: &[u8]) -> Option<Search> {
    let mut found = false;
    routing_numbers(bytes, |_| false, |_, _| found = true);
    found.then_some(Search::RoutingOnly)
}

/// Calls `found(start, end)` for each run of exactly nine ASCII digits, not touching a letter,
/// digit or `_` (a position where `is_edge` holds counts as a boundary), that is a plausible ABA
/// routing number: a valid checksum and a first two digits in the Federal Reserve ranges
/// (00–12, 21–32, 61–72, 80).
fn routing_numbers(
    bytes: &[u8],
    is_edge: impl Fn(usize) -> bool,
    mut found: impl FnMut(usize, usize),
) {
    let mut check = |start: usize, end: usize| {
        let word_char = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
        let before_ok =
            start == 0 || is_edge(start) || bytes.get(start - 1).is_none_or(|p| !word_char(p));
        let after_ok = is_edge(end) || bytes.get(end).is_none_or(|n| !word_char(n));
        let digits = bytes
            .get(start..end)
            .and_then(|d| std::str::from_utf8(d).ok());
        if let Some(digits) = digits.filter(|_| before_ok && after_ok) {
            let prefix: u32 = digits.get(..2).and_then(|p| p.parse().ok()).unwrap_or(99);
            if matches!(prefix, 0..=12 | 21..=32 | 61..=72 | 80) && aba_checksum_ok(digits) {
                found(start, end);
            }
        }
    };
    // `run` digits end just before byte `i`.
    let mut run = 0usize;
    let mut i = 0usize;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let mask = digit_mask(u64::from_le_bytes(w));
        if mask == 0xFF {
            run += 8;
        } else {
            let lead = mask.trailing_ones() as usize;
            if run + lead == 9 {
                check(i + lead - 9, i + lead);
            }
            // Runs inside one word are at most 7 long: only the run at its end carries on.
            run = mask.leading_ones() as usize;
        }
        i += 8;
    }
    for &b in chunks.remainder() {
        if b.is_ascii_digit() {
            run += 1;
        } else {
            if run == 9 {
                check(i - 9, i);
            }
            run = 0;
        }
        i += 1;
    }
    if run == 9 {
        check(i - 9, i);
    }
}

/// Bit k set when byte k (little-endian) of `word` is an ASCII digit.
fn digit_mask(word: u64) -> u8 {
    let digits = !non_digit_mask(word) & HIGHS;
    // Gather the eight high bits into one byte (bit k from byte k).
    u8::try_from((digits >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use crate::Policy;

    #[test]
    fn built_in_rules_find_secrets_by_shape() {
        let p = Policy::plaid();
        let cases = [
            (
                "token=access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6;",
                "token=[REDACTED:plaid.access_token];",
            ),
            (
                "public-production-0b6a6a1a-2d5c-4a7e-9a40-1f1d0f6c9e2b",
                "[REDACTED:plaid.public_token]",
            ),
            (
                "link-development-abc12-def34",
                "[REDACTED:plaid.link_token]",
            ),
            (
                "processor-sandbox-0asd1-a92nc",
                "[REDACTED:plaid.processor_token]",
            ),
            (
                "user-sandbox-5f1c0b7e-aaaa-bbbb-cccc-0123456789ab",
                "[REDACTED:plaid.token]",
            ),
            (
                "Authorization: Bearer abcDEF123456.xyz",
                "Authorization: Bearer [REDACTED:http.bearer]",
            ),
            (
                "Authorization: Bearer qWeRtYuIoPaSdFgH",
                "Authorization: Bearer [REDACTED:http.bearer]",
            ),
            (
                "Authorization: Basic dXNlcjpwYXNz",
                "Authorization: Basic [REDACTED:http.authorization]",
            ),
            (
                "PLAID-SECRET: 0123456789abcdef0123456789abcd",
                "PLAID-SECRET: [REDACTED:plaid.client_secret]",
            ),
            (
                r#"{"client_id":"5f1c0b7e0123456789abcdef","secret":"0123456789abcdef0123456789abcd"}"#,
                r#"{"client_id":"[REDACTED:plaid.client_id]","secret":"[REDACTED:plaid.client_secret]"}"#,
            ),
            (
                r#""account": "1111222233330000", "routing": "011401533""#,
                r#""account": "[REDACTED:bank.account_number]", "routing": "[REDACTED:bank.routing_number]""#,
            ),
            (
                "wire to 021000021 today",
                "wire to [REDACTED:bank.routing_number] today",
            ),
            (
                "jwt eyJhbGciOiJFUzI1NiJ9.eyJpYXQiOjE2MDB9.c2lnbmF0dXJl",
                "jwt [REDACTED:jwt]",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(p.scrub_text(input), want, "{input}");
            assert_eq!(p.scrub_text(want), want, "idempotent: {want}");
        }
    }

    #[test]
    fn overlapping_matches_are_covered_whole() {
        let p = Policy::plaid();
        let cases = [
            // A `Basic` value swallows the token's type word; the token's id must still go.
            (
                "Authorization: Basic dXNlcjpwYXNztransfer-development-41757468-6f72-697a-6174",
                "41757468-6f72",
            ),
            (
                "Bearer abc123def456ghiBearer zzz999yyy888xxx",
                "zzz999yyy888xxx",
            ),
            (
                "Authorization: Basic eyJabcdefghijklmnopqrstuvwxyz0123.eyJabcdefgh.c2ln",
                "eyJabcdefgh.",
            ),
            // A routing number touching another match is found in the same pass.
            ("021000021access-sandbox-abcdef12345", "021000021"),
            // A match before the anchor must not hide the anchor's own match.
            (
                "secret=abcdefgh12 and access-sandbox-41757468-6f72-697a-6174",
                "41757468-6f72",
            ),
        ];
        for (input, secret) in cases {
            let out = p.scrub_text(input);
            assert!(!out.contains(secret), "{input} -> {out}");
            assert_eq!(p.scrub_text(&out), out, "idempotent");
        }
    }

    #[test]
    fn clean_text_is_borrowed_and_lookalikes_survive() {
        let p = Policy::plaid();
        let clean = [
            "2024-01-15 amount=12.34 merchant=Uber item_id=eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6",
            "request_id=m8MDnv9okwxFNBV token_type=bearer total_tokens=123456789",
            "present the bearer credentials to the gateway",
            "order 123456789 shipped",       // nine digits, bad checksum
            "phone 0114015330 and 01140153", // ten and eight digits
            "sandbox-access is a word; public-api-docs; link-production",
        ];
        for text in clean {
            assert!(
                matches!(p.scrub_text(text), std::borrow::Cow::Borrowed(_)),
                "{text}"
            );
        }
    }

    #[test]
    fn byte_mode_keeps_length() {
        let p = Policy::plaid();
        let mut dump =
            b"\x00\x01access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6\xff 021000021".to_vec();
        let len = dump.len();
        assert_eq!(p.scrub_bytes_in_place(&mut dump), 2);
        assert_eq!(dump.len(), len);
        let shown = String::from_utf8_lossy(&dump);
        assert!(shown.contains("[REDACTED:plaid.access_token]**"));
        assert!(shown.contains("[REDACTED"));
        assert!(!shown.contains("de3ce8ef") && !shown.contains("021000021"));
    }

    #[test]
    fn digit_mask_is_exact() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut w = [b'x'; 8];
                w[pos] = b;
                let want = if b.is_ascii_digit() { 1u8 << pos } else { 0 };
                assert_eq!(
                    super::digit_mask(u64::from_le_bytes(w)),
                    want,
                    "byte {b} at {pos}"
                );
            }
        }
        assert_eq!(super::digit_mask(u64::from_le_bytes(*b"0123456a")), 0x7f);
    }

    proptest::proptest! {
        /// The anchored search finds exactly what a full regex scan finds.
        #[test]
        fn anchored_search_equals_full_scan(
            parts in proptest::collection::vec(proptest::prop_oneof![
                "[ -~]{0,40}",
                proptest::strategy::Just("access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6".to_owned()),
                proptest::strategy::Just("Bearer abc123def456ghi".to_owned()),
                proptest::strategy::Just("PLAID-SECRET: 0123456789abcdef0123456789abcd".to_owned()),
                proptest::strategy::Just("\"routing\": \"011401533\"".to_owned()),
                proptest::strategy::Just("eyJhbGciOiJFUzI1NiJ9.eyJpYXQiOjE2MDB9.c2ln".to_owned()),
                proptest::strategy::Just(" 021000021 ".to_owned()),
                proptest::strategy::Just("é—".to_owned()),
            ], 0..12)
        ) {
            static RULES: std::sync::OnceLock<(super::TextRules, super::TextRules)> =
                std::sync::OnceLock::new();
            let (anchored, full) = RULES.get_or_init(|| {
                let mut full = super::TextRules::compile(&[]).unwrap();
                full.anchors = None;
                (super::TextRules::compile(&[]).unwrap(), full)
            });
            let text: String = parts.concat();
            proptest::prop_assert_eq!(anchored.scrub(&text, None), full.scrub(&text, None));
        }
    }

    #[test]
    fn certainly_clean_holds_against_the_built_in_rules() {
        let policy = Policy::plaid();
        let skipped = [
            "",
            "USD",
            "12345678",
            "a b=c:d.",
            "eyJ.x.y",
            "BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp",
            "TRANSPORTATION_TAXIS_AND_RIDE_SHARES",
            "accesssandbox0b6a6a1a2d5c4a7e9a40",
            "Bearerabcdef123456",
            "secret0123456789abcdef",
            "client_id5f1c0b7e0123456789abcdef",
            "x021000021",
            "021000021x",
            "0210000210",
            "_021000021",
        ];
        for text in skipped {
            assert!(super::certainly_clean(text.as_bytes()), "{text}");
            assert_eq!(policy.scrub_text(text), text, "{text}");
        }
        let scrubbed = [
            "021000021",
            "011401533",
            "2024-03-01",
            "Bearer abcDEF123456",
            "link-sandbox-abc12",
            "secret=0123456789abcdef",
        ];
        for text in scrubbed {
            assert!(!super::certainly_clean(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn aba_checksum() {
        for ok in ["011000015", "021000021", "011401533", "091000019"] {
            assert!(super::aba_checksum_ok(ok), "{ok}");
        }
        for bad in ["011000016", "123456789", "12345678", "01100001a"] {
            assert!(!super::aba_checksum_ok(bad), "{bad}");
        }
    }

    /// The built-in rules with the screen and anchors, without the screen, and with neither.
    fn rule_sets() -> &'static (super::TextRules, super::TextRules, super::TextRules) {
        static RULES: std::sync::OnceLock<(super::TextRules, super::TextRules, super::TextRules)> =
            std::sync::OnceLock::new();
        RULES.get_or_init(|| {
            let screened = super::TextRules::compile(&[]).unwrap();
            let mut unscreened = super::TextRules::compile(&[]).unwrap();
            unscreened.anchors.as_mut().unwrap().screen = None;
            let mut full = super::TextRules::compile(&[]).unwrap();
            full.anchors = None;
            (screened, unscreened, full)
        })
    }

    #[test]
    fn listed_pieces_cover_every_anchor() {
        for anchor in super::ANCHORS {
            assert!(
                super::ANCHOR_FRAGMENTS.iter().any(|p| anchor
                    .as_bytes()
                    .windows(3)
                    .any(|w| w.eq_ignore_ascii_case(p))),
                "{anchor} has no listed piece"
            );
        }
        let (screened, _, _) = rule_sets();
        assert!(screened.anchors.as_ref().unwrap().screen.is_some());
    }

    /// The length under which only a routing number can match is the shortest built-in match:
    /// `Bearer` and a credential, or `secret=` and a value, 15 bytes, redacted at that length.
    #[test]
    fn text_shorter_than_every_rule_skips_the_screen() {
        let (screened, _, _) = rule_sets();
        assert_eq!(screened.anchors.as_ref().unwrap().shortest_anchored, 15);
        assert_eq!(super::shortest_match(&super::builtin_rules()).unwrap(), 15);
        for (text, want) in [
            ("Bearer a1b2c3d4", "Bearer [REDACTED:http.bearer]"),
            ("secret=a1b2c3d4", "secret=[REDACTED:plaid.client_secret]"),
            ("Bearer a1b2c3d", "Bearer a1b2c3d"),
        ] {
            assert_eq!(screened.scrub(text, None), want, "{text}");
        }
    }

    /// Text too short for every rule but the routing number: a run of a routing number's digits
    /// of every length at every place, among word and separator bytes, settles as the full
    /// scan does.
    #[test]
    fn short_text_routing_check_is_exact() {
        let (screened, _, full) = rule_sets();
        let digits = b"021000021";
        let mut checked = 0;
        for len in 0..=super::SHORT_TEXT_MAX + 2 {
            for filler in [b'x', b' ', b'-', b'7'] {
                for start in 0..len {
                    for run in 0..=len - start {
                        let mut text = vec![filler; len];
                        for (i, b) in text.iter_mut().skip(start).take(run).enumerate() {
                            *b = digits[i % digits.len()];
                        }
                        assert_eq!(
                            super::short_routing_only(&text),
                            super::routing_only(&text),
                            "{text:?}"
                        );
                        let text = String::from_utf8(text).unwrap();
                        assert_eq!(
                            screened.scrub(&text, None),
                            full.scrub(&text, None),
                            "{text:?}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 2000);
        assert_eq!(
            screened.scrub("pay 021000021", None),
            "pay [REDACTED:bank.routing_number]"
        );
    }

    /// Every byte value at every position of lengths around the sixteen-byte steps: the word
    /// test (byte at a time under sixteen bytes, wide from sixteen on) agrees with a
    /// byte-at-a-time definition.
    #[test]
    fn word_test_is_exact() {
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        for len in [0usize, 9, 15, 16, 17, 31, 32, 33, 47, 48, 100, 128] {
            let plain: Vec<u8> = (0..len).map(|i| b"aZ0_q9"[i % 6]).collect();
            assert!(super::word_only(&plain), "{len}");
            for at in 0..len {
                for b in 0..=u8::MAX {
                    let mut text = plain.clone();
                    text[at] = b;
                    assert_eq!(
                        super::word_only(&text),
                        word(b),
                        "byte {b:#x} at {at} of {len}"
                    );
                }
            }
        }
    }

    /// Every position of every length up to 40: the pairs, the eight-byte turns and the last
    /// few bytes each see a piece and each flag, wherever it falls.
    #[test]
    fn screen_sees_every_position() {
        let screen = super::AnchorScreen::new(&[], &[*b"bcd"]).unwrap();
        let scan = |text: &[u8]| screen.scan(text);
        let none = super::Scan {
            piece: false,
            non_word: false,
            digit: false,
        };
        for len in 0..=40usize {
            let plain = vec![b'x'; len];
            assert_eq!(scan(&plain), none, "{len}");
            for at in 0..len {
                let mut text = plain.clone();
                if let Some(b) = text.get_mut(at) {
                    *b = b'-';
                }
                let want = super::Scan {
                    non_word: true,
                    ..none
                };
                assert_eq!(scan(&text), want, "'-' at {at} of {len}");
                if let Some(b) = text.get_mut(at) {
                    *b = b'7';
                }
                let want = super::Scan {
                    digit: true,
                    ..none
                };
                assert_eq!(scan(&text), want, "'7' at {at} of {len}");
                if let Some(piece) = text.get_mut(at..at + 3) {
                    piece.copy_from_slice(b"bcd");
                    let want = super::Scan {
                        piece: true,
                        ..none
                    };
                    assert_eq!(scan(&text), want, "piece at {at} of {len}");
                }
            }
        }
    }

    #[test]
    fn screen_finds_exactly_its_pieces() {
        let screen = super::AnchorScreen::new(&["abcd", "zzzq"], &[*b"bcd"]).unwrap();
        // "zzzq" had no listed piece: its first three bytes stand in.
        for (text, want) in [
            ("xbcdx", true),
            ("bcd", true),
            ("xxbc", false),
            ("zzz", true),
            ("zz", false),
            ("zzyzz", false),
            ("", false),
            ("b", false),
        ] {
            assert_eq!(screen.may_hold_anchor(text.as_bytes()), want, "{text:?}");
        }
        assert!(
            super::AnchorScreen::new(&["ab"], &[]).is_none(),
            "anchor too short"
        );
        let many: Vec<[u8; 3]> = (0..13u8).map(|i| [b'a' + i, b'x', b'x']).collect();
        assert!(
            super::AnchorScreen::new(&[], &many).is_none(),
            "over 12 pieces"
        );
        assert!(super::AnchorScreen::new(&[], &many[..12]).is_some());
        // Without regard to case.
        assert!(screen.may_hold_anchor(b"xBcDx"));
        assert!(screen.may_hold_anchor(b"ZZZ"));
    }

    /// Short texts that hold a secret take the screened path and are still redacted, wherever
    /// the secret stands; each gives what the full scan gives.
    #[test]
    fn screened_strings_that_hold_a_secret_are_redacted() {
        let (screened, _, full) = rule_sets();
        let token = "access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6";
        let cases = [
            (token.to_owned(), "de3ce8ef"),
            (format!("{token} ok"), "de3ce8ef"),
            (format!("token {token} ok"), "de3ce8ef"),
            (format!("token={token}"), "de3ce8ef"),
            ("link-production-abc12-def34".to_owned(), "abc12-def34"),
            ("wire 021000021 ok".to_owned(), "021000021"),
            ("021000021".to_owned(), "021000021"),
            ("to 011401533".to_owned(), "011401533"),
            ("2024-03-01 011401533".to_owned(), "011401533"),
            ("Bearer abcDEF123456".to_owned(), "abcDEF123456"),
            ("x BEARER abcDEF123456".to_owned(), "abcDEF123456"),
            (
                "Authorization: Basic dXNlcjpwYXNz".to_owned(),
                "dXNlcjpwYXNz",
            ),
            (
                "eyJhbGciOiJFUzI1NiJ9.eyJpYXQiOjE2MDB9.c2ln".to_owned(),
                "eyJpYXQi",
            ),
            ("secret=0123456789abcdef".to_owned(), "0123456789abcdef"),
            (
                "PLAID-SECRET: 0123456789abcdef".to_owned(),
                "0123456789abcdef",
            ),
            ("clientId=5f1c0b7e01234567".to_owned(), "5f1c0b7e01234567"),
            (
                "PLAID_CLIENT_ID=5f1c0b7e01234567".to_owned(),
                "5f1c0b7e01234567",
            ),
            (
                r#""account": "1111222233330000""#.to_owned(),
                "1111222233330000",
            ),
            (r#""routingNumber":"011401533""#.to_owned(), "011401533"),
        ];
        for (text, secret) in &cases {
            assert!(text.len() <= super::SCREEN_MAX_LEN, "{text}");
            let out = screened.scrub(text, None);
            assert!(!out.contains(secret), "{text} -> {out}");
            assert_eq!(out, full.scrub(text, None), "{text}");
        }
        // Look-alikes the screen passes without a search: borrowed, unchanged.
        for text in [
            "2024-03-01",
            "2024-03-01T11:06:00Z",
            "https://plaid-merchant-logos.plaid.com/uber.png",
            "1234 Main St",
            "order 123456789 shipped",
        ] {
            assert!(
                matches!(screened.scrub(text, None), std::borrow::Cow::Borrowed(_)),
                "{text}"
            );
        }
    }

    #[test]
    fn custom_patterns_are_not_screened() {
        let policy = Policy::builder()
            .pattern("employee", r"EMP-[0-9]{6}")
            .unwrap()
            .build()
            .unwrap();
        for (text, want) in [
            ("EMP-123456", "[REDACTED:custom.employee]"),
            (
                "by EMP-123456 at 2024-03-01",
                "by [REDACTED:custom.employee] at 2024-03-01",
            ),
            ("x EMP-123456", "x [REDACTED:custom.employee]"),
        ] {
            assert_eq!(policy.scrub_text(text), want);
        }
    }

    /// Pieces of anchors and of secrets, cut anywhere, for strings near the screen's edges.
    fn fragment() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let whole: Vec<String> = super::ANCHORS
            .iter()
            .map(|a| (*a).to_owned())
            .chain(
                [
                    "access-sandbox-de3ce8ef-33f8",
                    "transfer-development-41757468",
                    "Bearer abc123def456",
                    "Authorization: Basic dXNlcjpwYXNz",
                    "eyJhbGciOiJFUzI1NiJ9.eyJpYXQiOjE2MDB9.c2ln",
                    "PLAID-SECRET: 0123456789abcdef",
                    "client_id=5f1c0b7e01234567",
                    "\"routing\": \"011401533\"",
                    "\"account\":\"1111222233330000\"",
                    "021000021",
                    "2024-03-01T11:06:00Z",
                    "é—",
                ]
                .map(str::to_owned),
            )
            .collect();
        prop_oneof![
            "[ -~]{0,10}",
            "[0-9 ._:=\"-]{0,12}",
            (proptest::sample::select(whole), 0usize..64, 0usize..64).prop_map(|(s, a, b)| {
                // A slice of the fragment on character boundaries.
                let chars: Vec<char> = s.chars().collect();
                let (a, b) = (a % (chars.len() + 1), b % (chars.len() + 1));
                chars[a.min(b)..a.max(b)].iter().collect()
            }),
        ]
    }

    proptest::proptest! {
        /// With the screen, without it, and the full regex scan agree on short strings.
        #[test]
        fn screened_scrub_equals_full_scan(
            parts in proptest::collection::vec(fragment(), 0..8)
        ) {
            let (screened, unscreened, full) = rule_sets();
            let text: String = parts.concat();
            let want = full.scrub(&text, None);
            proptest::prop_assert_eq!(&screened.scrub(&text, None), &want);
            proptest::prop_assert_eq!(&unscreened.scrub(&text, None), &want);
            proptest::prop_assert_eq!(&screened.scrub_full_scan(&text, None), &want);
        }

        /// The screen reports a piece exactly when the text holds one; no piece, no anchor.
        #[test]
        fn screen_equals_a_piece_search(
            parts in proptest::collection::vec(fragment(), 0..6)
        ) {
            let (screened, _, _) = rule_sets();
            let screen = screened.anchors.as_ref().unwrap().screen.as_ref().unwrap();
            let text = parts.concat();
            let bytes = text.as_bytes();
            let has_piece = super::ANCHOR_FRAGMENTS
                .iter()
                .any(|p| bytes.windows(3).any(|w| w.eq_ignore_ascii_case(p)));
            proptest::prop_assert_eq!(screen.may_hold_anchor(bytes), has_piece);
            let non_word = !bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_');
            let digit = bytes.iter().any(u8::is_ascii_digit);
            proptest::prop_assert_eq!(
                screen.scan(bytes),
                super::Scan { piece: has_piece, non_word, digit }
            );
            if !has_piece {
                proptest::prop_assert!(!super::ANCHORS.iter().any(|a| text.contains(a)));
            }
        }

        /// The word-at-a-time byte tests agree with byte-at-a-time definitions.
        #[test]
        fn word_at_a_time_tests_are_exact(bytes in proptest::collection::vec(
            // Mostly digits, so that runs of nine and more are common.
            proptest::prop_oneof![
                1 => proptest::num::u8::ANY,
                6 => b'0'..=b'9',
                1 => b'a'..=b'z',
            ],
            0..40,
        )) {
            let word = bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_');
            proptest::prop_assert_eq!(super::word_only(&bytes), word);
            {
                let longest = bytes
                    .split(|b| !b.is_ascii_digit())
                    .map(<[u8]>::len)
                    .max()
                    .unwrap_or(0);
                proptest::prop_assert_eq!(super::nine_digit_run(&bytes), longest >= 9);
            }
        }
    }
}
