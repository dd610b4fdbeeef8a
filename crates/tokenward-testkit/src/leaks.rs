//! Leak checks: collect every text the code under test produced, plant the secrets it must
//! never show, and assert that none of them, and nothing shaped like a Plaid token, is in any
//! text.

use std::fmt::Debug;
use std::sync::{Mutex, PoisonError};

/// Prefixes of every Plaid sandbox token; none may appear in any output.
pub const SANDBOX_TOKEN_PREFIXES: [&str; 3] =
    ["access-sandbox-", "public-sandbox-", "link-sandbox-"];

/// Every text a test recorded, and every secret that must not be in any of it.
#[derive(Debug, Default)]
pub struct LeakCollector {
    secrets: Mutex<Vec<String>>,
    outputs: Mutex<Vec<(String, String)>>,
}

impl LeakCollector {
    /// An empty collector.
    #[must_use]
    pub fn new() -> Self {
        LeakCollector::default()
    }

    /// Plants a secret (a token handed out, a client secret).
    pub fn secret(&self, value: &str) {
        self.secrets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(value.to_owned());
    }

    /// Records a text the code under test produced.
    pub fn text(&self, label: &str, text: String) {
        self.outputs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((label.to_owned(), text));
    }

    /// Records `Debug` and alternate `Debug` of `value`.
    pub fn debug(&self, label: &str, value: &dyn Debug) {
        self.text(label, format!("{value:?}"));
        self.text(label, format!("{value:#?}"));
    }

    /// Records `Display` and `Debug` of `error` and of every error in its `source()` chain.
    pub fn error(&self, label: &str, error: &(dyn std::error::Error + 'static)) {
        let mut current = Some(error);
        let mut depth = 0;
        while let Some(error) = current {
            self.text(
                &format!("{label} (source {depth}) display"),
                error.to_string(),
            );
            self.debug(&format!("{label} (source {depth}) debug"), &error);
            current = error.source();
            depth += 1;
        }
    }

    /// The planted secrets.
    #[must_use]
    pub fn secrets(&self) -> Vec<String> {
        self.secrets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many texts were recorded.
    #[must_use]
    pub fn len(&self) -> usize {
        self.outputs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether nothing was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Asserts that at least `min` texts were recorded and none holds a planted secret or
    /// anything shaped like a sandbox token.
    ///
    /// # Panics
    ///
    /// On a leak, or when fewer than `min` texts were recorded (a check over nothing proves
    /// nothing).
    pub fn assert_clean_at_least(&self, min: usize) {
        let secrets = self.secrets();
        let outputs = self.outputs.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(
            outputs.len() >= min.max(1),
            "too little was recorded: {} text(s)",
            outputs.len()
        );
        for (label, text) in outputs.iter() {
            assert_clean_text(label, text, &secrets);
        }
    }

    /// [`assert_clean_at_least`](Self::assert_clean_at_least) one text.
    ///
    /// # Panics
    ///
    /// As [`assert_clean_at_least`](Self::assert_clean_at_least).
    pub fn assert_clean(&self) {
        self.assert_clean_at_least(1);
    }
}

/// Asserts that `text` holds none of `secrets` and nothing shaped like a sandbox token.
///
/// # Panics
///
/// On a leak.
pub fn assert_clean_text(label: &str, text: &str, secrets: &[String]) {
    // The failure names where, never the text: a leak must not be repeated in test output.
    for (i, secret) in secrets.iter().enumerate() {
        if let Some(at) = text.find(secret.as_str()) {
            panic!("{label} leaks planted secret #{i} at byte {at}");
        }
    }
    for prefix in SANDBOX_TOKEN_PREFIXES {
        if let Some(at) = text.find(prefix) {
            panic!("{label} holds a `{prefix}…` token at byte {at}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_secret_is_found_in_an_error_chain() {
        #[derive(Debug)]
        struct Inner(String);
        impl std::fmt::Display for Inner {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "inner {}", self.0)
            }
        }
        impl std::error::Error for Inner {}
        #[derive(Debug)]
        struct Outer(Inner);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("outer")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let leaks = LeakCollector::new();
        leaks.secret("s3cr3t-value");
        leaks.error("call", &Outer(Inner("fine".into())));
        leaks.assert_clean_at_least(4);
        leaks.error("call", &Outer(Inner("s3cr3t-value".into())));
        let caught = std::panic::catch_unwind(|| leaks.assert_clean());
        assert!(caught.is_err(), "the planted secret was not found");
        let caught = std::panic::catch_unwind(|| {
            assert_clean_text("t", "x access-sandbox-1 y", &[]);
        });
        assert!(caught.is_err(), "a token shape was not found");
        // The failure message says where, not what.
        let message = std::panic::catch_unwind(|| {
            assert_clean_text("t", "x s3cr3t-value y", &["s3cr3t-value".to_owned()]);
        })
        .unwrap_err();
        let message = message.downcast_ref::<String>().unwrap();
        assert_eq!(message, "t leaks planted secret #0 at byte 2");
    }
}
