//! The KEK lifecycle: staged → primary → decrypt-only → disabled → destroyed, and compromised.

use std::collections::BTreeMap;

use chrono::Duration;
use tokenward_envelope::KeyVersion;

use crate::types::{AuditEvent, Machine, Timestamp, Transition, TransitionError};

/// How long a version stays disabled before it may be destroyed, by default (backups that
/// still hold envelopes under it must age out first).
pub const DEFAULT_DESTROY_GRACE: Duration = Duration::days(30);

/// The lifecycle state of one KEK version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KekState {
    /// Loaded everywhere, opens, does not seal yet (first phase of a promotion).
    Staged,
    /// Seals new envelopes and is the rewrap target. At most one version.
    Primary,
    /// A former primary: opens, never seals.
    DecryptOnly,
    /// May have leaked: opens (to rotate and rewrap away from it), never seals. Every token
    /// under it must be rotated and every envelope rewrapped before it is disabled.
    Compromised {
        /// Since when.
        since: Timestamp,
    },
    /// Neither opens nor seals; reversible.
    Disabled {
        /// Since when.
        since: Timestamp,
    },
    /// Key material erased. Terminal.
    Destroyed {
        /// Since when.
        since: Timestamp,
    },
}

impl KekState {
    /// The stable snake-case name.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            KekState::Staged => "staged",
            KekState::Primary => "primary",
            KekState::DecryptOnly => "decrypt_only",
            KekState::Compromised { .. } => "compromised",
            KekState::Disabled { .. } => "disabled",
            KekState::Destroyed { .. } => "destroyed",
        }
    }

    /// Whether envelopes under this version can be opened.
    #[must_use]
    pub const fn can_decrypt(&self) -> bool {
        matches!(
            self,
            KekState::Staged
                | KekState::Primary
                | KekState::DecryptOnly
                | KekState::Compromised { .. }
        )
    }
}

/// The lifecycle of every KEK version of one keyring.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KekRing {
    versions: BTreeMap<KeyVersion, KekState>,
}

impl KekRing {
    /// An empty ring.
    #[must_use]
    pub fn new() -> Self {
        KekRing::default()
    }

    /// A ring from persisted states.
    #[must_use]
    pub fn from_states(states: impl IntoIterator<Item = (KeyVersion, KekState)>) -> Self {
        KekRing {
            versions: states.into_iter().collect(),
        }
    }

    /// The state of `version`.
    #[must_use]
    pub fn state(&self, version: KeyVersion) -> Option<KekState> {
        self.versions.get(&version).copied()
    }

    /// The primary version.
    #[must_use]
    pub fn primary(&self) -> Option<KeyVersion> {
        self.versions
            .iter()
            .find(|(_, state)| **state == KekState::Primary)
            .map(|(version, _)| *version)
    }

    /// Every version and its state, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (KeyVersion, KekState)> + '_ {
        self.versions.iter().map(|(v, s)| (*v, *s))
    }
}

/// What the store says about the envelopes and tokens under one version (the guards).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Envelopes whose KEK version is this one.
    pub envelopes: u64,
    /// For a compromised version: tokens sealed under it that were not rotated since.
    pub unrotated_tokens: u64,
}

/// An input of the KEK machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KekInput {
    /// A new version was generated or imported (and is being distributed).
    Stage {
        /// The version, newer than every known one.
        version: KeyVersion,
    },
    /// Make a staged version primary; the old primary becomes decrypt-only.
    Promote {
        /// The staged version.
        version: KeyVersion,
        /// Every instance reports the version loaded (the two-phase guard).
        loaded_everywhere: bool,
    },
    /// The version may have leaked.
    MarkCompromised {
        /// The version (not the primary: promote a new one first).
        version: KeyVersion,
    },
    /// Stop opening envelopes under the version.
    Disable {
        /// The version.
        version: KeyVersion,
        /// The store's counts for it, read just before.
        usage: Usage,
    },
    /// Undo a disable.
    Enable {
        /// The version.
        version: KeyVersion,
    },
    /// Erase the key material.
    Destroy {
        /// The version.
        version: KeyVersion,
        /// The store's counts for it.
        usage: Usage,
    },
}

impl KekInput {
    /// The stable snake-case name.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            KekInput::Stage { .. } => "stage",
            KekInput::Promote { .. } => "promote",
            KekInput::MarkCompromised { .. } => "mark_compromised",
            KekInput::Disable { .. } => "disable",
            KekInput::Enable { .. } => "enable",
            KekInput::Destroy { .. } => "destroy",
        }
    }

    fn version(&self) -> KeyVersion {
        match self {
            KekInput::Stage { version }
            | KekInput::Promote { version, .. }
            | KekInput::MarkCompromised { version }
            | KekInput::Disable { version, .. }
            | KekInput::Enable { version }
            | KekInput::Destroy { version, .. } => *version,
        }
    }
}

/// A command of the KEK machine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KekCommand {
    /// Write: persist the ring's states (with the audit records).
    SaveRing,
    /// Apply to the keyring: promote `version` (the old primary becomes decrypt-only).
    KeyringPromote(KeyVersion),
    /// Apply to the keyring: disable `version`.
    KeyringDisable(KeyVersion),
    /// Apply to the keyring: enable `version` again.
    KeyringEnable(KeyVersion),
    /// Apply to the keyring: destroy `version`.
    KeyringDestroy(KeyVersion),
    /// Incident: rotate every Plaid token sealed under `version` (reason `KekCompromise`),
    /// then rewrap what remains.
    RotateTokensUnder(KeyVersion),
    /// Raise an alert: `version` is compromised.
    RaiseAlert(KeyVersion),
}

impl KekCommand {
    /// Whether the command writes to the store.
    #[must_use]
    pub const fn is_write(&self) -> bool {
        matches!(self, KekCommand::SaveRing)
    }
}

/// The KEK machine's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KekPolicy {
    /// How long a version stays disabled before it may be destroyed.
    pub destroy_grace: Duration,
}

impl Default for KekPolicy {
    fn default() -> Self {
        KekPolicy {
            destroy_grace: DEFAULT_DESTROY_GRACE,
        }
    }
}

/// One step of the KEK machine under the default policy; see [`KekPolicy::step`].
///
/// # Errors
///
/// As [`KekPolicy::step`].
pub fn step(
    ring: &KekRing,
    input: KekInput,
    now: Timestamp,
) -> Result<Transition<KekRing, KekCommand>, TransitionError> {
    KekPolicy::default().step(ring, input, now)
}

impl KekPolicy {
    /// One step. Pure. Every change yields one audit record per version whose state changed
    /// (a promotion changes two); the first command is then `SaveRing`.
    ///
    /// # Errors
    ///
    /// [`TransitionError::Illegal`] for an input the version's state does not accept (or an
    /// unknown version); [`TransitionError::Refused`] when a guard fails: promotion before
    /// the version is loaded everywhere, disabling or destroying a version that still
    /// protects an envelope (or, compromised, a token not yet rotated), destroying before
    /// the grace period, marking the primary compromised.
    #[allow(clippy::too_many_lines)] // the transition table reads best whole
    pub fn step(
        &self,
        ring: &KekRing,
        input: KekInput,
        now: Timestamp,
    ) -> Result<Transition<KekRing, KekCommand>, TransitionError> {
        use KekCommand as C;
        use KekState as K;

        let version = input.version();
        let current = ring.state(version);
        let name = input.name();
        let illegal = || TransitionError::Illegal {
            machine: Machine::Kek,
            state: current.map_or("absent", |s| s.name()),
            input: name,
        };
        let refuse = |guard: String| TransitionError::Refused {
            machine: Machine::Kek,
            state: current.map_or("absent", |s| s.name()),
            input: name,
            guard,
        };

        let mut next = ring.clone();
        let set = |v: KeyVersion, to: KekState, next: &mut KekRing| {
            next.versions.insert(v, to);
        };
        let mut commands = vec![C::SaveRing];
        let mut note = None;

        match (current, &input) {
            (None, KekInput::Stage { .. }) => {
                if ring.versions.keys().any(|known| *known >= version) {
                    return Err(refuse(
                        "a staged version must be newer than every known one".into(),
                    ));
                }
                set(version, K::Staged, &mut next);
            }
            (
                Some(K::Staged),
                KekInput::Promote {
                    loaded_everywhere, ..
                },
            ) => {
                if !loaded_everywhere {
                    return Err(refuse("not every instance has loaded the version".into()));
                }
                if let Some(old) = ring.primary() {
                    set(old, K::DecryptOnly, &mut next);
                    note = Some(format!("{old:?} demoted to decrypt_only"));
                }
                set(version, K::Primary, &mut next);
                commands.push(C::KeyringPromote(version));
            }
            (Some(K::Primary), KekInput::MarkCompromised { .. }) => {
                return Err(refuse(
                    "the primary still seals: promote a new version first".into(),
                ));
            }
            (
                Some(K::Staged | K::DecryptOnly | K::Disabled { .. }),
                KekInput::MarkCompromised { .. },
            ) => {
                set(version, K::Compromised { since: now }, &mut next);
                commands.push(C::RaiseAlert(version));
                commands.push(C::RotateTokensUnder(version));
            }
            (Some(K::Compromised { .. }), KekInput::MarkCompromised { .. }) => {
                // Idempotent: the incident is already under way.
                return Ok(Transition {
                    state: ring.clone(),
                    commands: Vec::new(),
                    audit: None,
                });
            }
            (Some(K::DecryptOnly | K::Compromised { .. }), KekInput::Disable { usage, .. }) => {
                if usage.envelopes > 0 {
                    return Err(refuse(format!(
                        "{} envelope(s) are still sealed under the version",
                        usage.envelopes
                    )));
                }
                if matches!(current, Some(K::Compromised { .. })) && usage.unrotated_tokens > 0 {
                    return Err(refuse(format!(
                        "{} token(s) sealed under the compromised version are not rotated",
                        usage.unrotated_tokens
                    )));
                }
                set(version, K::Disabled { since: now }, &mut next);
                commands.push(C::KeyringDisable(version));
            }
            (Some(K::Disabled { .. }), KekInput::Enable { .. }) => {
                set(version, K::DecryptOnly, &mut next);
                commands.push(C::KeyringEnable(version));
            }
            (Some(K::Disabled { since }), KekInput::Destroy { usage, .. }) => {
                if usage.envelopes > 0 {
                    return Err(refuse(format!(
                        "{} envelope(s) are still sealed under the version",
                        usage.envelopes
                    )));
                }
                if now - since < self.destroy_grace {
                    return Err(refuse("the disable grace period has not elapsed".into()));
                }
                set(version, K::Destroyed { since: now }, &mut next);
                commands.push(C::KeyringDestroy(version));
            }
            _ => return Err(illegal()),
        }
        let to = next.state(version).map_or("absent", |s| s.name());
        let mut audit = AuditEvent::new(
            Machine::Kek,
            name,
            current.map_or("absent", |s| s.name()),
            to,
            now,
        );
        audit.key_version = Some(version.get());
        // A promotion changes two versions; the record of the promoted one names the other.
        audit.reason = note;
        Ok(Transition {
            state: next,
            commands,
            audit: Some(audit),
        })
    }
}
