//! Setup the rotation tests share: the clock they stamp records with, and an Item linked at the
//! emulator and stored in a vault in memory.
#![allow(
    clippy::unwrap_used,
    dead_code,
    unreachable_pub,
    reason = "test support: failures should be loud; not every test file uses every function"
)]

use std::sync::Arc;

use tokenward_envelope::{Cipher, Keyring};
use tokenward_plaid::models::{
    ItemPublicTokenExchangeRequest, Product, SandboxPublicTokenCreateRequest,
};
use tokenward_plaid::{HttpPlaidClient, PlaidApi};
use tokenward_redact::AccessToken;
use tokenward_vault::{AuditNote, ItemId, SqlVault, Timestamp, UserId, Vault};

/// Now, as a vault timestamp.
pub fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now()).unwrap()
}

/// Links an Item at the emulator behind `api` (a sandbox public token, exchanged) and stores
/// its access token for `user-1` in a new `SQLite` vault in memory under a new keyring.
pub async fn linked_item(api: &HttpPlaidClient) -> (SqlVault, ItemId, AccessToken) {
    let created = api
        .sandbox_public_token_create(&SandboxPublicTokenCreateRequest::new(
            "ins_109508",
            vec![Product::Transactions],
        ))
        .await
        .unwrap();
    let exchanged = api
        .item_public_token_exchange(&ItemPublicTokenExchangeRequest::new(created.public_token))
        .await
        .unwrap();
    let cipher = Cipher::new(Arc::new(Keyring::generate().unwrap()));
    let vault = SqlVault::sqlite_memory(cipher).await.unwrap();
    let item = ItemId::new(exchanged.item_id.clone()).unwrap();
    vault
        .insert_item(
            &item,
            &UserId::new("user-1").unwrap(),
            &exchanged.access_token,
            &AuditNote::new("test", "exchanged").unwrap(),
            now(),
        )
        .await
        .unwrap();
    (vault, item, exchanged.access_token)
}
