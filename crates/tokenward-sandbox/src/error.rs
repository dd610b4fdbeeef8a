//! Plaid-shaped error responses, and the errors of the emulator's own API.

use axum::http::StatusCode;
use serde::Serialize;

/// An error the emulator answers with, in the shape of Plaid's `PlaidError` object.
///
/// Messages are fixed strings or built from field names; none ever contains a value from the
/// request, so no token or secret can come back in an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) error_type: &'static str,
    pub(crate) error_code: &'static str,
    pub(crate) message: String,
    pub(crate) display_message: Option<&'static str>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        error_type: &'static str,
        error_code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            error_type,
            error_code,
            message: message.into(),
            display_message: None,
        }
    }

    /// The body is not JSON, or not a JSON object.
    pub(crate) fn invalid_body() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "INVALID_BODY",
            "body could not be parsed as JSON",
        )
    }

    /// Required fields are absent (or `null`).
    pub(crate) fn missing_fields(fields: &[&str]) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "MISSING_FIELDS",
            format!(
                "the following required fields are missing: {}",
                fields.join(", ")
            ),
        )
    }

    /// A field has the wrong type or an unacceptable value; `why` must not quote the value.
    pub(crate) fn invalid_field(why: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "INVALID_FIELD",
            why,
        )
    }

    /// The body is larger than the configured limit.
    pub(crate) fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "INVALID_REQUEST",
            "INVALID_BODY",
            format!("request body exceeds the maximum size of {limit} bytes"),
        )
    }

    /// No route for this path.
    pub(crate) fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "INVALID_REQUEST",
            "NOT_FOUND",
            "not found",
        )
    }

    /// A method other than `POST`.
    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "INVALID_REQUEST",
            "INVALID_HTTP_METHOD",
            "only POST requests are accepted",
        )
    }

    /// A wrong `client_id` / `secret` pair.
    pub(crate) fn invalid_api_keys() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            "INVALID_API_KEYS",
            "invalid client_id or secret provided",
        )
    }

    /// An unknown, rotated-away or removed access token.
    pub(crate) fn invalid_access_token() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            "INVALID_ACCESS_TOKEN",
            "could not find matching access token",
        )
    }

    /// An unknown, expired or already exchanged public token.
    pub(crate) fn invalid_public_token(why: &'static str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            "INVALID_PUBLIC_TOKEN",
            why,
        )
    }

    /// An unknown webhook verification key id.
    pub(crate) fn invalid_key_id() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            "INVALID_WEBHOOK_VERIFICATION_KEY_ID",
            "invalid key_id provided",
        )
    }

    /// An unknown institution id.
    pub(crate) fn invalid_institution() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            "INVALID_INSTITUTION",
            "invalid institution_id provided",
        )
    }

    /// An `account_id` in a filter that does not belong to the Item.
    pub(crate) fn invalid_account_id() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            "INVALID_ACCOUNT_ID",
            "one or more of the account IDs is invalid",
        )
    }

    /// The Item needs the user to log in again (after `/sandbox/item/reset_login`).
    pub(crate) fn item_login_required() -> Self {
        ApiError {
            display_message: Some(
                "the login details of this item have changed (credentials, MFA, or required \
                 user action) and a user login is required to update this information. use \
                 Link's update mode to restore the item to a good state",
            ),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "ITEM_ERROR",
                "ITEM_LOGIN_REQUIRED",
                "the login details of this item have changed (credentials, MFA, or required \
                 user action) and a user login is required to update this information. use \
                 Link's update mode to restore the item to a good state",
            )
        }
    }

    /// `/sandbox/item/fire_webhook` on an Item without a webhook URL.
    pub(crate) fn no_webhook() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "SANDBOX_ERROR",
            "SANDBOX_WEBHOOK_INVALID",
            "the webhook for this Item is missing; set one with /item/webhook/update",
        )
    }

    /// A store cap is reached: `ADDITION_LIMIT` for Items (as Plaid's sandbox says when an
    /// account holds too many), `RATE_LIMIT` for tokens.
    pub(crate) fn limit_reached(code: &'static str, what: &'static str) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMIT_EXCEEDED",
            code,
            format!("the sandbox holds the maximum number of {what}; remove some and try again"),
        )
    }

    /// An injected 429.
    pub(crate) fn rate_limited() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMIT_EXCEEDED",
            "RATE_LIMIT",
            "rate limit exceeded for attempts to access this item. please try again later",
        )
    }

    /// An injected or genuine 500.
    pub(crate) fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "API_ERROR",
            "INTERNAL_SERVER_ERROR",
            "an unexpected error occurred",
        )
    }

    /// The body of the response, with its `request_id`.
    pub(crate) fn body(&self, request_id: &str) -> ErrorBody<'_> {
        ErrorBody {
            display_message: self.display_message,
            documentation_url: "https://plaid.com/docs/errors/",
            error_code: self.error_code,
            error_code_reason: None,
            error_message: &self.message,
            error_type: self.error_type,
            request_id: request_id.to_owned(),
            causes: [],
            status: None,
            suggested_action: None,
        }
    }

    /// The error object as it appears inside an Item (`/item/get`) or a webhook: no
    /// `request_id`, and `status` set for webhooks.
    pub(crate) fn embedded(&self, with_status: bool) -> serde_json::Value {
        serde_json::json!({
            "display_message": self.display_message,
            "documentation_url": "https://plaid.com/docs/errors/",
            "error_code": self.error_code,
            "error_code_reason": null,
            "error_message": self.message,
            "error_type": self.error_type,
            "causes": [],
            "status": if with_status { Some(self.status.as_u16()) } else { None },
            "suggested_action": null,
        })
    }
}

/// Plaid's error object on the wire.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorBody<'a> {
    display_message: Option<&'static str>,
    documentation_url: &'static str,
    error_code: &'static str,
    error_code_reason: Option<&'static str>,
    error_message: &'a str,
    error_type: &'static str,
    request_id: String,
    causes: [(); 0],
    status: Option<u16>,
    suggested_action: Option<&'static str>,
}

/// Why the emulator could not start, or an operation of its Rust API failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The listening socket could not be bound.
    #[error("could not listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The OS random generator or the key generator failed.
    #[error("could not generate key material")]
    Crypto,
    /// The configuration is inconsistent; the text says which setting.
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    /// No Item has that id.
    #[error("no such item")]
    UnknownItem,
}
