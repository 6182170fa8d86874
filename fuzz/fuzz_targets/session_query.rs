//! `GET /api/v1/sessions?<query>`: any bytes are taken as the query string, split into pairs
//! as axum's `Query` extractor does for the handler, and parsed by `parse_session_query`.
//! An accepted query is then run on a SQLite store holding the captured 0.4 export, as the
//! handler does. Refusals are fine; a panic, an accepted query outside the documented bounds, a
//! store error on an accepted query, or a cursor that does not read back, is a bug.
#![no_main]

use agentops_server::api::params::{MAX_FILTER_BYTES, MAX_TAG_FILTERS};
use agentops_server::api::{decode_cursor, encode_cursor, parse_session_query, MAX_LIMIT};
use std::sync::OnceLock;

use agentops_server::store::sqlite::SqliteStore;
use agentops_server::store::{AdminStore, ReadStore, SessionCursor, Write, WriteStore};
use axum::extract::Query;
use axum::http::Uri;
use libfuzzer_sys::fuzz_target;

/// A store in a fresh temporary directory with one project holding the spans of the captured
/// 0.4.21 export; its project id.
fn store() -> &'static (SqliteStore, String) {
    static STORE: OnceLock<(SqliteStore, String)> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("agentops-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let store = SqliteStore::open(&dir.join("agentops.db")).expect("open the store");
        let project = store.create_project("fuzz").expect("create a project");
        let export = include_bytes!("../seeds/otlp_json/v04_export_base64.json");
        let spans = agentops_server::ingest::otlp::decode_json(export).expect("the seed decodes");
        let prices = agentops_core::pricing::PriceTable::builtin();
        let (spans, sessions, rejected) =
            agentops_server::mapping::span::map_spans(&spans, &prices);
        assert!(rejected.is_empty(), "{rejected:?}");
        let written = store
            .commit(&[Write::IngestSpans {
                project_id: project.clone(),
                sessions,
                spans,
            }])
            .expect("commit the seed");
        assert!(written.iter().all(Result::is_ok), "{written:?}");
        (store, project)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(uri) = format!("/api/v1/sessions?{query}").parse::<Uri>() else {
        return;
    };
    let Ok(Query(pairs)) = Query::<Vec<(String, String)>>::try_from_uri(&uri) else {
        return;
    };
    let Ok((parsed, sort)) = parse_session_query(&pairs) else {
        return;
    };
    assert!(
        (1..=MAX_LIMIT).contains(&parsed.limit),
        "limit {}",
        parsed.limit
    );
    assert!(
        parsed.tags.len() <= MAX_TAG_FILTERS,
        "{} tags",
        parsed.tags.len()
    );
    assert!(parsed.tags.iter().all(|t| !t.is_empty()), "an empty tag");
    for text in [&parsed.text, &parsed.agent, &parsed.model]
        .into_iter()
        .flatten()
    {
        assert!(
            text.len() <= MAX_FILTER_BYTES && !text.is_empty(),
            "{text:?}"
        );
    }
    if let (Some(from), Some(to)) = (&parsed.from, &parsed.to) {
        assert!(from < to, "from {from} not before to {to}");
    }
    assert_eq!((parsed.sort, parsed.descending), sort);
    let (store, project) = store();
    let page = store
        .query_sessions(project, &parsed)
        .unwrap_or_else(|e| panic!("an accepted query fails in the store: {e}"));
    assert!(page.sessions.len() <= parsed.limit);
    if let Some(next) = &page.next {
        let text = encode_cursor(sort, next);
        assert_eq!(decode_cursor(&text, sort).ok().as_ref(), Some(next));
    }
    // A cursor the server hands out for this order reads back as the same cursor.
    if let Some(after) = &parsed.after {
        let text = encode_cursor(sort, after);
        let back: SessionCursor = decode_cursor(&text, sort)
            .unwrap_or_else(|e| panic!("a cursor of ours does not read back: {e}"));
        assert_eq!(&back, after);
    }
});
