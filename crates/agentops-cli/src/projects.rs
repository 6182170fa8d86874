//! `agentops projects list | set-retention`: projects and how long their sessions are kept,
//! in the data directory (the server may be running; it applies a retention at its next pass).

use std::fmt::Write as _;

use agentops_server::store::{AdminStore, Retention, RetentionParseError};
use anyhow::Context;

/// A project's retention as given on the command line: days, `forever`, or `default` (the
/// server's `--retention-days`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectRetention(pub Option<Retention>);

impl std::str::FromStr for ProjectRetention {
    type Err = RetentionParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim().eq_ignore_ascii_case("default") {
            return Ok(Self(None));
        }
        text.parse().map(|r| Self(Some(r)))
    }
}

/// How a project's retention reads in the list.
fn describe(retention: Option<Retention>) -> String {
    match retention {
        None => "server default".into(),
        Some(retention) => retention.to_string(),
    }
}

pub fn list(store: &dyn AdminStore) -> anyhow::Result<String> {
    let projects = store.list_projects()?;
    if projects.is_empty() {
        return Ok("No projects.\n".into());
    }
    let width = projects
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!(
        "{:<36}  {:<width$}  {:<14}  CREATED\n",
        "PROJECT ID", "NAME", "RETENTION"
    );
    for p in projects {
        let _ = writeln!(
            out,
            "{:<36}  {:<width$}  {:<14}  {}",
            p.id,
            p.name,
            describe(p.retention),
            p.created_at
        );
    }
    Ok(out)
}

pub fn set_retention(
    store: &dyn AdminStore,
    project: &str,
    retention: ProjectRetention,
) -> anyhow::Result<String> {
    let project_id = store
        .find_project(project)?
        .with_context(|| format!("no project with id or name {project:?}"))?;
    store.set_project_retention(&project_id, retention.0)?;
    let what = match retention.0 {
        None => "follow the server's --retention-days".to_owned(),
        Some(Retention::Forever) => "be kept forever".to_owned(),
        Some(days) => format!("be deleted after {days}"),
    };
    Ok(format!(
        "Sessions of project {project_id} will {what}. A running server applies this at its next retention pass (hourly) or restart.\n"
    ))
}
