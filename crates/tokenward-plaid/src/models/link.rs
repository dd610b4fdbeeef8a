//! `/link/token/create`.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokenward_redact::{AccessToken, LinkToken};
use zeroize::Zeroizing;

use super::enums::{CountryCode, Product};

/// The body of `/link/token/create` (spec `LinkTokenCreateRequest`): the subset of options a
/// team uses to link Items (products, webhook, update mode, redirect URI, transactions days).
///
/// `client_id` and `secret` are not fields: the client sends them as headers.
#[derive(Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LinkTokenCreateRequest {
    /// The application name shown in Link (at most 30 characters).
    pub client_name: String,
    /// The language of Link, e.g. `en`.
    pub language: String,
    /// The countries whose institutions Link offers.
    pub country_codes: Vec<CountryCode>,
    /// The end user; required unless `user_id` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<LinkTokenCreateUser>,
    /// A user id from `/user/create` (newer integrations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Products the Item must support; omit in update mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub products: Option<Vec<Product>>,
    /// Products to add only if the institution supports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_if_supported_products: Option<Vec<Product>>,
    /// Products that enhance the use case but are not needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional_products: Option<Vec<Product>>,
    /// Products to collect consent for without adding them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_consented_products: Option<Vec<Product>>,
    /// The webhook URL of the Items created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// The access token of an existing Item, to open Link in update mode.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "tokenward_redact::wire::serialize_option"
    )]
    pub access_token: Option<AccessToken>,
    /// The Link customization to apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_customization_name: Option<String>,
    /// Where OAuth institutions send the user back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// The Android package name, when Link runs on Android.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub android_package_name: Option<String>,
    /// Update mode options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<LinkTokenCreateUpdate>,
    /// Transactions options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions: Option<LinkTokenTransactions>,
}

impl LinkTokenCreateRequest {
    /// A request for `user`, with Link's required settings.
    #[must_use]
    pub fn new(
        client_name: impl Into<String>,
        language: impl Into<String>,
        country_codes: Vec<CountryCode>,
        user: LinkTokenCreateUser,
    ) -> Self {
        LinkTokenCreateRequest {
            client_name: client_name.into(),
            language: language.into(),
            country_codes,
            user: Some(user),
            user_id: None,
            products: None,
            required_if_supported_products: None,
            optional_products: None,
            additional_consented_products: None,
            webhook: None,
            access_token: None,
            link_customization_name: None,
            redirect_uri: None,
            android_package_name: None,
            update: None,
            transactions: None,
        }
    }

    /// Sets the products the Item must support.
    #[must_use]
    pub fn with_products(mut self, products: Vec<Product>) -> Self {
        self.products = Some(products);
        self
    }

    /// Sets the products added only where supported.
    #[must_use]
    pub fn with_required_if_supported_products(mut self, products: Vec<Product>) -> Self {
        self.required_if_supported_products = Some(products);
        self
    }

    /// Sets the optional products.
    #[must_use]
    pub fn with_optional_products(mut self, products: Vec<Product>) -> Self {
        self.optional_products = Some(products);
        self
    }

    /// Sets the products to collect consent for.
    #[must_use]
    pub fn with_additional_consented_products(mut self, products: Vec<Product>) -> Self {
        self.additional_consented_products = Some(products);
        self
    }

    /// Sets the `/user/create` user id.
    #[must_use]
    pub fn with_user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Sets the webhook URL.
    #[must_use]
    pub fn with_webhook(mut self, webhook: impl Into<String>) -> Self {
        self.webhook = Some(webhook.into());
        self
    }

    /// Opens Link in update mode for the Item of `access_token`.
    #[must_use]
    pub fn with_access_token(mut self, access_token: AccessToken) -> Self {
        self.access_token = Some(access_token);
        self
    }

    /// Sets the Link customization.
    #[must_use]
    pub fn with_link_customization_name(mut self, name: impl Into<String>) -> Self {
        self.link_customization_name = Some(name.into());
        self
    }

    /// Sets the OAuth redirect URI.
    #[must_use]
    pub fn with_redirect_uri(mut self, redirect_uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(redirect_uri.into());
        self
    }

    /// Sets the Android package name.
    #[must_use]
    pub fn with_android_package_name(mut self, name: impl Into<String>) -> Self {
        self.android_package_name = Some(name.into());
        self
    }

    /// Sets the update mode options.
    #[must_use]
    pub fn with_update(mut self, update: LinkTokenCreateUpdate) -> Self {
        self.update = Some(update);
        self
    }

    /// Sets how many days of transactions to request.
    #[must_use]
    pub fn with_transactions_days_requested(mut self, days: u32) -> Self {
        self.transactions = Some(LinkTokenTransactions {
            days_requested: Some(days),
        });
        self
    }
}

/// The end user of a Link session (spec `LinkTokenCreateRequestUser`).
///
/// `Debug` shows `client_user_id` and whether each contact field is set, not its value: they
/// are personal data.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LinkTokenCreateUser {
    /// Your id of the user. Must not be personal data (no email address or phone number).
    pub client_user_id: String,
    /// The user's legal name, for micro-deposit flows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_name: Option<String>,
    /// The user's phone number (E.164), to prefill Link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// The user's email address, to prefill Link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
}

impl LinkTokenCreateUser {
    /// A user known by your id only.
    #[must_use]
    pub fn new(client_user_id: impl Into<String>) -> Self {
        LinkTokenCreateUser {
            client_user_id: client_user_id.into(),
            legal_name: None,
            phone_number: None,
            email_address: None,
        }
    }

    /// Sets the legal name.
    #[must_use]
    pub fn with_legal_name(mut self, name: impl Into<String>) -> Self {
        self.legal_name = Some(name.into());
        self
    }

    /// Sets the phone number.
    #[must_use]
    pub fn with_phone_number(mut self, phone: impl Into<String>) -> Self {
        self.phone_number = Some(phone.into());
        self
    }

    /// Sets the email address.
    #[must_use]
    pub fn with_email_address(mut self, email: impl Into<String>) -> Self {
        self.email_address = Some(email.into());
        self
    }
}

impl fmt::Debug for LinkTokenCreateUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |field: &Option<String>| if field.is_some() { "<set>" } else { "<none>" };
        f.debug_struct("LinkTokenCreateUser")
            .field("client_user_id", &self.client_user_id)
            .field("legal_name", &format_args!("{}", set(&self.legal_name)))
            .field("phone_number", &format_args!("{}", set(&self.phone_number)))
            .field(
                "email_address",
                &format_args!("{}", set(&self.email_address)),
            )
            .finish_non_exhaustive()
    }
}

/// Update mode options (spec `LinkTokenCreateRequestUpdate`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LinkTokenCreateUpdate {
    /// Lets the user add or remove accounts of the Item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_selection_enabled: Option<bool>,
}

impl LinkTokenCreateUpdate {
    /// Update mode with or without account selection.
    #[must_use]
    pub fn account_selection(enabled: bool) -> Self {
        LinkTokenCreateUpdate {
            account_selection_enabled: Some(enabled),
        }
    }
}

/// Transactions options of a Link token (spec `LinkTokenTransactions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LinkTokenTransactions {
    /// Days of history to request (1 to 730; Plaid's default is 90).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_requested: Option<u32>,
}

/// The answer of `/link/token/create` (spec `LinkTokenCreateResponse`).
///
/// `Debug`, `Display` of the token and `Serialize` show the Link token as its placeholder; the
/// emulator writes the real value with [`to_wire_json`](Self::to_wire_json).
#[derive(Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LinkTokenCreateResponse {
    /// The Link token, for the front end.
    pub link_token: LinkToken,
    /// When the Link token expires.
    pub expiration: DateTime<Utc>,
    /// Plaid's id of the request.
    pub request_id: String,
    /// The Hosted Link URL, for Hosted Link sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_link_url: Option<String>,
    /// The `/user/create` user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

impl LinkTokenCreateResponse {
    /// A response with the required fields.
    #[must_use]
    pub fn new(
        link_token: LinkToken,
        expiration: DateTime<Utc>,
        request_id: impl Into<String>,
    ) -> Self {
        LinkTokenCreateResponse {
            link_token,
            expiration,
            request_id: request_id.into(),
            hosted_link_url: None,
            user_id: None,
        }
    }

    /// The response as Plaid sends it, with the raw Link token.
    ///
    /// # Errors
    ///
    /// Only if serialization fails, which it does not for this type.
    ///
    /// # Security
    ///
    /// The bytes hold the token in clear: for an HTTP response body (the emulator) only. The
    /// buffer is wiped when dropped.
    pub fn to_wire_json(&self) -> Result<Zeroizing<Vec<u8>>, serde_json::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            #[serde(serialize_with = "tokenward_redact::wire::serialize")]
            link_token: &'a LinkToken,
            expiration: &'a DateTime<Utc>,
            request_id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            hosted_link_url: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            user_id: Option<&'a str>,
        }
        super::wire_json(&Wire {
            link_token: &self.link_token,
            expiration: &self.expiration,
            request_id: &self.request_id,
            hosted_link_url: self.hosted_link_url.as_deref(),
            user_id: self.user_id.as_deref(),
        })
    }
}
