//! Tags name what was redacted; placeholders carry them.

use std::borrow::Cow;
use std::fmt;

/// The start of every placeholder.
pub const PLACEHOLDER_PREFIX: &str = "[REDACTED:";

/// What kind of secret a rule found: the name inside a placeholder such as
/// `[REDACTED:plaid.access_token]`.
///
/// Tag names are 1 to 48 characters of `a-z 0-9 _ .`. The built-in tags are constants; a
/// policy's custom rules get `custom.<name>` tags.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(Cow<'static, str>);

impl Tag {
    /// A Plaid `access-<env>-<id>` token.
    pub const ACCESS_TOKEN: Tag = Tag::builtin("plaid.access_token");
    /// A Plaid `public-<env>-<id>` token.
    pub const PUBLIC_TOKEN: Tag = Tag::builtin("plaid.public_token");
    /// A Plaid `link-<env>-<id>` token.
    pub const LINK_TOKEN: Tag = Tag::builtin("plaid.link_token");
    /// A Plaid `processor-<env>-<id>` token.
    pub const PROCESSOR_TOKEN: Tag = Tag::builtin("plaid.processor_token");
    /// Any other Plaid `<type>-<env>-<id>` token (user, payment, transfer…).
    pub const PLAID_TOKEN: Tag = Tag::builtin("plaid.token");
    /// The Plaid API secret (`secret`, `PLAID-SECRET`).
    pub const CLIENT_SECRET: Tag = Tag::builtin("plaid.client_secret");
    /// The Plaid client id (`client_id`, `PLAID-CLIENT-ID`).
    pub const CLIENT_ID: Tag = Tag::builtin("plaid.client_id");
    /// A bank account number.
    pub const ACCOUNT_NUMBER: Tag = Tag::builtin("bank.account_number");
    /// A bank routing number (ABA).
    pub const ROUTING_NUMBER: Tag = Tag::builtin("bank.routing_number");
    /// The credential of an HTTP `Bearer` authorization.
    pub const BEARER: Tag = Tag::builtin("http.bearer");
    /// An `Authorization` or `Cookie` header value.
    pub const AUTHORIZATION: Tag = Tag::builtin("http.authorization");
    /// A JSON Web Token.
    pub const JWT: Tag = Tag::builtin("jwt");
    /// A password, API key or other credential found by field name.
    pub const CREDENTIAL: Tag = Tag::builtin("credential");
    /// A field that an allow-list policy does not name.
    pub const NOT_ALLOWED: Tag = Tag::builtin("not_allowed");

    const fn builtin(name: &'static str) -> Tag {
        Tag(Cow::Borrowed(name))
    }

    /// A tag for a custom rule: `custom.<name>`.
    ///
    /// # Errors
    ///
    /// [`TagError`] when `name` is empty, longer than 40 characters, or has characters outside
    /// `a-z 0-9 _`.
    pub fn custom(name: &str) -> Result<Tag, TagError> {
        if name.is_empty()
            || name.len() > 40
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(TagError);
        }
        Ok(Tag(Cow::Owned(format!("custom.{name}"))))
    }

    /// The tag's name, e.g. `plaid.access_token`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.0
    }

    /// The placeholder for this tag: `[REDACTED:<name>]`. Its width depends only on the tag,
    /// never on the value it replaces.
    #[must_use]
    pub fn placeholder(&self) -> String {
        format!("{PLACEHOLDER_PREFIX}{}]", self.0)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({})", self.0)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A custom tag name that breaks the rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tag names are 1 to 40 characters of a-z, 0-9 and `_`")]
pub struct TagError;

/// Whether `s` is exactly one placeholder this crate writes: `[REDACTED:<tag>]`, optionally with
/// a fingerprint: `[REDACTED:<tag> fp1:<16 hex>]`.
#[must_use]
pub fn is_placeholder(s: &str) -> bool {
    let Some(inner) = s
        .strip_prefix(PLACEHOLDER_PREFIX)
        .and_then(|r| r.strip_suffix(']'))
    else {
        return false;
    };
    let (tag, fingerprint) = match inner.split_once(' ') {
        Some((tag, fp)) => (tag, Some(fp)),
        None => (inner, None),
    };
    let tag_ok = !tag.is_empty()
        && tag.len() <= 48
        && tag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
    let fp_ok = fingerprint.is_none_or(|fp| {
        fp.strip_prefix("fp1:")
            .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    tag_ok && fp_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_recognised() {
        assert_eq!(
            Tag::ACCESS_TOKEN.placeholder(),
            "[REDACTED:plaid.access_token]"
        );
        assert!(is_placeholder("[REDACTED:plaid.access_token]"));
        assert!(is_placeholder(
            "[REDACTED:custom.card fp1:0123456789abcdef]"
        ));
        assert!(!is_placeholder("[REDACTED:]"));
        assert!(!is_placeholder("[REDACTED:Plaid]"));
        assert!(!is_placeholder("[REDACTED:x fp1:0123]"));
        assert!(!is_placeholder("[REDACTED:x] "));
        assert_eq!(Tag::custom("card").unwrap().name(), "custom.card");
        assert!(Tag::custom("Card").is_err());
    }
}
