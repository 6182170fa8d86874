//! `agentops backup FILE`: an online copy of the database (SQLite's backup API), progress on
//! standard error.

use std::io::Write as _;
use std::path::Path;

use agentops_server::store::sqlite::backup::{backup, BackupProgress, DEFAULT_PAGES_PER_STEP};
use anyhow::Context;

/// Copies `database` into the new file `file`; what to print when done.
pub fn run(database: &Path, file: &Path) -> anyhow::Result<String> {
    let mut last_percent = None;
    let mut stderr = std::io::stderr();
    let summary = backup(
        database,
        file,
        DEFAULT_PAGES_PER_STEP,
        |p: BackupProgress| {
            let percent = (p.copied * 100).checked_div(p.total).unwrap_or(100);
            if last_percent != Some(percent) {
                last_percent = Some(percent);
                let _ = writeln!(
                    stderr,
                    "backup: {} of {} pages ({percent}%)",
                    p.copied, p.total
                );
            }
        },
    )
    .with_context(|| {
        format!(
            "backup of {} into {} failed",
            database.display(),
            file.display()
        )
    })?;
    Ok(format!(
        "Backed up {} into {} ({} pages, {} bytes). To restore: stop the server, delete {db}-wal and {db}-shm in the data directory, and put the copy in place as {db}.\n",
        database.display(),
        file.display(),
        summary.pages,
        summary.bytes,
        db = agentops_server::DATABASE_FILE
    ))
}
