//! The endpoints: state transitions and Plaid-shaped responses.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::http::HeaderMap;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use ring::rand::SystemRandom;
use serde_json::{Map, Value, json};

use crate::config::Config;
use crate::cursor::CursorKey;
use crate::data::Account;
use crate::error::{ApiError, SandboxError};
use crate::faults::Faults;
use crate::fields::Fields;
use crate::ids::{self, TokenKey, TokenKind};
use crate::store::{EventRef, ItemState, PublicEntry, Store};
use crate::webhook::{Deliverer, KeyStore, WebhookDelivery};

/// The most changes kept in one Item's transaction log beyond its initial history.
const MAX_UPDATES_PER_ITEM: usize = 10_000;

/// `count` of `/transactions/get` and `/transactions/sync`: default and maximum.
const DEFAULT_COUNT: u64 = 100;
const MAX_COUNT: u64 = 500;

/// Plaid's sandbox institutions by id; other `ins_<digits>` ids are accepted with a generic
/// name.
const INSTITUTIONS: [(&str, &str); 6] = [
    ("ins_109508", "First Platypus Bank"),
    ("ins_109509", "First Gingham Credit Union"),
    ("ins_109510", "Tattersall Federal Credit Union"),
    ("ins_109511", "Tartan Bank"),
    ("ins_109512", "Houndstooth Bank"),
    ("ins_116834", "Flexible Platypus Open Banking (UK Bank)"),
];

/// The values of Plaid's `Products` enum the emulator accepts in product lists.
const PRODUCTS: [&str; 22] = [
    "assets",
    "auth",
    "balance",
    "balance_plus",
    "beacon",
    "identity",
    "identity_match",
    "investments",
    "investments_auth",
    "liabilities",
    "payment_initiation",
    "identity_verification",
    "transactions",
    "credit_details",
    "income",
    "income_verification",
    "standing_orders",
    "transfer",
    "employment",
    "recurring_transactions",
    "transactions_refresh",
    "signal",
];

/// The state shared by every request of one emulator.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) rng: SystemRandom,
    pub(crate) faults: Faults,
    pub(crate) deliverer: Deliverer,
    seed: u64,
    cursor_key: CursorKey,
    keys: Mutex<KeyStore>,
    store: Mutex<Store>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A webhook decided by a handler, sent after the state lock is released.
struct Outgoing {
    url: String,
    item_id: String,
    body: Value,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Result<Self, SandboxError> {
        let rng = SystemRandom::new();
        let seed = match config.seed {
            Some(seed) => seed,
            None => u64::from_be_bytes(ids::random_bytes(&rng).map_err(|_| SandboxError::Crypto)?),
        };
        let cursor_key =
            CursorKey::new(&ids::random_bytes::<32>(&rng).map_err(|_| SandboxError::Crypto)?);
        let keys = KeyStore::new(&rng, config.clock.now().timestamp())?;
        Ok(Shared {
            config,
            faults: Faults::default(),
            deliverer: Deliverer::new(),
            seed,
            cursor_key,
            keys: Mutex::new(keys),
            store: Mutex::new(Store::default()),
            rng,
        })
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn keys(&self) -> MutexGuard<'_, KeyStore> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> DateTime<Utc> {
        self.config.clock.now()
    }

    // ---- the Rust API behind `Emulator` ----

    pub(crate) fn rotate_webhook_key(&self) -> Result<String, SandboxError> {
        let now = self.now().timestamp();
        self.keys().rotate(&self.rng, now)
    }

    pub(crate) fn current_webhook_key_id(&self) -> String {
        self.keys().current_kid().unwrap_or_default().to_owned()
    }

    pub(crate) fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        self.deliverer.records()
    }

    pub(crate) fn item_count(&self) -> usize {
        self.store().items.len()
    }

    pub(crate) fn simulate_transactions_update(
        &self,
        item_id: &str,
    ) -> Result<usize, SandboxError> {
        let today = self.now().date_naive();
        let mut store = self.store();
        let item = store
            .items
            .get_mut(item_id)
            .ok_or(SandboxError::UnknownItem)?;
        if item.updates.len() >= MAX_UPDATES_PER_ITEM {
            return Err(SandboxError::Config("the item's transaction log is full"));
        }
        Ok(item.simulate_update(self.seed, today))
    }

    pub(crate) fn set_login_required(
        &self,
        item_id: &str,
        required: bool,
    ) -> Result<(), SandboxError> {
        let mut store = self.store();
        let item = store
            .items
            .get_mut(item_id)
            .ok_or(SandboxError::UnknownItem)?;
        item.login_required = required;
        Ok(())
    }

    // ---- requests ----

    /// Authenticates and runs one Plaid endpoint; the result lacks `request_id`.
    pub(crate) fn call(
        self: &Arc<Self>,
        endpoint: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Map<String, Value>, ApiError> {
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
            return Err(ApiError::invalid_body());
        };
        let fields = Fields::new(&map);
        self.authenticate(headers, &fields)?;
        let now = self.now();
        let (response, outgoing) = match endpoint {
            "/link/token/create" => (self.link_token_create(&fields, now)?, Vec::new()),
            "/sandbox/public_token/create" => (self.public_token_create(&fields, now)?, Vec::new()),
            "/item/public_token/exchange" => (self.exchange(&fields, now)?, Vec::new()),
            "/accounts/get" => (self.accounts_get(&fields, None)?, Vec::new()),
            "/accounts/balance/get" => {
                let time = now.to_rfc3339_opts(SecondsFormat::Secs, true);
                (self.accounts_get(&fields, Some(&time))?, Vec::new())
            }
            "/transactions/get" => (self.transactions_get(&fields)?, Vec::new()),
            "/transactions/sync" => (self.transactions_sync(&fields)?, Vec::new()),
            "/item/get" => (self.item_get(&fields)?, Vec::new()),
            "/item/remove" => (self.item_remove(&fields)?, Vec::new()),
            "/item/access_token/invalidate" => (self.invalidate(&fields)?, Vec::new()),
            "/item/webhook/update" => self.webhook_update(&fields, now)?,
            "/webhook_verification_key/get" => (self.key_get(&fields)?, Vec::new()),
            "/sandbox/item/fire_webhook" => self.fire_webhook(&fields, now)?,
            "/sandbox/item/reset_login" => self.reset_login(&fields, now)?,
            _ => return Err(ApiError::not_found()),
        };
        for webhook in outgoing {
            self.send_webhook(webhook, now);
        }
        match response {
            Value::Object(map) => Ok(map),
            _ => Err(ApiError::internal()),
        }
    }

    /// Checks the client id and secret from the headers (as the SDKs send them) or the body.
    fn authenticate(&self, headers: &HeaderMap, fields: &Fields<'_>) -> Result<(), ApiError> {
        let from_header = |name: &str| -> Result<Option<String>, ApiError> {
            match headers.get(name) {
                None => Ok(None),
                Some(value) => match value.to_str() {
                    Ok(s) => Ok(Some(s.to_owned())),
                    Err(_) => Err(ApiError::invalid_api_keys()),
                },
            }
        };
        let client_id = match from_header("plaid-client-id")? {
            Some(id) => Some(id),
            None => fields.str("client_id")?.map(str::to_owned),
        };
        let secret = match from_header("plaid-secret")? {
            Some(secret) => Some(secret),
            None => fields.str("secret")?.map(str::to_owned),
        };
        let client_id = client_id.filter(|s| !s.is_empty());
        let secret = secret.filter(|s| !s.is_empty());
        let (client_id, secret) = match (client_id, secret) {
            (Some(c), Some(s)) => (c, s),
            (c, s) => {
                let mut missing = Vec::new();
                if c.is_none() {
                    missing.push("client_id");
                }
                if s.is_none() {
                    missing.push("secret");
                }
                return Err(ApiError::missing_fields(&missing));
            }
        };
        if let Some((id_hash, secret_hash)) = &self.config.credentials {
            // Both compared in full, digests of equal length, no early exit.
            let id_ok = tokenward_redact::constant_time_eq(&sha256(client_id.as_bytes()), id_hash);
            let secret_ok =
                tokenward_redact::constant_time_eq(&sha256(secret.as_bytes()), secret_hash);
            if !(id_ok & secret_ok) {
                return Err(ApiError::invalid_api_keys());
            }
        }
        Ok(())
    }

    fn link_token_create(
        &self,
        fields: &Fields<'_>,
        now: DateTime<Utc>,
    ) -> Result<Value, ApiError> {
        fields.require(&["client_name", "language", "country_codes"])?;
        let _ = fields.req_str("client_name")?;
        let _ = fields.req_str("language")?;
        match fields.str_list("country_codes")? {
            Some(codes) if !codes.is_empty() => {}
            _ => {
                return Err(ApiError::invalid_field(
                    "country_codes must be a non-empty array",
                ));
            }
        }
        match fields.obj("user", "user")? {
            Some(user) => {
                user.req_str("client_user_id")?;
            }
            None if fields.str("user_id")?.is_some() || fields.str("user_token")?.is_some() => {}
            None => return Err(ApiError::missing_fields(&["user"])),
        }
        for list in [
            "products",
            "required_if_supported_products",
            "optional_products",
        ] {
            check_products(fields, list)?;
        }
        if let Some(url) = fields.str("webhook")? {
            check_url(url, "webhook")?;
        }
        let ttl = chrono::Duration::from_std(self.config.limits.link_token_ttl)
            .map_err(|_| ApiError::internal())?;
        let expiration = now + ttl;
        let token = ids::new_token(&self.rng, TokenKind::Link).map_err(|_| ApiError::internal())?;
        let mut store = self.store();
        // Update mode: the access token must name a live Item.
        if let Some(access_token) = fields.str("access_token")?
            && store.item_mut(access_token).is_none()
        {
            return Err(ApiError::invalid_access_token());
        }
        store.prune(now);
        if store.link_tokens.len() >= self.config.limits.max_link_tokens {
            return Err(ApiError::limit_reached("RATE_LIMIT", "link tokens"));
        }
        store.link_tokens.insert(TokenKey::of(&token), expiration);
        Ok(json!({
            "link_token": token,
            "expiration": expiration.to_rfc3339_opts(SecondsFormat::Secs, true),
        }))
    }

    fn public_token_create(
        &self,
        fields: &Fields<'_>,
        now: DateTime<Utc>,
    ) -> Result<Value, ApiError> {
        fields.require(&["institution_id", "initial_products"])?;
        let institution_id = fields.req_str("institution_id")?;
        institution_name(institution_id).ok_or_else(ApiError::invalid_institution)?;
        let products = check_products(fields, "initial_products")?.unwrap_or_default();
        if products.is_empty() {
            return Err(ApiError::invalid_field(
                "initial_products must not be empty",
            ));
        }
        let mut webhook = None;
        if let Some(options) = fields.obj("options", "options")? {
            if let Some(url) = options.str("webhook")? {
                check_url(url, "options.webhook")?;
                webhook = Some(url.to_owned());
            }
            let _ = options.str("override_username")?;
            let _ = options.str("override_password")?;
        }
        let ttl = chrono::Duration::from_std(self.config.limits.public_token_ttl)
            .map_err(|_| ApiError::internal())?;
        let token =
            ids::new_token(&self.rng, TokenKind::Public).map_err(|_| ApiError::internal())?;
        let mut store = self.store();
        store.prune(now);
        if store.public_tokens.len() >= self.config.limits.max_public_tokens {
            return Err(ApiError::limit_reached("RATE_LIMIT", "public tokens"));
        }
        store.public_tokens.insert(
            TokenKey::of(&token),
            PublicEntry {
                expires_at: now + ttl,
                used: false,
                institution_id: institution_id.to_owned(),
                products: products.iter().map(|p| (*p).to_owned()).collect(),
                webhook,
            },
        );
        Ok(json!({ "public_token": token }))
    }

    fn exchange(&self, fields: &Fields<'_>, now: DateTime<Utc>) -> Result<Value, ApiError> {
        let public_token = fields.req_str("public_token")?;
        let key = TokenKey::of(public_token);
        let access_token =
            ids::new_token(&self.rng, TokenKind::Access).map_err(|_| ApiError::internal())?;
        let mut store = self.store();
        let store = &mut *store;
        match store.public_tokens.get(&key) {
            None => {
                return Err(ApiError::invalid_public_token(
                    "could not find matching public token",
                ));
            }
            Some(entry) if entry.expires_at <= now => {
                return Err(ApiError::invalid_public_token(
                    "provided public token is expired. Public tokens expire 30 minutes after \
                     creation at which point they can no longer be exchanged",
                ));
            }
            Some(entry) if entry.used => {
                return Err(ApiError::invalid_public_token(
                    "provided public token has already been exchanged",
                ));
            }
            Some(_) => {}
        }
        if store.items.len() >= self.config.limits.max_items {
            return Err(ApiError::limit_reached("ADDITION_LIMIT", "Items"));
        }
        let item_id = self
            .new_item_id(store.items_created)
            .map_err(|_| ApiError::internal())?;
        let Some(entry) = store.public_tokens.get_mut(&key) else {
            return Err(ApiError::internal());
        };
        entry.used = true;
        let item = ItemState {
            item_id: item_id.clone(),
            institution_id: entry.institution_id.clone(),
            products: entry.products.clone(),
            webhook: entry.webhook.clone(),
            created_at: now,
            access_token: TokenKey::of(&access_token),
            login_required: false,
            updates: Vec::new(),
            update_count: 0,
            last_webhook: None,
        };
        store.items_created += 1;
        store
            .access_tokens
            .insert(item.access_token, item_id.clone());
        store.items.insert(item_id.clone(), item);
        Ok(json!({ "access_token": access_token, "item_id": item_id }))
    }

    fn new_item_id(&self, counter: u64) -> Result<String, ring::error::Unspecified> {
        Ok(match self.config.seed {
            Some(seed) => ids::derived_id(&format!("seed:{seed}"), "item", counter),
            None => ids::base62(&ids::random_bytes::<32>(&self.rng)?, ids::ID_LEN),
        })
    }

    /// Runs `f` on the Item of the request's `access_token`.
    fn with_item<T>(
        &self,
        fields: &Fields<'_>,
        f: impl FnOnce(&mut Store, &str) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let access_token = fields.req_str("access_token")?;
        let mut store = self.store();
        let item_id = store
            .item_mut(access_token)
            .map(|item| item.item_id.clone())
            .ok_or_else(ApiError::invalid_access_token)?;
        f(&mut store, &item_id)
    }

    /// Like [`Self::with_item`] for data endpoints: an Item that needs a new login refuses.
    fn with_healthy_item<T>(
        &self,
        fields: &Fields<'_>,
        f: impl FnOnce(&mut ItemState) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.with_item(fields, |store, item_id| {
            let item = store
                .items
                .get_mut(item_id)
                .ok_or_else(ApiError::invalid_access_token)?;
            if item.login_required {
                return Err(ApiError::item_login_required());
            }
            f(item)
        })
    }

    fn accounts_get(
        &self,
        fields: &Fields<'_>,
        balance_time: Option<&str>,
    ) -> Result<Value, ApiError> {
        let filter = match fields.obj("options", "options")? {
            Some(options) => options.str_list("account_ids")?,
            None => None,
        };
        let filter: Option<Vec<String>> =
            filter.map(|ids| ids.into_iter().map(str::to_owned).collect());
        self.with_healthy_item(fields, |item| {
            let accounts = crate::data::accounts(self.seed, &item.item_id);
            let selected = select_accounts(&accounts, filter.as_deref())?;
            Ok(json!({
                "accounts": selected.iter().map(|a| a.to_json(balance_time)).collect::<Vec<_>>(),
                "item": self.item_json(item, false),
            }))
        })
    }

    fn transactions_get(&self, fields: &Fields<'_>) -> Result<Value, ApiError> {
        fields.require(&["access_token", "start_date", "end_date"])?;
        let start = parse_date(fields, "start_date")?;
        let end = parse_date(fields, "end_date")?;
        if start > end {
            return Err(ApiError::invalid_field(
                "start_date must not be after end_date",
            ));
        }
        let (count, offset, filter) = match fields.obj("options", "options")? {
            Some(options) => (
                options.u64_at_most("count", MAX_COUNT)?,
                options.u64_at_most("offset", u64::from(u32::MAX))?,
                options.str_list("account_ids")?,
            ),
            None => (None, None, None),
        };
        let count = count.unwrap_or(DEFAULT_COUNT);
        if count == 0 {
            return Err(ApiError::invalid_field(
                "options.count must be between 1 and 500",
            ));
        }
        let offset = usize::try_from(offset.unwrap_or(0)).unwrap_or(usize::MAX);
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        let filter: Option<Vec<String>> =
            filter.map(|ids| ids.into_iter().map(str::to_owned).collect());
        self.with_healthy_item(fields, |item| {
            let data = item.data(self.seed);
            let selected = select_accounts(&data.accounts, filter.as_deref())?;
            let mut txns: Vec<_> = item
                .current_transactions(&data)
                .into_iter()
                .filter(|t| t.date >= start && t.date <= end)
                .filter(|t| selected.iter().any(|a| a.account_id == t.account_id))
                .collect();
            // Newest first, as Plaid returns them (the sort is stable).
            txns.reverse();
            txns.sort_by_key(|t| std::cmp::Reverse(t.date));
            let total = txns.len();
            let page: Vec<Value> = txns
                .iter()
                .skip(offset)
                .take(count)
                .map(crate::data::Txn::to_json)
                .collect();
            Ok(json!({
                "accounts": selected.iter().map(|a| a.to_json(None)).collect::<Vec<_>>(),
                "transactions": page,
                "total_transactions": total,
                "item": self.item_json(item, false),
            }))
        })
    }

    fn transactions_sync(&self, fields: &Fields<'_>) -> Result<Value, ApiError> {
        let cursor = fields.str("cursor")?.unwrap_or("");
        let count = fields
            .u64_at_most("count", MAX_COUNT)?
            .unwrap_or(DEFAULT_COUNT);
        if count == 0 {
            return Err(ApiError::invalid_field("count must be between 1 and 500"));
        }
        let account_filter = match fields.obj("options", "options")? {
            Some(options) => options.str("account_id")?.map(str::to_owned),
            None => None,
        };
        self.with_healthy_item(fields, |item| {
            let data = item.data(self.seed);
            if let Some(account_id) = &account_filter
                && !data.accounts.iter().any(|a| &a.account_id == account_id)
            {
                return Err(ApiError::invalid_account_id());
            }
            let len = item.log_len(&data);
            let start = if cursor.is_empty() {
                0
            } else {
                match self.cursor_key.open(&item.item_id, cursor) {
                    Some(position) if position <= len => position,
                    _ => {
                        return Err(ApiError::invalid_field(
                            "cursor is not a cursor returned by /transactions/sync for this Item",
                        ));
                    }
                }
            };
            let matches = |e: &EventRef<'_>| {
                account_filter
                    .as_deref()
                    .is_none_or(|id| e.account_id() == id)
            };
            let (mut added, mut modified, mut removed) = (Vec::new(), Vec::new(), Vec::new());
            let mut position = start;
            let mut taken = 0;
            while position < len && taken < count {
                if let Some(event) = item.event(&data, position)
                    && matches(&event)
                {
                    taken += 1;
                    match event {
                        EventRef::Added(t) => added.push(t.to_json()),
                        EventRef::Modified(t) => modified.push(t.to_json()),
                        EventRef::Removed {
                            transaction_id,
                            account_id,
                        } => removed.push(
                            json!({"transaction_id": transaction_id, "account_id": account_id}),
                        ),
                    }
                }
                position += 1;
            }
            let has_more =
                (position..len).any(|p| item.event(&data, p).is_some_and(|e| matches(&e)));
            let accounts: Vec<Value> = data
                .accounts
                .iter()
                .filter(|a| {
                    account_filter
                        .as_deref()
                        .is_none_or(|id| a.account_id == id)
                })
                .map(|a| a.to_json(None))
                .collect();
            Ok(json!({
                "accounts": accounts,
                "added": added,
                "modified": modified,
                "removed": removed,
                "next_cursor": self.cursor_key.seal(&item.item_id, position),
                "has_more": has_more,
                "transactions_update_status": "HISTORICAL_UPDATE_COMPLETE",
            }))
        })
    }

    fn item_get(&self, fields: &Fields<'_>) -> Result<Value, ApiError> {
        self.with_item(fields, |store, item_id| {
            let item = store
                .items
                .get(item_id)
                .ok_or_else(ApiError::invalid_access_token)?;
            let created = item.created_at.to_rfc3339_opts(SecondsFormat::Secs, true);
            let last_webhook = item.last_webhook.as_ref().map(|(at, code)| {
                json!({"sent_at": at.to_rfc3339_opts(SecondsFormat::Secs, true), "code_sent": code})
            });
            let (success, failure) = if item.login_required {
                (None, Some(created.clone()))
            } else {
                (Some(created), None)
            };
            Ok(json!({
                "item": self.item_json(item, true),
                "status": {
                    "investments": null,
                    "transactions": {
                        "last_successful_update": success,
                        "last_failed_update": failure,
                    },
                    "last_webhook": last_webhook,
                },
            }))
        })
    }

    fn item_remove(&self, fields: &Fields<'_>) -> Result<Value, ApiError> {
        self.with_item(fields, |store, item_id| {
            store.remove_item(item_id);
            Ok(json!({}))
        })
    }

    fn invalidate(&self, fields: &Fields<'_>) -> Result<Value, ApiError> {
        let new_token =
            ids::new_token(&self.rng, TokenKind::Access).map_err(|_| ApiError::internal())?;
        let new_key = TokenKey::of(&new_token);
        self.with_item(fields, |store, item_id| {
            let item = store
                .items
                .get_mut(item_id)
                .ok_or_else(ApiError::invalid_access_token)?;
            let old = std::mem::replace(&mut item.access_token, new_key);
            store.access_tokens.remove(&old);
            store.access_tokens.insert(new_key, item_id.to_owned());
            Ok(json!({ "new_access_token": new_token }))
        })
    }

    fn webhook_update(
        &self,
        fields: &Fields<'_>,
        now: DateTime<Utc>,
    ) -> Result<(Value, Vec<Outgoing>), ApiError> {
        let webhook = fields.str("webhook")?;
        if let Some(url) = webhook {
            check_url(url, "webhook")?;
        }
        self.with_item(fields, |store, item_id| {
            let item = store
                .items
                .get_mut(item_id)
                .ok_or_else(ApiError::invalid_access_token)?;
            item.webhook = webhook.map(str::to_owned);
            let mut outgoing = Vec::new();
            if let Some(url) = webhook {
                item.last_webhook = Some((now, "WEBHOOK_UPDATE_ACKNOWLEDGED".to_owned()));
                outgoing.push(Outgoing {
                    url: url.to_owned(),
                    item_id: item_id.to_owned(),
                    body: json!({
                        "webhook_type": "ITEM",
                        "webhook_code": "WEBHOOK_UPDATE_ACKNOWLEDGED",
                        "item_id": item_id,
                        "new_webhook_url": url,
                        "error": null,
                        "environment": "sandbox",
                    }),
                });
            }
            Ok((json!({ "item": self.item_json(item, false) }), outgoing))
        })
    }

    fn key_get(&self, fields: &Fields<'_>) -> Result<Value, ApiError> {
        let key_id = fields.req_str("key_id")?;
        let keys = self.keys();
        let jwk = keys.jwk(key_id).ok_or_else(ApiError::invalid_key_id)?;
        let key = serde_json::to_value(jwk).map_err(|_| ApiError::internal())?;
        Ok(json!({ "key": key }))
    }

    fn fire_webhook(
        &self,
        fields: &Fields<'_>,
        now: DateTime<Utc>,
    ) -> Result<(Value, Vec<Outgoing>), ApiError> {
        fields.require(&["access_token", "webhook_code"])?;
        let code = fields.req_str("webhook_code")?;
        let expected_type = match code {
            "DEFAULT_UPDATE" | "SYNC_UPDATES_AVAILABLE" | "RECURRING_TRANSACTIONS_UPDATE" => {
                "TRANSACTIONS"
            }
            "NEW_ACCOUNTS_AVAILABLE"
            | "ERROR"
            | "LOGIN_REPAIRED"
            | "USER_PERMISSION_REVOKED"
            | "USER_ACCOUNT_REVOKED"
            | "PENDING_DISCONNECT"
            | "PENDING_EXPIRATION" => "ITEM",
            _ => {
                return Err(ApiError::invalid_field(
                    "webhook_code is not one the sandbox can fire for this Item",
                ));
            }
        };
        if let Some(webhook_type) = fields.str("webhook_type")?
            && webhook_type != expected_type
        {
            return Err(ApiError::invalid_field(
                "webhook_type does not match webhook_code",
            ));
        }
        let seed = self.seed;
        self.with_item(fields, |store, item_id| {
            let item = store
                .items
                .get_mut(item_id)
                .ok_or_else(ApiError::invalid_access_token)?;
            let url = item.webhook.clone().ok_or_else(ApiError::no_webhook)?;
            let later =
                (now + chrono::Duration::days(7)).to_rfc3339_opts(SecondsFormat::Secs, true);
            let mut body = json!({
                "webhook_type": expected_type,
                "webhook_code": code,
                "item_id": item_id,
                "environment": "sandbox",
            });
            let extra = match code {
                "DEFAULT_UPDATE" | "SYNC_UPDATES_AVAILABLE" => {
                    if item.updates.len() >= MAX_UPDATES_PER_ITEM {
                        return Err(ApiError::limit_reached("RATE_LIMIT", "transaction updates"));
                    }
                    let added = item.simulate_update(seed, now.date_naive());
                    if code == "DEFAULT_UPDATE" {
                        json!({"new_transactions": added, "error": null})
                    } else {
                        json!({"initial_update_complete": true, "historical_update_complete": true})
                    }
                }
                "RECURRING_TRANSACTIONS_UPDATE" => json!({
                    "account_ids": crate::data::accounts(seed, item_id)
                        .iter().map(|a| a.account_id.clone()).collect::<Vec<_>>(),
                }),
                "NEW_ACCOUNTS_AVAILABLE" => json!({"error": null}),
                "ERROR" => json!({"error": ApiError::item_login_required().embedded(true)}),
                "LOGIN_REPAIRED" => {
                    item.login_required = false;
                    json!({})
                }
                "USER_PERMISSION_REVOKED" => json!({"error": ApiError {
                    status: axum::http::StatusCode::BAD_REQUEST,
                    error_type: "ITEM_ERROR",
                    error_code: "USER_PERMISSION_REVOKED",
                    message: "the user has revoked access to this item".to_owned(),
                    display_message: None,
                }.embedded(true)}),
                "USER_ACCOUNT_REVOKED" => json!({
                    "account_id": crate::data::accounts(seed, item_id)
                        .first().map(|a| a.account_id.clone()),
                }),
                "PENDING_DISCONNECT" => json!({
                    "reason": "INSTITUTION_TOKEN_EXPIRATION",
                    "disconnect_time": later,
                }),
                _ => json!({"consent_expiration_time": later}),
            };
            if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
                body.extend(extra);
            }
            item.last_webhook = Some((now, code.to_owned()));
            let outgoing = vec![Outgoing {
                url,
                item_id: item_id.to_owned(),
                body,
            }];
            Ok((json!({ "webhook_fired": true }), outgoing))
        })
    }

    fn reset_login(
        &self,
        fields: &Fields<'_>,
        now: DateTime<Utc>,
    ) -> Result<(Value, Vec<Outgoing>), ApiError> {
        self.with_item(fields, |store, item_id| {
            let item = store
                .items
                .get_mut(item_id)
                .ok_or_else(ApiError::invalid_access_token)?;
            item.login_required = true;
            // Plaid tells the Item's webhook that it needs a login.
            let mut outgoing = Vec::new();
            if let Some(url) = item.webhook.clone() {
                item.last_webhook = Some((now, "ERROR".to_owned()));
                outgoing.push(Outgoing {
                    url,
                    item_id: item_id.to_owned(),
                    body: json!({
                        "webhook_type": "ITEM",
                        "webhook_code": "ERROR",
                        "item_id": item_id,
                        "error": ApiError::item_login_required().embedded(true),
                        "environment": "sandbox",
                    }),
                });
            }
            Ok((json!({ "reset_login": true }), outgoing))
        })
    }

    /// Plaid's `Item` object; `with_consent` adds the `/item/get` fields (`created_at`, the
    /// error while a login is required).
    fn item_json(&self, item: &ItemState, with_consent: bool) -> Value {
        let available: Vec<&str> = [
            "assets",
            "auth",
            "balance",
            "identity",
            "investments",
            "liabilities",
        ]
        .into_iter()
        .filter(|p| !item.products.iter().any(|q| q == p))
        .collect();
        let mut value = json!({
            "item_id": item.item_id,
            "institution_id": item.institution_id,
            "institution_name": institution_name(&item.institution_id),
            "webhook": item.webhook,
            "auth_method": null,
            "error": null,
            "available_products": available,
            "billed_products": item.products,
            "products": item.products,
            "consented_products": item.products,
            "consent_expiration_time": null,
            "update_type": "background",
        });
        if with_consent && let Value::Object(map) = &mut value {
            {
                map.insert(
                    "created_at".to_owned(),
                    Value::String(item.created_at.to_rfc3339_opts(SecondsFormat::Secs, true)),
                );
                if item.login_required {
                    map.insert(
                        "error".to_owned(),
                        ApiError::item_login_required().embedded(false),
                    );
                }
            }
        }
        let _ = self;
        value
    }

    /// Signs and sends a webhook in the background.
    fn send_webhook(self: &Arc<Self>, webhook: Outgoing, now: DateTime<Utc>) {
        // Two-space indentation, as Plaid sends (the body hash depends on it).
        let Ok(body) = serde_json::to_vec_pretty(&webhook.body) else {
            return;
        };
        let Some(jwt) = self.keys().sign(&self.rng, &body, now.timestamp()) else {
            return;
        };
        let field = |name: &str| {
            webhook
                .body
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let record = WebhookDelivery {
            url: webhook.url.clone(),
            webhook_type: field("webhook_type"),
            webhook_code: field("webhook_code"),
            item_id: webhook.item_id,
            status: None,
            error: None,
        };
        let shared = Arc::clone(self);
        tokio::spawn(async move { shared.deliverer.deliver(record, body, jwt).await });
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0_u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// The SHA-256 digests the emulator keeps of fixed credentials.
pub(crate) fn credential_digests(client_id: &str, secret: &str) -> ([u8; 32], [u8; 32]) {
    (sha256(client_id.as_bytes()), sha256(secret.as_bytes()))
}

fn institution_name(institution_id: &str) -> Option<&'static str> {
    if let Some((_, name)) = INSTITUTIONS.iter().find(|(id, _)| *id == institution_id) {
        return Some(name);
    }
    let digits = institution_id.strip_prefix("ins_")?;
    (!digits.is_empty() && digits.len() <= 12 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some("Sandbox Institution")
}

fn check_products<'a>(fields: &Fields<'a>, name: &str) -> Result<Option<Vec<&'a str>>, ApiError> {
    let products = fields.str_list(name)?;
    if let Some(products) = &products
        && products.iter().any(|p| !PRODUCTS.contains(p))
    {
        return Err(ApiError::invalid_field(format!(
            "{name} contains an unknown product"
        )));
    }
    Ok(products)
}

fn check_url(url: &str, name: &str) -> Result<(), ApiError> {
    let ok = url.len() <= 2048
        && url.parse::<axum::http::Uri>().ok().is_some_and(|uri| {
            matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some()
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_field(format!(
            "{name} must be a valid URL"
        )))
    }
}

fn parse_date(fields: &Fields<'_>, name: &str) -> Result<NaiveDate, ApiError> {
    let value = fields.req_str(name)?;
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| ApiError::invalid_field(format!("{name} must be a date in YYYY-MM-DD format")))
}

fn select_accounts<'a>(
    accounts: &'a [Account],
    filter: Option<&[String]>,
) -> Result<Vec<&'a Account>, ApiError> {
    match filter {
        None => Ok(accounts.iter().collect()),
        Some(ids) => {
            if ids
                .iter()
                .any(|id| !accounts.iter().any(|a| &a.account_id == id))
            {
                return Err(ApiError::invalid_account_id());
            }
            Ok(accounts
                .iter()
                .filter(|a| ids.contains(&a.account_id))
                .collect())
        }
    }
}
