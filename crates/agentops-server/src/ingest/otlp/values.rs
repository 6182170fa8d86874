//! OTLP values in both encodings: protobuf `AnyValue`s and key-values, and the pieces of OTLP
//! JSON (fields in camelCase or snake_case, ids in hex or base64, 64-bit integers as numbers or
//! strings, enums as numbers or names), shared by the trace and log decoders.

use base64::Engine;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use serde_json::Value;

use crate::error::ApiError;

pub(super) fn any_value(value: &AnyValue) -> Value {
    match &value.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(any_value).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            Value::Object(key_values(&kv.values).into_iter().collect())
        }
        Some(any_value::Value::BytesValue(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        #[allow(unreachable_patterns)]
        Some(_) => Value::Null,
    }
}

pub(super) fn key_values(kvs: &[KeyValue]) -> Vec<(String, Value)> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(any_value).unwrap_or(Value::Null),
            )
        })
        .collect()
}

pub(super) fn field<'a>(obj: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    obj.get(camel)
        .or_else(|| obj.get(snake))
        .filter(|v| !v.is_null())
}

pub(super) fn array<'a>(
    obj: &'a Value,
    camel: &str,
    snake: &str,
    at: &str,
) -> Result<&'a [Value], ApiError> {
    match field(obj, camel, snake) {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(ApiError::bad(format!("{at}.{camel} must be an array"))),
    }
}

/// An id written as hex (OTLP JSON) or base64 (protobuf JSON). Unparseable ids come back empty,
/// which rejects the span rather than the whole request.
pub(super) fn json_id(value: Option<&Value>, len: usize) -> Vec<u8> {
    let Some(text) = value.and_then(Value::as_str) else {
        return Vec::new();
    };
    if text.len() == len * 2 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return (0..len)
            .filter_map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
            .collect();
    }
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()
        .filter(|b| b.len() == len)
        .unwrap_or_default()
}

pub(super) fn json_u64(value: Option<&Value>, at: &str) -> Result<u64, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| ApiError::bad(format!("{at} must be a non-negative integer"))),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| ApiError::bad(format!("{at} must be a non-negative integer"))),
        Some(_) => Err(ApiError::bad(format!(
            "{at} must be a non-negative integer"
        ))),
    }
}

pub(super) fn json_enum(value: Option<&Value>, names: &[&str]) -> i32 {
    match value {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0) as i32,
        Some(Value::String(s)) => names
            .iter()
            .position(|n| n == s)
            .map(|p| p as i32)
            .unwrap_or(0),
        _ => 0,
    }
}

pub(super) fn json_any_value(value: &Value) -> Value {
    let Some(obj) = value.as_object() else {
        return Value::Null;
    };
    if let Some(v) = obj.get("stringValue") {
        return v.clone();
    }
    if let Some(v) = obj.get("boolValue") {
        return v.clone();
    }
    if let Some(v) = obj.get("intValue") {
        return match v {
            Value::String(s) => s
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| v.clone()),
            other => other.clone(),
        };
    }
    if let Some(v) = obj.get("doubleValue") {
        return match v {
            Value::String(s) => s
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .unwrap_or_else(|| v.clone()),
            other => other.clone(),
        };
    }
    if let Some(v) = obj.get("arrayValue") {
        let values = v
            .get("values")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        return Value::Array(values.iter().map(json_any_value).collect());
    }
    if let Some(v) = obj.get("kvlistValue") {
        let values = v
            .get("values")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        return Value::Object(json_key_values(values).into_iter().collect());
    }
    if let Some(v) = obj.get("bytesValue") {
        return v.clone();
    }
    Value::Null
}

pub(super) fn json_key_values(items: &[Value]) -> Vec<(String, Value)> {
    items
        .iter()
        .filter_map(|kv| {
            let key = kv.get("key")?.as_str()?.to_owned();
            Some((
                key,
                kv.get("value").map(json_any_value).unwrap_or(Value::Null),
            ))
        })
        .collect()
}

/// The `service.name` among a resource's attributes; empty when there is none.
pub(super) fn service_name(resource: &[KeyValue]) -> String {
    resource
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| kv.value.as_ref())
        .map(any_value)
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The `service.name` of an OTLP JSON `resourceSpans` / `resourceLogs` item's resource.
pub(super) fn json_service_name(item: &Value) -> String {
    item.get("resource")
        .and_then(|r| r.get("attributes"))
        .and_then(Value::as_array)
        .map(|attrs| json_key_values(attrs))
        .and_then(|attrs| attrs.into_iter().find(|(k, _)| k == "service.name"))
        .and_then(|(_, v)| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
