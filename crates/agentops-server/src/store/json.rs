//! How the JSON payloads of the model (an event's prompt, completion, params, returns and
//! attributes, a session's host environment) are stored as text and read back. Every engine
//! follows these rules, so that what the API answers does not depend on the engine.

use serde_json::value::RawValue;
use serde_json::Value;

/// `value` as JSON text (serialising a [`Value`] cannot fail).
pub(crate) fn raw_json(value: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(value)
        .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"))
}

/// An optional payload as the text to store: `None` when absent or `null` (neither is stored).
pub(crate) fn json_text(value: &Option<Value>) -> Option<String> {
    value
        .as_ref()
        .filter(|v| !v.is_null())
        .map(Value::to_string)
}

/// Stored payload text parsed back: the value, or, should the text not be JSON, the text as a
/// JSON string.
pub(crate) fn parse_json(text: Option<String>) -> Option<Value> {
    text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

/// Stored payload text (as written by [`json_text`]) as it reads back unparsed: the text itself,
/// or, should it not be JSON, the text as a JSON string.
pub(crate) fn raw_payload(text: &str) -> Box<RawValue> {
    match serde_json::from_str::<&RawValue>(text) {
        Ok(raw) => raw.to_owned(),
        Err(_) => raw_json(&Value::String(text.to_owned())),
    }
}

/// Stored `attributes` text as it reads back unparsed: the text itself, or `null` should it not
/// be JSON.
pub(crate) fn raw_attributes(text: &str) -> Box<RawValue> {
    match serde_json::from_str::<&RawValue>(text) {
        Ok(raw) => raw.to_owned(),
        Err(_) => raw_json(&Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_absent_payloads_are_not_stored() {
        assert_eq!(json_text(&None), None);
        assert_eq!(json_text(&Some(Value::Null)), None);
        assert_eq!(
            json_text(&Some(serde_json::json!({"a": 1}))).as_deref(),
            Some(r#"{"a":1}"#)
        );
    }

    #[test]
    fn text_that_is_not_json_reads_back_as_a_string_or_null_attributes() {
        assert_eq!(raw_payload(r#"{"a": 1}"#).get(), r#"{"a": 1}"#);
        assert_eq!(raw_payload("not json").get(), r#""not json""#);
        assert_eq!(
            parse_json(Some("not json".into())),
            Some(Value::String("not json".into()))
        );
        assert_eq!(raw_attributes("[1, 2]").get(), "[1, 2]");
        assert_eq!(raw_attributes("{broken").get(), "null");
    }
}
