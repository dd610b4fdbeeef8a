//! Plaid's webhook verification key: a P-256 public key as a JSON Web Key.

use serde::{Deserialize, Serialize};

/// A JSON Web Key as `/webhook_verification_key/get` returns it (schema `JWKPublicKey`).
///
/// Plaid signs webhooks with ES256; the key is an EC P-256 point given by its base64url `x`
/// and `y` coordinates. Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JwkPublicKey {
    /// The algorithm family of the key; `ES256` for Plaid's webhook keys.
    pub alg: String,
    /// The curve; `P-256`.
    pub crv: String,
    /// The key id, matched against the `kid` of a `Plaid-Verification` JWT.
    pub kid: String,
    /// The key type; `EC`.
    pub kty: String,
    /// The intended use; `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// The x coordinate, base64url without padding (32 bytes).
    pub x: String,
    /// The y coordinate, base64url without padding (32 bytes).
    pub y: String,
    /// When the key was created, in Unix seconds.
    pub created_at: i64,
    /// When the key expired, in Unix seconds; `None` while it is current.
    pub expired_at: Option<i64>,
}

impl JwkPublicKey {
    /// A P-256 ES256 signing key's public half, as Plaid publishes it.
    #[must_use]
    pub fn es256(kid: String, x: String, y: String, created_at: i64) -> Self {
        Self {
            alg: "ES256".to_owned(),
            crv: "P-256".to_owned(),
            kid,
            kty: "EC".to_owned(),
            use_: "sig".to_owned(),
            x,
            y,
            created_at,
            expired_at: None,
        }
    }
}
