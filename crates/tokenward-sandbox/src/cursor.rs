//! `/transactions/sync` cursors: opaque, bound to one Item and tamper-evident.
//!
//! A cursor is `base64url(version ‖ item tag (8) ‖ position (8) ‖ HMAC-SHA256 tag (16))`,
//! where the item tag is the first 8 bytes of SHA-256(`item_id`), the position counts the
//! changes already delivered, and the MAC (under a key drawn per emulator at start) covers
//! everything before it. A cursor edited by hand, cut short, or taken from another Item or
//! another emulator run is refused.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::{digest, hmac};

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
const BODY_LEN: usize = 1 + 8 + 8;

/// Seals and opens cursors under one key.
pub(crate) struct CursorKey(hmac::Key);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        CursorKey(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    /// The cursor for `position` in the change log of `item_id`.
    pub(crate) fn seal(&self, item_id: &str, position: u64) -> String {
        let mut bytes = Vec::with_capacity(BODY_LEN + TAG_LEN);
        bytes.push(VERSION);
        bytes.extend_from_slice(&item_tag(item_id));
        bytes.extend_from_slice(&position.to_be_bytes());
        let tag = hmac::sign(&self.0, &bytes);
        bytes.extend_from_slice(tag.as_ref().get(..TAG_LEN).unwrap_or_default());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The position a cursor of `item_id` stands for, or `None` when it is not one.
    pub(crate) fn open(&self, item_id: &str, cursor: &str) -> Option<u64> {
        if cursor.len() > 128 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
        if bytes.len() != BODY_LEN + TAG_LEN {
            return None;
        }
        let (body, tag) = bytes.split_at(BODY_LEN);
        let expected = hmac::sign(&self.0, body);
        if !tokenward_redact::constant_time_eq(expected.as_ref().get(..TAG_LEN)?, tag) {
            return None;
        }
        let (version, rest) = body.split_first()?;
        let (item, position) = rest.split_at(8);
        if *version != VERSION || !tokenward_redact::constant_time_eq(item, &item_tag(item_id)) {
            return None;
        }
        Some(u64::from_be_bytes(position.try_into().ok()?))
    }
}

fn item_tag(item_id: &str) -> [u8; 8] {
    let digest = digest::digest(&digest::SHA256, item_id.as_bytes());
    let mut tag = [0_u8; 8];
    tag.copy_from_slice(digest.as_ref().get(..8).unwrap_or(&[0; 8]));
    tag
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let key = CursorKey::new(&[7; 32]);
        let cursor = key.seal("item", 42);
        assert_eq!(key.open("item", &cursor), Some(42));
        assert_eq!(key.open("other", &cursor), None);
        assert_eq!(CursorKey::new(&[8; 32]).open("item", &cursor), None);
        let raw = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        for bit in 0..raw.len() * 8 {
            let mut flipped = raw.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                key.open("item", &URL_SAFE_NO_PAD.encode(flipped)),
                None,
                "bit {bit}"
            );
        }
        assert_eq!(key.open("item", ""), None);
        assert_eq!(key.open("item", "not base64!"), None);
    }
}
