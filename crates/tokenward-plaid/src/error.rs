//! Errors: Plaid's error object, and the crate's [`Error`] for everything a call can fail with.
//!
//! # Security
//!
//! No error of this module contains a token, the client secret, a request body or a response
//! body. Plaid's free-text fields (`error_message`, `display_message`, `suggested_action`,
//! unknown codes) could in theory echo input, so they are scrubbed with
//! [`Policy::plaid`](tokenward_redact::Policy::plaid) and capped in length when a
//! [`PlaidError`] is built or decoded. Decode errors keep the position and category of the
//! failure, never serde's message (which can quote the offending value).

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use zeroize::Zeroize as _;

use crate::api::Endpoint;
use crate::models::open_enum::open_enum;

/// The longest free-text field kept from a Plaid error, in bytes; longer text is cut.
pub const MAX_ERROR_TEXT_LEN: usize = 1024;

/// The most `causes` kept from a Plaid error.
const MAX_CAUSES: usize = 32;

open_enum! {
    /// A broad category of Plaid error (spec `PlaidErrorType`, 24 values). Safe to match on.
    pub enum ErrorType {
        InvalidRequest = "INVALID_REQUEST",
        InvalidResult = "INVALID_RESULT",
        InvalidInput = "INVALID_INPUT",
        InstitutionError = "INSTITUTION_ERROR",
        RateLimitExceeded = "RATE_LIMIT_EXCEEDED",
        ApiError = "API_ERROR",
        ItemError = "ITEM_ERROR",
        AssetReportError = "ASSET_REPORT_ERROR",
        BaseReportError = "BASE_REPORT_ERROR",
        RecaptchaError = "RECAPTCHA_ERROR",
        OauthError = "OAUTH_ERROR",
        PaymentError = "PAYMENT_ERROR",
        BankTransferError = "BANK_TRANSFER_ERROR",
        IncomeVerificationError = "INCOME_VERIFICATION_ERROR",
        MicrodepositsError = "MICRODEPOSITS_ERROR",
        SandboxError = "SANDBOX_ERROR",
        PartnerError = "PARTNER_ERROR",
        SignalError = "SIGNAL_ERROR",
        TransactionsError = "TRANSACTIONS_ERROR",
        TransactionError = "TRANSACTION_ERROR",
        TransferError = "TRANSFER_ERROR",
        CheckReportError = "CHECK_REPORT_ERROR",
        ConsumerReportError = "CONSUMER_REPORT_ERROR",
        UserError = "USER_ERROR",
    }
}

open_enum! {
    /// A Plaid error code (spec `PlaidError.error_code`; the spec leaves it a plain string).
    ///
    /// The known values are the codes a token lifecycle meets (plaid-api.md §3.2) and a few
    /// request-validation codes; any other code is kept in `Unknown`.
    pub enum ErrorCode {
        /// The access token is malformed, of another environment, or dead (rotated or removed).
        InvalidAccessToken = "INVALID_ACCESS_TOKEN",
        /// The client id or secret is wrong.
        InvalidApiKeys = "INVALID_API_KEYS",
        /// The client may not use this environment.
        UnauthorizedEnvironment = "UNAUTHORIZED_ENVIRONMENT",
        /// The public token is malformed, used or expired (30 minutes).
        InvalidPublicToken = "INVALID_PUBLIC_TOKEN",
        /// The Link token is malformed or expired.
        InvalidLinkToken = "INVALID_LINK_TOKEN",
        /// The user must log in again through Link's update mode.
        ItemLoginRequired = "ITEM_LOGIN_REQUIRED",
        /// Plaid has not finished fetching the data yet.
        ProductNotReady = "PRODUCT_NOT_READY",
        /// The user did not grant access to the product.
        AccessNotGranted = "ACCESS_NOT_GRANTED",
        /// The Item does not exist.
        ItemNotFound = "ITEM_NOT_FOUND",
        /// The Item has no accounts left.
        NoAccounts = "NO_ACCOUNTS",
        /// The user revoked the Item's access.
        UserPermissionRevoked = "USER_PERMISSION_REVOKED",
        /// The user's credentials were wrong.
        InvalidCredentials = "INVALID_CREDENTIALS",
        /// The MFA answer was wrong.
        InvalidMfa = "INVALID_MFA",
        /// The account is locked at the institution.
        ItemLocked = "ITEM_LOCKED",
        /// The user must act at the institution first.
        UserSetupRequired = "USER_SETUP_REQUIRED",
        /// Too many requests for this Item or client.
        RateLimit = "RATE_LIMIT",
        /// `/accounts/get` rate limit.
        AccountsLimit = "ACCOUNTS_LIMIT",
        /// `/accounts/balance/get` rate limit.
        AccountsBalanceGetLimit = "ACCOUNTS_BALANCE_GET_LIMIT",
        /// `/item/get` rate limit.
        ItemGetLimit = "ITEM_GET_LIMIT",
        /// `/transactions/get` rate limit.
        TransactionsLimit = "TRANSACTIONS_LIMIT",
        /// `/transactions/sync` rate limit.
        TransactionsSyncLimit = "TRANSACTIONS_SYNC_LIMIT",
        /// `/transactions/refresh` rate limit.
        TransactionsRefreshLimit = "TRANSACTIONS_REFRESH_LIMIT",
        /// The institution's rate limit.
        InstitutionRateLimit = "INSTITUTION_RATE_LIMIT",
        /// A Plaid-side failure.
        InternalServerError = "INTERNAL_SERVER_ERROR",
        /// Plaid is in maintenance.
        PlannedMaintenance = "PLANNED_MAINTENANCE",
        /// The institution is down.
        InstitutionDown = "INSTITUTION_DOWN",
        /// The institution does not answer.
        InstitutionNotResponding = "INSTITUTION_NOT_RESPONDING",
        /// The Item's transactions changed during pagination: restart from the first cursor.
        TransactionsSyncMutationDuringPagination = "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION",
        /// A field has an invalid value.
        InvalidField = "INVALID_FIELD",
        /// Required fields are missing.
        MissingFields = "MISSING_FIELDS",
        /// The body is not valid JSON.
        InvalidBody = "INVALID_BODY",
        /// Required headers are missing or invalid.
        InvalidHeaders = "INVALID_HEADERS",
        /// The path does not exist.
        NotFound = "NOT_FOUND",
        /// The webhook verification key id is unknown.
        InvalidWebhookVerificationKeyId = "INVALID_WEBHOOK_VERIFICATION_KEY_ID",
    }
}

/// Plaid's error object (spec `PlaidError`), as returned with a 4xx or 5xx status and inside
/// `Item.error`.
///
/// Free text is scrubbed and capped (secrets replaced by placeholders, at most
/// [`MAX_ERROR_TEXT_LEN`] bytes), so `Debug`, `Display` and
/// `Serialize` are safe to log. Fields are read through accessors; the constructor and the
/// `with_*` methods scrub too, so no path stores unscrubbed text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlaidError {
    error_type: ErrorType,
    error_code: ErrorCode,
    error_code_reason: Option<String>,
    error_message: String,
    display_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    causes: Vec<PlaidErrorCause>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    documentation_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suggested_action: Option<String>,
}

impl PlaidError {
    /// An error with its type, code and developer message (scrubbed and capped).
    #[must_use]
    pub fn new(error_type: ErrorType, error_code: ErrorCode, error_message: &str) -> Self {
        PlaidError {
            error_type: scrub_open(error_type),
            error_code: scrub_open(error_code),
            error_code_reason: None,
            error_message: scrub(error_message.to_owned()),
            display_message: None,
            request_id: None,
            causes: Vec::new(),
            status: None,
            documentation_url: None,
            suggested_action: None,
        }
    }

    /// Sets the user-facing message (scrubbed and capped).
    #[must_use]
    pub fn with_display_message(mut self, message: &str) -> Self {
        self.display_message = Some(scrub(message.to_owned()));
        self
    }

    /// Sets Plaid's request id.
    #[must_use]
    pub fn with_request_id(mut self, request_id: &str) -> Self {
        self.request_id = Some(scrub(request_id.to_owned()));
        self
    }

    /// Sets the HTTP status carried in the body (Plaid sends it in webhooks).
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Sets the documentation URL.
    #[must_use]
    pub fn with_documentation_url(mut self, url: &str) -> Self {
        self.documentation_url = Some(scrub(url.to_owned()));
        self
    }

    /// Sets the suggested action (scrubbed and capped).
    #[must_use]
    pub fn with_suggested_action(mut self, action: &str) -> Self {
        self.suggested_action = Some(scrub(action.to_owned()));
        self
    }

    /// Sets the reason of the code (OAuth Item errors).
    #[must_use]
    pub fn with_error_code_reason(mut self, reason: &str) -> Self {
        self.error_code_reason = Some(scrub(reason.to_owned()));
        self
    }

    /// The broad category.
    #[must_use]
    pub fn error_type(&self) -> &ErrorType {
        &self.error_type
    }

    /// The code.
    #[must_use]
    pub fn error_code(&self) -> &ErrorCode {
        &self.error_code
    }

    /// The reason of the code, e.g. `OAUTH_CONSENT_EXPIRED`.
    #[must_use]
    pub fn error_code_reason(&self) -> Option<&str> {
        self.error_code_reason.as_deref()
    }

    /// The developer message, scrubbed. Not for programmatic use: it changes over time.
    #[must_use]
    pub fn error_message(&self) -> &str {
        &self.error_message
    }

    /// The user-facing message, scrubbed; `None` when the error is not about the user.
    #[must_use]
    pub fn display_message(&self) -> Option<&str> {
        self.display_message.as_deref()
    }

    /// Plaid's id of the request, for support.
    #[must_use]
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// Per-Item causes, for requests about several Items.
    #[must_use]
    pub fn causes(&self) -> &[PlaidErrorCause] {
        &self.causes
    }

    /// The HTTP status in the body (webhook errors only; API errors carry it in the response).
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The documentation page of the error.
    #[must_use]
    pub fn documentation_url(&self) -> Option<&str> {
        self.documentation_url.as_deref()
    }

    /// Plaid's suggested fix, scrubbed.
    #[must_use]
    pub fn suggested_action(&self) -> Option<&str> {
        self.suggested_action.as_deref()
    }

    /// `INVALID_ACCESS_TOKEN`: the token is dead (rotated, removed) or of another environment.
    #[must_use]
    pub fn is_invalid_access_token(&self) -> bool {
        self.error_code == ErrorCode::InvalidAccessToken
    }

    /// `ITEM_ERROR`: about the Item (login, consent, institution account), not the request.
    #[must_use]
    pub fn is_item_error(&self) -> bool {
        self.error_type == ErrorType::ItemError
    }

    /// `ITEM_LOGIN_REQUIRED`: the user must go through Link's update mode.
    #[must_use]
    pub fn is_login_required(&self) -> bool {
        self.error_code == ErrorCode::ItemLoginRequired
    }

    /// The user must act (update mode, consent, institution) before the Item works again.
    #[must_use]
    pub fn requires_user_action(&self) -> bool {
        matches!(
            self.error_code,
            ErrorCode::ItemLoginRequired
                | ErrorCode::AccessNotGranted
                | ErrorCode::NoAccounts
                | ErrorCode::UserPermissionRevoked
                | ErrorCode::InvalidCredentials
                | ErrorCode::InvalidMfa
                | ErrorCode::ItemLocked
                | ErrorCode::UserSetupRequired
        )
    }

    /// `RATE_LIMIT_EXCEEDED`.
    #[must_use]
    pub fn is_rate_limited(&self) -> bool {
        self.error_type == ErrorType::RateLimitExceeded
    }

    /// The client id, secret or environment is wrong: a configuration error, never retried.
    #[must_use]
    pub fn is_config_error(&self) -> bool {
        matches!(
            self.error_code,
            ErrorCode::InvalidApiKeys | ErrorCode::UnauthorizedEnvironment
        )
    }

    /// Sending the same request later may succeed without anyone acting: rate limits,
    /// Plaid-side errors, institution outages, data not ready yet.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self.error_type,
            ErrorType::RateLimitExceeded | ErrorType::ApiError | ErrorType::InstitutionError
        ) || self.error_code == ErrorCode::ProductNotReady
    }
}

impl fmt::Display for PlaidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.error_type, self.error_code)?;
        if let Some(request_id) = &self.request_id {
            write!(f, " (request id {request_id})")?;
        }
        if !self.error_message.is_empty() {
            write!(f, ": {}", self.error_message)?;
        }
        Ok(())
    }
}

impl std::error::Error for PlaidError {}

impl<'de> Deserialize<'de> for PlaidError {
    /// Reads Plaid's error object, scrubbing and capping its free text. Unknown fields are
    /// ignored; malformed `causes` entries are dropped.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawPlaidError::deserialize(deserializer)?;
        let causes = match raw.causes {
            Some(serde_json::Value::Array(items)) => items
                .into_iter()
                .filter_map(|item| serde_json::from_value::<RawCause>(item).ok())
                .take(MAX_CAUSES)
                .map(PlaidErrorCause::from)
                .collect(),
            _ => Vec::new(),
        };
        Ok(PlaidError {
            error_type: ErrorType::from(scrub(raw.error_type)),
            error_code: ErrorCode::from(scrub(raw.error_code)),
            error_code_reason: raw.error_code_reason.map(scrub),
            error_message: scrub(raw.error_message),
            display_message: raw.display_message.map(scrub),
            request_id: raw.request_id.map(scrub),
            causes,
            status: raw.status,
            documentation_url: raw.documentation_url.map(scrub),
            suggested_action: raw.suggested_action.map(scrub),
        })
    }
}

/// One Item's part of an error about several Items (spec `PlaidError.causes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlaidErrorCause {
    #[serde(skip_serializing_if = "Option::is_none")]
    item_id: Option<String>,
    error_type: ErrorType,
    error_code: ErrorCode,
    error_message: String,
    display_message: Option<String>,
}

impl PlaidErrorCause {
    /// The Item concerned.
    #[must_use]
    pub fn item_id(&self) -> Option<&str> {
        self.item_id.as_deref()
    }

    /// The broad category.
    #[must_use]
    pub fn error_type(&self) -> &ErrorType {
        &self.error_type
    }

    /// The code.
    #[must_use]
    pub fn error_code(&self) -> &ErrorCode {
        &self.error_code
    }

    /// The developer message, scrubbed.
    #[must_use]
    pub fn error_message(&self) -> &str {
        &self.error_message
    }

    /// The user-facing message, scrubbed.
    #[must_use]
    pub fn display_message(&self) -> Option<&str> {
        self.display_message.as_deref()
    }
}

/// Whether a failed request may have been applied by Plaid.
///
/// The rotation crate depends on this: after an [`Ambiguous`](Outcome::Ambiguous)
/// `/item/access_token/invalidate`, the old token may already be dead and the new one lost, so
/// it must probe (with `/item/get` on the old token) instead of calling invalidate again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Plaid answered with a definite status (2xx or 4xx): a 4xx error was not applied.
    Known,
    /// Nothing reached Plaid (connect failure, bad configuration): not applied, safe to resend.
    NotSent,
    /// The request may have been applied: sent, but no definite answer came back (a timeout or
    /// a reset after sending, a 5xx, a 2xx body that could not be read). For a read-only
    /// endpoint this is harmless; for a state-changing one, find out before resending.
    Ambiguous,
}

impl Outcome {
    /// Whether the request may have changed state at Plaid without us knowing.
    #[must_use]
    pub fn is_ambiguous(self) -> bool {
        self == Outcome::Ambiguous
    }

    /// The outcome of an HTTP answer with `status`: 5xx is ambiguous, anything else known.
    #[must_use]
    pub fn for_status(status: u16) -> Outcome {
        if status >= 500 {
            Outcome::Ambiguous
        } else {
            Outcome::Known
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Known => "known outcome",
            Outcome::NotSent => "not sent",
            Outcome::Ambiguous => "ambiguous outcome: plaid may have applied the request",
        })
    }
}

/// What went wrong below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// The connection could not be made (refused, DNS, TLS handshake): nothing was sent.
    Connect,
    /// The connection failed after the request was (or may have been) sent.
    Connection,
    /// Reading the response body failed.
    Body,
    /// Anything else.
    Other,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Connect => "could not connect",
            TransportKind::Connection => "connection failed after sending",
            TransportKind::Body => "could not read the response body",
            TransportKind::Other => "request failed",
        })
    }
}

/// Why a response could not be decoded. Carries no part of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeReason {
    /// Not JSON, or cut short.
    Syntax {
        /// 1-based line of the failure.
        line: usize,
        /// 1-based column of the failure.
        column: usize,
    },
    /// JSON, but not the expected shape (a missing field, a wrong type, a bad token).
    Shape {
        /// 1-based line of the failure.
        line: usize,
        /// 1-based column of the failure.
        column: usize,
    },
    /// An error status whose body is not a Plaid error object.
    NotAPlaidError,
    /// The body is larger than the client accepts.
    TooLarge,
}

impl DecodeReason {
    /// Classifies a `serde_json` error by position and kind only: its message can quote the
    /// offending value, which may be a token.
    #[must_use]
    pub fn from_json(err: &serde_json::Error) -> Self {
        let (line, column) = (err.line(), err.column());
        match err.classify() {
            serde_json::error::Category::Data => DecodeReason::Shape { line, column },
            _ => DecodeReason::Syntax { line, column },
        }
    }
}

impl fmt::Display for DecodeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeReason::Syntax { line, column } => {
                write!(f, "invalid json at line {line} column {column}")
            }
            DecodeReason::Shape { line, column } => {
                write!(f, "unexpected json shape at line {line} column {column}")
            }
            DecodeReason::NotAPlaidError => {
                f.write_str("error status without a plaid error object")
            }
            DecodeReason::TooLarge => f.write_str("response body too large"),
        }
    }
}

/// A failed Plaid call.
///
/// Every variant says which [`Outcome`] the failure has ([`Error::outcome`]); no variant holds
/// a token, the secret, or a request or response body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Plaid answered with an error object.
    #[error("{endpoint}: plaid error (http {status}): {error}")]
    Plaid {
        /// The endpoint called.
        endpoint: Endpoint,
        /// The HTTP status.
        status: u16,
        /// The error object, scrubbed.
        error: Box<PlaidError>,
        /// Known for 4xx, ambiguous for 5xx.
        outcome: Outcome,
    },
    /// The connection failed.
    #[error("{endpoint}: {kind} ({outcome})")]
    Transport {
        /// The endpoint called.
        endpoint: Endpoint,
        /// What failed.
        kind: TransportKind,
        /// Not sent, or ambiguous.
        outcome: Outcome,
        /// The underlying error, without URL, headers or body.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// No answer in time.
    #[error("{endpoint}: timed out ({outcome})")]
    Timeout {
        /// The endpoint called.
        endpoint: Endpoint,
        /// Not sent (connect timeout), or ambiguous.
        outcome: Outcome,
    },
    /// The answer could not be understood. The body is not kept.
    #[error("{endpoint}: could not decode the response (http {status}): {reason}")]
    Decode {
        /// The endpoint called.
        endpoint: Endpoint,
        /// The HTTP status.
        status: u16,
        /// Why, without the body.
        reason: DecodeReason,
        /// Ambiguous for a 2xx or 5xx answer, known for 4xx.
        outcome: Outcome,
    },
    /// The request could not be encoded (never for this crate's models).
    #[error("{endpoint}: could not encode the request")]
    Encode {
        /// The endpoint called.
        endpoint: Endpoint,
    },
    /// A setting or environment variable is missing or invalid. Names it, never its value.
    #[error("invalid configuration: {name} {reason}")]
    Config {
        /// The variable or setting, e.g. `PLAID_SECRET`.
        name: Cow<'static, str>,
        /// What is wrong, e.g. `is not set`.
        reason: Cow<'static, str>,
    },
}

impl Error {
    /// An error from a Plaid error object received with `status`.
    #[must_use]
    pub fn plaid(endpoint: Endpoint, status: u16, error: PlaidError) -> Self {
        Error::Plaid {
            endpoint,
            status,
            error: Box::new(error),
            outcome: Outcome::for_status(status),
        }
    }

    /// A configuration error about `name`.
    #[must_use]
    pub fn config(
        name: impl Into<Cow<'static, str>>,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        Error::Config {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// Whether the request may have been applied (see [`Outcome`]).
    #[must_use]
    pub fn outcome(&self) -> Outcome {
        match self {
            Error::Plaid { outcome, .. }
            | Error::Transport { outcome, .. }
            | Error::Timeout { outcome, .. }
            | Error::Decode { outcome, .. } => *outcome,
            Error::Encode { .. } | Error::Config { .. } => Outcome::NotSent,
        }
    }

    /// The endpoint called, if the failure is about a call.
    #[must_use]
    pub fn endpoint(&self) -> Option<Endpoint> {
        match self {
            Error::Plaid { endpoint, .. }
            | Error::Transport { endpoint, .. }
            | Error::Timeout { endpoint, .. }
            | Error::Decode { endpoint, .. }
            | Error::Encode { endpoint } => Some(*endpoint),
            Error::Config { .. } => None,
        }
    }

    /// Plaid's error object, if Plaid sent one.
    #[must_use]
    pub fn plaid_error(&self) -> Option<&PlaidError> {
        match self {
            Error::Plaid { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The HTTP status, if an answer came.
    #[must_use]
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::Plaid { status, .. } | Error::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Plaid's request id, for support.
    #[must_use]
    pub fn request_id(&self) -> Option<&str> {
        self.plaid_error().and_then(PlaidError::request_id)
    }

    /// Sending the same request later may succeed: 429, 5xx, transient Plaid error types,
    /// connection failures and timeouts.
    ///
    /// Whether it is *safe* to resend is another question: for a state-changing endpoint with
    /// an [`Ambiguous`](Outcome::Ambiguous) outcome, find out what happened first.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Plaid { status, error, .. } => {
                *status == 429 || *status >= 500 || error.is_transient()
            }
            Error::Transport { .. } | Error::Timeout { .. } => true,
            Error::Decode { status, .. } => *status == 429 || *status >= 500,
            Error::Encode { .. } | Error::Config { .. } => false,
        }
    }

    /// Rate limited: HTTP 429 or `RATE_LIMIT_EXCEEDED`.
    #[must_use]
    pub fn is_rate_limited(&self) -> bool {
        match self {
            Error::Plaid { status, error, .. } => *status == 429 || error.is_rate_limited(),
            Error::Decode { status, .. } => *status == 429,
            _ => false,
        }
    }

    /// `ITEM_ERROR`.
    #[must_use]
    pub fn is_item_error(&self) -> bool {
        self.plaid_error().is_some_and(PlaidError::is_item_error)
    }

    /// `INVALID_ACCESS_TOKEN`: the token is dead or of another environment.
    #[must_use]
    pub fn is_invalid_access_token(&self) -> bool {
        self.plaid_error()
            .is_some_and(PlaidError::is_invalid_access_token)
    }

    /// `ITEM_LOGIN_REQUIRED`.
    #[must_use]
    pub fn is_login_required(&self) -> bool {
        self.plaid_error()
            .is_some_and(PlaidError::is_login_required)
    }

    /// The user must act before the Item works again (see
    /// [`PlaidError::requires_user_action`]).
    #[must_use]
    pub fn requires_user_action(&self) -> bool {
        self.plaid_error()
            .is_some_and(PlaidError::requires_user_action)
    }

    /// Wrong credentials or environment: [`Error::Config`], `INVALID_API_KEYS` or
    /// `UNAUTHORIZED_ENVIRONMENT`.
    #[must_use]
    pub fn is_config_error(&self) -> bool {
        matches!(self, Error::Config { .. })
            || self.plaid_error().is_some_and(PlaidError::is_config_error)
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// The wire form of a Plaid error, before scrubbing.
#[derive(Deserialize)]
struct RawPlaidError {
    #[serde(default)]
    error_type: String,
    #[serde(default)]
    error_code: String,
    #[serde(default)]
    error_code_reason: Option<String>,
    #[serde(default)]
    error_message: String,
    #[serde(default)]
    display_message: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    causes: Option<serde_json::Value>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    documentation_url: Option<String>,
    #[serde(default)]
    suggested_action: Option<String>,
}

/// The wire form of a cause, before scrubbing.
#[derive(Deserialize)]
struct RawCause {
    #[serde(default)]
    item_id: Option<String>,
    #[serde(default)]
    error_type: String,
    #[serde(default)]
    error_code: String,
    #[serde(default)]
    error_message: String,
    #[serde(default)]
    display_message: Option<String>,
}

impl From<RawCause> for PlaidErrorCause {
    fn from(raw: RawCause) -> Self {
        PlaidErrorCause {
            item_id: raw.item_id.map(scrub),
            error_type: ErrorType::from(scrub(raw.error_type)),
            error_code: ErrorCode::from(scrub(raw.error_code)),
            error_message: scrub(raw.error_message),
            display_message: raw.display_message.map(scrub),
        }
    }
}

/// Scrubs secrets out of `text` with the Plaid policy and caps its length. Text that held a
/// secret is wiped before it is dropped.
pub(crate) fn scrub(mut text: String) -> String {
    let mut out = match tokenward_redact::Policy::plaid().scrub_text(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(scrubbed) => {
            text.zeroize();
            scrubbed
        }
    };
    if out.len() > MAX_ERROR_TEXT_LEN {
        let mut end = MAX_ERROR_TEXT_LEN;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

/// Scrubs the `Unknown` case of an open enum built by a caller.
fn scrub_open<T: From<String> + OpenUnknown>(value: T) -> T {
    match value.take_unknown() {
        Ok(unknown) => T::from(scrub(unknown)),
        Err(known) => known,
    }
}

/// Access to the `Unknown` case of the error enums.
trait OpenUnknown: Sized {
    fn take_unknown(self) -> Result<String, Self>;
}

impl OpenUnknown for ErrorType {
    fn take_unknown(self) -> Result<String, Self> {
        match self {
            ErrorType::Unknown(text) => Ok(text),
            known => Err(known),
        }
    }
}

impl OpenUnknown for ErrorCode {
    fn take_unknown(self) -> Result<String, Self> {
        match self {
            ErrorCode::Unknown(text) => Ok(text),
            known => Err(known),
        }
    }
}
