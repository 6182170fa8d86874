//! What the read API derives from stored events when it answers: their messages in one model
//! ([`crate::mapping::messages`]), their links through tool calls, and which event each OTLP log
//! record belongs to.
//!
//! A tool call links an LLM event whose answer asks for it (its id among the answer's tool
//! calls, from the span or from its `gen_ai.choice` log records) to the event that ran it (an
//! `execute_tool` span carrying `gen_ai.tool.call.id`): the LLM event `calls` the tool event, the
//! tool event is `called_by` the LLM event.

// foldhash: the maps here hash thousands of ids per answer, where SipHash showed in profiles
use foldhash::{HashMap, HashMapExt};

use serde_json::Value;

use crate::mapping::messages::{for_event, GenAiRecord, Messages};
use crate::store::{CallRef, EventRow, LogRecord, SessionDetail, ToolLink};

/// The tool links of each event (by event id) from the events that name calls and the log
/// records that do (attributed to their span's event through `event_of_span`).
pub fn tool_links<'a>(
    refs: impl IntoIterator<Item = &'a CallRef>,
    records: &[LogRecord],
    event_of_span: &HashMap<&str, &str>,
) -> HashMap<String, Vec<ToolLink>> {
    // call id -> (the LLM events asking for it, the events running it)
    let mut calls: HashMap<&str, (Vec<&str>, Vec<&str>)> = HashMap::new();
    for r in refs {
        for id in r.call_ids.split(' ').filter(|id| !id.is_empty()) {
            let entry = calls.entry(id).or_default();
            if r.kind == "llms" {
                entry.0.push(&r.event_id);
            } else {
                entry.1.push(&r.event_id);
            }
        }
    }
    for record in records {
        let (Some(ids), Some(event)) = (
            record.call_ids.as_deref(),
            record.span_id.as_deref().and_then(|s| event_of_span.get(s)),
        ) else {
            continue;
        };
        for id in ids.split(' ').filter(|id| !id.is_empty()) {
            let askers = &mut calls.entry(id).or_default().0;
            if !askers.contains(event) {
                askers.push(event);
            }
        }
    }
    let mut links: HashMap<String, Vec<ToolLink>> = HashMap::new();
    let mut sorted: Vec<_> = calls.into_iter().collect();
    sorted.sort_unstable_by_key(|(id, _)| *id);
    for (call_id, (askers, runners)) in sorted {
        for asker in &askers {
            for runner in runners.iter().filter(|r| *r != asker) {
                let link = |event_id: &str, direction: &str| ToolLink {
                    call_id: call_id.to_owned(),
                    event_id: event_id.to_owned(),
                    direction: direction.to_owned(),
                };
                links
                    .entry((*asker).to_owned())
                    .or_default()
                    .push(link(runner, "calls"));
                links
                    .entry((*runner).to_owned())
                    .or_default()
                    .push(link(asker, "called_by"));
            }
        }
    }
    links
}

/// The session's events by span id.
fn events_by_span(events: &[EventRow]) -> HashMap<&str, &str> {
    events
        .iter()
        .filter_map(|e| Some((e.span_id.as_deref()?, e.id.as_str())))
        .collect()
}

/// Fills what a session detail derives: each log record's event, each event's tool links, and
/// (`with_messages`, when the payloads were read) each event's messages.
pub fn enrich_session(detail: &mut SessionDetail, with_messages: bool) {
    let by_span = events_by_span(&detail.events);
    for record in &mut detail.log_records {
        record.event_id = record
            .span_id
            .as_deref()
            .and_then(|s| by_span.get(s))
            .map(|id| (*id).to_owned());
    }
    let refs: Vec<CallRef> = detail
        .events
        .iter()
        .filter_map(|e| {
            Some(CallRef {
                event_id: e.id.clone(),
                kind: e.kind.clone(),
                span_id: e.span_id.clone(),
                call_ids: e.call_ids.clone()?,
            })
        })
        .collect();
    let mut links = tool_links(&refs, &detail.log_records, &by_span);
    let mut records_of: HashMap<&str, Vec<&LogRecord>> = HashMap::new();
    if with_messages {
        for record in &detail.log_records {
            if let Some(event) = record.event_id.as_deref() {
                records_of.entry(event).or_default().push(record);
            }
        }
    }
    let messages: Vec<Option<Messages>> = detail
        .events
        .iter()
        .map(|e| {
            with_messages
                .then(|| messages_of(e, records_of.get(e.id.as_str()).map(Vec::as_slice)))
                .flatten()
        })
        .collect();
    for (event, messages) in detail.events.iter_mut().zip(messages) {
        if !links.is_empty() {
            event.tool_links = links.remove(&event.id).unwrap_or_default();
        }
        event.messages = messages;
    }
}

/// Fills what a session's changes derive ([`crate::store::ReadStore::session_changes`]): each new
/// log record's event, every event's tool links (from the session's `refs`, log records'
/// calls included), and the new events' messages when `session_records` (every log record of
/// the session: a new event's records may have been stored before it) is given. `events` is
/// every event of the session, `is_new[i]` whether `events[i]` was stored after the mark.
pub fn enrich_changes(
    events: &mut [EventRow],
    is_new: &[bool],
    new_records: &mut [LogRecord],
    refs: &[CallRef],
    session_records: Option<&[LogRecord]>,
) {
    let by_span: HashMap<String, String> = events_by_span(events)
        .into_iter()
        .map(|(span, id)| (span.to_owned(), id.to_owned()))
        .collect();
    for record in new_records.iter_mut() {
        record.event_id = record
            .span_id
            .as_deref()
            .and_then(|s| by_span.get(s))
            .cloned();
    }
    let mut links = tool_links(refs, &[], &HashMap::new());
    let mut records_of: HashMap<&str, Vec<&LogRecord>> = HashMap::new();
    for record in session_records.unwrap_or_default() {
        if let Some(event) = record.span_id.as_deref().and_then(|s| by_span.get(s)) {
            records_of.entry(event.as_str()).or_default().push(record);
        }
    }
    for (event, new) in events.iter_mut().zip(is_new) {
        event.tool_links = links.remove(&event.id).unwrap_or_default();
        if *new && session_records.is_some() {
            event.messages =
                messages_of(event, records_of.get(event.id.as_str()).map(Vec::as_slice));
        }
    }
}

/// Fills what one event derives: its messages (from its payloads and `records`, its span's log
/// records) and its tool links (from the session's `refs`, log records' calls included).
pub fn enrich_event(event: &mut EventRow, records: &mut [LogRecord], refs: &[CallRef]) {
    for record in records.iter_mut() {
        record.event_id = Some(event.id.clone());
    }
    let mut links = tool_links(refs, &[], &HashMap::new());
    let own: Vec<&LogRecord> = records.iter().collect();
    event.messages = messages_of(event, Some(&own));
    event.tool_links = links.remove(&event.id).unwrap_or_default();
}

/// An event's messages from its stored payloads and its GenAI log records.
fn messages_of(event: &EventRow, records: Option<&[&LogRecord]>) -> Option<Messages> {
    let parse = |raw: &Option<Box<serde_json::value::RawValue>>| {
        raw.as_ref()
            .and_then(|r| serde_json::from_str::<Value>(r.get()).ok())
    };
    let genai: Vec<GenAiRecord<'_>> = records
        .unwrap_or_default()
        .iter()
        .filter_map(|r| {
            Some(GenAiRecord {
                name: r.event_name.as_deref()?,
                body: &r.body,
                attributes: &r.attributes,
            })
        })
        .collect();
    let is_llm = event.kind == "llms";
    if !is_llm && genai.is_empty() {
        return None;
    }
    let attributes: Value = serde_json::from_str(event.attributes.get()).unwrap_or(Value::Null);
    for_event(
        parse(&event.prompt).as_ref(),
        parse(&event.completion).as_ref(),
        &attributes,
        &genai,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call_ref(event: &str, kind: &str, ids: &str) -> CallRef {
        CallRef {
            event_id: event.into(),
            kind: kind.into(),
            span_id: None,
            call_ids: ids.into(),
        }
    }

    #[test]
    fn a_tool_call_links_its_llm_call_and_its_tool_both_ways() {
        let refs = [
            call_ref("llm1", "llms", "c1 c2"),
            call_ref("tool1", "tools", "c1"),
            call_ref("tool2", "tools", "c2"),
            call_ref("stray", "tools", "c9"),
        ];
        let links = tool_links(&refs, &[], &HashMap::new());
        let llm: Vec<(&str, &str)> = links["llm1"]
            .iter()
            .map(|l| (l.event_id.as_str(), l.direction.as_str()))
            .collect();
        assert_eq!(llm, [("tool1", "calls"), ("tool2", "calls")]);
        assert_eq!(links["tool1"][0].event_id, "llm1");
        assert_eq!(links["tool1"][0].direction, "called_by");
        assert!(!links.contains_key("stray"));
    }

    #[test]
    fn a_choice_log_record_links_its_span_event() {
        let record = LogRecord {
            span_id: Some("aa".into()),
            call_ids: Some("c1".into()),
            ..LogRecord::default()
        };
        let by_span = [("aa", "llm1")].into_iter().collect();
        let links = tool_links(&[call_ref("tool1", "tools", "c1")], &[record], &by_span);
        assert_eq!(links["llm1"][0].event_id, "tool1");
        assert_eq!(links["tool1"][0].direction, "called_by");
    }
}
