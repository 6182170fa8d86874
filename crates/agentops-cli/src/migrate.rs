//! `agentops migrate --from … --to postgres://…`: copies a SQLite store into PostgreSQL,
//! progress on standard error, a summary on standard output.

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use agentops_server::store::migrate::{migrate, MigrateError, MigrationSummary, Options, Progress};
use agentops_server::store::postgres::redact;
use anyhow::bail;

/// How often the progress line is redrawn at most.
const REDRAW: Duration = Duration::from_millis(250);

/// Copies the store at `from` (a data directory or its database file) into the PostgreSQL
/// database at `to`, `batch_rows` rows per transaction; what to print when done.
pub fn run(from: &Path, to: &str, batch_rows: usize) -> anyhow::Result<String> {
    if !agentops_server::store::postgres::is_postgres_url(to) {
        bail!("--to must be a postgres:// (or postgresql://) URL");
    }
    if batch_rows == 0 {
        bail!("--batch-rows must be at least 1");
    }
    let options = Options {
        batch_rows,
        ..Options::default()
    };
    let mut line = ProgressLine::new();
    let summary = migrate(from, to, &options, &mut |p| line.show(p));
    line.end();
    let summary = summary.map_err(|err| {
        // (a refusal copied nothing, and a mismatch is not mended by running again)
        let hint = match err {
            MigrateError::Refused(_) | MigrateError::Mismatch(_) => "",
            MigrateError::Value { .. } => " (mend that row, then run the same command to resume)",
            _ => " (run the same command again to resume)",
        };
        anyhow::Error::new(err).context(format!(
            "migrating {} into {} failed{hint}",
            from.display(),
            redact(to)
        ))
    })?;
    Ok(report(&summary, to))
}

/// The progress on standard error: one line redrawn in place on a terminal, else a line per
/// finished table.
struct ProgressLine {
    terminal: bool,
    last_draw: Option<Instant>,
    /// Whether a line is drawn and not yet ended.
    open: bool,
}

impl ProgressLine {
    fn new() -> Self {
        ProgressLine {
            terminal: std::io::stderr().is_terminal(),
            last_draw: None,
            open: false,
        }
    }

    fn show(&mut self, p: &Progress) {
        let text = format!(
            "migrate: {:<20} {:>12} / {} rows",
            p.table, p.copied, p.total
        );
        let mut stderr = std::io::stderr();
        if !self.terminal {
            if p.finished {
                let _ = writeln!(stderr, "{text}");
            }
            return;
        }
        let due = self.last_draw.is_none_or(|at| at.elapsed() >= REDRAW);
        if p.finished || due {
            let _ = write!(stderr, "\r{text}\x1b[K");
            self.open = true;
            self.last_draw = Some(Instant::now());
        }
        if p.finished {
            let _ = writeln!(stderr);
            self.open = false;
            // (the next table's first line is drawn at once)
            self.last_draw = None;
        }
        let _ = stderr.flush();
    }

    /// Ends a line left open (by an error mid-table).
    fn end(&mut self) {
        if self.open {
            let _ = writeln!(std::io::stderr());
            self.open = false;
        }
    }
}

/// The summary: per table, the source's and the target's rows and what this run copied.
fn report(summary: &MigrationSummary, to: &str) -> String {
    let mut out = format!(
        "{:<22} {:>12} {:>12} {:>12}\n",
        "TABLE", "SOURCE", "TARGET", "COPIED NOW"
    );
    for t in &summary.tables {
        out.push_str(&format!(
            "{:<22} {:>12} {:>12} {:>12}\n",
            t.table, t.source_rows, t.target_rows, t.copied
        ));
    }
    let total: u64 = summary.tables.iter().map(|t| t.source_rows).sum();
    let now: u64 = summary.tables.iter().map(|t| t.copied).sum();
    let refreshed: u64 = summary.tables.iter().map(|t| t.refreshed).sum();
    if refreshed > 0 {
        out.push_str(&format!(
            "{refreshed} rows an earlier run copied were brought up to date (the source changed \
             between the runs).\n"
        ));
    }
    let removed: u64 = summary.tables.iter().map(|t| t.removed).sum();
    if removed > 0 {
        out.push_str(&format!(
            "{removed} rows an earlier run copied were taken off the target (the source deleted \
             them between the runs: retention, a revoked key).\n"
        ));
    }
    let how = if summary.resumed {
        "resumed an earlier run"
    } else {
        "new copy"
    };
    out.push_str(&format!(
        "Migrated {} into {} ({how}): {total} rows in {} tables, {now} copied by this run; \
         counts match.\n",
        summary.source.display(),
        redact(to),
        summary.tables.len()
    ));
    out.push_str(
        "Serve it with `agentops serve --database-url <URL>` (or AGENTOPS_DATABASE_URL). Clients \
         fetch new tokens with their API keys. What a server writes to the SQLite store after \
         the copy began is not in it: stop that server before migrating, to cut over.\n",
    );
    out
}
