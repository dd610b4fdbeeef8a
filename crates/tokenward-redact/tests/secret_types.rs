#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "test code"
)]
//! The secret types: redacted output, wire serialization, validation, errors, equality.
//!
//! One generic check runs over all eight types. Valid samples carry the word `CANARY` where
//! the type allows it, so a leak shows up as that word in output that must not have it.

use std::fmt::{Debug, Display};
use std::str::FromStr;

use proptest::prelude::*;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokenward_redact::wire::{self, Wire};
use tokenward_redact::{
    AccessToken, AccountNumber, ClientId, ClientSecret, LinkToken, ProcessorToken, PublicToken,
    RoutingNumber, SecretError, Tag, aba_checksum_ok,
};

/// What the generic checks need from a secret type.
trait SecretType:
    Debug
    + Display
    + Serialize
    + DeserializeOwned
    + ExposeSecret<str>
    + PartialEq
    + FromStr<Err = SecretError>
{
    const NAME: &'static str;
    const KIND: &'static str;
    fn tag() -> Tag;
    fn wire_view(&self) -> Wire<'_>;
}

macro_rules! secret_types {
    ($($ty:ident: $kind:literal),* $(,)?) => {
        $(
            impl SecretType for $ty {
                const NAME: &'static str = stringify!($ty);
                const KIND: &'static str = $kind;
                fn tag() -> Tag {
                    $ty::TAG
                }
                fn wire_view(&self) -> Wire<'_> {
                    self.wire()
                }
            }
        )*
    };
}

secret_types! {
    AccessToken: "Plaid access token",
    PublicToken: "Plaid public token",
    LinkToken: "Plaid link token",
    ProcessorToken: "Plaid processor token",
    ClientSecret: "Plaid client secret",
    ClientId: "Plaid client id",
    AccountNumber: "bank account number",
    RoutingNumber: "bank routing number",
}

/// Every tag a placeholder may carry in a redacted log, for the placeholder-refusal checks.
fn all_tags() -> Vec<Tag> {
    vec![
        Tag::ACCESS_TOKEN,
        Tag::PUBLIC_TOKEN,
        Tag::LINK_TOKEN,
        Tag::PROCESSOR_TOKEN,
        Tag::PLAID_TOKEN,
        Tag::CLIENT_SECRET,
        Tag::CLIENT_ID,
        Tag::ACCOUNT_NUMBER,
        Tag::ROUTING_NUMBER,
        Tag::BEARER,
        Tag::AUTHORIZATION,
        Tag::JWT,
        Tag::CREDENTIAL,
        Tag::NOT_ALLOWED,
        Tag::custom("card").unwrap(),
    ]
}

fn json_string(value: &str) -> String {
    serde_json::to_string(value).unwrap()
}

/// `output` must not show `value` or the canary word.
fn assert_hidden(output: &str, value: &str, what: &str) {
    assert!(!output.contains(value), "{what} shows the value: {output}");
    assert!(
        !output.to_lowercase().contains("canary"),
        "{what} shows the canary: {output}"
    );
}

#[derive(Debug, Serialize)]
struct LogRecord<'a, T> {
    event: &'static str,
    secret: &'a T,
}

/// A Plaid request body: one borrowed secret, one owned and optional.
#[derive(Serialize)]
#[serde(bound = "&'a T: ExposeSecret<str>, T: ExposeSecret<str>")]
struct PlaidRequest<'a, T> {
    #[serde(serialize_with = "wire::serialize")]
    secret: &'a T,
    #[serde(serialize_with = "wire::serialize_option")]
    maybe: Option<T>,
}

/// The checks every type gets: `valid` must parse, `invalid` must not.
fn check_type<T>(valid: &[String], invalid: &[String])
where
    T: SecretType,
    for<'a> &'a T: ExposeSecret<str>,
{
    let parsed: Vec<T> = valid.iter().map(|v| v.parse::<T>().unwrap()).collect();
    for (value, secret) in valid.iter().zip(&parsed) {
        assert_eq!(secret.expose_secret(), value);
        check_redacted(value, secret);
        check_wire(value, secret);
    }
    check_equality(valid, &parsed);
    check_placeholders_refused::<T>();
    check_invalid_refused::<T>(invalid);
}

/// Formatting and log serialization show the placeholder and nothing else.
fn check_redacted<T: SecretType>(value: &str, secret: &T) {
    let placeholder = T::tag().placeholder();
    let debug = format!("{}({placeholder})", T::NAME);
    assert_eq!(secret.to_string(), placeholder);
    assert_eq!(format!("{secret:?}"), debug);
    assert_eq!(format!("{secret:#?}"), debug);
    assert_eq!(
        format!("{:?}", secret.wire_view()),
        format!("Wire({placeholder})")
    );
    assert_eq!(
        serde_json::to_string(secret).unwrap(),
        json_string(&placeholder)
    );

    let record = LogRecord {
        event: "exchange",
        secret,
    };
    for (what, output) in [
        ("Display", secret.to_string()),
        ("Debug", format!("{secret:?}")),
        ("padded Display", format!("{secret:>80}")),
        ("Wire Debug", format!("{:?}", secret.wire_view())),
        ("struct Debug", format!("{record:#?}")),
        ("serde_json", serde_json::to_string(&record).unwrap()),
        (
            "serde_json pretty",
            serde_json::to_string_pretty(&record).unwrap(),
        ),
        (
            "json value",
            serde_json::to_value(&record).unwrap().to_string(),
        ),
    ] {
        assert_hidden(&output, value, what);
    }
}

/// Wire serialization writes the value, and the wire form deserializes back.
fn check_wire<T>(value: &str, secret: &T)
where
    T: SecretType,
    for<'a> &'a T: ExposeSecret<str>,
{
    let wire_json = serde_json::to_string(&secret.wire_view()).unwrap();
    assert_eq!(wire_json, json_string(value));

    let request = PlaidRequest {
        secret,
        maybe: Some(value.parse::<T>().unwrap()),
    };
    let request = serde_json::to_value(request).unwrap();
    assert_eq!(request["secret"], value);
    assert_eq!(request["maybe"], value);
    let none = serde_json::to_value(PlaidRequest::<T> {
        secret,
        maybe: None,
    })
    .unwrap();
    assert!(none["maybe"].is_null());

    let back: T = serde_json::from_str(&wire_json).unwrap();
    assert!(back == *secret);
    assert_eq!(back.expose_secret(), value);
}

/// Each sample equals only itself (the samples include near misses).
fn check_equality<T: SecretType>(valid: &[String], parsed: &[T]) {
    for (i, a) in parsed.iter().enumerate() {
        for (j, b) in parsed.iter().enumerate() {
            assert_eq!(a == b, valid[i] == valid[j], "{} vs {}", valid[i], valid[j]);
        }
        assert!(*a == valid[i].parse::<T>().unwrap());
    }
}

/// Placeholders, ours or another type's, plain, fingerprinted or embedded, are refused.
fn check_placeholders_refused<T: SecretType>() {
    let refusal = format!(
        "refusing to deserialize a redaction placeholder as a {}",
        T::KIND
    );
    for tag in all_tags() {
        let name = tag.name().to_owned();
        for placeholder in [
            tag.placeholder(),
            format!("[REDACTED:{name} fp1:0123456789abcdef]"),
            format!("CANARY[REDACTED:{name}]"),
            "[REDACTED:".to_owned(),
        ] {
            let err = placeholder.parse::<T>().unwrap_err();
            assert_eq!(
                err,
                SecretError::Placeholder { kind: T::KIND },
                "{placeholder}"
            );
            let err = serde_json::from_str::<T>(&json_string(&placeholder)).unwrap_err();
            let message = err.to_string();
            assert!(message.starts_with(&refusal), "{message}");
            assert_hidden(&message, &placeholder, "placeholder error");
        }
    }
}

/// Invalid values are rejected by `new` and by deserialization; no error shows them.
fn check_invalid_refused<T: SecretType>(invalid: &[String]) {
    for value in invalid.iter().chain(&common_invalid()) {
        let err = value.parse::<T>().unwrap_err();
        let message = err.to_string();
        assert!(message.contains(T::KIND), "{message}");
        let serde_err = serde_json::from_str::<T>(&json_string(value)).unwrap_err();
        let serde_message = serde_err.to_string();
        assert_eq!(
            serde_message,
            format!("{message} at line 1 column {}", serde_err.column())
        );
        if !value.is_empty() {
            for output in [message, format!("{err:?}"), serde_message] {
                assert_hidden(&output, value, "error");
            }
        }
    }

    // JSON that is not a string is refused without quoting it.
    assert!(serde_json::from_str::<T>("null").is_err());
    for json in [
        "12345678901",
        "-31415926",
        "2718281.828",
        "true",
        "[\"CANARY\"]",
    ] {
        let message = serde_json::from_str::<T>(json).unwrap_err().to_string();
        assert!(message.contains(T::KIND), "{message}");
        assert_hidden(&message, json, "non-string error");
    }
}

/// Rejected by every type.
fn common_invalid() -> Vec<String> {
    vec![
        String::new(),
        " access-sandbox-CANARY".to_owned(),
        "access-sandbox-CANARY ".to_owned(),
        "access-sandbox-CANARY id".to_owned(),
        "access-sandbox-CANARY\tid".to_owned(),
        "access-sandbox-CANARY\nid".to_owned(),
        "access-sandbox-CANARY\0id".to_owned(),
        "access-sandbox-CANARY\u{7f}id".to_owned(),
        "access-sandbox-CANARYé".to_owned(),
        "access-sandbox-CANARY\u{a0}id".to_owned(),
        format!("access-sandbox-CANARY{}", "x".repeat(10_000)),
    ]
}

/// Valid tokens of one type: UUID ids, other ids, every environment, near misses for equality.
fn token_samples(prefix: &str) -> Vec<String> {
    [
        "sandbox-CANARY00-64bc-4b38-98f7-731e7a349970",
        "sandbox-CANARY00-64bc-4b38-98f7-731e7a349971",
        "development-CANARY00-64bc-4b38-98f7-731e7a349970",
        "production-CANARY01-64bc-4b38-98f7-731e7a349970",
        "sandbox-CANARYlegacy0123456789abcdef",
        "eu2-CANARY_x.y~z",
        "sandbox-CANARY[]{}",
    ]
    .iter()
    .map(|rest| format!("{prefix}-{rest}"))
    .chain([format!(
        "{prefix}-sandbox-CANARY{}",
        "x".repeat(256 - prefix.len() - 15)
    )])
    .collect()
}

/// Tokens that are not of type `prefix`.
fn token_invalid(prefix: &str) -> Vec<String> {
    let mut invalid: Vec<String> = [
        "CANARY",
        "{p}-CANARY",
        "{p}--CANARY",
        "{p}-sandbox-",
        "{p}-sand.box-CANARY",
        "{p}-sandbox_1-CANARY",
        "-sandbox-CANARY",
        "{P}-sandbox-CANARY",
        "user-sandbox-CANARY",
        "{p}_sandbox_CANARY",
        "{p}sandbox-CANARY",
        "{p}-sandbox-CANARY{long}",
    ]
    .iter()
    .map(|t| {
        t.replace("{p}", prefix)
            .replace("{P}", &prefix.to_uppercase())
            .replace("{long}", &"x".repeat(256))
    })
    .collect();
    invalid.extend(
        ["access", "public", "link", "processor"]
            .iter()
            .filter(|other| **other != prefix)
            .map(|other| format!("{other}-sandbox-CANARY00-64bc-4b38-98f7-731e7a349970")),
    );
    invalid
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

macro_rules! token_type_tests {
    ($($test:ident: $ty:ident = $prefix:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check_type::<$ty>(&token_samples($prefix), &token_invalid($prefix));
            }
        )*
    };
}

token_type_tests! {
    access_token: AccessToken = "access",
    public_token: PublicToken = "public",
    link_token: LinkToken = "link",
    processor_token: ProcessorToken = "processor",
}

const PRINTABLE: &str = "CANARY!\"#$%&'()*+,-./0123456789:;<=>?@AZ[\\]^_`az{|}~";

/// Samples for the client secret and id, which follow the same rules: near misses, every
/// printable character, the shortest and longest lengths that can carry the canary.
fn client_credential_samples(hex: &str) -> (Vec<String>, Vec<String>) {
    let max = format!("CANARY{}", hex.repeat(61));
    let valid = vec![
        format!("CANARY{hex}0123456789abcdef0"),
        format!("CANARY{hex}0123456789abcdef1"),
        PRINTABLE.to_owned(),
        "CANARY".to_owned(),
        max.clone(),
    ];
    (valid, vec![format!("{max}x")])
}

#[test]
fn client_secret() {
    let (valid, invalid) = client_credential_samples("5e");
    check_type::<ClientSecret>(&valid, &invalid);
}

#[test]
fn client_id() {
    let (valid, invalid) = client_credential_samples("1d");
    check_type::<ClientId>(&valid, &invalid);
}

#[test]
fn account_number() {
    let valid = strings(&[
        "CANARY1234",
        "CANARY1235",
        "1234",
        "0000CANARY0000000",
        "canary",
    ]);
    let invalid = strings(&[
        "123",
        "CANARY000000000000",
        "CANARY-1234",
        "CANARY.1234",
        "CANARY_1234",
        "CANARY#1234",
        "canary١٢٣",
    ]);
    check_type::<AccountNumber>(&valid, &invalid);
}

const ROUTING_VALID: [&str; 4] = ["011000015", "021000021", "011401533", "091000019"];
const ROUTING_INVALID: [&str; 2] = ["011000016", "123456789"];

#[test]
fn routing_number() {
    let invalid = strings(&[
        ROUTING_INVALID[0],
        ROUTING_INVALID[1],
        "01100001",
        "0110000150",
        "01100001a",
        "CANARY015",
        "011 00015",
        "+11000015",
        "٠١١٠٠٠٠١٥",
    ]);
    check_type::<RoutingNumber>(&strings(&ROUTING_VALID), &invalid);
}

#[test]
fn routing_checksum() {
    for valid in ROUTING_VALID {
        assert!(aba_checksum_ok(valid), "{valid}");
        assert_eq!(RoutingNumber::new(valid).unwrap().expose_secret(), valid);
    }
    let kind = "bank routing number";
    for invalid in ROUTING_INVALID {
        assert!(!aba_checksum_ok(invalid), "{invalid}");
        assert_eq!(
            RoutingNumber::new(invalid).unwrap_err(),
            SecretError::Checksum { kind }
        );
    }
    assert_eq!(
        RoutingNumber::new("01100001a").unwrap_err(),
        SecretError::Format {
            kind,
            expected: "9 digits"
        }
    );
    assert_eq!(
        RoutingNumber::new("01100001").unwrap_err(),
        SecretError::Length {
            kind,
            min: 9,
            max: 9
        }
    );
    assert_eq!(
        RoutingNumber::new("011000016").unwrap_err().to_string(),
        "not a bank routing number: the ABA checksum does not match"
    );
}

#[test]
fn token_of_another_type_is_named() {
    let samples = [
        ("access", "access-sandbox-CANARY"),
        ("public", "public-sandbox-CANARY"),
        ("link", "link-sandbox-CANARY"),
        ("processor", "processor-sandbox-CANARY"),
    ];
    for (found, token) in samples {
        let results = [
            (
                "Plaid access token",
                "access",
                AccessToken::new(token).map(drop),
            ),
            (
                "Plaid public token",
                "public",
                PublicToken::new(token).map(drop),
            ),
            ("Plaid link token", "link", LinkToken::new(token).map(drop)),
            (
                "Plaid processor token",
                "processor",
                ProcessorToken::new(token).map(drop),
            ),
        ];
        for (kind, prefix, result) in results {
            if prefix == found {
                assert_eq!(result, Ok(()));
            } else {
                let err = result.unwrap_err();
                assert_eq!(err, SecretError::WrongTokenType { kind, found });
                assert_eq!(
                    err.to_string(),
                    format!("not a {kind}: got a Plaid {found} token")
                );
            }
        }
    }
    assert_eq!(
        AccessToken::new("user-sandbox-CANARY")
            .unwrap_err()
            .to_string(),
        "not a Plaid access token: expected access-<environment>-<id>"
    );
}

#[test]
fn token_environment() {
    let access = AccessToken::new("access-production-8ab976e6-64bc-4b38-98f7-731e7a349970");
    assert_eq!(access.unwrap().environment(), Some("production"));
    assert_eq!(
        PublicToken::new("public-sandbox-x").unwrap().environment(),
        Some("sandbox")
    );
    assert_eq!(
        LinkToken::new("link-development-a-b")
            .unwrap()
            .environment(),
        Some("development")
    );
    assert_eq!(
        ProcessorToken::new("processor-eu2-0asd1-a92nc")
            .unwrap()
            .environment(),
        Some("eu2")
    );
}

#[test]
fn error_messages() {
    let cases = [
        (
            AccessToken::new("").map(drop),
            "empty value for a Plaid access token",
        ),
        (
            ClientSecret::new("[REDACTED:plaid.client_secret]").map(drop),
            "refusing to use a redaction placeholder as a Plaid client secret",
        ),
        (
            ClientId::new("x".repeat(129)).map(drop),
            "a Plaid client id must be 1 to 128 characters long",
        ),
        (
            AccountNumber::new("12").map(drop),
            "a bank account number must be 4 to 17 characters long",
        ),
        (
            LinkToken::new("link-sandbox-a b").map(drop),
            "a Plaid link token must be printable ASCII without whitespace",
        ),
        (
            AccountNumber::new("12-34").map(drop),
            "not a bank account number: expected 4 to 17 letters or digits",
        ),
        (
            ProcessorToken::new("processor-sandbox").map(drop),
            "not a Plaid processor token: expected processor-<environment>-<id>",
        ),
    ];
    for (result, message) in cases {
        assert_eq!(result.unwrap_err().to_string(), message);
    }
}

#[test]
fn wire_serializes_other_secrets() {
    #[derive(Serialize)]
    struct Body {
        #[serde(serialize_with = "wire::serialize")]
        secret: SecretString,
        #[serde(serialize_with = "wire::serialize_option")]
        none: Option<ClientSecret>,
    }
    let body = Body {
        secret: SecretString::from("CANARY"),
        none: None,
    };
    assert_eq!(
        serde_json::to_string(&body).unwrap(),
        r#"{"secret":"CANARY","none":null}"#
    );
}

#[test]
fn types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<AccessToken>();
    send_sync::<PublicToken>();
    send_sync::<LinkToken>();
    send_sync::<ProcessorToken>();
    send_sync::<ClientSecret>();
    send_sync::<ClientId>();
    send_sync::<AccountNumber>();
    send_sync::<RoutingNumber>();
    // A request body holding a `Wire` can be kept across an `.await` in a spawned task.
    send_sync::<Wire<'static>>();
    send_sync::<SecretError>();
}

#[test]
fn shortest_values_are_accepted() {
    // Too short to carry the canary; the outputs are the fixed placeholders.
    assert_eq!(
        ClientId::new("c").unwrap().to_string(),
        "[REDACTED:plaid.client_id]"
    );
    assert_eq!(
        ClientSecret::new("s").unwrap().to_string(),
        "[REDACTED:plaid.client_secret]"
    );
    assert_eq!(
        AccessToken::new("access-a-b").unwrap().environment(),
        Some("a")
    );
}

#[test]
fn owned_strings_with_spare_capacity_are_accepted() {
    let mut value = String::with_capacity(256);
    value.push_str("access-sandbox-CANARY");
    assert_eq!(
        AccessToken::new(value).unwrap().expose_secret(),
        "access-sandbox-CANARY"
    );
}

fn routing_with_check_digit(first8: &[u8]) -> String {
    let weights = [3, 7, 1, 3, 7, 1, 3, 7];
    let sum: u32 = first8
        .iter()
        .zip(weights)
        .map(|(d, w)| u32::from(*d) * w)
        .sum();
    // The ninth weight is 1, so the check digit tops the sum up to a multiple of 10.
    let check = (10 - sum % 10) % 10;
    first8
        .iter()
        .map(|d| u32::from(*d))
        .chain([check])
        .map(|d| char::from_digit(d, 10).unwrap())
        .collect()
}

proptest! {
    #[test]
    fn tokens_never_show_their_value(
        prefix in prop::sample::select(vec!["access", "public", "link", "processor"]),
        environment in "[a-zA-Z0-9]{1,16}",
        id in "[!-~]{1,200}",
    ) {
        prop_assume!(!id.contains("[REDACTED:"));
        let token = format!("{prefix}-{environment}-{id}");
        let (name, placeholder, outputs) = match prefix {
            "access" => redacted_outputs::<AccessToken>(&token),
            "public" => redacted_outputs::<PublicToken>(&token),
            "link" => redacted_outputs::<LinkToken>(&token),
            _ => redacted_outputs::<ProcessorToken>(&token),
        };
        let [display, debug, json] = outputs;
        prop_assert_eq!(&display, &placeholder);
        prop_assert_eq!(&debug, &format!("{name}({placeholder})"));
        prop_assert_eq!(&json, &json_string(&placeholder));
        // A token has a `-`; no output does.
        for output in [display, debug, json] {
            prop_assert!(!output.contains(&token));
        }
    }

    #[test]
    fn token_equality_is_value_equality(a in "[!-~]{1,40}", b in "[!-~]{1,40}") {
        prop_assume!(!a.contains("[REDACTED:") && !b.contains("[REDACTED:"));
        let ta = AccessToken::new(format!("access-sandbox-{a}")).unwrap();
        let tb = AccessToken::new(format!("access-sandbox-{b}")).unwrap();
        prop_assert_eq!(ta == tb, a == b);
    }

    #[test]
    fn client_credentials_and_accounts_never_show_their_value(
        secret in "[!-~]{1,128}",
        account in "[a-zA-Z0-9]{4,17}",
    ) {
        prop_assume!(!secret.contains("[REDACTED:"));
        for (name, placeholder, outputs) in [
            redacted_outputs::<ClientSecret>(&secret),
            redacted_outputs::<ClientId>(&secret),
            redacted_outputs::<AccountNumber>(&account),
        ] {
            // The outputs are fixed strings, so they cannot depend on the value.
            prop_assert_eq!(outputs, [
                placeholder.clone(),
                format!("{name}({placeholder})"),
                json_string(&placeholder),
            ]);
        }
    }

    #[test]
    fn routing_numbers_follow_the_checksum(
        first8 in prop::collection::vec(0_u8..10, 8),
        position in 0_usize..9,
        delta in 1_u8..10,
    ) {
        let valid = routing_with_check_digit(&first8);
        prop_assert!(aba_checksum_ok(&valid));
        let (_, _, outputs) = redacted_outputs::<RoutingNumber>(&valid);
        for output in outputs {
            prop_assert!(!output.contains(&valid));
        }
        // Changing any one digit breaks the checksum: the weights are coprime to 10.
        let mut digits = valid.into_bytes();
        digits[position] = b'0' + (digits[position] - b'0' + delta) % 10;
        let changed = String::from_utf8(digits).unwrap();
        prop_assert!(!aba_checksum_ok(&changed));
        prop_assert!(
            matches!(RoutingNumber::new(changed), Err(SecretError::Checksum { .. })),
            "single-digit change accepted"
        );
    }
}

/// Parses `value` as `T` (it must be valid) and returns the type's name, its placeholder and
/// its Display, Debug and JSON outputs.
fn redacted_outputs<T: SecretType>(value: &str) -> (&'static str, String, [String; 3]) {
    let secret = value.parse::<T>().unwrap();
    assert_eq!(secret.expose_secret(), value);
    let outputs = [
        secret.to_string(),
        format!("{secret:?}"),
        serde_json::to_string(&secret).unwrap(),
    ];
    (T::NAME, T::tag().placeholder(), outputs)
}
