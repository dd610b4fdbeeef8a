//! `tokenward resolve`: an operator closes an Item that no rotation can bring back
//! (`orphaned`, `dead`, `quarantined`), moving it to `retired` through the rotation driver.

use async_trait::async_trait;
use serde_json::json;
use tokenward_plaid::models::{
    AccountsBalanceGetRequest, AccountsBalanceGetResponse, AccountsGetRequest, AccountsGetResponse,
    ItemAccessTokenInvalidateRequest, ItemAccessTokenInvalidateResponse, ItemGetRequest,
    ItemGetResponse, ItemPublicTokenExchangeRequest, ItemPublicTokenExchangeResponse,
    ItemRemoveRequest, ItemRemoveResponse, ItemWebhookUpdateRequest, ItemWebhookUpdateResponse,
    LinkTokenCreateRequest, LinkTokenCreateResponse, SandboxItemFireWebhookRequest,
    SandboxItemFireWebhookResponse, SandboxItemResetLoginRequest, SandboxItemResetLoginResponse,
    SandboxPublicTokenCreateRequest, SandboxPublicTokenCreateResponse, TransactionsGetRequest,
    TransactionsGetResponse, TransactionsSyncRequest, TransactionsSyncResponse,
    WebhookVerificationKeyGetRequest, WebhookVerificationKeyGetResponse,
};
use tokenward_plaid::{Endpoint, Outcome, PlaidApi, TransportKind};
use tokenward_rotation::{Actor, DriverError, Rotator};
use tokenward_vault::{CredentialState, ItemId, LeaseError, ReadError, Vault as _};

use crate::cli::{ListFormat, ResolveArgs};
use crate::config::Global;
use crate::failure::{Code, Failure};
use crate::keys::write_stdout;

pub(crate) async fn run(global: &Global, args: ResolveArgs) -> Result<(), Failure> {
    let item =
        ItemId::new(args.item.trim()).map_err(|e| Failure::caused(Code::Usage, "--item", &e))?;
    let actor = crate::rotate::actor(&args.actor)?;
    if args.note.trim().is_empty() {
        return Err(Failure::new(
            Code::Usage,
            "--note must say why (a ticket, what was done at Plaid)",
        ));
    }
    // Only the keyring and the vault: resolving never calls Plaid, so it needs no Plaid
    // credentials.
    let cipher = global.cipher()?;
    let vault = global.open_vault(cipher).await?;
    let result = resolve(&vault, &item, &actor, args.note.trim(), args.format).await;
    vault.close().await;
    result
}

async fn resolve(
    vault: &tokenward_vault::SqlVault,
    item: &ItemId,
    actor: &Actor,
    note: &str,
    format: ListFormat,
) -> Result<(), Failure> {
    // For the report only: the driver checks the state again under the lease.
    let before = vault.item(item).await.map_err(|e| match e {
        ReadError::NotFound(_) => Failure::new(Code::Input, "no such Item in the vault"),
        e => Failure::caused(Code::Vault, "vault", &e),
    })?;
    let rotator = Rotator::new(&Offline, vault, crate::rotate::lease_owner()?);
    let report = rotator
        .resolve(item, actor, note)
        .await
        .map_err(|e| failure(&e))?;
    let from = before.credential_state;
    let already = from == CredentialState::Retired;
    let text = match format {
        ListFormat::Text if already => {
            format!("{}: already retired; nothing changed\n", item.as_str())
        }
        ListFormat::Text => format!(
            "{}: {} -> {} (actor {})\n",
            item.as_str(),
            from.as_str(),
            report.state.name(),
            actor.as_str()
        ),
        ListFormat::Json => format!(
            "{}\n",
            json!({
                "item_id": item.as_str(),
                "from": from.as_str(),
                "state": report.state.name(),
                "changed": !already,
                "actor": actor.as_str(),
            })
        ),
    };
    write_stdout(
        tokenward_redact::Policy::plaid()
            .scrub_text(&text)
            .as_bytes(),
    )
}

/// The exit code of each refusal (see `--help`).
fn failure(error: &DriverError) -> Failure {
    let code = match error {
        DriverError::NotResolvable { .. } => Code::Refused,
        DriverError::Note(_) => Code::Usage,
        DriverError::Lease(LeaseError::Held { .. }) => Code::Incomplete,
        DriverError::Lease(LeaseError::NotFound(_)) | DriverError::Read(ReadError::NotFound(_)) => {
            Code::Input
        }
        _ => Code::Vault,
    };
    let context = match error {
        DriverError::Lease(LeaseError::Held { .. }) => {
            "resolve: another worker holds the Item; rerun when it is done"
        }
        _ => "resolve",
    };
    Failure::caused(code, context, error)
}

/// The Plaid client of a command that must never call Plaid: every call fails as not sent.
/// `resolve` runs the rotation driver, which needs a client, but only writes the vault.
struct Offline;

macro_rules! offline {
    ($($method:ident($request:ty) -> $response:ty = $endpoint:ident;)*) => {
        #[async_trait]
        impl PlaidApi for Offline {
            $(
                async fn $method(
                    &self,
                    _request: &$request,
                ) -> Result<$response, tokenward_plaid::Error> {
                    Err(tokenward_plaid::Error::Transport {
                        endpoint: Endpoint::$endpoint,
                        kind: TransportKind::Other,
                        outcome: Outcome::NotSent,
                        source: None,
                    })
                }
            )*
        }
    };
}

offline! {
    link_token_create(LinkTokenCreateRequest) -> LinkTokenCreateResponse = LinkTokenCreate;
    item_public_token_exchange(ItemPublicTokenExchangeRequest)
        -> ItemPublicTokenExchangeResponse = ItemPublicTokenExchange;
    sandbox_public_token_create(SandboxPublicTokenCreateRequest)
        -> SandboxPublicTokenCreateResponse = SandboxPublicTokenCreate;
    accounts_get(AccountsGetRequest) -> AccountsGetResponse = AccountsGet;
    accounts_balance_get(AccountsBalanceGetRequest)
        -> AccountsBalanceGetResponse = AccountsBalanceGet;
    transactions_get(TransactionsGetRequest) -> TransactionsGetResponse = TransactionsGet;
    transactions_sync(TransactionsSyncRequest) -> TransactionsSyncResponse = TransactionsSync;
    item_get(ItemGetRequest) -> ItemGetResponse = ItemGet;
    item_remove(ItemRemoveRequest) -> ItemRemoveResponse = ItemRemove;
    item_access_token_invalidate(ItemAccessTokenInvalidateRequest)
        -> ItemAccessTokenInvalidateResponse = ItemAccessTokenInvalidate;
    item_webhook_update(ItemWebhookUpdateRequest)
        -> ItemWebhookUpdateResponse = ItemWebhookUpdate;
    webhook_verification_key_get(WebhookVerificationKeyGetRequest)
        -> WebhookVerificationKeyGetResponse = WebhookVerificationKeyGet;
    sandbox_item_fire_webhook(SandboxItemFireWebhookRequest)
        -> SandboxItemFireWebhookResponse = SandboxItemFireWebhook;
    sandbox_item_reset_login(SandboxItemResetLoginRequest)
        -> SandboxItemResetLoginResponse = SandboxItemResetLogin;
}
