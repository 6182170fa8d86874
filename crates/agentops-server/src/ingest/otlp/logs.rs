//! OTLP/HTTP logs: `POST /v1/logs` (protobuf or JSON, optionally gzip), with the same
//! credentials, limits and error rules as `/v1/traces`.
//!
//! A record belongs to the session its `session.id` (or `gen_ai.conversation.id`) attribute
//! names, else to its trace's session (the trace id as a UUID, as for spans). A record with a
//! span id is shown with that span's event; GenAI event records (`gen_ai.user.message`,
//! `gen_ai.choice`, …) feed that event's messages. Records with neither a trace nor a session
//! id have no session to go to and are refused in `partial_success`; so are records that a
//! session token may not write. A record sent again (an exporter's retry) is stored once.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message;
use serde_json::{Map, Value};

use super::values::{
    any_value, array, field, json_any_value, json_id, json_key_values, json_u64, key_values,
};
use crate::caller::TraceSender;
use crate::error::ApiError;
use crate::ingest::body::{BodyFormat, RawBody};
use crate::mapping::messages::{for_event, GenAiRecord};
use crate::mapping::span::{format_ns, trace_session_id};
use crate::state::AppState;
use crate::store::{LogRecord, Write};

/// A log record as decoded from either encoding, before it is given a session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodedRecord {
    time_ns: u64,
    observed_ns: u64,
    severity_number: i32,
    severity_text: String,
    event_name: String,
    body: Value,
    attributes: Vec<(String, Value)>,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
}

/// `POST /v1/logs`.
pub async fn logs(
    State(state): State<AppState>,
    sender: TraceSender,
    body: RawBody,
) -> Result<Response, ApiError> {
    let format = body.format()?;
    let TraceSender::Project(claims) = sender else {
        return Err(ApiError::Unauthorized(
            "missing credentials: send X-Agentops-Api-Key or Authorization: Bearer".into(),
        ));
    };
    let decoded = match format {
        BodyFormat::Protobuf => decode_protobuf(&body.bytes)?,
        BodyFormat::Json => decode_json(&body.bytes)?,
    };
    let rejected = store_records(&state, &claims, &decoded).await?;
    Ok(export_response(format, rejected))
}

/// Commits a project's log records; why the others were refused. Shared by OTLP/HTTP and
/// OTLP/gRPC.
pub(crate) async fn store_records(
    state: &AppState,
    claims: &crate::auth::Claims,
    decoded: &[DecodedRecord],
) -> Result<Vec<String>, ApiError> {
    let mut rejected = Vec::new();
    let mut records = Vec::with_capacity(decoded.len());
    for record in decoded {
        match to_record(record) {
            Ok(r) if claims.session_id().is_some_and(|own| own != r.session_id) => {
                rejected.push(format!(
                    "a log record of session {} is not the token's session",
                    r.session_id
                ));
            }
            Ok(r) => records.push(r),
            Err(why) => rejected.push(why),
        }
    }
    if !records.is_empty() {
        state
            .writer()
            .submit(Write::IngestLogs {
                project_id: claims.project_id.clone(),
                records,
            })
            .await?;
    }
    Ok(rejected)
}

/// The stored form of a record, or why it has no session.
fn to_record(r: &DecodedRecord) -> Result<LogRecord, String> {
    let attributes: Map<String, Value> = r.attributes.iter().cloned().collect();
    let trace_id = valid(&r.trace_id, 16);
    let session_id = ["session.id", "gen_ai.conversation.id"]
        .iter()
        .find_map(|k| attributes.get(*k).and_then(Value::as_str))
        .map(str::to_owned)
        .or_else(|| trace_id.and_then(trace_session_id))
        .ok_or_else(|| "a log record without a trace id or a session.id attribute".to_owned())?;
    crate::mapping::check_session_id(&session_id, "log record")?;
    let time_ns = if r.time_ns != 0 {
        r.time_ns
    } else {
        r.observed_ns
    };
    let time = (time_ns != 0)
        .then(|| format_ns(time_ns))
        .flatten()
        .unwrap_or_else(agentops_core::timestamp::now);
    let event_name = Some(r.event_name.clone())
        .filter(|n| !n.is_empty())
        .or_else(|| {
            attributes
                .get("event.name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    let attributes = Value::Object(attributes);
    let call_ids = event_name.as_deref().and_then(|name| {
        let genai = GenAiRecord {
            name,
            body: &r.body,
            attributes: &attributes,
        };
        let ids = for_event(None, None, &Value::Null, &[genai])?.output_call_ids();
        (!ids.is_empty()).then(|| ids.join(" "))
    });
    Ok(LogRecord {
        session_id,
        time,
        severity: Some(r.severity_text.clone())
            .filter(|s| !s.is_empty())
            .or_else(|| severity_name(r.severity_number).map(str::to_owned)),
        event_name,
        body: r.body.clone(),
        attributes,
        trace_id: trace_id.map(hex),
        span_id: valid(&r.span_id, 8).map(hex),
        event_id: None,
        call_ids,
    })
}

fn valid(id: &[u8], len: usize) -> Option<&[u8]> {
    (id.len() == len && id.iter().any(|b| *b != 0)).then_some(id)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The OTLP severity number's short name (1–4 TRACE, 5–8 DEBUG, … 21–24 FATAL).
fn severity_name(number: i32) -> Option<&'static str> {
    Some(match number {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => return None,
    })
}

fn export_response(format: BodyFormat, reasons: Vec<String>) -> Response {
    let rejected = i64::try_from(reasons.len()).unwrap_or(i64::MAX);
    let message = reasons.into_iter().take(5).collect::<Vec<_>>().join("; ");
    match format {
        BodyFormat::Protobuf => {
            let response = ExportLogsServiceResponse {
                partial_success: (rejected > 0).then_some(ExportLogsPartialSuccess {
                    rejected_log_records: rejected,
                    error_message: message,
                }),
            };
            (
                StatusCode::OK,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-protobuf"),
                )],
                response.encode_to_vec(),
            )
                .into_response()
        }
        BodyFormat::Json => {
            let body = if rejected > 0 {
                serde_json::json!({"partialSuccess": {"rejectedLogRecords": rejected.to_string(), "errorMessage": message}})
            } else {
                serde_json::json!({})
            };
            (StatusCode::OK, axum::Json(body)).into_response()
        }
    }
}

/// Decodes an OTLP protobuf `ExportLogsServiceRequest`.
pub fn decode_protobuf(bytes: &[u8]) -> Result<Vec<DecodedRecord>, ApiError> {
    let request = ExportLogsServiceRequest::decode(bytes)
        .map_err(|e| ApiError::bad(format!("invalid OTLP protobuf: {e}")))?;
    Ok(records_of(&request))
}

/// The log records of a decoded `ExportLogsServiceRequest`.
pub fn records_of(request: &ExportLogsServiceRequest) -> Vec<DecodedRecord> {
    request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .map(|l| DecodedRecord {
            time_ns: l.time_unix_nano,
            observed_ns: l.observed_time_unix_nano,
            severity_number: l.severity_number,
            severity_text: l.severity_text.clone(),
            event_name: l.event_name.clone(),
            body: l.body.as_ref().map(any_value).unwrap_or(Value::Null),
            attributes: key_values(&l.attributes),
            trace_id: l.trace_id.clone(),
            span_id: l.span_id.clone(),
        })
        .collect()
}

/// Decodes an OTLP JSON `ExportLogsServiceRequest`.
pub fn decode_json(bytes: &[u8]) -> Result<Vec<DecodedRecord>, ApiError> {
    let root: Value = crate::ingest::body::parse_json(bytes)?;
    if !root.is_object() {
        return Err(ApiError::bad("OTLP JSON body must be an object"));
    }
    let mut records = Vec::new();
    for (r, resource_logs) in array(&root, "resourceLogs", "resource_logs", "body")?
        .iter()
        .enumerate()
    {
        let at = format!("resourceLogs[{r}]");
        for (s, scope_logs) in array(resource_logs, "scopeLogs", "scope_logs", &at)?
            .iter()
            .enumerate()
        {
            let at = format!("{at}.scopeLogs[{s}]");
            for (i, l) in array(scope_logs, "logRecords", "log_records", &at)?
                .iter()
                .enumerate()
            {
                let at = format!("{at}.logRecords[{i}]");
                if !l.is_object() {
                    return Err(ApiError::bad(format!("{at} must be an object")));
                }
                records.push(DecodedRecord {
                    time_ns: json_u64(
                        field(l, "timeUnixNano", "time_unix_nano"),
                        &format!("{at}.timeUnixNano"),
                    )?,
                    observed_ns: json_u64(
                        field(l, "observedTimeUnixNano", "observed_time_unix_nano"),
                        &format!("{at}.observedTimeUnixNano"),
                    )?,
                    severity_number: match field(l, "severityNumber", "severity_number") {
                        Some(Value::Number(n)) => n.as_i64().unwrap_or(0).clamp(0, 24) as i32,
                        Some(Value::String(name)) => severity_number_of(name),
                        _ => 0,
                    },
                    severity_text: text(l, "severityText", "severity_text"),
                    event_name: text(l, "eventName", "event_name"),
                    body: field(l, "body", "body")
                        .map(json_any_value)
                        .unwrap_or(Value::Null),
                    attributes: json_key_values(array(l, "attributes", "attributes", &at)?),
                    trace_id: json_id(field(l, "traceId", "trace_id"), 16),
                    span_id: json_id(field(l, "spanId", "span_id"), 8),
                });
            }
        }
    }
    Ok(records)
}

fn text(obj: &Value, camel: &str, snake: &str) -> String {
    field(obj, camel, snake)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// `SEVERITY_NUMBER_WARN2` → 14; unknown names → 0.
fn severity_number_of(name: &str) -> i32 {
    const NAMES: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
    let Some(rest) = name.strip_prefix("SEVERITY_NUMBER_") else {
        return 0;
    };
    let (base, step) = match rest.find(|c: char| c.is_ascii_digit()) {
        Some(at) => (&rest[..at], rest[at..].parse::<i32>().unwrap_or(1)),
        None => (rest, 1),
    };
    NAMES
        .iter()
        .position(|n| *n == base)
        .map(|p| p as i32 * 4 + step.clamp(1, 4))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_records_decode_and_find_their_session() {
        let body = serde_json::json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
            {"timeUnixNano": "1795311032720470384", "severityNumber": "SEVERITY_NUMBER_WARN2",
             "eventName": "gen_ai.choice", "traceId": "4659e1bbceabf5282f17204dbc5a6cb5",
             "spanId": "4b8fbed901cd0de2",
             "body": {"kvlistValue": {"values": [
                {"key": "index", "value": {"intValue": "0"}},
                {"key": "message", "value": {"kvlistValue": {"values": [
                    {"key": "tool_calls", "value": {"arrayValue": {"values": [{"kvlistValue": {"values": [
                        {"key": "id", "value": {"stringValue": "call_1"}},
                        {"key": "function", "value": {"kvlistValue": {"values": [
                            {"key": "name", "value": {"stringValue": "get_weather"}}]}}}]}}]}}}]}}}]}}},
            {"observedTimeUnixNano": 1795311032720470384u64, "body": {"stringValue": "plain"},
             "attributes": [{"key": "session.id", "value": {"stringValue": "s-1"}}]},
            {"body": {"stringValue": "nowhere"}}
        ]}]}]});
        let decoded = decode_json(body.to_string().as_bytes()).unwrap();
        assert_eq!(decoded.len(), 3);
        let choice = to_record(&decoded[0]).unwrap();
        assert_eq!(choice.session_id, "4659e1bb-ceab-f528-2f17-204dbc5a6cb5");
        assert_eq!(choice.severity.as_deref(), Some("WARN"));
        assert_eq!(choice.span_id.as_deref(), Some("4b8fbed901cd0de2"));
        assert_eq!(choice.call_ids.as_deref(), Some("call_1"));
        let plain = to_record(&decoded[1]).unwrap();
        assert_eq!(
            (plain.session_id.as_str(), plain.body.clone()),
            ("s-1", Value::from("plain"))
        );
        assert!(to_record(&decoded[2])
            .unwrap_err()
            .contains("without a trace id"));
    }

    #[test]
    fn malformed_bodies_are_bad_requests() {
        assert!(matches!(
            decode_protobuf(b"\xff\xff\xff"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(decode_json(b"[]"), Err(ApiError::BadRequest(_))));
        assert!(matches!(
            decode_json(br#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [3]}]}]}"#),
            Err(ApiError::BadRequest(_))
        ));
    }
}
