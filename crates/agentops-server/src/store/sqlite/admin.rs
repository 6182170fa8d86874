//! Projects (and their own retention) and API keys (stored as hashes; listed by the start of
//! their hash).

use agentops_core::timestamp::now;
use rusqlite::{params, Connection, OptionalExtension};

use crate::store::{AdminError, ApiKeyInfo, ProjectInfo, Retention, StoreError};

/// Creates a project; its id.
pub(super) fn create_project(conn: &Connection, name: &str) -> Result<String, StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    conn.execute(
        "INSERT INTO projects (id, name, created_at) VALUES (?1, ?2, ?3)",
        params![id, name, now()],
    )?;
    Ok(id)
}

/// The first project created, if any.
pub(super) fn default_project(conn: &Connection) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id FROM projects ORDER BY created_at, rowid LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?)
}

/// The project with this id or name (the oldest, should several have the name).
pub(super) fn find_project(
    conn: &Connection,
    id_or_name: &str,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM projects WHERE id = ?1 OR name = ?1 ORDER BY created_at LIMIT 1",
        )?
        .query_row([id_or_name], |r| r.get(0))
        .optional()?)
}

/// Stores a key hash for a project; `false` if it was already stored for that project,
/// [`AdminError::Forbidden`] if for another.
pub(super) fn add_api_key(
    conn: &Connection,
    project_id: &str,
    key_hash: &str,
) -> Result<bool, AdminError> {
    if let Some(existing) = conn
        .query_row(
            "SELECT project_id FROM api_keys WHERE key_hash = ?1",
            [key_hash],
            |r| r.get::<_, String>(0),
        )
        .optional()?
    {
        if existing != project_id {
            return Err(AdminError::Forbidden(
                "this API key belongs to another project".into(),
            ));
        }
        return Ok(false);
    }
    conn.execute(
        "INSERT INTO api_keys (key_hash, project_id, created_at) VALUES (?1, ?2, ?3)",
        params![key_hash, project_id, now()],
    )?;
    Ok(true)
}

/// How many API keys exist.
pub(super) fn api_key_count(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM api_keys", [], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// The project a key hash belongs to.
pub(super) fn project_for_key(
    conn: &Connection,
    key_hash: &str,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT project_id FROM api_keys WHERE key_hash = ?1")?
        .query_row([key_hash], |r| r.get(0))
        .optional()?)
}

/// Every API key, oldest first.
pub(super) fn list_api_keys(conn: &Connection) -> Result<Vec<ApiKeyInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT substr(k.key_hash, 1, 12), k.project_id, COALESCE(p.name, ''), k.created_at
         FROM api_keys k LEFT JOIN projects p ON p.id = k.project_id
         ORDER BY k.created_at, k.rowid",
    )?;
    let keys = stmt
        .query_map([], |r| {
            Ok(ApiKeyInfo {
                id: r.get(0)?,
                project_id: r.get(1)?,
                project_name: r.get(2)?,
                created_at: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(keys)
}

/// Deletes the one key whose hash starts with `id` (at least 8 hex digits); the key's project.
pub(super) fn revoke_api_key(conn: &Connection, id: &str) -> Result<String, AdminError> {
    let id = crate::store::key_id_prefix(id)?;
    let pattern = format!("{id}%");
    let matches: Vec<(String, String)> = conn
        .prepare("SELECT key_hash, project_id FROM api_keys WHERE key_hash LIKE ?1")?
        .query_map([&pattern], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    match matches.as_slice() {
        [] => Err(AdminError::NotFound(format!("no API key with id {id}"))),
        [(hash, project)] => {
            conn.execute("DELETE FROM api_keys WHERE key_hash = ?1", [hash])?;
            Ok(project.clone())
        }
        several => Err(AdminError::Invalid(format!(
            "{} keys have ids starting with {id}: give more digits",
            several.len()
        ))),
    }
}

/// Every project, oldest first.
pub(super) fn list_projects(conn: &Connection) -> Result<Vec<ProjectInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, created_at, retention_days FROM projects ORDER BY created_at, rowid",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(id, name, created_at, days)| {
            let retention = crate::store::retention_from_days(days).ok_or_else(|| {
                StoreError::Corrupt(format!("project {id} has retention_days {days:?}"))
            })?;
            Ok(ProjectInfo {
                id,
                name,
                created_at,
                retention,
            })
        })
        .collect()
}

/// Sets a project's own retention (`None`: the server's).
pub(super) fn set_project_retention(
    conn: &Connection,
    project_id: &str,
    retention: Option<Retention>,
) -> Result<(), AdminError> {
    let days: Option<i64> = retention.map(|r| r.days().map_or(0, i64::from));
    let changed = conn.execute(
        "UPDATE projects SET retention_days = ?2 WHERE id = ?1",
        params![project_id, days],
    )?;
    if changed == 0 {
        return Err(AdminError::NotFound(format!(
            "no project with id {project_id}"
        )));
    }
    Ok(())
}
