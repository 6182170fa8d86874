//! Creating and dropping whole databases on a PostgreSQL server: what a first deployment and
//! the tests need before [`super::PgStore::connect`] can open one.

use super::pg_error;
use crate::store::StoreError;

/// The URL of the same server's maintenance database `postgres`, and the database `url`
/// names.
fn split(url: &str) -> Result<(String, String), StoreError> {
    let invalid = || StoreError::Config(format!("{} names no database", super::redact(url)));
    // (the query may hold slashes of its own: `sslrootcert=/etc/ca.pem`)
    let (path, query) = match url.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (url, None),
    };
    let (base, name) = path.rsplit_once('/').ok_or_else(invalid)?;
    if base.ends_with('/') || base.ends_with(':') {
        return Err(invalid());
    }
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(StoreError::Config(format!(
            "database name {name:?}: use letters, digits and _"
        )));
    }
    let maintenance = match query {
        Some(query) => format!("{base}/postgres?{query}"),
        None => format!("{base}/postgres"),
    };
    Ok((maintenance, name.to_string()))
}

/// Runs `sql` (made from the database's name) on the server's maintenance database.
fn on_server(url: &str, sql: impl FnOnce(&str) -> String) -> Result<u64, StoreError> {
    let (maintenance, name) = split(url)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (client, driver) = super::tls::connect(&maintenance).await?;
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(pg_error)?
            .is_some();
        let statement = sql(&name);
        let done = match (exists, statement.starts_with("CREATE")) {
            (false, true) | (true, false) => {
                client.batch_execute(&statement).await.map_err(pg_error)?;
                1
            }
            _ => 0,
        };
        drop(client);
        let _ = driver.await;
        Ok(done)
    })
}

/// Creates the database `url` names unless it exists; whether it created it.
pub fn create_database_if_missing(url: &str) -> Result<bool, StoreError> {
    on_server(url, |name| format!("CREATE DATABASE {name}")).map(|n| n == 1)
}

/// Drops the database `url` names, closing its connections, if it exists.
pub fn drop_database(url: &str) -> Result<(), StoreError> {
    on_server(url, |name| format!("DROP DATABASE {name} WITH (FORCE)")).map(|_| ())
}

/// For test harnesses: the PostgreSQL database the test server of data directory `dir`
/// stores in when `AGENTOPS_TEST_STORE` is `postgres` (`scripts/test` runs the server suites
/// that way too), created when missing; `None` (SQLite) when it is unset or `sqlite`. The name
/// comes from `dir`, so a server restarted on the same directory finds its data again; the
/// server is `AGENTOPS_TEST_DATABASE_URL`'s (default: the local one).
///
/// # Panics
/// When `AGENTOPS_TEST_STORE` has another value or the database cannot be created: a test
/// meant to run on PostgreSQL must fail, not fall back.
#[doc(hidden)]
pub fn test_database_for(dir: &std::path::Path) -> Option<String> {
    match std::env::var("AGENTOPS_TEST_STORE").as_deref() {
        Ok("postgres") => {}
        Ok("sqlite") | Err(_) => return None,
        Ok(other) => panic!("AGENTOPS_TEST_STORE={other:?}: expected sqlite or postgres"),
    }
    let server = std::env::var("AGENTOPS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let hash = dir
        .to_string_lossy()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let base = server
        .rsplit_once('/')
        .map_or(server.as_str(), |(base, _)| base);
    let url = format!("{base}/agentops_it_{hash:016x}");
    create_database_if_missing(&url)
        .unwrap_or_else(|e| panic!("cannot create the test database {url}: {e}"));
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn the_maintenance_database_is_on_the_same_server() {
        assert_eq!(
            split("postgres://u@h:5/app?sslmode=disable").unwrap(),
            (
                "postgres://u@h:5/postgres?sslmode=disable".into(),
                "app".into()
            )
        );
        assert_eq!(
            split("postgres://u@h:5/app?sslmode=require&sslrootcert=/etc/ca.pem").unwrap(),
            (
                "postgres://u@h:5/postgres?sslmode=require&sslrootcert=/etc/ca.pem".into(),
                "app".into()
            )
        );
        assert!(split("postgres://u@h:5/").is_err());
        assert!(split("postgres://u@h:5?sslmode=require").is_err());
        assert!(split("postgres://u@h:5/a;drop").is_err());
    }
}
