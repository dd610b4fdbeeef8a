//! The emulator's state: link and public tokens, Items, access tokens, change logs.

#![allow(
    clippy::inconsistent_digit_grouping,
    reason = "amounts in cents are written dollars_cents: 1_500_00 is $1,500.00"
)]

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use crate::data::{self, Account, DetRng, Txn};
use crate::ids::TokenKey;

/// A public token waiting to be exchanged.
#[derive(Debug)]
pub(crate) struct PublicEntry {
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) used: bool,
    pub(crate) institution_id: String,
    pub(crate) products: Vec<String>,
    pub(crate) webhook: Option<String>,
}

/// One change in an Item's transaction history, after its initial history.
#[derive(Debug, Clone)]
pub(crate) enum TxnEvent {
    Added(Txn),
    Modified(Txn),
    Removed {
        transaction_id: String,
        account_id: String,
    },
}

/// One Item.
#[derive(Debug)]
pub(crate) struct ItemState {
    pub(crate) item_id: String,
    pub(crate) institution_id: String,
    pub(crate) products: Vec<String>,
    pub(crate) webhook: Option<String>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) access_token: TokenKey,
    pub(crate) login_required: bool,
    pub(crate) updates: Vec<TxnEvent>,
    pub(crate) update_count: u64,
    pub(crate) last_webhook: Option<(DateTime<Utc>, String)>,
}

/// Everything the emulator holds. Tokens are indexed by their SHA-256 only.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub(crate) link_tokens: HashMap<TokenKey, DateTime<Utc>>,
    pub(crate) public_tokens: HashMap<TokenKey, PublicEntry>,
    pub(crate) items: HashMap<String, ItemState>,
    pub(crate) access_tokens: HashMap<TokenKey, String>,
    pub(crate) items_created: u64,
}

impl Store {
    /// Drops expired link and public tokens.
    pub(crate) fn prune(&mut self, now: DateTime<Utc>) {
        self.link_tokens.retain(|_, expires_at| *expires_at > now);
        self.public_tokens.retain(|_, entry| entry.expires_at > now);
    }

    /// The Item an access token belongs to.
    pub(crate) fn item_mut(&mut self, access_token: &str) -> Option<&mut ItemState> {
        let item_id = self.access_tokens.get(&TokenKey::of(access_token))?;
        self.items.get_mut(item_id)
    }

    /// Removes an Item and its access token.
    pub(crate) fn remove_item(&mut self, item_id: &str) -> bool {
        match self.items.remove(item_id) {
            Some(item) => {
                self.access_tokens.remove(&item.access_token);
                true
            }
            None => false,
        }
    }
}

/// An Item's view of its data, computed from the seed and its change log.
pub(crate) struct ItemData {
    pub(crate) accounts: Vec<Account>,
    /// The initial history, oldest first: change-log positions `0..base.len()`.
    pub(crate) base: Vec<Txn>,
}

impl ItemState {
    pub(crate) fn anchor(&self) -> NaiveDate {
        self.created_at.date_naive()
    }

    pub(crate) fn data(&self, seed: u64) -> ItemData {
        ItemData {
            accounts: data::accounts(seed, &self.item_id),
            base: data::transactions(seed, &self.item_id, self.anchor()),
        }
    }

    /// The number of changes in the log: the initial history, then the updates.
    pub(crate) fn log_len(&self, data: &ItemData) -> u64 {
        (data.base.len() + self.updates.len()) as u64
    }

    /// The change at `position` of the log.
    pub(crate) fn event<'a>(&'a self, data: &'a ItemData, position: u64) -> Option<EventRef<'a>> {
        let position = usize::try_from(position).ok()?;
        match data.base.get(position) {
            Some(txn) => Some(EventRef::Added(txn)),
            None => self
                .updates
                .get(position - data.base.len())
                .map(|e| match e {
                    TxnEvent::Added(t) => EventRef::Added(t),
                    TxnEvent::Modified(t) => EventRef::Modified(t),
                    TxnEvent::Removed {
                        transaction_id,
                        account_id,
                    } => EventRef::Removed {
                        transaction_id,
                        account_id,
                    },
                }),
        }
    }

    /// The Item's transactions now: the initial history with every update applied.
    pub(crate) fn current_transactions(&self, data: &ItemData) -> Vec<Txn> {
        let mut current: Vec<Txn> = data.base.clone();
        let mut index: HashMap<String, usize> = current
            .iter()
            .enumerate()
            .map(|(i, t)| (t.transaction_id.clone(), i))
            .collect();
        let mut removed = vec![false; current.len()];
        for event in &self.updates {
            match event {
                TxnEvent::Added(t) => {
                    index.insert(t.transaction_id.clone(), current.len());
                    current.push(t.clone());
                    removed.push(false);
                }
                TxnEvent::Modified(t) => {
                    if let Some(slot) = index
                        .get(&t.transaction_id)
                        .and_then(|&i| current.get_mut(i))
                    {
                        *slot = t.clone();
                    }
                }
                TxnEvent::Removed { transaction_id, .. } => {
                    if let Some(flag) = index.get(transaction_id).and_then(|&i| removed.get_mut(i))
                    {
                        *flag = true;
                    }
                }
            }
        }
        current
            .into_iter()
            .zip(removed)
            .filter(|(_, gone)| !gone)
            .map(|(t, _)| t)
            .collect()
    }

    /// Simulates new activity at the institution: pending transactions post (removed, then
    /// added as posted), the latest posted one is modified, and two new purchases arrive.
    /// Returns how many transactions were added.
    pub(crate) fn simulate_update(&mut self, seed: u64, today: NaiveDate) -> usize {
        let data = self.data(seed);
        let current = self.current_transactions(&data);
        self.update_count += 1;
        let mut rng = DetRng::from_parts(
            seed,
            &[
                self.item_id.as_bytes(),
                b"update",
                &self.update_count.to_be_bytes(),
            ],
        );
        // Ids of updates never collide with the initial history's.
        let mut next_index = 1_000_000 * self.update_count;
        let mut added = 0;
        for pending in current.iter().filter(|t| t.pending) {
            self.updates.push(TxnEvent::Removed {
                transaction_id: pending.transaction_id.clone(),
                account_id: pending.account_id.clone(),
            });
            let mut posted = pending.clone();
            posted.transaction_id =
                crate::ids::derived_id(&self.item_id, "transaction", next_index);
            next_index += 1;
            posted.pending = false;
            posted.pending_transaction_id = Some(pending.transaction_id.clone());
            self.updates.push(TxnEvent::Added(posted));
            added += 1;
        }
        if let Some(latest) = current.iter().rev().find(|t| !t.pending) {
            let mut modified = latest.clone();
            // A tip settled: the amount grows a little.
            modified.amount_cents += rng.range(1_00, 5_00);
            self.updates.push(TxnEvent::Modified(modified));
        }
        for txn in data::new_purchases(
            &mut rng,
            &self.item_id,
            &data.accounts,
            today,
            next_index,
            2,
        ) {
            self.updates.push(TxnEvent::Added(txn));
            added += 1;
        }
        added
    }
}

/// A borrowed change of the log.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EventRef<'a> {
    Added(&'a Txn),
    Modified(&'a Txn),
    Removed {
        transaction_id: &'a str,
        account_id: &'a str,
    },
}

impl EventRef<'_> {
    pub(crate) fn account_id(&self) -> &str {
        match self {
            EventRef::Added(t) | EventRef::Modified(t) => &t.account_id,
            EventRef::Removed { account_id, .. } => account_id,
        }
    }
}
