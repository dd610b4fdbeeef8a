//! `/transactions/sync`: building a request body, and decoding a realistic page of 100 added
//! transactions into the typed model, beside the baseline of decoding the same bytes into an
//! untyped `serde_json::Value`.
//!
//! The page is generated deterministically with the spec's field names (Plaid's official API
//! spec, 2020-09-14), so every run decodes the same bytes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    missing_docs,
    reason = "benchmark harness"
)]

use std::hint::black_box;

use chrono::{Duration, NaiveDate, TimeZone as _, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use tokenward_plaid::models::{
    AccountBalance, AccountBase, AccountSubtype, AccountType, Counterparty, CounterpartyType,
    PaymentChannel, PersonalFinanceCategory, RemovedTransaction, Transaction,
    TransactionsSyncRequest, TransactionsSyncResponse, TransactionsUpdateStatus,
};
use tokenward_redact::AccessToken;

/// A fixed-seed linear congruential generator (Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[usize::try_from(self.next()).unwrap() % items.len()]
    }

    /// `n` characters of base62, like Plaid ids.
    fn id(&mut self, n: usize) -> String {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        (0..n)
            .map(|_| char::from(ALPHABET[usize::try_from(self.next()).unwrap() % 62]))
            .collect()
    }
}

const MERCHANTS: &[&str] = &[
    "Uber",
    "Starbucks",
    "United Airlines",
    "McDonald's",
    "Sparkfun",
    "Whole Foods",
    "Madison Bicycle Shop",
    "Touchstone Climbing",
];
const CATEGORIES: &[(&str, &str)] = &[
    ("TRANSPORTATION", "TRANSPORTATION_TAXIS_AND_RIDE_SHARES"),
    ("FOOD_AND_DRINK", "FOOD_AND_DRINK_COFFEE"),
    ("TRAVEL", "TRAVEL_FLIGHTS"),
    ("FOOD_AND_DRINK", "FOOD_AND_DRINK_FAST_FOOD"),
    ("GENERAL_MERCHANDISE", "GENERAL_MERCHANDISE_ELECTRONICS"),
];
const CITIES: &[(&str, &str, &str)] = &[
    ("San Francisco", "CA", "94107"),
    ("New York", "NY", "10001"),
    ("Madison", "WI", "53703"),
    ("Seattle", "WA", "98101"),
];

/// One page of `/transactions/sync`: 2 accounts, `added` transactions, 3 removed.
fn sync_page(added: usize) -> Vec<u8> {
    let mut rng = Lcg(0x005e_ed0f_5ac5);
    let accounts: Vec<AccountBase> = [("Plaid Checking", "0000"), ("Plaid Credit Card", "3333")]
        .iter()
        .enumerate()
        .map(|(i, (name, mask))| {
            let (kind, subtype) = if i == 0 {
                (AccountType::Depository, AccountSubtype::Checking)
            } else {
                (AccountType::Credit, AccountSubtype::CreditCard)
            };
            let mut account = AccountBase::new(
                rng.id(37),
                *name,
                kind,
                Some(subtype),
                AccountBalance::new(Some(110.0 + i as f64), Some(100.0), "USD"),
            );
            account.mask = Some((*mask).to_owned());
            account.official_name = Some(format!("Plaid Gold Standard 0% Interest {name}"));
            account
        })
        .collect();
    let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let transactions = (0..added)
        .map(|i| {
            let merchant = rng.pick(MERCHANTS);
            let (primary, detailed) = CATEGORIES[i % CATEGORIES.len()];
            let (city, region, postal) = CITIES[i % CITIES.len()];
            let date = start + Duration::days(i64::try_from(i % 365).unwrap());
            let amount = (rng.next() % 50_000) as f64 / 100.0;
            let account_id = accounts[i % accounts.len()].account_id.clone();
            let mut t = Transaction::new(rng.id(37), account_id, amount, date, merchant);
            t.iso_currency_code = Some("USD".to_owned());
            t.merchant_name = Some(merchant.to_owned());
            t.merchant_entity_id = Some(rng.id(37));
            t.authorized_date = Some(date);
            t.datetime = Some(Utc.from_utc_datetime(&date.and_hms_opt(11, 1, 1).unwrap()));
            t.payment_channel = if i % 3 == 0 {
                PaymentChannel::InStore
            } else {
                PaymentChannel::Online
            };
            t.location.city = Some(city.to_owned());
            t.location.region = Some(region.to_owned());
            t.location.postal_code = Some(postal.to_owned());
            t.location.country = Some("US".to_owned());
            t.personal_finance_category = Some(PersonalFinanceCategory::new(primary, detailed));
            t.logo_url = Some(format!(
                "https://plaid-merchant-logos.plaid.com/{}.png",
                merchant.to_lowercase().replace(' ', "_")
            ));
            t.website = Some(format!("{}.com", merchant.to_lowercase().replace(' ', "")));
            t.counterparties = Some(vec![Counterparty::new(
                merchant,
                CounterpartyType::Merchant,
            )]);
            t
        })
        .collect();
    let mut page = TransactionsSyncResponse::new(
        TransactionsUpdateStatus::HistoricalUpdateComplete,
        rng.id(120),
        rng.id(15),
    );
    page.removed = (0..3)
        .map(|i| RemovedTransaction::new(rng.id(37), accounts[i % 2].account_id.clone()))
        .collect();
    page.accounts = accounts;
    page.added = transactions;
    page.has_more = true;
    serde_json::to_vec(&page).unwrap()
}

fn bench_sync(c: &mut Criterion) {
    let bytes = sync_page(100);
    let token = "access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6";

    let mut request = c.benchmark_group("transactions_sync_request");
    let body = TransactionsSyncRequest::new(AccessToken::new(token).unwrap())
        .with_cursor("tVUUL15lYQN5rBnfDIc1I8xudpGdIlw9nsgeXWvhOfkECvUeR663i3Dt1uf")
        .with_count(100);
    request.bench_function("serialize_typed", |b| {
        b.iter(|| serde_json::to_vec(black_box(&body)).unwrap());
    });
    request.bench_function("build_and_serialize_typed", |b| {
        b.iter(|| {
            let body = TransactionsSyncRequest::new(AccessToken::new(black_box(token)).unwrap())
                .with_cursor("tVUUL15lYQN5rBnfDIc1I8xudpGdIlw9nsgeXWvhOfkECvUeR663i3Dt1uf")
                .with_count(100);
            serde_json::to_vec(&body).unwrap()
        });
    });
    // Baseline: the same body as an untyped `Value`.
    let untyped = serde_json::json!({
        "access_token": token,
        "cursor": "tVUUL15lYQN5rBnfDIc1I8xudpGdIlw9nsgeXWvhOfkECvUeR663i3Dt1uf",
        "count": 100,
    });
    request.bench_function("serialize_value_baseline", |b| {
        b.iter(|| serde_json::to_vec(black_box(&untyped)).unwrap());
    });
    request.finish();

    let mut response = c.benchmark_group("transactions_sync_response_100");
    response.throughput(Throughput::Bytes(u64::try_from(bytes.len()).unwrap()));
    response.bench_function("decode_typed", |b| {
        b.iter(|| serde_json::from_slice::<TransactionsSyncResponse>(black_box(&bytes)).unwrap());
    });
    response.bench_function("decode_value_baseline", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&bytes)).unwrap());
    });
    response.finish();
}

criterion_group!(benches, bench_sync);
criterion_main!(benches);
