//! AgentOps v2 events and sessions (Python SDK 0.3.x, the Rust SDK) → stored records.
//!
//! - every kind: `id`, `event_type`, `init_timestamp`/`end_timestamp`, `agent_id`, `params`, `returns`;
//! - `llms`: `prompt`, `completion`, `model`, `prompt_tokens` (→ input), `completion_tokens`
//!   (→ output), optional `cached_tokens`/`reasoning_tokens`, `cost` (kept when sent);
//! - `errors`: `trigger_event` becomes the parent link, `details` the status message;
//! - everything else (`logs`, `action_type`, `tool_name`, `error_type`, …) goes to `attributes`.

use agentops_core::pricing::PriceTable;
use agentops_core::v2;
use agentops_core::EventKind;
use serde_json::{Map, Value};

use super::{dollars, normalize_time, price_event, token_count};
use crate::store::{EventRecord, SessionRecord};

/// Keys of a v2 event that become columns rather than attributes.
const COLUMN_KEYS: [&str; 13] = [
    "prompt",
    "completion",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost",
    "name",
    "parent_id",
    "span_id",
    "agent_id",
    "attributes",
];

/// Maps the session of `create_session`/`update_session`; errors name the bad field.
pub fn session_from_v2(body: &v2::SessionBody) -> Result<SessionRecord, String> {
    let id = parse_uuid(&body.session_id, "session.session_id")?;
    super::check_session_id(&id, "session.session_id")?;
    if let Some(tags) = &body.tags {
        super::check_tags(tags, "session.tags")?;
    }
    let time = |t: &Option<String>, field: &str| -> Result<Option<String>, String> {
        match t.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(t) => normalize_time(t, field).map(Some),
        }
    };
    // named after its tags until an agent gives it a better name
    let tag_name = body
        .tags
        .as_ref()
        .filter(|tags| !tags.is_empty())
        .and_then(|tags| super::names::clean(&tags.join(", ")));
    Ok(SessionRecord {
        id,
        name_rank: if tag_name.is_some() {
            super::names::TAGS
        } else {
            0
        },
        name: tag_name,
        start_time: time(&body.init_timestamp, "session.init_timestamp")?,
        end_time: time(&body.end_timestamp, "session.end_timestamp")?,
        end_state: body.end_state,
        end_state_reason: body.end_state_reason.clone().filter(|r| !r.is_empty()),
        tags: body.tags.clone(),
        host_env: body.host_env.clone().filter(|h| !h.is_null()),
        video: body.video.clone().filter(|v| !v.is_empty()),
        ..SessionRecord::default()
    })
}

/// A UUID in its canonical (lowercase, hyphenated) form, or an error naming `field`.
pub fn parse_uuid(text: &str, field: &str) -> Result<String, String> {
    uuid::Uuid::parse_str(text.trim())
        .map(|u| u.to_string())
        .map_err(|_| format!("{field}: {text:?} is not a UUID"))
}

/// Maps event number `index` of a `create_events` call for `session_id`.
pub fn event_from_v2(
    event: &v2::Event,
    index: usize,
    session_id: &str,
    prices: &PriceTable,
) -> Result<EventRecord, String> {
    let at = format!("events[{index}]");
    let id = parse_uuid(&event.id, &format!("{at}.id"))?;
    if event.event_type.trim().is_empty() {
        return Err(format!("{at}.event_type must not be empty"));
    }
    if let Some(sid) = event.session_id.as_deref().filter(|s| !s.is_empty()) {
        if parse_uuid(sid, &format!("{at}.session_id"))? != session_id {
            return Err(format!(
                "{at}.session_id does not match the session of the token"
            ));
        }
    }
    let start_time = normalize_time(&event.init_timestamp, &format!("{at}.init_timestamp"))?;
    let end_time = match event.end_timestamp.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t) => Some(normalize_time(t, &format!("{at}.end_timestamp"))?),
    };
    super::check_order(&start_time, end_time.as_deref(), &at)?;
    let kind = EventKind::from_wire(event.event_type.trim());
    let mut record = EventRecord {
        id,
        session_id: session_id.to_owned(),
        kind: kind.as_str().to_owned(),
        start_time,
        end_time,
        agent_id: event.agent_id.clone().filter(|a| !a.is_empty()),
        params: Some(event.params.clone()).filter(|v| !v.is_null()),
        returns: Some(event.returns.clone()).filter(|v| !v.is_null()),
        attributes: Value::Object(Map::new()),
        ..EventRecord::default()
    };
    apply_fields(&kind, &event.fields, &mut record, &at)?;
    if record.name.is_none() {
        // an LLM call is known by its model; anything else by its type
        record.name = Some(
            record
                .model
                .clone()
                .unwrap_or_else(|| event.event_type.trim().to_owned()),
        );
    }
    price_event(&mut record, prices);
    Ok(record)
}

/// Applies the kind-specific fields of a v2 event (also used for the `event.data` of spans
/// from the Rust SDK). Fields already set on `record` from elsewhere are overwritten only by
/// values present in `fields`.
pub fn apply_fields(
    kind: &EventKind,
    fields: &Map<String, Value>,
    record: &mut EventRecord,
    at: &str,
) -> Result<(), String> {
    let text = |key: &str| {
        fields
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .filter(|s| !s.is_empty())
    };
    let present = |key: &str| fields.get(key).filter(|v| !v.is_null()).cloned();

    if let Some(name) = text("name")
        .or_else(|| text("action_type"))
        .or_else(|| text("tool_name"))
        .or_else(|| text("error_type"))
    {
        record.name = Some(name);
    }
    if let Some(agent) = text("agent_id") {
        record.agent_id = Some(agent);
    }
    if let Some(prompt) = present("prompt") {
        record.prompt = Some(prompt);
    }
    if let Some(completion) = present("completion") {
        record.completion = Some(completion);
    }
    if let Some(model) = text("model") {
        record.model = Some(model);
    }
    let tokens = |key: &str| token_count(fields.get(key), &format!("{at}.{key}"));
    if let Some(n) = tokens("prompt_tokens")? {
        record.input_tokens = Some(n);
    }
    if let Some(n) = tokens("completion_tokens")? {
        record.output_tokens = Some(n);
    }
    if let Some(n) = tokens("cached_tokens")? {
        record.cached_tokens = Some(n);
    }
    if let Some(n) = tokens("reasoning_tokens")? {
        record.reasoning_tokens = Some(n);
    }
    if let Some(cost) = dollars(fields.get("cost"), &format!("{at}.cost"))? {
        record.cost = Some(cost);
    }
    // The Rust SDK sends the span parent as `parent_id`; the Python SDK has only an error's
    // `trigger_event` (kept in the attributes too, as what triggered the error).
    let trigger = match fields.get("trigger_event") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Object(o)) => o.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    if let Some(parent) = text("parent_id").or(trigger) {
        record.parent_id = Some(parent);
    }
    if let Some(span) =
        text("span_id").filter(|s| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        record.span_id = Some(span.to_ascii_lowercase());
    }
    if *kind == EventKind::Error {
        record.status = Some("error".into());
        record.status_message = text("details")
            .or_else(|| text("error_type"))
            .or(record.status_message.take());
    }
    if let Value::Object(attrs) = &mut record.attributes {
        for (key, value) in fields {
            if !COLUMN_KEYS.contains(&key.as_str()) && !value.is_null() {
                attrs.insert(key.clone(), value.clone());
            }
        }
        // Custom span attributes the Rust SDK sends under `attributes`.
        if let Some(Value::Object(custom)) = fields.get("attributes") {
            for (key, value) in custom {
                attrs.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SESSION: &str = "ec025968-28a1-40dc-a031-44309d8be760";

    fn map(value: Value) -> Result<EventRecord, String> {
        let event: v2::Event = serde_json::from_value(value).unwrap();
        event_from_v2(&event, 3, SESSION, &PriceTable::builtin())
    }

    #[test]
    fn llm_event_maps_tokens_and_computes_cost() {
        let r = map(json!({
            "id": "7c274055-b655-4d96-a615-c6d41b00e8e7", "event_type": "llms",
            "init_timestamp": "2026-11-22T01:30:22.844324+00:00",
            "end_timestamp": "2026-11-22T01:30:22.847766+00:00",
            "params": {"temperature": 0.0}, "returns": null, "agent_id": null,
            "session_id": SESSION, "thread_id": null, "prompt": "What is 2+2?",
            "prompt_tokens": 7, "completion": "4", "completion_tokens": 1, "cost": null,
            "model": "gpt-4o-mini"
        }))
        .unwrap();
        assert_eq!(r.kind, "llms");
        assert_eq!(r.model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!((r.input_tokens, r.output_tokens), (Some(7), Some(1)));
        assert_eq!(r.prompt, Some(json!("What is 2+2?")));
        assert!((r.cost.unwrap() - (7.0 * 0.15 + 0.6) / 1e6).abs() < 1e-15);
        assert_eq!(r.params, Some(json!({"temperature": 0.0})));
        assert_eq!(r.returns, None);
        assert_eq!(r.attributes, json!({}));
    }

    #[test]
    fn client_cost_is_kept() {
        let r = map(json!({
            "id": "47500752-2125-4908-9953-16853a0379fc", "event_type": "llms",
            "init_timestamp": "2026-11-22T01:30:22.848224+00:00", "model": "gpt-4o",
            "prompt_tokens": 11, "completion_tokens": 2, "cost": 0.0001
        }))
        .unwrap();
        assert_eq!(r.cost, Some(0.0001));
    }

    #[test]
    fn error_event_links_its_trigger() {
        let r = map(json!({
            "id": "05916597-7b14-4680-ad2e-13f548a1a7fd", "event_type": "errors",
            "init_timestamp": "2026-11-22T01:30:22.852004+00:00",
            "trigger_event": "d5ba7807-f5a8-4483-b067-aca13f9c9f38", "error_type": "ValueError",
            "code": null, "details": "bad value in search", "logs": "NoneType: None\n"
        }))
        .unwrap();
        assert_eq!(r.kind, "errors");
        assert_eq!(
            r.parent_id.as_deref(),
            Some("d5ba7807-f5a8-4483-b067-aca13f9c9f38")
        );
        assert_eq!(r.status.as_deref(), Some("error"));
        assert_eq!(r.status_message.as_deref(), Some("bad value in search"));
        assert_eq!(r.name.as_deref(), Some("ValueError"));
        assert_eq!(r.attributes["logs"], "NoneType: None\n");
        assert_eq!(
            r.attributes["trigger_event"],
            "d5ba7807-f5a8-4483-b067-aca13f9c9f38"
        );
    }

    #[test]
    fn the_rust_sdk_parent_link_wins_and_custom_attributes_are_merged() {
        let r = map(json!({
            "id": "05916597-7b14-4680-ad2e-13f548a1a7fd", "event_type": "errors",
            "init_timestamp": "2026-11-22T01:30:22.852004+00:00",
            "trigger_event": "d5ba7807-f5a8-4483-b067-aca13f9c9f38", "error_type": "ValueError",
            "parent_id": "7f2cc33c-d62a-4f3c-9232-d33a36925d83", "span_id": "0DBE492789A39F2D",
            "attributes": {"deployment": "staging"}
        }))
        .unwrap();
        assert_eq!(
            r.parent_id.as_deref(),
            Some("7f2cc33c-d62a-4f3c-9232-d33a36925d83")
        );
        assert_eq!(
            r.attributes["trigger_event"],
            "d5ba7807-f5a8-4483-b067-aca13f9c9f38"
        );
        assert_eq!(r.attributes["deployment"], "staging");
        assert_eq!(r.span_id.as_deref(), Some("0dbe492789a39f2d"));
        assert!(r.attributes.get("attributes").is_none());
    }

    #[test]
    fn bad_fields_are_named() {
        let base = json!({"id": "05916597-7b14-4680-ad2e-13f548a1a7fd", "event_type": "llms",
            "init_timestamp": "2026-11-22T01:30:22.852004+00:00"});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            map(b).unwrap_err()
        };
        assert!(with("id", json!("nope")).contains("events[3].id"));
        assert!(with("init_timestamp", json!("yesterday")).contains("events[3].init_timestamp"));
        assert!(with("end_timestamp", json!("later")).contains("events[3].end_timestamp"));
        assert!(with("prompt_tokens", json!(-1)).contains("events[3].prompt_tokens"));
        assert!(
            with("session_id", json!("bff980d9-1ed7-4355-b15e-5492e74ff7bd"))
                .contains("session_id")
        );
    }

    #[test]
    fn session_fields_are_validated_and_normalized() {
        let body: v2::SessionBody = serde_json::from_value(json!({
            "session_id": "EC025968-28A1-40DC-A031-44309D8BE760",
            "init_timestamp": "2026-11-22T01:30:22.721555Z", "end_state": "Fail",
            "end_state_reason": "boom", "tags": ["a"], "video": null, "host_env": {"OS": {}}
        }))
        .unwrap();
        let s = session_from_v2(&body).unwrap();
        assert_eq!(s.id, SESSION);
        assert_eq!(
            s.start_time.as_deref(),
            Some("2026-11-22T01:30:22.721555+00:00")
        );
        assert_eq!(s.end_state, Some(agentops_core::EndState::Fail));
        let bad: v2::SessionBody =
            serde_json::from_value(json!({"session_id": SESSION, "end_timestamp": "soon"}))
                .unwrap();
        assert!(session_from_v2(&bad)
            .unwrap_err()
            .contains("session.end_timestamp"));
    }
}
