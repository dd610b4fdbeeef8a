//! `tokenward rotate`: rotate Items' access tokens at Plaid through the rotation driver.

use std::collections::HashMap;
use std::str::FromStr as _;

use serde_json::json;
use tokenward_rotation::{Actor, BatchRotator, RateLimiter, RotationReason, Rotator};
use tokenward_vault::{
    CredentialState, HealthState, ItemId, ItemRecord, LeaseOwner, StateFilter, Vault,
};

use crate::cli::{ListFormat, ReasonArg, RotateArgs};
use crate::config::Global;
use crate::failure::{Code, Failure};
use crate::keys::{parse_version, write_stdout};

/// Items listed per vault read.
const PAGE: u32 = 500;

pub(crate) async fn run(global: &Global, args: RotateArgs) -> Result<(), Failure> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return Err(Failure::new(
            Code::Usage,
            "--rate must be a positive number",
        ));
    }
    let reason = match args.reason {
        ReasonArg::Scheduled => RotationReason::Scheduled,
        ReasonArg::Manual => RotationReason::Manual,
        ReasonArg::Compromise => RotationReason::Compromise,
        ReasonArg::KekCompromise => RotationReason::KekCompromise,
    };
    let actor = actor(&args.actor)?;
    let cipher = global.cipher()?;
    // The Plaid configuration is checked before anything is read, even for a dry run.
    let client = global.plaid_client()?;
    let vault = global.open_vault(cipher).await?;
    let result = rotate(&vault, &client, &args, reason, &actor).await;
    vault.close().await;
    result
}

async fn rotate(
    vault: &tokenward_vault::SqlVault,
    client: &tokenward_plaid::HttpPlaidClient,
    args: &RotateArgs,
    reason: RotationReason,
    actor: &Actor,
) -> Result<(), Failure> {
    let items = select(vault, args).await?;
    let requests: Vec<(ItemId, RotationReason)> =
        items.into_iter().map(|item| (item, reason)).collect();
    let rotator = Rotator::new(client, vault, lease_owner()?);
    // A burst of 1: the rate is a ceiling, not an average.
    let limiter = RateLimiter::new(args.rate, 1);
    let batch = BatchRotator::new(&rotator, vault, &limiter);
    let report = batch
        .run(&requests, actor, args.dry_run)
        .await
        .map_err(|e| Failure::caused(Code::Vault, "rotate: planning failed", &e))?;

    render(&report, args)
}

/// The `--actor` flag, trimmed; refused when empty.
pub(crate) fn actor(flag: &str) -> Result<Actor, Failure> {
    let name = flag.trim();
    if name.is_empty() {
        return Err(Failure::new(Code::Usage, "--actor must not be empty"));
    }
    Ok(Actor::new(name))
}

/// The lease owner of this process, `tokenward-cli-<pid>`.
pub(crate) fn lease_owner() -> Result<LeaseOwner, Failure> {
    LeaseOwner::new(format!("tokenward-cli-{}", std::process::id()))
        .map_err(|e| Failure::caused(Code::Failure, "lease owner", &e))
}

/// Prints the plan or the outcome per Item; incomplete when any Item was not rotated.
fn render(report: &tokenward_rotation::BatchReport, args: &RotateArgs) -> Result<(), Failure> {
    // The first result per Item, looked up once per plan entry.
    let mut results = HashMap::with_capacity(report.results.len());
    for (id, result) in &report.results {
        results.entry(id).or_insert(result);
    }
    let mut complete = true;
    let mut lines = Vec::new();
    let mut rows = Vec::new();
    for entry in &report.plan {
        let planned = match &entry.skip {
            None => "rotate".to_owned(),
            Some(why) => format!("skip ({why})"),
        };
        let outcome = match results.get(&entry.item_id) {
            None if args.dry_run => None,
            None => Some((planned.clone(), None)),
            Some(Ok(done)) => {
                let state = done.state.name().to_owned();
                if !matches!(
                    done.state,
                    tokenward_rotation::token::CredentialState::Active { .. }
                ) || !done.alerts.is_empty()
                {
                    complete = false;
                }
                Some((state, None))
            }
            Some(Err(error)) => {
                complete = false;
                let message = crate::failure::chain(error);
                Some(("failed".to_owned(), Some(message)))
            }
        };
        if entry.skip.is_some() && !args.dry_run {
            complete = false;
        }
        let lane = format!("{:?}", entry.lane).to_lowercase();
        match &outcome {
            None => lines.push(format!(
                "{}  v{}  {}  {}  {}",
                entry.item_id,
                entry.version,
                entry.reason.as_str(),
                lane,
                planned
            )),
            Some((state, error)) => lines.push(format!(
                "{}  v{}  {}{}",
                entry.item_id,
                entry.version,
                state,
                error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
            )),
        }
        rows.push(json!({
            "item_id": entry.item_id.as_str(),
            "version": entry.version,
            "reason": entry.reason.as_str(),
            "lane": lane,
            "skip": entry.skip,
            "state": outcome.as_ref().map(|(s, _)| s.clone()),
            "error": outcome.as_ref().and_then(|(_, e)| e.clone()),
        }));
    }
    let text = match args.format {
        ListFormat::Text => {
            let head = if args.dry_run {
                format!(
                    "dry run: {} Item(s) planned, nothing changed\n",
                    report.plan.len()
                )
            } else {
                format!(
                    "rotated {} of {} Item(s)\n",
                    report.results.iter().filter(|(_, r)| r.is_ok()).count(),
                    report.plan.len()
                )
            };
            let mut text = head;
            for line in lines {
                text.push_str(&line);
                text.push('\n');
            }
            text
        }
        ListFormat::Json => format!("{}\n", json!({"dry_run": args.dry_run, "items": rows})),
    };
    write_stdout(
        tokenward_redact::Policy::plaid()
            .scrub_text(&text)
            .as_bytes(),
    )?;
    if complete {
        Ok(())
    } else {
        Err(Failure::new(
            Code::Incomplete,
            "some Items were not rotated (see the report above)",
        ))
    }
}

/// The Items the flags select, ordered by id.
async fn select(vault: &dyn Vault, args: &RotateArgs) -> Result<Vec<ItemId>, Failure> {
    let vault_error = |e: &tokenward_vault::ReadError| Failure::caused(Code::Vault, "vault", e);
    let mut items = Vec::new();
    for item in &args.item {
        items.push(
            ItemId::new(item.as_str()).map_err(|e| Failure::caused(Code::Usage, "--item", &e))?,
        );
    }
    if let Some(version) = args.kek_version {
        let version = parse_version(version)?;
        let mut after: Option<ItemId> = None;
        loop {
            let page = vault
                .list_by_kek_version(version, after.as_ref(), PAGE)
                .await
                .map_err(|e| vault_error(&e))?;
            let done = page.len() < PAGE as usize;
            after = page.last().map(|r| r.item_id.clone());
            items.extend(page.into_iter().map(|r| r.item_id));
            if done {
                break;
            }
        }
    }
    if let Some(state) = &args.state {
        let filter = if let Ok(state) = CredentialState::from_str(state) {
            StateFilter::Credential(state)
        } else if let Ok(state) = HealthState::from_str(state) {
            StateFilter::Health(state)
        } else {
            return Err(Failure::new(
                Code::Usage,
                "--state must be a credential state (active, orphaned, …) or a health state (healthy, expiring_soon, …)",
            ));
        };
        items.extend(
            list_state(vault, filter)
                .await?
                .into_iter()
                .map(|r| r.item_id),
        );
    }
    if args.all {
        items.extend(all_items(vault).await?.into_iter().map(|r| r.item_id));
    }
    // Once each, in the order given.
    let mut seen = std::collections::HashSet::new();
    items.retain(|item| seen.insert(item.clone()));
    Ok(items)
}

/// Every Item in one state, paging through the vault.
pub(crate) async fn list_state(
    vault: &dyn Vault,
    filter: StateFilter,
) -> Result<Vec<ItemRecord>, Failure> {
    let mut records = Vec::new();
    let mut after: Option<ItemId> = None;
    loop {
        let page = vault
            .list_by_state(filter, after.as_ref(), PAGE)
            .await
            .map_err(|e| Failure::caused(Code::Vault, "vault", &e))?;
        let done = page.len() < PAGE as usize;
        after = page.last().map(|r| r.item_id.clone());
        records.extend(page);
        if done {
            return Ok(records);
        }
    }
}

/// Every Item (each is in exactly one credential state), ordered by id.
pub(crate) async fn all_items(vault: &dyn Vault) -> Result<Vec<ItemRecord>, Failure> {
    let mut records = Vec::new();
    for state in CredentialState::ALL {
        records.extend(list_state(vault, StateFilter::Credential(*state)).await?);
    }
    records.sort_by(|a, b| a.item_id.as_str().cmp(b.item_id.as_str()));
    Ok(records)
}
