//! Redaction policies: which field names and which values are secrets.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::{Fingerprinter, Tag};

/// Largest compiled size of one custom pattern (the limit Sentry Relay uses).
pub const MAX_CUSTOM_PATTERN_SIZE: usize = 256 * 1024;

/// Field names redacted by [`Policy::plaid`], before normalisation, with their tags.
///
/// Matching is exact after normalisation (see [`normalize_field_name`]), never by substring:
/// `token_type`, `total_tokens`, `link_session_id`, `item_id`, `account_id`, `request_id` and
/// every other Plaid field not listed here pass unchanged (their *values* are still checked by
/// the value rules). [`SAFE_FIELDS`] lists the look-alikes that are deliberately kept.
pub const PLAID_FIELDS: &[(&str, Tag)] = &[
    ("access_token", Tag::ACCESS_TOKEN),
    ("new_access_token", Tag::ACCESS_TOKEN),
    ("public_token", Tag::PUBLIC_TOKEN),
    ("link_token", Tag::LINK_TOKEN),
    ("processor_token", Tag::PROCESSOR_TOKEN),
    ("user_token", Tag::PLAID_TOKEN),
    ("secret", Tag::CLIENT_SECRET),
    ("client_secret", Tag::CLIENT_SECRET),
    ("plaid_secret", Tag::CLIENT_SECRET),
    ("client_id", Tag::CLIENT_ID),
    ("plaid_client_id", Tag::CLIENT_ID),
    ("account", Tag::ACCOUNT_NUMBER),
    ("account_number", Tag::ACCOUNT_NUMBER),
    ("routing", Tag::ROUTING_NUMBER),
    ("wire_routing", Tag::ROUTING_NUMBER),
    ("routing_number", Tag::ROUTING_NUMBER),
    ("authorization", Tag::AUTHORIZATION),
    ("proxy_authorization", Tag::AUTHORIZATION),
    ("cookie", Tag::AUTHORIZATION),
    ("set_cookie", Tag::AUTHORIZATION),
    ("plaid_verification", Tag::JWT),
    ("password", Tag::CREDENTIAL),
    ("api_key", Tag::CREDENTIAL),
    ("refresh_token", Tag::CREDENTIAL),
    ("id_token", Tag::CREDENTIAL),
    ("private_key", Tag::CREDENTIAL),
];

/// Plaid fields whose names look like secrets but are not, kept by [`Policy::plaid`]: the
/// documented safe list. (Exact matching already keeps them; the list is here so a reviewer
/// can see the decision, and a test checks that none of them is redacted by name.)
pub const SAFE_FIELDS: &[&str] = &[
    "item_id",
    "account_id",
    "request_id",
    "link_session_id",
    "transaction_id",
    "institution_id",
    "token_type",
    "total_tokens",
    "expiration",
    "webhook",
    "webhook_code",
    "webhook_type",
    "account_owner",
    "mask",
    "key_id",
    "kid",
];

/// What a policy does with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldAction<'p> {
    /// Keep the field; its string values still go through the value rules.
    Keep,
    /// Replace the whole value (string, number, object or array) with this placeholder.
    Redact(&'p str),
}

/// A redaction policy: field-name rules, value rules and a mode. Cheap to clone (shared).
///
/// - **Field rules** redact a value by the name of the field that holds it, matched exactly
///   after [normalisation](normalize_field_name) so `access_token`, `accessToken`,
///   `access-token` and `Access-Token` are one name.
/// - **Value rules** find secrets by their shape wherever they stand: Plaid tokens of every
///   type and environment, `Bearer` credentials, JWTs, `PLAID-SECRET` / `client_secret` /
///   `PLAID-CLIENT-ID` values after their key, account and routing numbers after their JSON
///   key, ABA-checksummed routing numbers in free text, and custom patterns.
/// - **Allow-list mode** fails closed: only named fields pass, every other field is replaced
///   by `[REDACTED:not_allowed]`, and an empty list passes nothing.
///
/// There is no switch that turns redaction off.
#[derive(Clone)]
pub struct Policy {
    inner: Arc<Inner>,
}

struct Inner {
    /// Normalised name → the [`Decision`] of a field rule.
    fields: HashMap<Box<[u8]>, Decision>,
    allow: Option<HashSet<Box<[u8]>>>,
    /// What a [`Decision`] names: `[0]` is `not_allowed`, then one per field rule.
    placeholders: Box<[Box<str>]>,
    text: crate::text::TextRules,
    fingerprinter: Option<Fingerprinter>,
    /// Decisions for `&'static str` names (struct fields), kept for the policy's life.
    static_names: StaticNames,
}

/// What a policy does with a field, as a number: 0 keeps it, `d` replaces it with
/// `placeholders[d - 1]`.
type Decision = u32;

/// The [`Decision`] for fields an allow list does not name.
const NOT_ALLOWED: Decision = 1;

/// `Tag::NOT_ALLOWED.placeholder()`, for a decision that names no placeholder.
const NOT_ALLOWED_PLACEHOLDER: &str = "[REDACTED:not_allowed]";

/// A rule's tag and its (fingerprint-free) placeholder.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) tag: Tag,
    pub(crate) placeholder: Box<str>,
}

impl Rule {
    pub(crate) fn new(tag: Tag) -> Self {
        Rule {
            placeholder: tag.placeholder().into_boxed_str(),
            tag,
        }
    }
}

impl Policy {
    /// The default policy for Plaid data: [`PLAID_FIELDS`] by name, all built-in value rules, no
    /// fingerprints. Built once per process; clones share it.
    #[must_use]
    pub fn plaid() -> Policy {
        static PLAID: OnceLock<Policy> = OnceLock::new();
        PLAID
            .get_or_init(|| {
                // The built-in rules are fixed and tested; building them cannot fail.
                PolicyBuilder::plaid()
                    .build()
                    .unwrap_or_else(|_| Policy::fail_closed())
            })
            .clone()
    }

    /// A builder starting from the Plaid defaults.
    #[must_use]
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder::plaid()
    }

    /// What to do with a field called `name`.
    #[must_use]
    pub fn field(&self, name: &str) -> FieldAction<'_> {
        self.action(self.decide(name))
    }

    /// [`Policy::field`] for a name that lives as long as the program (a struct field's or a
    /// variant's, as serde passes them): the decision is computed once per policy and name,
    /// then found by the name's address.
    ///
    /// Inline only for the common case, a name already found kept; the rest is a call.
    #[inline]
    pub(crate) fn static_field(&self, name: &'static str) -> Option<&str> {
        if self.inner.static_names.known_kept(name) {
            return None;
        }
        self.static_field_slow(name)
    }

    /// [`Policy::static_field`] past its inline shortcut.
    #[inline(never)]
    fn static_field_slow(&self, name: &'static str) -> Option<&str> {
        match self.inner.static_names.get(name, || self.decide(name)) {
            0 => None,
            decision => match self.action(decision) {
                FieldAction::Keep => None,
                FieldAction::Redact(placeholder) => Some(placeholder),
            },
        }
    }

    /// The action a decision names. One that names no placeholder (which `build` never makes)
    /// fails closed.
    #[inline]
    fn action(&self, decision: Decision) -> FieldAction<'_> {
        let Some(index) = decision.checked_sub(1) else {
            return FieldAction::Keep;
        };
        FieldAction::Redact(
            usize::try_from(index)
                .ok()
                .and_then(|i| self.inner.placeholders.get(i))
                .map_or(NOT_ALLOWED_PLACEHOLDER, |p| &**p),
        )
    }

    fn decide(&self, name: &str) -> Decision {
        let mut buf = [0u8; 64];
        let key = normalize_into(name, &mut buf);
        let owned;
        let key: &[u8] = if let Some(k) = key {
            k
        } else {
            owned = normalize_field_name(name).into_bytes();
            &owned
        };
        if self
            .inner
            .allow
            .as_ref()
            .is_some_and(|allow| !allow.contains(key))
        {
            return NOT_ALLOWED;
        }
        self.inner.fields.get(key).copied().unwrap_or(0)
    }

    /// Whether this policy fails closed on field names (allow-list mode).
    #[must_use]
    pub fn is_allow_list(&self) -> bool {
        self.inner.allow.is_some()
    }

    /// Scrubs free text: every value-rule match is replaced by its placeholder. Clean text comes
    /// back borrowed, without a copy. Placeholders are left alone, so scrubbing twice equals
    /// scrubbing once.
    #[must_use]
    #[inline]
    pub fn scrub_text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.inner
            .text
            .scrub(text, self.inner.fingerprinter.as_ref())
    }

    /// Whether [`Policy::scrub_text`] certainly returns `text` unchanged, judged by its
    /// shortcuts alone (`false` when they cannot tell, then `scrub_text` decides).
    #[inline]
    pub(crate) fn certainly_unchanged(&self, text: &str) -> bool {
        self.inner.text.certainly_unchanged(text)
    }

    /// [`Policy::scrub_text`] without any of its shortcuts (the anchor search, the screens):
    /// the rule regex over the whole text. For the fuzz hooks, which check that the two agree.
    pub(crate) fn scrub_text_full_scan<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.inner
            .text
            .scrub_full_scan(text, self.inner.fingerprinter.as_ref())
    }

    /// Scrubs bytes in place, keeping their length: for binary dumps where offsets matter. Each
    /// match is overwritten with its placeholder, cut to the match's length or padded with
    /// `*`. Returns how many matches were redacted.
    pub fn scrub_bytes_in_place(&self, bytes: &mut [u8]) -> usize {
        self.inner.text.scrub_bytes(bytes)
    }

    /// The fingerprinter, if the policy has one.
    #[must_use]
    pub fn fingerprinter(&self) -> Option<&Fingerprinter> {
        self.inner.fingerprinter.as_ref()
    }

    /// A policy that redacts every field: used only if the built-in rules failed to compile,
    /// which tests rule out.
    fn fail_closed() -> Policy {
        Policy {
            inner: Arc::new(Inner {
                fields: HashMap::new(),
                allow: Some(HashSet::new()),
                placeholders: Box::new([Tag::NOT_ALLOWED.placeholder().into_boxed_str()]),
                text: crate::text::TextRules::empty(),
                fingerprinter: None,
                static_names: StaticNames::new(),
            }),
        }
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("field_rules", &self.inner.fields.len())
            .field("allow_list", &self.inner.allow.as_ref().map(HashSet::len))
            .field("value_rules", &self.inner.text.rule_count())
            .field("fingerprints", &self.inner.fingerprinter.is_some())
            .finish()
    }
}

/// Builds a [`Policy`].
///
/// ```
/// use tokenward_redact::{FieldAction, Policy, Tag};
///
/// let policy = Policy::builder()
///     .redact_field("ssn", Tag::custom("ssn")?)
///     .pattern("employee", r"EMP-[0-9]{6}")?
///     .build()?;
/// assert!(matches!(policy.field("SSN"), FieldAction::Redact("[REDACTED:custom.ssn]")));
/// assert_eq!(policy.scrub_text("user EMP-123456 logged in"), "user [REDACTED:custom.employee] logged in");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct PolicyBuilder {
    fields: Vec<(String, Tag)>,
    kept: Vec<String>,
    allow: Option<Vec<String>>,
    patterns: Vec<(Tag, String)>,
    fingerprinter: Option<Fingerprinter>,
}

impl PolicyBuilder {
    /// The Plaid defaults: [`PLAID_FIELDS`] and every built-in value rule.
    #[must_use]
    pub fn plaid() -> Self {
        PolicyBuilder {
            fields: PLAID_FIELDS
                .iter()
                .map(|(n, t)| ((*n).to_owned(), t.clone()))
                .collect(),
            kept: Vec::new(),
            allow: None,
            patterns: Vec::new(),
            fingerprinter: None,
        }
    }

    /// Redacts fields called `name` (matched after normalisation) with `tag`.
    #[must_use]
    pub fn redact_field(mut self, name: &str, tag: Tag) -> Self {
        self.fields.push((name.to_owned(), tag));
        self
    }

    /// Stops redacting fields called `name` by name (values are still checked by value rules).
    #[must_use]
    pub fn keep_field(mut self, name: &str) -> Self {
        self.kept.push(name.to_owned());
        self
    }

    /// Switches to allow-list mode: only these fields pass (field rules still apply to them);
    /// every other field is redacted as `not_allowed`. An empty list passes nothing.
    #[must_use]
    pub fn allow_only<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.allow = Some(fields.into_iter().map(|s| s.as_ref().to_owned()).collect());
        self
    }

    /// Adds a custom value rule: a regular expression (Rust `regex` syntax) whose matches are
    /// replaced by `[REDACTED:custom.<name>]`.
    ///
    /// # Errors
    ///
    /// [`PolicyError`] for a bad name, a pattern that does not compile, one over
    /// [`MAX_CUSTOM_PATTERN_SIZE`] compiled, one that matches the empty string, or one that
    /// matches a placeholder (re-scrubbing would then not be a no-op).
    pub fn pattern(mut self, name: &str, pattern: &str) -> Result<Self, PolicyError> {
        let tag = Tag::custom(name).map_err(|_| PolicyError::InvalidName(name.to_owned()))?;
        crate::text::check_custom_pattern(pattern).map_err(|reason| {
            PolicyError::InvalidPattern {
                name: name.to_owned(),
                reason,
            }
        })?;
        self.patterns.push((tag, pattern.to_owned()));
        Ok(self)
    }

    /// Adds keyed fingerprints to value-rule placeholders:
    /// `[REDACTED:plaid.access_token fp1:9f2c0a1b2c3d4e5f]`.
    #[must_use]
    pub fn fingerprints(mut self, fingerprinter: Fingerprinter) -> Self {
        self.fingerprinter = Some(fingerprinter);
        self
    }

    /// Compiles the policy.
    ///
    /// # Errors
    ///
    /// [`PolicyError::Compile`] if the combined value rules do not compile.
    pub fn build(self) -> Result<Policy, PolicyError> {
        let kept: HashSet<Vec<u8>> = self
            .kept
            .iter()
            .map(|n| normalize_field_name(n).into_bytes())
            .collect();
        let mut fields = HashMap::new();
        let mut placeholders = vec![Tag::NOT_ALLOWED.placeholder().into_boxed_str()];
        for (name, tag) in self.fields {
            let key = normalize_field_name(&name).into_bytes();
            if !kept.contains(&key) {
                placeholders.push(tag.placeholder().into_boxed_str());
                let decision = Decision::try_from(placeholders.len())
                    .map_err(|_| PolicyError::Compile("too many field rules".to_owned()))?;
                fields.insert(key.into_boxed_slice(), decision);
            }
        }
        let allow = self.allow.map(|names| {
            names
                .iter()
                .map(|n| normalize_field_name(n).into_bytes().into_boxed_slice())
                .collect()
        });
        let text = crate::text::TextRules::compile(&self.patterns).map_err(PolicyError::Compile)?;
        Ok(Policy {
            inner: Arc::new(Inner {
                fields,
                allow,
                placeholders: placeholders.into_boxed_slice(),
                text,
                fingerprinter: self.fingerprinter,
                static_names: StaticNames::new(),
            }),
        })
    }
}

/// Field decisions by the address of a `&'static str` name, shared by every thread that uses
/// the policy.
///
/// Keyed by address and length: a `&'static str` is never freed or changed, so one address and
/// length always hold the same name. Each slot is written once (claimed, filled, then
/// published with a release store that readers acquire) and never evicted, so a reader sees
/// either an empty or claimed slot, or a complete entry; a name whose slots are all taken by
/// others is decided afresh each time, as without a cache. A kept name's slot also gets the
/// name's address and length packed into one word, so the common lookup (a kept field) is one
/// load and compare.
struct StaticNames {
    /// In line (the policy's `Inner` is on the heap already): one load fewer per lookup.
    slots: [StaticSlot; STATIC_SLOTS],
}

#[derive(Default)]
struct StaticSlot {
    /// The name's address, valid once `entry` is published.
    addr: AtomicUsize,
    /// 0: empty; [`CLAIMED`]: being written; else the name's length (high half) and its
    /// decision plus one (low half).
    entry: AtomicU64,
    /// For a kept name whose address and length pack into one word ([`kept_key`]), that word,
    /// written after `entry` is published; else 0. One load and compare finds a kept name.
    kept: AtomicU64,
}

/// log2 of [`STATIC_SLOTS`].
const STATIC_BITS: u32 = 9;
/// Slots per policy (8 KiB): room for the field names of many Plaid response types.
const STATIC_SLOTS: usize = 1 << STATIC_BITS;
/// Slots looked at for one name.
const STATIC_PROBES: usize = 4;
/// The `entry` of a slot being written.
const CLAIMED: u64 = u64::MAX;

impl StaticNames {
    fn new() -> Self {
        StaticNames {
            slots: std::array::from_fn(|_| StaticSlot::default()),
        }
    }

    /// Whether `name` sits in one of its first two slots, decided as kept: the common case, in
    /// a few instructions (one load and compare a slot, against the name's [`kept_key`]).
    #[inline]
    fn known_kept(&self, name: &'static str) -> bool {
        let addr = name.as_ptr().addr();
        let Some(key) = kept_key(addr, name.len()) else {
            return false;
        };
        let kept_at = |i: usize| {
            self.slots
                .get(i % STATIC_SLOTS)
                .is_some_and(|slot| slot.kept.load(Ordering::Relaxed) == key)
        };
        // The name's first slot, or the next, where a name whose first slot was taken
        // usually lands (a few names of a hundred collide in the first slot).
        let start = slot_of(addr);
        kept_at(start) || kept_at(start + 1)
    }

    /// The decision for `name`, from its slot or else from `decide` (then remembered).
    #[inline]
    fn get(&self, name: &'static str, decide: impl FnOnce() -> Decision) -> Decision {
        let addr = name.as_ptr().addr();
        let start = slot_of(addr);
        // The common case, inline: the name sits in its first slot.
        if let Some(slot) = self.slots.get(start) {
            let entry = slot.entry.load(Ordering::Acquire);
            if entry != CLAIMED
                && u64::try_from(name.len()).is_ok_and(|len| entry >> 32 == len)
                && slot.addr.load(Ordering::Relaxed) == addr
            {
                return entry_decision(entry);
            }
        }
        self.probe(name, addr, start, decide)
    }

    /// [`StaticNames::get`] past the first slot: the other probes, or the decision computed
    /// and remembered.
    #[cold]
    #[inline(never)]
    fn probe(
        &self,
        name: &'static str,
        addr: usize,
        start: usize,
        decide: impl FnOnce() -> Decision,
    ) -> Decision {
        // Names of 4 GiB or more are not remembered (an entry could then read as `CLAIMED`).
        let Ok(len) = u32::try_from(name.len()) else {
            return decide();
        };
        for i in 0..STATIC_PROBES {
            let Some(slot) = self.slots.get((start + i) % STATIC_SLOTS) else {
                break;
            };
            let entry = slot.entry.load(Ordering::Acquire);
            if entry == 0 {
                return fill(slot, addr, len, decide());
            }
            if entry != CLAIMED
                && entry >> 32 == u64::from(len)
                && slot.addr.load(Ordering::Relaxed) == addr
            {
                return entry_decision(entry);
            }
        }
        decide()
    }
}

/// The first slot for a name at `addr`: Fibonacci hashing of the address, so names laid out
/// next to each other spread out.
#[inline]
fn slot_of(addr: usize) -> usize {
    let hash = u64::try_from(addr)
        .unwrap_or(0)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        >> (64 - STATIC_BITS);
    usize::try_from(hash).unwrap_or(0)
}

/// A kept name's address and length in one nonzero word: the address below bit 48, the
/// length above. `None` when they do not fit, so two names never share a key (such a name is
/// found the longer way).
#[inline]
fn kept_key(addr: usize, len: usize) -> Option<u64> {
    let addr = u64::try_from(addr).ok().filter(|&a| a < 1 << 48)?;
    let len = u64::try_from(len).ok().filter(|&l| l < 1 << 15)?;
    // Bit 63 set: never 0, the empty slot's value.
    Some(1 << 63 | len << 48 | addr)
}

/// The decision in a published entry (its low half is the decision plus one).
#[inline]
fn entry_decision(entry: u64) -> Decision {
    Decision::try_from(entry & 0xFFFF_FFFF).map_or(0, |d| d.saturating_sub(1))
}

/// Claims an empty slot for a name and publishes its decision (another thread may claim it
/// first; then this decision is just returned).
#[cold]
fn fill(slot: &StaticSlot, addr: usize, len: u32, decision: Decision) -> Decision {
    let Some(low) = decision.checked_add(1).filter(|&low| low != u32::MAX) else {
        return decision;
    };
    if slot
        .entry
        .compare_exchange(0, CLAIMED, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
    {
        slot.addr.store(addr, Ordering::Relaxed);
        // Release: a reader that sees this entry sees `addr` too.
        slot.entry
            .store(u64::from(len) << 32 | u64::from(low), Ordering::Release);
        // The key holds the whole name's identity and the decision (kept), so a reader needs
        // nothing else from the slot: relaxed.
        if decision == 0
            && let Some(key) = usize::try_from(len)
                .ok()
                .and_then(|len| kept_key(addr, len))
        {
            slot.kept.store(key, Ordering::Relaxed);
        }
    }
    decision
}

/// A policy that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A custom rule name breaks the tag rules (1 to 40 of `a-z 0-9 _`).
    #[error("invalid rule name `{0}`: use 1 to 40 characters of a-z, 0-9 and `_`")]
    InvalidName(String),
    /// A custom pattern was refused.
    #[error("custom pattern `{name}` refused: {reason}")]
    InvalidPattern {
        /// The rule's name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The combined rules failed to compile.
    #[error("value rules failed to compile: {0}")]
    Compile(String),
}

/// Normalises a field name for matching: ASCII letters and digits only, lowercased, so
/// `access_token`, `accessToken`, `access-token`, `Access-Token` and `ACCESS_TOKEN` are all
/// `accesstoken`.
#[must_use]
pub fn normalize_field_name(name: &str) -> String {
    name.bytes()
        .filter(u8::is_ascii_alphanumeric)
        .map(|b| char::from(b.to_ascii_lowercase()))
        .collect()
}

/// As [`normalize_field_name`], into a stack buffer; `None` when it does not fit.
fn normalize_into<'b>(name: &str, buf: &'b mut [u8; 64]) -> Option<&'b [u8]> {
    let mut n = 0;
    for b in name.bytes().filter(u8::is_ascii_alphanumeric) {
        *buf.get_mut(n)? = b.to_ascii_lowercase();
        n += 1;
    }
    buf.get(..n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_match_across_cases() {
        let p = Policy::plaid();
        for name in [
            "access_token",
            "accessToken",
            "access-token",
            "Access-Token",
            "ACCESS_TOKEN",
        ] {
            assert_eq!(
                p.field(name),
                FieldAction::Redact("[REDACTED:plaid.access_token]"),
                "{name}"
            );
        }
        assert_eq!(
            p.field("PLAID-SECRET"),
            FieldAction::Redact("[REDACTED:plaid.client_secret]")
        );
        for safe in SAFE_FIELDS {
            assert_eq!(p.field(safe), FieldAction::Keep, "{safe}");
        }
        let long = "x".repeat(100);
        assert_eq!(p.field(&long), FieldAction::Keep);
    }

    #[test]
    fn allow_list_fails_closed() {
        let p = PolicyBuilder::plaid()
            .allow_only(["amount", "date", "access_token"])
            .build()
            .unwrap();
        assert_eq!(p.field("amount"), FieldAction::Keep);
        assert_eq!(
            p.field("merchant_name"),
            FieldAction::Redact("[REDACTED:not_allowed]")
        );
        assert_eq!(
            p.field("accessToken"),
            FieldAction::Redact("[REDACTED:plaid.access_token]")
        );
        let none = PolicyBuilder::plaid()
            .allow_only(Vec::<String>::new())
            .build()
            .unwrap();
        assert_eq!(
            none.field("amount"),
            FieldAction::Redact("[REDACTED:not_allowed]")
        );
    }

    #[test]
    fn keep_field_overrides_a_default() {
        let p = PolicyBuilder::plaid()
            .keep_field("client_id")
            .build()
            .unwrap();
        assert_eq!(p.field("client_id"), FieldAction::Keep);
    }

    #[test]
    fn static_names_decide_as_field_does() {
        let names: Vec<&'static str> = PLAID_FIELDS
            .iter()
            .map(|(n, _)| *n)
            .chain(SAFE_FIELDS.iter().copied())
            .chain([
                "accessToken",
                "Access-Token",
                "PLAID-SECRET",
                "amount",
                "",
                "x",
            ])
            .collect();
        let policies = [
            Policy::plaid(),
            PolicyBuilder::plaid()
                .allow_only(["amount", "item_id", "access_token"])
                .build()
                .unwrap(),
            PolicyBuilder::plaid()
                .keep_field("client_id")
                .redact_field("amount", Tag::custom("amount").unwrap())
                .build()
                .unwrap(),
        ];
        for policy in &policies {
            // Twice: computed, then remembered.
            for _ in 0..2 {
                for &name in &names {
                    let want = match policy.field(name) {
                        FieldAction::Keep => None,
                        FieldAction::Redact(p) => Some(p),
                    };
                    assert_eq!(policy.static_field(name), want, "{name}");
                }
            }
        }
    }

    #[test]
    fn a_decision_without_a_placeholder_fails_closed() {
        let p = Policy::plaid();
        assert_eq!(NOT_ALLOWED_PLACEHOLDER, Tag::NOT_ALLOWED.placeholder());
        assert_eq!(p.action(0), FieldAction::Keep);
        assert_eq!(
            p.action(Decision::MAX),
            FieldAction::Redact(NOT_ALLOWED_PLACEHOLDER)
        );
    }

    #[test]
    fn static_names_key_by_address_and_length() {
        let p = Policy::plaid();
        // A prefix at the same address is a different name.
        let whole: &'static str = "secretive";
        let prefix: &'static str = whole.get(..6).unwrap();
        assert_eq!(whole.as_ptr(), prefix.as_ptr());
        for _ in 0..2 {
            assert_eq!(p.static_field(whole), None);
            assert_eq!(
                p.static_field(prefix),
                Some("[REDACTED:plaid.client_secret]")
            );
        }
    }

    #[test]
    fn kept_keys_are_exact_or_absent() {
        assert_eq!(kept_key(0x1234, 7), Some(1 << 63 | 7 << 48 | 0x1234));
        assert_ne!(kept_key(1, 0), Some(0), "never the empty slot's value");
        assert_ne!(
            kept_key(0x10, 6),
            kept_key(0x10, 9),
            "same address, other length"
        );
        assert_eq!(
            kept_key(1 << 48, 1),
            None,
            "an address that would reach the length"
        );
        assert_eq!(
            kept_key(8, 1 << 15),
            None,
            "a length that would reach the top bit"
        );
        assert!(kept_key((1 << 48) - 1, (1 << 15) - 1).is_some());
    }

    #[test]
    fn static_names_fall_back_when_full() {
        let mut builder = PolicyBuilder::plaid();
        let names: Vec<&'static str> = (0..3 * STATIC_SLOTS)
            .map(|i| &*Box::leak(format!("field_{i}").into_boxed_str()))
            .collect();
        for name in names.iter().step_by(2) {
            builder = builder.redact_field(name, Tag::custom("x").unwrap());
        }
        let p = builder.build().unwrap();
        for _ in 0..2 {
            for (i, name) in names.iter().enumerate() {
                let want = (i % 2 == 0).then_some("[REDACTED:custom.x]");
                assert_eq!(p.static_field(name), want, "{name}");
            }
        }
    }

    #[test]
    fn static_names_are_shared_between_threads() {
        let p = Policy::plaid();
        let names: Vec<&'static str> = (0..200)
            .map(|i| &*Box::leak(format!("n{i}_access_token").into_boxed_str()))
            .chain(PLAID_FIELDS.iter().map(|(n, _)| *n))
            .chain(SAFE_FIELDS.iter().copied())
            .collect();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        for &name in &names {
                            let want = match p.field(name) {
                                FieldAction::Keep => None,
                                FieldAction::Redact(p) => Some(p),
                            };
                            assert_eq!(p.static_field(name), want, "{name}");
                        }
                    }
                });
            }
        });
    }
}
