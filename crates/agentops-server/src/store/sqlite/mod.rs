//! The embedded SQLite store (bundled SQLite, WAL mode): the zero-setup default.
//!
//! One connection writes (used by the writer thread, see [`crate::writer`]); a few others read
//! concurrently, which WAL allows. This module opens the database and hands connections to the
//! modules that do the work, by concern:
//!
//! - `schema`: the tables, the schema version and the migrations;
//! - `write`: the group commit and each kind of write;
//! - `list`: the session list and its SQL builder;
//! - `read`: a session's detail, one event, the agents and the statistics;
//! - `expire`: retention, deleting old sessions in bounded writes;
//! - `admin`: projects (and their retention) and API keys;
//! - `held`: spans sent without credentials, held until their trace is claimed;
//! - `rows`: decoding rows into the model's records;
//! - [`backup`]: an online copy of the database while it is being written.
//!
//! What does not depend on SQLite (the aggregates a write adds, the event columns, how JSON
//! payloads are stored) lives in the parent module, for every engine.

mod admin;
pub mod backup;
mod dictionary;
mod expire;
mod held;
mod list;
mod logs;
mod metrics;
mod read;
mod rows;
mod schema;
#[cfg(test)]
mod test_support;
mod write;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags};

use crate::store::payload::DictionaryId;

use super::{
    AdminError, AdminStore, AgentSummary, ApiKeyInfo, ClaimedSpan, EventRow, HeldSpan,
    HeldSpanStore, Outcome, ProjectInfo, QueryError, RawStats, ReadStore, Retention, SessionDetail,
    SessionPage, SessionQuery, SessionSummary, Store, StoreError, Write, WriteError, WriteStore,
};

/// How many read-only connections serve reads.
const READERS: usize = 2;

/// The SQLite store: one file `agentops.db` in the data directory.
pub struct SqliteStore {
    /// The one connection that writes (a few admin reads use it too).
    writer: Mutex<Connection>,
    /// Read-only connections, [`READERS`] of them.
    readers: Vec<Mutex<Connection>>,
    /// The dictionary new payloads are packed with (the newest stored).
    dictionary: std::sync::RwLock<Option<DictionaryId>>,
    /// The database file (its WAL beside it, `-wal` appended).
    path: std::path::PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `path`, in WAL mode with full fsync on commit.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let writer = Connection::open(path)?;
        // Prompts and completions are private: the database and its WAL and shared-memory
        // files (which SQLite creates with the database file's mode) are the owner's alone.
        restrict_to_owner(path)?;
        writer.busy_timeout(std::time::Duration::from_secs(10))?;
        let mode: String = writer.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!(
                "could not enable WAL mode (got {mode})"
            )));
        }
        // A page cache large enough that a big transaction does not spill to the WAL and read its
        // own pages back (64 MiB, allocated as used).
        writer.execute_batch(
            "PRAGMA synchronous=FULL; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-65536;",
        )?;
        schema::migrate(&writer)?;
        let dictionary = dictionary::load(&writer)?;
        let packed = schema::pack_legacy_events(&writer)?;
        if packed > 0 {
            tracing::info!(packed, "payloads of older events packed");
        }
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            reader.busy_timeout(std::time::Duration::from_secs(10))?;
            readers.push(Mutex::new(reader));
        }
        Ok(Self {
            writer: Mutex::new(writer),
            readers,
            dictionary: std::sync::RwLock::new(dictionary),
            path: path.to_path_buf(),
        })
    }

    /// The writing connection, once it is free.
    fn write_conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-applied transaction (it rolls back on
        // drop), so a poisoned lock is safe to reuse.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on a free reading connection, or waits for the first one.
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        for reader in &self.readers {
            if let Ok(conn) = reader.try_lock() {
                return f(&conn);
            }
        }
        let conn = self.readers[0].lock().unwrap_or_else(|p| p.into_inner());
        f(&conn)
    }
}

/// Makes the database file, and its `-wal` and `-shm` files when they exist, readable and
/// writable by their owner only (Unix).
pub(crate) fn restrict_to_owner(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut files = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            files.push(name.into());
        }
        for file in files {
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    return Err(StoreError::Corrupt(format!(
                        "cannot restrict {} to its owner: {err}",
                        file.display()
                    )))
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl AdminStore for SqliteStore {
    fn create_project(&self, name: &str) -> Result<String, StoreError> {
        admin::create_project(&self.write_conn(), name)
    }

    fn default_project(&self) -> Result<Option<String>, StoreError> {
        admin::default_project(&self.write_conn())
    }

    fn add_api_key(&self, project_id: &str, key_hash: &str) -> Result<bool, AdminError> {
        admin::add_api_key(&self.write_conn(), project_id, key_hash)
    }

    fn api_key_count(&self) -> Result<u64, StoreError> {
        admin::api_key_count(&self.write_conn())
    }

    fn project_for_key(&self, key_hash: &str) -> Result<Option<String>, StoreError> {
        self.read(|c| admin::project_for_key(c, key_hash))
    }

    fn list_api_keys(&self) -> Result<Vec<ApiKeyInfo>, StoreError> {
        self.read(admin::list_api_keys)
    }

    fn revoke_api_key(&self, id: &str) -> Result<String, AdminError> {
        admin::revoke_api_key(&self.write_conn(), id)
    }

    fn find_project(&self, id_or_name: &str) -> Result<Option<String>, StoreError> {
        self.read(|c| admin::find_project(c, id_or_name))
    }

    fn list_projects(&self) -> Result<Vec<ProjectInfo>, StoreError> {
        self.read(admin::list_projects)
    }

    fn set_project_retention(
        &self,
        project_id: &str,
        retention: Option<Retention>,
    ) -> Result<(), AdminError> {
        admin::set_project_retention(&self.write_conn(), project_id, retention)
    }
}

impl WriteStore for SqliteStore {
    fn commit(&self, writes: &[Write]) -> Result<Vec<Result<Outcome, WriteError>>, StoreError> {
        write::commit(&mut self.write_conn(), writes)
    }

    fn payload_dictionary(&self) -> Option<DictionaryId> {
        *self.dictionary.read().unwrap_or_else(|p| p.into_inner())
    }
}

impl ReadStore for SqliteStore {
    fn session_exists(&self, project_id: &str, session_id: &str) -> Result<bool, StoreError> {
        self.read(|c| write::session_exists(c, project_id, session_id))
    }

    fn list_sessions(
        &self,
        project_id: &str,
        limit: usize,
    ) -> Result<Vec<SessionSummary>, StoreError> {
        self.read(|c| list::list_sessions(c, project_id, limit))
    }

    fn session_detail(
        &self,
        project_id: &str,
        session_id: &str,
    ) -> Result<Option<SessionDetail>, StoreError> {
        self.read(|c| read::session_detail(c, project_id, session_id, true))
    }

    fn session_detail_without_payloads(
        &self,
        project_id: &str,
        session_id: &str,
    ) -> Result<Option<SessionDetail>, StoreError> {
        self.read(|c| read::session_detail(c, project_id, session_id, false))
    }

    fn query_sessions(
        &self,
        project_id: &str,
        query: &SessionQuery,
    ) -> Result<SessionPage, QueryError> {
        Ok(self.read(|c| list::query_sessions(c, project_id, query))?)
    }

    fn event_detail(
        &self,
        project_id: &str,
        session_id: &str,
        event_id: &str,
    ) -> Result<Option<EventRow>, StoreError> {
        self.read(|c| read::event_detail(c, project_id, session_id, event_id))
    }

    fn session_changes(
        &self,
        project_id: &str,
        session_id: &str,
        since: Option<&crate::store::SessionMark>,
        payloads: bool,
    ) -> Result<Option<crate::store::SessionChanges>, StoreError> {
        self.read(|c| read::session_changes(c, project_id, session_id, since, payloads))
    }

    fn log_records(
        &self,
        project_id: &str,
        session_id: &str,
        span_id: Option<&str>,
    ) -> Result<Vec<crate::store::LogRecord>, StoreError> {
        self.read(|c| logs::log_records(c, project_id, session_id, span_id))
    }

    fn call_refs(
        &self,
        project_id: &str,
        session_id: &str,
    ) -> Result<Vec<crate::store::CallRef>, StoreError> {
        self.read(|c| read::call_refs(c, project_id, session_id))
    }

    fn metric_names(&self, project_id: &str) -> Result<Vec<crate::store::MetricInfo>, StoreError> {
        self.read(|c| metrics::metric_names(c, project_id))
    }

    fn metric_points(
        &self,
        project_id: &str,
        name: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<crate::store::MetricPoint>, StoreError> {
        self.read(|c| metrics::metric_points(c, project_id, name, from, to))
    }

    fn list_agents(&self, project_id: &str) -> Result<Vec<AgentSummary>, StoreError> {
        self.read(|c| read::list_agents(c, project_id))
    }

    fn stats(
        &self,
        project_id: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<RawStats, StoreError> {
        self.read(|c| read::stats(c, project_id, from, to))
    }
}

impl HeldSpanStore for SqliteStore {
    fn hold_spans(&self, spans: &[HeldSpan], max_bytes: u64) -> Result<bool, StoreError> {
        held::hold(&self.write_conn(), spans, max_bytes)
    }

    fn claim_held_spans(
        &self,
        trace_ids: &[String],
        held_since_ms: i64,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<ClaimedSpan>, StoreError> {
        if !self.read(|c| held::any_claimable(c, trace_ids, held_since_ms, now_ms))? {
            return Ok(Vec::new());
        }
        held::claim(
            &self.write_conn(),
            trace_ids,
            held_since_ms,
            now_ms,
            until_ms,
        )
    }

    fn settle_held_spans(&self, ids: &[i64], until_ms: i64) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        held::settle(&self.write_conn(), ids, until_ms)
    }

    fn release_held_spans(&self, ids: &[i64], until_ms: i64) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        held::release(&self.write_conn(), ids, until_ms)
    }

    fn expire_held_spans(&self, held_before_ms: i64) -> Result<u64, StoreError> {
        held::expire(&self.write_conn(), held_before_ms)
    }

    fn held_span_count(&self, held_since_ms: i64) -> Result<u64, StoreError> {
        self.read(|c| held::count(c, held_since_ms))
    }
}

impl Store for SqliteStore {
    fn size_bytes(&self) -> Result<u64, StoreError> {
        let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
        let mut wal = self.path.as_os_str().to_owned();
        wal.push("-wal");
        Ok(size(&self.path).saturating_add(size(Path::new(&wal))))
    }

    fn train_payload_dictionary(&self) -> Result<bool, StoreError> {
        if self.payload_dictionary().is_some() {
            return Ok(false);
        }
        let Some(bytes) = self.read(dictionary::train)? else {
            return Ok(false);
        };
        let id = dictionary::store(&self.write_conn(), &bytes)?;
        *self.dictionary.write().unwrap_or_else(|p| p.into_inner()) = Some(id);
        tracing::info!(
            bytes = bytes.len(),
            "trained a dictionary for event payloads"
        );
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::temp_store;
    use super::SqliteStore;
    use crate::store::AdminStore;

    #[test]
    fn passes_the_store_conformance_suite() {
        let (store, dir) = temp_store();
        crate::store::conformance::writes_are_idempotent_and_project_scoped(&store);
        crate::store::conformance::projects_have_their_own_session_ids(&store);
        crate::store::conformance::session_changes_hand_out_what_was_stored_after_a_mark(&store);
        crate::store::conformance::held_spans_are_claimed_once_by_trace(&store);
        crate::store::conformance::an_event_is_one_by_session_and_id_whatever_its_start_time(
            &store,
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn reopening_keeps_everything() {
        let (store, dir) = temp_store();
        let project = store.create_project("p").unwrap();
        store.add_api_key(&project, "hash").unwrap();
        drop(store);
        let store = SqliteStore::open(&dir.join("agentops.db")).unwrap();
        assert_eq!(
            store.project_for_key("hash").unwrap(),
            Some(project.clone())
        );
        assert_eq!(store.default_project().unwrap(), Some(project));
        assert!(!store
            .add_api_key(store.default_project().unwrap().as_deref().unwrap(), "hash")
            .unwrap());
        std::fs::remove_dir_all(dir).ok();
    }
}
