//! Webhook verification (being written).
