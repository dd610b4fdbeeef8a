//! Signed webhooks: ES256 keys (served as JWKs, rotated on demand), the `Plaid-Verification`
//! JWT, and delivery over HTTP.
//!
//! The signature follows Plaid's scheme exactly: a compact JWS with header
//! `{"alg":"ES256","kid":<key id>,"typ":"JWT"}` and payload
//! `{"iat":<unix seconds>,"request_body_sha256":<lowercase hex SHA-256 of the body bytes>}`,
//! signed with ECDSA P-256 / SHA-256 in the fixed-length `r ‖ s` form JWS uses (RFC 7518
//! §3.4). The body is the JSON Plaid sends, pretty-printed with two-space indentation.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ring::digest;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use tokenward_plaid::jwk::JwkPublicKey;

use crate::error::SandboxError;
use crate::ids;

/// How long a delivery may take before it is given up, as Plaid's 10 s.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many delivery records are kept.
const MAX_DELIVERY_RECORDS: usize = 256;

/// How many keys (current and expired) are kept; the oldest expired ones go first.
const MAX_KEYS: usize = 64;

struct SigningKey {
    pair: EcdsaKeyPair,
    jwk: JwkPublicKey,
}

/// The emulator's webhook signing keys: the current one last.
pub(crate) struct KeyStore {
    keys: Vec<SigningKey>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    pub(crate) fn new(rng: &SystemRandom, now: i64) -> Result<Self, SandboxError> {
        Ok(KeyStore {
            keys: vec![generate(rng, now)?],
        })
    }

    /// Expires the current key at `now` and makes a new one current; returns its key id.
    pub(crate) fn rotate(&mut self, rng: &SystemRandom, now: i64) -> Result<String, SandboxError> {
        let fresh = generate(rng, now)?;
        let kid = fresh.jwk.kid.clone();
        if let Some(current) = self.keys.last_mut() {
            current.jwk.expired_at = Some(now);
        }
        self.keys.push(fresh);
        if self.keys.len() > MAX_KEYS {
            self.keys.remove(0);
        }
        Ok(kid)
    }

    pub(crate) fn current_kid(&self) -> Option<&str> {
        self.keys.last().map(|k| k.jwk.kid.as_str())
    }

    /// The public key with id `kid`, current or expired.
    pub(crate) fn jwk(&self, kid: &str) -> Option<&JwkPublicKey> {
        self.keys.iter().map(|k| &k.jwk).find(|jwk| jwk.kid == kid)
    }

    /// The `Plaid-Verification` JWT for `body`, signed with the current key at `iat`.
    pub(crate) fn sign(&self, rng: &SystemRandom, body: &[u8], iat: i64) -> Option<String> {
        let key = self.keys.last()?;
        let header = serde_json::json!({"alg": "ES256", "kid": key.jwk.kid, "typ": "JWT"});
        let payload = serde_json::json!({"iat": iat, "request_body_sha256": sha256_hex(body)});
        let mut jwt = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).ok()?);
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).ok()?));
        let signature = key.pair.sign(rng, jwt.as_bytes()).ok()?;
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        Some(jwt)
    }
}

fn generate(rng: &SystemRandom, now: i64) -> Result<SigningKey, SandboxError> {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng)
        .map_err(|_| SandboxError::Crypto)?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), rng)
        .map_err(|_| SandboxError::Crypto)?;
    // An uncompressed SEC1 point: 0x04 ‖ x (32) ‖ y (32).
    let point = pair.public_key().as_ref();
    let (x, y) = match point {
        [0x04, rest @ ..] if rest.len() == 64 => rest.split_at(32),
        _ => return Err(SandboxError::Crypto),
    };
    let kid = ids::uuid_v4(ids::random_bytes::<16>(rng).map_err(|_| SandboxError::Crypto)?);
    let jwk = JwkPublicKey::es256(
        kid,
        URL_SAFE_NO_PAD.encode(x),
        URL_SAFE_NO_PAD.encode(y),
        now,
    );
    Ok(SigningKey { pair, jwk })
}

/// Lowercase hex SHA-256.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = digest::digest(&digest::SHA256, bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest.as_ref() {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// What happened to one webhook the emulator sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookDelivery {
    /// The URL it was sent to.
    pub url: String,
    /// `webhook_type` of the body, e.g. `ITEM`.
    pub webhook_type: String,
    /// `webhook_code` of the body, e.g. `WEBHOOK_UPDATE_ACKNOWLEDGED`.
    pub webhook_code: String,
    /// The Item it is about.
    pub item_id: String,
    /// The HTTP status the receiver answered with; `None` when there was no answer.
    pub status: Option<u16>,
    /// Why there was no answer (connection refused, timeout, not an `http://` URL…).
    pub error: Option<String>,
}

/// Sends webhooks and remembers the latest outcomes.
pub(crate) struct Deliverer {
    client: Client<HttpConnector, Body>,
    records: std::sync::Mutex<VecDeque<WebhookDelivery>>,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer").finish_non_exhaustive()
    }
}

impl Deliverer {
    pub(crate) fn new() -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Deliverer {
            client,
            records: std::sync::Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn records(&self) -> Vec<WebhookDelivery> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// POSTs `body` with its `Plaid-Verification` JWT to `record.url` and records the outcome.
    pub(crate) async fn deliver(&self, mut record: WebhookDelivery, body: Vec<u8>, jwt: String) {
        let request = Request::post(record.url.as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .header("Plaid-Verification", jwt)
            .header(header::USER_AGENT, "Plaid Verifier")
            .body(Body::from(body));
        match request {
            _ if !record.url.starts_with("http://") => {
                record.error = Some("only http:// webhook URLs are delivered".to_owned());
            }
            Err(_) => record.error = Some("invalid webhook URL".to_owned()),
            Ok(request) => {
                match tokio::time::timeout(DELIVERY_TIMEOUT, self.client.request(request)).await {
                    Ok(Ok(response)) => record.status = Some(response.status().as_u16()),
                    Ok(Err(e)) => {
                        record.error = Some(if e.is_connect() {
                            "could not connect".to_owned()
                        } else {
                            "the request failed".to_owned()
                        });
                    }
                    Err(_) => record.error = Some("timed out".to_owned()),
                }
            }
        }
        let mut records = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if records.len() == MAX_DELIVERY_RECORDS {
            records.pop_front();
        }
        records.push_back(record);
    }
}
