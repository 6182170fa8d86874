//! Decoding SQLite rows: through the engine-independent decoders of `crate::store::decode`
//! (session summaries, events, log records, metric points), and list sort keys.

use rusqlite::types::{Type, Value as SqlValue};
use rusqlite::Row;

use super::schema::session_duration_sql;
use crate::store::decode::{self, Columns};
use crate::store::payload::UnpackError;
use crate::store::{EventRow, SessionSummary, SortValue, StoreError};

pub(super) use crate::store::decode::SORT_KEY_INDEX;

/// A SQLite row, read by the engine-independent decoders.
impl Columns for Row<'_> {
    type Error = rusqlite::Error;

    fn opt_str(&self, index: usize) -> rusqlite::Result<Option<&str>> {
        Ok(self.get_ref(index)?.as_str_or_null()?)
    }

    fn str(&self, index: usize) -> rusqlite::Result<&str> {
        Ok(self.get_ref(index)?.as_str()?)
    }

    fn opt_int(&self, index: usize) -> rusqlite::Result<Option<i64>> {
        self.get(index)
    }

    fn int(&self, index: usize) -> rusqlite::Result<i64> {
        self.get(index)
    }

    fn opt_real(&self, index: usize) -> rusqlite::Result<Option<f64>> {
        self.get(index)
    }

    fn real(&self, index: usize) -> rusqlite::Result<f64> {
        self.get(index)
    }

    fn opt_bool(&self, index: usize) -> rusqlite::Result<Option<bool>> {
        self.get(index)
    }

    fn opt_blob(&self, index: usize) -> rusqlite::Result<Option<&[u8]>> {
        Ok(self.get_ref(index)?.as_blob_or_null()?)
    }

    fn unpack_failed(&self, index: usize, error: UnpackError) -> rusqlite::Error {
        rusqlite::Error::FromSqlConversionFailure(index, Type::Blob, Box::new(error))
    }
}

/// The columns [`summary_from_row`] reads, over `sessions s`; `host_env` and `video` are at
/// indexes 11 and 12.
pub(super) fn summary_columns() -> String {
    decode::summary_columns(&session_duration_sql())
}

/// A session list row, read from [`summary_columns`].
pub(super) fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<SessionSummary> {
    decode::summary_from(row)
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

/// An event, read from the columns of [`crate::store::columns::event_select_list`] (with or
/// without payloads).
pub(super) fn event_from_row(row: &Row<'_>) -> rusqlite::Result<EventRow> {
    decode::event_from(row)
}

#[cfg(test)]
mod tests {
    use rusqlite::params;

    use crate::store::sqlite::test_support::{store_session, temp_store};
    use crate::store::{AdminStore, ReadStore, SessionRecord};

    #[test]
    fn events_read_back_as_raw_json_serialise_as_the_parsed_values_did() {
        let (store, dir) = temp_store();
        let project = crate::store::read_checks::events_read_back_as_written(&store);
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
        store
            .write_conn()
            .execute_batch(&format!(
                "{}
                 INSERT INTO store_notes (key, value) VALUES ('legacy_payloads', 'to pack');",
                crate::store::read_checks::unpacked_rows_sql(&project)
            ))
            .unwrap();
        let events = crate::store::read_checks::unpacked_rows_read_back(&store, &project);
        // opening the database again packs them, and they read back the same
        let before = serde_json::to_string(&events).unwrap();
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
