//! Decoding rows: session summaries, events (their payloads kept as raw JSON text) and list
//! sort keys.

use rusqlite::types::{Type, Value as SqlValue};
use rusqlite::Row;
use serde_json::value::RawValue;

use super::schema::session_duration_sql;
use crate::store::json::{raw_attributes, raw_payload};
use crate::store::payload::unpack;
use crate::store::{EventRow, SessionSummary, SortValue, StoreError};

/// Where a list query has its sort key: right after the [`summary_columns`].
pub(super) const SORT_KEY_INDEX: usize = 15;

/// The columns [`summary_from_row`] reads, over `sessions s`; `host_env` and `video` are at
/// indexes 11 and 12.
pub(super) fn summary_columns() -> String {
    format!(
        "s.id, s.name, s.start_time, s.end_time, s.end_state, s.end_state_reason,
         s.tags, s.event_count, s.input_tokens, s.output_tokens, s.cost, s.host_env, s.video,
         s.error_count, {}",
        session_duration_sql()
    )
}

/// A session list row, read from [`summary_columns`].
pub(super) fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<SessionSummary> {
    let tags: Option<String> = row.get(6)?;
    let end_time: Option<String> = row.get(3)?;
    let end_state: Option<String> = row.get(4)?;
    let state = crate::store::session_state(end_time.as_deref(), end_state.as_deref()).to_owned();
    Ok(SessionSummary {
        id: row.get(0)?,
        name: row.get(1)?,
        start_time: row.get(2)?,
        end_time,
        end_state,
        end_state_reason: row.get(5)?,
        tags: tags
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default(),
        event_count: row.get(7)?,
        input_tokens: row.get(8)?,
        output_tokens: row.get(9)?,
        cost: row.get(10)?,
        error_count: row.get(13)?,
        has_errors: row.get::<_, i64>(13)? > 0,
        duration_ms: row.get(14)?,
        state,
    })
}

/// The sort key of a list row, at `index`, as a pagination cursor carries it.
pub(super) fn sort_value_from_row(row: &Row<'_>, index: usize) -> Result<SortValue, StoreError> {
    Ok(match row.get::<_, SqlValue>(index)? {
        SqlValue::Text(t) => SortValue::Text(t),
        SqlValue::Integer(i) => SortValue::Int(i),
        SqlValue::Real(r) => SortValue::Real(r),
        other => {
            return Err(StoreError::Corrupt(format!(
                "unexpected sort key value {other:?}"
            )))
        }
    })
}

/// The stored payload at `index`, unparsed (see [`raw_payload`]); `None` when `NULL`.
fn payload_at(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Box<RawValue>>> {
    Ok(row.get_ref(index)?.as_str_or_null()?.map(raw_payload))
}

/// The stored attributes at `index`, unparsed (see [`raw_attributes`]).
fn attributes_at(row: &Row<'_>, index: usize) -> rusqlite::Result<Box<RawValue>> {
    Ok(raw_attributes(row.get_ref(index)?.as_str()?))
}

/// An event, read from the columns of [`crate::store::columns::event_select_list`] (with or
/// without payloads).
pub(super) fn event_from_row(row: &Row<'_>) -> rusqlite::Result<EventRow> {
    let mut event = EventRow {
        id: row.get(0)?,
        session_id: row.get(1)?,
        kind: row.get(2)?,
        name: row.get(3)?,
        parent_id: row.get(4)?,
        trace_id: row.get(5)?,
        span_id: row.get(6)?,
        start_time: row.get(7)?,
        end_time: row.get(8)?,
        status: row.get(9)?,
        status_message: row.get(10)?,
        agent_id: row.get(11)?,
        model: row.get(12)?,
        provider: row.get(13)?,
        prompt: payload_at(row, 14)?,
        completion: payload_at(row, 15)?,
        params: payload_at(row, 16)?,
        returns: payload_at(row, 17)?,
        input_tokens: row.get(18)?,
        output_tokens: row.get(19)?,
        cached_tokens: row.get(20)?,
        reasoning_tokens: row.get(21)?,
        cost: row.get(22)?,
        attributes: attributes_at(row, 23)?,
        packed: None,
        call_ids: row.get(25)?,
        messages: None,
        tool_links: Vec::new(),
        failed: false,
    };
    event.failed = crate::store::is_failed(&event.kind, event.status.as_deref());
    if let Some(packed) = row.get_ref(24)?.as_blob_or_null()? {
        let payloads = unpack(packed)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(24, Type::Blob, Box::new(e)))?;
        event.prompt = payloads.prompt;
        event.completion = payloads.completion;
        event.params = payloads.params;
        event.returns = payloads.returns;
        event.attributes = payloads.attributes;
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use rusqlite::params;
    use serde_json::Value;

    use crate::store::sqlite::test_support::{store_session, temp_store};
    use crate::store::{EventRecord, EventRow, SessionRecord, Store};

    #[test]
    fn events_read_back_as_raw_json_serialise_as_the_parsed_values_did() {
        let (store, dir) = temp_store();
        let project = store.create_project("p").unwrap();
        let payloads = serde_json::json!({
            "nested": {"z": [1, -2, 3.5, 1e300, -0.0, 0.1, 12345678901234567890u64, -9007199254740993i64],
                       "a": {"deep": [null, true, false, {}]}},
            "text": "quotes \" backslash \\ newline \n tab \t control \u{1} é 日本 🎉 </script>",
            "empty": "",
        });
        let mut events = Vec::new();
        for (i, value) in [
            payloads.clone(),
            serde_json::json!("a string"),
            serde_json::json!(42),
        ]
        .into_iter()
        .enumerate()
        {
            events.push(EventRecord {
                id: format!("e{i}"),
                session_id: "s1".into(),
                kind: "llms".into(),
                name: Some(format!("call {i}")),
                parent_id: (i > 0).then(|| "e0".into()),
                start_time: format!("2026-11-20T10:00:0{i}.000000+00:00"),
                end_time: Some(format!("2026-11-20T10:00:0{i}.500000+00:00")),
                model: Some("gpt-4o".into()),
                prompt: Some(value.clone()),
                completion: (i != 1).then(|| value.clone()),
                params: Some(serde_json::json!({"temperature": 0.7})),
                returns: (i == 2).then_some(Value::Null),
                input_tokens: Some(10),
                cost: Some(0.000_123_4),
                attributes: payloads.clone(),
                ..EventRecord::default()
            });
        }
        let s1 = SessionRecord {
            id: "s1".into(),
            ..SessionRecord::default()
        };
        store_session(&store, &project, s1, events.clone());
        let detail = store.session_detail(&project, "s1").unwrap().unwrap();
        assert_eq!(detail.events.len(), 3);
        for (row, written) in detail.events.iter().zip(&events) {
            // stored packed and compressed, read back as the values written (null ones absent)
            assert_eq!(
                serde_json::to_string(row).unwrap(),
                serde_json::to_string(&EventRow::from(written)).unwrap(),
                "{}",
                row.id
            );
            let one = store
                .event_detail(&project, "s1", &row.id)
                .unwrap()
                .unwrap();
            assert_eq!(
                serde_json::to_string(&one).unwrap(),
                serde_json::to_string(row).unwrap()
            );
        }
        let conn = store.write_conn();
        let (texts, packed): (i64, i64) = conn
            .query_row(
                "SELECT count(prompt), count(packed) FROM events WHERE project_id = ?1",
                params![project],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!((texts, packed), (0, 3), "payloads are stored packed only");
        drop(conn);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn rows_stored_before_packing_read_back_from_their_text_columns() {
        let (store, dir) = temp_store();
        let project = store.create_project("p").unwrap();
        let s1 = SessionRecord {
            id: "s1".into(),
            ..SessionRecord::default()
        };
        store_session(&store, &project, s1, Vec::new());
        // as a database of version 5 or older held them, with the note its migration leaves
        // (text that is not JSON was never written by this server, but reads back all the same)
        store
            .write_conn()
            .execute_batch(&format!(
                "INSERT INTO events (project_id, id, session_id, kind, start_time, prompt,
                     completion, attributes)
                 VALUES ('{project}', 'old', 's1', 'llms', '2026-11-20T10:00:00.000000+00:00',
                     '[{{\"role\":\"user\"}}]', 'not json', '{{\"a\":1}}'),
                        ('{project}', 'broken', 's1', 'llms', '2026-11-20T10:00:01.000000+00:00',
                     NULL, NULL, '{{broken');
                 INSERT INTO store_notes (key, value) VALUES ('legacy_payloads', 'to pack');"
            ))
            .unwrap();
        let detail = store.session_detail(&project, "s1").unwrap().unwrap();
        let old = &detail.events[0];
        assert_eq!(old.prompt.as_ref().unwrap().get(), r#"[{"role":"user"}]"#);
        assert_eq!(old.completion.as_ref().unwrap().get(), r#""not json""#);
        assert_eq!(old.attributes.get(), r#"{"a":1}"#);
        assert_eq!(detail.events[1].attributes.get(), "null");
        // opening the database again packs them, and they read back the same
        let before = serde_json::to_string(&detail.events).unwrap();
        drop(store);
        let store = crate::store::sqlite::SqliteStore::open(&dir.join("agentops.db")).unwrap();
        let packed: i64 = store
            .write_conn()
            .query_row(
                "SELECT count(*) FROM events WHERE packed IS NOT NULL AND prompt IS NULL",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(packed, 2);
        let detail = store.session_detail(&project, "s1").unwrap().unwrap();
        let after = serde_json::to_string(&detail.events).unwrap();
        // text that is not JSON stays a string, broken attributes stay null
        assert_eq!(after, before);
        std::fs::remove_dir_all(dir).ok();
    }
}
