//! `HttpPlaidClient`'s retry policy and outcomes against the emulator's injected faults: reads
//! retried through 429s and 500s up to exactly the configured attempts (counted by what the
//! fault plan has left); state-changing calls (invalidate, exchange, remove, and the rest) sent
//! once, a 500 or a dropped connection reported as `Outcome::Ambiguous`, and a commit-then-drop
//! invalidate proven committed (the old token is dead: the situation rotation must survive);
//! a closed port is `Outcome::NotSent`; latency past the request timeout is a timeout error.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines,
    missing_docs,
    reason = "test code"
)]

mod e2e_support;

use std::time::Duration;

use e2e_support::{Canary, SECRET, client, client_with, dup, fast_retries, link_item, sandbox};
use tokenward_plaid::models::{
    AccountsGetRequest, CountryCode, ItemAccessTokenInvalidateRequest, ItemGetRequest,
    ItemPublicTokenExchangeRequest, ItemRemoveRequest, ItemWebhookUpdateRequest,
    LinkTokenCreateRequest, LinkTokenCreateUser, Product, SandboxItemFireWebhookRequest,
    SandboxItemResetLoginRequest, SandboxPublicTokenCreateRequest, SandboxWebhookCode,
    TransactionsSyncRequest, WebhookVerificationKeyGetRequest,
};
use tokenward_plaid::{
    Endpoint, Environment, Error, ErrorCode, ErrorType, HttpPlaidClient, Outcome, PlaidApi,
    TransportKind,
};
use tokenward_redact::{AccessToken, ClientId, ClientSecret};
use tokenward_sandbox::{FaultPlan, Sandbox};

/// What is left of the fault plan of `endpoint`.
fn left(sandbox: &Sandbox, endpoint: Endpoint) -> FaultPlan {
    sandbox.faults().plan(endpoint.path())
}

fn set(sandbox: &Sandbox, endpoint: Endpoint, plan: FaultPlan) {
    sandbox.faults().set(endpoint.path(), plan).unwrap();
}

/// Asserts an injected 500 as the client reports it: Plaid's `API_ERROR`, ambiguous.
fn assert_injected_500(error: &Error, endpoint: Endpoint) {
    let Error::Plaid {
        endpoint: got,
        status,
        error: plaid,
        outcome,
    } = error
    else {
        panic!("not a Plaid error: {error:?}");
    };
    assert_eq!((*got, *status), (endpoint, 500), "{error}");
    assert_eq!(*plaid.error_type(), ErrorType::ApiError);
    assert_eq!(*plaid.error_code(), ErrorCode::InternalServerError);
    assert_eq!(*outcome, Outcome::Ambiguous, "a 500 may have been applied");
    assert!(error.request_id().is_some());
}

#[tokio::test]
async fn reads_are_retried_through_429_and_500_up_to_the_configured_attempts() {
    let (sandbox, _clock) = sandbox().await;
    let canary = Canary::new();
    let api = client_with(&sandbox.base_url(), SECRET, fast_retries(4));
    let (token, item_id) = link_item(&api, &canary, None).await;

    // Fewer 429s than attempts: the call succeeds, having used them all.
    set(
        &sandbox,
        Endpoint::AccountsGet,
        FaultPlan::new().rate_limit(3),
    );
    let request = AccountsGetRequest::new(dup(&token));
    let accounts = canary
        .call(
            "accounts after 3x429",
            &request,
            api.accounts_get(&request).await,
        )
        .unwrap();
    assert_eq!(accounts.item.item_id, item_id);
    assert_eq!(
        left(&sandbox, Endpoint::AccountsGet).rate_limit,
        0,
        "4 requests in all"
    );

    set(&sandbox, Endpoint::ItemGet, FaultPlan::new().rate_limit(2));
    let request = ItemGetRequest::new(dup(&token));
    canary
        .call("item after 2x429", &request, api.item_get(&request).await)
        .unwrap();
    assert_eq!(left(&sandbox, Endpoint::ItemGet).rate_limit, 0);

    // More 429s than attempts: a rate-limit error after exactly 4 requests.
    set(&sandbox, Endpoint::ItemGet, FaultPlan::new().rate_limit(10));
    let request = ItemGetRequest::new(dup(&token));
    let error = canary
        .call("item after 10x429", &request, api.item_get(&request).await)
        .unwrap_err();
    assert_eq!(
        left(&sandbox, Endpoint::ItemGet).rate_limit,
        6,
        "exactly 4 attempts"
    );
    assert!(error.is_rate_limited() && error.is_retryable(), "{error}");
    assert_eq!(error.http_status(), Some(429));
    assert_eq!(
        *error.plaid_error().unwrap().error_type(),
        ErrorType::RateLimitExceeded
    );
    assert_eq!(error.outcome(), Outcome::Known, "a 429 was not applied");
    sandbox.faults().clear();

    // The same with another policy: exactly that many attempts.
    for attempts in [1, 2, 5] {
        let api = client_with(&sandbox.base_url(), SECRET, fast_retries(attempts));
        set(
            &sandbox,
            Endpoint::AccountsGet,
            FaultPlan::new().rate_limit(10),
        );
        let request = AccountsGetRequest::new(dup(&token));
        let error = canary
            .call("accounts 429s", &request, api.accounts_get(&request).await)
            .unwrap_err();
        assert!(error.is_rate_limited(), "{error}");
        assert_eq!(
            left(&sandbox, Endpoint::AccountsGet).rate_limit,
            10 - attempts,
            "{attempts} attempts"
        );
    }
    sandbox.faults().clear();

    // 500s on reads are retried too, and a mix of both.
    set(
        &sandbox,
        Endpoint::TransactionsSync,
        FaultPlan::new().server_error(3),
    );
    let request = TransactionsSyncRequest::new(dup(&token)).with_count(10);
    let page = canary
        .call(
            "sync after 3x500",
            &request,
            api.transactions_sync(&request).await,
        )
        .unwrap();
    assert_eq!(page.added.len(), 10);
    assert_eq!(left(&sandbox, Endpoint::TransactionsSync).server_error, 0);
    set(
        &sandbox,
        Endpoint::ItemGet,
        FaultPlan::new().rate_limit(2).server_error(1),
    );
    let request = ItemGetRequest::new(dup(&token));
    canary
        .call(
            "item after 429,429,500",
            &request,
            api.item_get(&request).await,
        )
        .unwrap();
    set(
        &sandbox,
        Endpoint::ItemGet,
        FaultPlan::new().server_error(9),
    );
    let request = ItemGetRequest::new(dup(&token));
    let error = canary
        .call("item after 9x500", &request, api.item_get(&request).await)
        .unwrap_err();
    assert_injected_500(&error, Endpoint::ItemGet);
    assert_eq!(
        left(&sandbox, Endpoint::ItemGet).server_error,
        5,
        "exactly 4 attempts"
    );
    sandbox.faults().clear();

    // The webhook key is a read: retried.
    set(
        &sandbox,
        Endpoint::WebhookVerificationKeyGet,
        FaultPlan::new().server_error(1).rate_limit(1),
    );
    let request = WebhookVerificationKeyGetRequest::new(sandbox.emulator().webhook_key_id());
    canary
        .call(
            "key after faults",
            &request,
            api.webhook_verification_key_get(&request).await,
        )
        .unwrap();

    // A dropped connection on a read is retried: the call succeeds.
    set(
        &sandbox,
        Endpoint::ItemGet,
        FaultPlan::new().drop_after_commit(2),
    );
    let request = ItemGetRequest::new(dup(&token));
    canary
        .call("item after 2 drops", &request, api.item_get(&request).await)
        .unwrap();
    assert_eq!(left(&sandbox, Endpoint::ItemGet).drop_after_commit, 0);
    canary.assert_clean();
}

#[tokio::test]
async fn invalidate_is_sent_once_and_a_lost_answer_is_ambiguous() {
    let (sandbox, _clock) = sandbox().await;
    let canary = Canary::new();
    // Generous retries: none of them may be used on a state-changing call.
    let api = client_with(&sandbox.base_url(), SECRET, fast_retries(5));
    let (token, item_id) = link_item(&api, &canary, None).await;

    // A 500: one request (the plan had 3), ambiguous, and here in fact not applied.
    set(
        &sandbox,
        Endpoint::ItemAccessTokenInvalidate,
        FaultPlan::new().server_error(3),
    );
    let request = ItemAccessTokenInvalidateRequest::new(dup(&token));
    let error = canary
        .call(
            "invalidate 500",
            &request,
            api.item_access_token_invalidate(&request).await,
        )
        .unwrap_err();
    assert_injected_500(&error, Endpoint::ItemAccessTokenInvalidate);
    assert_eq!(
        left(&sandbox, Endpoint::ItemAccessTokenInvalidate).server_error,
        2,
        "exactly one attempt"
    );
    // The probe rotation does after an ambiguous outcome: the old token still works.
    let request = ItemGetRequest::new(dup(&token));
    canary
        .call("probe after 500", &request, api.item_get(&request).await)
        .unwrap();
    sandbox.faults().clear();

    // A 429: one request, a known outcome (not applied).
    set(
        &sandbox,
        Endpoint::ItemAccessTokenInvalidate,
        FaultPlan::new().rate_limit(3),
    );
    let request = ItemAccessTokenInvalidateRequest::new(dup(&token));
    let error = canary
        .call(
            "invalidate 429",
            &request,
            api.item_access_token_invalidate(&request).await,
        )
        .unwrap_err();
    assert!(error.is_rate_limited());
    assert_eq!(error.outcome(), Outcome::Known);
    assert_eq!(
        left(&sandbox, Endpoint::ItemAccessTokenInvalidate).rate_limit,
        2
    );
    sandbox.faults().clear();

    // Commit, then drop the connection: one request, ambiguous, and the change WAS made.
    set(
        &sandbox,
        Endpoint::ItemAccessTokenInvalidate,
        FaultPlan::new().drop_after_commit(2),
    );
    let request = ItemAccessTokenInvalidateRequest::new(dup(&token));
    let error = canary
        .call(
            "invalidate dropped",
            &request,
            api.item_access_token_invalidate(&request).await,
        )
        .unwrap_err();
    assert_eq!(
        left(&sandbox, Endpoint::ItemAccessTokenInvalidate).drop_after_commit,
        1,
        "exactly one attempt"
    );
    assert_eq!(error.outcome(), Outcome::Ambiguous, "{error:?}");
    assert!(
        matches!(
            error,
            Error::Transport {
                endpoint: Endpoint::ItemAccessTokenInvalidate,
                kind: TransportKind::Connection,
                outcome: Outcome::Ambiguous,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.plaid_error().is_none() && error.http_status().is_none());
    sandbox.faults().clear();
    // The probe: the old token is dead, so the rotation happened and its new token is lost.
    let request = ItemGetRequest::new(dup(&token));
    let probe = canary
        .call("probe after drop", &request, api.item_get(&request).await)
        .unwrap_err();
    assert!(probe.is_invalid_access_token(), "{probe}");
    assert_eq!(
        sandbox.emulator().item_count(),
        1,
        "the Item lives on, orphaned"
    );
    let _ = item_id;
    canary.assert_clean();
}

#[tokio::test]
async fn exchange_remove_and_other_state_changes_are_never_retried() {
    let (sandbox, _clock) = sandbox().await;
    let canary = Canary::new();
    let api = client_with(&sandbox.base_url(), SECRET, fast_retries(5));

    // Exchange with a 500: one request, ambiguous, not applied (the token still exchanges).
    let create = SandboxPublicTokenCreateRequest::new("ins_109508", vec![Product::Transactions]);
    let created = canary
        .call(
            "public",
            &create,
            api.sandbox_public_token_create(&create).await,
        )
        .unwrap();
    canary.secret(created.public_token.expose_secret());
    let public = created.public_token;
    set(
        &sandbox,
        Endpoint::ItemPublicTokenExchange,
        FaultPlan::new().server_error(3),
    );
    let request = ItemPublicTokenExchangeRequest::new(e2e_support::dup_public(&public));
    let error = canary
        .call(
            "exchange 500",
            &request,
            api.item_public_token_exchange(&request).await,
        )
        .unwrap_err();
    assert_injected_500(&error, Endpoint::ItemPublicTokenExchange);
    assert_eq!(
        left(&sandbox, Endpoint::ItemPublicTokenExchange).server_error,
        2
    );
    sandbox.faults().clear();

    // Exchange, commit then drop: one request, ambiguous; the public token was used up and the
    // Item exists, but its access token never arrived.
    set(
        &sandbox,
        Endpoint::ItemPublicTokenExchange,
        FaultPlan::new().drop_after_commit(2),
    );
    let request = ItemPublicTokenExchangeRequest::new(e2e_support::dup_public(&public));
    let error = canary
        .call(
            "exchange dropped",
            &request,
            api.item_public_token_exchange(&request).await,
        )
        .unwrap_err();
    assert_eq!(error.outcome(), Outcome::Ambiguous, "{error:?}");
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert_eq!(
        left(&sandbox, Endpoint::ItemPublicTokenExchange).drop_after_commit,
        1
    );
    sandbox.faults().clear();
    assert_eq!(
        sandbox.emulator().item_count(),
        1,
        "the exchange was committed"
    );
    let request = ItemPublicTokenExchangeRequest::new(public);
    let error = canary
        .call(
            "exchange after drop",
            &request,
            api.item_public_token_exchange(&request).await,
        )
        .unwrap_err();
    assert_eq!(
        *error.plaid_error().unwrap().error_code(),
        ErrorCode::InvalidPublicToken
    );

    // Remove with a 500 (not applied), then commit-then-drop (applied).
    let (token, _) = link_item(&api, &canary, None).await;
    set(
        &sandbox,
        Endpoint::ItemRemove,
        FaultPlan::new().server_error(3),
    );
    let request = ItemRemoveRequest::new(dup(&token));
    let error = canary
        .call("remove 500", &request, api.item_remove(&request).await)
        .unwrap_err();
    assert_injected_500(&error, Endpoint::ItemRemove);
    assert_eq!(left(&sandbox, Endpoint::ItemRemove).server_error, 2);
    assert_eq!(sandbox.emulator().item_count(), 2);
    sandbox.faults().clear();
    set(
        &sandbox,
        Endpoint::ItemRemove,
        FaultPlan::new().drop_after_commit(2),
    );
    let request = ItemRemoveRequest::new(dup(&token));
    let error = canary
        .call("remove dropped", &request, api.item_remove(&request).await)
        .unwrap_err();
    assert_eq!(error.outcome(), Outcome::Ambiguous, "{error:?}");
    assert_eq!(left(&sandbox, Endpoint::ItemRemove).drop_after_commit, 1);
    sandbox.faults().clear();
    assert_eq!(
        sandbox.emulator().item_count(),
        1,
        "the removal was committed"
    );
    let request = ItemGetRequest::new(dup(&token));
    let probe = canary
        .call("probe removed", &request, api.item_get(&request).await)
        .unwrap_err();
    assert!(probe.is_invalid_access_token());

    // Every other state-changing endpoint: a 429 is answered after one request.
    let hook = e2e_support::Hook::start().await;
    let (token, _) = link_item(&api, &canary, Some(&hook.url)).await;
    let endpoints = [
        Endpoint::LinkTokenCreate,
        Endpoint::SandboxPublicTokenCreate,
        Endpoint::ItemWebhookUpdate,
        Endpoint::SandboxItemFireWebhook,
        Endpoint::SandboxItemResetLogin,
    ];
    for endpoint in endpoints {
        assert!(endpoint.is_state_changing());
        set(&sandbox, endpoint, FaultPlan::new().rate_limit(3));
    }
    let request = LinkTokenCreateRequest::new(
        "x",
        "en",
        vec![CountryCode::Us],
        LinkTokenCreateUser::new("u"),
    );
    let results = [
        canary
            .call("link 429", &request, api.link_token_create(&request).await)
            .map(|_| ()),
        canary
            .call(
                "public 429",
                &create,
                api.sandbox_public_token_create(&create).await,
            )
            .map(|_| ()),
        {
            let request = ItemWebhookUpdateRequest::new(dup(&token), Some(hook.url.clone()));
            canary
                .call(
                    "webhook 429",
                    &request,
                    api.item_webhook_update(&request).await,
                )
                .map(|_| ())
        },
        {
            let request =
                SandboxItemFireWebhookRequest::new(dup(&token), SandboxWebhookCode::DefaultUpdate);
            canary
                .call(
                    "fire 429",
                    &request,
                    api.sandbox_item_fire_webhook(&request).await,
                )
                .map(|_| ())
        },
        {
            let request = SandboxItemResetLoginRequest::new(dup(&token));
            canary
                .call(
                    "reset 429",
                    &request,
                    api.sandbox_item_reset_login(&request).await,
                )
                .map(|_| ())
        },
    ];
    for (endpoint, result) in endpoints.into_iter().zip(results) {
        let error = result.unwrap_err();
        assert!(error.is_rate_limited(), "{endpoint}: {error}");
        assert_eq!(error.endpoint(), Some(endpoint));
        assert_eq!(
            left(&sandbox, endpoint).rate_limit,
            2,
            "{endpoint}: one attempt"
        );
    }
    canary.assert_clean();
}

#[tokio::test]
async fn a_closed_port_is_not_sent() {
    // A port that was free a moment ago and is closed now.
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", socket.local_addr().unwrap());
    drop(socket);
    let canary = Canary::new();
    canary.secret(tokenward_testkit::canary::ACCESS_SANDBOX);
    let api = client_with(&base, SECRET, fast_retries(3));
    let token = AccessToken::new(tokenward_testkit::canary::ACCESS_SANDBOX).unwrap();

    let request = ItemAccessTokenInvalidateRequest::new(dup(&token));
    let error = canary
        .call(
            "invalidate refused",
            &request,
            api.item_access_token_invalidate(&request).await,
        )
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::Transport {
                endpoint: Endpoint::ItemAccessTokenInvalidate,
                kind: TransportKind::Connect,
                outcome: Outcome::NotSent,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        std::error::Error::source(&error).is_some(),
        "the cause is kept"
    );
    // A read is retried, and still reports that nothing was sent.
    let request = ItemGetRequest::new(dup(&token));
    let error = canary
        .call("item refused", &request, api.item_get(&request).await)
        .unwrap_err();
    assert_eq!(error.outcome(), Outcome::NotSent, "{error:?}");
    assert!(error.is_retryable());
    canary.assert_clean();
}

#[tokio::test]
async fn latency_past_the_timeout_is_a_timeout() {
    let (sandbox, _clock) = sandbox().await;
    let canary = Canary::new();
    let setup = client(&sandbox);
    let (token, _) = link_item(&setup, &canary, None).await;
    let api = HttpPlaidClient::builder()
        .environment(Environment::Custom(sandbox.base_url()))
        .credentials(
            ClientId::new(e2e_support::CLIENT_ID).unwrap(),
            ClientSecret::new(SECRET).unwrap(),
        )
        .timeout(Duration::from_millis(300))
        .retry_policy(fast_retries(2))
        .build()
        .unwrap();
    sandbox
        .faults()
        .set_all(FaultPlan::new().latency(Duration::from_secs(3)));

    // A state-changing call: one attempt, ambiguous (it was sent).
    let request = ItemAccessTokenInvalidateRequest::new(dup(&token));
    let error = canary
        .call(
            "invalidate slow",
            &request,
            api.item_access_token_invalidate(&request).await,
        )
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::Timeout {
                endpoint: Endpoint::ItemAccessTokenInvalidate,
                outcome: Outcome::Ambiguous,
            }
        ),
        "{error:?}"
    );
    // A read: retried, then the same error.
    let request = ItemGetRequest::new(dup(&token));
    let error = canary
        .call("item slow", &request, api.item_get(&request).await)
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::Timeout {
                endpoint: Endpoint::ItemGet,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_retryable());

    // A per-endpoint timeout longer than the latency lets that endpoint through.
    sandbox
        .faults()
        .set_all(FaultPlan::new().latency(Duration::from_millis(500)));
    let patient = HttpPlaidClient::builder()
        .environment(Environment::Custom(sandbox.base_url()))
        .credentials(
            ClientId::new(e2e_support::CLIENT_ID).unwrap(),
            ClientSecret::new(SECRET).unwrap(),
        )
        .timeout(Duration::from_millis(100))
        .endpoint_timeout(Endpoint::ItemGet, Duration::from_secs(10))
        .retry_policy(fast_retries(1))
        .build()
        .unwrap();
    let request = ItemGetRequest::new(dup(&token));
    let result = patient.item_get(&request).await;
    // The invalidate above may or may not have been applied before its connection went away
    // (that is what ambiguous means); either answer of the probe is a typed one.
    match canary.call("item patient", &request, result) {
        Ok(_) => {}
        Err(error) => assert!(error.is_invalid_access_token(), "{error:?}"),
    }
    let request = AccountsGetRequest::new(dup(&token));
    let error = canary
        .call(
            "accounts impatient",
            &request,
            patient.accounts_get(&request).await,
        )
        .unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    sandbox.faults().clear();
    canary.assert_clean();
}

#[tokio::test]
async fn a_500_after_commit_is_ambiguous_and_the_change_is_committed() {
    let (sandbox, _clock) = sandbox().await;
    let plaid = client(&sandbox);
    let canary = Canary::default();
    let (token, _item_id) = link_item(&plaid, &canary, None).await;
    sandbox
        .faults()
        .set(
            Endpoint::ItemAccessTokenInvalidate.path(),
            FaultPlan::new().error_after_commit(1),
        )
        .unwrap();
    let err = plaid
        .item_access_token_invalidate(&ItemAccessTokenInvalidateRequest::new(dup(&token)))
        .await
        .unwrap_err();
    assert_eq!(err.outcome(), Outcome::Ambiguous, "{err}");
    assert_eq!(err.http_status(), Some(500));
    assert_eq!(
        left(&sandbox, Endpoint::ItemAccessTokenInvalidate).error_after_commit,
        0,
        "exactly one attempt"
    );
    // Plaid applied it: the old token is dead although the client was told 500.
    let probe = plaid
        .item_get(&ItemGetRequest::new(dup(&token)))
        .await
        .unwrap_err();
    assert!(probe.is_invalid_access_token(), "{probe}");
}
