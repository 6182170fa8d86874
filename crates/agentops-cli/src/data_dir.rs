//! Where the offline commands (`keys`, `projects`, `create-project`, `backup`) find the store:
//! the PostgreSQL database of `--database-url` when given, else the SQLite database that
//! `agentops serve --data-dir` keeps (refusing a directory without one, but for
//! `create-project`).

use std::path::{Path, PathBuf};

use agentops_server::store::postgres::PgStore;
use agentops_server::store::sqlite::SqliteStore;
use agentops_server::store::Store;
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

/// Where an offline command finds the store: `--database-url`, else `--data-dir`.
#[derive(clap::Args, Debug)]
pub struct StoreArgs {
    /// Data directory.
    #[arg(long, global = true, env = "AGENTOPS_DATA_DIR", default_value = agentops_server::config::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// The PostgreSQL store of `serve --database-url`, instead of the data directory.
    #[arg(
        long,
        global = true,
        env = "AGENTOPS_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
}

impl StoreArgs {
    /// The store at `--database-url`, else that of an existing data directory.
    pub fn open(&self) -> anyhow::Result<Box<dyn Store>> {
        if let Some(url) = &self.database_url {
            return connect(url);
        }
        let database = existing_database(&self.data_dir)?;
        let store = SqliteStore::open(&database)
            .with_context(|| format!("cannot open {}", database.display()))?;
        Ok(Box::new(store))
    }

    /// The store at `--database-url`, else that of the data directory, created when missing.
    pub fn open_or_create(&self) -> anyhow::Result<Box<dyn Store>> {
        if let Some(url) = &self.database_url {
            return connect(url);
        }
        let data_dir = &self.data_dir;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
        let store = SqliteStore::open(&data_dir.join(agentops_server::DATABASE_FILE))
            .context("cannot open the store")?;
        Ok(Box::new(store))
    }
}

/// The PostgreSQL store at `url`.
fn connect(url: &str) -> anyhow::Result<Box<dyn Store>> {
    if !agentops_server::store::postgres::is_postgres_url(url) {
        bail!("--database-url / AGENTOPS_DATABASE_URL must be a postgres:// URL");
    }
    let store = PgStore::connect(url).context("cannot open the PostgreSQL store")?;
    Ok(Box::new(store))
}
