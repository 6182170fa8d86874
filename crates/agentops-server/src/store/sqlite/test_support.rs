//! Helpers of the SQLite store's tests.

use super::SqliteStore;
use crate::store::{EventRecord, ReadStore, SessionQuery, SessionRecord};

/// A store in a new temporary directory, and the directory (to remove at the end).
pub(super) fn temp_store() -> (SqliteStore, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("agentops-store-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    (SqliteStore::open(&dir.join("agentops.db")).unwrap(), dir)
}

/// Stores `session` and its `events` in one commit, checking both writes succeeded.
pub(super) fn store_session(
    store: &SqliteStore,
    project: &str,
    session: SessionRecord,
    events: Vec<EventRecord>,
) {
    crate::store::read_checks::store_session(store, project, session, events);
}

/// Stores session `s1`, named, tagged `prod` and ended, with one failed LLM event (model
/// `gpt-4o`, agent `a1`, name `summarise`).
pub(super) fn seed_one(store: &SqliteStore, project: &str) {
    let session = SessionRecord {
        id: "s1".into(),
        name: Some("nightly run".into()),
        start_time: Some("2026-11-20T10:00:00.000000+00:00".into()),
        end_time: Some("2026-11-20T10:00:02.500000+00:00".into()),
        tags: Some(vec!["prod".into()]),
        ..SessionRecord::default()
    };
    let event = EventRecord {
        id: "e1".into(),
        session_id: "s1".into(),
        kind: "llms".into(),
        name: Some("summarise".into()),
        start_time: "2026-11-20T10:00:01.000000+00:00".into(),
        status: Some("error".into()),
        model: Some("gpt-4o".into()),
        agent_id: Some("a1".into()),
        attributes: serde_json::json!({}),
        ..EventRecord::default()
    };
    store_session(store, project, session, vec![event]);
}

/// The ids of the sessions `query` finds.
pub(super) fn found(store: &SqliteStore, project: &str, query: SessionQuery) -> Vec<String> {
    store
        .query_sessions(project, &query)
        .unwrap()
        .sessions
        .into_iter()
        .map(|s| s.id)
        .collect()
}
