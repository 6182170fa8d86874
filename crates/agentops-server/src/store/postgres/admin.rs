//! Projects (and their own retention), API keys (stored as hashes; listed by the start of
//! their hash) and the secrets every replica shares.

use agentops_core::timestamp::now;
use tokio_postgres::Client;

use super::pg_error;
use crate::store::{AdminError, ApiKeyInfo, ProjectInfo, Retention, StoreError};

/// Creates a project; its id.
pub(super) async fn create_project(client: &Client, name: &str) -> Result<String, StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    client
        .execute(
            "INSERT INTO projects (id, name, created_at) VALUES ($1, $2, $3)",
            &[&id, &name, &now()],
        )
        .await
        .map_err(pg_error)?;
    Ok(id)
}

/// The first project created, if any.
pub(super) async fn default_project(client: &Client) -> Result<Option<String>, StoreError> {
    let row = client
        .query_opt(
            "SELECT id FROM projects ORDER BY created_at, seq LIMIT 1",
            &[],
        )
        .await
        .map_err(pg_error)?;
    Ok(row.map(|r| r.get(0)))
}

/// The advisory lock replicas starting together take to create the default project once.
const BOOTSTRAP_LOCK: i64 = 0x6167_656e_7473_0001;

/// The first project created, or a new one named `name` when there is none, under
/// [`BOOTSTRAP_LOCK`]: replicas starting at once on a new database make one project, not one
/// each.
pub(super) async fn default_project_or_create(
    client: &mut Client,
    name: &str,
) -> Result<String, StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&BOOTSTRAP_LOCK])
        .await
        .map_err(pg_error)?;
    let existing = tx
        .query_opt(
            "SELECT id FROM projects ORDER BY created_at, seq LIMIT 1",
            &[],
        )
        .await
        .map_err(pg_error)?;
    let id = match existing {
        Some(row) => row.get(0),
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            tx.execute(
                "INSERT INTO projects (id, name, created_at) VALUES ($1, $2, $3)",
                &[&id, &name, &now()],
            )
            .await
            .map_err(pg_error)?;
            id
        }
    };
    tx.commit().await.map_err(pg_error)?;
    Ok(id)
}

/// The project with this id or name (the oldest, should several have the name).
pub(super) async fn find_project(
    client: &Client,
    id_or_name: &str,
) -> Result<Option<String>, StoreError> {
    let row = client
        .query_opt(
            "SELECT id FROM projects WHERE id = $1 OR name = $1 ORDER BY created_at, seq LIMIT 1",
            &[&id_or_name],
        )
        .await
        .map_err(pg_error)?;
    Ok(row.map(|r| r.get(0)))
}

/// Stores a key hash for a project; `false` if it was already stored for that project,
/// [`AdminError::Forbidden`] if for another.
pub(super) async fn add_api_key(
    client: &Client,
    project_id: &str,
    key_hash: &str,
) -> Result<bool, AdminError> {
    let inserted = client
        .execute(
            "INSERT INTO api_keys (key_hash, project_id, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (key_hash) DO NOTHING",
            &[&key_hash, &project_id, &now()],
        )
        .await
        .map_err(pg_error)?;
    if inserted == 1 {
        return Ok(true);
    }
    match project_for_key(client, key_hash).await? {
        Some(owner) if owner != project_id => Err(AdminError::Forbidden(
            "this API key belongs to another project".into(),
        )),
        _ => Ok(false),
    }
}

/// How many API keys exist.
pub(super) async fn api_key_count(client: &Client) -> Result<u64, StoreError> {
    let row = client
        .query_one("SELECT COUNT(*) FROM api_keys", &[])
        .await
        .map_err(pg_error)?;
    Ok(row.get::<_, i64>(0).max(0) as u64)
}

/// The project a key hash belongs to.
pub(super) async fn project_for_key(
    client: &Client,
    key_hash: &str,
) -> Result<Option<String>, StoreError> {
    let row = client
        .query_opt(
            "SELECT project_id FROM api_keys WHERE key_hash = $1",
            &[&key_hash],
        )
        .await
        .map_err(pg_error)?;
    Ok(row.map(|r| r.get(0)))
}

/// Every API key, oldest first.
pub(super) async fn list_api_keys(client: &Client) -> Result<Vec<ApiKeyInfo>, StoreError> {
    let rows = client
        .query(
            "SELECT substr(k.key_hash, 1, 12), k.project_id, COALESCE(p.name, ''), k.created_at
             FROM api_keys k LEFT JOIN projects p ON p.id = k.project_id
             ORDER BY k.created_at, k.seq",
            &[],
        )
        .await
        .map_err(pg_error)?;
    Ok(rows
        .iter()
        .map(|r| ApiKeyInfo {
            id: r.get(0),
            project_id: r.get(1),
            project_name: r.get(2),
            created_at: r.get(3),
        })
        .collect())
}

/// Deletes the one key whose hash starts with `id` (at least 8 hex digits); the key's project.
pub(super) async fn revoke_api_key(client: &Client, id: &str) -> Result<String, AdminError> {
    let id = crate::store::key_id_prefix(id)?;
    let pattern = format!("{id}%");
    let rows = client
        .query(
            "SELECT key_hash, project_id FROM api_keys WHERE key_hash LIKE $1",
            &[&pattern],
        )
        .await
        .map_err(pg_error)?;
    match rows.as_slice() {
        [] => Err(AdminError::NotFound(format!("no API key with id {id}"))),
        [row] => {
            let hash: String = row.get(0);
            client
                .execute("DELETE FROM api_keys WHERE key_hash = $1", &[&hash])
                .await
                .map_err(pg_error)?;
            Ok(row.get(1))
        }
        several => Err(AdminError::Invalid(format!(
            "{} keys have ids starting with {id}: give more digits",
            several.len()
        ))),
    }
}

/// Every project, oldest first.
pub(super) async fn list_projects(client: &Client) -> Result<Vec<ProjectInfo>, StoreError> {
    let rows = client
        .query(
            "SELECT id, name, created_at, retention_days FROM projects ORDER BY created_at, seq",
            &[],
        )
        .await
        .map_err(pg_error)?;
    rows.iter()
        .map(|r| {
            let id: String = r.get(0);
            let days: Option<i64> = r.get(3);
            let retention = crate::store::retention_from_days(days).ok_or_else(|| {
                StoreError::Corrupt(format!("project {id} has retention_days {days:?}"))
            })?;
            Ok(ProjectInfo {
                id,
                name: r.get(1),
                created_at: r.get(2),
                retention,
            })
        })
        .collect()
}

/// Sets a project's own retention (`None`: the server's).
pub(super) async fn set_project_retention(
    client: &Client,
    project_id: &str,
    retention: Option<Retention>,
) -> Result<(), AdminError> {
    let days: Option<i64> = retention.map(|r| r.days().map_or(0, i64::from));
    let changed = client
        .execute(
            "UPDATE projects SET retention_days = $2 WHERE id = $1",
            &[&project_id, &days],
        )
        .await
        .map_err(pg_error)?;
    if changed == 0 {
        return Err(AdminError::NotFound(format!(
            "no project with id {project_id}"
        )));
    }
    Ok(())
}

/// The shared secret named `name`: the one stored, or `candidate` once stored as it (when
/// replicas start together, the first insert wins and every replica reads that one).
pub(super) async fn shared_secret(
    client: &Client,
    name: &str,
    candidate: &[u8],
) -> Result<Vec<u8>, StoreError> {
    client
        .execute(
            "INSERT INTO shared_secrets (name, value, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
            &[&name, &candidate, &now()],
        )
        .await
        .map_err(pg_error)?;
    let row = client
        .query_one("SELECT value FROM shared_secrets WHERE name = $1", &[&name])
        .await
        .map_err(pg_error)?;
    Ok(row.get(0))
}
