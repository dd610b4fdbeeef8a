//! `/webhook_verification_key/get`.

use serde::{Deserialize, Serialize};

use crate::jwk::JwkPublicKey;

/// The body of `/webhook_verification_key/get` (spec `WebhookVerificationKeyGetRequest`).
///
/// Not `#[non_exhaustive]`, unlike the other models: webhook verification code builds it
/// directly, and the spec has had this one field since 2020.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookVerificationKeyGetRequest {
    /// The `kid` from the header of the `Plaid-Verification` JWT.
    pub key_id: String,
}

impl WebhookVerificationKeyGetRequest {
    /// Asks for the key `key_id`.
    #[must_use]
    pub fn new(key_id: impl Into<String>) -> Self {
        WebhookVerificationKeyGetRequest {
            key_id: key_id.into(),
        }
    }
}

/// The answer of `/webhook_verification_key/get` (spec `WebhookVerificationKeyGetResponse`).
///
/// Not `#[non_exhaustive]`, for the same reason as the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookVerificationKeyGetResponse {
    /// The public key (JWK).
    pub key: JwkPublicKey,
    /// Plaid's id of the request.
    pub request_id: String,
}

impl WebhookVerificationKeyGetResponse {
    /// A response.
    #[must_use]
    pub fn new(key: JwkPublicKey, request_id: impl Into<String>) -> Self {
        WebhookVerificationKeyGetResponse {
            key,
            request_id: request_id.into(),
        }
    }
}
