//! Helpers of the PostgreSQL store's tests: a new database per test, dropped at its end.
//!
//! The server is the one `AGENTOPS_TEST_DATABASE_URL` names, by default the machine's own
//! (`postgres://postgres@127.0.0.1:5432/postgres`). A test fails, never skips, when it cannot
//! be reached: `scripts/test` makes sure it runs.

use super::PgStore;

/// The server tests make their databases on (any database of it: new ones are created).
pub(crate) fn test_server_url() -> String {
    std::env::var("AGENTOPS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database made for one test; dropped (with whatever is connected to it) when this is.
pub(crate) struct TestDatabase {
    server: String,
    name: String,
}

impl TestDatabase {
    /// Creates a database with a new name on [`test_server_url`].
    pub(crate) fn create() -> TestDatabase {
        let server = test_server_url();
        let name = format!("agentops_test_{}", uuid::Uuid::new_v4().simple());
        let db = TestDatabase { server, name };
        super::create_database_if_missing(&db.url()).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} cannot make a test database: {e} (the PostgreSQL tests need \
                 it: start it, or set AGENTOPS_TEST_DATABASE_URL)",
                db.server
            )
        });
        db
    }

    /// Its URL.
    pub(crate) fn url(&self) -> String {
        let base = match self.server.rfind('/') {
            Some(slash) if slash > "postgres://".len() => &self.server[..slash],
            _ => self.server.as_str(),
        };
        format!("{base}/{}", self.name)
    }

    /// A store on it (migrating it when new).
    pub(crate) fn connect(&self) -> PgStore {
        PgStore::connect(&self.url()).unwrap_or_else(|e| {
            panic!(
                "cannot open the test database {}: {e} (is PostgreSQL running? set \
                 AGENTOPS_TEST_DATABASE_URL)",
                self.url()
            )
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = super::drop_database(&self.url());
    }
}

/// A store on a new database, and that database (drop it last).
pub(crate) fn temp_store() -> (PgStore, TestDatabase) {
    let db = TestDatabase::create();
    (db.connect(), db)
}
