//! The data directory of the offline commands (`keys`, `projects`, `backup`): they find the
//! database where `agentops serve --data-dir` keeps it, and refuse a directory without one.

use std::path::{Path, PathBuf};

use agentops_server::store::sqlite::SqliteStore;
use anyhow::{bail, Context};

/// The database of an existing data directory.
pub fn existing_database(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let database = data_dir.join(agentops_server::DATABASE_FILE);
    if !database.exists() {
        bail!(
            "no AgentOps data in {}: start `agentops serve` once there, or pass --data-dir / AGENTOPS_DATA_DIR",
            data_dir.display()
        );
    }
    Ok(database)
}

/// Opens the store of an existing data directory.
pub fn open_store(data_dir: &Path) -> anyhow::Result<SqliteStore> {
    let database = existing_database(data_dir)?;
    SqliteStore::open(&database).with_context(|| format!("cannot open {}", database.display()))
}
