//! End to end: batch rotation (dry-run plan, incident lane, rate limit), the KEK rewrap job
//! (progress, resume, verify, rerun is a no-op, disable refused while in use), the incident
//! entry points, the health driver, and two rotators racing on one Postgres store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "test code: failures should be loud"
)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::now;
use tokenward_envelope::{Cipher, KeyVersion, Keyring};
use tokenward_plaid::models as m;
use tokenward_plaid::{HttpPlaidClient, PlaidApi};
use tokenward_redact::AccessToken;
use tokenward_rotation::health::HealthEvent;
use tokenward_rotation::rewrap::{Progress, RewrapPolicy, RewrapState};
use tokenward_rotation::token::CredentialState;
use tokenward_rotation::{
    Actor, BatchConfig, BatchRotator, BreakerPolicy, DriverError, HealthDriver, JobStore,
    KekManager, Lane, MemoryJobStore, RateLimiter, RewrapRunner, RotationReason, Rotator,
    RotatorConfig, TokenBucket, TokenVersion, kek_compromised, token_leaked,
};
use tokenward_sandbox::Sandbox;
use tokenward_vault::{AuditNote, ItemId, LeaseOwner, SqlVault, Timestamp, UserId, Vault};

fn client(base_url: &str) -> HttpPlaidClient {
    tokenward_testkit::plaid::client(base_url, "rotation-tests", "rotation-tests-secret")
}

fn dup(token: &AccessToken) -> AccessToken {
    AccessToken::new(token.expose_secret()).unwrap()
}

async fn link(api: &dyn PlaidApi, vault: &dyn Vault, n: usize) -> Vec<(ItemId, AccessToken)> {
    let mut items = Vec::new();
    for i in 0..n {
        let created = api
            .sandbox_public_token_create(&m::SandboxPublicTokenCreateRequest::new(
                "ins_109508",
                vec![m::Product::Transactions],
            ))
            .await
            .unwrap();
        let exchanged = api
            .item_public_token_exchange(&m::ItemPublicTokenExchangeRequest::new(
                created.public_token,
            ))
            .await
            .unwrap();
        let item = ItemId::new(exchanged.item_id).unwrap();
        vault
            .insert_item(
                &item,
                &UserId::new(format!("user-{i}")).unwrap(),
                &exchanged.access_token,
                &AuditNote::new("test", "exchanged").unwrap(),
                now(),
            )
            .await
            .unwrap();
        items.push((item, exchanged.access_token));
    }
    items
}

async fn works(api: &dyn PlaidApi, token: &AccessToken) -> bool {
    match api.item_get(&m::ItemGetRequest::new(dup(token))).await {
        Ok(_) => true,
        Err(err) if err.is_invalid_access_token() => false,
        Err(err) => panic!("probe failed: {err}"),
    }
}

fn config() -> RotatorConfig {
    RotatorConfig {
        probe_backoff: Duration::from_millis(10),
        ..RotatorConfig::default()
    }
}

async fn setup() -> (Sandbox, HttpPlaidClient, SqlVault) {
    let sandbox = Sandbox::builder().seed(11).start().await.unwrap();
    let api = client(&sandbox.base_url());
    let cipher = Cipher::new(Arc::new(Keyring::generate().unwrap()));
    let vault = SqlVault::sqlite_memory(cipher).await.unwrap();
    (sandbox, api, vault)
}

#[test]
fn token_bucket_spends_its_burst_then_refills_at_its_rate() {
    let start = tokio::time::Instant::now();
    let mut bucket = TokenBucket::new(2.0, 3);
    for _ in 0..3 {
        bucket.try_take(start).unwrap();
    }
    let wait = bucket.try_take(start).unwrap_err();
    assert_eq!(wait, Duration::from_millis(500));
    bucket.try_take(start + Duration::from_millis(500)).unwrap();
    assert!(bucket.try_take(start + Duration::from_millis(500)).is_err());
}

#[tokio::test]
async fn batch_plan_is_a_dry_run_and_incidents_go_first() {
    let (sandbox, api, vault) = setup().await;
    let items = link(&api, &vault, 4).await;
    let rotator =
        Rotator::new(&api, &vault, LeaseOwner::new("batch").unwrap()).with_config(config());
    let limiter = RateLimiter::new(1000.0, 10);
    let batch = BatchRotator::new(&rotator, &vault, &limiter);
    let missing = ItemId::new("no-such-item").unwrap();
    let requests = vec![
        (items[0].0.clone(), RotationReason::Scheduled),
        (items[1].0.clone(), RotationReason::Scheduled),
        (missing.clone(), RotationReason::Scheduled),
        (items[2].0.clone(), RotationReason::Compromise),
        (items[3].0.clone(), RotationReason::Scheduled),
    ];

    let dry = batch
        .run(&requests, &Actor::new("ops"), true)
        .await
        .unwrap();
    assert!(dry.results.is_empty());
    assert_eq!(dry.plan[0].item_id, items[2].0, "the incident lane first");
    assert_eq!(dry.plan[0].lane, Lane::Incident);
    let skipped: Vec<_> = dry.plan.iter().filter(|e| e.skip.is_some()).collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].item_id, missing);
    for (item, token) in &items {
        assert_eq!(
            vault.item(item).await.unwrap().token_version,
            1,
            "dry run wrote"
        );
        assert!(works(&api, token).await, "dry run rotated");
    }

    let report = batch
        .run(&requests, &Actor::new("ops"), false)
        .await
        .unwrap();
    assert_eq!(report.results.len(), 4);
    assert_eq!(report.results[0].0, items[2].0);
    for (item, result) in &report.results {
        let state = &result.as_ref().unwrap().state;
        assert_eq!(
            *state,
            CredentialState::Active {
                version: TokenVersion::new(2)
            },
            "{item}"
        );
    }
    for (_, token) in &items {
        assert!(!works(&api, token).await);
    }
    sandbox.shutdown().await;
}

fn quick_batch() -> BatchConfig {
    BatchConfig {
        jitter: Duration::from_millis(2),
        ..BatchConfig::default()
    }
}

#[tokio::test]
async fn an_incident_submitted_mid_batch_preempts_the_normal_lane() {
    let (sandbox, api, vault) = setup().await;
    let items = link(&api, &vault, 4).await;
    let rotator =
        Rotator::new(&api, &vault, LeaseOwner::new("batch").unwrap()).with_config(config());
    let limiter = RateLimiter::new(1000.0, 10);
    let batch = BatchRotator::new(&rotator, &vault, &limiter).with_config(quick_batch());
    let lane = batch.incident_lane();
    let leaked = items[3].0.clone();
    let submitted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let once = Arc::clone(&submitted);
    // The leak is reported while the first normal Item is being rotated.
    let batch = batch.with_callback(Arc::new(move |_, _| {
        if !once.swap(true, std::sync::atomic::Ordering::SeqCst) {
            lane.submit(leaked.clone(), RotationReason::Compromise);
        }
    }));
    let requests: Vec<_> = items[..3]
        .iter()
        .map(|(item, _)| (item.clone(), RotationReason::Scheduled))
        .collect();
    let report = batch
        .run(&requests, &Actor::new("ops"), false)
        .await
        .unwrap();
    let order: Vec<&ItemId> = report.results.iter().map(|(item, _)| item).collect();
    assert_eq!(
        order,
        [&items[0].0, &items[3].0, &items[1].0, &items[2].0],
        "the incident goes before the remaining normal Items"
    );
    assert_eq!(report.plan[1].lane, Lane::Incident);
    assert_eq!(report.plan[1].reason, RotationReason::Compromise);
    assert!(report.breaker.is_none() && report.not_run.is_empty());
    assert!(batch.incident_lane().is_empty());
    for (_, token) in &items {
        assert!(!works(&api, token).await, "every Item was rotated");
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn the_circuit_breaker_pauses_a_failing_batch() {
    let (sandbox, api, vault) = setup().await;
    let real = link(&api, &vault, 2).await;
    // Items whose tokens Plaid never issued: every rotation of them ends `Dead`.
    let mut requests = Vec::new();
    for n in 0..3u32 {
        let item = ItemId::new(format!("unknown-item-{n}")).unwrap();
        vault
            .insert_item(
                &item,
                &UserId::new("user-x").unwrap(),
                &AccessToken::new(format!("access-sandbox-00000000-0000-4000-8000-{n:012}"))
                    .unwrap(),
                &AuditNote::new("test", "imported").unwrap(),
                now(),
            )
            .await
            .unwrap();
        requests.push((item, RotationReason::Scheduled));
    }
    requests.extend(
        real.iter()
            .map(|(item, _)| (item.clone(), RotationReason::Scheduled)),
    );
    let rotator =
        Rotator::new(&api, &vault, LeaseOwner::new("batch").unwrap()).with_config(config());
    let limiter = RateLimiter::new(1000.0, 10);
    let batch = BatchRotator::new(&rotator, &vault, &limiter).with_config(BatchConfig {
        breaker: BreakerPolicy {
            max_consecutive_failures: 2,
            ..BreakerPolicy::default()
        },
        ..quick_batch()
    });
    let report = batch
        .run(&requests, &Actor::new("ops"), false)
        .await
        .unwrap();
    assert_eq!(report.results.len(), 2);
    for (_, result) in &report.results {
        let state = &result.as_ref().unwrap().state;
        assert!(matches!(state, CredentialState::Dead { .. }), "{state:?}");
    }
    let trip = report.breaker.as_ref().unwrap();
    assert_eq!(trip.threshold, "consecutive failures");
    assert_eq!(
        (trip.consecutive_failures, trip.failures, trip.attempted),
        (2, 2, 2)
    );
    assert_eq!(
        report.not_run,
        [requests[2].0.clone(), real[0].0.clone(), real[1].0.clone()]
    );
    for (item, token) in &real {
        assert!(works(&api, token).await, "paused before the real Items");
        assert_eq!(vault.item(item).await.unwrap().token_version, 1);
    }

    // The ratio: one failure in two Items is more than 40%.
    let batch = BatchRotator::new(&rotator, &vault, &limiter).with_config(BatchConfig {
        breaker: BreakerPolicy {
            max_consecutive_failures: 0,
            max_failure_ratio: 0.4,
            min_samples: 2,
        },
        ..quick_batch()
    });
    let requests = [
        (real[0].0.clone(), RotationReason::Scheduled),
        (requests[2].0.clone(), RotationReason::Scheduled),
        (real[1].0.clone(), RotationReason::Scheduled),
    ];
    let report = batch
        .run(&requests, &Actor::new("ops"), false)
        .await
        .unwrap();
    assert_eq!(report.results.len(), 2);
    assert_eq!(report.breaker.as_ref().unwrap().threshold, "failure ratio");
    assert_eq!(report.not_run, [real[1].0.clone()]);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn rewrap_job_reports_progress_resumes_verifies_and_reruns_as_a_no_op() {
    let (sandbox, api, vault) = setup().await;
    let items = link(&api, &vault, 7).await;
    let kek = KekManager::new(&vault);
    let v1 = vault.cipher().keyring().primary_version().unwrap();
    let v2 = kek.rotate_primary().unwrap();
    assert_ne!(v1, v2);
    assert_eq!(vault.envelopes_under(v1).await.unwrap(), 7);

    // Disabling a version that still protects envelopes is refused, with the count.
    let err = kek.disable(v1).await.unwrap_err();
    assert!(err.to_string().contains("7 envelope(s)"), "{err}");

    // A crash mid-job: one batch done, the job saved as running at its cursor.
    let store = MemoryJobStore::default();
    let first = vault.rewrap_batch(None, 2, now()).await.unwrap();
    assert_eq!(first.rewrapped, 2);
    store
        .save(
            &RewrapState::Running {
                target: v2,
                cursor: first
                    .next_cursor
                    .map(|c| tokenward_rotation::rewrap::Cursor::new(c.as_str())),
                progress: Progress {
                    planned: 7,
                    rewrapped: 2,
                    ..Progress::default()
                },
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();

    let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let sink = Arc::clone(&seen);
    let limiter = RateLimiter::new(1000.0, 5);
    let runner = RewrapRunner::new(&vault, &store)
        .with_policy(RewrapPolicy {
            batch_size: 2,
            max_failure_percent: 10,
        })
        .with_limiter(&limiter)
        .with_progress(Arc::new(move |p: &Progress| sink.lock().unwrap().push(*p)));
    let done = runner.run().await.unwrap();
    let RewrapState::Completed { progress, .. } = done else {
        panic!("{done:?}")
    };
    assert_eq!(progress.rewrapped, 7, "2 before the crash, 5 after");
    assert_eq!(vault.envelopes_under(v1).await.unwrap(), 0);
    let reports = seen.lock().unwrap().clone();
    assert!(reports.len() >= 3);
    assert!(reports.windows(2).all(|w| w[0].batches <= w[1].batches));

    // A rerun is a no-op: a new job that rewraps nothing.
    let again = runner.run().await.unwrap();
    assert_eq!(again.progress().rewrapped, 0);
    assert_eq!(again.name(), "completed");

    // Now v1 may be disabled; every token still opens (under v2) and works.
    kek.disable(v1).await.unwrap();
    for (item, _) in &items {
        let stored = vault.get(item).await.unwrap();
        assert!(works(&api, &stored.token).await);
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_leaked_token_is_rotated_and_its_revocation_confirmed() {
    let (sandbox, api, vault) = setup().await;
    let items = link(&api, &vault, 1).await;
    let rotator =
        Rotator::new(&api, &vault, LeaseOwner::new("incident").unwrap()).with_config(config());
    let report = token_leaked(&rotator, &api, &vault, &items[0].0, &Actor::new("secops"))
        .await
        .unwrap();
    assert_eq!(report.old_token_revoked, Some(true));
    assert_eq!(
        report.rotation.unwrap().state,
        CredentialState::Active {
            version: TokenVersion::new(2)
        }
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_compromised_kek_gets_its_tokens_rotated_rewrapped_and_disabled() {
    let (sandbox, api, vault) = setup().await;
    let items = link(&api, &vault, 3).await;
    let v1 = vault.cipher().keyring().primary_version().unwrap();
    let rotator =
        Rotator::new(&api, &vault, LeaseOwner::new("incident").unwrap()).with_config(config());
    let limiter = RateLimiter::new(1000.0, 5);
    let jobs = MemoryJobStore::default();
    let report = kek_compromised(&rotator, &vault, &limiter, &jobs, v1, &Actor::new("secops"))
        .await
        .unwrap();
    assert_eq!(report.disabled, Some(v1));
    let batch = report.rotations.unwrap();
    assert_eq!(batch.results.len(), 3);
    assert!(batch.plan.iter().all(|e| e.lane == Lane::Incident));
    assert_eq!(vault.envelopes_under(v1).await.unwrap(), 0);
    let v2 = vault.cipher().keyring().primary_version().unwrap();
    assert_ne!(v1, v2);
    for (item, old) in &items {
        assert!(!works(&api, old).await, "old tokens are dead");
        let stored = vault.get(item).await.unwrap();
        assert_eq!(stored.version, 2);
        assert!(works(&api, &stored.token).await);
        assert_eq!(vault.item(item).await.unwrap().kek_version, v2);
    }
    let _: Option<KeyVersion> = report.rewrap.map(|r| r.target());
    // The lifecycle changes the incident made (promote, compromise, disable) name its actor.
    let journal = vault.audit_since(Timestamp::EPOCH, 10_000).await.unwrap();
    let changes: Vec<&str> = journal
        .iter()
        .filter(|r| r.event == tokenward_vault::AuditEvent::KekState)
        .filter(|r| {
            r.to_state.as_deref() != Some("primary") || r.from_state.as_deref() == Some("staged")
        })
        .map(|r| r.actor.as_str())
        .collect();
    assert!(changes.len() >= 3, "{changes:?}");
    assert!(changes.iter().all(|a| *a == "secops"), "{changes:?}");
    sandbox.shutdown().await;
}

/// A KEK incident whose first run died after promoting a new primary and marking the old one
/// compromised: the next run reads the lifecycle records, does not promote again, and
/// finishes the playbook; a third run finds it done.
#[tokio::test]
async fn an_interrupted_kek_incident_continues_where_it_stopped() {
    let (sandbox, api, vault) = setup().await;
    let items = link(&api, &vault, 2).await;
    let v1 = vault.cipher().keyring().primary_version().unwrap();
    {
        let first_run = KekManager::load(&vault).await.unwrap();
        first_run.promote_new_primary().await.unwrap();
        first_run.compromise(v1).await.unwrap();
        // ... and the process dies here.
    }
    // What the next run has to go on: the compromise comes back from the lifecycle records
    // (the keyring alone says only decrypt-only).
    let reloaded = KekManager::load(&vault).await.unwrap();
    assert!(reloaded.is_compromised(v1));
    assert!(!KekManager::new(&vault).is_compromised(v1));
    drop(reloaded);
    let v2 = vault.cipher().keyring().primary_version().unwrap();
    let rotator =
        Rotator::new(&api, &vault, LeaseOwner::new("incident").unwrap()).with_config(config());
    let limiter = RateLimiter::new(1000.0, 5);
    let jobs = MemoryJobStore::default();
    let report = kek_compromised(&rotator, &vault, &limiter, &jobs, v1, &Actor::new("secops"))
        .await
        .unwrap();
    assert_eq!(report.disabled, Some(v1));
    assert_eq!(report.rotations.unwrap().results.len(), 2);
    assert_eq!(
        vault.cipher().keyring().primary_version(),
        Some(v2),
        "no second promotion"
    );
    for (item, old) in &items {
        assert!(!works(&api, old).await, "old tokens are dead");
        assert_eq!(vault.item(item).await.unwrap().kek_version, v2);
    }
    let records = vault.kek_records().await.unwrap();
    let r1 = records.iter().find(|r| r.version == v1).unwrap();
    assert_eq!(r1.state, tokenward_vault::KekStatus::Disabled);
    assert!(r1.compromised);
    let promotions = vault
        .audit_since(Timestamp::from_unix_millis(0), 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| {
            r.to_state.as_deref() == Some("primary")
                && r.reason.starts_with(&format!("kek {}:", v2.get()))
        })
        .count();
    assert_eq!(promotions, 1, "v2 promoted once");

    let again = kek_compromised(&rotator, &vault, &limiter, &jobs, v1, &Actor::new("secops"))
        .await
        .unwrap();
    assert_eq!(again.disabled, Some(v1));
    assert!(again.rotations.is_none() && again.rewrap.is_none());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn health_follows_api_errors_and_events_and_gates_rotation() {
    let (sandbox, api, vault) = setup().await;
    let items = link(&api, &vault, 1).await;
    let (item, token) = &items[0];
    let health = HealthDriver::new(&vault, "webhooks");

    // The sandbox forces ITEM_LOGIN_REQUIRED; the next data call reports it.
    api.sandbox_item_reset_login(&m::SandboxItemResetLoginRequest::new(dup(token)))
        .await
        .unwrap();
    let err = api
        .accounts_get(&m::AccountsGetRequest::new(dup(token)))
        .await
        .unwrap_err();
    let report = health.apply_api_error(item, &err).await.unwrap().unwrap();
    assert_eq!(report.state.name(), "needs_reauth");
    assert_eq!(
        vault.item(item).await.unwrap().health_state.as_str(),
        "needs_reauth"
    );

    // Permission revoked: a scheduled rotation is refused, an incident one is not.
    health
        .apply(item, HealthEvent::PermissionRevoked, chrono::Utc::now())
        .await
        .unwrap();
    let rotator = Rotator::new(&api, &vault, LeaseOwner::new("w").unwrap()).with_config(config());
    let refused = rotator
        .rotate(item, RotationReason::Scheduled, &Actor::new("cron"))
        .await;
    assert!(matches!(refused, Err(DriverError::HealthRefused { .. })));
    let incident = rotator
        .rotate(item, RotationReason::Compromise, &Actor::new("secops"))
        .await
        .unwrap();
    assert_eq!(
        incident.state,
        CredentialState::Active {
            version: TokenVersion::new(2)
        }
    );
    sandbox.shutdown().await;
}

/// Counts the invalidate calls that reach the client (every one of them reaches Plaid: the
/// client never retries it).
struct Counting<'a> {
    inner: &'a dyn PlaidApi,
    invalidates: std::sync::atomic::AtomicU64,
}

macro_rules! counting_impl {
    ($($method:ident($request:ty) -> $response:ty;)*) => {
        #[async_trait::async_trait]
        impl PlaidApi for Counting<'_> {
            $(
                async fn $method(
                    &self,
                    request: &$request,
                ) -> Result<$response, tokenward_plaid::Error> {
                    self.inner.$method(request).await
                }
            )*

            async fn item_access_token_invalidate(
                &self,
                request: &m::ItemAccessTokenInvalidateRequest,
            ) -> Result<m::ItemAccessTokenInvalidateResponse, tokenward_plaid::Error> {
                self.invalidates
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                self.inner.item_access_token_invalidate(request).await
            }
        }
    };
}

counting_impl! {
    link_token_create(m::LinkTokenCreateRequest) -> m::LinkTokenCreateResponse;
    item_public_token_exchange(m::ItemPublicTokenExchangeRequest) -> m::ItemPublicTokenExchangeResponse;
    sandbox_public_token_create(m::SandboxPublicTokenCreateRequest) -> m::SandboxPublicTokenCreateResponse;
    accounts_get(m::AccountsGetRequest) -> m::AccountsGetResponse;
    accounts_balance_get(m::AccountsBalanceGetRequest) -> m::AccountsBalanceGetResponse;
    transactions_get(m::TransactionsGetRequest) -> m::TransactionsGetResponse;
    transactions_sync(m::TransactionsSyncRequest) -> m::TransactionsSyncResponse;
    item_get(m::ItemGetRequest) -> m::ItemGetResponse;
    item_remove(m::ItemRemoveRequest) -> m::ItemRemoveResponse;
    item_webhook_update(m::ItemWebhookUpdateRequest) -> m::ItemWebhookUpdateResponse;
    webhook_verification_key_get(m::WebhookVerificationKeyGetRequest) -> m::WebhookVerificationKeyGetResponse;
    sandbox_item_fire_webhook(m::SandboxItemFireWebhookRequest) -> m::SandboxItemFireWebhookResponse;
    sandbox_item_reset_login(m::SandboxItemResetLoginRequest) -> m::SandboxItemResetLoginResponse;
}

/// Two rotators with their own connections to one Postgres store race over the same Items.
/// Leases with epochs keep them apart: every rotation that ran moved the version by one, the
/// stored token is the one Plaid accepts, no Item is lost.
#[tokio::test]
async fn two_rotators_race_on_one_postgres_store() {
    const VAR: &str = "TOKENWARD_TEST_POSTGRES_URL";
    let Ok(url) = std::env::var(VAR) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{VAR} must be set under CI=true"
        );
        eprintln!("skipping: {VAR} is not set");
        return;
    };
    let sandbox = Sandbox::builder().seed(13).start().await.unwrap();
    let api = client(&sandbox.base_url());
    let keyring = Arc::new(Keyring::generate().unwrap());
    let schema = format!(
        "tw_rotation_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let a = SqlVault::postgres_in_schema(&url, Some(&schema), Cipher::new(Arc::clone(&keyring)))
        .await
        .unwrap();
    let b = SqlVault::postgres_in_schema(&url, Some(&schema), Cipher::new(Arc::clone(&keyring)))
        .await
        .unwrap();
    let items = link(&api, &a, 6).await;
    let counting = Counting {
        inner: &api,
        invalidates: std::sync::atomic::AtomicU64::new(0),
    };
    let ra =
        Rotator::new(&counting, &a, LeaseOwner::new("worker-a").unwrap()).with_config(config());
    let rb =
        Rotator::new(&counting, &b, LeaseOwner::new("worker-b").unwrap()).with_config(config());

    let mut successes = vec![0u64; items.len()];
    for _round in 0..3 {
        let run_a = async {
            let mut out = Vec::new();
            for (item, _) in &items {
                out.push(
                    ra.rotate(item, RotationReason::Scheduled, &Actor::new("a"))
                        .await,
                );
            }
            out
        };
        let run_b = async {
            let mut out = Vec::new();
            for (item, _) in items.iter().rev() {
                out.push(
                    rb.rotate(item, RotationReason::Scheduled, &Actor::new("b"))
                        .await,
                );
            }
            out
        };
        let (out_a, mut out_b) = tokio::join!(run_a, run_b);
        out_b.reverse();
        for (i, (ra, rb)) in out_a.into_iter().zip(out_b).enumerate() {
            for result in [ra, rb] {
                match result {
                    Ok(report) => {
                        assert!(
                            matches!(report.state, CredentialState::Active { .. }),
                            "{:?}",
                            report.state
                        );
                        successes[i] += 1;
                    }
                    Err(DriverError::Lease(_) | DriverError::NotActive { .. }) => {}
                    Err(other) => panic!("unexpected failure: {other}"),
                }
            }
        }
    }
    for (i, (item, first)) in items.iter().enumerate() {
        let record = a.item(item).await.unwrap();
        assert_eq!(record.credential_state.as_str(), "active");
        assert_eq!(
            record.token_version,
            1 + successes[i],
            "one version per rotation"
        );
        let stored = b.get(item).await.unwrap();
        assert!(works(&api, &stored.token).await, "the stored token works");
        if successes[i] > 0 {
            assert!(!works(&api, first).await);
        }
    }
    assert!(successes.iter().all(|n| *n >= 1));
    // Invalidate went out exactly once per rotation that ran: none twice, none for a loser.
    assert_eq!(
        counting
            .invalidates
            .load(std::sync::atomic::Ordering::SeqCst),
        successes.iter().sum::<u64>()
    );
    sqlx_drop(&a, &schema).await;
    sandbox.shutdown().await;
}

async fn sqlx_drop(vault: &SqlVault, schema: &str) {
    sqlx::raw_sql(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(vault.pool())
        .await
        .unwrap();
}
