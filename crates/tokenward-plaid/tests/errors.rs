//! Plaid error objects of every shape, the crate `Error`'s helpers and messages, and leak
//! canaries over the `Debug` and `Display` of every error and response.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "test code: failures should be loud"
)]

use serde_json::json;
use tokenward_plaid::models::{
    ItemAccessTokenInvalidateResponse, ItemPublicTokenExchangeResponse, LinkTokenCreateResponse,
    SandboxPublicTokenCreateResponse,
};
use tokenward_plaid::{
    DecodeReason, Endpoint, Error, ErrorCode, ErrorType, MAX_ERROR_TEXT_LEN, Outcome, PlaidError,
    TransportKind,
};
use tokenward_redact::{AccessToken, LinkToken, PublicToken};
use tokenward_testkit::canary;

const CANARIES: [&str; 7] = [
    canary::ACCESS_SANDBOX,
    canary::ACCESS_PRODUCTION,
    canary::PUBLIC_SANDBOX,
    canary::LINK_SANDBOX,
    canary::PROCESSOR_SANDBOX,
    canary::JWT,
    canary::PLAID_SECRET,
];

fn assert_no_canary(text: &str) {
    for canary in CANARIES {
        assert!(!text.contains(canary), "canary leaked: {text}");
    }
}

#[test]
fn a_full_error_object() {
    let error: PlaidError = serde_json::from_value(json!({
        "error_type": "ITEM_ERROR",
        "error_code": "ITEM_LOGIN_REQUIRED",
        "error_code_reason": "OAUTH_CONSENT_EXPIRED",
        "error_message": "the login details of this item have changed (credentials, MFA, or required user action) and a user login is required to update this information. use Link's update mode to restore the item to a good state",
        "display_message": "We need you to log in again.",
        "request_id": "HNTDNrA8F1shFEW",
        "causes": [],
        "status": 400,
        "documentation_url": "https://plaid.com/docs/errors/item/#item_login_required",
        "suggested_action": "Launch Link in update mode",
        "required_account_subtypes": ["checking"],
        "provided_account_subtypes": [],
        "an_unknown_field": {"x": 1}
    }))
    .unwrap();
    assert_eq!(error.error_type(), &ErrorType::ItemError);
    assert_eq!(error.error_code(), &ErrorCode::ItemLoginRequired);
    assert_eq!(error.error_code_reason(), Some("OAUTH_CONSENT_EXPIRED"));
    assert_eq!(
        error.display_message(),
        Some("We need you to log in again.")
    );
    assert_eq!(error.request_id(), Some("HNTDNrA8F1shFEW"));
    assert_eq!(error.status(), Some(400));
    assert_eq!(error.suggested_action(), Some("Launch Link in update mode"));
    assert!(error.is_login_required());
    assert!(error.requires_user_action());
    assert!(error.is_item_error());
    assert!(!error.is_transient());
    // Serializes back with the same codes.
    let back = serde_json::to_value(&error).unwrap();
    assert_eq!(back["error_code"], "ITEM_LOGIN_REQUIRED");
    assert_eq!(back["error_type"], "ITEM_ERROR");
    let again: PlaidError = serde_json::from_value(back).unwrap();
    assert_eq!(again, error);
}

#[test]
fn a_minimal_error_object_and_a_webhook_error() {
    // Required fields only; display_message null; no request_id (as in webhooks).
    let error: PlaidError = serde_json::from_str(
        r#"{"error_type":"INVALID_INPUT","error_code":"INVALID_ACCESS_TOKEN",
            "error_message":"could not find matching access token","display_message":null}"#,
    )
    .unwrap();
    assert!(error.is_invalid_access_token());
    assert_eq!(error.display_message(), None);
    assert_eq!(error.request_id(), None);
    assert!(error.causes().is_empty());
    assert_eq!(
        error.to_string(),
        "INVALID_INPUT/INVALID_ACCESS_TOKEN: could not find matching access token"
    );
}

#[test]
fn unknown_types_and_codes_are_kept() {
    let error: PlaidError = serde_json::from_str(
        r#"{"error_type":"BRAND_NEW_ERROR","error_code":"INVALID_CONFIGURATION",
            "error_message":"x","display_message":null,"request_id":"r"}"#,
    )
    .unwrap();
    assert_eq!(
        error.error_type(),
        &ErrorType::Unknown("BRAND_NEW_ERROR".into())
    );
    assert_eq!(
        error.error_code(),
        &ErrorCode::Unknown("INVALID_CONFIGURATION".into())
    );
    let back = serde_json::to_value(&error).unwrap();
    assert_eq!(back["error_code"], "INVALID_CONFIGURATION");
    // All 24 spec error types are known.
    assert_eq!(ErrorType::KNOWN.len(), 24);
    for known in ErrorType::KNOWN {
        assert_eq!(&ErrorType::from(known.as_str()), known);
    }
}

#[test]
fn causes_are_read_leniently() {
    let error: PlaidError = serde_json::from_value(json!({
        "error_type": "ASSET_REPORT_ERROR",
        "error_code": "PRODUCT_NOT_READY",
        "error_message": "the asset report is not ready",
        "display_message": null,
        "causes": [
            {"item_id": "item-1", "error_type": "ITEM_ERROR", "error_code": "ITEM_LOGIN_REQUIRED",
             "error_message": "login required", "display_message": null},
            "not an object",
            {"item_id": 42}
        ]
    }))
    .unwrap();
    assert_eq!(error.causes().len(), 1);
    assert_eq!(error.causes()[0].item_id(), Some("item-1"));
    assert_eq!(
        error.causes()[0].error_code(),
        &ErrorCode::ItemLoginRequired
    );
    // `causes` of an unexpected type is ignored, not fatal.
    let error: PlaidError = serde_json::from_value(json!({
        "error_type": "API_ERROR", "error_code": "INTERNAL_SERVER_ERROR",
        "error_message": "", "display_message": null, "causes": {"odd": true}
    }))
    .unwrap();
    assert!(error.causes().is_empty());
    assert!(error.is_transient());
}

#[test]
fn free_text_is_scrubbed_and_capped() {
    let message = format!(
        "bad token {} with PLAID-SECRET: {} and bearer {}",
        canary::ACCESS_SANDBOX,
        canary::PLAID_SECRET,
        canary::JWT
    );
    let error: PlaidError = serde_json::from_value(json!({
        "error_type": "INVALID_INPUT",
        "error_code": format!("X_{}", canary::PUBLIC_SANDBOX),
        "error_message": message,
        "display_message": format!("token {}", canary::LINK_SANDBOX),
        "suggested_action": format!("rotate {}", canary::ACCESS_PRODUCTION),
        "causes": [{"error_type": "ITEM_ERROR", "error_code": "C",
                    "error_message": canary::PROCESSOR_SANDBOX}]
    }))
    .unwrap();
    assert!(
        error
            .error_message()
            .starts_with("bad token [REDACTED:plaid.access_token]")
    );
    for text in [
        format!("{error:?}"),
        error.to_string(),
        serde_json::to_string(&error).unwrap(),
    ] {
        assert_no_canary(&text);
    }
    // Tokens and JWTs are found by shape; a bare client secret (30 alphanumerics) only next to
    // its header name, as Plaid would echo it.
    assert!(!error.error_message().contains(canary::ACCESS_SANDBOX));
    assert!(!error.error_message().contains(canary::JWT));

    let long = "é".repeat(MAX_ERROR_TEXT_LEN);
    let error = PlaidError::new(ErrorType::ApiError, ErrorCode::InternalServerError, &long);
    assert!(error.error_message().len() <= MAX_ERROR_TEXT_LEN);
    assert!(error.error_message().chars().all(|c| c == 'é'));

    // The constructor scrubs as deserialization does.
    let built = PlaidError::new(
        ErrorType::InvalidInput,
        ErrorCode::Unknown(canary::ACCESS_SANDBOX.to_owned()),
        &format!("no such token {}", canary::ACCESS_SANDBOX),
    )
    .with_display_message(canary::PUBLIC_SANDBOX)
    .with_request_id("abc");
    assert_no_canary(&format!("{built:?} {built}"));
}

#[test]
fn error_helpers_and_outcomes() {
    let login = PlaidError::new(
        ErrorType::ItemError,
        ErrorCode::ItemLoginRequired,
        "login required",
    )
    .with_request_id("req-1");
    let err = Error::plaid(Endpoint::ItemGet, 400, login);
    assert!(err.is_login_required());
    assert!(err.requires_user_action());
    assert!(err.is_item_error());
    assert!(!err.is_retryable());
    assert!(!err.is_rate_limited());
    assert_eq!(err.outcome(), Outcome::Known);
    assert_eq!(err.request_id(), Some("req-1"));
    assert_eq!(err.endpoint(), Some(Endpoint::ItemGet));
    assert_eq!(
        err.to_string(),
        "/item/get: plaid error (http 400): ITEM_ERROR/ITEM_LOGIN_REQUIRED (request id req-1): login required"
    );

    let limited = PlaidError::new(
        ErrorType::RateLimitExceeded,
        ErrorCode::TransactionsSyncLimit,
        "rate limit exceeded",
    );
    let err = Error::plaid(Endpoint::TransactionsSync, 429, limited);
    assert!(err.is_rate_limited());
    assert!(err.is_retryable());

    let internal = PlaidError::new(ErrorType::ApiError, ErrorCode::InternalServerError, "oops");
    let err = Error::plaid(Endpoint::ItemAccessTokenInvalidate, 500, internal);
    assert_eq!(err.outcome(), Outcome::Ambiguous);
    assert!(err.outcome().is_ambiguous());
    assert!(err.is_retryable());

    let keys = PlaidError::new(
        ErrorType::InvalidInput,
        ErrorCode::InvalidApiKeys,
        "invalid client_id or secret provided",
    );
    assert!(Error::plaid(Endpoint::ItemGet, 400, keys).is_config_error());

    let timeout = Error::Timeout {
        endpoint: Endpoint::ItemAccessTokenInvalidate,
        outcome: Outcome::Ambiguous,
    };
    assert_eq!(
        timeout.to_string(),
        "/item/access_token/invalidate: timed out (ambiguous outcome: plaid may have applied the request)"
    );
    assert!(timeout.is_retryable());

    let transport = Error::Transport {
        endpoint: Endpoint::AccountsGet,
        kind: TransportKind::Connect,
        outcome: Outcome::NotSent,
        source: None,
    };
    assert_eq!(
        transport.to_string(),
        "/accounts/get: could not connect (not sent)"
    );

    let decode = Error::Decode {
        endpoint: Endpoint::TransactionsSync,
        status: 200,
        reason: DecodeReason::Shape { line: 1, column: 7 },
        outcome: Outcome::Ambiguous,
    };
    assert_eq!(
        decode.to_string(),
        "/transactions/sync: could not decode the response (http 200): unexpected json shape at line 1 column 7"
    );

    let config = Error::config("PLAID_SECRET", "is not set");
    assert_eq!(
        config.to_string(),
        "invalid configuration: PLAID_SECRET is not set"
    );
    assert_eq!(config.outcome(), Outcome::NotSent);
    assert!(config.is_config_error());
    assert_eq!(config.endpoint(), None);
}

#[test]
fn decode_reasons_never_quote_the_input() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code, reason = "only decoded")]
    struct Shape {
        count: u32,
    }
    let err =
        serde_json::from_str::<Shape>(&format!(r#"{{"count":"{}"}}"#, canary::ACCESS_SANDBOX))
            .unwrap_err();
    // serde's own message quotes the value...
    assert!(err.to_string().contains(canary::ACCESS_SANDBOX));
    // ...the crate's reason does not.
    let reason = DecodeReason::from_json(&err);
    assert!(matches!(reason, DecodeReason::Shape { .. }));
    assert_no_canary(&reason.to_string());
}

#[test]
fn endpoint_table() {
    assert_eq!(Endpoint::ALL.len(), 14);
    let read_only: Vec<&str> = Endpoint::ALL
        .iter()
        .filter(|e| e.is_read_only())
        .map(|e| e.path())
        .collect();
    assert_eq!(
        read_only,
        [
            "/accounts/get",
            "/accounts/balance/get",
            "/transactions/get",
            "/transactions/sync",
            "/item/get",
            "/webhook_verification_key/get"
        ]
    );
    for endpoint in Endpoint::ALL {
        assert_eq!(Endpoint::from_path(endpoint.path()), Some(endpoint));
        assert_ne!(endpoint.is_read_only(), endpoint.is_state_changing());
        assert_eq!(endpoint.to_string(), endpoint.path());
        if endpoint.path().starts_with("/sandbox/") {
            assert!(endpoint.is_sandbox_only() && endpoint.is_state_changing());
        }
    }
    for never_retried in [
        Endpoint::ItemAccessTokenInvalidate,
        Endpoint::ItemPublicTokenExchange,
        Endpoint::ItemRemove,
        Endpoint::LinkTokenCreate,
        Endpoint::ItemWebhookUpdate,
    ] {
        assert!(never_retried.is_state_changing());
    }
    assert_eq!(Endpoint::from_path("/nope"), None);
    assert_eq!(Endpoint::ItemGet.operation_id(), "itemGet");
}

#[test]
fn token_bearing_responses_print_no_token() {
    let responses: Vec<Box<dyn std::fmt::Debug>> = vec![
        Box::new(ItemPublicTokenExchangeResponse::new(
            AccessToken::new(canary::ACCESS_SANDBOX).unwrap(),
            "item",
            "req",
        )),
        Box::new(ItemAccessTokenInvalidateResponse::new(
            AccessToken::new(canary::ACCESS_PRODUCTION).unwrap(),
            "req",
        )),
        Box::new(SandboxPublicTokenCreateResponse::new(
            PublicToken::new(canary::PUBLIC_SANDBOX).unwrap(),
            "req",
        )),
        Box::new(LinkTokenCreateResponse::new(
            LinkToken::new(canary::LINK_SANDBOX).unwrap(),
            chrono::Utc::now(),
            "req",
        )),
    ];
    for response in &responses {
        let debug = format!("{response:?}");
        let pretty = format!("{response:#?}");
        assert_no_canary(&debug);
        assert_no_canary(&pretty);
        assert!(debug.contains("[REDACTED:plaid."));
    }
}
