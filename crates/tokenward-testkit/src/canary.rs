//! Canary secrets planted by leak tests: each must never appear in any output.
//!
//! The values are shaped like the real thing (Plaid tokens are `<type>-<env>-<uuid>`, Plaid
//! secrets 30 lowercase alphanumerics, routing numbers pass the ABA checksum) but are made up.

/// A sandbox access token.
pub const ACCESS_SANDBOX: &str = "access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6";
/// A production access token.
pub const ACCESS_PRODUCTION: &str = "access-production-1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b";
/// A sandbox public token.
pub const PUBLIC_SANDBOX: &str = "public-sandbox-0b6a6a1a-2d5c-4a7e-9a40-1f1d0f6c9e2b";
/// A production public token.
pub const PUBLIC_PRODUCTION: &str = "public-production-7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f";
/// A sandbox link token.
pub const LINK_SANDBOX: &str = "link-sandbox-a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
/// A production link token.
pub const LINK_PRODUCTION: &str = "link-production-9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";
/// A sandbox processor token.
pub const PROCESSOR_SANDBOX: &str = "processor-sandbox-3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f";
/// A production processor token.
pub const PROCESSOR_PRODUCTION: &str = "processor-production-6e5d4c3b-2a19-4f8e-9d7c-6b5a4f3e2d1c";
/// Thirty alphanumerics, as Plaid secrets are.
pub const PLAID_SECRET: &str = "q8w7e6r5t4y3u2i1o0p9a8s7d6f5g4";
/// A bearer credential.
pub const BEARER: &str = "sk9Xq2LmN8pR4tV7wY1zB3cD";
/// A JSON Web Token (header, payload, signature).
pub const JWT: &str =
    "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJpdGVtLTEyMyIsImlhdCI6MTYwMH0.c2lnbmF0dXJlLWJ5dGVzLWhlcmU";
/// An ABA routing number (valid checksum, Federal Reserve prefix).
pub const ROUTING: &str = "021000021";
