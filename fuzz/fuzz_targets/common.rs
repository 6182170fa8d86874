//! Checks shared by the targets: what every mapped row must satisfy, whatever the input.
#![allow(dead_code)] // each target uses part of it

use agentops_server::mapping::{self, MAX_COST, MAX_TOKENS};
use agentops_server::store::{EventRecord, SessionRecord};

/// The limits of the README's "Limits" table hold for a row that mapping accepted.
pub fn check_event(event: &EventRecord) {
    assert!(!event.id.is_empty(), "an event without an id: {event:?}");
    mapping::check_session_id(&event.session_id, "session")
        .unwrap_or_else(|e| panic!("mapped an event of an invalid session: {e}"));
    let start = agentops_core::timestamp::parse(&event.start_time)
        .unwrap_or_else(|e| panic!("start_time {:?} does not parse: {e}", event.start_time));
    assert_eq!(
        agentops_core::timestamp::format(start),
        event.start_time,
        "start_time not in the stored form"
    );
    if let Some(end) = &event.end_time {
        assert!(
            agentops_core::timestamp::parse(end).is_ok(),
            "end_time {end:?} does not parse"
        );
        assert!(*end >= event.start_time, "ends before it starts: {event:?}");
    }
    for (name, count) in [
        ("input_tokens", event.input_tokens),
        ("output_tokens", event.output_tokens),
        ("cached_tokens", event.cached_tokens),
        ("reasoning_tokens", event.reasoning_tokens),
    ] {
        if let Some(n) = count {
            assert!((0..=MAX_TOKENS).contains(&n), "{name} = {n} out of range");
        }
    }
    if let Some(cost) = event.cost {
        assert!(
            cost.is_finite() && (0.0..=MAX_COST).contains(&cost),
            "cost = {cost} out of range"
        );
    }
    assert!(event.attributes.is_object(), "attributes not an object");
    // what the store will serialise must serialise
    serde_json::to_string(event).unwrap_or_else(|e| panic!("event does not serialise: {e}"));
}

/// A session row that mapping accepted has a valid id and tags.
pub fn check_session(session: &SessionRecord) {
    mapping::check_session_id(&session.id, "session")
        .unwrap_or_else(|e| panic!("mapped an invalid session id: {e}"));
    if let Some(tags) = &session.tags {
        mapping::check_tags(tags, "tags").unwrap_or_else(|e| panic!("mapped invalid tags: {e}"));
    }
    if let (Some(start), Some(end)) = (&session.start_time, &session.end_time) {
        assert!(agentops_core::timestamp::parse(start).is_ok(), "{start:?}");
        assert!(agentops_core::timestamp::parse(end).is_ok(), "{end:?}");
    }
}

/// Maps decoded spans as `POST /v1/traces` does and checks every row.
pub fn map_and_check(spans: &[agentops_server::mapping::span::Span]) {
    let prices = agentops_core::pricing::PriceTable::builtin();
    let (mapped, rejected) = agentops_server::mapping::span::map_each(spans, &prices);
    assert_eq!(
        mapped.len() + rejected.len(),
        spans.len(),
        "a span neither mapped nor rejected"
    );
    let (events, sessions) = agentops_server::mapping::span::collect(mapped);
    for event in &events {
        check_event(event);
        assert!(
            sessions.iter().any(|s| s.id == event.session_id),
            "an event's session is missing from the batch"
        );
    }
    for session in &sessions {
        check_session(session);
    }
}
