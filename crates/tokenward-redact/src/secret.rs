//! Secret types for Plaid credentials and bank numbers.
//!
//! Each type holds one validated value in a [`SecretString`] (zeroized on drop) and shows it to
//! nobody by accident:
//!
//! - `Display` prints exactly the placeholder of the type's [`Tag`], e.g.
//!   `[REDACTED:plaid.access_token]`; `Debug` wraps it in the type name:
//!   `AccessToken([REDACTED:plaid.access_token])`.
//! - `Serialize` writes the placeholder too, so a struct serialized for a log is redacted.
//!   Writing the raw value is an explicit opt-in for the Plaid HTTP client: the [`wire`]
//!   module and the `wire()` method of each type.
//! - `Deserialize` runs the same validation as `new` and refuses redaction placeholders, so a
//!   redacted log line fed back in fails loudly instead of becoming a credential.
//! - The only read is `expose_secret()`. Equality is constant-time; there is no `Clone`, `Hash`
//!   or `Ord`.
//!
//! No error message, `Debug` or `Display` output of this module contains a secret value.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, Unexpected};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroize as _;

use crate::tag::{PLACEHOLDER_PREFIX, Tag};
use crate::text::aba_checksum_ok;

/// The longest Plaid token accepted, in bytes.
///
/// Plaid tokens are about 50 characters today; the limit is generous so that a new id format
/// still parses, and small enough that a stray document is not taken for a token.
const MAX_TOKEN_LEN: usize = 256;

/// The longest client id or client secret accepted, in bytes.
const MAX_CLIENT_CREDENTIAL_LEN: usize = 128;

/// The token types this module knows, by their first segment. A token of one of these types
/// given where another is expected gets [`SecretError::WrongTokenType`].
const TOKEN_TYPES: [&str; 4] = ["access", "public", "link", "processor"];

/// A value that cannot be one of the secret types of this module.
///
/// No variant carries the rejected value or any part of it: only which type was asked for and
/// why the value does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The value is empty.
    #[error("empty value for a {kind}")]
    Empty {
        /// What was asked for, e.g. `Plaid access token`.
        kind: &'static str,
    },
    /// The value is, or contains, a redaction placeholder such as
    /// `[REDACTED:plaid.access_token]`: it was redacted earlier and is not a credential.
    #[error("refusing to use a redaction placeholder as a {kind}")]
    Placeholder {
        /// What was asked for.
        kind: &'static str,
    },
    /// The value is shorter or longer than the type allows.
    #[error("a {kind} must be {} characters long", LengthRange(*min, *max))]
    Length {
        /// What was asked for.
        kind: &'static str,
        /// The shortest length allowed, in bytes.
        min: usize,
        /// The longest length allowed, in bytes.
        max: usize,
    },
    /// The value has whitespace, a control character or a character outside ASCII.
    #[error("a {kind} must be printable ASCII without whitespace")]
    InvalidCharacter {
        /// What was asked for.
        kind: &'static str,
    },
    /// The value does not have the type's shape.
    #[error("not a {kind}: expected {expected}")]
    Format {
        /// What was asked for.
        kind: &'static str,
        /// The shape expected, e.g. `access-<environment>-<id>`.
        expected: &'static str,
    },
    /// The value is a well-formed Plaid token of another type, e.g. a public token given where
    /// an access token is expected.
    #[error("not a {kind}: got a Plaid {found} token")]
    WrongTokenType {
        /// What was asked for.
        kind: &'static str,
        /// The type segment of the token given: `access`, `public`, `link` or `processor`.
        found: &'static str,
    },
    /// Nine digits whose ABA checksum does not hold (see [`aba_checksum_ok`]).
    #[error("not a {kind}: the ABA checksum does not match")]
    Checksum {
        /// What was asked for.
        kind: &'static str,
    },
}

pub mod wire {
    //! Writing the raw value of a secret: for the Plaid HTTP client only.
    //!
    //! The secret types serialize as their placeholder, so that whatever is serialized for a
    //! log, a trace or an error report stays redacted. A request body sent to Plaid needs the
    //! real value; it asks for it here, explicitly, field by field. Fields may own the secret or
    //! borrow it:
    //!
    //! ```
    //! use serde::Serialize;
    //! use tokenward_redact::{AccessToken, ClientId, ClientSecret};
    //!
    //! #[derive(Serialize)]
    //! struct ItemGetRequest<'a> {
    //!     #[serde(serialize_with = "tokenward_redact::wire::serialize")]
    //!     client_id: &'a ClientId,
    //!     #[serde(serialize_with = "tokenward_redact::wire::serialize_option")]
    //!     secret: Option<ClientSecret>,
    //!     #[serde(serialize_with = "tokenward_redact::wire::serialize")]
    //!     access_token: AccessToken,
    //! }
    //!
    //! let client_id = ClientId::new("5f1c2b3a4d5e6f7a8b9c0d1e")?;
    //! let request = ItemGetRequest {
    //!     client_id: &client_id,
    //!     secret: Some(ClientSecret::new("0123456789abcdef0123456789abcd")?),
    //!     access_token: AccessToken::new("access-sandbox-8ab976e6-64bc-4b38-98f7-731e7a349970")?,
    //! };
    //! let body = serde_json::to_string(&request)?;
    //! assert!(body.contains(r#""client_id":"5f1c2b3a4d5e6f7a8b9c0d1e""#));
    //! assert!(body.contains(r#""access_token":"access-sandbox-8ab976e6-"#));
    //!
    //! // The same struct without the attributes would write placeholders.
    //! assert_eq!(serde_json::to_string(&client_id)?, r#""[REDACTED:plaid.client_id]""#);
    //! # Ok::<(), Box<dyn std::error::Error>>(())
    //! ```
    //!
    //! # Security
    //!
    //! Everything in this module writes secrets in clear. Use it for the body of a request to
    //! Plaid and nowhere else; in particular never on a type that is also logged or returned
    //! from an API of your own. Keeping every raw write behind `wire` makes them easy to audit.

    use std::fmt;

    use secrecy::ExposeSecret;
    use serde::{Serialize, Serializer};

    /// Serializes the raw value of a secret: `#[serde(serialize_with =
    /// "tokenward_redact::wire::serialize")]`.
    ///
    /// Works for every secret type of this crate, a reference to one, and
    /// [`secrecy::SecretString`].
    ///
    /// # Errors
    ///
    /// Whatever error the serializer gives for a string.
    ///
    /// # Security
    ///
    /// Writes the secret in clear; see the [module docs](self).
    pub fn serialize<S, T>(value: &T, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        T: ExposeSecret<str> + ?Sized,
    {
        serializer.serialize_str(value.expose_secret())
    }

    /// Serializes the raw value of an optional secret, `None` as `null`: `#[serde(serialize_with
    /// = "tokenward_redact::wire::serialize_option")]`.
    ///
    /// # Errors
    ///
    /// Whatever error the serializer gives for an option or a string.
    ///
    /// # Security
    ///
    /// Writes the secret in clear; see the [module docs](self).
    #[allow(
        clippy::ref_option,
        reason = "serde's serialize_with passes a reference to the field, an &Option<T>"
    )]
    pub fn serialize_option<S, T>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        T: ExposeSecret<str>,
    {
        match value {
            Some(secret) => serializer.serialize_some(secret.expose_secret()),
            None => serializer.serialize_none(),
        }
    }

    /// A borrowed secret that serializes as its raw value, from the `wire()` method of each
    /// secret type (e.g. [`AccessToken::wire`](crate::AccessToken::wire)).
    ///
    /// Its `Debug` is still redacted: `Wire([REDACTED:plaid.access_token])`. It has no
    /// `Display`.
    ///
    /// # Security
    ///
    /// For the Plaid HTTP client only; see the [module docs](self).
    pub struct Wire<'a> {
        value: &'a str,
        // `Sync` keeps `Wire` `Send`, so a request body holding one can cross an `.await`.
        redacted: &'a (dyn fmt::Display + Sync),
    }

    impl<'a> Wire<'a> {
        /// `redacted` is what `Debug` shows instead of `value`.
        pub(super) fn new(value: &'a str, redacted: &'a (dyn fmt::Display + Sync)) -> Self {
            Wire { value, redacted }
        }
    }

    impl Serialize for Wire<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_str(self.value)
        }
    }

    impl fmt::Debug for Wire<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "Wire({})", self.redacted)
        }
    }
}

/// Defines one secret type: the struct, its constructor and accessors, and the trait impls
/// that keep it redacted. `plaid_token!` adds `environment()` for the token types.
macro_rules! secret_type {
    (
        $(#[$meta:meta])*
        $name:ident {
            tag: $tag:ident,
            kind: $kind:literal,
            accepts: $accepts:expr,
            len: $min:literal ..= $max:expr,
            shape: $shape:expr $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $name(SecretString);

        impl $name {
            /// The tag whose placeholder this type prints and serializes as.
            pub const TAG: Tag = Tag::$tag;

            #[doc = concat!("Checks that `value` is a ", $kind, " and takes ownership of it.")]
            ///
            #[doc = concat!("Accepted: ", $accepts, ".")]
            ///
            /// # Errors
            ///
            /// [`SecretError`] when the value is empty, contains a redaction placeholder, has
            /// whitespace, control or non-ASCII characters, or does not have the shape above.
            /// The error never contains the value.
            ///
            /// # Security
            ///
            /// A rejected value is zeroized before returning. An accepted one is moved, not
            /// copied, into zeroize-on-drop storage (copied once, and the original zeroized,
            /// when the `String` has spare capacity). A `&str` argument is copied; wiping its
            /// source is the caller's business.
            pub fn new(value: impl Into<String>) -> Result<Self, SecretError> {
                parse(value.into(), &<Self as Credential>::RULES).map(Self)
            }

            /// The raw value.
            ///
            /// # Security
            ///
            /// This is the only way to read the secret. Do not log, print or store what it
            /// returns; to put the value in a Plaid request body, use [`wire`](Self::wire)
            /// or [`wire::serialize`].
            #[must_use]
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }

            /// A view that serializes as the raw value, for the body of a Plaid request.
            ///
            /// # Security
            ///
            /// For the Plaid HTTP client only: see [`wire`].
            #[must_use]
            pub fn wire(&self) -> wire::Wire<'_> {
                wire::Wire::new(self.expose_secret(), self)
            }
        }

        impl Credential for $name {
            const RULES: Rules = Rules {
                kind: $kind,
                min_len: $min,
                max_len: $max,
                shape: $shape,
            };
        }

        impl ExposeSecret<str> for $name {
            fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        // So that `wire::serialize` also takes fields that borrow the secret.
        impl ExposeSecret<str> for &$name {
            fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_placeholder(f, &Self::TAG)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "("))?;
                write_placeholder(f, &Self::TAG)?;
                f.write_str(")")
            }
        }

        impl PartialEq for $name {
            /// Compares in constant time for values of the same length.
            fn eq(&self, other: &Self) -> bool {
                constant_time_eq(self.expose_secret().as_bytes(), other.expose_secret().as_bytes())
            }
        }

        impl Eq for $name {}

        impl FromStr for $name {
            type Err = SecretError;

            fn from_str(value: &str) -> Result<Self, SecretError> {
                Self::new(value)
            }
        }

        impl Serialize for $name {
            /// Writes the placeholder, never the value; see [`wire`] for the value.
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            /// Reads a string and validates it like `new`; refuses redaction placeholders.
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserialize_credential::<Self, D>(deserializer).map(Self)
            }
        }
    };
}

/// A [`secret_type!`] for a Plaid `<type>-<environment>-<id>` token, with `environment()`.
macro_rules! plaid_token {
    ($(#[$meta:meta])* $name:ident { tag: $tag:ident, kind: $kind:literal, prefix: $prefix:literal $(,)? }) => {
        secret_type! {
            $(#[$meta])*
            $name {
                tag: $tag,
                kind: $kind,
                accepts: concat!(
                    "`", $prefix, "-<environment>-<id>`, where the environment is letters and ",
                    "digits and the id is printable ASCII without spaces; at most 256 characters"
                ),
                len: 1..=MAX_TOKEN_LEN,
                shape: Shape::Token {
                    prefix: $prefix,
                    expected: concat!($prefix, "-<environment>-<id>"),
                },
            }
        }

        impl $name {
            /// The environment segment of the token: `sandbox`, `development`, `production`,
            /// or whatever Plaid put there.
            ///
            /// Always `Some` for a token this type accepted; an `Option` so that no path can
            /// panic. The environment is not secret.
            #[must_use]
            pub fn environment(&self) -> Option<&str> {
                split_token(self.expose_secret()).map(|(_, environment, _)| environment)
            }
        }
    };
}

plaid_token! {
    /// A Plaid access token, `access-<environment>-<id>`: the long-lived credential for one
    /// Item (one user's login at one institution).
    ///
    /// `/item/public_token/exchange` returns it; every product call for the Item (`/auth/get`,
    /// `/transactions/sync`, `/accounts/balance/get`…) sends it in the `access_token` field.
    /// It does not expire until the Item is removed, so whoever holds it can read the user's
    /// accounts: store it encrypted (`tokenward-envelope`), never log it.
    ///
    /// `Display` prints `[REDACTED:plaid.access_token]`; `Debug` prints
    /// `AccessToken([REDACTED:plaid.access_token])`.
    ///
    /// # Example
    ///
    /// ```
    /// use serde::Serialize;
    /// use tokenward_redact::{AccessToken, SecretError};
    ///
    /// // Parse: the type and shape are checked.
    /// let token: AccessToken = "access-sandbox-8ab976e6-64bc-4b38-98f7-731e7a349970".parse()?;
    /// assert_eq!(token.environment(), Some("sandbox"));
    ///
    /// // Print: only the placeholder.
    /// assert_eq!(token.to_string(), "[REDACTED:plaid.access_token]");
    /// assert_eq!(format!("{token:?}"), "AccessToken([REDACTED:plaid.access_token])");
    /// assert_eq!(serde_json::to_string(&token)?, r#""[REDACTED:plaid.access_token]""#);
    ///
    /// // Expose: the one explicit read.
    /// assert!(token.expose_secret().starts_with("access-sandbox-8ab976e6"));
    ///
    /// // Wire serialization, for the body of a Plaid request only.
    /// #[derive(Serialize)]
    /// struct ItemGetRequest {
    ///     #[serde(serialize_with = "tokenward_redact::wire::serialize")]
    ///     access_token: AccessToken,
    /// }
    /// let request = ItemGetRequest { access_token: token };
    /// let body = serde_json::to_string(&request)?;
    /// assert_eq!(
    ///     body,
    ///     r#"{"access_token":"access-sandbox-8ab976e6-64bc-4b38-98f7-731e7a349970"}"#
    /// );
    /// let wire = serde_json::to_string(&request.access_token.wire())?;
    /// assert_eq!(wire, r#""access-sandbox-8ab976e6-64bc-4b38-98f7-731e7a349970""#);
    ///
    /// // Deserializing validates, so the raw value round-trips...
    /// let back: AccessToken = serde_json::from_str(&wire)?;
    /// assert!(back == request.access_token);
    ///
    /// // ...but a placeholder from a redacted log is refused, and not echoed.
    /// let err = serde_json::from_str::<AccessToken>(r#""[REDACTED:plaid.access_token]""#)
    ///     .unwrap_err();
    /// assert!(err.to_string().starts_with(
    ///     "refusing to deserialize a redaction placeholder as a Plaid access token"
    /// ));
    ///
    /// // A token of another type is not an access token.
    /// let err = AccessToken::new("public-sandbox-b0e2c4ee-a763-4df5-bfe9-46a46bce993d")
    ///     .unwrap_err();
    /// assert_eq!(err, SecretError::WrongTokenType { kind: "Plaid access token", found: "public" });
    /// assert_eq!(err.to_string(), "not a Plaid access token: got a Plaid public token");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    AccessToken { tag: ACCESS_TOKEN, kind: "Plaid access token", prefix: "access" }
}

plaid_token! {
    /// A Plaid public token, `public-<environment>-<id>`: what Link hands your front end when
    /// a user connects an account.
    ///
    /// Link's `onSuccess` callback receives it; your server exchanges it once, through
    /// `/item/public_token/exchange`, for an [`AccessToken`]. It expires after 30 minutes and is
    /// single-use, but until then it is as good as the access token it becomes.
    ///
    /// `Display` prints `[REDACTED:plaid.public_token]`.
    PublicToken { tag: PUBLIC_TOKEN, kind: "Plaid public token", prefix: "public" }
}

plaid_token! {
    /// A Plaid Link token, `link-<environment>-<id>`: initializes Link in the front end.
    ///
    /// `/link/token/create` returns it (field `link_token`) for one user and one Link session;
    /// it expires after four hours by default. It grants no data access by itself, but it ties a
    /// Link session to your client and user, so it is kept out of logs like the others.
    ///
    /// `Display` prints `[REDACTED:plaid.link_token]`.
    LinkToken { tag: LINK_TOKEN, kind: "Plaid link token", prefix: "link" }
}

plaid_token! {
    /// A Plaid processor token, `processor-<environment>-<id>`: gives one Plaid partner (a
    /// payment processor) access to one account of an Item.
    ///
    /// `/processor/token/create` returns it (field `processor_token`) from an
    /// [`AccessToken`] and an account id; the partner calls Plaid with it. Like an access
    /// token it does not expire on its own.
    ///
    /// `Display` prints `[REDACTED:plaid.processor_token]`.
    ProcessorToken { tag: PROCESSOR_TOKEN, kind: "Plaid processor token", prefix: "processor" }
}

secret_type! {
    /// The Plaid API secret of one environment: the `secret` field of request bodies or the
    /// `PLAID-SECRET` header.
    ///
    /// With the [`ClientId`] it authenticates your application to Plaid, and with any access
    /// token it reads that Item: a leaked secret exposes every Item. Rotate it in the Plaid
    /// dashboard if it ever reaches a log.
    ///
    /// `Display` prints `[REDACTED:plaid.client_secret]`.
    ClientSecret {
        tag: CLIENT_SECRET,
        kind: "Plaid client secret",
        accepts: "1 to 128 characters of printable ASCII without whitespace",
        len: 1..=MAX_CLIENT_CREDENTIAL_LEN,
        shape: Shape::Printable,
    }
}

secret_type! {
    /// The Plaid client id: the `client_id` field of request bodies or the `PLAID-CLIENT-ID`
    /// header.
    ///
    /// It identifies your team and is the other half of every API credential; on its own it is
    /// less sensitive than the [`ClientSecret`], but it is redacted too so that a log never
    /// holds a ready pair.
    ///
    /// `Display` prints `[REDACTED:plaid.client_id]`.
    ClientId {
        tag: CLIENT_ID,
        kind: "Plaid client id",
        accepts: "1 to 128 characters of printable ASCII without whitespace",
        len: 1..=MAX_CLIENT_CREDENTIAL_LEN,
        shape: Shape::Printable,
    }
}

secret_type! {
    /// A bank account number, as `/auth/get` returns it in `numbers.ach[].account` (and
    /// `numbers.eft`, `numbers.international`…).
    ///
    /// With a [`RoutingNumber`] it is enough to originate an ACH debit, so it is treated as a
    /// credential. An ACH (NACHA) account number field is up to 17 characters.
    ///
    /// `Display` prints `[REDACTED:bank.account_number]`.
    AccountNumber {
        tag: ACCOUNT_NUMBER,
        kind: "bank account number",
        accepts: "4 to 17 ASCII letters or digits",
        len: 4..=17,
        shape: Shape::Alphanumeric { expected: "4 to 17 letters or digits" },
    }
}

secret_type! {
    /// An ABA routing transit number: nine digits that name a US bank, as `/auth/get` returns
    /// them in `numbers.ach[].routing` and `numbers.ach[].wire_routing`.
    ///
    /// A routing number alone is public (it is printed on cheques), but next to an
    /// [`AccountNumber`] it completes the pair needed for an ACH debit, so it is redacted with
    /// it. The checksum is checked with [`aba_checksum_ok`].
    ///
    /// `Display` prints `[REDACTED:bank.routing_number]`.
    RoutingNumber {
        tag: ROUTING_NUMBER,
        kind: "bank routing number",
        accepts: "exactly 9 ASCII digits whose ABA checksum holds",
        len: 9..=9,
        shape: Shape::Routing,
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// What a secret type accepts.
struct Rules {
    /// The type's name in error messages, e.g. `Plaid access token`.
    kind: &'static str,
    min_len: usize,
    max_len: usize,
    shape: Shape,
}

/// The checks a value gets after the common ones (non-empty, no placeholder, length, printable
/// ASCII without whitespace).
enum Shape {
    /// `<prefix>-<environment>-<id>`.
    Token {
        prefix: &'static str,
        expected: &'static str,
    },
    /// Nothing more.
    Printable,
    /// ASCII letters and digits only.
    Alphanumeric { expected: &'static str },
    /// Digits with a valid ABA checksum.
    Routing,
}

/// The secret types, for the code they share (parsing and deserialization).
trait Credential: Sized {
    const RULES: Rules;
}

/// Validates `value` and moves it into zeroize-on-drop storage; zeroizes it if rejected.
fn parse(mut value: String, rules: &Rules) -> Result<SecretString, SecretError> {
    match check(&value, rules) {
        Ok(()) => Ok(into_secret(value)),
        Err(err) => {
            value.zeroize();
            Err(err)
        }
    }
}

/// Moves an accepted value into a `SecretString` without leaving an unzeroized copy behind.
fn into_secret(mut value: String) -> SecretString {
    if value.capacity() == value.len() {
        // `into_boxed_str` will not reallocate: the buffer itself moves into the secret.
        return SecretString::from(value);
    }
    // `into_boxed_str` would shrink by reallocating, which may free the old buffer with the
    // secret still in it. Copy into an exact-size box instead and wipe the original.
    let exact = Box::<str>::from(value.as_str());
    value.zeroize();
    SecretString::from(exact)
}

/// The common checks, cheapest and most telling first, then the type's shape.
fn check(value: &str, rules: &Rules) -> Result<(), SecretError> {
    let kind = rules.kind;
    if value.is_empty() {
        return Err(SecretError::Empty { kind });
    }
    // Before the length check, so that a placeholder gets this error whatever its length.
    // `contains` covers `tag::is_placeholder` (which needs the prefix) and values that were
    // partly redacted.
    if value.contains(PLACEHOLDER_PREFIX) {
        return Err(SecretError::Placeholder { kind });
    }
    if value.len() < rules.min_len || value.len() > rules.max_len {
        return Err(SecretError::Length {
            kind,
            min: rules.min_len,
            max: rules.max_len,
        });
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(SecretError::InvalidCharacter { kind });
    }
    match rules.shape {
        Shape::Token { prefix, expected } => {
            let Some((token_type, _, _)) = split_token(value) else {
                return Err(SecretError::Format { kind, expected });
            };
            if token_type == prefix {
                return Ok(());
            }
            // Name the type only when it is one we know: it is then a fixed string, never a
            // piece of the input.
            match TOKEN_TYPES.iter().find(|known| **known == token_type) {
                Some(found) => Err(SecretError::WrongTokenType { kind, found }),
                None => Err(SecretError::Format { kind, expected }),
            }
        }
        Shape::Printable => Ok(()),
        Shape::Alphanumeric { expected } => {
            if value.bytes().all(|b| b.is_ascii_alphanumeric()) {
                Ok(())
            } else {
                Err(SecretError::Format { kind, expected })
            }
        }
        Shape::Routing => {
            if !value.bytes().all(|b| b.is_ascii_digit()) {
                Err(SecretError::Format {
                    kind,
                    expected: "9 digits",
                })
            } else if aba_checksum_ok(value) {
                Ok(())
            } else {
                Err(SecretError::Checksum { kind })
            }
        }
    }
}

/// Splits `<type>-<environment>-<id>`: the type is lowercase ASCII letters, the environment
/// ASCII letters and digits, the id anything non-empty (Plaid has used ids that are not UUIDs).
fn split_token(value: &str) -> Option<(&str, &str, &str)> {
    let (token_type, rest) = value.split_once('-')?;
    let (environment, id) = rest.split_once('-')?;
    let ok = !token_type.is_empty()
        && token_type.bytes().all(|b| b.is_ascii_lowercase())
        && !environment.is_empty()
        && environment.bytes().all(|b| b.is_ascii_alphanumeric())
        && !id.is_empty();
    ok.then_some((token_type, environment, id))
}

fn write_placeholder(f: &mut fmt::Formatter<'_>, tag: &Tag) -> fmt::Result {
    f.write_str(PLACEHOLDER_PREFIX)?;
    f.write_str(tag.name())?;
    f.write_str("]")
}

/// Equality that takes the same time wherever the first difference is.
///
/// `ring::constant_time::verify_slices_are_equal` is deprecated in ring 0.17.14 ("no promises
/// regarding side channels"), so this is the usual XOR-fold: every byte pair is visited and
/// differences are OR-ed together, with no early exit. `black_box` keeps the optimizer from
/// turning the fold back into a short-circuiting compare. Lengths are compared first and are
/// not hidden: the length of a Plaid token or bank number is not the secret part.
///
/// The secret types' `Eq` uses it; other tokenward crates use it for digests, MACs and
/// credentials.
///
/// ```
/// assert!(tokenward_redact::constant_time_eq(b"same", b"same"));
/// assert!(!tokenward_redact::constant_time_eq(b"same", b"sane"));
/// assert!(!tokenward_redact::constant_time_eq(b"same", b"sam"));
/// ```
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .iter()
        .zip(b)
        .fold(0_u8, |acc, (x, y)| std::hint::black_box(acc | (x ^ y)));
    diff == 0
}

/// Shows `min to max`, or just `n` when they are equal.
struct LengthRange(usize, usize);

impl fmt::Display for LengthRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == self.1 {
            write!(f, "exactly {}", self.0)
        } else {
            write!(f, "{} to {}", self.0, self.1)
        }
    }
}

/// Deserializes a string into `T`'s validated secret; no error it gives echoes the input.
///
/// Self-describing formats (the human-readable ones: JSON, YAML, TOML) are asked for "any"
/// value, so that a number or a boolean reaches [`CredentialVisitor`] and is refused without
/// being quoted; asked for a string, `serde_json` would itself report ``invalid type: integer
/// `12345678` `` and put an account number in the log. Binary formats are asked for a string,
/// as many cannot describe themselves.
fn deserialize_credential<'de, T, D>(deserializer: D) -> Result<SecretString, D::Error>
where
    T: Credential,
    D: Deserializer<'de>,
{
    let visitor = CredentialVisitor::<T>(PhantomData);
    if deserializer.is_human_readable() {
        deserializer.deserialize_any(visitor)
    } else {
        deserializer.deserialize_string(visitor)
    }
}

/// Overrides `Visitor` methods whose default error quotes the value (see `not_a_string`).
/// The narrower integer and float methods forward to these by default.
macro_rules! refuse_non_strings {
    ($($method:ident: $ty:ty),* $(,)?) => {
        $(
            fn $method<E: de::Error>(self, _: $ty) -> Result<SecretString, E> {
                Err(self.not_a_string())
            }
        )*
    };
}

/// The visitor of [`deserialize_credential`].
struct CredentialVisitor<T>(PhantomData<T>);

impl<T: Credential> CredentialVisitor<T> {
    fn parse<E: de::Error>(value: String) -> Result<SecretString, E> {
        parse(value, &T::RULES).map_err(|err| match err {
            SecretError::Placeholder { kind } => E::custom(format_args!(
                "refusing to deserialize a redaction placeholder as a {kind}"
            )),
            other => E::custom(other),
        })
    }

    /// serde's default errors for numbers, booleans and characters quote the value (an account
    /// number sent as a JSON number, say); this one does not.
    fn not_a_string<E: de::Error>(&self) -> E {
        E::invalid_type(Unexpected::Other("a non-string value"), self)
    }
}

impl<T: Credential> de::Visitor<'_> for CredentialVisitor<T> {
    type Value = SecretString;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a string holding a {}", T::RULES.kind)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<SecretString, E> {
        Self::parse(value.to_owned())
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<SecretString, E> {
        Self::parse(value)
    }

    refuse_non_strings! {
        visit_bool: bool,
        visit_i64: i64,
        visit_i128: i128,
        visit_u64: u64,
        visit_u128: u128,
        visit_f64: f64,
        visit_char: char,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN_TYPES: [&str; 8] = [
        "Plaid access token",
        "Plaid public token",
        "Plaid link token",
        "Plaid processor token",
        "Plaid client secret",
        "Plaid client id",
        "bank account number",
        "bank routing number",
    ];

    #[test]
    fn placeholders_match_the_tags() {
        assert_eq!(AccessToken::TAG, Tag::ACCESS_TOKEN);
        let token = AccessToken::new("access-sandbox-x").unwrap();
        assert_eq!(token.to_string(), Tag::ACCESS_TOKEN.placeholder());
        assert!(crate::tag::is_placeholder(&token.to_string()));
        assert_eq!(
            format!("{:?}", token.wire()),
            "Wire([REDACTED:plaid.access_token])"
        );
        let routing = RoutingNumber::new("021000021").unwrap();
        assert_eq!(routing.to_string(), Tag::ROUTING_NUMBER.placeholder());
        assert_eq!(
            format!("{routing:?}"),
            "RoutingNumber([REDACTED:bank.routing_number])"
        );
    }

    #[test]
    fn kinds_are_the_documented_names() {
        let kinds = [
            AccessToken::RULES.kind,
            PublicToken::RULES.kind,
            LinkToken::RULES.kind,
            ProcessorToken::RULES.kind,
            ClientSecret::RULES.kind,
            ClientId::RULES.kind,
            AccountNumber::RULES.kind,
            RoutingNumber::RULES.kind,
        ];
        assert_eq!(kinds, KNOWN_TYPES);
    }

    #[test]
    fn constant_time_eq_compares_every_byte() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"xbc"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"\x01", b"\x81"));
    }

    #[test]
    fn into_secret_keeps_the_value() {
        let mut spare = String::with_capacity(64);
        spare.push_str("access-sandbox-1");
        assert_eq!(into_secret(spare).expose_secret(), "access-sandbox-1");
        assert_eq!(into_secret(String::from("exact")).expose_secret(), "exact");
    }

    #[test]
    fn split_token_is_lenient_on_ids() {
        assert_eq!(
            split_token("access-sandbox-a-b-c"),
            Some(("access", "sandbox", "a-b-c"))
        );
        assert_eq!(
            split_token("link-production-0"),
            Some(("link", "production", "0"))
        );
        assert_eq!(
            split_token("public-eu2-x_y.z"),
            Some(("public", "eu2", "x_y.z"))
        );
        assert_eq!(split_token("access-sandbox-"), None);
        assert_eq!(split_token("access--id"), None);
        assert_eq!(split_token("-sandbox-id"), None);
        assert_eq!(split_token("Access-sandbox-id"), None);
        assert_eq!(split_token("access-sand.box-id"), None);
        assert_eq!(split_token("access-sandbox"), None);
    }

    #[test]
    fn checks_run_in_order() {
        let rules = &AccountNumber::RULES;
        let kind = rules.kind;
        assert_eq!(check("", rules), Err(SecretError::Empty { kind }));
        // A placeholder longer than the limit is still reported as a placeholder.
        assert_eq!(
            check("[REDACTED:bank.account_number]", rules),
            Err(SecretError::Placeholder { kind })
        );
        assert_eq!(
            check("123", rules),
            Err(SecretError::Length {
                kind,
                min: 4,
                max: 17
            })
        );
        assert_eq!(
            check("12 34", rules),
            Err(SecretError::InvalidCharacter { kind })
        );
        assert_eq!(
            check("12é4", rules),
            Err(SecretError::InvalidCharacter { kind })
        );
        assert!(matches!(
            check("12-34", rules),
            Err(SecretError::Format { .. })
        ));
        assert_eq!(check("12ab34", rules), Ok(()));
    }

    #[test]
    fn unknown_token_types_are_format_errors() {
        let kind = AccessToken::RULES.kind;
        let expected = "access-<environment>-<id>";
        assert_eq!(
            check("user-sandbox-1", &AccessToken::RULES),
            Err(SecretError::Format { kind, expected })
        );
        assert_eq!(
            check("processor-sandbox-1", &AccessToken::RULES),
            Err(SecretError::WrongTokenType {
                kind,
                found: "processor"
            })
        );
    }

    #[test]
    fn error_messages() {
        let kind = "bank routing number";
        assert_eq!(
            SecretError::Length {
                kind,
                min: 9,
                max: 9
            }
            .to_string(),
            "a bank routing number must be exactly 9 characters long"
        );
        assert_eq!(
            SecretError::Length {
                kind: "Plaid client id",
                min: 1,
                max: 128
            }
            .to_string(),
            "a Plaid client id must be 1 to 128 characters long"
        );
        assert_eq!(
            SecretError::Format {
                kind: "Plaid access token",
                expected: "access-<environment>-<id>"
            }
            .to_string(),
            "not a Plaid access token: expected access-<environment>-<id>"
        );
        assert_eq!(
            SecretError::Checksum { kind }.to_string(),
            "not a bank routing number: the ABA checksum does not match"
        );
    }
}
