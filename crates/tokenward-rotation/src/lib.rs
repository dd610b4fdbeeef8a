//! Crash-safe rotation of Plaid access tokens and of the KEKs that protect them.
//!
//! Plaid's `/item/access_token/invalidate` hands back a new token and kills the old one at
//! once, with no idempotency key and no way to fetch the new token again: a lost answer is a
//! lost token. This crate makes that window as small as it can be, detects when it was hit,
//! and never pretends otherwise.
//!
//! The crate has two layers:
//! - **Pure machines** ([`token`], [`health`], [`kek`], [`rewrap`]): each is a `step(state,
//!   input, now) -> Result<Transition, TransitionError>` function with no I/O and no clock
//!   (`now` is an argument). A [`Transition`] is the next state, the commands for the driver
//!   (in order) and the audit record of the change. An input a state does not accept is a
//!   [`TransitionError`], never a panic, and leaves the caller's state as it was.
//! - **Drivers** run the commands against `tokenward_plaid::PlaidApi` and the vault
//!   (`tokenward-vault`) and feed the results back as inputs (see "Drivers" below).
//!
//! The machines are the starting point of `reference/rotation.md` §8; every deviation is listed
//! below with its reason.
//!
//! # Quick start: one rotation, by hand
//!
//! ```
//! use chrono::{DateTime, Utc};
//! use tokenward_rotation::token::{self, CredentialCommand, CredentialInput, CredentialState};
//! use tokenward_rotation::{Actor, AttemptId, RotationReason, TokenVersion};
//!
//! # fn main() -> Result<(), tokenward_rotation::TransitionError> {
//! let now: DateTime<Utc> = DateTime::UNIX_EPOCH;
//! let state = CredentialState::default(); // Active at v1
//!
//! // Start: journal the intent first.
//! let t = token::step(&state, CredentialInput::Start {
//!     attempt: AttemptId::new(1),
//!     reason: RotationReason::Scheduled,
//!     actor: Actor::new("scheduler"),
//! }, now)?;
//! assert!(matches!(t.commands[..], [CredentialCommand::RecordIntent { .. }]));
//! assert_eq!(t.audit.as_ref().map(|a| (a.from, a.to)), Some(("active", "intent")));
//!
//! // Intent durable → make the sent marker durable; only then call invalidate, once.
//! let t = token::step(&t.state, CredentialInput::IntentRecorded, now)?;
//! assert!(matches!(t.commands[..], [CredentialCommand::MarkSent { .. }]));
//! let t = token::step(&t.state, CredentialInput::SentMarked, now)?;
//! assert!(matches!(t.commands[..], [CredentialCommand::CallInvalidate { .. }]));
//!
//! // 200: stash the new token (unconditionally, by attempt id), promote it, verify it.
//! let t = token::step(&t.state, CredentialInput::InvalidateOk { request_id: "req-1".into() }, now)?;
//! let t = token::step(&t.state, CredentialInput::NewTokenStashed, now)?;
//! let t = token::step(&t.state, CredentialInput::Promoted, now)?;
//! let t = token::step(&t.state, CredentialInput::Verified, now)?;
//! assert_eq!(t.state, CredentialState::Active { version: TokenVersion::new(2) });
//!
//! // A second Start from Intent would be a bug in the driver: an error, not a panic.
//! # Ok(())
//! # }
//! ```
//!
//! # The credential machine ([`token`])
//!
//! ```text
//!            Start ┌────────┐ IntentRecorded ┌──────────┐ InvalidateOk ┌────────────┐
//!  ┌──────────────▶│ Intent │───────────────▶│ InFlight │─────────────▶│ Committing │
//!  │               └────────┘  (MarkSent)    └──────────┘ (StashNew-   └────────────┘
//!  │     Recover (no marker) │  SentMarked ⟲ CallInvalidate  Token)       │ NewTokenStashed
//!  │◀────────────────────────┘                │  │  │                      ▼ (PromoteStashed)
//! ┌┴───────┐ known reject / NotSent           │  │  │ Recover{stashed}  ┌───────────┐
//! │ Active │◀─────────────────────────────────┘  │  └──────────────────▶│ Verifying │
//! └┬───────┘◀─────── Verified / verify transient ─┼──────────────────────└───────────┘
//!  │  ▲  ▲                                       │ ambiguous / Recover     │ verify: INVALID
//!  │  │  │ ProbeOldTokenWorks   ┌─────────┐◀─────┘ (no stash)              ▼ PromoteConflict
//!  │  │  └──────────────────────│ Probing │◀─ ProbeDue ─┌─────────┐   ┌─────────────┐
//!  │  │                         └─────────┘──ProbeFailed▶│ Unknown │   │ Quarantined │
//!  │  │ NewerVersionFound            │ ProbeOldTokenInvalid└───────┘   └─────────────┘
//!  │  │                              ▼                  (INVALID_ACCESS_TOKEN from
//!  │  │                        ┌───────────┐             invalidate itself: Reconcile,
//!  │  └────────────────────────│ Reconcile │◀──────────  maybe_applied = false)
//!  │   TokenRejected (traffic) └───────────┘
//!  ├──────────────────────────────▶│  │ NoNewerVersion
//!  │                               │  ├─ maybe_applied ──▶ Orphaned (alert, runbook)
//!  │ RemoveRequested               │  └─ otherwise ──────▶ Dead (alert)
//!  ▼                               │ StashFound ──▶ Verifying
//! Removing ── RemoveOk / remove answers INVALID_ACCESS_TOKEN ──▶ Removed
//! Orphaned | Dead | Quarantined ── OperatorResolved ──▶ Retired
//! ```
//!
//! | state | leaves on | to | commands |
//! |---|---|---|---|
//! | `Active(v)` | `Start` | `Intent` | `RecordIntent` (write) |
//! | `Active(v)` | `RemoveRequested` | `Removing` | `SaveState`, `CallItemRemove` |
//! | `Active(v)` | `TokenRejected(v)` | `Reconcile` | `SaveState`, `CheckStore` |
//! | `Intent` | `IntentRecorded` | `InFlight` | `MarkSent` (write, fsync) |
//! | `Intent` | `Recover` | `Active(v)` | `SaveState`, `ReleaseLease` (never sent) |
//! | `InFlight` | `SentMarked` | `InFlight` | `CallInvalidate` (once per attempt) |
//! | `InFlight` | `InvalidateOk` | `Committing` | `StashNewToken` (unconditional write) |
//! | `InFlight` | `InvalidateFailed` known / not sent | `Active(v)` | `SaveState`, `ReleaseLease` |
//! | `InFlight` | `InvalidateFailed` `INVALID_ACCESS_TOKEN` | `Reconcile` (not applied) | `SaveState`, `CheckStore` |
//! | `InFlight` | `InvalidateFailed` ambiguous | `Unknown` | `SaveState` |
//! | `InFlight`, `Committing` | `Recover{stashed: true}` | `Verifying` | `PromoteStashed` |
//! | `InFlight`, `Committing` | `Recover{stashed: false}` | `Unknown` | `SaveState` |
//! | `Committing` | `NewTokenStashed` | `Verifying` | `PromoteStashed` (CAS on v) |
//! | `Verifying` | `Promoted`, `Recover` | `Verifying` | `VerifyNewToken` |
//! | `Verifying` | `Verified`, `VerifyFailed` transient | `Active(v+1)` | `SaveState`, `ReleaseLease` |
//! | `Verifying` | `VerifyFailed` `INVALID_ACCESS_TOKEN`, `PromoteConflict` | `Quarantined` | `SaveState`, `RaiseAlert`, `ReleaseLease` |
//! | `Unknown` | `ProbeDue`, `Recover` | `Probing` | `SaveState`, `ProbeOldToken` |
//! | `Unknown`, `Probing` | `Recover{stashed: true}` | `Verifying` | `PromoteStashed` |
//! | `Probing` | `ProbeOldTokenWorks` | `Active(v)` | `SaveState`, `ReleaseLease` |
//! | `Probing` | `ProbeOldTokenInvalid` | `Reconcile` (maybe applied) | `SaveState`, `CheckStore` |
//! | `Probing` | `ProbeFailed` | `Unknown` (+1 failed probe; alert once past `max_unknown_age`) | `SaveState` |
//! | `Reconcile` | `NewerVersionFound(w > v)` | `Active(w)` | `SaveState`, `ReleaseLease` |
//! | `Reconcile` | `StashFound` | `Verifying` | `PromoteStashed` |
//! | `Reconcile` | `NoNewerVersion` | `Orphaned` if maybe applied, else `Dead` | `SaveState`, `RaiseAlert`, `ReleaseLease` |
//! | `Removing` | `RemoveOk`, `RemoveFailed` `INVALID_ACCESS_TOKEN` | `Removed` | `SaveState`, `ReleaseLease` |
//! | `Removing` | `RemoveFailed` other | `Removing` (tries + 1) | — (re-driven by `Recover`) |
//! | `Orphaned`, `Dead`, `Quarantined` | `OperatorResolved` | `Retired` | `SaveState` |
//!
//! Every other (state, input) pair is [`TransitionError::Illegal`]. `Recover` on `Active` and on
//! the terminal states is a no-op. Only `Active`, `Intent`, `InFlight`, `Committing`,
//! `Verifying`, `Unknown` and `Probing` serve app traffic
//! ([`CredentialState::serves_traffic`](token::CredentialState::serves_traffic)): an `Orphaned`
//! Item raises an alert and stays out of normal traffic.
//!
//! **The write-ahead protocol** (rotation.md §6): the intent and the sent marker are two
//! durable writes before invalidate is called; `CallInvalidate` is emitted only on
//! `SentMarked` in `InFlight`, so at most once per attempt; the new token is stashed first,
//! unconditionally, keyed by attempt id, and only then promoted with a compare-and-swap; an
//! ambiguous outcome is settled only by probing the *old* token with `/item/get`.
//!
//! **Audit**: a [`Transition`]'s `audit` is `Some` exactly when the state's kind changed, and
//! then its first command is a write that must carry the record in the same transaction
//! (`Command::is_write`). Records name states, inputs, attempt ids, versions, reason, actor and
//! Plaid `request_id`s; never a token.
//!
//! # The health machine ([`health`])
//!
//! | state | event | to |
//! |---|---|---|
//! | `Healthy`, `ExpiringSoon` | `LoginRequired` (`ITEM_LOGIN_REQUIRED` and other user-action errors) | `NeedsReauth` (+ `RequestUpdateMode`) |
//! | `Healthy` | `PendingExpiration` / `PENDING_DISCONNECT` | `ExpiringSoon{deadline}` (+ `RequestUpdateMode`) |
//! | `ExpiringSoon` | `PendingExpiration` | `ExpiringSoon` (earliest deadline) |
//! | `ExpiringSoon` | `Tick` with `now ≥ deadline` | `NeedsReauth` |
//! | `NeedsReauth` | `LoginRepaired`, `UpdateModeCompleted` | `Healthy` |
//! | `ExpiringSoon`, `PermissionRevoked` | `UpdateModeCompleted` | `Healthy` |
//! | `Healthy`, `ExpiringSoon`, `NeedsReauth` | `PermissionRevoked` | `PermissionRevoked` |
//! | any but `Removed` | `ItemRemoved` | `Removed` (absorbing) |
//! | any | `AccountRevoked{account}` | unchanged, `DeleteAccountData` |
//!
//! Inputs carry their own time; an event older than the last change of kind is ignored
//! (out-of-order delivery), and a duplicate changes nothing.
//! [`rotation_allowed`](health::rotation_allowed) gives the rotation policy per health state.
//!
//! # The KEK lifecycle ([`kek`])
//!
//! `Staged →(Promote, loaded everywhere) Primary →(a newer Promote) DecryptOnly →(Disable,
//! no envelope left) Disabled →(Destroy, no envelope, grace elapsed) Destroyed`;
//! `Disabled →(Enable) DecryptOnly`; `Staged | DecryptOnly | Disabled →(MarkCompromised)
//! Compromised →(Disable, no envelope and no unrotated token) Disabled`. Marking compromised
//! emits `RaiseAlert` and `RotateTokensUnder(version)`. Refusals (`TransitionError::Refused`)
//! name the guard and the count, e.g. "3 envelope(s) are still sealed under the version".
//!
//! # The rewrap job ([`rewrap`])
//!
//! `Planned →(Start, target primary) Running →(BatchDone with a cursor) Running`,
//! `Running →(BatchDone, nothing after the cursor) Verifying →(nothing left, sample opens)
//! Completed`, `Verifying →(rows left) Running` from the start (a new round),
//! `Running →(Pause | RateLimited | too many failures) Paused →(Resume) Running`,
//! `Verifying →(sample fails) Paused`. The job stores only a cursor and counters; each row
//! update is a CAS on its old version, so a batch redone after a crash skips what is done, and
//! a rerun over a store with nothing to do writes nothing.
//!
//! # Deviations from rotation.md §8, and why
//!
//! 1. **`Committing` between `InFlight` and `Verifying`.** §8.1 does "append token v+1,
//!    current = v+1" in one step. We split it: the stash of the new token is its own durable
//!    write, unconditional and keyed by attempt id (§6: no CAS may lose a live token), then a
//!    CAS promote. A crash between the two recovers with `Recover{stashed: true}` and promotes.
//! 2. **`Reconcile` knows whether our invalidate may have been applied.** §8.1 sends
//!    "`INVALID_ACCESS_TOKEN` from invalidate" to `Reconcile` and then to `Orphaned` ("we sent
//!    invalidate"). But that answer is a *known* outcome: Plaid did not rotate; the token was
//!    already dead. We end such Items `Dead`, not `Orphaned`, so that `Orphaned` means exactly
//!    "a token Plaid handed back was lost" (after an ambiguous outcome and a probe that finds the
//!    old token dead). A crash between the sent marker and recording the answer still ends
//!    `Orphaned`: the probe cannot tell our rotation from a removal (rotation.md §3).
//! 3. **`StashFound` in `Reconcile`**, and `Recover{stashed}` in `Unknown`/`Probing`: our own
//!    stashed token found in the store is promoted, never declared lost.
//! 4. **`Quarantined` also on a lost promote CAS** (two rotations collided, which leases with
//!    epochs should make impossible): the stash is kept and an operator decides.
//! 5. **`NeedsOperator` is a flag, not a state**: `Unknown{needs_operator}` plus one
//!    `UnknownTooLong` alert; the Item stays `Unknown` as §8.1 says.
//! 6. **`Probing` is persisted** (a write before each probe), so the journal shows every probe
//!    and a crash during a probe re-probes.
//! 7. **`TokenRejected`** (app traffic saw `INVALID_ACCESS_TOKEN` and a re-read gave the same
//!    version) enters `Reconcile` from `Active`; §8.1 has no arrow for it.
//! 8. **Removal** starts only from `Active`; a failed remove stays `Removing` with a try count
//!    and is re-driven by `Recover` (§8.1's self-loop); `Quarantined` may also be `Retired`.
//! 9. **Health events carry their time** and stale ones are ignored; §8.2 has no time. The
//!    `PermissionRevoked → [*]` exit is the `Removed` state, fed by the credential machine.
//! 10. **KEK**: `Primary → Compromised` is refused (promote a new primary first: a compromised
//!     primary would go on sealing new tokens under a leaked key; the incident entry point does
//!     both); `Disabled → Compromised` is allowed (a leak found late still needs the tokens
//!     rotated); the disable guard is the store's counts (envelopes, unrotated tokens), not "the
//!     rewrap job completed"; backup retention is folded into the destroy grace period.
//! 11. **Rewrap**: `Paused` also on a KMS rate limit and on a failed verification sample; a
//!     verification round that finds rows left restarts from the first cursor; `Planned` is
//!     the dry-run value and is never stored on its own.
//! 12. **Health events older than the stored health are journalled** (`health_ignored`), not
//!     only dropped, so the journal shows every verified delivery; `ExpiringSoon → NeedsReauth`
//!     on a passed deadline is driven by [`HealthDriver::tick`] (§8.2 has no clock input).
//! 13. **KEK destroy** measures the grace period from the disable time stored in the vault
//!     (a restart does not reset it), and refuses while any envelope is under the version,
//!     like disable; the compromised flag is kept after the version is disabled or destroyed.
//! 14. **Batch circuit breaker** (§8.5 "batch job misbehaving"): a failure is an error or a
//!     rotation that did not end `Active`; the breaker pauses the whole batch, incidents
//!     included (those still in the [`IncidentLane`] wait there for the next run), and the
//!     report lists what was not run. Incidents submitted while a batch runs pre-empt its
//!     remaining normal Items (§8.5 "priority lane that bypasses schedules").
//!
//! # Invariants (tested with `proptest-state-machine`, crashes before every effect)
//!
//! - never two current tokens: at most one stored version works at Plaid, and it is the
//!   current one;
//! - a token Plaid handed back is never lost unless the process died (or the answer was lost)
//!   between Plaid's commit and our stash, and then the Item is never `Active`: it ends
//!   `Orphaned` with an alert;
//! - every durable change of state has its audit record (the journal is a chain ending at the
//!   stored state);
//! - invalidate is sent at most once per attempt, and only after a durable sent marker; no
//!   invalidate while `Unknown`;
//! - token versions only grow; KEK: at most one primary, no version disabled or destroyed while
//!   it protects an envelope; a rewrap rerun is a no-op.
//!
//! # Drivers
//!
//! - [`Rotator`]: one Item at a time over `&dyn PlaidApi` and `&dyn Vault`. `rotate` takes the
//!   Item's lease (epoch-fenced), then runs the machine: `begin_attempt` (intent) →
//!   `mark_sent` (sent marker) → invalidate, once → `stash_new_token` (unconditional, retried:
//!   it is idempotent) → `promote_stashed` (CAS, to `Verifying`) → `/item/get` with the new
//!   token → `Active`. An ambiguous outcome is settled by probing the old token after
//!   [`RotatorConfig::probe_backoff`] (long enough for a request Plaid queued to land), with
//!   backoff, at most [`RotatorConfig::max_probes`] times per run. `recover` / `recover_item`
//!   rebuild the machine state from the store (`open_attempts` and the unfinished credential
//!   states) and feed `Recover`. `remove` drives `/item/remove`; `token_rejected` reconciles an
//!   Item whose token app traffic found dead. [`Rotator::resolve`] is the operator's way out
//!   of `Orphaned`, `Dead` and `Quarantined` (after relinking the user, removing the Item at
//!   Plaid, or closing a ticket): under the lease it feeds `OperatorResolved` and writes
//!   `Retired` with one compare-and-swap whose audit record carries the actor and
//!   `operator_resolved: <reason>`; any other state is refused
//!   ([`DriverError::NotResolvable`]), an Item already `Retired` is left untouched, and Plaid
//!   is not called. Alerts go to an [`AlertSink`] and into the [`RotationReport`]. A vault
//!   write that fails stops the run like a crash would.
//! - [`BatchRotator`]: `plan` (the dry run: order, lanes, skips and why), `run` (incident lane
//!   first, one [`RateLimiter`] token per Item, one limiter per Plaid client, then a random
//!   pause of up to [`BatchConfig::jitter`]). Incidents submitted to its [`IncidentLane`]
//!   while it runs pre-empt the remaining normal Items. A circuit breaker
//!   ([`BreakerPolicy`]: 5 failures in a row, or more than half of at least 10 Items, by
//!   default) pauses the batch; the report says why ([`BatchReport::breaker`]) and what was
//!   not run. A failure is an error or a rotation that did not end `Active`.
//! - [`RewrapRunner`]: the rewrap job over `Vault::rewrap_batch`, one limiter token per batch,
//!   a [`ProgressCallback`], state saved in a [`JobStore`] after every batch and resumed from
//!   it, verified at the end (nothing left under other versions, a sample opens). The
//!   [`VaultJobStore`] keeps the job in the vault (`Vault::save_rewrap_job`, compare-and-swapped
//!   on a revision so two runners never both advance one job): a crashed job resumes at its
//!   cursor with its counters. [`MemoryJobStore`] keeps it in memory (tests, one-shot tools).
//! - [`KekManager`]: the KEK machine over the vault's keyring, its lifecycle records saved in
//!   the vault; `disable` and `destroy` read `Vault::envelopes_under` first and are refused
//!   while any envelope is under the version; `destroy` also waits for the policy's grace
//!   period ([`kek::KekPolicy::destroy_grace`], 30 days by default) from the stored disable
//!   time.
//! - Incidents: [`token_leaked`] (rotate with `reason = compromise`, then probe the old token
//!   as evidence) and [`kek_compromised`] (promote a new primary if needed, mark compromised,
//!   rotate every token under the version in the incident lane, rewrap, disable).
//! - [`HealthDriver`]: applies [`HealthEvent`](health::HealthEvent)s, API errors and (feature
//!   `webhooks`) verified webhooks to the vault's health state.
//!
//! The drivers map the machine onto the vault's persisted states one to one, except
//! `Committing`, which the vault stores as `InFlight` with its attempt `stashed`. Attempts are
//! closed with `finish_attempt` as `not_sent` (recovered from `Intent`), `failed` (a known
//! reject, or Plaid said the token was already dead), `not_applied` (the probe found the old
//! token alive), `abandoned` (orphaned, or another worker's newer version adopted), or by the
//! promote as `committed`.
//!
//! What the drivers keep in the vault so a restart continues where it stopped: the health
//! `as_of` and deadline ([`HealthDriver`] applies events by their own time, a late delivery is
//! ignored and journalled as `health_ignored`, [`HealthDriver::tick`] applies a passed
//! deadline); the KEK lifecycle records ([`KekManager::load`]: the compromised flag and the
//! promoted / compromised / disabled / destroyed times, one `kek_state` audit record per
//! change; a version the vault has no record of, such as a fresh vault's first key, is
//! recorded as the manager found it before its first change, and
//! [`KekManager::promote_new_primary`] saves each phase, so the journal reads `v2 absent ->
//! staged`, `v1 primary -> decrypt_only`, `v2 staged -> primary`); each attempt's `maybe_applied` flag (set by the sent marker, cleared by a definite
//! "not applied"; `Reconcile` reads it) and the attempt of the last promote, so an Item
//! recovered in `Verifying` or `Quarantined` names its real attempt (a store written before
//! schema version 3 falls back to a placeholder id 0, left out of audit notes).
//!
//! # Features
//!
//! - `webhooks`: [`HealthEvent::from_webhook`](health::HealthEvent) maps verified
//!   `tokenward_plaid::webhooks::WebhookEvent`s to health inputs.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

mod batch;
mod driver;
pub mod health;
mod health_driver;
mod job_store;
mod jobs;
pub mod kek;
pub mod rewrap;
pub mod token;
mod types;

pub use batch::{
    BatchCallback, BatchConfig, BatchReport, BatchRotator, BreakerPolicy, BreakerTrip,
    IncidentLane, Lane, PlanEntry, RateLimiter, TokenBucket,
};
pub use driver::{
    AlertEvent, AlertSink, Clock, DriverError, RotationReport, Rotator, RotatorConfig, SystemClock,
};
pub use health_driver::{HealthDriver, HealthReport};
pub use job_store::{JobStore, JobStoreError, MemoryJobStore, VaultJobStore};
pub use jobs::{
    IncidentReport, KekError, KekManager, ProgressCallback, RewrapRunner, kek_compromised,
    token_leaked,
};
pub use types::{
    Actor, AttemptId, AuditEvent, MAX_ACTOR_LEN, Machine, RotationReason, Timestamp, TokenVersion,
    Transition, TransitionError,
};
