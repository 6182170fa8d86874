//! OTLP/HTTP protobuf, as agentops 0.4 sends it: the API key is exchanged once per client for a
//! token at `{endpoint}/v3/auth/token`, and spans are POSTed to the traces endpoint with
//! `Authorization: Bearer <token>`. Without an API key (or with an `Authorization` header
//! configured), no token is fetched: the configured headers are the credentials, as for any
//! OpenTelemetry backend.
//!
//! The session is a span of its own, the root every event descends from, sent when the session
//! ends with `agentops.span.kind = session` and its end state, as agentops 0.4 does. LLM and
//! tool events also carry the OpenTelemetry GenAI attributes (`gen_ai.request.model`,
//! `gen_ai.usage.*`, `gen_ai.tool.name`), so that other backends read them too.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agentops_core::{attributes as attr, EndState};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, status, ResourceSpans, ScopeSpans, Status};
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::trace::SpanData;
use prost::Message as _;
use serde_json::Value;

use super::{Attempt, Batch, Pending, SessionExporter, Wire, Work};
use crate::backend_error::BackendError;
use crate::config::Config;
use crate::state::SessionState;
use crate::sync::lock;
use crate::transport::{Answer, Request};

/// A span in OTLP's protobuf form.
pub(crate) type ProtoSpan = opentelemetry_proto::tonic::trace::v1::Span;

const PROTOBUF: &str = "application/x-protobuf";
const AUTH_TOKEN_PATH: &str = "/v3/auth/token";

#[derive(Default)]
struct Token {
    value: Option<String>,
    /// Set when the API key was refused (401, 403): every later call fails at once.
    refused: Option<BackendError>,
    /// Set when the backend has no token endpoint (404, 405): a plain OpenTelemetry
    /// backend; spans go without a token.
    unsupported: bool,
}

/// What the OTLP protocol shares across a client's sessions: its token and resource.
pub(crate) struct OtlpWire {
    /// Whether the API key is exchanged for a token.
    uses_token: bool,
    token: Mutex<Token>,
    resource: Resource,
}

impl OtlpWire {
    pub(crate) fn new(config: &Config) -> Self {
        let explicit_auth = config
            .otlp
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("authorization"));
        // service.name and the rest from OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES.
        let detected = opentelemetry_sdk::Resource::builder().build();
        let mut attributes = ResourceAttributesWithSchema::from(&detected).attributes.0;
        attributes.push(string_attribute("agentops.sdk.language", "rust"));
        Self {
            uses_token: config.api_key.is_some() && !explicit_auth,
            token: Mutex::new(Token::default()),
            resource: Resource {
                attributes,
                dropped_attributes_count: 0,
                entity_refs: Vec::new(),
            },
        }
    }

    /// Forgets a token the backend refused, so that the next call fetches a new one.
    pub(crate) fn invalidate(&self, stale: &str) {
        let mut token = lock(&self.token);
        if token.value.as_deref() == Some(stale) {
            token.value = None;
        }
    }
}

/// One attempt at `pending` over OTLP.
pub(crate) fn attempt(
    exporter: &SessionExporter,
    pending: &mut Pending,
    limit: Duration,
) -> Attempt {
    let token = match token(&exporter.wire, limit) {
        Ok(token) => token,
        Err(attempt) => return attempt,
    };
    if matches!(pending.work, Work::Open | Work::Job(_)) {
        // Credentials are all there is to registering; tags and agents travel on the spans.
        return Attempt::Answered(String::new());
    }
    let call = pending.work.call(crate::config::Protocol::Otlp);
    let request = pending
        .request
        .get_or_insert_with(|| traces_request(exporter, &pending.work))
        .clone();
    let request = match &token {
        Some(token) => request.header("Authorization", format!("Bearer {token}")),
        None => request,
    };
    match exporter.wire.send(call, &request, limit) {
        Answer::Unauthorized(message) => match token {
            Some(stale) if !pending.reauthorized => {
                pending.reauthorized = true;
                exporter.wire.otlp.invalidate(&stale);
                Attempt::Again
            }
            _ => Attempt::Failed(BackendError::Refused {
                call,
                status: 401,
                message,
            }),
        },
        answer => super::v2::classify(call, answer),
    }
}

/// The client's token (`None` when none is used), or the attempt that fetches it.
pub(crate) fn token(wire: &Wire, limit: Duration) -> Result<Option<String>, Attempt> {
    const CALL: &str = "auth_token";
    if !wire.otlp.uses_token {
        return Ok(None);
    }
    {
        let token = lock(&wire.otlp.token);
        if let Some(value) = &token.value {
            return Ok(Some(value.clone()));
        }
        if let Some(refused) = &token.refused {
            return Err(Attempt::Failed(refused.clone()));
        }
        if token.unsupported {
            return Ok(None);
        }
    }
    let key = wire
        .config
        .api_key
        .map(|key| key.to_string())
        .unwrap_or_default();
    let body = serde_json::to_vec(&serde_json::json!({ "api_key": key })).unwrap_or_default();
    let request = wire.transport.request(
        format!("{}{AUTH_TOKEN_PATH}", wire.config.endpoint),
        "application/json",
        &body,
    );
    match super::v2::classify(CALL, wire.send(CALL, &request, limit)) {
        Attempt::Answered(answer) => {
            let value = serde_json::from_str::<Value>(&answer)
                .ok()
                .and_then(|answer| answer["token"].as_str().map(str::to_owned));
            match value {
                Some(value) => {
                    lock(&wire.otlp.token).value = Some(value);
                    Err(Attempt::Again)
                }
                None => Err(Attempt::Failed(BackendError::BadAnswer {
                    call: CALL,
                    reason: "no token".into(),
                })),
            }
        }
        Attempt::Failed(BackendError::Refused {
            status: 404 | 405, ..
        }) => {
            tracing::info!(target: "agentops", endpoint = %wire.config.endpoint, "no /v3/auth/token here: sending spans without a token");
            lock(&wire.otlp.token).unsupported = true;
            Err(Attempt::Again)
        }
        Attempt::Failed(err) => {
            if matches!(
                err,
                BackendError::Refused {
                    status: 401 | 403,
                    ..
                }
            ) {
                lock(&wire.otlp.token).refused = Some(err.clone());
            }
            Err(Attempt::Failed(err))
        }
        other => Err(other),
    }
}

fn traces_request(exporter: &SessionExporter, work: &Work) -> Request {
    let wire = &exporter.wire;
    let spans = match work {
        Work::Events(Batch::Otlp(spans)) => spans.clone(),
        Work::Close => vec![session_span(exporter.state())],
        _ => Vec::new(),
    };
    let body = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(wire.otlp.resource.clone()),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "agentops".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
    .encode_to_vec();
    let mut request =
        wire.transport
            .request(wire.config.otlp.traces_endpoint.clone(), PROTOBUF, &body);
    for (name, value) in &wire.config.otlp.headers {
        request.set_header(name.clone(), value.clone());
    }
    request
}

/// Ended spans in protobuf form, with the GenAI attributes other backends read.
pub(crate) fn to_proto_spans(spans: impl Iterator<Item = SpanData>) -> Vec<ProtoSpan> {
    spans
        .map(|span| {
            let mut proto = ProtoSpan::from(span);
            add_gen_ai_attributes(&mut proto);
            proto
        })
        .collect()
}

/// `gen_ai.*` attributes from an LLM or tool event's `event.data`.
fn add_gen_ai_attributes(span: &mut ProtoSpan) {
    let text = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| match &kv.value {
                Some(AnyValue {
                    value: Some(any_value::Value::StringValue(text)),
                }) => Some(text.clone()),
                _ => None,
            })
    };
    let Some(kind) = text(attr::EVENT_TYPE) else {
        return;
    };
    if kind != "llms" && kind != "tools" {
        return;
    }
    let Some(data) =
        text(attr::EVENT_DATA).and_then(|data| serde_json::from_str::<Value>(&data).ok())
    else {
        return;
    };
    let mut extra = Vec::new();
    if kind == "llms" {
        extra.push(string_attribute("gen_ai.operation.name", "chat"));
        if let Some(model) = data["model"].as_str() {
            extra.push(string_attribute("gen_ai.request.model", model));
        }
        for (field, key) in [
            ("prompt_tokens", "gen_ai.usage.input_tokens"),
            ("completion_tokens", "gen_ai.usage.output_tokens"),
        ] {
            if let Some(tokens) = data[field].as_i64() {
                extra.push(KeyValue {
                    key: key.into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::IntValue(tokens)),
                    }),
                    ..Default::default()
                });
            }
        }
    } else {
        extra.push(string_attribute("gen_ai.operation.name", "execute_tool"));
        if let Some(name) = data["tool_name"].as_str().or(data["name"].as_str()) {
            extra.push(string_attribute("gen_ai.tool.name", name));
        }
    }
    span.attributes.extend(extra);
}

/// The session's own span: the root of its events, ended now with the end state.
fn session_span(state: &SessionState) -> ProtoSpan {
    let record = state.record().clone();
    let mut attributes = vec![
        string_attribute("agentops.span.kind", "session"),
        string_attribute(attr::SESSION_ID, &state.id.to_string()),
        string_attribute("agentops.session.end_state", record.end_state.as_str()),
        KeyValue {
            key: "agentops.tags".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue {
                    values: record
                        .tags
                        .iter()
                        .map(|tag| AnyValue {
                            value: Some(any_value::Value::StringValue(tag.clone())),
                        })
                        .collect(),
                })),
            }),
            ..Default::default()
        },
    ];
    if let Some(reason) = &record.end_state_reason {
        attributes.push(string_attribute(
            "agentops.session.end_state_reason",
            reason,
        ));
    }
    if let Some(host) = &record.host_env {
        attributes.push(string_attribute(
            "agentops.session.host_env",
            &host.to_string(),
        ));
    }
    let failed = record.end_state == EndState::Fail;
    ProtoSpan {
        trace_id: state.trace_id.to_bytes().to_vec(),
        span_id: state.root_span_id.to_bytes().to_vec(),
        // Under the application's span when the session was started inside its trace.
        parent_span_id: if state.parent.is_valid() {
            state.parent.span_id().to_bytes().to_vec()
        } else {
            Vec::new()
        },
        name: "session".into(),
        kind: span::SpanKind::Internal as i32,
        start_time_unix_nano: nanos(state.started),
        end_time_unix_nano: nanos(SystemTime::now()),
        attributes,
        status: Some(Status {
            code: if failed {
                status::StatusCode::Error
            } else {
                status::StatusCode::Unset
            } as i32,
            message: if failed {
                record.end_state_reason.unwrap_or_default()
            } else {
                String::new()
            },
        }),
        ..Default::default()
    }
}

fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}
