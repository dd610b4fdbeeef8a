//! The redacting serde adapter: `Redacted` through `serde_json` and through a small test format.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "test code"
)]

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use proptest::prelude::*;
use serde::Serialize;
use serde::ser::{self, SerializeMap};
use tokenward_redact::{Fingerprinter, Policy, Redacted, is_placeholder, to_json_vec};

const ACCESS: &str = "access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6";
const PUBLIC: &str = "public-production-0b6a6a1a-2d5c-4a7e-9a40-1f1d0f6c9e2b";
const LINK: &str = "link-production-5f1c0b7e-aaaa-bbbb-cccc-0123456789ab";
const PROCESSOR: &str = "processor-sandbox-0b6a6a1a-2d5c-4a7e-9a40-1f1d0f6c9e2b";
const SECRET: &str = "0123456789abcdef0123456789abcd";
const ROUTING: &str = "021000021";

const P_ACCESS: &str = "[REDACTED:plaid.access_token]";
const P_PUBLIC: &str = "[REDACTED:plaid.public_token]";
const P_LINK: &str = "[REDACTED:plaid.link_token]";
const P_PROCESSOR: &str = "[REDACTED:plaid.processor_token]";
const P_SECRET: &str = "[REDACTED:plaid.client_secret]";
const P_ROUTING: &str = "[REDACTED:bank.routing_number]";
const P_NOT_ALLOWED: &str = "[REDACTED:not_allowed]";

fn json<T: Serialize + ?Sized>(value: &T, policy: &Policy) -> String {
    String::from_utf8(to_json_vec(value, policy).unwrap()).unwrap()
}

fn json_value<T: Serialize + ?Sized>(value: &T, policy: &Policy) -> serde_json::Value {
    serde_json::from_slice(&to_json_vec(value, policy).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Field names and nesting.

#[derive(Serialize)]
struct Inner {
    notes: String,
    access_token: String,
    amount: f64,
}

#[derive(Serialize)]
struct Outer {
    level: u8,
    inner: Inner,
    list: Vec<Inner>,
    maybe: Option<Inner>,
    pair: (Inner, String),
    map: BTreeMap<String, Inner>,
    deeper: Option<Box<Outer>>,
}

fn inner(n: u8) -> Inner {
    Inner {
        notes: format!("level {n}: relinked with {PUBLIC}, wire {ROUTING}"),
        access_token: ACCESS.to_owned(),
        amount: f64::from(n) + 0.5,
    }
}

fn outer(depth: u8) -> Outer {
    Outer {
        level: depth,
        inner: inner(depth),
        list: vec![inner(depth), inner(depth)],
        maybe: Some(inner(depth)),
        pair: (inner(depth), format!("tuple {LINK}")),
        map: BTreeMap::from([("entry".to_owned(), inner(depth))]),
        deeper: (depth > 0).then(|| Box::new(outer(depth - 1))),
    }
}

fn assert_inner_redacted(v: &serde_json::Value, n: u8) {
    let want = format!("level {n}: relinked with {P_PUBLIC}, wire {P_ROUTING}");
    assert_eq!(v["notes"], want.as_str(), "{v}");
    assert_eq!(v["access_token"], P_ACCESS, "{v}");
    assert_eq!(v["amount"].as_f64(), Some(f64::from(n) + 0.5), "{v}");
}

#[test]
fn redacts_at_every_depth_of_structs_sequences_options_tuples_and_maps() {
    let policy = Policy::plaid();
    let mut v = json_value(&outer(3), &policy);
    for depth in (0..=3).rev() {
        assert_eq!(v["level"], depth);
        assert_inner_redacted(&v["inner"], depth);
        assert_inner_redacted(&v["list"][0], depth);
        assert_inner_redacted(&v["list"][1], depth);
        assert_inner_redacted(&v["maybe"], depth);
        assert_inner_redacted(&v["pair"][0], depth);
        assert_eq!(v["pair"][1], format!("tuple {P_LINK}").as_str());
        assert_inner_redacted(&v["map"]["entry"], depth);
        v = v["deeper"].take();
    }
    assert!(v.is_null());
    let text = json(&outer(3), &policy);
    for secret in [ACCESS, PUBLIC, LINK, ROUTING] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
}

#[derive(Serialize)]
struct Credentials {
    client_id: String,
    secret: String,
}

#[test]
fn a_redacted_field_is_replaced_whatever_its_type() {
    #[derive(Serialize)]
    struct Odd {
        access_token: u64,
        secret: Vec<String>,
        password: BTreeMap<String, u32>,
        api_key: Credentials,
        private_key: (),
        refresh_token: Option<String>,
        id_token: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cookie: Option<String>,
        amount: u64,
    }
    let odd = Odd {
        access_token: 42,
        secret: vec![SECRET.to_owned()],
        password: BTreeMap::from([("a".to_owned(), 1)]),
        api_key: Credentials {
            client_id: "5f1c0b7e0123456789abcdef".to_owned(),
            secret: SECRET.to_owned(),
        },
        private_key: (),
        refresh_token: Some("rt-0123456789".to_owned()),
        id_token: None,
        cookie: None,
        amount: 42,
    };
    assert_eq!(
        json(&odd, &Policy::plaid()),
        concat!(
            r#"{"access_token":"[REDACTED:plaid.access_token]","#,
            r#""secret":"[REDACTED:plaid.client_secret]","#,
            r#""password":"[REDACTED:credential]","#,
            r#""api_key":"[REDACTED:credential]","#,
            r#""private_key":"[REDACTED:credential]","#,
            r#""refresh_token":"[REDACTED:credential]","#,
            r#""id_token":"[REDACTED:credential]","#,
            r#""amount":42}"#
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Enums.

#[derive(Serialize)]
enum Event {
    Started,
    Token(String),
    Pair(String, u32),
    Exchange { public_token: String, note: String },
    Nested(Box<Event>),
}

#[test]
fn redacts_every_kind_of_enum_variant() {
    let policy = Policy::plaid();
    let events = vec![
        Event::Started,
        Event::Token(ACCESS.to_owned()),
        Event::Pair(format!("wire to {ROUTING}"), 7),
        Event::Exchange {
            public_token: PUBLIC.to_owned(),
            note: format!("got {PROCESSOR}"),
        },
        Event::Nested(Box::new(Event::Exchange {
            public_token: "short".to_owned(),
            note: "ok".to_owned(),
        })),
    ];
    assert_eq!(
        json(&events, &policy),
        format!(
            concat!(
                r#"["Started","#,
                r#"{{"Token":"{a}"}},"#,
                r#"{{"Pair":["wire to {r}",7]}},"#,
                r#"{{"Exchange":{{"public_token":"{p}","note":"got {pr}"}}}},"#,
                r#"{{"Nested":{{"Exchange":{{"public_token":"{p}","note":"ok"}}}}}}]"#
            ),
            a = P_ACCESS,
            r = P_ROUTING,
            p = P_PUBLIC,
            pr = P_PROCESSOR
        )
    );
}

#[test]
fn internally_tagged_enums_and_flattened_maps_are_redacted() {
    #[derive(Serialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Request {
        Exchange { public_token: String },
        Get { access_token: String, count: u32 },
    }
    #[derive(Serialize)]
    struct Envelope {
        request_id: String,
        #[serde(flatten)]
        request: Request,
        #[serde(flatten)]
        extra: BTreeMap<String, String>,
    }
    let envelope = Envelope {
        request_id: "m8MDnv9okwxFNBV".to_owned(),
        request: Request::Get {
            access_token: ACCESS.to_owned(),
            count: 100,
        },
        extra: BTreeMap::from([
            ("secret".to_owned(), SECRET.to_owned()),
            ("webhook".to_owned(), "https://example.com/hook".to_owned()),
        ]),
    };
    assert_eq!(
        json(&envelope, &Policy::plaid()),
        format!(
            concat!(
                r#"{{"request_id":"m8MDnv9okwxFNBV","type":"get","access_token":"{a}","#,
                r#""count":100,"secret":"{s}","webhook":"https://example.com/hook"}}"#
            ),
            a = P_ACCESS,
            s = P_SECRET
        )
    );
    let exchange = Request::Exchange {
        public_token: PUBLIC.to_owned(),
    };
    assert_eq!(
        json(&exchange, &Policy::plaid()),
        format!(r#"{{"type":"exchange","public_token":"{P_PUBLIC}"}}"#)
    );
}

// ---------------------------------------------------------------------------------------------
// Maps and keys.

#[test]
fn map_keys_decide_their_values_and_are_scrubbed_themselves() {
    let policy = Policy::plaid();
    let map = BTreeMap::from([
        ("PLAID-SECRET".to_owned(), SECRET.to_owned()),
        ("clientSecret".to_owned(), SECRET.to_owned()),
        ("Access-Token".to_owned(), ACCESS.to_owned()),
        (
            "item_id".to_owned(),
            "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6".to_owned(),
        ),
        (format!("cache:{ACCESS}"), "hit".to_owned()),
        (ROUTING.to_owned(), "bank".to_owned()),
        ("note".to_owned(), format!("token {LINK}")),
    ]);
    let v = json_value(&map, &policy);
    let obj = v.as_object().unwrap();
    assert_eq!(obj["PLAID-SECRET"], P_SECRET);
    assert_eq!(obj["clientSecret"], P_SECRET);
    assert_eq!(obj["Access-Token"], P_ACCESS);
    assert_eq!(obj["item_id"], "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6");
    assert_eq!(obj[&format!("cache:{P_ACCESS}")], "hit");
    assert_eq!(obj[P_ROUTING], "bank");
    assert_eq!(obj["note"], format!("token {P_LINK}").as_str());
    let text = v.to_string();
    for secret in [SECRET, ACCESS, LINK, ROUTING] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

/// A map written with separate `serialize_key` and `serialize_value` calls, or with
/// `serialize_entry`.
struct SplitMap {
    entries: Vec<(&'static str, String)>,
    split: bool,
}

impl Serialize for SplitMap {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            if self.split {
                map.serialize_key(k)?;
                map.serialize_value(v)?;
            } else {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

#[test]
fn split_key_and_value_calls_remember_the_decision() {
    for split in [true, false] {
        let map = SplitMap {
            entries: vec![
                ("secret", SECRET.to_owned()),
                ("amount", "12.50".to_owned()),
                ("access_token", ACCESS.to_owned()),
                ("merchant_name", "Uber".to_owned()),
            ],
            split,
        };
        assert_eq!(
            json(&map, &Policy::plaid()),
            format!(
                r#"{{"secret":"{P_SECRET}","amount":"12.50","access_token":"{P_ACCESS}","merchant_name":"Uber"}}"#
            ),
            "split: {split}"
        );
    }
}

#[test]
fn newtype_and_unit_variant_keys_are_names_and_numeric_keys_pass() {
    #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
    struct Name(String);
    #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
    enum Header {
        Authorization,
        Accept,
    }
    let policy = Policy::plaid();
    let by_name = BTreeMap::from([
        (Name("secret".to_owned()), SECRET),
        (Name("note".to_owned()), "fine"),
    ]);
    assert_eq!(
        json(&by_name, &policy),
        format!(r#"{{"note":"fine","secret":"{P_SECRET}"}}"#)
    );
    let headers = BTreeMap::from([
        (Header::Authorization, "Basic dXNlcjpwYXNz"),
        (Header::Accept, "application/json"),
    ]);
    assert_eq!(
        json(&headers, &policy),
        r#"{"Authorization":"[REDACTED:http.authorization]","Accept":"application/json"}"#
    );
    let numeric = BTreeMap::from([(1u32, format!("t {ACCESS}")), (2, "x".to_owned())]);
    assert_eq!(
        json(&numeric, &policy),
        format!(r#"{{"1":"t {P_ACCESS}","2":"x"}}"#)
    );
}

#[test]
fn keys_json_cannot_write_still_fail_with_serde_jsons_error() {
    let map = BTreeMap::from([((1u8, 2u8), "x")]);
    assert!(to_json_vec(&map, &Policy::plaid()).is_err());
    assert!(serde_json::to_vec(&map).is_err());
}

// ---------------------------------------------------------------------------------------------
// Case styles.

#[test]
fn field_names_match_in_every_case_style() {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Camel {
        access_token: String,
        public_token: String,
        client_id: String,
        routing_number: String,
        account_id: String,
        merchant_name: String,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Pascal {
        access_token: String,
        item_id: String,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "SCREAMING-KEBAB-CASE")]
    struct Header {
        plaid_secret: String,
        plaid_client_id: String,
        content_type: String,
    }
    let policy = Policy::plaid();
    let camel = Camel {
        access_token: ACCESS.to_owned(),
        public_token: PUBLIC.to_owned(),
        client_id: "5f1c0b7e0123456789abcdef".to_owned(),
        routing_number: ROUTING.to_owned(),
        account_id: "BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp".to_owned(),
        merchant_name: "Uber".to_owned(),
    };
    assert_eq!(
        json(&camel, &policy),
        format!(
            concat!(
                r#"{{"accessToken":"{a}","publicToken":"{p}","#,
                r#""clientId":"[REDACTED:plaid.client_id]","routingNumber":"{r}","#,
                r#""accountId":"BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp","merchantName":"Uber"}}"#
            ),
            a = P_ACCESS,
            p = P_PUBLIC,
            r = P_ROUTING
        )
    );
    let pascal = Pascal {
        access_token: "anything".to_owned(),
        item_id: "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6".to_owned(),
    };
    assert_eq!(
        json(&pascal, &policy),
        format!(
            r#"{{"AccessToken":"{P_ACCESS}","ItemId":"eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6"}}"#
        )
    );
    let header = Header {
        plaid_secret: SECRET.to_owned(),
        plaid_client_id: "5f1c0b7e0123456789abcdef".to_owned(),
        content_type: "application/json".to_owned(),
    };
    assert_eq!(
        json(&header, &policy),
        format!(
            r#"{{"PLAID-SECRET":"{P_SECRET}","PLAID-CLIENT-ID":"[REDACTED:plaid.client_id]","CONTENT-TYPE":"application/json"}}"#
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Idempotence.

#[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
struct Logged {
    access_token: String,
    public_token: Option<String>,
    secret: String,
    notes: String,
    headers: BTreeMap<String, String>,
    item_id: String,
}

fn logged() -> Logged {
    Logged {
        access_token: ACCESS.to_owned(),
        public_token: Some(PUBLIC.to_owned()),
        secret: SECRET.to_owned(),
        notes: format!("exchanged {PUBLIC} for {ACCESS}; wire {ROUTING}"),
        headers: BTreeMap::from([
            (
                "PLAID-CLIENT-ID".to_owned(),
                "5f1c0b7e0123456789abcdef".to_owned(),
            ),
            (
                "Authorization".to_owned(),
                "Bearer abcDEF123456.xyz".to_owned(),
            ),
        ]),
        item_id: "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6".to_owned(),
    }
}

#[test]
fn redacting_redacted_output_changes_nothing() {
    let policy = Policy::plaid();
    let once = json(&logged(), &policy);
    let parsed: Logged = serde_json::from_str(&once).unwrap();
    assert_eq!(parsed.access_token, P_ACCESS);
    assert_eq!(parsed.public_token.as_deref(), Some(P_PUBLIC));
    // Fields already holding placeholders are written as they are, by every path.
    assert_eq!(json(&parsed, &policy), once);
    assert_eq!(serde_json::to_string(&parsed).unwrap(), once);
    // Also a placeholder of another tag, and one with a fingerprint.
    let other = Logged {
        access_token: "[REDACTED:custom.x fp1:0123456789abcdef]".to_owned(),
        secret: P_NOT_ALLOWED.to_owned(),
        ..parsed
    };
    assert_eq!(
        json(&other, &policy),
        serde_json::to_string(&other).unwrap()
    );
}

#[test]
fn fingerprinted_placeholders_are_kept_on_a_second_pass() {
    let policy = Policy::builder()
        .fingerprints(Fingerprinter::new(&[7u8; 32]).unwrap())
        .build()
        .unwrap();
    let once = json(&logged(), &policy);
    assert!(once.contains("[REDACTED:plaid.access_token fp1:"), "{once}");
    let parsed: Logged = serde_json::from_str(&once).unwrap();
    assert_eq!(json(&parsed, &policy), once);
    assert!(!once.contains(ACCESS) && !once.contains(PUBLIC));
}

// ---------------------------------------------------------------------------------------------
// No over-scrubbing.

#[derive(Serialize)]
struct Location {
    address: Option<String>,
    city: Option<String>,
    region: Option<String>,
    postal_code: Option<String>,
    country: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    store_number: Option<String>,
}

#[derive(Serialize)]
#[allow(clippy::struct_field_names, reason = "Plaid's field names")]
struct Transaction {
    account_id: String,
    account_owner: Option<String>,
    amount: f64,
    iso_currency_code: Option<String>,
    category: Vec<String>,
    category_id: String,
    date: String,
    datetime: Option<String>,
    location: Location,
    merchant_name: Option<String>,
    name: String,
    logo_url: Option<String>,
    website: Option<String>,
    payment_channel: String,
    pending: bool,
    pending_transaction_id: Option<String>,
    transaction_id: String,
    transaction_type: String,
    transaction_code: Option<String>,
}

#[derive(Serialize)]
#[allow(clippy::struct_field_names, reason = "Plaid's field names")]
struct Item {
    item_id: String,
    institution_id: String,
    webhook: String,
    available_products: Vec<String>,
    consent_expiration_time: Option<String>,
}

#[derive(Serialize)]
struct TransactionsGetResponse {
    transactions: Vec<Transaction>,
    total_transactions: u32,
    item: Item,
    request_id: String,
}

fn transactions(n: u32) -> TransactionsGetResponse {
    let merchants = [
        "Uber",
        "Starbucks",
        "United Airlines",
        "McDonald's",
        "Tectra Inc",
    ];
    let transactions = (0..n)
        .map(|i| Transaction {
            account_id: "BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp".to_owned(),
            account_owner: None,
            amount: f64::from(i) * 1.25 + 0.99,
            iso_currency_code: Some("USD".to_owned()),
            category: vec!["Travel".to_owned(), "Taxi".to_owned()],
            category_id: "22016000".to_owned(),
            date: format!("2024-03-{:02}", 1 + i % 28),
            datetime: Some(format!("2024-03-{:02}T11:{:02}:00Z", 1 + i % 28, i % 60)),
            location: Location {
                address: Some(format!("{} Main St", 100 + i)),
                city: Some("San Francisco".to_owned()),
                region: Some("CA".to_owned()),
                postal_code: Some("94107".to_owned()),
                country: Some("US".to_owned()),
                lat: Some(40.740_352),
                lon: Some(-74.001_761),
                store_number: Some(format!("{}", 1000 + i)),
            },
            merchant_name: Some(merchants[i as usize % merchants.len()].to_owned()),
            name: format!(
                "{} 063015 SF**POOL**",
                merchants[i as usize % merchants.len()]
            ),
            logo_url: Some("https://plaid-merchant-logos.plaid.com/uber_1060.png".to_owned()),
            website: Some("uber.com".to_owned()),
            payment_channel: "online".to_owned(),
            pending: i % 10 == 0,
            pending_transaction_id: None,
            transaction_id: format!("lPNjeW1nR6CDn5okmGQ6hEpMo4lLNoSrzqDje{i:03}"),
            transaction_type: "place".to_owned(),
            transaction_code: None,
        })
        .collect();
    TransactionsGetResponse {
        transactions,
        total_transactions: n,
        item: Item {
            item_id: "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6".to_owned(),
            institution_id: "ins_109508".to_owned(),
            webhook: "https://www.genericwebhookurl.com/webhook".to_owned(),
            available_products: vec!["balance".to_owned(), "identity".to_owned()],
            consent_expiration_time: None,
        },
        request_id: "m8MDnv9okwxFNBV".to_owned(),
    }
}

#[test]
fn ordinary_plaid_fields_pass_unchanged() {
    // Large enough that the field cache and the short-string shortcut are both in use.
    let response = transactions(100);
    let policy = Policy::plaid();
    assert_eq!(
        to_json_vec(&response, &policy).unwrap(),
        serde_json::to_vec(&response).unwrap()
    );
    // And one small value, before either shortcut is set up.
    let one = transactions(1);
    assert_eq!(
        to_json_vec(&one, &policy).unwrap(),
        serde_json::to_vec(&one).unwrap()
    );
}

#[test]
fn many_fields_with_repeated_names_still_redact() {
    // Past the point where field decisions are cached.
    let policy = Policy::plaid();
    let many: Vec<Inner> = (0..50).map(|i| inner(i % 5)).collect();
    let v = json_value(&many, &policy);
    for (i, item) in v.as_array().unwrap().iter().enumerate() {
        assert_inner_redacted(item, u8::try_from(i % 5).unwrap());
    }
}

// ---------------------------------------------------------------------------------------------
// Allow-list mode.

#[test]
fn allow_list_fails_closed_at_every_depth() {
    #[derive(Serialize)]
    struct Tagged {
        access_token: String,
        tags: Vec<String>,
        other: String,
    }
    let policy = Policy::builder()
        .allow_only([
            "transactions",
            "amount",
            "date",
            "name",
            "location",
            "city",
            "item",
        ])
        .build()
        .unwrap();
    let mut response = transactions(2);
    response.transactions[0].name = format!("refund {ACCESS}");
    let v = json_value(&response, &policy);
    let t0 = &v["transactions"][0];
    assert_eq!(t0["amount"], 0.99);
    assert_eq!(t0["date"], "2024-03-01");
    assert_eq!(t0["name"], format!("refund {P_ACCESS}").as_str());
    assert_eq!(t0["location"]["city"], "San Francisco");
    assert_eq!(t0["location"]["address"], P_NOT_ALLOWED);
    assert_eq!(t0["merchant_name"], P_NOT_ALLOWED);
    assert_eq!(t0["account_id"], P_NOT_ALLOWED);
    assert_eq!(t0["category"], P_NOT_ALLOWED);
    assert_eq!(v["transactions"][1]["transaction_id"], P_NOT_ALLOWED);
    assert_eq!(v["item"]["item_id"], P_NOT_ALLOWED);
    assert_eq!(v["request_id"], P_NOT_ALLOWED);
    assert_eq!(v["total_transactions"], P_NOT_ALLOWED);
    // A listed name still obeys its field rule; a listed sequence's elements inherit.
    let listed = Policy::builder()
        .allow_only(["access_token", "tags"])
        .build()
        .unwrap();
    let tagged = Tagged {
        access_token: ACCESS.to_owned(),
        tags: vec!["a".to_owned(), format!("b {LINK}")],
        other: "x".to_owned(),
    };
    assert_eq!(
        json(&tagged, &listed),
        format!(
            r#"{{"access_token":"{P_ACCESS}","tags":["a","b {P_LINK}"],"other":"{P_NOT_ALLOWED}"}}"#
        )
    );
}

#[test]
fn an_empty_allow_list_passes_nothing() {
    let policy = Policy::builder()
        .allow_only(Vec::<String>::new())
        .build()
        .unwrap();
    let v = json_value(&transactions(1), &policy);
    for (key, value) in v.as_object().unwrap() {
        assert_eq!(value, P_NOT_ALLOWED, "{key}");
    }
    let map = BTreeMap::from([("amount", 1), ("date", 2)]);
    assert_eq!(
        json(&map, &policy),
        format!(r#"{{"amount":"{P_NOT_ALLOWED}","date":"{P_NOT_ALLOWED}"}}"#)
    );
    // Values without a name (the top level, sequence elements, numeric keys) keep the value
    // rules.
    assert_eq!(
        json(&vec![format!("t {ACCESS}")], &policy),
        format!(r#"["t {P_ACCESS}"]"#)
    );
}

// ---------------------------------------------------------------------------------------------
// Custom patterns and the short-string shortcut.

#[test]
fn custom_patterns_apply_to_short_and_word_only_strings() {
    let policy = Policy::builder()
        .pattern("pin", "PIN[0-9]{4}")
        .unwrap()
        .build()
        .unwrap();
    // Enough short strings that the shortcut would be set up if the policy allowed it.
    let pins: Vec<String> = (0..40).map(|i| format!("PIN{:04}", 1000 + i)).collect();
    let v = json_value(&pins, &policy);
    for pin in v.as_array().unwrap() {
        assert_eq!(pin, "[REDACTED:custom.pin]");
    }
    let words: Vec<&str> = vec!["abcPIN1234xyz_0001"; 40];
    for word in json_value(&words, &policy).as_array().unwrap() {
        assert_eq!(word, "abc[REDACTED:custom.pin]xyz_0001");
    }
}

#[test]
fn nine_digit_routing_numbers_are_scrubbed_even_alone() {
    let policy = Policy::plaid();
    let numbers = vec![ROUTING; 40];
    for n in json_value(&numbers, &policy).as_array().unwrap() {
        assert_eq!(n, P_ROUTING);
    }
}

/// Strings that stress the short-string and word-only shortcut: every fragment of a built-in
/// rule, glued without separators, and short strings of any kind.
fn tricky_string() -> impl Strategy<Value = String> {
    let fragment = prop::sample::select(vec![
        "access",
        "public",
        "link",
        "processor",
        "user",
        "sandbox",
        "production",
        "development",
        "Bearer",
        "bearer",
        "eyJ",
        "secret",
        "SECRET",
        "client",
        "id",
        "Id",
        "account",
        "routing",
        "Authorization",
        "Basic",
        "_",
        "-",
        " ",
        ":",
        "=",
        "\"",
        ".",
        "0",
        "9",
        "021000021",
        "011401533",
        "12345678",
        "A",
        "z",
    ]);
    prop_oneof![
        ".{0,10}",
        "[A-Za-z0-9_]{0,40}",
        "[0-9]{1,12}",
        prop::collection::vec(fragment, 0..10).prop_map(|v| v.concat()),
        Just(ACCESS.to_owned()),
        Just(format!("x{ROUTING}")),
    ]
}

proptest! {
    /// The shortcut never changes a result: a string serialized through `Redacted` (many
    /// times, so the shortcut is set up) comes out as `scrub_text` makes it.
    #[test]
    fn redacted_strings_equal_scrub_text(s in tricky_string()) {
        let policy = Policy::plaid();
        let many = vec![s.as_str(); 24];
        let want = vec![policy.scrub_text(&s).into_owned(); 24];
        prop_assert_eq!(
            to_json_vec(&many, &policy).unwrap(),
            serde_json::to_vec(&want).unwrap()
        );
        // As map keys too.
        let keys: BTreeMap<String, u8> = (0..24u8).map(|i| (format!("{s}{}", "_".repeat(usize::from(i))), i)).collect();
        let want_keys: BTreeMap<String, u8> = keys.iter().map(|(k, v)| (policy.scrub_text(k).into_owned(), *v)).collect();
        let got: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&to_json_vec(&keys, &policy).unwrap()).unwrap();
        // Keys that are field names redact their values; compare only the key text.
        prop_assert_eq!(got.keys().collect::<Vec<_>>(), want_keys.keys().collect::<Vec<_>>());
    }
}

// ---------------------------------------------------------------------------------------------
// Bytes, chars, Display, 128-bit numbers and `is_human_readable`: through a second format.

/// A serializer for a small, unambiguous text format that shows what JSON hides: options,
/// newtypes, unit structs, variants, bytes and chars. Strings are written raw, between `"`.
struct Dump<'a> {
    out: &'a mut String,
    human: bool,
}

#[derive(Debug)]
struct DumpError(String);

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DumpError {}

impl ser::Error for DumpError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DumpError(msg.to_string())
    }
}

fn dump<T: Serialize + ?Sized>(value: &T, human: bool) -> String {
    let mut out = String::new();
    value
        .serialize(Dump {
            out: &mut out,
            human,
        })
        .unwrap();
    out
}

/// A compound value of the dump format: elements separated by `,`, closed by `close`.
struct DumpCompound<'a> {
    out: &'a mut String,
    human: bool,
    first: bool,
    close: &'static str,
}

impl DumpCompound<'_> {
    fn element<T: Serialize + ?Sized>(
        &mut self,
        name: Option<&str>,
        value: &T,
    ) -> Result<(), DumpError> {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        if let Some(name) = name {
            self.out.push_str(name);
            self.out.push('=');
        }
        value.serialize(Dump {
            out: self.out,
            human: self.human,
        })
    }

    fn finish(self) {
        self.out.push_str(self.close);
    }
}

macro_rules! dump_compound {
    ($($trait:ident :: $method:ident $(($key:ident))?),*) => {
        $(
            impl ser::$trait for DumpCompound<'_> {
                type Ok = ();
                type Error = DumpError;
                fn $method<T: Serialize + ?Sized>(&mut self, $($key: &'static str,)? value: &T) -> Result<(), DumpError> {
                    #[allow(unused_mut, unused_assignments, reason = "macro")]
                    let mut name = None;
                    $(name = Some($key);)?
                    self.element(name, value)
                }
                fn end(self) -> Result<(), DumpError> {
                    self.finish();
                    Ok(())
                }
            }
        )*
    };
}

dump_compound!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
    SerializeStruct::serialize_field(key),
    SerializeStructVariant::serialize_field(key)
);

impl SerializeMap for DumpCompound<'_> {
    type Ok = ();
    type Error = DumpError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), DumpError> {
        self.element(None, key)?;
        self.out.push(':');
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), DumpError> {
        value.serialize(Dump {
            out: self.out,
            human: self.human,
        })
    }
    fn end(self) -> Result<(), DumpError> {
        self.finish();
        Ok(())
    }
}

macro_rules! dump_scalars {
    ($($method:ident($ty:ty)),*) => {
        $(
            fn $method(self, v: $ty) -> Result<(), DumpError> {
                self.out.push_str(&v.to_string());
                Ok(())
            }
        )*
    };
}

impl<'a> ser::Serializer for Dump<'a> {
    type Ok = ();
    type Error = DumpError;
    type SerializeSeq = DumpCompound<'a>;
    type SerializeTuple = DumpCompound<'a>;
    type SerializeTupleStruct = DumpCompound<'a>;
    type SerializeTupleVariant = DumpCompound<'a>;
    type SerializeMap = DumpCompound<'a>;
    type SerializeStruct = DumpCompound<'a>;
    type SerializeStructVariant = DumpCompound<'a>;

    dump_scalars!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64)
    );

    fn serialize_char(self, v: char) -> Result<(), DumpError> {
        self.out.push('\'');
        self.out.push(v);
        self.out.push('\'');
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), DumpError> {
        self.out.push('"');
        self.out.push_str(v);
        self.out.push('"');
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), DumpError> {
        self.out.push_str("b\"");
        self.out.push_str(&String::from_utf8_lossy(v));
        self.out.push('"');
        Ok(())
    }
    fn serialize_none(self) -> Result<(), DumpError> {
        self.out.push_str("None");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), DumpError> {
        self.out.push_str("Some(");
        value.serialize(Dump {
            out: &mut *self.out,
            human: self.human,
        })?;
        self.out.push(')');
        Ok(())
    }
    fn serialize_unit(self) -> Result<(), DumpError> {
        self.out.push_str("()");
        Ok(())
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<(), DumpError> {
        self.out.push_str(name);
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), DumpError> {
        write!(self.out, "{name}::{variant}").unwrap();
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), DumpError> {
        self.out.push_str(name);
        self.out.push('(');
        value.serialize(Dump {
            out: &mut *self.out,
            human: self.human,
        })?;
        self.out.push(')');
        Ok(())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), DumpError> {
        write!(self.out, "{name}::{variant}(").unwrap();
        value.serialize(Dump {
            out: &mut *self.out,
            human: self.human,
        })?;
        self.out.push(')');
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<DumpCompound<'a>, DumpError> {
        Ok(self.open("[", "]"))
    }
    fn serialize_tuple(self, _: usize) -> Result<DumpCompound<'a>, DumpError> {
        Ok(self.open("(", ")"))
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        _: usize,
    ) -> Result<DumpCompound<'a>, DumpError> {
        self.out.push_str(name);
        Ok(self.open("(", ")"))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<DumpCompound<'a>, DumpError> {
        write!(self.out, "{name}::{variant}").unwrap();
        Ok(self.open("(", ")"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<DumpCompound<'a>, DumpError> {
        Ok(self.open("{", "}"))
    }
    fn serialize_struct(self, name: &'static str, _: usize) -> Result<DumpCompound<'a>, DumpError> {
        self.out.push_str(name);
        Ok(self.open("{", "}"))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<DumpCompound<'a>, DumpError> {
        write!(self.out, "{name}::{variant}").unwrap();
        Ok(self.open("{", "}"))
    }
    fn is_human_readable(&self) -> bool {
        self.human
    }
}

impl<'a> Dump<'a> {
    fn open(self, open: &'static str, close: &'static str) -> DumpCompound<'a> {
        self.out.push_str(open);
        DumpCompound {
            out: self.out,
            human: self.human,
            first: true,
            close,
        }
    }
}

#[test]
fn the_dump_format_shows_structure_json_hides() {
    #[derive(Serialize)]
    struct Unit;
    #[derive(Serialize)]
    struct Wrapper(String);
    #[derive(Serialize)]
    struct All {
        unit: Unit,
        wrapped: Wrapper,
        maybe: Option<Wrapper>,
        nothing: Option<u8>,
        letter: char,
        big: u128,
        small: i128,
        event: Event,
        access_token: Option<Wrapper>,
    }
    let all = All {
        unit: Unit,
        wrapped: Wrapper(format!("w {ACCESS}")),
        maybe: Some(Wrapper(format!("m {PUBLIC}"))),
        nothing: None,
        letter: 'x',
        big: u128::MAX,
        small: i128::MIN,
        event: Event::Pair(ROUTING.to_owned(), 1),
        access_token: Some(Wrapper(ACCESS.to_owned())),
    };
    let policy = Policy::plaid();
    assert_eq!(
        dump(&Redacted::new(&all, &policy), true),
        format!(
            concat!(
                r#"All{{unit=Unit,wrapped=Wrapper("w {a}"),maybe=Some(Wrapper("m {p}")),"#,
                r#"nothing=None,letter='x',big={big},small={small},"#,
                r#"event=Event::Pair("{r}",1),access_token="{a}"}}"#
            ),
            a = P_ACCESS,
            p = P_PUBLIC,
            r = P_ROUTING,
            big = u128::MAX,
            small = i128::MIN
        )
    );
    // And an already-redacted field keeps its placeholder through the option and newtype.
    let again = All {
        access_token: Some(Wrapper(P_ACCESS.to_owned())),
        ..all
    };
    assert!(
        dump(&Redacted::new(&again, &policy), true)
            .ends_with(&format!(r#"access_token="{P_ACCESS}"}}"#))
    );
}

/// Bytes, written through `serialize_bytes`.
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

#[test]
fn bytes_go_through_the_byte_rules_and_keep_their_length() {
    let policy = Policy::plaid();
    let small = format!("\u{1}{ACCESS} {ROUTING}");
    let large = format!("{}{ACCESS}{}", "x ".repeat(200), " y".repeat(200));
    for raw in [small.as_bytes(), large.as_bytes()] {
        let out = dump(&Redacted::new(&Bytes(raw), &policy), false);
        let body = out.strip_prefix("b\"").unwrap().strip_suffix('"').unwrap();
        assert_eq!(body.len(), raw.len());
        assert!(body.contains("[REDACTED:plaid.access_token]"), "{body}");
        assert!(
            !body.contains("de3ce8ef") && !body.contains(ROUTING),
            "{body}"
        );
    }
    let clean = b"\x00\x01 just bytes \xff";
    let mut plain = Vec::new();
    Bytes(clean)
        .serialize(&mut serde_json::Serializer::new(&mut plain))
        .unwrap();
    assert_eq!(to_json_vec(&Bytes(clean), &policy).unwrap(), plain);
}

/// A value serialized with `collect_str` (its `Display`).
struct Shown(String);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shown: {}", self.0)
    }
}

impl Serialize for Shown {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[test]
fn display_values_are_scrubbed_short_or_long() {
    #[derive(Serialize)]
    struct Holder {
        short: Shown,
        long: Shown,
        secret: Shown,
    }
    let holder = Holder {
        short: Shown(ACCESS.to_owned()),
        long: Shown(format!("{} {LINK} {}", "a".repeat(150), "b".repeat(150))),
        secret: Shown("s3cr3t".to_owned()),
    };
    let v = json_value(&holder, &Policy::plaid());
    assert_eq!(v["short"], format!("shown: {P_ACCESS}").as_str());
    assert_eq!(
        v["long"],
        format!("shown: {} {P_LINK} {}", "a".repeat(150), "b".repeat(150)).as_str()
    );
    assert_eq!(v["secret"], P_SECRET);
}

#[test]
fn is_human_readable_is_the_inner_serializers() {
    #[derive(Serialize)]
    struct Field {
        access_token: Either,
    }
    /// Writes a different form for human-readable formats, as `chrono` and `uuid` do.
    struct Either;
    impl Serialize for Either {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            if serializer.is_human_readable() {
                serializer.serialize_str(ACCESS)
            } else {
                serializer.serialize_u8(1)
            }
        }
    }
    let policy = Policy::plaid();
    assert_eq!(
        dump(&Redacted::new(&Either, &policy), true),
        format!("\"{P_ACCESS}\"")
    );
    assert_eq!(dump(&Redacted::new(&Either, &policy), false), "1");
    assert_eq!(
        dump(
            &Redacted::new(
                &Field {
                    access_token: Either
                },
                &policy
            ),
            false
        ),
        format!("Field{{access_token=\"{P_ACCESS}\"}}")
    );
}

#[test]
fn redacted_is_copy_and_its_debug_shows_no_value() {
    let policy = Policy::plaid();
    let value = logged();
    let wrapped = Redacted::new(&value, &policy);
    let copy = wrapped;
    let shown = format!("{wrapped:?} {copy:?}");
    assert!(shown.starts_with("Redacted {"), "{shown}");
    assert!(!shown.contains("de3ce8ef"), "{shown}");
    assert_eq!(
        serde_json::to_vec(&copy).unwrap(),
        to_json_vec(&value, &policy).unwrap()
    );
}

// ---------------------------------------------------------------------------------------------
// Leak canary.

const ROUTING_NUMBERS: [&str; 4] = ["021000021", "011401533", "011000015", "091000019"];
/// Every planted client secret starts with this; words never contain it.
const SECRET_MARK: &str = "S3CR";

#[derive(Debug, Clone, Serialize)]
enum Node {
    Text(String),
    Num(u32),
    Flag(bool),
    List(Vec<Node>),
    Map(BTreeMap<String, Node>),
    Opt(Option<Box<Node>>),
    Rec(Box<Record>),
    Pair(String, Box<Node>),
    Shape { label: String, secret: String },
}

#[derive(Debug, Clone, Serialize)]
struct Record {
    note: String,
    secret: String,
    #[serde(rename = "clientSecret")]
    client_secret: Option<String>,
    tags: Vec<String>,
    pair: (String, u32),
    child: Node,
}

fn token() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["access", "public", "link", "processor"]),
        prop::sample::select(vec!["sandbox", "production"]),
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    )
        .prop_map(|(kind, env, id)| format!("{kind}-{env}-{id}"))
}

fn client_secret() -> impl Strategy<Value = String> {
    "[0-9a-z]{26}".prop_map(|s| format!("{SECRET_MARK}{s}"))
}

/// Free text: words, Plaid tokens and routing numbers, separated by spaces or punctuation.
fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[a-z]{1,8}",
        1 => token(),
        1 => prop::sample::select(ROUTING_NUMBERS.to_vec()).prop_map(str::to_owned),
    ];
    let sep = prop::sample::select(vec![" ", ", ", "; ", " (", ") ", "\n", "\t", " = "]);
    prop::collection::vec((piece, sep), 0..6).prop_map(|parts| {
        parts
            .into_iter()
            .flat_map(|(p, s)| [p, s.to_owned()])
            .collect::<String>()
    })
}

fn secret_key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "secret",
        "Secret",
        "SECRET",
        "client_secret",
        "clientSecret",
        "client-secret",
        "PLAID-SECRET",
        "plaid_secret",
    ])
    .prop_map(str::to_owned)
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        text().prop_map(Node::Text),
        (0u32..100_000).prop_map(Node::Num),
        any::<bool>().prop_map(Node::Flag),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let planted = prop_oneof![
            client_secret().prop_map(Node::Text),
            (client_secret(), inner.clone()).prop_map(|(s, n)| Node::List(vec![Node::Text(s), n])),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Node::List),
            (
                prop::collection::btree_map(text(), inner.clone(), 0..4),
                prop::option::of((secret_key(), planted)),
            )
                .prop_map(|(mut map, secret)| {
                    if let Some((k, v)) = secret {
                        map.insert(k, v);
                    }
                    Node::Map(map)
                }),
            prop::option::of(inner.clone().prop_map(Box::new)).prop_map(Node::Opt),
            (
                text(),
                client_secret(),
                prop::option::of(client_secret()),
                prop::collection::vec(text(), 0..3),
                (text(), any::<u32>()),
                inner.clone(),
            )
                .prop_map(|(note, secret, client_secret, tags, pair, child)| {
                    Node::Rec(Box::new(Record {
                        note,
                        secret,
                        client_secret,
                        tags,
                        pair,
                        child,
                    }))
                }),
            (text(), inner.clone()).prop_map(|(s, n)| Node::Pair(s, Box::new(n))),
            (text(), client_secret()).prop_map(|(label, secret)| Node::Shape { label, secret }),
        ]
    })
}

fn assert_no_canary(out: &str) -> Result<(), TestCaseError> {
    for marker in ["-sandbox-", "-production-", SECRET_MARK] {
        prop_assert!(!out.contains(marker), "{} leaked in {}", marker, out);
    }
    for routing in ROUTING_NUMBERS {
        prop_assert!(!out.contains(routing), "{} leaked in {}", routing, out);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_planted_secret_survives(root in node()) {
        let policy = Policy::plaid();
        let out = String::from_utf8(to_json_vec(&root, &policy).unwrap()).unwrap();
        assert_no_canary(&out)?;
        prop_assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok());
        assert_no_canary(&dump(&Redacted::new(&root, &policy), true))?;
        // Redacting the output again changes nothing.
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        let again: serde_json::Value = serde_json::from_slice(&to_json_vec(&parsed, &policy).unwrap()).unwrap();
        prop_assert_eq!(again, parsed);
    }

    #[test]
    fn no_planted_secret_survives_an_allow_list(root in node()) {
        let policy = Policy::builder()
            .allow_only(["note", "tags", "pair", "child", "label", "secret"])
            .build()
            .unwrap();
        assert_no_canary(&json(&root, &policy))?;
        assert_no_canary(&dump(&Redacted::new(&root, &policy), false))?;
    }
}

#[test]
fn placeholders_in_the_canary_output_are_well_formed() {
    let root = Node::Map(BTreeMap::from([
        ("secret".to_owned(), Node::Text(format!("{SECRET_MARK}abc"))),
        (format!("k {ACCESS}"), Node::Num(1)),
    ]));
    let v = json_value(&root, &Policy::plaid());
    let map = v["Map"].as_object().unwrap();
    assert!(map.values().any(|v| v.as_str().is_some_and(is_placeholder)));
    assert!(map.keys().any(|k| k == &format!("k {P_ACCESS}")));
}
