//! Property test: random sequences of inserts, compare-and-swap token writes, lease
//! operations, rotation attempts (begin, sent marker, stash, promote, close) and erasures, run
//! against an in-memory `SQLite` vault and a simple model of what it must do. After every
//! operation the vault's answer (success or refusal) matches the model's, and every Item's
//! token, version, credential state, lease epoch and journal length, and the open attempts
//! (id, status, starting version, lease epoch), match it too.
#![cfg(feature = "sqlite")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::too_many_lines,
    clippy::single_match_else,
    missing_docs,
    reason = "test code: failures should be loud"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tokenward_envelope::{Cipher, Keyring};
use tokenward_redact::AccessToken;
use tokenward_vault::{
    AttemptId, AttemptStatus, AuditNote, BeginAttempt, CredentialState, FinishAttempt, ItemId,
    Lease, LeaseOwner, Promote, ReadError, SqlVault, Timestamp, UserId, Vault,
};

const ITEMS: u8 = 3;
const USERS: u8 = 2;

#[derive(Clone, Debug)]
enum Op {
    Insert { k: u8, u: u8, n: u16 },
    Update { k: u8, stale: bool, n: u16 },
    Acquire { k: u8, owner: u8, ttl: u8 },
    Release { k: u8 },
    Begin { k: u8 },
    MarkSent { k: u8 },
    Stash { k: u8, n: u16 },
    Promote { k: u8 },
    Finish { k: u8 },
    Erase { u: u8 },
    Tick { seconds: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0..ITEMS;
    prop_oneof![
        (k.clone(), 0..USERS, 0..50u16).prop_map(|(k, u, n)| Op::Insert { k, u, n }),
        (k.clone(), any::<bool>(), 0..50u16).prop_map(|(k, stale, n)| Op::Update { k, stale, n }),
        (k.clone(), 0..2u8, 1..20u8).prop_map(|(k, owner, ttl)| Op::Acquire { k, owner, ttl }),
        k.clone().prop_map(|k| Op::Release { k }),
        k.clone().prop_map(|k| Op::Begin { k }),
        k.clone().prop_map(|k| Op::MarkSent { k }),
        (k.clone(), 0..3u16).prop_map(|(k, n)| Op::Stash { k, n }),
        k.clone().prop_map(|k| Op::Promote { k }),
        k.clone().prop_map(|k| Op::Finish { k }),
        (0..USERS).prop_map(|u| Op::Erase { u }),
        (1..15u8).prop_map(|seconds| Op::Tick { seconds }),
    ]
}

#[derive(Clone, Debug)]
struct ModelItem {
    user: u8,
    version: u64,
    token: u16,
    state: CredentialState,
    /// (owner, expires at in seconds)
    held: Option<(u8, i64)>,
    epoch: u64,
    audit: usize,
}

#[derive(Clone, Debug)]
struct ModelAttempt {
    k: u8,
    from: u64,
    status: AttemptStatus,
    stash: Option<u16>,
    lease_epoch: u64,
}

#[derive(Default, Debug)]
struct Model {
    items: BTreeMap<u8, ModelItem>,
    attempts: BTreeMap<String, ModelAttempt>,
    /// The test's last lease and attempt per Item (the handles a worker would hold).
    leases: BTreeMap<u8, Lease>,
    current: BTreeMap<u8, String>,
    now: i64,
    next_attempt: u32,
}

fn item(k: u8) -> ItemId {
    ItemId::new(format!("item-{k}")).unwrap()
}

fn user(u: u8) -> UserId {
    UserId::new(format!("user-{u}")).unwrap()
}

fn token(n: u16) -> AccessToken {
    AccessToken::new(format!("access-sandbox-00000000-0000-4000-8000-{n:012}")).unwrap()
}

fn owner(o: u8) -> LeaseOwner {
    LeaseOwner::new(format!("worker-{o}")).unwrap()
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix_millis(1_767_225_600_000 + seconds * 1000)
}

fn note() -> AuditNote {
    AuditNote::new("model", "step").unwrap()
}

impl Model {
    /// The vault's lease check, for a presented lease (`Some`) or none.
    fn lease_ok(&self, k: u8, lease: Option<&Lease>) -> bool {
        let Some(it) = self.items.get(&k) else {
            return false;
        };
        match lease {
            Some(lease) => {
                lease.item_id == item(k)
                    && lease.epoch == it.epoch
                    && it.held.map(|(o, _)| owner(o)) == Some(lease.owner.clone())
                    && it.held.is_some_and(|(_, expires)| self.now < expires)
            }
            None => it.held.is_none_or(|(_, expires)| self.now >= expires),
        }
    }

    fn is_closed(status: AttemptStatus) -> bool {
        status.is_closed()
    }
}

async fn run(ops: Vec<Op>) {
    let cipher = Cipher::new(Arc::new(Keyring::generate().unwrap()));
    let vault = SqlVault::sqlite_memory(cipher).await.unwrap();
    let mut m = Model::default();
    for (step, op) in ops.into_iter().enumerate() {
        let now = at(m.now);
        let (ok, expected) = match op.clone() {
            Op::Insert { k, u, n } => {
                let expected = !m.items.contains_key(&k);
                let ok = vault
                    .insert_item(&item(k), &user(u), &token(n), &note(), now)
                    .await
                    .is_ok();
                if expected {
                    m.items.insert(
                        k,
                        ModelItem {
                            user: u,
                            version: 1,
                            token: n,
                            state: CredentialState::Active,
                            held: None,
                            epoch: 0,
                            audit: 1,
                        },
                    );
                }
                (ok, expected)
            }
            Op::Update { k, stale, n } => {
                let version = m.items.get(&k).map_or(1, |it| it.version);
                let expected_version = if stale { version + 1 } else { version };
                let expected = m
                    .items
                    .get(&k)
                    .is_some_and(|it| !stale && it.state == CredentialState::Active)
                    && m.lease_ok(k, None);
                let ok = vault
                    .update_token(&item(k), expected_version, &token(n), &note(), now)
                    .await
                    .is_ok();
                if expected {
                    let it = m.items.get_mut(&k).unwrap();
                    it.version += 1;
                    it.token = n;
                    it.audit += 1;
                }
                (ok, expected)
            }
            Op::Acquire { k, owner: o, ttl } => {
                let expected = m
                    .items
                    .get(&k)
                    .is_some_and(|it| it.held.is_none_or(|(_, expires)| m.now >= expires));
                let got = vault
                    .acquire_lease(&item(k), &owner(o), Duration::from_secs(ttl.into()), now)
                    .await;
                if expected {
                    let it = m.items.get_mut(&k).unwrap();
                    it.epoch += 1;
                    it.held = Some((o, m.now + i64::from(ttl)));
                    if let Ok(lease) = &got {
                        assert_eq!(lease.epoch, it.epoch);
                        m.leases.insert(k, lease.clone());
                    }
                }
                (got.is_ok(), expected)
            }
            Op::Release { k } => {
                let Some(lease) = m.leases.get(&k).cloned() else {
                    continue;
                };
                let expected = m.items.get(&k).is_some_and(|it| {
                    it.epoch == lease.epoch && it.held.is_none_or(|(o, _)| owner(o) == lease.owner)
                });
                let ok = vault.release_lease(&lease).await.is_ok();
                if expected {
                    m.items.get_mut(&k).unwrap().held = None;
                }
                (ok, expected)
            }
            Op::Begin { k } => {
                let Some(lease) = m.leases.get(&k).cloned() else {
                    continue;
                };
                let id = format!("attempt-{}", m.next_attempt);
                m.next_attempt += 1;
                let version = m.items.get(&k).map_or(1, |it| it.version);
                let expected =
                    m.lease_ok(k, Some(&lease)) && m.items[&k].state == CredentialState::Active;
                let ok = vault
                    .begin_attempt(
                        BeginAttempt {
                            attempt_id: &AttemptId::new(id.clone()).unwrap(),
                            lease: &lease,
                            expected_version: version,
                            note: &note(),
                        },
                        now,
                    )
                    .await
                    .is_ok();
                if expected {
                    let it = m.items.get_mut(&k).unwrap();
                    it.state = CredentialState::Intent;
                    it.audit += 1;
                    m.attempts.insert(
                        id.clone(),
                        ModelAttempt {
                            k,
                            from: version,
                            status: AttemptStatus::Intent,
                            stash: None,
                            lease_epoch: lease.epoch,
                        },
                    );
                    m.current.insert(k, id);
                }
                (ok, expected)
            }
            Op::MarkSent { k } => {
                let (Some(lease), Some(id)) =
                    (m.leases.get(&k).cloned(), m.current.get(&k).cloned())
                else {
                    continue;
                };
                let expected = m.attempts.get(&id).is_some_and(|a| {
                    a.status == AttemptStatus::Intent
                        && a.lease_epoch == lease.epoch
                        && m.items[&k].version == a.from
                        && m.items[&k].state == CredentialState::Intent
                }) && m.lease_ok(k, Some(&lease));
                let ok = vault
                    .mark_sent(&AttemptId::new(id.clone()).unwrap(), &lease, now)
                    .await
                    .is_ok();
                if expected {
                    m.attempts.get_mut(&id).unwrap().status = AttemptStatus::Sent;
                    let it = m.items.get_mut(&k).unwrap();
                    it.state = CredentialState::InFlight;
                    it.audit += 1;
                }
                (ok, expected)
            }
            Op::Stash { k, n } => {
                let Some(id) = m.current.get(&k).cloned() else {
                    continue;
                };
                let n = 100 + n;
                let found = m.attempts.get(&id).cloned();
                let expected = found.as_ref().is_some_and(|a| {
                    a.status != AttemptStatus::Committed && a.stash.is_none_or(|s| s == n)
                });
                let ok = vault
                    .stash_new_token(&AttemptId::new(id.clone()).unwrap(), &token(n), None, now)
                    .await
                    .is_ok();
                if expected && found.as_ref().is_some_and(|a| a.stash.is_none()) {
                    let a = m.attempts.get_mut(&id).unwrap();
                    a.stash = Some(n);
                    a.status = AttemptStatus::Stashed;
                    m.items.get_mut(&k).unwrap().audit += 1;
                }
                (ok, expected)
            }
            Op::Promote { k } => {
                let (Some(lease), Some(id)) =
                    (m.leases.get(&k).cloned(), m.current.get(&k).cloned())
                else {
                    continue;
                };
                let found = m.attempts.get(&id).cloned();
                let from = found.as_ref().map_or(1, |a| a.from);
                let expected = found.as_ref().is_some_and(|a| {
                    a.stash.is_some() && m.items.get(&a.k).is_some_and(|it| it.version == a.from)
                }) && m.lease_ok(k, Some(&lease));
                let ok = vault
                    .promote_stashed(
                        Promote {
                            attempt_id: &AttemptId::new(id.clone()).unwrap(),
                            expected_version: from,
                            to: CredentialState::Active,
                            lease: Some(&lease),
                            note: &note(),
                        },
                        now,
                    )
                    .await
                    .is_ok();
                if expected {
                    let a = m.attempts.get_mut(&id).unwrap();
                    let stash = a.stash.take().unwrap();
                    a.status = AttemptStatus::Committed;
                    let it = m.items.get_mut(&k).unwrap();
                    it.version += 1;
                    it.token = stash;
                    it.state = CredentialState::Active;
                    it.audit += 1;
                }
                (ok, expected)
            }
            Op::Finish { k } => {
                let (Some(lease), Some(id)) =
                    (m.leases.get(&k).cloned(), m.current.get(&k).cloned())
                else {
                    continue;
                };
                let Some(it) = m.items.get(&k).cloned() else {
                    continue;
                };
                let expected = m
                    .attempts
                    .get(&id)
                    .is_some_and(|a| !Model::is_closed(a.status) && a.stash.is_none())
                    && m.lease_ok(k, Some(&lease));
                let ok = vault
                    .finish_attempt(
                        FinishAttempt {
                            attempt_id: &AttemptId::new(id.clone()).unwrap(),
                            status: AttemptStatus::NotSent,
                            expected_version: it.version,
                            from: it.state,
                            to: CredentialState::Active,
                            lease: Some(&lease),
                            note: &note(),
                        },
                        now,
                    )
                    .await
                    .is_ok();
                if expected {
                    m.attempts.get_mut(&id).unwrap().status = AttemptStatus::NotSent;
                    let it = m.items.get_mut(&k).unwrap();
                    it.state = CredentialState::Active;
                    it.audit += 1;
                }
                (ok, expected)
            }
            Op::Erase { u } => {
                let erased = vault.erase_user(&user(u), "dpo", now).await.unwrap();
                let gone: Vec<u8> = m
                    .items
                    .iter()
                    .filter(|(_, it)| it.user == u)
                    .map(|(k, _)| *k)
                    .collect();
                assert_eq!(
                    erased.items,
                    gone.iter().map(|k| item(*k)).collect::<Vec<_>>()
                );
                for k in &gone {
                    m.items.remove(k);
                    m.attempts.retain(|_, a| a.k != *k);
                    m.current.remove(k);
                    m.leases.remove(k);
                }
                (true, true)
            }
            Op::Tick { seconds } => {
                m.now += i64::from(seconds);
                continue;
            }
        };
        assert_eq!(ok, expected, "step {step}: {op:?}\nmodel: {m:#?}");
        check(&vault, &m, step).await;
    }
}

/// Everything the vault says about every Item matches the model.
async fn check(vault: &SqlVault, m: &Model, step: usize) {
    for k in 0..ITEMS {
        let i = item(k);
        match m.items.get(&k) {
            Some(it) => {
                let stored = vault.get(&i).await.unwrap();
                assert_eq!(stored.token, token(it.token), "step {step}: token of {k}");
                assert_eq!(stored.version, it.version, "step {step}: version of {k}");
                let record = vault.item(&i).await.unwrap();
                assert_eq!(
                    record.credential_state, it.state,
                    "step {step}: state of {k}"
                );
                assert_eq!(record.lease_epoch, it.epoch, "step {step}: epoch of {k}");
                assert_eq!(
                    record.lease.as_ref().map(|l| l.owner.clone()),
                    it.held.map(|(o, _)| owner(o)),
                    "step {step}: lease of {k}"
                );
                assert_eq!(
                    vault.audit(&i).await.unwrap().len(),
                    it.audit,
                    "step {step}: journal of {k}"
                );
            }
            None => {
                assert!(matches!(vault.get(&i).await, Err(ReadError::NotFound(_))));
                assert!(vault.audit(&i).await.unwrap().is_empty());
            }
        }
    }
    // Each open attempt: its id, status, starting version and lease epoch.
    let open: BTreeMap<String, (AttemptStatus, u64, u64)> = vault
        .open_attempts()
        .await
        .unwrap()
        .into_iter()
        .map(|a| {
            (
                a.attempt_id.as_str().to_owned(),
                (a.status, a.from_version, a.lease_epoch),
            )
        })
        .collect();
    let expected: BTreeMap<String, (AttemptStatus, u64, u64)> = m
        .attempts
        .iter()
        .filter(|(_, a)| !Model::is_closed(a.status))
        .map(|(id, a)| (id.clone(), (a.status, a.from, a.lease_epoch)))
        .collect();
    assert_eq!(open, expected, "step {step}: open attempts");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_vault_behaves_like_its_model(ops in proptest::collection::vec(op(), 1..60)) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run(ops));
    }
}
