//! State-machine property tests of the KEK lifecycle and of the Item health machine, each
//! against an independent reference model.
//!
//! KEK invariants: at most one primary; a version that protects an envelope is never disabled
//! or destroyed; a compromised version is disabled only once every token under it is rotated;
//! destruction only after the grace period; every change audited; refusals are errors.
//! Health invariants: agreement with the reference table; duplicates change nothing; an event
//! older than the last change is ignored; `Removed` absorbs; every change audited and saved.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "test code: failures should be loud"
)]

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use tokenward_envelope::KeyVersion;
use tokenward_rotation::health::{self, HealthCommand, HealthEvent, HealthInput, ItemHealth};
use tokenward_rotation::kek::{self, KekCommand, KekInput, KekRing, KekState, Usage};

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

// --- KEK ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum K {
    Staged,
    Primary,
    DecryptOnly,
    Compromised,
    Disabled,
    Destroyed,
}

#[derive(Debug, Clone)]
struct KeyModel {
    state: K,
    envelopes: u64,
    unrotated: u64,
    disabled_at: i64,
}

#[derive(Debug, Clone)]
struct KekModel {
    keys: Vec<KeyModel>,
    day: i64,
}

#[derive(Debug, Clone)]
enum KekStep {
    Stage,
    Promote {
        index: usize,
        loaded: bool,
    },
    Seal {
        count: u64,
    },
    MarkCompromised {
        index: usize,
    },
    /// The rewrap job moves the envelopes of a version to the primary.
    Rewrap {
        index: usize,
    },
    /// Every token under a version is rotated (and so sealed under the primary).
    RotateTokens {
        index: usize,
    },
    Disable {
        index: usize,
    },
    Enable {
        index: usize,
    },
    Destroy {
        index: usize,
    },
    Advance {
        days: i64,
    },
}

const GRACE_DAYS: i64 = 30;

impl KekModel {
    fn primary(&self) -> Option<usize> {
        self.keys.iter().position(|k| k.state == K::Primary)
    }
    fn move_to_primary(&mut self, index: usize, tokens_too: bool) {
        let Some(p) = self.primary() else { return };
        if p == index
            || !matches!(
                self.keys[index].state,
                K::DecryptOnly | K::Compromised | K::Staged
            )
        {
            return;
        }
        let n = self.keys[index].envelopes;
        self.keys[index].envelopes = 0;
        if tokens_too {
            self.keys[index].unrotated = 0;
        }
        self.keys[p].envelopes += n;
    }
}

struct KekRef;

impl ReferenceStateMachine for KekRef {
    type State = KekModel;
    type Transition = KekStep;

    fn init_state() -> BoxedStrategy<KekModel> {
        Just(KekModel {
            keys: Vec::new(),
            day: 0,
        })
        .boxed()
    }

    fn transitions(state: &KekModel) -> BoxedStrategy<KekStep> {
        let n = state.keys.len().max(1);
        prop_oneof![
            2 => Just(KekStep::Stage),
            2 => (0..n, prop::bool::weighted(0.8)).prop_map(|(index, loaded)| KekStep::Promote { index, loaded }),
            2 => (1u64..5).prop_map(|count| KekStep::Seal { count }),
            1 => (0..n).prop_map(|index| KekStep::MarkCompromised { index }),
            2 => (0..n).prop_map(|index| KekStep::Rewrap { index }),
            1 => (0..n).prop_map(|index| KekStep::RotateTokens { index }),
            2 => (0..n).prop_map(|index| KekStep::Disable { index }),
            1 => (0..n).prop_map(|index| KekStep::Enable { index }),
            1 => (0..n).prop_map(|index| KekStep::Destroy { index }),
            1 => (1i64..40).prop_map(|days| KekStep::Advance { days }),
        ]
        .boxed()
    }

    fn apply(mut m: KekModel, step: &KekStep) -> KekModel {
        match *step {
            KekStep::Stage => m.keys.push(KeyModel {
                state: K::Staged,
                envelopes: 0,
                unrotated: 0,
                disabled_at: 0,
            }),
            KekStep::Promote { index, loaded } => {
                if index < m.keys.len() && m.keys[index].state == K::Staged && loaded {
                    if let Some(p) = m.primary() {
                        m.keys[p].state = K::DecryptOnly;
                    }
                    m.keys[index].state = K::Primary;
                }
            }
            KekStep::Seal { count } => {
                if let Some(p) = m.primary() {
                    m.keys[p].envelopes += count;
                    m.keys[p].unrotated += count;
                }
            }
            KekStep::MarkCompromised { index } => {
                if index < m.keys.len()
                    && matches!(
                        m.keys[index].state,
                        K::Staged | K::DecryptOnly | K::Disabled
                    )
                {
                    m.keys[index].state = K::Compromised;
                }
            }
            KekStep::Rewrap { index } => {
                if index < m.keys.len() {
                    m.move_to_primary(index, false);
                }
            }
            KekStep::RotateTokens { index } => {
                if index < m.keys.len() {
                    m.move_to_primary(index, true);
                }
            }
            KekStep::Disable { index } => {
                if index < m.keys.len() {
                    let k = &mut m.keys[index];
                    let ok = match k.state {
                        K::DecryptOnly => k.envelopes == 0,
                        K::Compromised => k.envelopes == 0 && k.unrotated == 0,
                        _ => false,
                    };
                    if ok {
                        k.state = K::Disabled;
                        k.disabled_at = m.day;
                    }
                }
            }
            KekStep::Enable { index } => {
                if index < m.keys.len() && m.keys[index].state == K::Disabled {
                    m.keys[index].state = K::DecryptOnly;
                }
            }
            KekStep::Destroy { index } => {
                if index < m.keys.len() {
                    let k = &mut m.keys[index];
                    if k.state == K::Disabled
                        && k.envelopes == 0
                        && m.day - k.disabled_at >= GRACE_DAYS
                    {
                        k.state = K::Destroyed;
                    }
                }
            }
            KekStep::Advance { days } => m.day += days,
        }
        m
    }
}

#[derive(Debug)]
struct KekSut {
    ring: KekRing,
    usage: Vec<Usage>,
    now: DateTime<Utc>,
    changes: usize,
    audits: usize,
}

impl KekSut {
    fn version(index: usize) -> KeyVersion {
        KeyVersion::new(u32::try_from(index).unwrap() + 1).unwrap()
    }
    fn step(&mut self, input: KekInput) {
        let policy = kek::KekPolicy {
            destroy_grace: Duration::days(GRACE_DAYS),
        };
        if let Ok(t) = policy.step(&self.ring, input, self.now) {
            if t.state != self.ring {
                self.changes += 1;
                assert_eq!(t.commands.first(), Some(&KekCommand::SaveRing));
                let audit = t.audit.expect("change without audit");
                assert_eq!(audit.key_version, Some(input_version(&input)));
                self.audits += 1;
            }
            self.ring = t.state;
        }
    }
}

fn input_version(input: &KekInput) -> u32 {
    match input {
        KekInput::Stage { version }
        | KekInput::Promote { version, .. }
        | KekInput::MarkCompromised { version }
        | KekInput::Disable { version, .. }
        | KekInput::Enable { version }
        | KekInput::Destroy { version, .. } => version.get(),
        _ => 0,
    }
}

struct KekTest;

impl StateMachineTest for KekTest {
    type SystemUnderTest = KekSut;
    type Reference = KekRef;

    fn init_test(_: &KekModel) -> KekSut {
        KekSut {
            ring: KekRing::new(),
            usage: Vec::new(),
            now: t0(),
            changes: 0,
            audits: 0,
        }
    }

    fn apply(mut sut: KekSut, model: &KekModel, step: KekStep) -> KekSut {
        let n = sut.usage.len();
        let valid = |i: usize| i < n;
        match step {
            KekStep::Stage => {
                sut.usage.push(Usage {
                    envelopes: 0,
                    unrotated_tokens: 0,
                });
                sut.step(KekInput::Stage {
                    version: KekSut::version(n),
                });
            }
            KekStep::Promote { index, loaded } if valid(index) => sut.step(KekInput::Promote {
                version: KekSut::version(index),
                loaded_everywhere: loaded,
            }),
            KekStep::Seal { count } => {
                if let Some(p) = sut.ring.primary() {
                    let u = &mut sut.usage[p.get() as usize - 1];
                    u.envelopes += count;
                    u.unrotated_tokens += count;
                }
            }
            KekStep::MarkCompromised { index } if valid(index) => {
                sut.step(KekInput::MarkCompromised {
                    version: KekSut::version(index),
                });
            }
            KekStep::Rewrap { index } | KekStep::RotateTokens { index } if valid(index) => {
                let tokens_too = matches!(step, KekStep::RotateTokens { .. });
                if let Some(p) = sut.ring.primary() {
                    let p = p.get() as usize - 1;
                    let from = sut.ring.state(KekSut::version(index)).unwrap();
                    if p != index && from.can_decrypt() && from != KekState::Primary {
                        let moved = sut.usage[index].envelopes;
                        sut.usage[index].envelopes = 0;
                        if tokens_too {
                            sut.usage[index].unrotated_tokens = 0;
                        }
                        sut.usage[p].envelopes += moved;
                    }
                }
            }
            KekStep::Disable { index } if valid(index) => sut.step(KekInput::Disable {
                version: KekSut::version(index),
                usage: sut.usage[index],
            }),
            KekStep::Enable { index } if valid(index) => sut.step(KekInput::Enable {
                version: KekSut::version(index),
            }),
            KekStep::Destroy { index } if valid(index) => sut.step(KekInput::Destroy {
                version: KekSut::version(index),
                usage: sut.usage[index],
            }),
            KekStep::Advance { days } => sut.now += Duration::days(days),
            _ => {}
        }
        // Compare with the reference.
        assert_eq!(sut.usage.len(), model.keys.len());
        for (i, key) in model.keys.iter().enumerate() {
            let state = sut.ring.state(KekSut::version(i)).unwrap();
            let kind = match state {
                KekState::Staged => K::Staged,
                KekState::Primary => K::Primary,
                KekState::DecryptOnly => K::DecryptOnly,
                KekState::Compromised { .. } => K::Compromised,
                KekState::Disabled { .. } => K::Disabled,
                KekState::Destroyed { .. } => K::Destroyed,
                other => panic!("{other:?}"),
            };
            assert_eq!(kind, key.state, "version {}: {model:?}", i + 1);
            assert_eq!(sut.usage[i].envelopes, key.envelopes);
        }
        sut
    }

    fn check_invariants(sut: &KekSut, _: &KekModel) {
        let primaries = sut
            .ring
            .iter()
            .filter(|(_, s)| *s == KekState::Primary)
            .count();
        assert!(primaries <= 1, "two primaries");
        for (version, state) in sut.ring.iter() {
            let usage = sut.usage[version.get() as usize - 1];
            if matches!(
                state,
                KekState::Disabled { .. } | KekState::Destroyed { .. }
            ) {
                assert_eq!(usage.envelopes, 0, "{version:?} disabled while in use");
            }
        }
        assert_eq!(sut.changes, sut.audits);
    }
}

// --- Health ------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum H {
    Healthy,
    Expiring,
    Reauth,
    Revoked,
    Removed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    LoginRequired,
    Pending,
    Repaired,
    UpdateDone,
    Revoked,
    AccountRevoked,
    NewAccounts,
    Removed,
}

#[derive(Debug, Clone)]
struct HealthModel {
    state: H,
    as_of: Option<i64>,
}

#[derive(Debug, Clone)]
enum HealthStep {
    Event { ev: Ev, at: i64, twice: bool },
}

/// The reference table, written from rotation.md §8.2 independently of the machine.
fn reference(state: H, ev: Ev) -> H {
    use Ev as E;
    use H::*;
    match (state, ev) {
        (Removed, _) | (_, E::Removed) => Removed,
        (Healthy | Expiring, E::LoginRequired) => Reauth,
        (Healthy, E::Pending) => Expiring,
        (Reauth, E::Repaired | E::UpdateDone) | (Expiring | Revoked, E::UpdateDone) => Healthy,
        (Healthy | Expiring | Reauth, E::Revoked) => Revoked,
        (s, _) => s,
    }
}

struct HealthRef;

impl ReferenceStateMachine for HealthRef {
    type State = HealthModel;
    type Transition = HealthStep;

    fn init_state() -> BoxedStrategy<HealthModel> {
        Just(HealthModel {
            state: H::Healthy,
            as_of: None,
        })
        .boxed()
    }

    fn transitions(_: &HealthModel) -> BoxedStrategy<HealthStep> {
        let ev = prop_oneof![
            3 => Just(Ev::LoginRequired),
            2 => Just(Ev::Pending),
            2 => Just(Ev::Repaired),
            2 => Just(Ev::UpdateDone),
            1 => Just(Ev::Revoked),
            1 => Just(Ev::AccountRevoked),
            1 => Just(Ev::NewAccounts),
            1 => Just(Ev::Removed),
        ];
        (ev, 0i64..50, prop::bool::weighted(0.2))
            .prop_map(|(ev, at, twice)| HealthStep::Event { ev, at, twice })
            .boxed()
    }

    fn apply(mut m: HealthModel, step: &HealthStep) -> HealthModel {
        let HealthStep::Event { ev, at, .. } = *step;
        if m.state == H::Removed || m.as_of.is_some_and(|a| at < a) {
            return m;
        }
        let next = reference(m.state, ev);
        if next != m.state {
            m.state = next;
            m.as_of = Some(at);
        }
        m
    }
}

fn event(ev: Ev, at: DateTime<Utc>) -> HealthEvent {
    match ev {
        Ev::LoginRequired => HealthEvent::LoginRequired,
        Ev::Pending => HealthEvent::PendingExpiration {
            deadline: Some(at + Duration::days(7)),
        },
        Ev::Repaired => HealthEvent::LoginRepaired,
        Ev::UpdateDone => HealthEvent::UpdateModeCompleted,
        Ev::Revoked => HealthEvent::PermissionRevoked,
        Ev::AccountRevoked => HealthEvent::AccountRevoked {
            account_id: "acc-1".into(),
        },
        Ev::NewAccounts => HealthEvent::NewAccountsAvailable,
        Ev::Removed => HealthEvent::ItemRemoved,
    }
}

struct HealthTest;

impl StateMachineTest for HealthTest {
    type SystemUnderTest = ItemHealth;
    type Reference = HealthRef;

    fn init_test(_: &HealthModel) -> ItemHealth {
        ItemHealth::default()
    }

    fn apply(mut sut: ItemHealth, model: &HealthModel, step: HealthStep) -> ItemHealth {
        let HealthStep::Event { ev, at, twice } = step;
        let at = t0() + Duration::hours(at);
        let now = t0() + Duration::hours(100);
        for round in 0..if twice { 2 } else { 1 } {
            let input = HealthInput::Event {
                event: event(ev, at),
                at,
            };
            match health::step(&sut, input, now) {
                Ok(t) => {
                    if t.state.state.name() == sut.state.name() {
                        assert!(t.audit.is_none());
                    } else {
                        let audit = t.audit.expect("change without audit");
                        assert_eq!(audit.from, sut.state.name());
                        assert_eq!(t.commands.first(), Some(&HealthCommand::SaveHealth));
                        assert_eq!(round, 0, "a duplicate changed the state");
                    }
                    if ev == Ev::AccountRevoked && sut.state.name() != "removed" {
                        assert!(
                            t.commands
                                .iter()
                                .any(|c| matches!(c, HealthCommand::DeleteAccountData { .. }))
                        );
                    }
                    sut = t.state;
                }
                Err(_) => assert!(ev == Ev::UpdateDone && sut.state.name() == "removed"),
            }
        }
        let kind = match sut.state.name() {
            "healthy" => H::Healthy,
            "expiring_soon" => H::Expiring,
            "needs_reauth" => H::Reauth,
            "permission_revoked" => H::Revoked,
            "removed" => H::Removed,
            other => panic!("{other}"),
        };
        assert_eq!(kind, model.state);
        sut
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        .. ProptestConfig::default()
    })]

    #[test]
    fn kek_lifecycle_matches_reference(sequential 1..50 => KekTest);

    #[test]
    fn health_matches_reference(sequential 1..50 => HealthTest);
}

#[test]
fn expiring_item_needs_reauth_after_its_deadline() {
    let deadline = t0() + Duration::days(7);
    let h = ItemHealth::default();
    let t = health::step(
        &h,
        HealthInput::Event {
            event: HealthEvent::PendingExpiration {
                deadline: Some(deadline),
            },
            at: t0(),
        },
        t0(),
    )
    .unwrap();
    let before =
        health::step(&t.state, HealthInput::Tick, deadline - Duration::seconds(1)).unwrap();
    assert_eq!(before.state.state.name(), "expiring_soon");
    let after = health::step(&t.state, HealthInput::Tick, deadline).unwrap();
    assert_eq!(after.state.state.name(), "needs_reauth");
    assert!(after.audit.is_some());
}

#[test]
fn disabling_a_version_in_use_is_refused_with_the_count() {
    let v1 = KeyVersion::new(1).unwrap();
    let v2 = KeyVersion::new(2).unwrap();
    let mut ring = KekRing::new();
    for input in [
        KekInput::Stage { version: v1 },
        KekInput::Promote {
            version: v1,
            loaded_everywhere: true,
        },
        KekInput::Stage { version: v2 },
        KekInput::Promote {
            version: v2,
            loaded_everywhere: true,
        },
    ] {
        ring = kek::step(&ring, input, t0()).unwrap().state;
    }
    assert_eq!(ring.state(v1), Some(KekState::DecryptOnly));
    let err = kek::step(
        &ring,
        KekInput::Disable {
            version: v1,
            usage: Usage {
                envelopes: 3,
                unrotated_tokens: 0,
            },
        },
        t0(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("3 envelope(s)"), "{err}");
    let err = kek::step(&ring, KekInput::MarkCompromised { version: v2 }, t0()).unwrap_err();
    assert!(
        err.to_string().contains("promote a new version first"),
        "{err}"
    );
}

/// Verified webhook bodies (Plaid's shapes) map to the health events of rotation.md §8.2.
#[cfg(feature = "webhooks")]
#[test]
fn webhook_bodies_map_to_health_events() {
    use tokenward_plaid::webhooks::parse_webhook_body;
    let cases: [(&str, Option<&str>); 6] = [
        (
            r#"{"webhook_type":"ITEM","webhook_code":"ERROR","item_id":"item-1","environment":"sandbox","error":{"error_type":"ITEM_ERROR","error_code":"ITEM_LOGIN_REQUIRED","error_message":"the login details of this item have changed","display_message":null}}"#,
            Some("login_required"),
        ),
        (
            r#"{"webhook_type":"ITEM","webhook_code":"PENDING_EXPIRATION","item_id":"item-1","environment":"sandbox","consent_expiration_time":"2026-12-01T00:00:00Z"}"#,
            Some("pending_expiration"),
        ),
        (
            r#"{"webhook_type":"ITEM","webhook_code":"USER_PERMISSION_REVOKED","item_id":"item-1","environment":"sandbox"}"#,
            Some("permission_revoked"),
        ),
        (
            r#"{"webhook_type":"ITEM","webhook_code":"LOGIN_REPAIRED","item_id":"item-1","environment":"sandbox"}"#,
            Some("login_repaired"),
        ),
        (
            r#"{"webhook_type":"ITEM","webhook_code":"USER_ACCOUNT_REVOKED","item_id":"item-1","account_id":"acc-9","environment":"sandbox"}"#,
            Some("account_revoked"),
        ),
        (
            r#"{"webhook_type":"TRANSACTIONS","webhook_code":"SYNC_UPDATES_AVAILABLE","item_id":"item-1","environment":"sandbox","initial_update_complete":true,"historical_update_complete":false}"#,
            None,
        ),
    ];
    for (body, expected) in cases {
        let event = parse_webhook_body(body.as_bytes()).unwrap();
        let mapped = HealthEvent::from_webhook(&event);
        assert_eq!(mapped.as_ref().map(|(_, e)| e.name()), expected, "{body}");
        if let Some((item, _)) = mapped {
            assert_eq!(item, "item-1");
        }
    }
}
