//! The payload dictionaries of a database (see [`crate::store::payload`]): stored in
//! `payload_dictionaries`, made known to the process when the database opens, and trained once
//! enough payloads are stored.

use agentops_core::timestamp::now;
use rusqlite::{params, Connection, OptionalExtension};

use crate::store::payload::{payload_text, register_dictionary, train_dictionary, DictionaryId};
use crate::store::StoreError;

/// Payloads stored before a dictionary is trained.
pub(super) const TRAIN_AFTER: usize = 5_000;
/// The most recent payloads it is trained on.
const SAMPLES: usize = 2_000;

/// Registers every stored dictionary; the newest, which new payloads are packed with.
pub(super) fn load(conn: &Connection) -> Result<Option<DictionaryId>, StoreError> {
    let mut select = conn.prepare("SELECT bytes FROM payload_dictionaries ORDER BY id")?;
    let mut newest = None;
    for bytes in select.query_map([], |row| row.get::<_, Vec<u8>>(0))? {
        newest = Some(register_dictionary(&bytes?));
    }
    Ok(newest)
}

/// A dictionary trained on the newest payloads, once [`TRAIN_AFTER`] are stored; `None` before.
pub(super) fn train(conn: &Connection) -> Result<Option<Vec<u8>>, StoreError> {
    let stored: i64 = conn.query_row(
        "SELECT count(*) FROM (SELECT 1 FROM events WHERE packed IS NOT NULL LIMIT ?1)",
        [TRAIN_AFTER as i64],
        |row| row.get(0),
    )?;
    if (stored as usize) < TRAIN_AFTER {
        return Ok(None);
    }
    let mut select = conn.prepare(
        "SELECT packed FROM events WHERE packed IS NOT NULL ORDER BY rowid DESC LIMIT ?1",
    )?;
    let mut samples = Vec::with_capacity(SAMPLES);
    for packed in select.query_map([SAMPLES as i64], |row| row.get::<_, Vec<u8>>(0))? {
        // A payload that does not unpack (damaged, or of a dictionary gone) is no sample.
        if let Ok(text) = payload_text(&packed?) {
            samples.push(text);
        }
    }
    match train_dictionary(&samples) {
        Ok(bytes) => Ok(Some(bytes)),
        // Too few or too uniform samples: try again later.
        Err(e) => {
            tracing::debug!(error = %e, "no payload dictionary trained");
            Ok(None)
        }
    }
}

/// Stores the dictionary `bytes` (once) and registers it; its id.
pub(super) fn store(conn: &Connection, bytes: &[u8]) -> Result<DictionaryId, StoreError> {
    let id = register_dictionary(bytes);
    let known: Option<i64> = conn
        .query_row(
            "SELECT id FROM payload_dictionaries WHERE bytes = ?1",
            [bytes],
            |row| row.get(0),
        )
        .optional()?;
    if known.is_none() {
        conn.execute(
            "INSERT INTO payload_dictionaries (bytes, created_at) VALUES (?1, ?2)",
            params![bytes, now()],
        )?;
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::TRAIN_AFTER;
    use crate::store::sqlite::test_support::{store_session, temp_store};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{EventRecord, SessionRecord, Store, Write};

    fn chat(i: usize, session: &str) -> EventRecord {
        EventRecord {
            id: format!("{session}-{i}"),
            session_id: session.into(),
            kind: "llms".into(),
            start_time: "2026-11-20T10:00:00.000000+00:00".into(),
            prompt: Some(json!([
                {"role": "system", "content": "You plan trips. Compare three options, refundable first."},
                {"role": "user", "content": format!("a weekend in city {i} for {} guests", i % 7)}
            ])),
            attributes: json!({"gen_ai.provider.name": "openai", "n": i}),
            ..EventRecord::default()
        }
    }

    #[test]
    fn a_dictionary_is_trained_once_enough_payloads_are_stored_and_survives_a_restart() {
        let (store, dir) = temp_store();
        let project = store.create_project("p").unwrap();
        let session = |id: &str| SessionRecord {
            id: id.into(),
            ..SessionRecord::default()
        };
        store_session(
            &store,
            &project,
            session("a"),
            (0..TRAIN_AFTER - 1).map(|i| chat(i, "a")).collect(),
        );
        assert!(
            !store.train_payload_dictionary().unwrap(),
            "too few payloads yet"
        );
        store_session(&store, &project, session("b"), vec![chat(0, "b")]);
        assert!(store.train_payload_dictionary().unwrap());
        let id = store.payload_dictionary().expect("a dictionary");
        assert!(!store.train_payload_dictionary().unwrap(), "only once");

        let mut write = Write::CreateEvents {
            project_id: project.clone(),
            session_id: "b".into(),
            events: (1..50).map(|i| chat(i, "b")).collect(),
        };
        write.pack(Some(id));
        let Write::CreateEvents { events, .. } = &write else {
            unreachable!()
        };
        let with_dictionary = events[0].packed.clone().unwrap();
        let without = crate::store::payload::PackedPayloads::pack(
            chat(1, "b").prompt.as_ref(),
            None,
            None,
            None,
            &chat(1, "b").attributes,
            None,
        );
        assert!(
            with_dictionary.len() < without.len(),
            "{} vs {}",
            with_dictionary.len(),
            without.len()
        );
        assert!(store.commit(&[write]).unwrap()[0].is_ok());
        drop(store);

        let store = SqliteStore::open(&dir.join("agentops.db")).unwrap();
        assert_eq!(store.payload_dictionary(), Some(id));
        let detail = store.session_detail(&project, "b").unwrap().unwrap();
        assert_eq!(detail.events.len(), 50);
        for event in &detail.events {
            let n: usize = event.id.trim_start_matches("b-").parse().unwrap();
            assert_eq!(
                event.prompt.as_ref().unwrap().get(),
                chat(n, "b").prompt.unwrap().to_string()
            );
        }
        drop(store);
        std::fs::remove_dir_all(dir).ok();
    }
}
