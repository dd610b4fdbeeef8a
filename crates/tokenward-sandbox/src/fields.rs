//! Reading request bodies field by field, with Plaid's errors and without echoing values.
//!
//! serde's error messages quote the offending input, which could be a token or the secret;
//! every error here is built from the field's path alone.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// A JSON object of a request body (or a nested object), with the path that leads to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'a> {
    map: &'a Map<String, Value>,
    prefix: &'a str,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(map: &'a Map<String, Value>) -> Self {
        Fields { map, prefix: "" }
    }

    fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    /// Fails with `MISSING_FIELDS` naming every absent (or `null`) field of `names`.
    pub(crate) fn require(&self, names: &[&str]) -> Result<(), ApiError> {
        let missing: Vec<String> = names
            .iter()
            .filter(|n| self.get(n).is_none())
            .map(|n| self.path(n))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            let refs: Vec<&str> = missing.iter().map(String::as_str).collect();
            Err(ApiError::missing_fields(&refs))
        }
    }

    /// An optional string.
    pub(crate) fn str(&self, name: &str) -> Result<Option<&'a str>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(ApiError::invalid_field(format!(
                "{} must be a string",
                self.path(name)
            ))),
        }
    }

    /// A required string (absent → `MISSING_FIELDS`).
    pub(crate) fn req_str(&self, name: &str) -> Result<&'a str, ApiError> {
        self.require(&[name])?;
        self.str(name)?
            .ok_or_else(|| ApiError::missing_fields(&[&self.path(name)]))
    }

    /// An optional non-negative integer no larger than `max`.
    pub(crate) fn u64_at_most(&self, name: &str, max: u64) -> Result<Option<u64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n <= max => Ok(Some(n)),
                _ => Err(ApiError::invalid_field(format!(
                    "{} must be an integer between 0 and {max}",
                    self.path(name)
                ))),
            },
        }
    }

    /// An optional array of strings.
    pub(crate) fn str_list(&self, name: &str) -> Result<Option<Vec<&'a str>>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str())
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| {
                    ApiError::invalid_field(format!(
                        "{} must be an array of strings",
                        self.path(name)
                    ))
                }),
            Some(_) => Err(ApiError::invalid_field(format!(
                "{} must be an array of strings",
                self.path(name)
            ))),
        }
    }

    /// An optional nested object; `prefix` must be this object's path joined with `name`
    /// (e.g. `"options"`), used in error messages.
    pub(crate) fn obj(&self, name: &str, prefix: &'a str) -> Result<Option<Fields<'a>>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Fields { map, prefix })),
            Some(_) => Err(ApiError::invalid_field(format!(
                "{} must be an object",
                self.path(name)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    #[test]
    fn errors_name_fields_not_values() {
        let value: Value = serde_json::json!({
            "access_token": 12,
            "options": {"count": "access-sandbox-secret"},
        });
        let fields = Fields::new(value.as_object().unwrap());
        let err = fields.req_str("access_token").unwrap_err();
        assert_eq!(err.error_code, "INVALID_FIELD");
        assert_eq!(err.message, "access_token must be a string");
        let options = fields.obj("options", "options").unwrap().unwrap();
        let err = options.u64_at_most("count", 500).unwrap_err();
        assert!(!err.message.contains("access-sandbox"));
        assert!(err.message.starts_with("options.count"));
        let err = fields
            .require(&["start_date", "end_date", "access_token"])
            .unwrap_err();
        assert_eq!(
            err.message,
            "the following required fields are missing: start_date, end_date"
        );
    }
}
