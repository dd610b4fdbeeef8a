#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "test code"
)]
//! The streaming JSON scrubber: redaction by key and by value, escapes, idempotence, no
//! over-scrubbing of ordinary Plaid fields, allow-list mode, malformed input, and a property
//! test that planted canaries never survive. A small tree-based reference (parse to
//! `serde_json::Value`, redact recursively) states the intended semantics; the scrubber must
//! agree with it on every well-formed document.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;

use proptest::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};
use tokenward_redact::{
    FieldAction, Fingerprinter, JsonError, MAX_JSON_DEPTH, PLAID_FIELDS, Policy, PolicyBuilder,
    Tag, is_placeholder, scrub_json, scrub_json_to_vec, scrub_json_to_writer,
};

const ACCESS: &str = "access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6";
const PUBLIC: &str = "public-production-0b6a6a1a-2d5c-4a7e-9a40-1f1d0f6c9e2b";
const SECRET: &str = "0123456789abcdef0123456789abcd";

const P_ACCESS: &str = "[REDACTED:plaid.access_token]";
const P_PUBLIC: &str = "[REDACTED:plaid.public_token]";
const P_SECRET: &str = "[REDACTED:plaid.client_secret]";
const P_ROUTING: &str = "[REDACTED:bank.routing_number]";
const P_ACCOUNT: &str = "[REDACTED:bank.account_number]";
const P_NOT_ALLOWED: &str = "[REDACTED:not_allowed]";

fn scrub(policy: &Policy, input: &[u8]) -> Vec<u8> {
    scrub_json_to_vec(policy, input)
        .unwrap_or_else(|e| panic!("scrub failed ({e}) on {}", String::from_utf8_lossy(input)))
}

fn scrub_str(policy: &Policy, input: &str) -> String {
    String::from_utf8(scrub(policy, input.as_bytes())).unwrap()
}

fn scrub_value(policy: &Policy, input: &Value) -> Value {
    let out = scrub(policy, &serde_json::to_vec(input).unwrap());
    serde_json::from_slice(&out).expect("scrubbed output parses")
}

/// The intended semantics on a tree: what `scrub_json` must agree with.
fn reference(policy: &Policy, value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(policy.scrub_text(s).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(|v| reference(policy, v)).collect()),
        Value::Object(members) => {
            let mut out = serde_json::Map::new();
            for (key, v) in members {
                let scrubbed = policy.scrub_text(key);
                let action = match policy.field(key) {
                    FieldAction::Keep if matches!(scrubbed, Cow::Owned(_)) => {
                        policy.field(&scrubbed)
                    }
                    action => action,
                };
                let v = match (action, v) {
                    (FieldAction::Redact(_), Value::String(s)) if is_placeholder(s) => v.clone(),
                    (FieldAction::Redact(p), _) => Value::String(p.to_owned()),
                    (FieldAction::Keep, _) => reference(policy, v),
                };
                out.insert(scrubbed.into_owned(), v);
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Serializes with every `-` and every `a` in strings written as a `\u` escape, and a few
/// other characters escaped, so tokens reach the scrubber only in escaped form.
fn to_escaped_json(value: &Value) -> Vec<u8> {
    struct Escaping;
    impl serde_json::ser::Formatter for Escaping {
        fn write_string_fragment<W: ?Sized + io::Write>(
            &mut self,
            writer: &mut W,
            fragment: &str,
        ) -> io::Result<()> {
            for c in fragment.chars() {
                match c {
                    '-' | 'a' | 'e' | '0' | '/' => write!(writer, "\\u{:04x}", u32::from(c))?,
                    '\u{1F600}' => writer.write_all(b"\\ud83d\\ude00")?,
                    _ => write!(writer, "{c}")?,
                }
            }
            Ok(())
        }
    }
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Escaping);
    value.serialize(&mut ser).unwrap();
    out
}

/// A realistic Plaid `/transactions/get` response with `n` transactions (no secrets).
fn transactions_response(n: usize) -> Value {
    let transactions: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "account_id": "BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp",
                "account_owner": null,
                "amount": 4.33 + f64::from(u32::try_from(i).unwrap()),
                "authorized_date": "2024-01-15",
                "category": ["Food and Drink", "Restaurants", "Coffee Shop"],
                "category_id": "13005043",
                "counterparties": [{
                    "name": "Starbucks",
                    "type": "merchant",
                    "website": "starbucks.com",
                    "logo_url": "https://plaid-merchant-logos.plaid.com/starbucks_956.png",
                    "confidence_level": "VERY_HIGH"
                }],
                "date": "2024-01-16",
                "iso_currency_code": "USD",
                "location": {"city": "San Francisco", "region": "CA", "lat": 37.77, "lon": -122.41, "store_number": "1235"},
                "merchant_name": "Starbucks",
                "name": format!("Starbucks Coffee #{i} Caf\u{e9}"),
                "payment_channel": "in store",
                "payment_meta": {"reference_number": null, "ppd_id": null, "payee": null},
                "pending": false,
                "pending_transaction_id": null,
                "personal_finance_category": {"primary": "FOOD_AND_DRINK", "detailed": "FOOD_AND_DRINK_COFFEE", "confidence_level": "VERY_HIGH"},
                "transaction_code": null,
                "transaction_id": format!("lPNjeW1nR6CDn5okmGQ6hEpMo4lLNoSrzqDj{i:03}"),
                "transaction_type": "place",
                "unofficial_currency_code": null
            })
        })
        .collect();
    json!({
        "accounts": [{
            "account_id": "BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp",
            "balances": {"available": 110.94, "current": 110.94, "iso_currency_code": "USD", "limit": null},
            "mask": "0000",
            "name": "Plaid Checking",
            "official_name": "Plaid Gold Standard 0% Interest Checking",
            "subtype": "checking",
            "type": "depository"
        }],
        "item": {
            "item_id": "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6",
            "institution_id": "ins_109508",
            "webhook": "https://www.genericwebhookurl.com/webhook",
            "error": null,
            "available_products": ["balance", "identity"],
            "billed_products": ["transactions"],
            "consent_expiration_time": null,
            "update_type": "background"
        },
        "request_id": "45QSn",
        "total_transactions": n,
        "transactions": transactions
    })
}

// ---------------------------------------------------------------------------------------------
// Redaction by key.

#[test]
fn redacts_by_key_at_every_depth_and_case_style() {
    let policy = Policy::plaid();
    for name in [
        "access_token",
        "accessToken",
        "access-token",
        "Access-Token",
        "ACCESS_TOKEN",
        "AccessToken",
    ] {
        let mut doc = json!({ name: "whatever-value", "amount": 1.5 });
        let mut want = json!({ name: P_ACCESS, "amount": 1.5 });
        for depth in 0..6 {
            assert_eq!(scrub_value(&policy, &doc), want, "{name} at depth {depth}");
            // Alternate objects and arrays on the way down.
            if depth % 2 == 0 {
                doc = json!({ "data": doc, "n": depth });
                want = json!({ "data": want, "n": depth });
            } else {
                doc = json!([1, doc, "x"]);
                want = json!([1, want, "x"]);
            }
        }
    }
}

#[test]
fn every_plaid_field_is_redacted_by_name() {
    let policy = Policy::plaid();
    for (name, tag) in PLAID_FIELDS {
        let doc = json!({ "outer": { *name: "opaque" } });
        assert_eq!(
            scrub_value(&policy, &doc),
            json!({ "outer": { *name: tag.placeholder() } }),
            "{name}"
        );
    }
}

#[test]
fn a_redacted_member_loses_its_whole_value_whatever_its_type() {
    let policy = Policy::plaid();
    let input = format!(
        r#"{{"secret":"{SECRET}","access_token":{{"nested":["{ACCESS}",{{"deep":true}}]}},"account":[1111222233330000,"x"],"routing":11401533,"password":true,"api_key":null,"client_id":-1.5e3}}"#
    );
    assert_eq!(
        scrub_str(&policy, &input),
        format!(
            r#"{{"secret":"{P_SECRET}","access_token":"{P_ACCESS}","account":"{P_ACCOUNT}","routing":"{P_ROUTING}","password":"[REDACTED:credential]","api_key":"[REDACTED:credential]","client_id":"[REDACTED:plaid.client_id]"}}"#
        )
    );
}

#[test]
fn array_elements_share_their_members_decision() {
    let policy = Policy::plaid();
    let doc = json!({
        "access_token": [ACCESS, PUBLIC, {"a": 1}],
        "items": [{"access_token": ACCESS, "item_id": "abc"}, [{"secret": 5}], "plain text"]
    });
    assert_eq!(
        scrub_value(&policy, &doc),
        json!({
            "access_token": P_ACCESS,
            "items": [{"access_token": P_ACCESS, "item_id": "abc"}, [{"secret": P_SECRET}], "plain text"]
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Redaction by value: plain, in keys, escaped.

#[test]
fn tokens_in_values_are_scrubbed() {
    let policy = Policy::plaid();
    let doc = json!({
        "note": format!("exchanged {PUBLIC} for {ACCESS} today"),
        "list": [ACCESS, "clean", 3],
        "dump": format!("{{\"access_token\": \"{ACCESS}\", \"secret\": \"{SECRET}\"}}"),
        "wire": "wire to 021000021 today"
    });
    let out = scrub_value(&policy, &doc);
    assert_eq!(
        out,
        json!({
            "note": format!("exchanged {P_PUBLIC} for {P_ACCESS} today"),
            "list": [P_ACCESS, "clean", 3],
            "dump": format!("{{\"access_token\": \"{P_ACCESS}\", \"secret\": \"{P_SECRET}\"}}"),
            "wire": format!("wire to {P_ROUTING} today")
        })
    );
}

#[test]
fn tokens_used_as_keys_are_scrubbed() {
    let policy = Policy::plaid();
    let doc = json!({ ACCESS: {"item_id": "abc"}, "ok": true, format!("k {PUBLIC}"): 1 });
    assert_eq!(
        scrub_value(&policy, &doc),
        json!({ P_ACCESS: {"item_id": "abc"}, "ok": true, format!("k {P_PUBLIC}"): 1 })
    );
}

#[test]
fn escaped_tokens_are_unescaped_before_scrubbing() {
    let policy = Policy::plaid();
    // Hyphens as `\u002d`, then every character escaped, then in a key, then mixed escapes.
    let hyphens = ACCESS.replace('-', "\\u002d");
    let every = ACCESS.chars().fold(String::new(), |mut out, c| {
        write!(out, "\\u{:04X}", u32::from(c)).unwrap();
        out
    });
    let input =
        format!(r#"{{"a":"{hyphens}","b":"x {every} y","{hyphens}":1,"c":"\"{hyphens}\"\n\/"}}"#);
    let out = scrub_str(&policy, &input);
    assert_eq!(
        out,
        format!(
            r#"{{"a":"{P_ACCESS}","b":"x {P_ACCESS} y","{P_ACCESS}":1,"c":"\"{P_ACCESS}\"\n/"}}"#
        )
    );
    assert!(!out.contains("de3ce8ef"));
    // Escaped field names are matched too.
    let key = "\\u0061ccess\\u005Ftoken";
    assert_eq!(
        scrub_str(&policy, &format!(r#"{{"{key}":"x"}}"#)),
        format!(r#"{{"access_token":"{P_ACCESS}"}}"#)
    );
}

#[test]
fn strings_are_re_escaped_minimally_and_correctly() {
    let policy = Policy::plaid();
    let input =
        r#"["\u0041\u00e9\ud83d\ude00\u2028","\u0000\u001f\b\f\n\r\t\"\\\/","caf\u00E9 x"]"#;
    let out = scrub(&policy, input.as_bytes());
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        "[\"A\u{e9}\u{1f600}\u{2028}\",\"\\u0000\\u001f\\b\\f\\n\\r\\t\\\"\\\\/\",\"caf\u{e9} x\"]"
    );
    // The same strings as serde_json reads them.
    let want: Value = serde_json::from_str(input).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), want);
}

#[test]
fn fingerprinted_policies_scrub_and_stay_idempotent() {
    let fp = Fingerprinter::new(&[9; 32]).unwrap();
    let policy = PolicyBuilder::plaid().fingerprints(fp).build().unwrap();
    let input = format!(r#"{{"note":"t={ACCESS}","access_token":"{ACCESS}"}}"#);
    let once = scrub(&policy, input.as_bytes());
    let text = String::from_utf8(once.clone()).unwrap();
    assert!(text.contains("[REDACTED:plaid.access_token fp1:"), "{text}");
    assert!(!text.contains("de3ce8ef"));
    assert_eq!(scrub(&policy, &once), once);
}

// ---------------------------------------------------------------------------------------------
// Idempotence.

#[test]
fn placeholders_are_kept_so_scrubbing_twice_equals_once() {
    let policy = Policy::plaid();
    let input = format!(
        r#"{{"access_token":"{P_ACCESS}","secret":"[REDACTED:plaid.client_secret fp1:0123456789abcdef]","note":"[REDACTED:http.bearer]","client_id":"[REDACTED:Not A Placeholder]","{ACCESS}":{{"secret":{{"x":1}}}},"t":"{ACCESS}"}}"#
    );
    let once = scrub_str(&policy, &input);
    assert_eq!(
        once,
        format!(
            r#"{{"access_token":"{P_ACCESS}","secret":"[REDACTED:plaid.client_secret fp1:0123456789abcdef]","note":"[REDACTED:http.bearer]","client_id":"[REDACTED:plaid.client_id]","{P_ACCESS}":{{"secret":"{P_SECRET}"}},"t":"{P_ACCESS}"}}"#
        )
    );
    assert_eq!(scrub_str(&policy, &once), once);
    // A placeholder under a redacted key, spelled with escapes, is still a placeholder.
    assert_eq!(
        scrub_str(
            &policy,
            r#"{"access_token":"[REDACTED:plaid\u002eaccess_token]"}"#
        ),
        format!(r#"{{"access_token":"{P_ACCESS}"}}"#)
    );
}

// ---------------------------------------------------------------------------------------------
// No over-scrubbing.

#[test]
fn ordinary_plaid_fields_pass_unchanged() {
    let policy = Policy::plaid();
    let doc = transactions_response(100);
    let pretty = serde_json::to_vec_pretty(&doc).unwrap();
    let out = scrub(&policy, &pretty);
    // Equal modulo whitespace: the compact serialization of the same document, byte for byte.
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        serde_json::to_string(&doc).unwrap()
    );
    assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), doc);
    for field in [
        "amount",
        "date",
        "merchant_name",
        "name",
        "item_id",
        "request_id",
        "account_id",
        "transaction_id",
        "iso_currency_code",
    ] {
        assert_eq!(policy.field(field), FieldAction::Keep, "{field}");
    }
}

#[test]
fn whitespace_is_dropped_and_numbers_are_verbatim() {
    let policy = Policy::plaid();
    assert_eq!(
        scrub_str(
            &policy,
            " {\n\t\"a\" : [ 1 , -0.5E+10 , 1e400 , 12345678901234567890 , true , false , null ] ,\r\n \"b\" : { } } \n"
        ),
        r#"{"a":[1,-0.5E+10,1e400,12345678901234567890,true,false,null],"b":{}}"#
    );
    for scalar in [
        r#""a b""#, "0", "-1.25e-3", "true", "false", "null", "[]", "{}",
    ] {
        assert_eq!(scrub_str(&policy, scalar), scalar);
    }
}

#[test]
fn agrees_with_the_tree_reference_on_plaid_payloads() {
    let policy = Policy::plaid();
    let mut doc = transactions_response(3);
    doc["access_token"] = json!(ACCESS);
    doc["item"]["note"] = json!(format!("public {PUBLIC} and Bearer abcDEF123456"));
    doc["numbers"] = json!({"ach": [{"account": "1111222233330000", "routing": "011401533", "wire_routing": "021000021", "account_id": "x"}]});
    doc[PUBLIC] = json!({"secret": SECRET});
    let want = reference(&policy, &doc);
    assert_eq!(scrub_value(&policy, &doc), want);
    let escaped = to_escaped_json(&doc);
    assert_eq!(
        serde_json::from_slice::<Value>(&scrub(&policy, &escaped)).unwrap(),
        want
    );
}

// ---------------------------------------------------------------------------------------------
// Allow-list mode.

#[test]
fn allow_list_checks_every_key_at_every_depth() {
    let policy = PolicyBuilder::plaid()
        .allow_only([
            "transactions",
            "amount",
            "date",
            "name",
            "location",
            "access_token",
        ])
        .build()
        .unwrap();
    assert!(policy.is_allow_list());
    let doc = json!({
        "transactions": [
            {"amount": 1.5, "date": "2024-01-01", "name": format!("n {ACCESS}"), "merchant_name": "Starbucks",
             "location": {"city": "SF", "name": "store"}, "payment_meta": {"payee": "x"}},
            "free text",
            [{"amount": 2, "account_id": "abc"}]
        ],
        "access_token": ACCESS,
        "request_id": "45QSn",
        "name": ["a", {"amount": 3, "other": {"amount": 4}}]
    });
    assert_eq!(
        scrub_value(&policy, &doc),
        json!({
            "transactions": [
                {"amount": 1.5, "date": "2024-01-01", "name": format!("n {P_ACCESS}"), "merchant_name": P_NOT_ALLOWED,
                 "location": {"city": P_NOT_ALLOWED, "name": "store"}, "payment_meta": P_NOT_ALLOWED},
                "free text",
                [{"amount": 2, "account_id": P_NOT_ALLOWED}]
            ],
            "access_token": P_ACCESS,
            "request_id": P_NOT_ALLOWED,
            "name": ["a", {"amount": 3, "other": P_NOT_ALLOWED}]
        })
    );
}

#[test]
fn an_empty_allow_list_passes_no_member() {
    let policy = PolicyBuilder::plaid()
        .allow_only(Vec::<String>::new())
        .build()
        .unwrap();
    let doc = transactions_response(2);
    let out = scrub_value(&policy, &doc);
    let members = out.as_object().unwrap();
    assert_eq!(members.len(), doc.as_object().unwrap().len());
    for (key, value) in members {
        assert_eq!(value, &json!(P_NOT_ALLOWED), "{key}");
    }
    // Keys are still scrubbed; values that are already placeholders stay.
    assert_eq!(
        scrub_value(&policy, &json!({ ACCESS: 1, "a": P_ACCESS })),
        json!({ P_ACCESS: P_NOT_ALLOWED, "a": P_ACCESS })
    );
    // The list governs object members; outside any object, value rules still apply.
    assert_eq!(
        scrub_value(&policy, &json!([ACCESS, 1, "ok"])),
        json!([P_ACCESS, 1, "ok"])
    );
}

// ---------------------------------------------------------------------------------------------
// Malformed input.

#[test]
fn malformed_input_is_an_error_and_leaves_no_output() {
    let policy = Policy::plaid();
    let deep = "[".repeat(MAX_JSON_DEPTH + 1) + &"]".repeat(MAX_JSON_DEPTH + 1);
    let cases: Vec<(Vec<u8>, JsonError)> = vec![
        (
            format!(r#"{{"access_token":"{ACCESS}" "x":1}}"#).into_bytes(),
            JsonError::UnexpectedByte { offset: 70 },
        ),
        (b"{'a':1}".to_vec(), JsonError::UnexpectedByte { offset: 1 }),
        (b"[1,]".to_vec(), JsonError::UnexpectedByte { offset: 3 }),
        (b"[01]".to_vec(), JsonError::UnexpectedByte { offset: 2 }),
        (b"[tru]".to_vec(), JsonError::UnexpectedByte { offset: 4 }),
        (
            b"{\"a\":[1}".to_vec(),
            JsonError::UnexpectedByte { offset: 7 },
        ),
        (
            b"[\"a\tb\"]".to_vec(),
            JsonError::UnexpectedByte { offset: 3 },
        ),
        (
            b"\xef\xbb\xbf{}".to_vec(),
            JsonError::UnexpectedByte { offset: 0 },
        ),
        (
            format!(r#"{{"note":"{ACCESS}"#).into_bytes(),
            JsonError::UnterminatedString { offset: 8 },
        ),
        (br#"["\x41"]"#.to_vec(), JsonError::BadEscape { offset: 2 }),
        (
            br#"["\u12G4"]"#.to_vec(),
            JsonError::BadEscape { offset: 2 },
        ),
        (
            br#"["\ud800"]"#.to_vec(),
            JsonError::BadEscape { offset: 2 },
        ),
        (
            br#"["\udc00"]"#.to_vec(),
            JsonError::BadEscape { offset: 2 },
        ),
        (
            br#"["ok","\ud83d\u0041"]"#.to_vec(),
            JsonError::BadEscape { offset: 7 },
        ),
        (
            b"[\"caf\xc3\"]".to_vec(),
            JsonError::InvalidUtf8 { offset: 5 },
        ),
        (
            b"[\"\xc0\xaf\"]".to_vec(),
            JsonError::InvalidUtf8 { offset: 2 },
        ),
        (
            b"{\"\xed\xa0\x80\":1}".to_vec(),
            JsonError::InvalidUtf8 { offset: 2 },
        ),
        (
            format!(r#"{{"a":1}} "{ACCESS}""#).into_bytes(),
            JsonError::TrailingData { offset: 8 },
        ),
        (b"1 2".to_vec(), JsonError::TrailingData { offset: 2 }),
        (
            deep.clone().into_bytes(),
            JsonError::TooDeep {
                offset: MAX_JSON_DEPTH,
            },
        ),
        (Vec::new(), JsonError::Truncated { offset: 0 }),
        (b" \n ".to_vec(), JsonError::Truncated { offset: 3 }),
        (
            format!(r#"{{"access_token":"{ACCESS}","#).into_bytes(),
            JsonError::Truncated { offset: 70 },
        ),
        (b"[1.".to_vec(), JsonError::Truncated { offset: 3 }),
        (b"{\"a\"".to_vec(), JsonError::Truncated { offset: 4 }),
    ];
    for (input, want) in cases {
        let shown = String::from_utf8_lossy(&input).into_owned();
        // Appending to a buffer that already holds something: it comes back as it was.
        let mut out = b"log line: ".to_vec();
        let err = scrub_json(&policy, &input, &mut out).unwrap_err();
        assert_eq!(err, want, "{shown}");
        assert_eq!(err.offset(), want.offset());
        assert_eq!(out, b"log line: ", "{shown}");
        assert_eq!(scrub_json_to_vec(&policy, &input), Err(want));
        // The message names an offset and a reason, never input bytes.
        let message = err.to_string();
        assert!(
            message.contains(&format!("offset {}", want.offset())),
            "{message}"
        );
        assert!(!message.contains("access") && !message.contains("de3ce8ef"));
        assert_eq!(message, message.to_lowercase());
        // The writer variant writes nothing.
        let mut sink = Vec::new();
        let io_err = scrub_json_to_writer(&policy, &input, &mut sink).unwrap_err();
        assert_eq!(io_err.kind(), io::ErrorKind::InvalidData);
        assert!(sink.is_empty());
        // serde_json refuses the same documents.
        assert!(serde_json::from_slice::<Value>(&input).is_err(), "{shown}");
    }
}

#[test]
fn nesting_up_to_the_limit_is_fine_and_iterative() {
    let policy = Policy::plaid();
    let arrays = "[".repeat(MAX_JSON_DEPTH) + &"]".repeat(MAX_JSON_DEPTH);
    assert_eq!(scrub_str(&policy, &arrays), arrays);
    let objects = format!(
        "{}\"{ACCESS}\"{}",
        "{\"k\":".repeat(MAX_JSON_DEPTH),
        "}".repeat(MAX_JSON_DEPTH)
    );
    let out = scrub_str(&policy, &objects);
    assert!(out.contains(P_ACCESS) && !out.contains("de3ce8ef"));
    // A redacted subtree counts towards the limit too: it is validated, not trusted.
    let too_deep = format!(
        "{{\"secret\":{}{}}}",
        "[".repeat(MAX_JSON_DEPTH),
        "]".repeat(MAX_JSON_DEPTH)
    );
    assert_eq!(
        scrub_json_to_vec(&policy, too_deep.as_bytes()),
        Err(JsonError::TooDeep {
            offset: 10 + MAX_JSON_DEPTH - 1
        })
    );
    // Far deeper input fails fast, without recursion.
    let huge = "[".repeat(1 << 20);
    assert!(matches!(
        scrub_json_to_vec(&policy, huge.as_bytes()),
        Err(JsonError::TooDeep { .. })
    ));
}

#[test]
fn a_redacted_subtree_is_still_validated() {
    let policy = Policy::plaid();
    for bad in [
        r#"{"secret":{"a":1,}}"#,
        r#"{"secret":["\x"]}"#,
        r#"{"secret":[1 2]}"#,
        r#"{"secret":{"a" 1}}"#,
        r#"{"secret":[01]}"#,
    ] {
        assert!(scrub_json_to_vec(&policy, bad.as_bytes()).is_err(), "{bad}");
    }
}

#[test]
fn the_output_buffer_is_appended_to_and_reusable() {
    let policy = Policy::plaid();
    let mut out = Vec::new();
    for _ in 0..3 {
        out.clear();
        scrub_json(
            &policy,
            format!(r#"{{"t":"{ACCESS}"}}"#).as_bytes(),
            &mut out,
        )
        .unwrap();
        assert_eq!(out, format!(r#"{{"t":"{P_ACCESS}"}}"#).as_bytes());
    }
    scrub_json(&policy, b"[1]", &mut out).unwrap();
    assert_eq!(out, format!(r#"{{"t":"{P_ACCESS}"}}[1]"#).as_bytes());
}

#[test]
fn custom_rules_and_kept_fields_apply() {
    let policy = PolicyBuilder::plaid()
        .redact_field("ssn", Tag::custom("ssn").unwrap())
        .keep_field("client_id")
        .pattern("employee", "EMP-[0-9]{6}")
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(
        scrub_value(
            &policy,
            &json!({"SSN": "123-45-6789", "client_id": "abc", "note": "by EMP-123456", "EMP-654321": 1})
        ),
        json!({"SSN": "[REDACTED:custom.ssn]", "client_id": "abc", "note": "by [REDACTED:custom.employee]", "[REDACTED:custom.employee]": 1})
    );
}

// ---------------------------------------------------------------------------------------------
// Property: planted canaries never survive, and the output is valid JSON.

const TOKEN_MARK: &str = "\u{1}TOKEN\u{1}";
const ROUTING_MARK: &str = "\u{1}ROUTING\u{1}";
const ROUTING_NUMBERS: [&str; 4] = ["021000021", "011401533", "091000019", "011000015"];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 _.,:/-]{0,24}",
        Just(String::new()),
        Just("caf\u{e9} \u{1F600} \"q\" \\ \n".to_owned()),
        "[a-z ]{0,8}".prop_map(|s| format!("{s}{TOKEN_MARK}")),
        "[a-z ]{0,8}".prop_map(|s| format!("{s}={TOKEN_MARK} end")),
        "[a-z ]{0,8}".prop_map(|s| format!("{s} {ROUTING_MARK} ok")),
        Just(P_ACCESS.to_owned()),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "amount", "date", "name", "merchant_name", "item_id", "request_id", "account_id",
            "transaction_id", "iso_currency_code", "transactions", "accounts", "location",
        ])
        .prop_map(str::to_owned),
        1 => prop::sample::select(vec![
            "access_token", "accessToken", "Public-Token", "secret", "CLIENT_ID", "account",
            "routing", "wireRouting", "authorization", "password",
        ])
        .prop_map(str::to_owned),
        1 => text(),
        1 => Just(TOKEN_MARK.to_owned()),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => text().prop_map(Value::String),
        1 => any::<i64>().prop_map(Value::from),
        1 => (-1e6f64..1e6).prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Null),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// Replaces the marks in every key and string with the canaries.
fn plant(value: &Value, token: &str, routing: &str) -> Value {
    let fill = |s: &str| s.replace(TOKEN_MARK, token).replace(ROUTING_MARK, routing);
    match value {
        Value::String(s) => Value::String(fill(s)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| plant(v, token, routing)).collect())
        }
        Value::Object(members) => Value::Object(
            members
                .iter()
                .map(|(k, v)| (fill(k), plant(v, token, routing)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Every key and string of a document, one per line.
fn strings(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(members) => {
            for (k, v) in members {
                out.push_str(k);
                out.push('\n');
                strings(v, out);
            }
        }
        _ => {}
    }
}

fn token_strategy() -> impl Strategy<Value = (String, String)> {
    (
        prop::sample::select(vec![
            "access",
            "public",
            "link",
            "processor",
            "user",
            "payment",
        ]),
        prop::sample::select(vec!["sandbox", "development", "production"]),
        any::<[u8; 16]>(),
    )
        .prop_map(|(kind, env, b)| {
            let h = b.iter().fold(String::new(), |mut out, x| {
                write!(out, "{x:02x}").unwrap();
                out
            });
            let id = format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            );
            (format!("{kind}-{env}-{id}"), id)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    #[test]
    fn planted_canaries_never_survive(
        shape in tree(),
        (token, id) in token_strategy(),
        routing in prop::sample::select(ROUTING_NUMBERS.to_vec()),
        form in 0..3u8,
    ) {
        let policy = Policy::plaid();
        let doc = plant(&shape, &token, routing);
        let input = match form {
            0 => serde_json::to_vec(&doc).unwrap(),
            1 => serde_json::to_vec_pretty(&doc).unwrap(),
            _ => to_escaped_json(&doc),
        };
        let out = scrub_json_to_vec(&policy, &input).unwrap();
        // Valid JSON, equal to the tree reference (on the input as serde_json reads it, which
        // need not round-trip every float exactly).
        let parsed: Value = serde_json::from_slice(&out).unwrap();
        let read: Value = serde_json::from_slice(&input).unwrap();
        prop_assert_eq!(&parsed, &reference(&policy, &read));
        // No canary, neither in the bytes nor in any decoded key or string.
        let mut visible = String::new();
        strings(&parsed, &mut visible);
        let raw = String::from_utf8(out.clone()).unwrap();
        prop_assert!(!raw.contains(&id) && !visible.contains(&id), "token survived: {}", raw);
        let standalone = visible
            .match_indices(routing)
            .any(|(at, _)| {
                let before = visible[..at].chars().next_back();
                let after = visible[at + routing.len()..].chars().next();
                !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        prop_assert!(!standalone, "routing number survived: {}", raw);
        // Idempotent.
        prop_assert_eq!(&scrub_json_to_vec(&policy, &out).unwrap(), &out);
        // Padded past the size where decisions are memoized: the same output.
        let mut padded = input.clone();
        padded.resize(input.len() + 4096, b' ');
        prop_assert_eq!(scrub_json_to_vec(&policy, &padded).unwrap(), out);
    }

    #[test]
    fn never_panics_and_fails_closed_on_arbitrary_bytes(input in prop::collection::vec(any::<u8>(), 0..256)) {
        let policy = Policy::plaid();
        let mut out = b"x".to_vec();
        if scrub_json(&policy, &input, &mut out).is_ok() {
            prop_assert!(serde_json::from_slice::<Value>(&out[1..]).is_ok()
                || serde_json::from_slice::<Value>(&input).is_err());
        } else {
            prop_assert_eq!(out, b"x".to_vec());
        }
    }
}
