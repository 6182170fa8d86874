//! The behaviour of every [`Store`] engine's payload dictionary ([`super::payload`]): none
//! before enough payloads are stored, then one, trained once; payloads packed with it are
//! smaller and read back as written, after a restart too. Each engine's tests run this.

use serde_json::json;

use super::payload::{PackedPayloads, TRAIN_AFTER};
use super::read_checks::store_session;
use super::{EventRecord, SessionRecord, Store, Write};

/// A chat event of `session`, its prompt worded with `tag` (so that each engine's test trains
/// a dictionary of its own).
fn chat(tag: &str, i: usize, session: &str) -> EventRecord {
    EventRecord {
        id: format!("{session}-{i}"),
        session_id: session.into(),
        kind: "llms".into(),
        start_time: "2026-11-20T10:00:00.000000+00:00".into(),
        prompt: Some(json!([
            {"role": "system", "content": format!("You plan trips for {tag}. Compare three options, refundable first.")},
            {"role": "user", "content": format!("a weekend in city {i} for {} guests", i % 7)}
        ])),
        attributes: json!({"gen_ai.provider.name": "openai", "n": i}),
        ..EventRecord::default()
    }
}

/// Trains `store`'s dictionary as the server does (checking that it is not trained too
/// early, nor twice), stores 49 events of session `b` packed with it, and returns the
/// project; [`dictionary_payloads_read_back`] reads them.
/// Stores session `session` of `project` with `n` chat events, as payloads to train on.
pub fn store_chats(store: &dyn Store, project: &str, session: &str, n: usize, tag: &str) {
    let record = SessionRecord {
        id: session.into(),
        ..SessionRecord::default()
    };
    store_session(
        store,
        project,
        record,
        (0..n).map(|i| chat(tag, i, session)).collect(),
    );
}

pub fn dictionary_is_trained_once(store: &dyn Store, tag: &str) -> String {
    let project = store.create_project("p").unwrap();
    store_chats(store, &project, "a", TRAIN_AFTER - 1, tag);
    assert!(
        !store.train_payload_dictionary().unwrap(),
        "too few payloads yet"
    );
    assert_eq!(store.payload_dictionary(), None);
    store_chats(store, &project, "b", 1, tag);
    assert!(store.train_payload_dictionary().unwrap());
    let id = store.payload_dictionary().expect("a dictionary");
    assert!(!store.train_payload_dictionary().unwrap(), "only once");

    let mut write = Write::CreateEvents {
        project_id: project.clone(),
        session_id: "b".into(),
        events: (1..50).map(|i| chat(tag, i, "b")).collect(),
    };
    write.pack(Some(id));
    let Write::CreateEvents { events, .. } = &write else {
        unreachable!()
    };
    let with_dictionary = events[0].packed.clone().unwrap();
    let event = chat(tag, 1, "b");
    let without = PackedPayloads::pack(
        event.prompt.as_ref(),
        None,
        None,
        None,
        &event.attributes,
        None,
    );
    assert!(
        with_dictionary.len() < without.len(),
        "{} vs {}",
        with_dictionary.len(),
        without.len()
    );
    assert!(store.commit(&[write]).unwrap()[0].is_ok());
    project
}

/// Reads back, through session `b`'s detail and one event, what
/// [`dictionary_is_trained_once`] stored.
pub fn dictionary_payloads_read_back(store: &dyn Store, project: &str, tag: &str) {
    let detail = store.session_detail(project, "b").unwrap().unwrap();
    assert_eq!(detail.events.len(), 50);
    for event in &detail.events {
        let n: usize = event.id.trim_start_matches("b-").parse().unwrap();
        assert_eq!(
            event.prompt.as_ref().unwrap().get(),
            chat(tag, n, "b").prompt.unwrap().to_string()
        );
    }
    let one = store.event_detail(project, "b", "b-7").unwrap().unwrap();
    assert_eq!(
        one.prompt.unwrap().get(),
        chat(tag, 7, "b").prompt.unwrap().to_string()
    );
}
