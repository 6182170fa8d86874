//! `agentops migrate`: copies a whole SQLite store into a PostgreSQL database.
//!
//! The source is opened read-only, so a server may keep serving it (WAL): one read transaction
//! is held for the whole run, and what is copied is the store as it was when the run began.
//! Each table is read in key order (its rowid, or its primary key for the tables without one),
//! a batch at a time; each batch goes to PostgreSQL in one transaction with one multi-row
//! `INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING`, and in that same transaction the
//! table's progress (the last key copied) is noted in `store_notes` under `migrate:<table>`.
//! An interrupted run therefore resumes where it stopped, and no row is copied twice, not even
//! of the tables whose rows have no natural key (`logs`). Events are copied in rowid order, so
//! that PostgreSQL's `seq` (the order a session's rows became visible) follows SQLite's.
//!
//! The source may change between an interrupted run and the next (a server still serving it).
//! Rows are only ever added to most tables, and the next run copies those; but a session's
//! totals and end, an hour's totals and a project's retention change in place, and the tables
//! read in key order may gain rows before the progress note. So a resumed run, once its copy
//! is complete, reads those few tables whole again and brings the target's rows up to date
//! (an upsert that writes only the rows that differ). Rows the source deleted between the runs
//! (retention, a revoked key, a held span taken up) go too: a table with more rows in the
//! target than in the source has its source keys sent to a temporary table, and the target's
//! rows without a match are deleted.
//!
//! The target must be empty, or hold an earlier run's copy of the same store (the
//! `migrate:source` note says which); anything else is refused. Once every table is copied the
//! row counts of source and target are compared table by table: a difference is an error.
//!
//! Not copied: SQLite's own tables, and the data directory's JWT secret (a PostgreSQL server
//! makes its own in `shared_secrets`; clients then fetch new tokens with their API keys).

use std::path::{Path, PathBuf};

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

use super::postgres::schema::Partitions;
use super::postgres::{pg_error, PgStore};
use super::StoreError;

/// The SQLite schema version a source must have (the one this build writes; a new version
/// is a change to review here: its tables and columns are the ones copied).
const SOURCE_SCHEMA_VERSION: i64 = 9;

/// The advisory lock a migration holds on its target, so that two runs never copy at once
/// (`"agmigrat"` in ASCII).
const MIGRATE_LOCK: i64 = 0x6167_6d69_6772_6174;

/// The prefix of the notes a migration keeps in the target's `store_notes`.
const NOTE_PREFIX: &str = "migrate:";

/// The note naming the source a target was filled from.
const SOURCE_NOTE: &str = "migrate:source";

/// The rows of a table a refused target is said to hold at most (more show as `1000+`).
const FOREIGN_ROWS_SHOWN: i64 = 1_000;

/// The note of a finished run.
const DONE_NOTE: &str = "migrate:done";

/// Default rows per batch.
pub const DEFAULT_BATCH_ROWS: usize = 1_000;

/// Default most bytes of text and blobs per batch (a batch ends early past it).
pub const DEFAULT_BATCH_BYTES: usize = 16 << 20;

/// Why a migration failed or was refused.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// Reading the SQLite store failed.
    #[error("cannot read the SQLite store ({context}): {source}")]
    Source {
        /// What was being read.
        context: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// PostgreSQL failed or refused a statement.
    #[error("PostgreSQL failed ({context}): {source}")]
    Target {
        /// What was being done.
        context: String,
        /// The driver's error, as a store error.
        source: StoreError,
    },
    /// Opening (and migrating) the target store failed.
    #[error("cannot open the PostgreSQL store: {0}")]
    Store(#[from] StoreError),
    /// The migration was refused before anything was copied (an unsuitable source or target).
    #[error("{0}")]
    Refused(String),
    /// A stored value cannot be copied as its PostgreSQL column's type.
    #[error("cannot copy {table} row {row}: column {column} {problem}")]
    Value {
        /// The table.
        table: &'static str,
        /// The row: its rowid or its key.
        row: String,
        /// The column.
        column: &'static str,
        /// What is wrong with the value.
        problem: String,
    },
    /// After the copy the target's row counts differ from the source's.
    #[error("the copy does not match its source: {0}")]
    Mismatch(String),
    /// The async runtime could not be started.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// How a migration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Rows per batch (one PostgreSQL transaction each); at least 1.
    pub batch_rows: usize,
    /// A batch ends early once its text and blobs reach this many bytes.
    pub batch_bytes: usize,
    /// Stop once this many rows have been copied in this run (the run is then incomplete and
    /// the next one resumes); `None`: copy everything.
    pub row_limit: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_rows: DEFAULT_BATCH_ROWS,
            batch_bytes: DEFAULT_BATCH_BYTES,
            row_limit: None,
        }
    }
}

/// How far the copy of one table is, reported after each batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The table.
    pub table: &'static str,
    /// Its rows copied so far, by earlier runs too.
    pub copied: u64,
    /// Its rows in the source.
    pub total: u64,
    /// Whether the table is done (the last report of it).
    pub finished: bool,
}

/// What a run did to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    /// The table.
    pub table: &'static str,
    /// Its rows in the source.
    pub source_rows: u64,
    /// Its rows in the target after the run (the migration's own notes not counted).
    pub target_rows: u64,
    /// Rows this run inserted.
    pub copied: u64,
    /// Rows this run read that the target had already (nothing was written for them).
    pub already_present: u64,
    /// Rows an earlier run copied that this one brought up to date, or inserted before the
    /// progress note, because the source changed between the runs (see [`migrate`]).
    pub refreshed: u64,
    /// Rows an earlier run copied that this one took off the target because the source had
    /// deleted them since (see [`migrate`]).
    pub removed: u64,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationSummary {
    /// Where the source is.
    pub source: PathBuf,
    /// Each table, in the order copied.
    pub tables: Vec<TableSummary>,
    /// Whether this run continued an earlier one.
    pub resumed: bool,
    /// Whether everything was copied (and the counts checked); `false` when
    /// [`Options::row_limit`] stopped it.
    pub complete: bool,
}

/// The database file of `path`: `path` itself, or the `agentops.db` of a data directory.
pub fn source_database(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(crate::DATABASE_FILE)
    } else {
        path.to_path_buf()
    }
}

/// Copies the SQLite store at `source` (a database file or a data directory) into the
/// PostgreSQL database at `target_url`, applying its schema migrations first. Calls `progress`
/// after each batch. Resumes an earlier, interrupted run into the same target; refuses a
/// target holding anything else.
pub fn migrate(
    source: &Path,
    target_url: &str,
    options: &Options,
    progress: &mut dyn FnMut(&Progress),
) -> Result<MigrationSummary, MigrateError> {
    let database = source_database(source);
    if !database.is_file() {
        return Err(MigrateError::Refused(format!(
            "no AgentOps SQLite store at {}: give its data directory or its {} file",
            source.display(),
            crate::DATABASE_FILE
        )));
    }
    let source_conn = open_source(&database)?;
    // The schema first, through the store itself, on its own connections.
    drop(PgStore::connect(target_url)?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (client, driver) =
            super::postgres::tls::connect(target_url)
                .await
                .map_err(|source| MigrateError::Target {
                    context: "connecting".into(),
                    source,
                })?;
        let mut migration = Migration::start(source_conn, database, client, options).await?;
        let result = migration.run(progress).await;
        drop(migration);
        let _ = driver.await;
        result
    })
}

/// Opens the source read-only, in a read transaction (one snapshot for the whole run), after
/// checking its schema version.
fn open_source(database: &Path) -> Result<Connection, MigrateError> {
    let context = || format!("opening {}", database.display());
    let conn = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(source_error(context()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(source_error(context()))?;
    conn.execute_batch("BEGIN")
        .map_err(source_error(context()))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(source_error(context()))?;
    if version != SOURCE_SCHEMA_VERSION {
        return Err(MigrateError::Refused(format!(
            "{} has schema version {version}, this agentops copies version \
             {SOURCE_SCHEMA_VERSION}: open it once with this version's `agentops serve` (which \
             migrates it), then migrate again",
            database.display()
        )));
    }
    let legacy: i64 = conn
        .query_row(
            "SELECT count(*) FROM store_notes WHERE key = 'legacy_payloads'",
            [],
            |r| r.get(0),
        )
        .map_err(source_error(context()))?;
    if legacy > 0 {
        return Err(MigrateError::Refused(format!(
            "{} still has events of an older version to pack: open it once with `agentops \
             serve` (which packs them at start), then migrate again",
            database.display()
        )));
    }
    Ok(conn)
}

/// A column's type in PostgreSQL, which a SQLite value is converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Int,
    Real,
    Bool,
    Bytes,
}

impl Kind {
    /// The PostgreSQL array type a batch of the column is sent as.
    fn pg_array(self) -> &'static str {
        match self {
            Kind::Text => "text[]",
            Kind::Int => "bigint[]",
            Kind::Real => "double precision[]",
            Kind::Bool => "boolean[]",
            Kind::Bytes => "bytea[]",
        }
    }
}

/// The order a table is read in, and what its progress note records.
#[derive(Debug, Clone, Copy)]
enum Key {
    /// The rowid (or the `INTEGER PRIMARY KEY` that is it): creation order.
    Rowid,
    /// These text columns, the primary key (the tables `WITHOUT ROWID`, and those whose rowid
    /// a `VACUUM` may renumber).
    Columns(&'static [&'static str]),
}

/// A table copied, with the columns copied (a PostgreSQL identity column, such as `seq`, is
/// not: it is numbered anew in the order rows are copied).
#[derive(Debug)]
struct Table {
    name: &'static str,
    key: Key,
    columns: &'static [(&'static str, Kind)],
    /// For a table whose rows change after they are written (a session's totals and end, an
    /// hour's totals, a project's retention), or whose new rows may sort before the progress
    /// note (the tables read in key order): its PostgreSQL key. A resumed run, once the copy
    /// is complete, reads such a table whole again and brings the target's rows up to date on
    /// this key (what the source changed between the runs).
    refresh_on: Option<&'static [&'static str]>,
    /// The columns that tell its rows apart (its PostgreSQL key where it has one), for a
    /// resumed run to take off the target the rows the source deleted between the runs
    /// (retention, a revoked key, a held span taken up): a target row whose values in these
    /// columns no source row has goes. `None`: the source never deletes its rows, or the
    /// target keeps rows of its own (`store_notes`).
    prune_on: Option<&'static [&'static str]>,
}

use Kind::{Bool, Bytes, Int, Real, Text};

/// Every table of the store, in the order copied.
const TABLES: &[Table] = &[
    Table {
        name: "projects",
        // (creation order, which `projects.seq` then keeps)
        key: Key::Rowid,
        columns: &[
            ("id", Text),
            ("name", Text),
            ("created_at", Text),
            ("retention_days", Int),
        ],
        refresh_on: Some(&["id"]),
        prune_on: Some(&["id"]),
    },
    Table {
        name: "api_keys",
        key: Key::Rowid,
        columns: &[
            ("key_hash", Text),
            ("project_id", Text),
            ("created_at", Text),
        ],
        refresh_on: None,
        prune_on: Some(&["key_hash"]),
    },
    Table {
        name: "payload_dictionaries",
        key: Key::Rowid,
        columns: &[("bytes", Bytes), ("created_at", Text)],
        refresh_on: None,
        prune_on: None,
    },
    Table {
        name: "sessions",
        key: Key::Columns(&["project_id", "id"]),
        columns: &[
            ("project_id", Text),
            ("id", Text),
            ("name", Text),
            ("start_time", Text),
            ("end_time", Text),
            ("end_state", Text),
            ("end_state_reason", Text),
            ("tags", Text),
            ("host_env", Text),
            ("video", Text),
            ("created_at", Text),
            ("event_count", Int),
            ("input_tokens", Int),
            ("output_tokens", Int),
            ("cost", Real),
            ("error_count", Int),
            ("name_rank", Int),
            ("root_end_time", Text),
            ("root_failed", Bool),
            ("root_reason", Text),
            ("last_event_end", Text),
            ("last_span_at", Text),
            ("ended_by", Text),
        ],
        refresh_on: Some(&["project_id", "id"]),
        prune_on: Some(&["project_id", "id"]),
    },
    Table {
        name: "agents",
        // (registration order, which `agents.seq` then keeps)
        key: Key::Rowid,
        columns: &[
            ("project_id", Text),
            ("id", Text),
            ("session_id", Text),
            ("name", Text),
        ],
        refresh_on: None,
        prune_on: Some(&["project_id", "id"]),
    },
    Table {
        name: "session_facets",
        key: Key::Columns(&["project_id", "facet", "value", "session_id"]),
        columns: &[
            ("project_id", Text),
            ("facet", Text),
            ("value", Text),
            ("session_id", Text),
        ],
        refresh_on: Some(&["project_id", "facet", "value", "session_id"]),
        prune_on: Some(&["project_id", "facet", "value", "session_id"]),
    },
    Table {
        name: "hourly_totals",
        key: Key::Columns(&["project_id", "hour", "model"]),
        columns: &[
            ("project_id", Text),
            ("hour", Text),
            ("model", Text),
            ("events", Int),
            ("error_events", Int),
            ("input_tokens", Int),
            ("output_tokens", Int),
            ("cost", Real),
        ],
        refresh_on: Some(&["project_id", "hour", "model"]),
        prune_on: Some(&["project_id", "hour", "model"]),
    },
    Table {
        name: "store_notes",
        key: Key::Columns(&["key"]),
        columns: &[("key", Text), ("value", Text)],
        refresh_on: Some(&["key"]),
        prune_on: None,
    },
    Table {
        name: "events",
        key: Key::Rowid,
        columns: &[
            ("project_id", Text),
            ("id", Text),
            ("session_id", Text),
            ("kind", Text),
            ("name", Text),
            ("parent_id", Text),
            ("trace_id", Text),
            ("span_id", Text),
            ("start_time", Text),
            ("end_time", Text),
            ("status", Text),
            ("status_message", Text),
            ("agent_id", Text),
            ("model", Text),
            ("provider", Text),
            ("prompt", Text),
            ("completion", Text),
            ("params", Text),
            ("returns", Text),
            ("input_tokens", Int),
            ("output_tokens", Int),
            ("cached_tokens", Int),
            ("reasoning_tokens", Int),
            ("cost", Real),
            ("attributes", Text),
            ("packed", Bytes),
            ("call_ids", Text),
        ],
        refresh_on: None,
        prune_on: Some(&["project_id", "session_id", "id", "start_time"]),
    },
    Table {
        name: "logs",
        key: Key::Rowid,
        columns: &[
            ("project_id", Text),
            ("session_id", Text),
            ("body", Text),
            ("received_at", Text),
        ],
        refresh_on: None,
        prune_on: Some(&["project_id", "session_id", "received_at"]),
    },
    Table {
        name: "otel_logs",
        key: Key::Rowid,
        columns: &[
            ("project_id", Text),
            ("session_id", Text),
            ("trace_id", Text),
            ("span_id", Text),
            ("time", Text),
            ("severity", Text),
            ("event_name", Text),
            ("body", Text),
            ("attributes", Text),
            ("call_ids", Text),
            ("fingerprint", Text),
        ],
        refresh_on: None,
        prune_on: Some(&["project_id", "session_id", "fingerprint"]),
    },
    Table {
        name: "metric_points",
        key: Key::Rowid,
        columns: &[
            ("project_id", Text),
            ("name", Text),
            ("kind", Text),
            ("unit", Text),
            ("temporality", Text),
            ("monotonic", Bool),
            ("attributes", Text),
            ("start_time", Text),
            ("time", Text),
            ("value", Real),
            ("count", Int),
            ("sum", Real),
            ("min", Real),
            ("max", Real),
            ("buckets", Text),
            ("fingerprint", Text),
        ],
        refresh_on: None,
        prune_on: Some(&["project_id", "fingerprint"]),
    },
    Table {
        name: "held_spans",
        // (the order they were held, which `held_spans.seq` then keeps)
        key: Key::Rowid,
        columns: &[
            ("trace_id", Text),
            ("held_at_ms", Int),
            ("bytes", Int),
            ("span", Text),
            // (a claim lapses within a minute, copied or not)
            ("claimed_until_ms", Int),
        ],
        refresh_on: None,
        prune_on: Some(&["trace_id", "held_at_ms", "span"]),
    },
];

impl Table {
    /// Its progress note's key.
    fn note_key(&self) -> String {
        format!("{NOTE_PREFIX}{}", self.name)
    }

    /// The multi-row insert of a batch: one array parameter per column.
    fn insert_sql(&self) -> String {
        let columns = self.column_list();
        let arrays: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, kind))| format!("${}::{}", i + 1, kind.pg_array()))
            .collect();
        format!(
            "INSERT INTO {} ({columns}) SELECT * FROM unnest({}) ON CONFLICT DO NOTHING",
            self.name,
            arrays.join(", ")
        )
    }

    /// The upsert of a batch that brings rows copied before up to date on the key `keys`
    /// (see [`Table::refresh_on`]): a row only where it differs, so that the rows affected are
    /// those the source changed.
    fn refresh_sql(&self, keys: &[&str]) -> String {
        let rest: Vec<String> = self
            .columns
            .iter()
            .map(|(c, _)| *c)
            .filter(|c| !keys.contains(c))
            .map(quote)
            .collect();
        let insert = self.insert_sql();
        let Some(head) = insert.strip_suffix(" ON CONFLICT DO NOTHING") else {
            return insert;
        };
        if rest.is_empty() {
            return insert;
        }
        let keys: Vec<String> = keys.iter().map(|k| quote(k)).collect();
        let set: Vec<String> = rest.iter().map(|c| format!("{c} = EXCLUDED.{c}")).collect();
        let theirs: Vec<String> = rest.iter().map(|c| format!("{}.{c}", self.name)).collect();
        let excluded: Vec<String> = rest.iter().map(|c| format!("EXCLUDED.{c}")).collect();
        format!(
            "{head} ON CONFLICT ({}) DO UPDATE SET {} WHERE ({}) IS DISTINCT FROM ({})",
            keys.join(", "),
            set.join(", "),
            theirs.join(", "),
            excluded.join(", ")
        )
    }

    /// The copied columns, quoted, in order.
    fn column_list(&self) -> String {
        let quoted: Vec<String> = self.columns.iter().map(|(c, _)| quote(c)).collect();
        quoted.join(", ")
    }

    /// The condition `key OP cursor` in SQLite, and its parameters; `None` at the start.
    fn key_condition(&self, op: &str, cursor: &Cursor) -> Option<(String, Vec<SqlValue>)> {
        match (self.key, cursor) {
            (_, Cursor::Start) => None,
            (Key::Rowid, Cursor::Rowid(rowid)) => {
                Some((format!("rowid {op} ?1"), vec![SqlValue::Integer(*rowid)]))
            }
            (Key::Columns(keys), Cursor::Key(values)) => {
                let columns: Vec<String> = keys.iter().map(|k| quote(k)).collect();
                let holes: Vec<String> = (1..=keys.len()).map(|i| format!("?{i}")).collect();
                let values = values.iter().cloned().map(SqlValue::Text).collect();
                Some((
                    format!("({}) {op} ({})", columns.join(", "), holes.join(", ")),
                    values,
                ))
            }
            // (a note of the other kind: refused when read, see `Cursor::parse`)
            _ => None,
        }
    }

    /// The SQLite key order.
    fn order_by(&self) -> String {
        match self.key {
            Key::Rowid => "rowid".into(),
            Key::Columns(keys) => keys.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", "),
        }
    }
}

/// `name` as a quoted identifier (several columns are named like keywords: `key`, `time`).
fn quote(name: &str) -> String {
    format!("\"{name}\"")
}

/// Where a table's copy stands: nothing copied, or everything up to a key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cursor {
    Start,
    Rowid(i64),
    Key(Vec<String>),
}

impl Cursor {
    /// As its note stores it.
    fn to_note(&self) -> String {
        match self {
            Cursor::Start => serde_json::json!({}),
            Cursor::Rowid(rowid) => serde_json::json!({ "rowid": rowid }),
            Cursor::Key(values) => serde_json::json!({ "key": values }),
        }
        .to_string()
    }

    /// A note read back, for `table`.
    fn parse(table: &Table, note: &str) -> Result<Cursor, MigrateError> {
        let unreadable = || {
            MigrateError::Refused(format!(
                "the target's progress note {} is unreadable ({note:?}): migrate into a new, \
                 empty database",
                table.note_key()
            ))
        };
        let value: serde_json::Value = serde_json::from_str(note).map_err(|_| unreadable())?;
        match table.key {
            Key::Rowid => match value.get("rowid") {
                None => Ok(Cursor::Start),
                Some(rowid) => rowid.as_i64().map(Cursor::Rowid).ok_or_else(unreadable),
            },
            Key::Columns(keys) => match value.get("key") {
                None => Ok(Cursor::Start),
                Some(serde_json::Value::Array(values)) if values.len() == keys.len() => values
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .map(Cursor::Key)
                    .ok_or_else(unreadable),
                Some(_) => Err(unreadable()),
            },
        }
    }
}

/// A batch of one column's values, as the PostgreSQL array it is sent as.
#[derive(Debug)]
enum ColumnData {
    Text(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Real(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Bytes(Vec<Option<Vec<u8>>>),
}

/// At most this many characters of a value are shown in an error.
const SHOWN_CHARS: usize = 40;

/// `text` for an error message, shortened.
fn shown(text: &str) -> String {
    if text.chars().count() <= SHOWN_CHARS {
        format!("{text:?}")
    } else {
        let start: String = text.chars().take(SHOWN_CHARS).collect();
        format!("{start:?}…")
    }
}

impl ColumnData {
    fn new(kind: Kind, capacity: usize) -> ColumnData {
        match kind {
            Kind::Text => ColumnData::Text(Vec::with_capacity(capacity)),
            Kind::Int => ColumnData::Int(Vec::with_capacity(capacity)),
            Kind::Real => ColumnData::Real(Vec::with_capacity(capacity)),
            Kind::Bool => ColumnData::Bool(Vec::with_capacity(capacity)),
            Kind::Bytes => ColumnData::Bytes(Vec::with_capacity(capacity)),
        }
    }

    /// Adds `value`, converted to the column's type; the bytes it adds to the batch, or what
    /// keeps it from being converted.
    fn push(&mut self, value: ValueRef<'_>) -> Result<usize, String> {
        match self {
            ColumnData::Text(column) => {
                let text = match value {
                    ValueRef::Null => None,
                    ValueRef::Text(bytes) => {
                        let text = std::str::from_utf8(bytes)
                            .map_err(|_| "holds text that is not valid UTF-8".to_string())?;
                        if text.contains('\0') {
                            return Err(format!(
                                "holds a NUL character, which PostgreSQL text cannot: {}",
                                shown(text)
                            ));
                        }
                        Some(text.to_owned())
                    }
                    ValueRef::Integer(i) => Some(i.to_string()),
                    ValueRef::Real(f) => Some(f.to_string()),
                    ValueRef::Blob(b) => {
                        return Err(format!("holds a blob of {} bytes, not text", b.len()))
                    }
                };
                let bytes = text.as_ref().map_or(0, String::len);
                column.push(text);
                Ok(bytes)
            }
            ColumnData::Int(column) => {
                column.push(match value {
                    ValueRef::Null => None,
                    ValueRef::Integer(i) => Some(i),
                    ValueRef::Real(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(f as i64),
                    ValueRef::Real(f) => return Err(format!("holds {f}, not an integer")),
                    ValueRef::Text(bytes) => {
                        let text = String::from_utf8_lossy(bytes);
                        Some(text.trim().parse().map_err(|_| {
                            format!("holds the text {}, not an integer", shown(&text))
                        })?)
                    }
                    ValueRef::Blob(b) => {
                        return Err(format!("holds a blob of {} bytes, not an integer", b.len()))
                    }
                });
                Ok(8)
            }
            ColumnData::Real(column) => {
                column.push(match value {
                    ValueRef::Null => None,
                    ValueRef::Real(f) => Some(f),
                    ValueRef::Integer(i) => Some(i as f64),
                    ValueRef::Text(bytes) => {
                        let text = String::from_utf8_lossy(bytes);
                        Some(text.trim().parse().map_err(|_| {
                            format!("holds the text {}, not a number", shown(&text))
                        })?)
                    }
                    ValueRef::Blob(b) => {
                        return Err(format!("holds a blob of {} bytes, not a number", b.len()))
                    }
                });
                Ok(8)
            }
            ColumnData::Bool(column) => {
                column.push(match value {
                    ValueRef::Null => None,
                    ValueRef::Integer(0) => Some(false),
                    ValueRef::Integer(1) => Some(true),
                    ValueRef::Integer(i) => {
                        return Err(format!("holds {i}, not 0 or 1 (false or true)"))
                    }
                    ValueRef::Real(f) => {
                        return Err(format!("holds {f}, not 0 or 1 (false or true)"))
                    }
                    ValueRef::Text(bytes) => {
                        return Err(format!(
                            "holds the text {}, not 0 or 1 (false or true)",
                            shown(&String::from_utf8_lossy(bytes))
                        ))
                    }
                    ValueRef::Blob(b) => {
                        return Err(format!("holds a blob of {} bytes, not 0 or 1", b.len()))
                    }
                });
                Ok(1)
            }
            ColumnData::Bytes(column) => {
                let bytes = match value {
                    ValueRef::Null => None,
                    ValueRef::Blob(b) => Some(b.to_vec()),
                    ValueRef::Text(t) => {
                        return Err(format!(
                            "holds the text {}, not bytes",
                            shown(&String::from_utf8_lossy(t))
                        ))
                    }
                    ValueRef::Integer(i) => return Err(format!("holds {i}, not bytes")),
                    ValueRef::Real(f) => return Err(format!("holds {f}, not bytes")),
                };
                let size = bytes.as_ref().map_or(0, Vec::len);
                column.push(bytes);
                Ok(size)
            }
        }
    }

    /// The column as a statement parameter.
    fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            ColumnData::Text(v) => v,
            ColumnData::Int(v) => v,
            ColumnData::Real(v) => v,
            ColumnData::Bool(v) => v,
            ColumnData::Bytes(v) => v,
        }
    }
}

/// Rows read from one table, column by column, and the key of the last.
#[derive(Debug)]
struct Batch {
    columns: Vec<ColumnData>,
    rows: usize,
    last: Cursor,
}

/// A SQLite error while `context`.
fn source_error(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> MigrateError {
    let context = context.into();
    move |source| MigrateError::Source { context, source }
}

/// A PostgreSQL error while `context`.
fn pg(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> MigrateError {
    let context = context.into();
    move |e| MigrateError::Target {
        context,
        source: pg_error(e),
    }
}

/// A migration under way: the source in its read transaction, the target connection (holding
/// [`MIGRATE_LOCK`]).
struct Migration {
    source: Connection,
    database: PathBuf,
    target: Client,
    options: Options,
    partitions: Partitions,
    resumed: bool,
    /// Each table's prepared insert, by name.
    inserts: std::collections::HashMap<&'static str, Statement>,
}

impl Migration {
    /// Takes the target's lock and checks that it is empty or an earlier copy of this source
    /// (noting the source when it is empty).
    async fn start(
        source: Connection,
        database: PathBuf,
        target: Client,
        options: &Options,
    ) -> Result<Migration, MigrateError> {
        let locked: bool = target
            .query_one("SELECT pg_try_advisory_lock($1)", &[&MIGRATE_LOCK])
            .await
            .map_err(pg("locking the target"))?
            .get(0);
        if !locked {
            return Err(MigrateError::Refused(
                "another `agentops migrate` is copying into this database: wait for it to end"
                    .into(),
            ));
        }
        // Losing the last commits in a crash is harmless (each batch's progress note goes
        // with it, so the next run copies them again); the run ends with a durable commit.
        target
            .batch_execute("SET synchronous_commit = off")
            .await
            .map_err(pg("configuring the session"))?;
        let mut migration = Migration {
            source,
            database,
            target,
            options: Options {
                batch_rows: options.batch_rows.max(1),
                batch_bytes: options.batch_bytes.max(1),
                row_limit: options.row_limit,
            },
            partitions: Partitions::default(),
            resumed: false,
            inserts: Default::default(),
        };
        migration.check_target().await?;
        Ok(migration)
    }

    /// The source's identity as its note records it: its first project.
    fn source_identity(&self) -> Result<Option<String>, MigrateError> {
        use rusqlite::OptionalExtension as _;
        self.source
            .query_row(
                "SELECT id FROM projects ORDER BY created_at, rowid LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(source_error("projects"))
    }

    /// Refuses a target that holds data of its own or another source's copy; notes this
    /// source in an empty one.
    async fn check_target(&mut self) -> Result<(), MigrateError> {
        let first_project = self.source_identity()?;
        let note = self
            .target
            .query_opt(
                "SELECT value FROM store_notes WHERE key = $1",
                &[&SOURCE_NOTE],
            )
            .await
            .map_err(pg("reading the migration notes"))?;
        if let Some(note) = note {
            let value: String = note.get(0);
            let noted: serde_json::Value = serde_json::from_str(&value).unwrap_or_default();
            let noted_project = noted.get("first_project").and_then(|p| p.as_str());
            if noted_project.is_some() && noted_project != first_project.as_deref() {
                return Err(MigrateError::Refused(format!(
                    "the target holds a copy of another store ({}), not of {}: migrate into a \
                     new, empty database",
                    noted
                        .get("source")
                        .and_then(|s| s.as_str())
                        .unwrap_or("unknown"),
                    self.database.display()
                )));
            }
            self.resumed = true;
            return Ok(());
        }
        let mut held = Vec::new();
        for table in TABLES {
            // (counted up to a bound: a large foreign table need not be read whole)
            let rows: i64 = self
                .target
                .query_one(
                    &format!(
                        "SELECT count(*) FROM (SELECT 1 FROM {} LIMIT {FOREIGN_ROWS_SHOWN}) s",
                        table.name
                    ),
                    &[],
                )
                .await
                .map_err(pg(format!("counting {}", table.name)))?
                .get(0);
            match rows {
                0 => {}
                FOREIGN_ROWS_SHOWN.. => held.push(format!("{rows}+ {}", table.name)),
                _ => held.push(format!("{rows} {}", table.name)),
            }
        }
        if !held.is_empty() {
            return Err(MigrateError::Refused(format!(
                "the target database already holds data that `agentops migrate` did not copy \
                 ({}): migrate into a new, empty database (e.g. `createdb agentops`), before \
                 any server uses it",
                held.join(", ")
            )));
        }
        let value = serde_json::json!({
            "source": self.database.display().to_string(),
            "first_project": first_project,
        })
        .to_string();
        self.target
            .execute(
                "INSERT INTO store_notes (key, value) VALUES ($1, $2)",
                &[&SOURCE_NOTE, &value],
            )
            .await
            .map_err(pg("noting the source"))?;
        Ok(())
    }

    /// Copies every table, then checks the counts (unless the row limit stopped it).
    async fn run(
        &mut self,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<MigrationSummary, MigrateError> {
        let mut tables = Vec::with_capacity(TABLES.len());
        let mut copied_in_run = 0u64;
        let mut complete = true;
        for table in TABLES {
            let total = self.source_count(table, None)?;
            let cursor = self.cursor(table).await?;
            let mut done = self.source_count(table, Some(&cursor))?;
            let (mut copied, mut already_present) = (0, 0);
            progress(&Progress {
                table: table.name,
                copied: done,
                total,
                finished: false,
            });
            loop {
                let room = match self.options.row_limit {
                    Some(limit) if copied_in_run >= limit => {
                        complete = false;
                        break;
                    }
                    Some(limit) => (limit - copied_in_run).min(self.options.batch_rows as u64),
                    None => self.options.batch_rows as u64,
                };
                let (read, inserted) = self.copy_batch(table, room as usize).await?;
                if read == 0 {
                    break;
                }
                copied += inserted;
                already_present += read as u64 - inserted;
                copied_in_run += read as u64;
                done += read as u64;
                progress(&Progress {
                    table: table.name,
                    copied: done,
                    total,
                    finished: false,
                });
            }
            progress(&Progress {
                table: table.name,
                copied: done,
                total,
                finished: true,
            });
            tables.push(TableSummary {
                table: table.name,
                source_rows: total,
                target_rows: 0,
                copied,
                already_present,
                refreshed: 0,
                removed: 0,
            });
            if !complete {
                break;
            }
        }
        // (not after a finished run: a server may have written to the target since, and the
        // source's older rows must not overwrite its)
        let catch_up = complete && self.resumed && !self.finished_before().await?;
        if catch_up {
            for (table, summary) in TABLES.iter().zip(&mut tables) {
                if let Some(keys) = table.refresh_on {
                    summary.refreshed = self.refresh(table, keys).await?;
                }
            }
        }
        for (table, summary) in TABLES.iter().zip(&mut tables) {
            summary.target_rows = self.target_count(summary.table).await?;
            // The target holds every source row (each was copied, or was there already): more
            // rows than the source are rows the source deleted since an earlier run copied them.
            if let (true, Some(keys)) = (catch_up, table.prune_on) {
                if summary.target_rows > summary.source_rows {
                    summary.removed = self.prune(table, keys).await?;
                    summary.target_rows = self.target_count(summary.table).await?;
                }
            }
        }
        let summary = MigrationSummary {
            source: self.database.clone(),
            tables,
            resumed: self.resumed,
            complete,
        };
        if complete {
            let differing: Vec<String> = summary
                .tables
                .iter()
                .filter(|t| t.source_rows != t.target_rows)
                .map(|t| {
                    format!(
                        "{}: {} rows in the source, {} in the target",
                        t.table, t.source_rows, t.target_rows
                    )
                })
                .collect();
            if !differing.is_empty() {
                return Err(MigrateError::Mismatch(format!(
                    "{} (did the source change between an interrupted run and this one? \
                     migrate into a new, empty database with the server stopped)",
                    differing.join("; ")
                )));
            }
            self.finish().await?;
        }
        Ok(summary)
    }

    /// Notes the end of a complete run, with a durable commit (which makes the batches
    /// before it durable too).
    async fn finish(&mut self) -> Result<(), MigrateError> {
        let at = agentops_core::timestamp::now();
        self.target
            .batch_execute("SET synchronous_commit = on")
            .await
            .map_err(pg("configuring the session"))?;
        self.target
            .execute(
                "INSERT INTO store_notes (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&DONE_NOTE, &at],
            )
            .await
            .map_err(pg("noting the end"))?;
        Ok(())
    }

    /// The source's rows of `table`, all or those up to `cursor`.
    fn source_count(&self, table: &Table, upto: Option<&Cursor>) -> Result<u64, MigrateError> {
        let (condition, params) = match upto.and_then(|c| table.key_condition("<=", c)) {
            Some((condition, params)) => (format!(" WHERE {condition}"), params),
            None if upto.is_some() => return Ok(0),
            None => (String::new(), Vec::new()),
        };
        let rows: i64 = self
            .source
            .query_row(
                &format!("SELECT count(*) FROM {}{condition}", table.name),
                rusqlite::params_from_iter(params),
                |r| r.get(0),
            )
            .map_err(source_error(format!("counting {}", table.name)))?;
        Ok(rows as u64)
    }

    /// The target's rows of `table` (the migration's notes not counted).
    async fn target_count(&self, table: &str) -> Result<u64, MigrateError> {
        let sql = if table == "store_notes" {
            format!("SELECT count(*) FROM store_notes WHERE key NOT LIKE '{NOTE_PREFIX}%'")
        } else {
            format!("SELECT count(*) FROM {table}")
        };
        let rows: i64 = self
            .target
            .query_one(&sql, &[])
            .await
            .map_err(pg(format!("counting {table}")))?
            .get(0);
        Ok(rows as u64)
    }

    /// Where the copy of `table` stands, by its note.
    async fn cursor(&self, table: &Table) -> Result<Cursor, MigrateError> {
        let note = self
            .target
            .query_opt(
                "SELECT value FROM store_notes WHERE key = $1",
                &[&table.note_key()],
            )
            .await
            .map_err(pg(format!("reading the progress of {}", table.name)))?;
        match note {
            None => Ok(Cursor::Start),
            Some(row) => Cursor::parse(table, &row.get::<_, String>(0)),
        }
    }

    /// Copies the next batch of `table` (at most `rows` rows) after its noted progress, in
    /// one transaction with the new progress note. How many rows it read (0: the table is
    /// done) and how many of them it inserted (the others were in the target already).
    async fn copy_batch(
        &mut self,
        table: &'static Table,
        rows: usize,
    ) -> Result<(usize, u64), MigrateError> {
        let cursor = self.cursor(table).await?;
        let batch = self.read_batch(table, &cursor, rows)?;
        if batch.rows == 0 {
            return Ok((0, 0));
        }
        if table.name == "events" {
            let start = table
                .columns
                .iter()
                .position(|(c, _)| *c == "start_time")
                .and_then(|i| match &batch.columns[i] {
                    ColumnData::Text(values) => Some(values),
                    _ => None,
                });
            // One month at a time: `Partitions::ensure` creates the partitions it is given in
            // one transaction, whose temporary table can be made only once.
            let mut months: Vec<&str> = start
                .into_iter()
                .flatten()
                .flatten()
                .map(|t| t.get(..7).unwrap_or(t))
                .collect();
            months.sort_unstable();
            months.dedup();
            for month in months {
                self.partitions
                    .ensure(&mut self.target, std::iter::once(month))
                    .await
                    .map_err(|source| MigrateError::Target {
                        context: format!("creating the partition of events for {month}"),
                        source,
                    })?;
            }
        }
        let insert = match self.inserts.get(table.name) {
            Some(insert) => insert.clone(),
            None => {
                let insert = self
                    .target
                    .prepare(&table.insert_sql())
                    .await
                    .map_err(pg(format!("preparing the insert into {}", table.name)))?;
                self.inserts.insert(table.name, insert.clone());
                insert
            }
        };
        let params: Vec<&(dyn ToSql + Sync)> = batch.columns.iter().map(|c| c.param()).collect();
        let context = || format!("copying {} after {}", table.name, cursor.to_note());
        let tx = self.target.transaction().await.map_err(pg(context()))?;
        let inserted = tx.execute(&insert, &params).await.map_err(pg(context()))?;
        tx.execute(
            "INSERT INTO store_notes (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&table.note_key(), &batch.last.to_note()],
        )
        .await
        .map_err(pg(context()))?;
        tx.commit().await.map_err(pg(context()))?;
        Ok((batch.rows, inserted))
    }

    /// Whether an earlier run finished the copy (its done note).
    async fn finished_before(&self) -> Result<bool, MigrateError> {
        Ok(self
            .target
            .query_opt("SELECT 1 FROM store_notes WHERE key = $1", &[&DONE_NOTE])
            .await
            .map_err(pg("reading the migration notes"))?
            .is_some())
    }

    /// Reads all of `table` again and upserts it on `keys` ([`Table::refresh_on`]); how many
    /// rows that changed.
    async fn refresh(&mut self, table: &'static Table, keys: &[&str]) -> Result<u64, MigrateError> {
        let context = || format!("bringing {} up to date", table.name);
        let upsert = self
            .target
            .prepare(&table.refresh_sql(keys))
            .await
            .map_err(pg(context()))?;
        let mut cursor = Cursor::Start;
        let mut changed = 0;
        loop {
            let batch = self.read_batch(table, &cursor, self.options.batch_rows)?;
            if batch.rows == 0 {
                return Ok(changed);
            }
            let params: Vec<&(dyn ToSql + Sync)> =
                batch.columns.iter().map(|c| c.param()).collect();
            changed += self
                .target
                .execute(&upsert, &params)
                .await
                .map_err(pg(context()))?;
            cursor = batch.last;
        }
    }

    /// Takes off the target the rows of `table` whose values in `keys` ([`Table::prune_on`])
    /// no source row has: the source's keys go to a temporary table, a batch at a time, then
    /// one `DELETE` takes every target row without a match. How many rows it took.
    async fn prune(
        &mut self,
        table: &'static Table,
        keys: &'static [&'static str],
    ) -> Result<u64, MigrateError> {
        let context = || format!("taking off {} the rows the source deleted", table.name);
        let kinds: Vec<Kind> = keys
            .iter()
            .map(|key| {
                table
                    .columns
                    .iter()
                    .find(|(c, _)| c == key)
                    .map(|(_, kind)| *kind)
                    .ok_or_else(|| {
                        MigrateError::Refused(format!("{} has no column {key}", table.name))
                    })
            })
            .collect::<Result<_, _>>()?;
        let pg_type = |kind: Kind| kind.pg_array().trim_end_matches("[]");
        let definitions: Vec<String> = kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| format!("k{i} {}", pg_type(*kind)))
            .collect();
        self.target
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS pg_temp.migrate_kept; CREATE TEMP TABLE migrate_kept ({})",
                definitions.join(", ")
            ))
            .await
            .map_err(pg(context()))?;
        let arrays: Vec<String> = kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| format!("${}::{}", i + 1, kind.pg_array()))
            .collect();
        let insert = self
            .target
            .prepare(&format!(
                "INSERT INTO pg_temp.migrate_kept SELECT * FROM unnest({})",
                arrays.join(", ")
            ))
            .await
            .map_err(pg(context()))?;
        let quoted: Vec<String> = keys.iter().map(|k| quote(k)).collect();
        let sql = format!("SELECT {} FROM {}", quoted.join(", "), table.name);
        let batch_rows = self.options.batch_rows.max(1) * 10;
        let mut columns: Vec<ColumnData> = kinds
            .iter()
            .map(|k| ColumnData::new(*k, batch_rows))
            .collect();
        let mut rows = 0;
        let mut select = self
            .source
            .prepare(&sql)
            .map_err(source_error(format!("reading the keys of {}", table.name)))?;
        let mut result = select
            .query([])
            .map_err(source_error(format!("reading the keys of {}", table.name)))?;
        loop {
            let row = result
                .next()
                .map_err(source_error(format!("reading the keys of {}", table.name)))?;
            if let Some(row) = row {
                for (i, (column, key)) in columns.iter_mut().zip(keys).enumerate() {
                    let value = row
                        .get_ref(i)
                        .map_err(source_error(format!("reading the keys of {}", table.name)))?;
                    column.push(value).map_err(|problem| MigrateError::Value {
                        table: table.name,
                        row: "(reading its keys)".into(),
                        column: key,
                        problem,
                    })?;
                }
                rows += 1;
            }
            if rows > 0 && (rows == batch_rows || row.is_none()) {
                let params: Vec<&(dyn ToSql + Sync)> = columns.iter().map(|c| c.param()).collect();
                self.target
                    .execute(&insert, &params)
                    .await
                    .map_err(pg(context()))?;
                columns = kinds
                    .iter()
                    .map(|k| ColumnData::new(*k, batch_rows))
                    .collect();
                rows = 0;
            }
            if row.is_none() {
                break;
            }
        }
        let matches: Vec<String> = quoted
            .iter()
            .enumerate()
            .map(|(i, c)| format!("k.k{i} = t.{c}"))
            .collect();
        self.target
            .batch_execute("ANALYZE pg_temp.migrate_kept")
            .await
            .map_err(pg(context()))?;
        let removed = self
            .target
            .execute(
                &format!(
                    "DELETE FROM {} t WHERE NOT EXISTS (SELECT 1 FROM pg_temp.migrate_kept k WHERE {})",
                    table.name,
                    matches.join(" AND ")
                ),
                &[],
            )
            .await
            .map_err(pg(context()))?;
        self.target
            .batch_execute("DROP TABLE pg_temp.migrate_kept")
            .await
            .map_err(pg(context()))?;
        Ok(removed)
    }

    /// Reads at most `rows` rows of `table` after `cursor` (fewer once their text and blobs
    /// reach [`Options::batch_bytes`]), converted to their PostgreSQL types.
    fn read_batch(
        &self,
        table: &'static Table,
        cursor: &Cursor,
        rows: usize,
    ) -> Result<Batch, MigrateError> {
        let (condition, params) = match table.key_condition(">", cursor) {
            Some((condition, params)) => (format!("WHERE {condition}"), params),
            None => (String::new(), Vec::new()),
        };
        let rowid = matches!(table.key, Key::Rowid);
        let sql = format!(
            "SELECT {}{} FROM {} {condition} ORDER BY {} LIMIT {rows}",
            if rowid { "rowid, " } else { "" },
            table.column_list(),
            table.name,
            table.order_by(),
        );
        let context = || format!("reading {}", table.name);
        let mut select = self
            .source
            .prepare_cached(&sql)
            .map_err(source_error(context()))?;
        let mut result = select
            .query(rusqlite::params_from_iter(params))
            .map_err(source_error(context()))?;
        let mut batch = Batch {
            columns: table
                .columns
                .iter()
                .map(|(_, kind)| ColumnData::new(*kind, rows))
                .collect(),
            rows: 0,
            last: cursor.clone(),
        };
        let offset = usize::from(rowid);
        let mut bytes = 0;
        while let Some(row) = result.next().map_err(source_error(context()))? {
            let key = match table.key {
                Key::Rowid => Cursor::Rowid(row.get(0).map_err(source_error(context()))?),
                Key::Columns(keys) => {
                    let mut values = Vec::with_capacity(keys.len());
                    for key in keys {
                        let index = table
                            .columns
                            .iter()
                            .position(|(c, _)| c == key)
                            .map_or(0, |i| i + offset);
                        match row.get_ref(index).map_err(source_error(context()))? {
                            ValueRef::Text(text) => {
                                values.push(String::from_utf8_lossy(text).into_owned())
                            }
                            other => {
                                return Err(MigrateError::Value {
                                    table: table.name,
                                    row: format!("after {}", cursor.to_note()),
                                    column: key,
                                    problem: format!(
                                        "(part of the key) holds {:?}, not text",
                                        other.data_type()
                                    ),
                                })
                            }
                        }
                    }
                    Cursor::Key(values)
                }
            };
            for (i, ((column, _), data)) in table.columns.iter().zip(&mut batch.columns).enumerate()
            {
                let value = row.get_ref(i + offset).map_err(source_error(context()))?;
                bytes += data.push(value).map_err(|problem| MigrateError::Value {
                    table: table.name,
                    row: describe_row(table, &key),
                    column,
                    problem,
                })?;
            }
            batch.rows += 1;
            batch.last = key;
            if bytes >= self.options.batch_bytes {
                break;
            }
        }
        Ok(batch)
    }
}

/// A row by its key, for an error message.
fn describe_row(table: &Table, key: &Cursor) -> String {
    match (table.key, key) {
        (_, Cursor::Rowid(rowid)) => format!("rowid {rowid}"),
        (Key::Columns(keys), Cursor::Key(values)) => {
            let values: Vec<String> = values.iter().map(|v| shown(v)).collect();
            format!("({}) = ({})", keys.join(", "), values.join(", "))
        }
        _ => "at the start".into(),
    }
}

#[cfg(test)]
mod tests {
    use agentops_core::EndState;
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use super::{migrate, MigrateError, MigrationSummary, Options, TABLES};
    use crate::store::postgres::test_support::TestDatabase;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{
        AdminStore, EventRecord, LogRecord, MetricPoint, Retention, RootEnd, SessionRecord, Write,
        WriteStore,
    };

    /// A SQLite store in a new directory (removed when dropped).
    struct Source {
        dir: PathBuf,
        store: Option<SqliteStore>,
    }

    impl Source {
        fn new() -> Source {
            let dir =
                std::env::temp_dir().join(format!("agentops-migrate-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            let store = SqliteStore::open(&dir.join(crate::DATABASE_FILE)).unwrap();
            Source {
                dir,
                store: Some(store),
            }
        }

        fn store(&self) -> &SqliteStore {
            self.store.as_ref().unwrap()
        }

        fn path(&self) -> &Path {
            &self.dir
        }

        /// A connection of its own to the database (for what the store's API does not write).
        fn conn(&self) -> rusqlite::Connection {
            let conn = rusqlite::Connection::open(self.dir.join(crate::DATABASE_FILE)).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(10))
                .unwrap();
            conn
        }

        /// Every table's rows, by SQL.
        fn counts(&self) -> BTreeMap<&'static str, i64> {
            let conn = self.conn();
            TABLES
                .iter()
                .map(|t| {
                    let n = conn
                        .query_row(&format!("SELECT count(*) FROM {}", t.name), [], |r| {
                            r.get(0)
                        })
                        .unwrap();
                    (t.name, n)
                })
                .collect()
        }
    }

    impl Drop for Source {
        fn drop(&mut self) {
            self.store.take();
            std::fs::remove_dir_all(&self.dir).ok();
        }
    }

    fn commit(store: &SqliteStore, writes: &[Write]) {
        let results = store.commit(writes).unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }

    fn event(id: &str, session: &str, start: &str) -> EventRecord {
        EventRecord {
            id: id.into(),
            session_id: session.into(),
            kind: "llms".into(),
            name: Some(format!("call {id}")),
            start_time: start.into(),
            model: Some("gpt-4o".into()),
            input_tokens: Some(10),
            output_tokens: Some(5),
            cost: Some(0.25),
            prompt: Some(serde_json::json!([{"role": "user", "content": format!("hi {id}")}])),
            attributes: serde_json::json!({"k": id}),
            ..EventRecord::default()
        }
    }

    /// Two projects (and a key), sessions over three months (one a plain trace whose root
    /// failed), events (one whose start is no timestamp), agents, uploaded logs (two the
    /// same), OTLP log records, metric points, a dictionary and a note.
    fn seed(source: &Source) {
        let store = source.store();
        let a = store.create_project("a").unwrap();
        let b = store.create_project("b").unwrap();
        store.add_api_key(&a, "hash-a").unwrap();
        store.add_api_key(&b, "hash-b").unwrap();
        for (project, months) in [
            (&a, ["2026-01", "2026-02", "2026-03"]),
            (&b, ["2025-12", "2026-01", "2026-01"]),
        ] {
            for (n, month) in months.iter().enumerate() {
                let session = format!("s{n}");
                let start = format!("{month}-10T10:00:00.000000+00:00");
                commit(
                    store,
                    &[
                        Write::CreateSession {
                            project_id: project.clone(),
                            session: SessionRecord {
                                id: session.clone(),
                                name: Some(format!("run {n}")),
                                start_time: Some(start.clone()),
                                tags: Some(vec!["prod".into()]),
                                root_end: (n == 1).then(|| RootEnd {
                                    end_time: format!("{month}-10T10:00:09.000000+00:00"),
                                    failed: true,
                                    reason: Some("boom".into()),
                                }),
                                ..SessionRecord::default()
                            },
                        },
                        Write::CreateEvents {
                            project_id: project.clone(),
                            session_id: session.clone(),
                            events: (0..7)
                                .map(|i| {
                                    event(
                                        &format!("e{i}"),
                                        &session,
                                        &format!("{month}-10T10:00:0{i}.000000+00:00"),
                                    )
                                })
                                .chain([event("odd", &session, "not a time")])
                                .collect(),
                        },
                        Write::CreateAgent {
                            project_id: project.clone(),
                            session_id: session.clone(),
                            agent_id: format!("agent-{n}"),
                            name: "planner".into(),
                        },
                        Write::AppendLog {
                            project_id: project.clone(),
                            session_id: session.clone(),
                            body: "the same output".into(),
                        },
                        Write::AppendLog {
                            project_id: project.clone(),
                            session_id: session.clone(),
                            body: "the same output".into(),
                        },
                        Write::IngestLogs {
                            project_id: project.clone(),
                            records: (0..3)
                                .map(|i| LogRecord {
                                    session_id: session.clone(),
                                    time: format!("{month}-10T10:00:0{i}.500000+00:00"),
                                    severity: Some("INFO".into()),
                                    body: serde_json::json!(format!("record {i}")),
                                    attributes: serde_json::json!({}),
                                    ..LogRecord::default()
                                })
                                .collect(),
                        },
                        Write::IngestMetrics {
                            project_id: project.clone(),
                            points: (0..3)
                                .map(|i| MetricPoint {
                                    name: "gen_ai.client.token.usage".into(),
                                    kind: "sum".into(),
                                    unit: Some("{token}".into()),
                                    temporality: Some("cumulative".into()),
                                    monotonic: Some(i != 2),
                                    attributes: serde_json::json!({"session": session}),
                                    time: format!("{month}-10T10:00:0{i}.000000+00:00"),
                                    value: Some(i as f64 * 1.5),
                                    ..MetricPoint::default()
                                })
                                .collect(),
                        },
                    ],
                );
            }
        }
        let conn = source.conn();
        conn.execute_batch(
            "INSERT INTO payload_dictionaries (bytes, created_at)
                 VALUES (x'00010203', '2026-01-01T00:00:00.000000+00:00');
             INSERT INTO store_notes (key, value) VALUES ('a note', 'kept');",
        )
        .unwrap();
    }

    /// Runs `sql` on the target, answering its rows' first columns as text.
    fn pg_texts(url: &str, sql: &str) -> Vec<String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            let driver = tokio::spawn(connection);
            let messages = client.simple_query(sql).await;
            let messages = messages.unwrap_or_else(|e| panic!("{sql}: {e}"));
            drop(client);
            let _ = driver.await;
            messages
                .iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(row) => {
                        Some(row.get(0).unwrap_or_default().to_owned())
                    }
                    _ => None,
                })
                .collect()
        })
    }

    /// Runs `sql` on the target: a count.
    fn pg_count(url: &str, sql: &str) -> i64 {
        pg_texts(url, sql)[0].parse().unwrap()
    }

    /// Every table's rows in the target, by SQL (the migration's notes not counted).
    fn target_counts(url: &str) -> BTreeMap<&'static str, i64> {
        TABLES
            .iter()
            .map(|t| {
                let filter = if t.name == "store_notes" {
                    " WHERE key NOT LIKE 'migrate:%'"
                } else {
                    ""
                };
                (
                    t.name,
                    pg_count(url, &format!("SELECT count(*) FROM {}{filter}", t.name)),
                )
            })
            .collect()
    }

    fn run(
        source: &Source,
        db: &TestDatabase,
        options: Options,
    ) -> Result<MigrationSummary, MigrateError> {
        migrate(source.path(), &db.url(), &options, &mut |_| {})
    }

    fn copied(summary: &MigrationSummary) -> u64 {
        summary.tables.iter().map(|t| t.copied).sum()
    }

    #[test]
    fn copies_every_table_while_the_source_is_open_and_a_second_run_is_a_no_op() {
        let source = Source::new();
        seed(&source);
        let db = TestDatabase::create();
        let mut reports = Vec::new();
        // (the source's store stays open, as a running server's would)
        let summary = migrate(source.path(), &db.url(), &Options::default(), &mut |p| {
            reports.push(*p)
        })
        .unwrap();
        assert!(summary.complete && !summary.resumed);
        let expected = source.counts();
        assert_eq!(target_counts(&db.url()), expected);
        assert_eq!(expected["events"], 48);
        assert_eq!(expected["logs"], 12);
        for table in &summary.tables {
            assert_eq!(table.source_rows as i64, expected[table.table], "{table:?}");
            assert_eq!(table.copied, table.source_rows, "{table:?}");
        }
        assert!(reports
            .iter()
            .any(|p| p.table == "events" && p.finished && p.copied == 48));

        // the types: booleans from 0/1, packed payloads, numbers
        let url = db.url();
        assert_eq!(
            pg_texts(
                &url,
                "SELECT root_failed FROM sessions WHERE root_failed IS NOT NULL"
            ),
            ["t", "t"]
        );
        assert_eq!(
            pg_texts(&url, "SELECT monotonic FROM metric_points ORDER BY seq")[..3],
            ["t", "t", "f"]
        );
        assert_eq!(
            pg_count(
                &url,
                "SELECT count(*) FROM events WHERE packed IS NOT NULL AND cost = 0.25"
            ),
            48
        );
        assert_eq!(
            pg_texts(&url, "SELECT bytes FROM payload_dictionaries"),
            ["\\x00010203"]
        );
        // events in their month's partitions (odd start times in the default one), in the
        // source's order
        assert_eq!(
            pg_count(
                &url,
                "SELECT count(*) FROM pg_class WHERE relname LIKE 'events_20%' AND relkind = 'r'"
            ),
            4
        );
        assert_eq!(pg_count(&url, "SELECT count(*) FROM events_default"), 6);
        let conn = source.conn();
        let mut select = conn
            .prepare(
                "SELECT project_id || '/' || session_id || '/' || id FROM events ORDER BY rowid",
            )
            .unwrap();
        let in_source: Vec<String> = select
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let in_target = pg_texts(
            &url,
            "SELECT project_id || '/' || session_id || '/' || id FROM events ORDER BY seq",
        );
        assert_eq!(in_target, in_source);
        // projects keep their creation order
        let mut select = conn
            .prepare("SELECT id FROM projects ORDER BY rowid")
            .unwrap();
        let projects: Vec<String> = select
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            pg_texts(&url, "SELECT id FROM projects ORDER BY seq"),
            projects
        );

        // again: nothing to copy, nothing copied
        let again = run(&source, &db, Options::default()).unwrap();
        assert!(again.complete && again.resumed);
        assert_eq!(copied(&again), 0);
        assert_eq!(target_counts(&db.url()), expected);
    }

    #[test]
    fn an_interrupted_run_resumes_and_copies_nothing_twice() {
        let source = Source::new();
        seed(&source);
        let db = TestDatabase::create();
        let small = Options {
            batch_rows: 3,
            ..Options::default()
        };
        // stopped after 7 rows, then after 40 more (in the middle of the events)
        let first = run(
            &source,
            &db,
            Options {
                row_limit: Some(7),
                ..small
            },
        )
        .unwrap();
        assert!(!first.complete);
        assert_eq!(copied(&first), 7);
        let second = run(
            &source,
            &db,
            Options {
                row_limit: Some(40),
                ..small
            },
        )
        .unwrap();
        assert!(!second.complete && second.resumed);
        assert_eq!(copied(&second), 40);
        assert_eq!(
            target_counts(&db.url()).values().sum::<i64>(),
            47,
            "every row copied once"
        );
        // two batches by themselves, then the rest
        let before = pg_count(&db.url(), "SELECT count(*) FROM events");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls)
                .await
                .unwrap();
            let driver = tokio::spawn(connection);
            let database = super::source_database(source.path());
            let conn = super::open_source(&database).unwrap();
            let mut migration = super::Migration::start(conn, database, client, &small)
                .await
                .unwrap();
            let events = TABLES.iter().find(|t| t.name == "events").unwrap();
            assert_eq!(migration.copy_batch(events, 3).await.unwrap(), (3, 3));
            assert_eq!(migration.copy_batch(events, 3).await.unwrap(), (3, 3));
            drop(migration);
            let _ = driver.await;
        });
        assert_eq!(
            pg_count(&db.url(), "SELECT count(*) FROM events"),
            before + 6
        );
        let last = run(&source, &db, small).unwrap();
        assert!(last.complete);
        assert_eq!(
            last.tables.iter().map(|t| t.already_present).sum::<u64>(),
            0
        );
        assert_eq!(target_counts(&db.url()), source.counts());
        assert_eq!(copied(&run(&source, &db, small).unwrap()), 0);
    }

    #[test]
    fn a_run_resumed_after_the_source_changed_brings_the_changed_rows_up_to_date() {
        let source = Source::new();
        seed(&source);
        let db = TestDatabase::create();
        let small = Options {
            batch_rows: 4,
            ..Options::default()
        };
        // stopped once the sessions (and more) are copied, before the events
        let first = run(
            &source,
            &db,
            Options {
                row_limit: Some(30),
                ..small
            },
        )
        .unwrap();
        assert!(!first.complete);
        assert!(pg_count(&db.url(), "SELECT count(*) FROM sessions") > 0);

        // meanwhile the source's server stores an event of a copied session, ends another,
        // starts a session whose key sorts before every copied one, and changes a retention
        let store = source.store();
        let project = store.default_project().unwrap().unwrap();
        commit(
            store,
            &[
                Write::CreateEvents {
                    project_id: project.clone(),
                    session_id: "s0".into(),
                    events: vec![event("late", "s0", "2026-01-10T11:00:00.000000+00:00")],
                },
                Write::UpdateSession {
                    project_id: project.clone(),
                    session: SessionRecord {
                        id: "s2".into(),
                        end_time: Some("2026-03-10T10:05:00.000000+00:00".into()),
                        end_state: Some(EndState::Success),
                        ..SessionRecord::default()
                    },
                },
                Write::CreateSession {
                    project_id: project.clone(),
                    session: SessionRecord {
                        id: "0-early".into(),
                        ..SessionRecord::default()
                    },
                },
            ],
        );
        store
            .set_project_retention(&project, Some(Retention::Days(7)))
            .unwrap();

        let last = run(&source, &db, small).unwrap();
        assert!(last.complete && last.resumed);
        let refreshed: BTreeMap<&str, u64> = last
            .tables
            .iter()
            .filter(|t| t.refreshed > 0)
            .map(|t| (t.table, t.refreshed))
            .collect();
        // s0's totals, s2's end and the new session; the retention (the hourly totals were not
        // copied yet, and are copied as they are now)
        assert_eq!(refreshed.get("sessions"), Some(&3), "{refreshed:?}");
        assert_eq!(refreshed.get("projects"), Some(&1), "{refreshed:?}");
        assert_eq!(target_counts(&db.url()), source.counts());
        let sessions = "SELECT string_agg(concat_ws(' ', project_id, id, event_count,
                               input_tokens, CAST(round(cost * 1000) AS INTEGER), end_state, end_time), '; '
                               ORDER BY project_id, id) FROM sessions";
        let in_source: String = source
            .conn()
            .query_row(sessions, [], |row| row.get(0))
            .unwrap();
        assert_eq!(pg_texts(&db.url(), sessions), vec![in_source]);
        let hours = "SELECT string_agg(concat_ws(' ', project_id, hour, model, events, CAST(round(cost * 1000) AS INTEGER)), '; '
                           ORDER BY project_id, hour, model) FROM hourly_totals";
        let in_source: String = source
            .conn()
            .query_row(hours, [], |row| row.get(0))
            .unwrap();
        assert_eq!(pg_texts(&db.url(), hours), vec![in_source]);
        assert_eq!(
            pg_count(
                &db.url(),
                "SELECT retention_days FROM projects WHERE name = 'a'"
            ),
            7
        );
        // and a run after that changes nothing
        let again = run(&source, &db, small).unwrap();
        assert_eq!(again.tables.iter().map(|t| t.refreshed).sum::<u64>(), 0);
        assert_eq!(copied(&again), 0);
    }

    #[test]
    fn a_run_resumed_after_the_source_deleted_rows_takes_them_off_the_target() {
        let source = Source::new();
        seed(&source);
        source
            .conn()
            .execute_batch(
                "INSERT INTO held_spans (trace_id, held_at_ms, bytes, span, claimed_until_ms)
                     VALUES ('t1', 1000, 2, '{}', 0), ('t2', 2000, 2, '{}', 0);",
            )
            .unwrap();
        let db = TestDatabase::create();
        let small = Options {
            batch_rows: 4,
            ..Options::default()
        };
        // everything copied but the last held span
        let total: i64 = source.counts().values().sum();
        let first = run(
            &source,
            &db,
            Options {
                row_limit: Some(total as u64 - 1),
                ..small
            },
        )
        .unwrap();
        assert!(!first.complete);
        assert_eq!(pg_count(&db.url(), "SELECT count(*) FROM held_spans"), 1);

        // meanwhile the source's server expires project b's oldest session (with its events,
        // agent, logs, log records, facets and hourly totals, and the project's old metric
        // points), a key is revoked and the first held span is taken up
        let store = source.store();
        let b = store.find_project("b").unwrap().unwrap();
        let before = source.counts();
        commit(
            store,
            &[Write::ExpireSessions {
                project_id: b.clone(),
                before: "2026-01-01T00:00:00.000000+00:00".into(),
                server_before: None,
                max_rows: 10_000,
            }],
        );
        // (the seed's key hashes are no hex: `revoke_api_key` would not take them by id)
        source
            .conn()
            .execute_batch(
                "DELETE FROM api_keys WHERE key_hash = 'hash-a';
                 DELETE FROM held_spans WHERE trace_id = 't1';",
            )
            .unwrap();
        let after = source.counts();
        let deleted: BTreeMap<&str, i64> = before
            .iter()
            .map(|(table, n)| (*table, n - after[table]))
            .filter(|(_, n)| *n > 0)
            .collect();
        for table in [
            "sessions",
            "events",
            "agents",
            "logs",
            "otel_logs",
            "metric_points",
        ] {
            assert!(deleted.contains_key(table), "{table}: {deleted:?}");
        }

        let last = run(&source, &db, small).unwrap();
        assert!(last.complete && last.resumed);
        let removed: BTreeMap<&str, i64> = last
            .tables
            .iter()
            .filter(|t| t.removed > 0)
            .map(|t| (t.table, t.removed as i64))
            .collect();
        let mut expected = deleted.clone();
        // (the held span deleted was the one copied; the other is copied now)
        expected.insert("held_spans", 1);
        assert_eq!(removed, expected);
        assert_eq!(target_counts(&db.url()), source.counts());
        assert_eq!(
            pg_count(
                &db.url(),
                &format!(
                    "SELECT count(*) FROM events WHERE project_id = '{b}' AND session_id = 's0'"
                )
            ),
            0
        );
        assert_eq!(
            pg_texts(&db.url(), "SELECT string_agg(key_hash, ' ') FROM api_keys"),
            ["hash-b"]
        );
        // and a run after that changes nothing
        let again = run(&source, &db, small).unwrap();
        assert_eq!(again.tables.iter().map(|t| t.removed).sum::<u64>(), 0);
        assert_eq!(copied(&again), 0);
    }

    #[test]
    fn a_target_with_other_data_is_refused() {
        let source = Source::new();
        seed(&source);
        // a database a server has used
        let db = TestDatabase::create();
        db.connect().create_project("theirs").unwrap();
        let err = run(&source, &db, Options::default()).unwrap_err();
        assert!(matches!(err, MigrateError::Refused(_)), "{err}");
        assert!(err.to_string().contains("already holds data"), "{err}");
        assert!(err.to_string().contains("1 projects"), "{err}");
        assert_eq!(pg_count(&db.url(), "SELECT count(*) FROM sessions"), 0);

        // a copy of another store
        let db = TestDatabase::create();
        run(&source, &db, Options::default()).unwrap();
        let other = Source::new();
        other.store().create_project("other").unwrap();
        let err = run(&other, &db, Options::default()).unwrap_err();
        assert!(err.to_string().contains("copy of another store"), "{err}");
    }

    #[test]
    fn a_loosely_stored_value_is_a_clear_error_and_its_batch_is_not_copied() {
        let source = Source::new();
        seed(&source);
        let conn = source.conn();
        // (INTEGER affinity keeps text that is no number as text; 2 is no boolean)
        conn.execute_batch(
            "UPDATE sessions SET event_count = 'many' WHERE id = 's2'
                 AND project_id = (SELECT id FROM projects WHERE name = 'a');",
        )
        .unwrap();
        let db = TestDatabase::create();
        let err = run(&source, &db, Options::default()).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(
                err,
                MigrateError::Value {
                    table: "sessions",
                    column: "event_count",
                    ..
                }
            ),
            "{message}"
        );
        assert!(
            message.contains("\"s2\"") && message.contains("\"many\""),
            "{message}"
        );
        assert_eq!(pg_count(&db.url(), "SELECT count(*) FROM sessions"), 0);

        // text PostgreSQL cannot hold
        conn.execute_batch(
            "UPDATE sessions SET event_count = 8 WHERE event_count = 'many';
             UPDATE events SET name = 'a' || char(0) || 'b' WHERE rowid = 5;",
        )
        .unwrap();
        let err = run(&source, &db, Options::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot copy events row rowid 5: column name holds a NUL character, which \
             PostgreSQL text cannot: \"a\\0b\""
        );
        assert_eq!(pg_count(&db.url(), "SELECT count(*) FROM events"), 0);

        conn.execute_batch(
            "UPDATE events SET name = 'ab' WHERE rowid = 5;
             UPDATE metric_points SET monotonic = 2 WHERE rowid = 3;",
        )
        .unwrap();
        let err = run(&source, &db, Options::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot copy metric_points row rowid 3: column monotonic holds 2, not 0 or 1 (false or true)"
        );
        conn.execute_batch("UPDATE metric_points SET monotonic = 0 WHERE rowid = 3;")
            .unwrap();
        let summary = run(&source, &db, Options::default()).unwrap();
        assert!(summary.complete && summary.resumed);
        assert_eq!(target_counts(&db.url()), source.counts());
    }

    #[test]
    fn a_source_of_another_schema_version_is_refused() {
        let source = Source::new();
        source
            .conn()
            .execute_batch("PRAGMA user_version = 6;")
            .unwrap();
        let db = TestDatabase::create();
        let err = run(&source, &db, Options::default()).unwrap_err();
        assert!(err.to_string().contains("schema version 6"), "{err}");
        let missing = migrate(
            Path::new("/nonexistent/agentops"),
            &db.url(),
            &Options::default(),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(
            missing.to_string().contains("no AgentOps SQLite store"),
            "{missing}"
        );
    }

    /// The tables and columns copied are every one of both schemas (but their own numbering,
    /// and what is PostgreSQL's alone): a column added to the schemas must be added here.
    #[test]
    fn every_table_and_column_of_both_schemas_is_copied() {
        let source = Source::new();
        let conn = source.conn();
        let mut select = conn
            .prepare(
                "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND p.pk = 0
                    OR m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND p.pk > 0
                       AND p.type <> 'INTEGER'
                 ORDER BY 1, 2",
            )
            .unwrap();
        let in_sqlite: Vec<String> = select
            .query_map([], |r| {
                Ok(format!(
                    "{}.{}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut copied: Vec<String> = TABLES
            .iter()
            .flat_map(|t| {
                t.columns
                    .iter()
                    .map(move |(c, _)| format!("{}.{c}", t.name))
            })
            .collect();
        copied.sort();
        assert_eq!(in_sqlite, copied);

        let db = TestDatabase::create();
        drop(db.connect());
        let in_pg = pg_texts(
            &db.url(),
            "SELECT c.table_name || '.' || c.column_name FROM information_schema.columns c
             JOIN pg_class k ON k.relname = c.table_name AND NOT k.relispartition
             WHERE c.table_schema = 'public' AND c.is_identity = 'NO' AND c.column_name <> 'seq'
               AND c.table_name NOT IN ('schema_migrations', 'shared_secrets')
             ORDER BY 1",
        );
        let mut in_pg_sorted = in_pg.clone();
        in_pg_sorted.sort();
        assert_eq!(in_pg_sorted, copied);
    }
}
