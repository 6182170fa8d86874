//! OTLP spans → stored events and sessions.
//!
//! - **Session**: the `session.id` or `gen_ai.conversation.id` attribute, else the trace id
//!   written as a UUID (so a 0.4.x trace and its `/v4/logs/upload/` `Trace-Id` meet).
//! - **Kind**: `event.type` (Rust SDK), `agentops.span.kind` (Python SDK 0.4), OpenInference's
//!   `openinference.span.kind`, `gen_ai.operation.name`, else `llms` when any `gen_ai` model or
//!   provider is set, else `span`. Spelled as [`EventKind`] spells it (`llm` → `llms`).
//! - **LLM fields**: GenAI semantic conventions, old and new names (`gen_ai.system` /
//!   `gen_ai.provider.name`, `gen_ai.usage.prompt_tokens` / `input_tokens`, …), indexed
//!   `gen_ai.prompt.N.*` / `gen_ai.completion.N.*`, `gen_ai.input.messages` /
//!   `gen_ai.output.messages`, and OpenInference (`llm.model_name`, `llm.token_count.*`,
//!   `llm.input_messages.N.message.*`, `input.value` / `output.value`).
//! - **AgentOps 0.4**: `agentops.<kind>.input`/`.output` (or `agentops.entity.*`) become params
//!   and returns; a `session` span carries `agentops.session.end_state` and `agentops.tags`.
//! - **Rust SDK**: `event.id`, `event.type`, `event.timestamp`, `event.end_timestamp`,
//!   `event.data` (the v2 fields, JSON) and `session.id`.
//!
//! Every attribute not turned into a column is kept in `attributes`.

use std::collections::BTreeMap;

use agentops_core::pricing::PriceTable;
use agentops_core::{attributes as keys, EndState, EventKind};
use serde_json::{Map, Value};

use super::{dollars, maybe_json, price_event, token_count};
use super::{messages, names};
use crate::store::{EventRecord, RootEnd, SessionRecord};

/// A span as decoded from OTLP protobuf or JSON.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Span {
    /// 16 bytes when valid.
    pub trace_id: Vec<u8>,
    /// 8 bytes when valid.
    pub span_id: Vec<u8>,
    /// Empty for a root span.
    pub parent_span_id: Vec<u8>,
    /// The span name.
    pub name: String,
    /// OTLP span kind (1 internal, 2 server, 3 client, …).
    pub kind: i32,
    /// Start, nanoseconds since the Unix epoch.
    pub start_ns: u64,
    /// End, nanoseconds since the Unix epoch.
    pub end_ns: u64,
    /// Attributes in order; values as JSON.
    pub attributes: Vec<(String, Value)>,
    /// 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    /// The status message.
    pub status_message: String,
    /// Span events (`exception`, …) as `{"name", "time", "attributes"}`.
    pub events: Vec<Value>,
    /// The instrumentation scope's name.
    pub scope: String,
    /// The resource's `service.name`.
    pub service_name: String,
}

/// What one span contributes: its event, and the fields it sets on its session.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedSpan {
    /// The stored event.
    pub event: EventRecord,
    /// The session's fields this span knows (at least its id and a start time).
    pub session: SessionRecord,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_id(bytes: &[u8], len: usize) -> bool {
    bytes.len() == len && bytes.iter().any(|b| *b != 0)
}

/// Nanoseconds since the Unix epoch in the stored timestamp form; `None` outside the years
/// [`super::YEARS`].
pub fn format_ns(ns: u64) -> Option<String> {
    use chrono::Datelike as _;
    let secs = i64::try_from(ns / 1_000_000_000).ok()?;
    let nanos = (ns % 1_000_000_000) as u32;
    chrono::DateTime::from_timestamp(secs, nanos)
        .filter(|time| super::YEARS.contains(&time.year()))
        .map(agentops_core::timestamp::format)
}

/// The session id of a trace without a `session.id`: its trace id as a UUID.
pub fn trace_session_id(trace_id: &[u8]) -> Option<String> {
    let bytes: [u8; 16] = trace_id.try_into().ok()?;
    Some(uuid::Uuid::from_bytes(bytes).to_string())
}

struct Attrs(BTreeMap<String, Value>);

impl Attrs {
    fn str(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
    fn first_str(&self, keys: &[&str]) -> Option<String> {
        keys.iter().find_map(|k| self.str(k)).map(str::to_owned)
    }
    fn first_tokens(&self, keys: &[&str]) -> Option<i64> {
        keys.iter()
            .find_map(|k| token_count(self.0.get(*k), k).ok().flatten())
    }
    fn first_value(&self, keys: &[&str]) -> Option<Value> {
        keys.iter()
            .find_map(|k| self.0.get(*k))
            .filter(|v| !v.is_null())
            .map(maybe_json)
    }
    /// `prefix.N.rest` attributes as an array of objects ordered by N (`rest` keys kept flat;
    /// `strip` is removed from the front of `rest`).
    fn indexed(&self, prefix: &str, strip: &str) -> Option<Value> {
        let mut items: BTreeMap<usize, Map<String, Value>> = BTreeMap::new();
        for (key, value) in self.0.range(prefix.to_owned()..) {
            let Some(rest) = key.strip_prefix(prefix) else {
                break;
            };
            let Some((index, field)) = rest.split_once('.') else {
                continue;
            };
            let Ok(index) = index.parse::<usize>() else {
                continue;
            };
            let field = field.strip_prefix(strip).unwrap_or(field);
            items
                .entry(index)
                .or_default()
                .insert(field.to_owned(), value.clone());
        }
        (!items.is_empty()).then(|| Value::Array(items.into_values().map(Value::Object).collect()))
    }
}

fn kind_of(attrs: &Attrs) -> (String, Option<String>) {
    // Returns (stored kind, the raw agentops kind used in `agentops.<kind>.input`).
    if let Some(t) = attrs.str(keys::EVENT_TYPE) {
        return (EventKind::from_wire(t).as_str().to_owned(), None);
    }
    if let Some(k) = attrs.str("agentops.span.kind") {
        return (
            EventKind::from_wire(&k.to_ascii_lowercase())
                .as_str()
                .to_owned(),
            Some(k.to_owned()),
        );
    }
    if let Some(k) = attrs.str("openinference.span.kind") {
        return (
            EventKind::from_wire(&k.to_ascii_lowercase())
                .as_str()
                .to_owned(),
            None,
        );
    }
    if let Some(op) = attrs.str("gen_ai.operation.name") {
        let kind = match op {
            "execute_tool" => "tools",
            "invoke_agent" | "create_agent" => "agent",
            _ => "llms",
        };
        return (kind.to_owned(), None);
    }
    let llm_hint = [
        "gen_ai.system",
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "llm.model_name",
    ];
    if llm_hint.iter().any(|k| attrs.str(k).is_some()) {
        return ("llms".to_owned(), None);
    }
    ("span".to_owned(), None)
}

fn parse_tags(value: &Value) -> Option<Vec<String>> {
    match maybe_json(value) {
        Value::Array(items) => Some(
            items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect(),
        ),
        Value::String(s) => Some(
            s.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        _ => None,
    }
}

/// Maps one span; `Err` says why the span is rejected (bad ids, no time).
pub fn map_span(span: &Span, prices: &PriceTable) -> Result<MappedSpan, String> {
    if !valid_id(&span.trace_id, 16) {
        return Err(format!("span {:?}: invalid trace id", span.name));
    }
    if !valid_id(&span.span_id, 8) {
        return Err(format!("span {:?}: invalid span id", span.name));
    }
    let start_ns = if span.start_ns != 0 {
        span.start_ns
    } else {
        span.end_ns
    };
    let span_start = format_ns(start_ns)
        .filter(|_| start_ns != 0)
        .ok_or_else(|| {
            format!(
                "span {:?}: missing start time, or not within the years {} to {}",
                span.name,
                super::YEARS.start(),
                super::YEARS.end()
            )
        })?;
    let span_end = (span.end_ns != 0).then(|| format_ns(span.end_ns)).flatten();

    let attrs = Attrs(span.attributes.iter().cloned().collect());
    let (kind, agentops_kind) = kind_of(&attrs);
    let session_id = attrs
        .first_str(&[keys::SESSION_ID, "gen_ai.conversation.id"])
        .or_else(|| trace_session_id(&span.trace_id))
        .unwrap_or_default();
    super::check_session_id(&session_id, &format!("span {:?}", span.name))?;
    if span.end_ns != 0 && span.end_ns < start_ns {
        return Err(format!("span {:?}: ends before it starts", span.name));
    }
    let span_id = hex(&span.span_id);

    let mut event = EventRecord {
        id: attrs
            .str(keys::EVENT_ID)
            .map(str::to_owned)
            .unwrap_or_else(|| span_id.clone()),
        session_id: session_id.clone(),
        kind: kind.clone(),
        name: Some(
            attrs
                .first_str(&["operation.name"])
                .unwrap_or_else(|| span.name.clone()),
        ),
        parent_id: valid_id(&span.parent_span_id, 8).then(|| hex(&span.parent_span_id)),
        trace_id: Some(hex(&span.trace_id)),
        span_id: Some(span_id),
        start_time: attrs
            .str(keys::EVENT_TIMESTAMP)
            .and_then(|t| super::normalize_time(t, "").ok())
            .unwrap_or(span_start),
        end_time: attrs
            .str(keys::EVENT_END_TIMESTAMP)
            .and_then(|t| super::normalize_time(t, "").ok())
            .or(span_end),
        status: match span.status_code {
            1 => Some("ok".into()),
            2 => Some("error".into()),
            _ => None,
        },
        status_message: Some(span.status_message.clone()).filter(|m| !m.is_empty()),
        attributes: Value::Object(Map::new()),
        ..EventRecord::default()
    };

    // GenAI / OpenInference LLM fields.
    event.model = attrs.first_str(&[
        "gen_ai.response.model",
        "gen_ai.request.model",
        "llm.model_name",
    ]);
    event.provider = attrs
        .first_str(&[
            "gen_ai.provider.name",
            "gen_ai.system",
            "llm.provider",
            "llm.system",
        ])
        .map(|p| p.to_ascii_lowercase());
    event.input_tokens = attrs.first_tokens(&[
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
        "llm.token_count.prompt",
    ]);
    event.output_tokens = attrs.first_tokens(&[
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.token_count.completion",
    ]);
    event.cached_tokens = attrs.first_tokens(&[
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "gen_ai.usage.cached_tokens",
        "gen_ai.usage.prompt_tokens_details.cached_tokens",
        "llm.token_count.prompt_details.cache_read",
    ]);
    event.reasoning_tokens = attrs.first_tokens(&[
        "gen_ai.usage.reasoning_tokens",
        "gen_ai.usage.completion_tokens_details.reasoning_tokens",
        "llm.token_count.completion_details.reasoning",
    ]);
    event.cost = [
        "gen_ai.usage.total_cost",
        "gen_ai.usage.cost",
        "llm.cost.total",
    ]
    .iter()
    .find_map(|k| dollars(attrs.0.get(*k), k).ok().flatten());
    event.prompt = attrs
        .indexed("gen_ai.prompt.", "")
        .or_else(|| attrs.first_value(&["gen_ai.input.messages"]))
        .or_else(|| attrs.indexed("llm.input_messages.", "message."));
    event.completion = attrs
        .indexed("gen_ai.completion.", "")
        .or_else(|| attrs.first_value(&["gen_ai.output.messages"]))
        .or_else(|| attrs.indexed("llm.output_messages.", "message."));
    let is_llm = kind == EventKind::Llm.as_str();
    if is_llm {
        event.prompt = event
            .prompt
            .take()
            .or_else(|| attrs.first_value(&["input.value"]));
        event.completion = event
            .completion
            .take()
            .or_else(|| attrs.first_value(&["output.value"]));
    }

    // AgentOps 0.4 inputs and outputs; OpenInference values of non-LLM spans.
    let raw_kind = agentops_kind.unwrap_or_default();
    event.params = attrs.first_value(&[
        &format!("agentops.{raw_kind}.input"),
        "agentops.entity.input",
        if is_llm { "" } else { "input.value" },
    ]);
    event.returns = attrs.first_value(&[
        &format!("agentops.{raw_kind}.output"),
        "agentops.entity.output",
        if is_llm { "" } else { "output.value" },
    ]);

    // The Rust SDK's `event.data`: the v2 fields of the event.
    if let Some(Value::Object(data)) = attrs.0.get(keys::EVENT_DATA).map(maybe_json) {
        let wire_kind = EventKind::from_wire(&event.kind);
        if let Some(params) = data.get("params").filter(|v| !v.is_null()) {
            event.params = Some(params.clone());
        }
        if let Some(returns) = data.get("returns").filter(|v| !v.is_null()) {
            event.returns = Some(returns.clone());
        }
        let mut fields = data.clone();
        for k in [
            "id",
            "event_type",
            "init_timestamp",
            "end_timestamp",
            "session_id",
            "params",
            "returns",
        ] {
            fields.remove(k);
        }
        super::v2::apply_fields(&wire_kind, &fields, &mut event, keys::EVENT_DATA)?;
    }

    // Everything else is kept as attributes.
    if let Value::Object(out) = &mut event.attributes {
        for (key, value) in &attrs.0 {
            let consumed = key.starts_with("gen_ai.prompt.")
                || key.starts_with("gen_ai.completion.")
                || key.starts_with("llm.input_messages.")
                || key.starts_with("llm.output_messages.")
                || matches!(
                    key.as_str(),
                    "gen_ai.input.messages" | "gen_ai.output.messages" | keys::EVENT_DATA
                );
            if !consumed {
                out.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        if !span.scope.is_empty() {
            out.insert("otel.scope.name".into(), Value::String(span.scope.clone()));
        }
        if !span.events.is_empty() {
            out.insert("otel.events".into(), Value::Array(span.events.clone()));
        }
        out.insert("otel.span.name".into(), Value::String(span.name.clone()));
    }
    price_event(&mut event, prices);

    event.call_ids = call_ids_of(&event, &attrs);

    // An AgentOps SDK's spans (the Rust SDK's `event.type`, agentops 0.4's kinds) belong to a
    // session that its SDK ends; any other trace is a plain one, ended by its root span.
    let from_agentops_sdk =
        attrs.str(keys::EVENT_TYPE).is_some() || attrs.str("agentops.span.kind").is_some();
    let is_root = !valid_id(&span.parent_span_id, 8);
    let mut session = SessionRecord {
        id: session_id,
        start_time: Some(event.start_time.clone()),
        last_event_end: event.end_time.clone(),
        root_end: (is_root && !from_agentops_sdk)
            .then(|| event.end_time.clone())
            .flatten()
            .map(|end_time| RootEnd {
                end_time,
                failed: span.status_code == 2,
                reason: event.status_message.clone(),
            }),
        ..SessionRecord::default()
    };
    let candidates = [
        (names::SESSION_NAME_ATTRIBUTE, attrs.str("session.name")),
        (
            names::ROOT_SPAN,
            (is_root && !from_agentops_sdk).then_some(span.name.as_str()),
        ),
        (names::AGENT, attrs.str("gen_ai.agent.name")),
        (names::SERVICE, Some(span.service_name.as_str())),
    ];
    if let Some((rank, name)) = candidates.into_iter().find_map(|(rank, name)| {
        let name = if rank == names::SERVICE {
            names::service(name?)
        } else {
            names::clean(name?)
        };
        Some((rank, name?))
    }) {
        session.name = Some(name);
        session.name_rank = rank;
    }
    if kind == "session" && session.name_rank < names::SESSION_SPAN {
        session.name = event.name.as_deref().and_then(names::clean);
        session.name_rank = names::SESSION_SPAN;
    }
    if kind == "session" {
        session.end_time = event.end_time.clone();
        // An ended session span always has an end state: the one it names, else Fail when its
        // status is an error, else Indeterminate (agentops 0.4 sends "Shutdown" at exit, and
        // drops the attribute when given an enum).
        session.end_state = attrs
            .str("agentops.session.end_state")
            .and_then(|s| s.parse::<EndState>().ok())
            .or_else(|| {
                event.end_time.as_ref().map(|_| {
                    if span.status_code == 2 {
                        EndState::Fail
                    } else {
                        EndState::Indeterminate
                    }
                })
            });
        session.end_state_reason = attrs
            .first_str(&[
                "agentops.session.end_state_reason",
                "agentops.legacy.end_state_reason",
            ])
            .or_else(|| {
                (span.status_code == 2)
                    .then(|| span.status_message.clone())
                    .filter(|m| !m.is_empty())
            });
    }
    if let Some(tags) = ["agentops.tags", keys::SESSION_TAGS]
        .iter()
        .find_map(|k| attrs.0.get(*k))
        .and_then(parse_tags)
    {
        super::check_tags(&tags, &format!("span {:?}: agentops.tags", span.name))?;
        session.tags = Some(tags);
    }
    Ok(MappedSpan { event, session })
}

/// The tool calls a span is about: the call a tool execution answers (`gen_ai.tool.call.id`,
/// OpenInference's `tool_call.id`), or the calls an LLM call's answer asks for.
fn call_ids_of(event: &EventRecord, attrs: &Attrs) -> Option<String> {
    let ids = if event.kind == EventKind::Llm.as_str() {
        event
            .completion
            .as_ref()
            .map(|c| messages::call_ids(&messages::from_value(c, "assistant")))
            .unwrap_or_default()
    } else {
        attrs
            .first_str(&["gen_ai.tool.call.id", "tool_call.id"])
            .into_iter()
            .collect()
    };
    let ids: Vec<String> = ids.into_iter().filter(|id| !id.contains(' ')).collect();
    (!ids.is_empty()).then(|| ids.join(" "))
}

/// Maps a batch: the events, the merged per-session fields (in first-seen order), and the
/// rejections.
pub fn map_spans(
    spans: &[Span],
    prices: &PriceTable,
) -> (Vec<EventRecord>, Vec<SessionRecord>, Vec<String>) {
    let (mapped, rejected) = map_each(spans, prices);
    let (events, sessions) = collect(mapped);
    (events, sessions, rejected)
}

/// Maps each span on its own: the spans that map, and why the others do not.
pub fn map_each(spans: &[Span], prices: &PriceTable) -> (Vec<MappedSpan>, Vec<String>) {
    let mut mapped = Vec::with_capacity(spans.len());
    let mut rejected = Vec::new();
    for span in spans {
        match map_span(span, prices) {
            Ok(one) => mapped.push(one),
            Err(why) => rejected.push(why),
        }
    }
    (mapped, rejected)
}

/// The events of mapped spans, and their sessions' fields merged per session (in first-seen
/// order).
pub fn collect(
    mapped: impl IntoIterator<Item = MappedSpan>,
) -> (Vec<EventRecord>, Vec<SessionRecord>) {
    let mapped = mapped.into_iter();
    let mut events = Vec::with_capacity(mapped.size_hint().0);
    let mut sessions: Vec<SessionRecord> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for MappedSpan { event, session } in mapped {
        events.push(event);
        match index.get(&session.id) {
            Some(&i) => merge_session(&mut sessions[i], session),
            None => {
                index.insert(session.id.clone(), sessions.len());
                sessions.push(session);
            }
        }
    }
    (events, sessions)
}

fn merge_session(into: &mut SessionRecord, from: SessionRecord) {
    into.start_time = match (into.start_time.take(), from.start_time) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let explicit = from.name_rank >= names::SESSION_SPAN && from.name_rank == into.name_rank;
    if from.name.is_some() && (into.name.is_none() || from.name_rank > into.name_rank || explicit) {
        into.name = from.name;
        into.name_rank = from.name_rank;
    }
    into.last_event_end = into.last_event_end.take().max(from.last_event_end);
    into.root_end = match (into.root_end.take(), from.root_end) {
        (Some(a), Some(b)) => Some(if b.end_time >= a.end_time { b } else { a }),
        (a, b) => a.or(b),
    };
    into.end_time = from.end_time.or(into.end_time.take());
    into.end_state = from.end_state.or(into.end_state.take());
    into.end_state_reason = from.end_state_reason.or(into.end_state_reason.take());
    into.tags = from.tags.or(into.tags.take());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn span(attrs: Vec<(&str, Value)>) -> Span {
        Span {
            trace_id: (1..=16).collect(),
            span_id: (1..=8).collect(),
            name: "openai.chat.completion".into(),
            start_ns: 1_795_311_032_720_470_384,
            end_ns: 1_795_311_032_720_524_223,
            attributes: attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            ..Span::default()
        }
    }

    fn map(attrs: Vec<(&str, Value)>) -> MappedSpan {
        map_span(&span(attrs), &PriceTable::builtin()).unwrap()
    }

    #[test]
    fn old_genai_names_and_indexed_messages() {
        let m = map(vec![
            ("gen_ai.system", json!("OpenAI")),
            ("gen_ai.request.model", json!("gpt-4o-mini")),
            ("gen_ai.prompt.0.role", json!("system")),
            ("gen_ai.prompt.0.content", json!("be brief")),
            ("gen_ai.prompt.1.role", json!("user")),
            ("gen_ai.prompt.1.content", json!("Summarize otel")),
            ("gen_ai.usage.prompt_tokens", json!(12)),
            ("gen_ai.usage.completion_tokens", json!("5")),
            ("gen_ai.completion.0.role", json!("assistant")),
            ("gen_ai.completion.0.content", json!("Echo")),
        ]);
        let e = m.event;
        assert_eq!(e.kind, "llms");
        assert_eq!(e.provider.as_deref(), Some("openai"));
        assert_eq!(e.model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!((e.input_tokens, e.output_tokens), (Some(12), Some(5)));
        assert_eq!(
            e.prompt,
            Some(
                json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "Summarize otel"}])
            )
        );
        assert_eq!(
            e.completion,
            Some(json!([{"role": "assistant", "content": "Echo"}]))
        );
        assert!((e.cost.unwrap() - (12.0 * 0.15 + 5.0 * 0.6) / 1e6).abs() < 1e-15);
        assert!(e.attributes.get("gen_ai.prompt.0.role").is_none());
        assert_eq!(e.attributes["gen_ai.system"], "OpenAI");
        assert_eq!(e.session_id, "01020304-0506-0708-090a-0b0c0d0e0f10");
        assert_eq!(e.id, "0102030405060708");
        assert_eq!(e.start_time, "2026-11-22T01:30:32.720470+00:00");
    }

    #[test]
    fn new_genai_names_cached_and_reasoning() {
        let e = map(vec![
            ("gen_ai.provider.name", json!("anthropic")),
            ("gen_ai.operation.name", json!("chat")),
            ("gen_ai.response.model", json!("claude-sonnet-4-5-20250929")),
            ("gen_ai.usage.input_tokens", json!(1000)),
            ("gen_ai.usage.output_tokens", json!(200)),
            ("gen_ai.usage.cache_read.input_tokens", json!(400)),
            ("gen_ai.usage.reasoning_tokens", json!(50)),
            (
                "gen_ai.input.messages",
                json!("[{\"role\":\"user\",\"parts\":[]}]"),
            ),
            ("gen_ai.conversation.id", json!("conv-1")),
        ])
        .event;
        assert_eq!(e.kind, "llms");
        assert_eq!((e.cached_tokens, e.reasoning_tokens), (Some(400), Some(50)));
        assert_eq!(e.prompt, Some(json!([{"role": "user", "parts": []}])));
        assert_eq!(e.session_id, "conv-1");
        let expected = (600.0 * 3.0 + 400.0 * 0.3 + 200.0 * 15.0) / 1e6;
        assert!((e.cost.unwrap() - expected).abs() < 1e-12);
    }

    #[test]
    fn agentops_session_span_sets_end_state_and_tags() {
        let m = map(vec![
            ("agentops.span.kind", json!("session")),
            ("operation.name", json!("decorated-trace")),
            ("agentops.tags", json!(["decorated"])),
            (
                "agentops.entity.input",
                json!("{\"args\": [\"otel\"], \"kwargs\": {}}"),
            ),
            ("agentops.session.end_state", json!("Success")),
        ]);
        assert_eq!(m.event.kind, "session");
        assert_eq!(m.event.name.as_deref(), Some("decorated-trace"));
        assert_eq!(
            m.event.params,
            Some(json!({"args": ["otel"], "kwargs": {}}))
        );
        assert_eq!(m.session.end_state, Some(EndState::Success));
        assert_eq!(m.session.tags, Some(vec!["decorated".to_string()]));
        assert_eq!(m.session.name.as_deref(), Some("decorated-trace"));
        assert!(m.session.end_time.is_some());
    }

    #[test]
    fn an_ended_session_span_without_a_known_end_state_is_indeterminate_or_failed() {
        let shutdown = map(vec![
            ("agentops.span.kind", json!("session")),
            ("agentops.session.end_state", json!("Shutdown")),
        ]);
        assert_eq!(shutdown.session.end_state, Some(EndState::Indeterminate));
        let mut failed = span(vec![("agentops.span.kind", json!("session"))]);
        failed.status_code = 2;
        let failed = map_span(&failed, &PriceTable::builtin()).unwrap();
        assert_eq!(failed.session.end_state, Some(EndState::Fail));
    }

    #[test]
    fn agentops_tool_keeps_client_cost_and_io() {
        let e = map(vec![
            ("agentops.span.kind", json!("tool")),
            ("operation.name", json!("calculator")),
            (
                "agentops.tool.input",
                json!("{\"args\": [\"6*7\"], \"kwargs\": {}}"),
            ),
            ("gen_ai.usage.total_cost", json!(0.01)),
            ("agentops.tool.output", json!("42")),
        ])
        .event;
        assert_eq!(e.kind, "tools");
        assert_eq!(e.cost, Some(0.01));
        assert_eq!(e.returns, Some(json!("42")));
        assert_eq!(e.name.as_deref(), Some("calculator"));
    }

    #[test]
    fn openinference_basics() {
        let e = map(vec![
            ("openinference.span.kind", json!("LLM")),
            ("llm.model_name", json!("gpt-4o")),
            ("llm.token_count.prompt", json!(10)),
            ("llm.token_count.completion", json!(3)),
            ("llm.input_messages.0.message.role", json!("user")),
            ("llm.input_messages.0.message.content", json!("hi")),
            ("output.value", json!("hello")),
        ])
        .event;
        assert_eq!(e.kind, "llms");
        assert_eq!(e.prompt, Some(json!([{"role": "user", "content": "hi"}])));
        assert_eq!(e.completion, Some(json!("hello")));
        assert_eq!((e.input_tokens, e.output_tokens), (Some(10), Some(3)));
    }

    #[test]
    fn rust_sdk_event_attributes() {
        let e = map(vec![
            ("event.id", json!("7c274055-b655-4d96-a615-c6d41b00e8e7")),
            ("event.type", json!("llms")),
            ("event.timestamp", json!("2026-11-22T01:30:22.844324+00:00")),
            ("event.end_timestamp", json!("2026-11-22T01:30:22.847766+00:00")),
            ("session.id", json!("ec025968-28a1-40dc-a031-44309d8be760")),
            (
                "event.data",
                json!("{\"model\":\"gpt-4o\",\"prompt\":\"q\",\"completion\":\"a\",\"prompt_tokens\":11,\"completion_tokens\":2,\"cost\":0.0001,\"params\":{\"t\":1}}"),
            ),
        ])
        .event;
        assert_eq!(e.id, "7c274055-b655-4d96-a615-c6d41b00e8e7");
        assert_eq!(e.kind, "llms");
        assert_eq!(e.session_id, "ec025968-28a1-40dc-a031-44309d8be760");
        assert_eq!(e.start_time, "2026-11-22T01:30:22.844324+00:00");
        assert_eq!(
            e.end_time.as_deref(),
            Some("2026-11-22T01:30:22.847766+00:00")
        );
        assert_eq!(e.model.as_deref(), Some("gpt-4o"));
        assert_eq!(
            (e.input_tokens, e.output_tokens, e.cost),
            (Some(11), Some(2), Some(0.0001))
        );
        assert_eq!(e.params, Some(json!({"t": 1})));
        assert_eq!(e.prompt, Some(json!("q")));
    }

    #[test]
    fn bad_ids_are_rejected_and_sessions_merge() {
        let mut bad = span(vec![]);
        bad.trace_id = vec![0; 16];
        assert!(map_span(&bad, &PriceTable::builtin())
            .unwrap_err()
            .contains("trace id"));
        let mut short = span(vec![]);
        short.span_id = vec![1, 2];
        assert!(map_span(&short, &PriceTable::builtin())
            .unwrap_err()
            .contains("span id"));

        let mut early = span(vec![]);
        early.start_ns -= 1_000_000_000;
        early.span_id = vec![9; 8];
        let (events, sessions, rejected) =
            map_spans(&[span(vec![]), early, bad], &PriceTable::builtin());
        assert_eq!((events.len(), sessions.len(), rejected.len()), (2, 1, 1));
        assert_eq!(
            sessions[0].start_time.as_deref(),
            Some("2026-11-22T01:30:31.720470+00:00")
        );
        assert_eq!(events[0].kind, "span");
    }
}
