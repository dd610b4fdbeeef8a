//! Deterministic accounts and transactions for an Item.
//!
//! Everything is derived from the `item_id`, the configured seed and the Item's creation
//! date, so the same Item returns the same data on every call. Transactions cover the 730
//! days before the Item was created; the last two days are pending.

#![allow(
    clippy::inconsistent_digit_grouping,
    reason = "amounts in cents are written dollars_cents: 1_500_00 is $1,500.00"
)]

use chrono::{Datelike as _, Days, NaiveDate};
use ring::digest;
use serde_json::{Value, json};

use crate::ids::derived_id;

/// How many days of history an Item has.
pub(crate) const HISTORY_DAYS: u64 = 730;

/// A small, fast, deterministic generator (SplitMix64): data, not secrets.
#[derive(Debug, Clone)]
pub(crate) struct DetRng(u64);

impl DetRng {
    pub(crate) fn from_parts(seed: u64, parts: &[&[u8]]) -> Self {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&seed.to_be_bytes());
        for part in parts {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let digest = ctx.finish();
        let mut first = [0_u8; 8];
        first.copy_from_slice(digest.as_ref().get(..8).unwrap_or(&[0; 8]));
        DetRng(u64::from_be_bytes(first))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = hi.abs_diff(lo).saturating_add(1);
        let offset = self.next_u64() % span;
        lo.saturating_add_unsigned(offset)
    }

    /// True with probability `percent`/100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        let len = items.len() as u64;
        let index = usize::try_from(self.next_u64() % len).unwrap_or(0);
        items.get(index)
    }
}

/// One of the Item's accounts.
#[derive(Debug, Clone)]
#[allow(clippy::struct_field_names, reason = "Plaid's field names")]
pub(crate) struct Account {
    pub(crate) account_id: String,
    pub(crate) name: &'static str,
    pub(crate) official_name: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) subtype: &'static str,
    pub(crate) mask: String,
    pub(crate) available_cents: Option<i64>,
    pub(crate) current_cents: i64,
    pub(crate) limit_cents: Option<i64>,
}

impl Account {
    /// The account as Plaid's `AccountBase`; `balance_time` sets `last_updated_datetime`
    /// (a real-time balance), otherwise it is `null`.
    pub(crate) fn to_json(&self, balance_time: Option<&str>) -> Value {
        json!({
            "account_id": self.account_id,
            "balances": {
                "available": self.available_cents.map(cents),
                "current": cents(self.current_cents),
                "limit": self.limit_cents.map(cents),
                "iso_currency_code": "USD",
                "unofficial_currency_code": null,
                "last_updated_datetime": balance_time,
            },
            "holder_category": "personal",
            "mask": self.mask,
            "name": self.name,
            "official_name": self.official_name,
            "persistent_account_id": derived_id(&self.account_id, "persistent", 0),
            "subtype": self.subtype,
            "type": self.kind,
        })
    }
}

/// The Item's accounts: checking, savings and a credit card, with Plaid's sandbox names.
pub(crate) fn accounts(seed: u64, item_id: &str) -> Vec<Account> {
    let mut rng = DetRng::from_parts(seed, &[item_id.as_bytes(), b"accounts"]);
    let mask = |rng: &mut DetRng| format!("{:04}", rng.range(0, 9999));
    let checking_current = rng.range(1_000_00, 9_000_00);
    let savings_current = rng.range(5_000_00, 40_000_00);
    let card_current = rng.range(100_00, 1_500_00);
    let card_limit = rng.range(2, 10) * 1_000_00;
    vec![
        Account {
            account_id: derived_id(item_id, "account", 0),
            name: "Plaid Checking",
            official_name: "Plaid Gold Standard 0% Interest Checking",
            kind: "depository",
            subtype: "checking",
            mask: mask(&mut rng),
            available_cents: Some(checking_current - rng.range(0, 100_00)),
            current_cents: checking_current,
            limit_cents: None,
        },
        Account {
            account_id: derived_id(item_id, "account", 1),
            name: "Plaid Saving",
            official_name: "Plaid Silver Standard 0.1% Interest Saving",
            kind: "depository",
            subtype: "savings",
            mask: mask(&mut rng),
            available_cents: Some(savings_current),
            current_cents: savings_current,
            limit_cents: None,
        },
        Account {
            account_id: derived_id(item_id, "account", 2),
            name: "Plaid Credit Card",
            official_name: "Plaid Diamond 12.5% APR Interest Credit Card",
            kind: "credit",
            subtype: "credit card",
            mask: mask(&mut rng),
            available_cents: Some(card_limit - card_current),
            current_cents: card_current,
            limit_cents: Some(card_limit),
        },
    ]
}

/// What a merchant's transactions look like.
#[derive(Debug, PartialEq, Eq)]
#[allow(
    clippy::struct_field_names,
    reason = "`merchant` is Plaid's merchant_name"
)]
struct Merchant {
    name: &'static str,
    merchant: Option<&'static str>,
    website: Option<&'static str>,
    category: &'static [&'static str],
    category_id: &'static str,
    pfc: (&'static str, &'static str),
    channel: &'static str,
    kind: &'static str,
    min_cents: i64,
    max_cents: i64,
}

macro_rules! merchant {
    ($name:expr, $merchant:expr, $site:expr, [$($cat:expr),*], $cid:expr, $p:expr, $d:expr,
     $channel:expr, $kind:expr, $min:expr, $max:expr) => {
        Merchant {
            name: $name,
            merchant: $merchant,
            website: $site,
            category: &[$($cat),*],
            category_id: $cid,
            pfc: ($p, $d),
            channel: $channel,
            kind: $kind,
            min_cents: $min,
            max_cents: $max,
        }
    };
}

/// Everyday purchases, picked at random.
const SPENDING: &[Merchant] = &[
    merchant!(
        "Starbucks",
        Some("Starbucks"),
        Some("starbucks.com"),
        ["Food and Drink", "Restaurants", "Coffee Shop"],
        "13005043",
        "FOOD_AND_DRINK",
        "FOOD_AND_DRINK_COFFEE",
        "in store",
        "place",
        3_50,
        9_75
    ),
    merchant!(
        "McDonald's",
        Some("McDonald's"),
        Some("mcdonalds.com"),
        ["Food and Drink", "Restaurants", "Fast Food"],
        "13005032",
        "FOOD_AND_DRINK",
        "FOOD_AND_DRINK_FAST_FOOD",
        "in store",
        "place",
        5_00,
        16_00
    ),
    merchant!(
        "CHIPOTLE 1249",
        Some("Chipotle Mexican Grill"),
        Some("chipotle.com"),
        ["Food and Drink", "Restaurants"],
        "13005000",
        "FOOD_AND_DRINK",
        "FOOD_AND_DRINK_RESTAURANT",
        "in store",
        "place",
        9_50,
        24_00
    ),
    merchant!(
        "WHOLEFDS MKT 10234",
        Some("Whole Foods Market"),
        Some("wholefoodsmarket.com"),
        ["Shops", "Supermarkets and Groceries"],
        "19047000",
        "FOOD_AND_DRINK",
        "FOOD_AND_DRINK_GROCERIES",
        "in store",
        "place",
        18_00,
        165_00
    ),
    merchant!(
        "SAFEWAY #1472",
        Some("Safeway"),
        Some("safeway.com"),
        ["Shops", "Supermarkets and Groceries"],
        "19047000",
        "FOOD_AND_DRINK",
        "FOOD_AND_DRINK_GROCERIES",
        "in store",
        "place",
        12_00,
        120_00
    ),
    merchant!(
        "Uber 072515 SF**POOL**",
        Some("Uber"),
        Some("uber.com"),
        ["Travel", "Taxi"],
        "22016000",
        "TRANSPORTATION",
        "TRANSPORTATION_TAXIS_AND_RIDE_SHARES",
        "online",
        "special",
        6_33,
        48_00
    ),
    merchant!(
        "LYFT *RIDE",
        Some("Lyft"),
        Some("lyft.com"),
        ["Travel", "Taxi"],
        "22016000",
        "TRANSPORTATION",
        "TRANSPORTATION_TAXIS_AND_RIDE_SHARES",
        "online",
        "special",
        7_00,
        42_00
    ),
    merchant!(
        "SHELL OIL 5744",
        Some("Shell"),
        Some("shell.com"),
        ["Travel", "Gas Stations"],
        "22009000",
        "TRANSPORTATION",
        "TRANSPORTATION_GAS",
        "in store",
        "place",
        25_00,
        72_00
    ),
    merchant!(
        "AMAZON.COM*2K4LM8",
        Some("Amazon"),
        Some("amazon.com"),
        ["Shops", "Digital Purchase"],
        "19013000",
        "GENERAL_MERCHANDISE",
        "GENERAL_MERCHANDISE_ONLINE_MARKETPLACES",
        "online",
        "digital",
        8_99,
        210_00
    ),
    merchant!(
        "TARGET T-2231",
        Some("Target"),
        Some("target.com"),
        ["Shops", "Department Stores"],
        "19012000",
        "GENERAL_MERCHANDISE",
        "GENERAL_MERCHANDISE_SUPERSTORES",
        "in store",
        "place",
        12_00,
        150_00
    ),
    merchant!(
        "CVS/PHARMACY #0421",
        Some("CVS Pharmacy"),
        Some("cvs.com"),
        ["Shops", "Pharmacies"],
        "19043000",
        "MEDICAL",
        "MEDICAL_PHARMACIES_AND_SUPPLEMENTS",
        "in store",
        "place",
        4_50,
        45_00
    ),
    merchant!(
        "DOORDASH*SWEETGREEN",
        Some("DoorDash"),
        Some("doordash.com"),
        ["Food and Drink", "Restaurants"],
        "13005000",
        "FOOD_AND_DRINK",
        "FOOD_AND_DRINK_RESTAURANT",
        "online",
        "digital",
        16_00,
        58_00
    ),
    merchant!(
        "APPLE.COM/BILL",
        Some("Apple"),
        Some("apple.com"),
        ["Shops", "Computers and Electronics"],
        "19013000",
        "GENERAL_MERCHANDISE",
        "GENERAL_MERCHANDISE_ELECTRONICS",
        "online",
        "digital",
        99,
        9_99
    ),
    merchant!(
        "United Airlines",
        Some("United Airlines"),
        Some("united.com"),
        ["Travel", "Airlines and Aviation Services"],
        "22001000",
        "TRAVEL",
        "TRAVEL_FLIGHTS",
        "online",
        "special",
        150_00,
        620_00
    ),
    merchant!(
        "Touchstone Climbing",
        None,
        None,
        ["Recreation", "Gyms and Fitness Centers"],
        "17018000",
        "PERSONAL_CARE",
        "PERSONAL_CARE_GYMS_AND_FITNESS_CENTERS",
        "in store",
        "place",
        25_00,
        80_00
    ),
];

const PAYROLL: Merchant = merchant!(
    "GUSTO PAY 123456",
    Some("Gusto"),
    Some("gusto.com"),
    ["Transfer", "Payroll"],
    "21009000",
    "INCOME",
    "INCOME_WAGES",
    "other",
    "special",
    2_350_00,
    2_650_00
);
const RENT: Merchant = merchant!(
    "GREENWOOD PROPERTY MGMT",
    None,
    None,
    ["Payment", "Rent"],
    "16002000",
    "RENT_AND_UTILITIES",
    "RENT_AND_UTILITIES_RENT",
    "other",
    "special",
    1_500_00,
    2_400_00
);
const CARD_PAYMENT_OUT: Merchant = merchant!(
    "CREDIT CARD 3333 PAYMENT *//",
    None,
    None,
    ["Payment", "Credit Card"],
    "16001000",
    "LOAN_PAYMENTS",
    "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT",
    "other",
    "special",
    300_00,
    900_00
);
const CARD_PAYMENT_IN: Merchant = merchant!(
    "PAYMENT - THANK YOU",
    None,
    None,
    ["Payment", "Credit Card"],
    "16001000",
    "LOAN_PAYMENTS",
    "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT",
    "other",
    "special",
    300_00,
    900_00
);
const TO_SAVINGS: Merchant = merchant!(
    "Online Transfer to SAV",
    None,
    None,
    ["Transfer", "Internal Account Transfer"],
    "21001000",
    "TRANSFER_OUT",
    "TRANSFER_OUT_SAVINGS",
    "other",
    "special",
    100_00,
    500_00
);
const FROM_CHECKING: Merchant = merchant!(
    "Online Transfer from CHK",
    None,
    None,
    ["Transfer", "Internal Account Transfer"],
    "21001000",
    "TRANSFER_IN",
    "TRANSFER_IN_SAVINGS",
    "other",
    "special",
    100_00,
    500_00
);
const INTEREST: Merchant = merchant!(
    "INTEREST PAYMENT",
    None,
    None,
    ["Interest", "Interest Earned"],
    "15001000",
    "INCOME",
    "INCOME_INTEREST_EARNED",
    "other",
    "special",
    40,
    3_50
);
const NETFLIX: Merchant = merchant!(
    "NETFLIX.COM",
    Some("Netflix"),
    Some("netflix.com"),
    ["Service", "Subscription"],
    "18061000",
    "ENTERTAINMENT",
    "ENTERTAINMENT_TV_AND_MOVIES",
    "online",
    "digital",
    15_49,
    15_49
);
const SPOTIFY: Merchant = merchant!(
    "Spotify USA",
    Some("Spotify"),
    Some("spotify.com"),
    ["Service", "Subscription"],
    "18061000",
    "ENTERTAINMENT",
    "ENTERTAINMENT_MUSIC_AND_AUDIO",
    "online",
    "digital",
    10_99,
    10_99
);
const INTERNET: Merchant = merchant!(
    "COMCAST CABLE COMM",
    Some("Xfinity"),
    Some("xfinity.com"),
    ["Service", "Cable"],
    "18009000",
    "RENT_AND_UTILITIES",
    "RENT_AND_UTILITIES_INTERNET_AND_CABLE",
    "online",
    "special",
    79_99,
    79_99
);
const ELECTRIC: Merchant = merchant!(
    "PGANDE WEB ONLINE",
    Some("PG&E"),
    Some("pge.com"),
    ["Service", "Utilities", "Electric"],
    "18068001",
    "RENT_AND_UTILITIES",
    "RENT_AND_UTILITIES_GAS_AND_ELECTRICITY",
    "online",
    "special",
    45_00,
    160_00
);

/// One transaction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Txn {
    pub(crate) transaction_id: String,
    pub(crate) account_id: String,
    pub(crate) amount_cents: i64,
    pub(crate) date: NaiveDate,
    pub(crate) name: String,
    pub(crate) pending: bool,
    pub(crate) pending_transaction_id: Option<String>,
    merchant: &'static Merchant,
}

impl Txn {
    /// The transaction as Plaid's `Transaction`.
    pub(crate) fn to_json(&self) -> Value {
        let m = self.merchant;
        let date = self.date.format("%Y-%m-%d").to_string();
        json!({
            "account_id": self.account_id,
            "account_owner": null,
            "amount": cents(self.amount_cents),
            "authorized_date": date,
            "authorized_datetime": null,
            "category": m.category,
            "category_id": m.category_id,
            "check_number": null,
            "counterparties": m.merchant.map_or_else(Vec::new, |name| vec![json!({
                "name": name,
                "type": "merchant",
                "entity_id": null,
                "logo_url": null,
                "website": m.website,
                "confidence_level": "VERY_HIGH",
            })]),
            "date": date,
            "datetime": null,
            "iso_currency_code": "USD",
            "location": {
                "address": null, "city": null, "region": null, "postal_code": null,
                "country": null, "lat": null, "lon": null, "store_number": null,
            },
            "logo_url": null,
            "merchant_entity_id": null,
            "merchant_name": m.merchant,
            "name": self.name,
            "original_description": null,
            "payment_channel": m.channel,
            "payment_meta": {
                "by_order_of": null, "payee": null, "payer": null, "payment_method": null,
                "payment_processor": null, "ppd_id": null, "reason": null,
                "reference_number": null,
            },
            "pending": self.pending,
            "pending_transaction_id": self.pending_transaction_id,
            "personal_finance_category": {
                "primary": m.pfc.0,
                "detailed": m.pfc.1,
                "confidence_level": "VERY_HIGH",
            },
            "personal_finance_category_icon_url":
                format!("https://plaid-category-icons.plaid.com/PFC_{}.png", m.pfc.0),
            "transaction_code": null,
            "transaction_id": self.transaction_id,
            "transaction_type": m.kind,
            "unofficial_currency_code": null,
            "website": m.website,
        })
    }
}

/// An Item's transactions as of its creation day `anchor`, oldest first.
pub(crate) fn transactions(seed: u64, item_id: &str, anchor: NaiveDate) -> Vec<Txn> {
    let accounts = accounts(seed, item_id);
    let account = |i: usize| {
        accounts
            .get(i)
            .map(|a| a.account_id.clone())
            .unwrap_or_default()
    };
    let (checking, savings, card) = (account(0), account(1), account(2));
    let mut rng = DetRng::from_parts(seed, &[item_id.as_bytes(), b"transactions"]);
    let rent = rng.range(RENT.min_cents, RENT.max_cents);
    let payday_offset = rng.range(0, 13).unsigned_abs();
    let start = anchor
        .checked_sub_days(Days::new(HISTORY_DAYS))
        .unwrap_or(anchor);
    let pending_from = anchor.checked_sub_days(Days::new(1)).unwrap_or(anchor);

    let mut out = Vec::with_capacity(700);
    let mut push = |account_id: &str, m: &'static Merchant, amount: i64, day| {
        let index = out.len() as u64;
        out.push(Txn {
            transaction_id: derived_id(item_id, "transaction", index),
            account_id: account_id.to_owned(),
            amount_cents: amount,
            date: day,
            name: m.name.to_owned(),
            pending: day >= pending_from,
            pending_transaction_id: None,
            merchant: m,
        });
    };

    let mut day = start;
    let mut n: u64 = 0;
    while day <= anchor {
        let dom = day.day();
        if n % 14 == payday_offset {
            let amount = -rng.range(PAYROLL.min_cents, PAYROLL.max_cents);
            push(&checking, &PAYROLL, amount, day);
        }
        if dom == 1 {
            push(&checking, &RENT, rent, day);
            let amount = rng.range(INTEREST.min_cents, INTEREST.max_cents);
            push(&savings, &INTEREST, -amount, day);
        }
        if dom == 3 {
            let amount = rng.range(TO_SAVINGS.min_cents, TO_SAVINGS.max_cents) / 100 * 100;
            push(&checking, &TO_SAVINGS, amount, day);
            push(&savings, &FROM_CHECKING, -amount, day);
        }
        if dom == 7 {
            push(&card, &NETFLIX, NETFLIX.min_cents, day);
        }
        if dom == 12 {
            push(&card, &SPOTIFY, SPOTIFY.min_cents, day);
            push(&checking, &INTERNET, INTERNET.min_cents, day);
        }
        if dom == 15 {
            let amount = rng.range(CARD_PAYMENT_OUT.min_cents, CARD_PAYMENT_OUT.max_cents);
            push(&checking, &CARD_PAYMENT_OUT, amount, day);
            push(&card, &CARD_PAYMENT_IN, -amount, day);
        }
        if dom == 20 {
            let amount = rng.range(ELECTRIC.min_cents, ELECTRIC.max_cents);
            push(&checking, &ELECTRIC, amount, day);
        }
        let purchases = match rng.range(0, 9) {
            // The newest day always has a purchase, so every Item has a pending transaction.
            0..=4 if day < anchor => 0,
            0..=8 => 1,
            _ => 2,
        };
        for _ in 0..purchases {
            if let Some(mut m) = rng.pick(SPENDING) {
                // Flights are rare: most draws of one become a coffee.
                if m.category_id == "22001000"
                    && !rng.chance(10)
                    && let Some(coffee) = SPENDING.first()
                {
                    m = coffee;
                }
                let account_id = if rng.chance(70) { &card } else { &checking };
                let amount = rng.range(m.min_cents, m.max_cents);
                push(account_id, m, amount, day);
            }
        }
        n += 1;
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    out
}

/// New activity for an update: `count` purchases dated `day`, with ids from `first_index`.
pub(crate) fn new_purchases(
    rng: &mut DetRng,
    item_id: &str,
    accounts: &[Account],
    day: NaiveDate,
    first_index: u64,
    count: u64,
) -> Vec<Txn> {
    (0..count)
        .filter_map(|i| {
            let m = rng.pick(SPENDING)?;
            let account = rng.pick(accounts)?;
            Some(Txn {
                transaction_id: derived_id(item_id, "transaction", first_index + i),
                account_id: account.account_id.clone(),
                amount_cents: rng.range(m.min_cents, m.max_cents),
                date: day,
                name: m.name.to_owned(),
                pending: true,
                pending_transaction_id: None,
                merchant: m,
            })
        })
        .collect()
}

/// Cents as a JSON number with two decimals (`12.5` for 1250).
#[allow(
    clippy::cast_precision_loss,
    reason = "balances are far below 2^53 cents"
)]
pub(crate) fn cents(value: i64) -> f64 {
    value as f64 / 100.0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

    use super::*;

    #[test]
    fn data_is_deterministic_and_plausible() {
        let anchor = NaiveDate::from_ymd_opt(2024, 6, 30).unwrap();
        let a = transactions(7, "itemA", anchor);
        assert_eq!(a, transactions(7, "itemA", anchor));
        assert_ne!(a, transactions(7, "itemB", anchor));
        assert!(a.len() > 300 && a.len() < 1500, "{}", a.len());
        assert!(a.windows(2).all(|w| w[0].date <= w[1].date));
        assert!(a.iter().all(|t| t.date <= anchor));
        assert!(a.iter().any(|t| t.pending));
        let ids: std::collections::HashSet<_> = a.iter().map(|t| &t.transaction_id).collect();
        assert_eq!(ids.len(), a.len());
        let accounts = accounts(7, "itemA");
        assert_eq!(accounts.len(), 3);
        assert!(
            a.iter()
                .all(|t| accounts.iter().any(|acc| acc.account_id == t.account_id))
        );
    }
}
