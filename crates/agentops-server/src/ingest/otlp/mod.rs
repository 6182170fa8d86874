//! OTLP/HTTP: `POST /v1/traces` (protobuf or JSON, optionally gzip) here, [`logs`] and
//! [`metrics`] beside it.
//!
//! Both encodings decode into [`Span`]s; the JSON reader accepts ids in hex (the OTLP spec) or
//! base64 (protobuf's canonical JSON), enums as numbers or names, and 64-bit integers as numbers or
//! strings. Spans that cannot be stored (bad ids, out-of-range values, another session than a
//! session token's) are reported in `partial_success`; the rest are committed before the answer.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use serde_json::{Map, Value};

pub mod logs;
pub mod metrics;
mod values;

use super::body::{BodyFormat, RawBody};
use crate::caller::TraceSender;
use crate::error::ApiError;
use crate::mapping::span::{collect, map_each, MappedSpan, Span};
use crate::state::AppState;
use crate::store::Write;
use values::{array, field, json_enum, json_id, json_key_values, json_u64, key_values};

/// Bodies larger than this are decoded and mapped off the async threads, so that a large
/// request does not hold up the small ones sharing a thread with it.
const DECODE_INLINE_BYTES: usize = 64 * 1024;

/// `POST /v1/traces`. The sender: a Bearer token (AgentOps SDKs), or the API key header (any OTel SDK configured
/// with `OTEL_EXPORTER_OTLP_HEADERS=X-Agentops-Api-Key=...`), or none.
pub async fn traces(
    State(state): State<AppState>,
    sender: TraceSender,
    body: RawBody,
) -> Result<Response, ApiError> {
    let format = body.format()?;
    let bytes = body.bytes.clone();
    let (mapped, rejected) = if bytes.len() <= DECODE_INLINE_BYTES {
        decode_and_map(format, &bytes, state.prices())?
    } else {
        let state = state.clone();
        tokio::task::spawn_blocking(move || decode_and_map(format, &bytes, state.prices()))
            .await
            .map_err(|e| ApiError::Internal(format!("decoding task failed: {e}")))??
    };
    let claims = match sender {
        TraceSender::Project(claims) => claims,
        TraceSender::CredentialLess(_reading) => {
            let held = mapped.len();
            if held > 0 {
                let body_bytes = body.bytes.len();
                let holder = state.clone();
                state
                    .read(move |store| holder.held().hold(store, mapped, body_bytes))
                    .await?
                    .map_err(|full| {
                        ApiError::Unauthorized(format!(
                            "missing credentials: send X-Agentops-Api-Key or Authorization: \
                             Bearer ({full})"
                        ))
                    })?;
            }
            tracing::debug!(
                held,
                "spans without credentials held until their trace is claimed"
            );
            // 202: accepted, not stored yet.
            let count = rejected.len();
            return Ok(export_response(
                format,
                StatusCode::ACCEPTED,
                count,
                rejected,
            ));
        }
    };
    let (rejected_count, rejected) = store_spans(&state, claims, mapped, rejected).await?;
    Ok(export_response(
        format,
        StatusCode::OK,
        rejected_count,
        rejected,
    ))
}

/// Commits a project's mapped spans, with those of their traces held from senders without
/// credentials; how many spans were refused in all, and the reasons. Shared by OTLP/HTTP and
/// OTLP/gRPC.
pub(crate) async fn store_spans(
    state: &AppState,
    claims: crate::auth::Claims,
    mut mapped: Vec<MappedSpan>,
    mut rejected: Vec<String>,
) -> Result<(usize, Vec<String>), ApiError> {
    // Spans of these traces sent earlier without credentials are stored with them.
    let mut trace_ids: Vec<String> = mapped
        .iter()
        .filter_map(|span| span.event.trace_id.clone())
        .collect();
    trace_ids.sort_unstable();
    trace_ids.dedup();
    let claimer = state.clone();
    let claimed = state
        .read(move |store| claimer.held().claim(store, &trace_ids))
        .await?;
    let mut from_held: Vec<MappedSpan> = claimed.spans().cloned().collect();
    let mut discarded = 0;
    let mut rejected_count = rejected.len();
    if let Some(own) = claims.session_id() {
        // A session token writes its own session only.
        let before = mapped.len();
        mapped.retain(|span| span.session.id == own);
        let foreign = before - mapped.len();
        if foreign > 0 {
            rejected_count += foreign;
            rejected.push(format!(
                "{foreign} span(s) belong to another session than the token's"
            ));
        }
        let before = from_held.len();
        from_held.retain(|span| span.session.id == own);
        discarded = before - from_held.len();
    }
    let stored_from_held = from_held.len();
    let (events, sessions) = collect(mapped.into_iter().chain(from_held));
    let written = if events.is_empty() {
        Ok(())
    } else {
        let write = Write::IngestSpans {
            project_id: claims.project_id,
            sessions,
            spans: events,
        };
        state.writer().submit(write).await.map(|_| ())
    };
    if claimed.is_empty() {
        return written.map(|()| (rejected_count, rejected));
    }
    // The claimed spans leave the store only now that the write holding them is committed.
    let keeper = state.clone();
    match written {
        Ok(()) => {
            let settled = state
                .read(move |store| {
                    keeper
                        .held()
                        .settle(store, claimed, stored_from_held, discarded)
                })
                .await;
            if let Err(e) = settled {
                tracing::warn!(error = %e, "claimed spans sent without credentials are stored but stay claimed: claimable again (and stored once) when the claim lapses");
            }
            Ok((rejected_count, rejected))
        }
        Err(error) => {
            let given_back = state
                .read(move |store| keeper.held().give_back(store, claimed))
                .await;
            if let Err(e) = given_back {
                tracing::warn!(error = %e, "claimed spans sent without credentials could not be given back: claimable again when the claim lapses");
            }
            Err(error)
        }
    }
}

/// The spans of an OTLP body as rows, and why the others were refused.
fn decode_and_map(
    format: BodyFormat,
    bytes: &[u8],
    prices: &agentops_core::pricing::PriceTable,
) -> Result<(Vec<MappedSpan>, Vec<String>), ApiError> {
    let spans = match format {
        BodyFormat::Protobuf => decode_protobuf(bytes)?,
        BodyFormat::Json => decode_json(bytes)?,
    };
    Ok(map_each(&spans, prices))
}

/// The answer to an export: `status`, and a partial success naming the first few reasons when
/// `rejected` spans were refused.
fn export_response(
    format: BodyFormat,
    status: StatusCode,
    rejected: usize,
    reasons: Vec<String>,
) -> Response {
    if rejected > 0 {
        tracing::debug!(rejected, "spans rejected");
    }
    let rejected = i64::try_from(rejected).unwrap_or(i64::MAX);
    let message = reasons.into_iter().take(5).collect::<Vec<_>>().join("; ");
    match format {
        BodyFormat::Protobuf => {
            let response = ExportTraceServiceResponse {
                partial_success: (rejected > 0).then_some(ExportTracePartialSuccess {
                    rejected_spans: rejected,
                    error_message: message,
                }),
            };
            (
                status,
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
                serde_json::json!({"partialSuccess": {"rejectedSpans": rejected.to_string(), "errorMessage": message}})
            } else {
                serde_json::json!({})
            };
            (status, axum::Json(body)).into_response()
        }
    }
}

/// Decodes an OTLP protobuf `ExportTraceServiceRequest`.
pub fn decode_protobuf(bytes: &[u8]) -> Result<Vec<Span>, ApiError> {
    let request = ExportTraceServiceRequest::decode(bytes)
        .map_err(|e| ApiError::bad(format!("invalid OTLP protobuf: {e}")))?;
    Ok(spans_of(&request))
}

/// The spans of a decoded `ExportTraceServiceRequest`.
pub fn spans_of(request: &ExportTraceServiceRequest) -> Vec<Span> {
    let mut spans = Vec::new();
    for resource_spans in &request.resource_spans {
        let service_name = values::service_name(
            resource_spans
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or_default(),
        );
        for scope_spans in &resource_spans.scope_spans {
            let scope = scope_spans
                .scope
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default();
            for s in &scope_spans.spans {
                spans.push(Span {
                    trace_id: s.trace_id.clone(),
                    span_id: s.span_id.clone(),
                    parent_span_id: s.parent_span_id.clone(),
                    name: s.name.clone(),
                    kind: s.kind,
                    start_ns: s.start_time_unix_nano,
                    end_ns: s.end_time_unix_nano,
                    attributes: key_values(&s.attributes),
                    status_code: s.status.as_ref().map(|st| st.code).unwrap_or(0),
                    status_message: s.status.as_ref().map(|st| st.message.clone()).unwrap_or_default(),
                    events: s
                        .events
                        .iter()
                        .map(|e| {
                            serde_json::json!({
                                "name": e.name,
                                "time": crate::mapping::span::format_ns(e.time_unix_nano),
                                "attributes": Value::Object(key_values(&e.attributes).into_iter().collect()),
                            })
                        })
                        .collect(),
                    scope: scope.clone(),
                    service_name: service_name.clone(),
                });
            }
        }
    }
    spans
}

const SPAN_KINDS: [&str; 6] = [
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
];
const STATUS_CODES: [&str; 3] = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];

/// Decodes an OTLP JSON `ExportTraceServiceRequest`.
pub fn decode_json(bytes: &[u8]) -> Result<Vec<Span>, ApiError> {
    let root: Value = crate::ingest::body::parse_json(bytes)?;
    if !root.is_object() {
        return Err(ApiError::bad("OTLP JSON body must be an object"));
    }
    let mut spans = Vec::new();
    for (r, resource_spans) in array(&root, "resourceSpans", "resource_spans", "body")?
        .iter()
        .enumerate()
    {
        let at = format!("resourceSpans[{r}]");
        let service_name = values::json_service_name(resource_spans);
        let mut scopes = array(resource_spans, "scopeSpans", "scope_spans", &at)?.to_vec();
        scopes.extend_from_slice(array(
            resource_spans,
            "instrumentationLibrarySpans",
            "instrumentation_library_spans",
            &at,
        )?);
        for (s, scope_spans) in scopes.iter().enumerate() {
            let at = format!("{at}.scopeSpans[{s}]");
            let scope = field(scope_spans, "scope", "scope")
                .or_else(|| {
                    field(
                        scope_spans,
                        "instrumentationLibrary",
                        "instrumentation_library",
                    )
                })
                .and_then(|s| s.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            for (i, span) in array(scope_spans, "spans", "spans", &at)?
                .iter()
                .enumerate()
            {
                let at = format!("{at}.spans[{i}]");
                if !span.is_object() {
                    return Err(ApiError::bad(format!("{at} must be an object")));
                }
                let status = field(span, "status", "status")
                    .cloned()
                    .unwrap_or(Value::Null);
                let events = array(span, "events", "events", &at)?
                    .iter()
                    .map(|e| {
                        let time = json_u64(field(e, "timeUnixNano", "time_unix_nano"), "timeUnixNano").unwrap_or(0);
                        let attrs = e.get("attributes").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
                        serde_json::json!({
                            "name": e.get("name").cloned().unwrap_or(Value::Null),
                            "time": crate::mapping::span::format_ns(time),
                            "attributes": Value::Object(json_key_values(attrs).into_iter().collect::<Map<_, _>>()),
                        })
                    })
                    .collect();
                spans.push(Span {
                    trace_id: json_id(field(span, "traceId", "trace_id"), 16),
                    span_id: json_id(field(span, "spanId", "span_id"), 8),
                    parent_span_id: json_id(field(span, "parentSpanId", "parent_span_id"), 8),
                    name: span
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    kind: json_enum(span.get("kind"), &SPAN_KINDS),
                    start_ns: json_u64(
                        field(span, "startTimeUnixNano", "start_time_unix_nano"),
                        &format!("{at}.startTimeUnixNano"),
                    )?,
                    end_ns: json_u64(
                        field(span, "endTimeUnixNano", "end_time_unix_nano"),
                        &format!("{at}.endTimeUnixNano"),
                    )?,
                    attributes: json_key_values(array(span, "attributes", "attributes", &at)?),
                    status_code: json_enum(status.get("code"), &STATUS_CODES),
                    status_message: status
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    events,
                    scope: scope.clone(),
                    service_name: service_name.clone(),
                });
            }
        }
    }
    Ok(spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};

    #[test]
    fn json_ids_in_hex_and_base64() {
        let hex = Value::String("4659e1bbceabf5282f17204dbc5a6cb5".into());
        let b64 = Value::String("Rlnhu86r9SgvFyBNvFpstQ==".into());
        assert_eq!(json_id(Some(&hex), 16), json_id(Some(&b64), 16));
        assert_eq!(json_id(Some(&hex), 16).len(), 16);
        assert!(json_id(Some(&Value::String("zz".into())), 8).is_empty());
    }

    #[test]
    fn json_and_protobuf_decode_alike() {
        let json = serde_json::json!({"resourceSpans": [{"scopeSpans": [{"scope": {"name": "s"}, "spans": [{
            "traceId": "4659e1bbceabf5282f17204dbc5a6cb5", "spanId": "4b8fbed901cd0de2",
            "name": "x.tool", "kind": "SPAN_KIND_CLIENT", "startTimeUnixNano": "1795311032720470384",
            "endTimeUnixNano": 1795311032720524223u64, "status": {"code": "STATUS_CODE_ERROR", "message": "m"},
            "attributes": [{"key": "n", "value": {"intValue": "12"}}, {"key": "a", "value": {"arrayValue": {"values": [{"stringValue": "t"}]}}}]
        }]}]}]});
        let from_json = decode_json(json.to_string().as_bytes()).unwrap();
        assert_eq!(from_json.len(), 1);
        let s = &from_json[0];
        assert_eq!(
            (s.kind, s.status_code, s.status_message.as_str()),
            (3, 2, "m")
        );
        assert_eq!(s.attributes[0], ("n".to_string(), Value::from(12)));
        assert_eq!(s.attributes[1].1, serde_json::json!(["t"]));

        use opentelemetry_proto::tonic::trace::v1 as t;
        let proto = ExportTraceServiceRequest {
            resource_spans: vec![t::ResourceSpans {
                scope_spans: vec![t::ScopeSpans {
                    scope: Some(
                        opentelemetry_proto::tonic::common::v1::InstrumentationScope {
                            name: "s".into(),
                            ..Default::default()
                        },
                    ),
                    spans: vec![t::Span {
                        trace_id: s.trace_id.clone(),
                        span_id: s.span_id.clone(),
                        name: "x.tool".into(),
                        kind: 3,
                        start_time_unix_nano: s.start_ns,
                        end_time_unix_nano: s.end_ns,
                        status: Some(t::Status {
                            code: 2,
                            message: "m".into(),
                        }),
                        attributes: vec![
                            KeyValue {
                                key: "n".into(),
                                value: Some(AnyValue {
                                    value: Some(any_value::Value::IntValue(12)),
                                }),
                                ..Default::default()
                            },
                            KeyValue {
                                key: "a".into(),
                                value: Some(AnyValue {
                                    value: Some(any_value::Value::ArrayValue(
                                        opentelemetry_proto::tonic::common::v1::ArrayValue {
                                            values: vec![AnyValue {
                                                value: Some(any_value::Value::StringValue(
                                                    "t".into(),
                                                )),
                                            }],
                                        },
                                    )),
                                }),
                                ..Default::default()
                            },
                        ],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let from_proto = decode_protobuf(&proto.encode_to_vec()).unwrap();
        assert_eq!(from_proto, from_json);
    }

    #[test]
    fn malformed_bodies_are_bad_requests() {
        assert!(matches!(
            decode_protobuf(b"\xff\xff\xff"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(decode_json(b"{"), Err(ApiError::BadRequest(_))));
        assert!(matches!(decode_json(b"[]"), Err(ApiError::BadRequest(_))));
        assert!(matches!(
            decode_json(br#"{"resourceSpans": 3}"#),
            Err(ApiError::BadRequest(_))
        ));
    }
}
