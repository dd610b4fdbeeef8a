//! State-machine property tests of the credential machine against a reference model.
//!
//! The system under test is the pure machine run by a small synchronous driver over a fake
//! durable store and a fake Plaid (one valid token per Item, invalidate applied or not as the
//! fault says). Every run may crash before any effect (write or call): the in-memory state is
//! dropped and the next `Recover` reads the store again. The reference model predicts the
//! settled outcome of every run from the fault and the crash point alone:
//! - Plaid did not apply the invalidate → `Active` at the same version;
//! - Plaid applied it and the new token reached the store → `Active` at the next version;
//! - Plaid applied it and the token never reached the store → `Orphaned`.
//!
//! Invariants after every step: never two current tokens; Plaid's valid token is in the store
//! unless the run lost it between Plaid's commit and our write (and then the Item is never
//! `Active`); `Orphaned` only after such a loss; every durable change has its audit record
//! (the journal is a chain ending at the stored state); invalidate at most once per attempt,
//! only after a durable sent marker; versions only grow.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "test code: failures should be loud"
)]

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use tokenward_plaid::Outcome;
use tokenward_rotation::token::{
    CallFailure, CredentialCommand, CredentialInput, CredentialState, RemoveReason, step,
};
use tokenward_rotation::{
    Actor, AttemptId, AuditEvent, RotationReason, TokenVersion, TransitionError,
};

/// Probe cycles one run of the driver makes before it gives up (stays `Unknown`).
const PROBE_BUDGET: u8 = 3;

/// What the fake Plaid does with one invalidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// 200 with the new token.
    Ok,
    /// 429 before commit.
    RateLimited,
    /// Could not connect: nothing sent.
    NotSent,
    /// 500 without applying.
    ServerErrorNotApplied,
    /// 500 after commit.
    ServerErrorApplied,
    /// Commit, then the connection drops.
    CommitThenDrop,
    /// Latency beyond the timeout; Plaid did not get to it.
    TimeoutNotApplied,
    /// Latency beyond the timeout; Plaid applied it.
    TimeoutApplied,
}

impl Fault {
    fn applies(self) -> bool {
        matches!(
            self,
            Fault::Ok | Fault::ServerErrorApplied | Fault::CommitThenDrop | Fault::TimeoutApplied
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Active,
    Orphaned,
    Dead,
    Removed,
    Retired,
}

#[derive(Debug, Clone)]
enum Step {
    Rotate {
        fault: Fault,
        crash_at: Option<u8>,
        probe_failures: u8,
    },
    Recover {
        crash_at: Option<u8>,
        probe_failures: u8,
    },
    Remove {
        crash_at: Option<u8>,
    },
    /// The user removed the Item at Plaid: the token dies without us.
    ExternalRemove,
    /// App traffic reports `INVALID_ACCESS_TOKEN` (only when the token is dead).
    ReaderRejected {
        crash_at: Option<u8>,
    },
    OperatorResolve {
        crash_at: Option<u8>,
    },
}

#[derive(Debug, Clone)]
struct Model {
    kind: Kind,
    version: u64,
    /// `false` after a crash or an exhausted probe budget: the store may be anywhere on the
    /// way to (`kind`, `version`); a clean `Recover` gets it there.
    settled: bool,
    ext_dead: bool,
}

impl Model {
    fn settle(&mut self, kind: Kind, version: u64, crash: Option<u8>, probes_ok: bool) {
        self.kind = kind;
        self.version = version;
        self.settled = crash.is_none() && probes_ok;
    }
}

struct ModelMachine;

impl ReferenceStateMachine for ModelMachine {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model {
            kind: Kind::Active,
            version: 1,
            settled: true,
            ext_dead: false,
        })
        .boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Step> {
        let fault = prop_oneof![
            3 => Just(Fault::Ok),
            1 => Just(Fault::RateLimited),
            1 => Just(Fault::NotSent),
            1 => Just(Fault::ServerErrorNotApplied),
            1 => Just(Fault::ServerErrorApplied),
            1 => Just(Fault::CommitThenDrop),
            1 => Just(Fault::TimeoutNotApplied),
            1 => Just(Fault::TimeoutApplied),
        ];
        let crash = prop_oneof![2 => Just(None), 3 => (0u8..14).prop_map(Some)];
        let probes = prop_oneof![3 => Just(0u8), 1 => 0u8..5];
        if !state.settled {
            return (crash, probes)
                .prop_map(|(crash_at, probe_failures)| Step::Recover {
                    crash_at,
                    probe_failures,
                })
                .boxed();
        }
        prop_oneof![
            6 => (fault, crash.clone(), probes.clone()).prop_map(|(fault, crash_at, probe_failures)| {
                Step::Rotate { fault, crash_at, probe_failures }
            }),
            1 => (crash.clone(), probes).prop_map(|(crash_at, probe_failures)| Step::Recover {
                crash_at,
                probe_failures,
            }),
            1 => crash.clone().prop_map(|crash_at| Step::Remove { crash_at }),
            1 => Just(Step::ExternalRemove),
            1 => crash.clone().prop_map(|crash_at| Step::ReaderRejected { crash_at }),
            1 => crash.prop_map(|crash_at| Step::OperatorResolve { crash_at }),
        ]
        .boxed()
    }

    fn preconditions(state: &Model, step: &Step) -> bool {
        // Forward steps only from a settled state (after a crash the operator's first move is
        // recovery); `Recover` any time.
        matches!(step, Step::Recover { .. }) || state.settled
    }

    fn apply(mut state: Model, step: &Step) -> Model {
        let probes_ok = |n: u8| n < PROBE_BUDGET;
        match *step {
            Step::Rotate {
                fault,
                crash_at,
                probe_failures,
            } => {
                if state.kind != Kind::Active {
                    return state; // refused: only an Active Item rotates
                }
                // Effects: 0 RecordIntent, 1 MarkSent, 2 CallInvalidate, then for a 200:
                // 3 stash the token, 4 save `Committing`, 5 promote, …
                let called = crash_at.is_none_or(|k| k > 2);
                let v = state.version;
                if state.ext_dead {
                    // Plaid answers INVALID_ACCESS_TOKEN (known): Dead, unless the crash fell
                    // after the marker and before we recorded that answer, when only the
                    // probe is left and it cannot tell a removal from our own rotation.
                    let (kind, needs_probe) = match crash_at {
                        Some(k) if k < 2 => (Kind::Active, false),
                        Some(2 | 3) => (Kind::Orphaned, true),
                        _ => (Kind::Dead, false),
                    };
                    state.settle(kind, v, crash_at, !needs_probe || probes_ok(probe_failures));
                    return state;
                }
                let applied = fault.applies() && called;
                let stashed = applied && fault == Fault::Ok && crash_at.is_none_or(|k| k > 3);
                let needs_probe = match crash_at {
                    Some(k) if k < 2 => false,
                    Some(2 | 3) => !stashed,
                    _ => !matches!(fault, Fault::Ok | Fault::RateLimited | Fault::NotSent),
                };
                let (kind, version) = if !applied {
                    (Kind::Active, v)
                } else if stashed {
                    (Kind::Active, v + 1)
                } else {
                    (Kind::Orphaned, v)
                };
                state.settle(
                    kind,
                    version,
                    crash_at,
                    !needs_probe || probes_ok(probe_failures),
                );
            }
            Step::Recover {
                crash_at,
                probe_failures,
            } => {
                // Recovery from any durable state converges on the outcome fixed when the run
                // crashed; only a crash or a failing probe delays it.
                if !state.settled {
                    state.settled = crash_at.is_none() && probes_ok(probe_failures);
                }
            }
            Step::Remove { crash_at } => {
                if state.kind == Kind::Active {
                    let kind = if crash_at == Some(0) {
                        Kind::Active
                    } else {
                        Kind::Removed
                    };
                    state.settle(kind, state.version, crash_at, true);
                }
            }
            Step::ExternalRemove => {
                if state.kind == Kind::Active {
                    state.ext_dead = true;
                }
            }
            Step::ReaderRejected { crash_at } => {
                if state.kind == Kind::Active && state.ext_dead {
                    let kind = if crash_at == Some(0) {
                        Kind::Active
                    } else {
                        Kind::Dead
                    };
                    state.settle(kind, state.version, crash_at, true);
                }
            }
            Step::OperatorResolve { crash_at } => {
                if matches!(state.kind, Kind::Orphaned | Kind::Dead) {
                    let kind = if crash_at == Some(0) {
                        state.kind
                    } else {
                        Kind::Retired
                    };
                    state.settle(kind, state.version, crash_at, true);
                }
            }
        }
        state
    }
}

// --- The system under test -------------------------------------------------------------------

#[derive(Debug, Default, Clone)]
struct AttemptRecord {
    sent: bool,
    stash: Option<u64>,
    promoted: bool,
}

#[derive(Debug)]
struct Store {
    state: CredentialState,
    tokens: BTreeMap<TokenVersion, u64>,
    current: TokenVersion,
    attempts: HashMap<AttemptId, AttemptRecord>,
    audit: Vec<AuditEvent>,
}

#[derive(Debug)]
struct Sut {
    store: Store,
    /// Plaid's one valid token, `None` once the Item is removed.
    plaid_valid: Option<u64>,
    next_token: u64,
    invalidate_calls: HashMap<AttemptId, u32>,
    next_attempt: u128,
    now: DateTime<Utc>,
    /// A token Plaid applied never reached the store in some run (crash between Plaid's
    /// commit and our write, or the answer was lost on the way).
    lost_window: bool,
    ext_dead: bool,
    alerts: u32,
}

/// One run of the driver: a crash drops the in-memory state (and any token held).
struct Run {
    crash_at: Option<u8>,
    effects: u8,
    probe_failures: u8,
    fault: Fault,
    held_token: Option<u64>,
    crashed: bool,
}

enum RunEnd {
    Done,
    Crashed,
    Refused(TransitionError),
}

impl Sut {
    fn new() -> Self {
        let mut tokens = BTreeMap::new();
        tokens.insert(TokenVersion::FIRST, 1);
        Sut {
            store: Store {
                state: CredentialState::default(),
                tokens,
                current: TokenVersion::FIRST,
                attempts: HashMap::new(),
                audit: Vec::new(),
            },
            plaid_valid: Some(1),
            next_token: 2,
            invalidate_calls: HashMap::new(),
            next_attempt: 1,
            now: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            lost_window: false,
            ext_dead: false,
            alerts: 0,
        }
    }

    fn token_of(&self, version: TokenVersion) -> Option<u64> {
        self.store.tokens.get(&version).copied()
    }

    /// A durable write of the in-memory `state`, with the transition's audit record.
    fn write_state(&mut self, state: &CredentialState, audit: Option<&AuditEvent>) {
        let before = self.store.state.name();
        if before == state.name() {
            assert!(audit.is_none(), "audit without a change of state");
        } else {
            let audit = audit.expect("a durable change of state without its audit record");
            assert_eq!(
                audit.from, before,
                "audit record's from is not the stored state"
            );
            assert_eq!(audit.to, state.name());
            self.store.audit.push(audit.clone());
        }
        self.store.state = state.clone();
    }

    fn run(&mut self, first: CredentialInput, run: &mut Run) -> RunEnd {
        self.now += Duration::minutes(1);
        let mut state = self.store.state.clone();
        let mut pending = vec![first];
        let mut probe_cycles = 0u8;
        while let Some(input) = pending.pop() {
            let transition = match step(&state, input, self.now) {
                Ok(t) => t,
                Err(err) => return RunEnd::Refused(err),
            };
            if transition.audit.is_some() {
                assert!(
                    transition
                        .commands
                        .first()
                        .is_some_and(CredentialCommand::is_write),
                    "a change of state whose first command is not a write"
                );
            }
            state = transition.state.clone();
            let mut audit = transition.audit.clone();
            for command in transition.commands {
                if run.crash_at == Some(run.effects) {
                    if run.held_token.is_some() {
                        self.lost_window = true;
                    }
                    return RunEnd::Crashed;
                }
                run.effects += 1;
                let next = self.execute(&state, audit.take().as_ref(), command, run);
                if run.crashed {
                    return RunEnd::Crashed;
                }
                if let Some(next) = next {
                    pending.push(next);
                }
            }
            // The driver's own scheduling: probe an Unknown Item (bounded per run).
            if pending.is_empty()
                && matches!(state, CredentialState::Unknown { .. })
                && probe_cycles < PROBE_BUDGET
            {
                probe_cycles += 1;
                pending.push(CredentialInput::ProbeDue);
            }
        }
        RunEnd::Done
    }

    #[allow(clippy::too_many_lines)]
    fn execute(
        &mut self,
        state: &CredentialState,
        audit: Option<&AuditEvent>,
        command: CredentialCommand,
        run: &mut Run,
    ) -> Option<CredentialInput> {
        use CredentialCommand as C;
        use CredentialInput as I;
        match command {
            C::RecordIntent { attempt } => {
                self.store
                    .attempts
                    .insert(attempt.id, AttemptRecord::default());
                self.write_state(state, audit);
                Some(I::IntentRecorded)
            }
            C::MarkSent { attempt } => {
                self.store.attempts.get_mut(&attempt).unwrap().sent = true;
                self.write_state(state, audit);
                Some(I::SentMarked)
            }
            C::CallInvalidate { attempt, version } => {
                assert!(
                    matches!(state, CredentialState::InFlight { .. }),
                    "invalidate outside InFlight"
                );
                assert!(
                    self.store.attempts[&attempt].sent,
                    "invalidate before the sent marker is durable"
                );
                let calls = self.invalidate_calls.entry(attempt).or_default();
                *calls += 1;
                assert_eq!(*calls, 1, "invalidate sent twice for one attempt");
                let sent = self.token_of(version).unwrap();
                if self.plaid_valid != Some(sent) {
                    return Some(I::InvalidateFailed(CallFailure::invalid_access_token()));
                }
                let fault = run.fault;
                if fault.applies() {
                    let new = self.next_token;
                    self.next_token += 1;
                    self.plaid_valid = Some(new);
                    if fault == Fault::Ok {
                        run.held_token = Some(new);
                    } else {
                        self.lost_window = true;
                    }
                }
                Some(match fault {
                    Fault::Ok => I::InvalidateOk {
                        request_id: "req-invalidate".into(),
                    },
                    Fault::RateLimited => I::InvalidateFailed(CallFailure {
                        rate_limited: true,
                        ..CallFailure::with_outcome(Outcome::Known)
                    }),
                    Fault::NotSent => {
                        I::InvalidateFailed(CallFailure::with_outcome(Outcome::NotSent))
                    }
                    Fault::ServerErrorNotApplied
                    | Fault::ServerErrorApplied
                    | Fault::CommitThenDrop
                    | Fault::TimeoutNotApplied
                    | Fault::TimeoutApplied => {
                        I::InvalidateFailed(CallFailure::with_outcome(Outcome::Ambiguous))
                    }
                })
            }
            C::StashNewToken { attempt } => {
                // Two effects, like a vault whose stash and state writes are separate: the
                // unconditional stash first, then the state.
                let token = run.held_token.take().expect("a stash without a token");
                self.store.attempts.get_mut(&attempt).unwrap().stash = Some(token);
                if run.crash_at == Some(run.effects) {
                    run.crashed = true;
                    return None;
                }
                run.effects += 1;
                self.write_state(state, audit);
                Some(I::NewTokenStashed)
            }
            C::PromoteStashed {
                attempt,
                expected,
                version,
            } => {
                if self.store.current != expected {
                    return Some(I::PromoteConflict {
                        current: self.store.current,
                    });
                }
                let record = self.store.attempts.get_mut(&attempt).unwrap();
                let token = record.stash.expect("promote without a stash");
                record.promoted = true;
                self.store.tokens.insert(version, token);
                self.store.current = version;
                self.write_state(state, audit);
                Some(I::Promoted)
            }
            C::VerifyNewToken { version, .. } => {
                let token = self.token_of(version);
                Some(if token.is_some() && token == self.plaid_valid {
                    I::Verified
                } else {
                    I::VerifyFailed(CallFailure::invalid_access_token())
                })
            }
            C::ProbeOldToken { version, .. } => {
                if run.probe_failures > 0 {
                    run.probe_failures -= 1;
                    return Some(I::ProbeFailed);
                }
                let token = self.token_of(version);
                Some(if token.is_some() && token == self.plaid_valid {
                    I::ProbeOldTokenWorks
                } else {
                    I::ProbeOldTokenInvalid
                })
            }
            C::CheckStore { attempt, version } => Some(if self.store.current > version {
                I::NewerVersionFound {
                    version: self.store.current,
                }
            } else if attempt
                .and_then(|a| self.store.attempts.get(&a))
                .is_some_and(|r| r.stash.is_some() && !r.promoted)
            {
                I::StashFound
            } else {
                I::NoNewerVersion
            }),
            C::CallItemRemove { version, .. } => {
                let token = self.token_of(version);
                if token.is_some() && token == self.plaid_valid {
                    self.plaid_valid = None;
                    Some(I::RemoveOk {
                        request_id: "req-remove".into(),
                    })
                } else {
                    Some(I::RemoveFailed(CallFailure::invalid_access_token()))
                }
            }
            C::SaveState => {
                self.write_state(state, audit);
                None
            }
            C::RaiseAlert(_) => {
                self.alerts += 1;
                None
            }
            C::ReleaseLease => None,
            other => panic!("unexpected command {other:?}"),
        }
    }

    fn recover(&mut self, run: &mut Run) -> RunEnd {
        let stashed = self
            .store
            .state
            .attempt()
            .and_then(|a| self.store.attempts.get(&a.id))
            .is_some_and(|r| r.stash.is_some() && !r.promoted);
        self.run(CredentialInput::Recover { stashed }, run)
    }
}

struct CredentialTest;

impl StateMachineTest for CredentialTest {
    type SystemUnderTest = Sut;
    type Reference = ModelMachine;

    fn init_test(_: &Model) -> Sut {
        Sut::new()
    }

    fn apply(mut sut: Sut, _after: &Model, step: Step) -> Sut {
        let run = |crash_at, probe_failures, fault| Run {
            crash_at,
            effects: 0,
            probe_failures,
            fault,
            held_token: None,
            crashed: false,
        };
        let was = sut.store.state.name();
        match step {
            Step::Rotate {
                fault,
                crash_at,
                probe_failures,
            } => {
                let attempt = AttemptId::new(sut.next_attempt);
                sut.next_attempt += 1;
                let input = CredentialInput::Start {
                    attempt,
                    reason: RotationReason::Scheduled,
                    actor: Actor::new("proptest"),
                };
                let end = sut.run(input, &mut run(crash_at, probe_failures, fault));
                if was != "active" {
                    assert!(
                        matches!(end, RunEnd::Refused(TransitionError::Illegal { .. })),
                        "a rotation started from {was}"
                    );
                }
            }
            Step::Recover {
                crash_at,
                probe_failures,
            } => {
                let _ = sut.recover(&mut run(crash_at, probe_failures, Fault::Ok));
            }
            Step::Remove { crash_at } => {
                let input = CredentialInput::RemoveRequested {
                    reason: RemoveReason::NoLongerNeeded,
                    actor: Actor::new("proptest"),
                };
                let _ = sut.run(input, &mut run(crash_at, 0, Fault::Ok));
            }
            Step::ExternalRemove => {
                if matches!(sut.store.state, CredentialState::Active { .. }) {
                    sut.plaid_valid = None;
                    sut.ext_dead = true;
                }
            }
            Step::ReaderRejected { crash_at } => {
                if let CredentialState::Active { version } = sut.store.state {
                    let works = sut.token_of(version) == sut.plaid_valid;
                    if !works {
                        let input = CredentialInput::TokenRejected { version };
                        let _ = sut.run(input, &mut run(crash_at, 0, Fault::Ok));
                    }
                }
            }
            Step::OperatorResolve { crash_at } => {
                let input = CredentialInput::OperatorResolved {
                    actor: Actor::new("operator"),
                    reason: "relinked".to_owned(),
                };
                let end = sut.run(input, &mut run(crash_at, 0, Fault::Ok));
                if !matches!(was, "orphaned" | "dead" | "quarantined") {
                    assert!(matches!(end, RunEnd::Refused(_)));
                }
            }
        }
        sut
    }

    fn check_invariants(sut: &Sut, model: &Model) {
        let store = &sut.store;
        let state = &store.state;

        // Versions: contiguous from 1, the current one the highest.
        let versions: Vec<u64> = store.tokens.keys().map(|v| v.get()).collect();
        assert_eq!(versions, (1..=store.current.get()).collect::<Vec<_>>());

        // Never two current tokens: of all tokens we hold, at most one works at Plaid, and
        // when one works it is the current one (or a stash not yet promoted).
        let working: Vec<&u64> = store
            .tokens
            .values()
            .filter(|t| Some(**t) == sut.plaid_valid)
            .collect();
        assert!(working.len() <= 1, "two stored tokens work");
        if !working.is_empty() {
            assert_eq!(
                sut.token_of(store.current),
                sut.plaid_valid,
                "a superseded version still works"
            );
        }

        // No token lost silently.
        if let Some(valid) = sut.plaid_valid {
            let stored = store.tokens.values().any(|t| *t == valid)
                || store.attempts.values().any(|r| r.stash == Some(valid));
            if !stored {
                assert!(
                    sut.lost_window,
                    "Plaid's token is lost without a crash window"
                );
                assert!(
                    !matches!(state, CredentialState::Active { .. }),
                    "Active while Plaid's token is lost"
                );
            }
            if matches!(state, CredentialState::Active { .. }) {
                assert!(stored);
            }
        }
        if matches!(state, CredentialState::Orphaned { .. }) {
            assert!(
                sut.lost_window || sut.ext_dead,
                "Orphaned without a lost token"
            );
        }

        // Every durable change audited: the journal is a chain that ends at the stored state.
        let mut at = "active";
        for record in &store.audit {
            assert_eq!(record.from, at, "audit chain broken");
            assert_ne!(record.from, record.to);
            at = record.to;
        }
        assert_eq!(at, state.name(), "stored state without its audit record");

        // Invalidate at most once per attempt (also asserted at the call).
        assert!(sut.invalidate_calls.values().all(|n| *n <= 1));

        // The reference model: a settled run ends where the diagram says.
        if model.settled {
            let kind = match state {
                CredentialState::Active { version } => {
                    assert_eq!(version.get(), model.version, "wrong version");
                    Kind::Active
                }
                CredentialState::Orphaned { .. } => Kind::Orphaned,
                CredentialState::Dead { .. } => Kind::Dead,
                CredentialState::Removed { .. } => Kind::Removed,
                CredentialState::Retired { .. } => Kind::Retired,
                other => panic!("settled model but the store is {other:?}"),
            };
            assert_eq!(kind, model.kind, "store {state:?}, model {model:?}");
        }
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        max_shrink_iters: 4096,
        .. ProptestConfig::default()
    })]

    #[test]
    fn credential_machine_survives_crashes_and_faults(sequential 1..40 => CredentialTest);
}

/// Every (state, input) pair is either a transition or an `Illegal` error, never a panic.
#[test]
fn illegal_inputs_are_errors() {
    let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let attempt = tokenward_rotation::token::Attempt {
        id: AttemptId::new(7),
        from: TokenVersion::new(3),
        reason: RotationReason::Manual,
        actor: Actor::new("t"),
        started_at: now,
    };
    let states = vec![
        CredentialState::Active {
            version: TokenVersion::new(3),
        },
        CredentialState::Intent {
            attempt: attempt.clone(),
        },
        CredentialState::InFlight {
            attempt: attempt.clone(),
        },
        CredentialState::Verifying {
            attempt: attempt.clone(),
        },
        CredentialState::Orphaned {
            attempt: attempt.clone(),
            since: now,
        },
        CredentialState::Removed { since: now },
    ];
    let inputs = vec![
        CredentialInput::IntentRecorded,
        CredentialInput::SentMarked,
        CredentialInput::Promoted,
        CredentialInput::ProbeOldTokenWorks,
        CredentialInput::NoNewerVersion,
        CredentialInput::Start {
            attempt: AttemptId::new(8),
            reason: RotationReason::Manual,
            actor: Actor::new("t"),
        },
    ];
    let mut illegal = 0;
    for state in &states {
        for input in &inputs {
            match step(state, input.clone(), now) {
                Ok(t) => {
                    if t.state.name() != state.name() {
                        assert!(t.audit.is_some());
                    }
                }
                Err(TransitionError::Illegal { .. }) => illegal += 1,
                Err(other) => panic!("{other}"),
            }
        }
    }
    assert!(illegal > 20);
}

/// An ambiguous invalidate never leads to a second invalidate: only a probe leaves Unknown.
#[test]
fn unknown_is_left_only_by_a_probe() {
    let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let mut state = CredentialState::default();
    for input in [
        CredentialInput::Start {
            attempt: AttemptId::new(1),
            reason: RotationReason::Compromise,
            actor: Actor::new("t"),
        },
        CredentialInput::IntentRecorded,
        CredentialInput::SentMarked,
        CredentialInput::InvalidateFailed(CallFailure::with_outcome(Outcome::Ambiguous)),
    ] {
        state = step(&state, input, now).unwrap().state;
    }
    assert_eq!(state.name(), "unknown");
    for input in [
        CredentialInput::SentMarked,
        CredentialInput::IntentRecorded,
        CredentialInput::InvalidateOk {
            request_id: "r".into(),
        },
    ] {
        assert!(step(&state, input, now).is_err());
    }
    let t = step(&state, CredentialInput::ProbeDue, now).unwrap();
    assert!(
        t.commands
            .iter()
            .all(|c| !matches!(c, CredentialCommand::CallInvalidate { .. }))
    );
    assert!(
        t.commands
            .iter()
            .any(|c| matches!(c, CredentialCommand::ProbeOldToken { .. }))
    );
}
