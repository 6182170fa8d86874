//! `agentops keys create | list | revoke`: API keys, managed in the data directory (the server
//! may be running; a revoked key stops working on it within `KEY_CACHE_TTL`).

use std::fmt::Write as _;

use agentops_server::store::AdminStore;
use anyhow::Context;

pub fn create(store: &dyn AdminStore, project: Option<&str>) -> anyhow::Result<String> {
    let project_id = match project {
        Some(wanted) => store
            .find_project(wanted)?
            .with_context(|| format!("no project with id or name {wanted:?}"))?,
        None => store
            .default_project()?
            .context("the store has no project yet: start `agentops serve` once")?,
    };
    let key = agentops_server::create_api_key(store, &project_id)?;
    let id = &agentops_server::auth::hash_api_key(&key)[..12];
    Ok(format!(
        "Created an API key for project {project_id} (shown only once, stored hashed):\n  AGENTOPS_API_KEY={key}\n  key id: {id}\n"
    ))
}

pub fn list(store: &dyn AdminStore) -> anyhow::Result<String> {
    let keys = store.list_api_keys()?;
    if keys.is_empty() {
        return Ok("No API keys.\n".into());
    }
    let width = keys
        .iter()
        .map(|k| k.project_name.len())
        .max()
        .unwrap_or(0)
        .max(7);
    let mut out = format!(
        "{:<12}  {:<width$}  {:<36}  CREATED\n",
        "KEY ID", "PROJECT", "PROJECT ID"
    );
    for key in keys {
        let _ = writeln!(
            out,
            "{:<12}  {:<width$}  {:<36}  {}",
            key.id, key.project_name, key.project_id, key.created_at
        );
    }
    Ok(out)
}

pub fn revoke(store: &dyn AdminStore, id: &str) -> anyhow::Result<String> {
    let project = store.revoke_api_key(id)?;
    Ok(format!(
        "Revoked key {id} of project {project}. A running server refuses it within {} s.\n",
        agentops_server::state::KEY_CACHE_TTL.as_secs()
    ))
}
