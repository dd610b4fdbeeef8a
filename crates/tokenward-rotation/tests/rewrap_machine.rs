//! State-machine property tests of the rewrap job against a reference model, with crashes
//! before any effect (every row update is one effect) and restarts from the durable job.
//!
//! Invariants: an envelope is rewritten at most once per time it was (re)written under an old
//! version (a batch redone after a crash skips what is done: CAS per row); versions only
//! move to the target; a completed job leaves nothing under older versions; a rerun over a
//! store with nothing to do writes nothing; every durable change of the job is audited;
//! progress never goes backwards within a run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "test code: failures should be loud"
)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use tokenward_envelope::KeyVersion;
use tokenward_rotation::AuditEvent;
use tokenward_rotation::rewrap::{
    Cursor, Progress, RewrapCommand, RewrapInput, RewrapPolicy, RewrapState,
};

const TARGET: u32 = 3;

#[derive(Debug, Clone)]
enum Step {
    /// Run the job (plan and start it if none is open, resume a paused one, recover a
    /// running one) until it completes, crashes or pauses.
    Run {
        crash_at: Option<u16>,
        rate_limited_first: bool,
    },
    /// An old binary seals an envelope under an old version.
    Insert { version: u32 },
}

#[derive(Debug, Clone)]
struct Model {
    /// Envelopes under versions older than the target.
    below: usize,
}

struct ModelMachine;

impl ReferenceStateMachine for ModelMachine {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model { below: 0 }).boxed()
    }

    fn transitions(_: &Model) -> BoxedStrategy<Step> {
        prop_oneof![
            2 => (prop_oneof![1 => Just(None), 2 => (0u16..40).prop_map(Some)], any::<bool>())
                .prop_map(|(crash_at, rate_limited_first)| Step::Run { crash_at, rate_limited_first }),
            3 => (1u32..=TARGET).prop_map(|version| Step::Insert { version }),
        ]
        .boxed()
    }

    fn apply(mut state: Model, step: &Step) -> Model {
        match *step {
            Step::Run {
                crash_at,
                rate_limited_first,
            } => {
                // A run that neither crashes nor pauses leaves nothing behind. (A crash may
                // fall after the end; the SUT checks that case itself.)
                if crash_at.is_none() && !rate_limited_first {
                    state.below = 0;
                }
            }
            Step::Insert { version } => {
                if version < TARGET {
                    state.below += 1;
                }
            }
        }
        state
    }
}

#[derive(Debug)]
struct Sut {
    envelopes: BTreeMap<String, u32>,
    /// Times each envelope was written under an old version, and rewrapped.
    sealed_old: BTreeMap<String, u32>,
    rewraps: BTreeMap<String, u32>,
    job: Option<RewrapState>,
    audit: Vec<AuditEvent>,
    next_id: u32,
    now: DateTime<Utc>,
}

struct Run {
    crash_at: Option<u16>,
    effects: u16,
    rate_limited: bool,
    last_progress: Option<Progress>,
    writes: u32,
}

impl Sut {
    fn below(&self) -> usize {
        self.envelopes.values().filter(|v| **v < TARGET).count()
    }

    fn save(&mut self, state: &RewrapState, audit: Option<&AuditEvent>) {
        let before = self.job.as_ref().map_or("none", RewrapState::name);
        if before == state.name() {
            assert!(audit.is_none());
        } else {
            let audit = audit.expect("job change without audit");
            // A new job starts from `planned`, which is never stored on its own.
            assert!(audit.from == before || (before != "running" && audit.from == "planned"));
            assert_eq!(audit.to, state.name());
            self.audit.push(audit.clone());
        }
        self.job = Some(state.clone());
    }

    /// Returns `false` if the run crashed.
    fn run(&mut self, first: RewrapInput, mut state: RewrapState, run: &mut Run) -> bool {
        let policy = RewrapPolicy {
            batch_size: 4,
            max_failure_percent: 10,
        };
        self.now += Duration::minutes(1);
        let mut pending = vec![first];
        while let Some(input) = pending.pop() {
            let t = policy.step(&state, input, self.now).expect("legal step");
            if t.audit.is_some() {
                assert!(t.commands.first().is_some_and(RewrapCommand::is_write));
            }
            state = t.state.clone();
            let mut audit = t.audit;
            for command in t.commands {
                if run.crash_at == Some(run.effects) {
                    return false;
                }
                run.effects += 1;
                match command {
                    RewrapCommand::SaveJob => self.save(&state, audit.take().as_ref()),
                    RewrapCommand::ReportProgress(progress) => {
                        if let Some(last) = run.last_progress {
                            assert!(progress.batches >= last.batches);
                            assert!(progress.rewrapped >= last.rewrapped);
                        }
                        run.last_progress = Some(progress);
                    }
                    RewrapCommand::RewrapBatch {
                        target,
                        after,
                        limit,
                    } => {
                        assert_eq!(target.get(), TARGET);
                        if run.rate_limited {
                            run.rate_limited = false;
                            pending.push(RewrapInput::RateLimited);
                            continue;
                        }
                        let keys: Vec<String> = self
                            .envelopes
                            .keys()
                            .filter(|k| after.as_ref().is_none_or(|a| k.as_str() > a.as_str()))
                            .take(limit as usize)
                            .cloned()
                            .collect();
                        let (mut rewrapped, mut skipped) = (0, 0);
                        for key in &keys {
                            let version = self.envelopes[key];
                            if version < TARGET {
                                // One row, one CAS update, one effect.
                                if run.crash_at == Some(run.effects) {
                                    return false;
                                }
                                run.effects += 1;
                                self.envelopes.insert(key.clone(), TARGET);
                                *self.rewraps.entry(key.clone()).or_default() += 1;
                                run.writes += 1;
                                rewrapped += 1;
                            } else {
                                skipped += 1;
                            }
                        }
                        pending.push(RewrapInput::BatchDone {
                            last: keys.last().map(|k| Cursor::new(k.clone())),
                            rewrapped,
                            skipped,
                            failed: 0,
                        });
                    }
                    RewrapCommand::Verify { .. } => {
                        pending.push(RewrapInput::Verified {
                            remaining: self.below() as u64,
                            sample_ok: true,
                        });
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        true
    }
}

struct RewrapTest;

impl StateMachineTest for RewrapTest {
    type SystemUnderTest = Sut;
    type Reference = ModelMachine;

    fn init_test(_: &Model) -> Sut {
        Sut {
            envelopes: BTreeMap::new(),
            sealed_old: BTreeMap::new(),
            rewraps: BTreeMap::new(),
            job: None,
            audit: Vec::new(),
            next_id: 0,
            now: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        }
    }

    fn apply(mut sut: Sut, model: &Model, step: Step) -> Sut {
        match step {
            Step::Insert { version } => {
                let key = format!("item-{:06}", sut.next_id);
                sut.next_id += 1;
                sut.envelopes.insert(key.clone(), version);
                if version < TARGET {
                    *sut.sealed_old.entry(key).or_default() += 1;
                }
            }
            Step::Run {
                crash_at,
                rate_limited_first,
            } => {
                let below_before = sut.below();
                let mut run = Run {
                    crash_at,
                    effects: 0,
                    rate_limited: rate_limited_first,
                    last_progress: None,
                    writes: 0,
                };
                let target = KeyVersion::new(TARGET).unwrap();
                let (input, state) = match sut.job.clone() {
                    None | Some(RewrapState::Completed { .. }) => (
                        RewrapInput::Start {
                            target_is_primary: true,
                        },
                        RewrapState::plan(target, below_before as u64),
                    ),
                    Some(paused @ RewrapState::Paused { .. }) => (RewrapInput::Resume, paused),
                    Some(other) => (RewrapInput::Recover, other),
                };
                let finished = sut.run(input, state, &mut run);
                if below_before == 0 {
                    assert_eq!(run.writes, 0, "a rerun with nothing to do wrote");
                }
                if finished && !rate_limited_first {
                    assert!(matches!(sut.job, Some(RewrapState::Completed { .. })));
                }
                if matches!(sut.job, Some(RewrapState::Completed { .. })) && finished {
                    assert_eq!(sut.below(), 0);
                }
                if crash_at.is_none() && !rate_limited_first {
                    assert_eq!(sut.below(), model.below);
                }
            }
        }
        sut
    }

    fn check_invariants(sut: &Sut, _: &Model) {
        for (key, n) in &sut.rewraps {
            assert!(
                *n <= sut.sealed_old.get(key).copied().unwrap_or(0),
                "{key} rewrapped more often than it was sealed under an old version"
            );
        }
        assert!(sut.envelopes.values().all(|v| (1..=TARGET).contains(v)));
        let mut at: Option<&str> = None;
        for record in &sut.audit {
            if let Some(at) = at {
                assert!(record.from == at || record.from == "planned");
            }
            at = Some(record.to);
        }
        if let Some(job) = &sut.job {
            assert_eq!(at, Some(job.name()));
        }
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        .. ProptestConfig::default()
    })]

    #[test]
    fn rewrap_job_resumes_after_any_crash(sequential 1..40 => RewrapTest);
}

#[test]
fn start_refuses_a_target_that_is_not_primary() {
    let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let job = RewrapState::plan(KeyVersion::new(2).unwrap(), 10);
    let err = tokenward_rotation::rewrap::step(
        &job,
        RewrapInput::Start {
            target_is_primary: false,
        },
        now,
    )
    .unwrap_err();
    assert!(err.to_string().contains("not primary"));
}

#[test]
fn error_rate_pauses_the_job() {
    let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let job = RewrapState::plan(KeyVersion::new(2).unwrap(), 10);
    let t = tokenward_rotation::rewrap::step(
        &job,
        RewrapInput::Start {
            target_is_primary: true,
        },
        now,
    )
    .unwrap();
    let t = tokenward_rotation::rewrap::step(
        &t.state,
        RewrapInput::BatchDone {
            last: Some(Cursor::new("k")),
            rewrapped: 5,
            skipped: 0,
            failed: 5,
        },
        now,
    )
    .unwrap();
    assert_eq!(t.state.name(), "paused");
    assert!(t.audit.is_some());
}
