//! The payload dictionaries of a database (see [`crate::store::payload`]): stored in
//! `payload_dictionaries`, made known to the process when the database opens, and trained once
//! enough payloads are stored.

use agentops_core::timestamp::now;
use rusqlite::{params, Connection, OptionalExtension};

use crate::store::payload::{
    payload_text, register_dictionary, train_dictionary, DictionaryId, TRAINING_SAMPLES as SAMPLES,
    TRAIN_AFTER,
};
use crate::store::StoreError;

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
    use crate::store::dictionary_checks::{
        dictionary_is_trained_once, dictionary_payloads_read_back,
    };
    use crate::store::sqlite::test_support::temp_store;
    use crate::store::sqlite::SqliteStore;
    use crate::store::WriteStore;

    #[test]
    fn a_dictionary_is_trained_once_enough_payloads_are_stored_and_survives_a_restart() {
        let (store, dir) = temp_store();
        let project = dictionary_is_trained_once(&store, "sqlite");
        let id = store.payload_dictionary();
        drop(store);

        let store = SqliteStore::open(&dir.join("agentops.db")).unwrap();
        assert_eq!(store.payload_dictionary(), id);
        dictionary_payloads_read_back(&store, &project, "sqlite");
        drop(store);
        std::fs::remove_dir_all(dir).ok();
    }
}
