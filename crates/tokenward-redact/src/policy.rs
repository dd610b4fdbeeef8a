//! Redaction policies: which field names and which values are secrets.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
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
    fields: HashMap<Box<[u8]>, Rule>,
    allow: Option<HashSet<Box<[u8]>>>,
    not_allowed: Box<str>,
    text: crate::text::TextRules,
    fingerprinter: Option<Fingerprinter>,
}

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
            return FieldAction::Redact(&self.inner.not_allowed);
        }
        match self.inner.fields.get(key) {
            Some(rule) => FieldAction::Redact(&rule.placeholder),
            None => FieldAction::Keep,
        }
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
    pub fn scrub_text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.inner
            .text
            .scrub(text, self.inner.fingerprinter.as_ref())
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
                not_allowed: Tag::NOT_ALLOWED.placeholder().into_boxed_str(),
                text: crate::text::TextRules::empty(),
                fingerprinter: None,
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
        for (name, tag) in self.fields {
            let key = normalize_field_name(&name).into_bytes();
            if !kept.contains(&key) {
                fields.insert(key.into_boxed_slice(), Rule::new(tag));
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
                not_allowed: Tag::NOT_ALLOWED.placeholder().into_boxed_str(),
                text,
                fingerprinter: self.fingerprinter,
            }),
        })
    }
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
}
