//! A deterministic, realistic `/transactions/get` response (field names from Plaid's OpenAPI
//! spec, 2020-09-14), and log text, for the redaction benchmarks and tests.
//!
//! Values come from a fixed linear congruential generator, so every run sees the same bytes.
#![allow(
    dead_code,
    clippy::struct_field_names,
    clippy::doc_markdown,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::too_many_lines,
    clippy::format_push_string,
    unreachable_pub,
    missing_docs,
    reason = "a fixture mirroring Plaid's field names, shared by several targets"
)]

use serde::Serialize;

/// The `/transactions/get` response body.
#[derive(Debug, Clone, Serialize)]
pub struct TransactionsGetResponse {
    pub accounts: Vec<Account>,
    pub transactions: Vec<Transaction>,
    pub total_transactions: u32,
    pub item: Item,
    pub request_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub account_id: String,
    pub balances: Balances,
    pub mask: String,
    pub name: String,
    pub official_name: Option<String>,
    pub subtype: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Balances {
    pub available: Option<f64>,
    pub current: f64,
    pub iso_currency_code: String,
    pub limit: Option<f64>,
    pub unofficial_currency_code: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Transaction {
    pub account_id: String,
    pub amount: f64,
    pub iso_currency_code: String,
    pub unofficial_currency_code: Option<String>,
    pub category: Vec<String>,
    pub category_id: String,
    pub check_number: Option<String>,
    pub date: String,
    pub datetime: Option<String>,
    pub authorized_date: String,
    pub location: Location,
    pub name: String,
    pub merchant_name: String,
    pub merchant_entity_id: String,
    pub logo_url: String,
    pub website: String,
    pub original_description: Option<String>,
    pub payment_meta: PaymentMeta,
    pub payment_channel: String,
    pub pending: bool,
    pub pending_transaction_id: Option<String>,
    pub account_owner: Option<String>,
    pub transaction_id: String,
    pub transaction_type: String,
    pub transaction_code: Option<String>,
    pub personal_finance_category: PersonalFinanceCategory,
    pub personal_finance_category_icon_url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Location {
    pub address: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub store_number: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PaymentMeta {
    pub by_order_of: Option<String>,
    pub payee: Option<String>,
    pub payer: Option<String>,
    pub payment_method: Option<String>,
    pub payment_processor: Option<String>,
    pub ppd_id: Option<String>,
    pub reason: Option<String>,
    pub reference_number: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PersonalFinanceCategory {
    pub primary: String,
    pub detailed: String,
    pub confidence_level: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub item_id: String,
    pub institution_id: String,
    pub webhook: String,
    pub error: Option<String>,
    pub available_products: Vec<String>,
    pub billed_products: Vec<String>,
    pub consent_expiration_time: Option<String>,
    pub update_type: String,
}

/// A fixed-seed linear congruential generator (Knuth's MMIX constants).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Lcg(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = usize::try_from(self.next()).unwrap_or(0) % items.len();
        items[i]
    }

    /// `n` characters of base62.
    pub fn id(&mut self, n: usize) -> String {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        (0..n)
            .map(|_| char::from(ALPHABET[usize::try_from(self.next()).unwrap_or(0) % 62]))
            .collect()
    }

    /// A version-4-shaped UUID.
    pub fn uuid(&mut self) -> String {
        let hex = |l: &mut Lcg, n: usize| -> String {
            (0..n)
                .map(|_| {
                    char::from(b"0123456789abcdef"[usize::try_from(l.next()).unwrap_or(0) % 16])
                })
                .collect()
        };
        format!(
            "{}-{}-4{}-a{}-{}",
            hex(self, 8),
            hex(self, 4),
            hex(self, 3),
            hex(self, 3),
            hex(self, 12)
        )
    }
}

const MERCHANTS: &[&str] = &[
    "Uber",
    "Starbucks",
    "United Airlines",
    "McDonald's",
    "Sparkfun",
    "Tectra Inc",
    "KFC",
    "Madison Bicycle Shop",
    "Touchstone Climbing",
    "Whole Foods",
];
const CATEGORIES: &[(&str, &str)] = &[
    ("TRANSPORTATION", "TRANSPORTATION_TAXIS_AND_RIDE_SHARES"),
    ("FOOD_AND_DRINK", "FOOD_AND_DRINK_COFFEE"),
    ("TRAVEL", "TRAVEL_FLIGHTS"),
    ("FOOD_AND_DRINK", "FOOD_AND_DRINK_FAST_FOOD"),
    ("GENERAL_MERCHANDISE", "GENERAL_MERCHANDISE_ELECTRONICS"),
    ("ENTERTAINMENT", "ENTERTAINMENT_SPORTING_EVENTS"),
];
const CITIES: &[(&str, &str, &str)] = &[
    ("San Francisco", "CA", "94107"),
    ("New York", "NY", "10001"),
    ("Madison", "WI", "53703"),
    ("Seattle", "WA", "98101"),
];

/// A `/transactions/get` response with `n` transactions over 4 accounts.
pub fn transactions_response(n: usize) -> TransactionsGetResponse {
    let mut r = Lcg::new(0x7a11_5eed);
    let accounts: Vec<Account> = ["checking", "savings", "credit card", "cd"]
        .iter()
        .map(|subtype| Account {
            account_id: r.id(37),
            balances: Balances {
                available: Some(f64::from(u32::try_from(r.next() % 100_000).unwrap_or(0)) / 10.0),
                current: f64::from(u32::try_from(r.next() % 100_000).unwrap_or(0)) / 10.0,
                iso_currency_code: "USD".into(),
                limit: None,
                unofficial_currency_code: None,
            },
            mask: format!("{:04}", r.next() % 10_000),
            name: format!("Plaid {subtype}"),
            official_name: Some(format!("Plaid Gold Standard 0% Interest {subtype}")),
            subtype: (*subtype).to_owned(),
            kind: if *subtype == "credit card" {
                "credit"
            } else {
                "depository"
            }
            .to_owned(),
        })
        .collect();
    let transactions = (0..n)
        .map(|i| {
            let merchant = r.pick(MERCHANTS).to_owned();
            let (primary, detailed) =
                CATEGORIES[usize::try_from(r.next()).unwrap_or(0) % CATEGORIES.len()];
            let (city, region, postal) =
                CITIES[usize::try_from(r.next()).unwrap_or(0) % CITIES.len()];
            let day = 1 + i % 28;
            Transaction {
                account_id: accounts[i % accounts.len()].account_id.clone(),
                amount: f64::from(u32::try_from(r.next() % 50_000).unwrap_or(0)) / 100.0,
                iso_currency_code: "USD".into(),
                unofficial_currency_code: None,
                category: vec!["Travel".into(), "Taxi".into()],
                category_id: "22016000".into(),
                check_number: None,
                date: format!("2024-03-{day:02}"),
                datetime: Some(format!("2024-03-{day:02}T11:{:02}:00Z", r.next() % 60)),
                authorized_date: format!("2024-03-{day:02}"),
                location: Location {
                    address: Some(format!("{} Main St", r.next() % 9_999)),
                    city: Some(city.into()),
                    region: Some(region.into()),
                    postal_code: Some(postal.into()),
                    country: Some("US".into()),
                    lat: Some(40.740_352),
                    lon: Some(-74.001_761),
                    store_number: Some(format!("{}", r.next() % 1_000)),
                },
                name: format!("{} {}", merchant.to_uppercase(), r.next() % 100_000),
                merchant_name: merchant.clone(),
                merchant_entity_id: r.id(22),
                logo_url: format!(
                    "https://plaid-merchant-logos.plaid.com/{}.png",
                    merchant.to_lowercase().replace(' ', "_")
                ),
                website: format!("{}.com", merchant.to_lowercase().replace(' ', "")),
                original_description: None,
                payment_meta: PaymentMeta {
                    by_order_of: None,
                    payee: None,
                    payer: None,
                    payment_method: None,
                    payment_processor: None,
                    ppd_id: None,
                    reason: None,
                    reference_number: None,
                },
                payment_channel: r.pick(&["online", "in store", "other"]).to_owned(),
                pending: r.next().is_multiple_of(10),
                pending_transaction_id: None,
                account_owner: None,
                transaction_id: r.id(37),
                transaction_type: "place".into(),
                transaction_code: None,
                personal_finance_category: PersonalFinanceCategory {
                    primary: primary.into(),
                    detailed: detailed.into(),
                    confidence_level: r.pick(&["VERY_HIGH", "HIGH", "MEDIUM"]).to_owned(),
                },
                personal_finance_category_icon_url: format!(
                    "https://plaid-category-icons.plaid.com/PFC_{primary}.png"
                ),
            }
        })
        .collect();
    TransactionsGetResponse {
        accounts,
        transactions,
        total_transactions: u32::try_from(n).unwrap_or(u32::MAX),
        item: Item {
            item_id: r.id(37),
            institution_id: "ins_109508".into(),
            webhook: "https://www.genericwebhookurl.com/webhook".into(),
            error: None,
            available_products: vec!["balance".into(), "identity".into(), "investments".into()],
            billed_products: vec!["assets".into(), "auth".into(), "transactions".into()],
            consent_expiration_time: None,
            update_type: "background".into(),
        },
        request_id: r.id(15),
    }
}

/// Log text of at least `bytes` bytes, one line per event of about 160 bytes. With
/// `secret_every = Some(n)`, every n-th line carries a secret (rotating through Plaid tokens, a
/// `PLAID-SECRET` header, a bearer credential, a JWT and a routing number); `None` gives clean
/// text.
pub fn log_text(bytes: usize, secret_every: Option<usize>) -> String {
    let mut r = Lcg::new(0x1065_0001);
    let mut out = String::with_capacity(bytes + 256);
    let mut line = 0usize;
    while out.len() < bytes {
        line += 1;
        let secret = match secret_every {
            Some(n) if line.is_multiple_of(n) => match line / n % 5 {
                0 => format!(" token=access-production-{}", r.uuid()),
                1 => format!(" public_token=public-sandbox-{}", r.uuid()),
                2 => format!(" PLAID-SECRET: {}", r.id(30).to_lowercase()),
                3 => format!(" authorization=\"Bearer {}\"", r.id(40)),
                _ => " wire routing 021000021 confirmed".to_owned(),
            },
            _ => String::new(),
        };
        out.push_str(&format!(
            "2024-03-{:02}T11:{:02}:{:02}.{:03}Z INFO plaid::client: request completed method=POST path=/transactions/get status=200 elapsed_ms={} item_id={} request_id={}{}\n",
            1 + line % 28,
            r.next() % 60,
            r.next() % 60,
            r.next() % 1000,
            r.next() % 900,
            r.id(37),
            r.id(15),
            secret
        ));
    }
    out
}
