//! Retention: a background task that deletes sessions older than their project's retention.
//!
//! A pass runs at start and then every [`Config::retention_interval`](crate::Config): for each
//! project whose retention (its own, else the server's `--retention-days`) is a number of days,
//! it submits [`Write::ExpireSessions`] writes of at most [`PIECE_ROWS`] rows to the writer, one
//! at a time, until nothing old is left. So it never holds the writer longer than a piece of an
//! ingest request would, and ingest requests queued meanwhile are committed between its writes.
//! A full write queue makes it wait and try again (ingest keeps the queue); a failed write (a
//! full disk, say) ends the pass, and the next pass starts over.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;

use crate::error::ApiError;
use crate::store::{Outcome, Retention, Store, Write};
use crate::writer::{WriterHandle, PIECE_ROWS};

/// How long the task waits before submitting again when the write queue is full.
const BUSY_PAUSE: Duration = Duration::from_millis(500);

/// What the retention task has done since the server started (`GET /health` → `retention`).
#[derive(Debug, Default)]
pub struct RetentionStatus {
    /// The server's retention in days; 0 for forever.
    days: AtomicU64,
    /// Passes finished (with or without errors).
    passes: AtomicU64,
    /// Sessions deleted.
    sessions_deleted: AtomicU64,
    /// Rows deleted (events, logs, agents, facets, sessions).
    rows_deleted: AtomicU64,
    /// Why the last pass stopped early, if it did.
    last_error: Mutex<Option<String>>,
}

impl RetentionStatus {
    /// A status for a server whose retention is `retention`.
    pub fn new(retention: Retention) -> Self {
        let status = Self::default();
        status
            .days
            .store(retention.days().map_or(0, u64::from), Ordering::Relaxed);
        status
    }

    /// The status as JSON: `days` (the server's retention, `null` for forever), `passes`,
    /// `sessions_deleted`, `rows_deleted`, `last_error`.
    pub fn to_json(&self) -> Value {
        let days = self.days.load(Ordering::Relaxed);
        let last_error = self
            .last_error
            .lock()
            .map(|e| e.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        json!({
            "days": (days > 0).then_some(days),
            "passes": self.passes.load(Ordering::Relaxed),
            "sessions_deleted": self.sessions_deleted.load(Ordering::Relaxed),
            "rows_deleted": self.rows_deleted.load(Ordering::Relaxed),
            "last_error": last_error,
        })
    }

    fn set_last_error(&self, error: Option<String>) {
        match self.last_error.lock() {
            Ok(mut last) => *last = error,
            Err(poisoned) => *poisoned.into_inner() = error,
        }
    }
}

/// What runs the retention task.
pub struct RetentionTask {
    /// Where the projects and their retention are read.
    pub store: Arc<dyn Store>,
    /// Where the deletions are submitted.
    pub writer: WriterHandle,
    /// The server's retention (a project's own overrides it).
    pub retention: Retention,
    /// Time between passes.
    pub interval: Duration,
    /// Updated as the task goes.
    pub status: Arc<RetentionStatus>,
}

impl RetentionTask {
    /// Runs a pass at once and then every interval, until `stop` turns true (or its sender
    /// is gone); then drops its writer handle, so that the writer can stop.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let stopped = self.pass(&mut stop).await;
            self.status.passes.fetch_add(1, Ordering::Relaxed);
            if stopped {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// One pass over every project; `true` when it stopped because the server is stopping.
    async fn pass(&self, stop: &mut watch::Receiver<bool>) -> bool {
        let store = self.store.clone();
        let projects = match tokio::task::spawn_blocking(move || store.list_projects()).await {
            Ok(Ok(projects)) => projects,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "retention: cannot list the projects");
                self.status.set_last_error(Some(err.to_string()));
                return false;
            }
            Err(err) => {
                tracing::error!(error = %err, "retention: the project listing failed");
                self.status.set_last_error(Some(err.to_string()));
                return false;
            }
        };
        let mut error = None;
        for project in projects {
            let retention = project.effective_retention(self.retention);
            let Some(before) = retention.cutoff(chrono::Utc::now()) else {
                continue;
            };
            match self.expire(&project.id, &before, stop).await {
                Ok((0, 0)) => {}
                Ok((sessions, rows)) => {
                    tracing::info!(project = %project.id, %retention, sessions, rows, "retention: deleted old sessions");
                }
                Err(Stop::Stopping) => return true,
                Err(Stop::Failed(err)) => {
                    let detail = match &err {
                        ApiError::Internal(d) | ApiError::StorageUnavailable(d) => d.clone(),
                        other => other.to_string(),
                    };
                    tracing::warn!(project = %project.id, error = %detail, "retention: deleting old sessions failed; the next pass tries again");
                    error = Some(detail);
                }
            }
        }
        self.status.set_last_error(error);
        false
    }

    /// Deletes the project's sessions older than `before`, a bounded write at a time; the
    /// sessions and rows deleted.
    async fn expire(
        &self,
        project_id: &str,
        before: &str,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(usize, usize), Stop> {
        let (mut sessions, mut rows) = (0, 0);
        loop {
            if *stop.borrow() {
                return Err(Stop::Stopping);
            }
            let write = Write::ExpireSessions {
                project_id: project_id.to_owned(),
                before: before.to_owned(),
                server_before: self.retention.cutoff(chrono::Utc::now()),
                max_rows: PIECE_ROWS,
            };
            match self.writer.submit(write).await {
                Ok(Outcome::Expired {
                    sessions: 0,
                    rows: 0,
                }) => return Ok((sessions, rows)),
                Ok(Outcome::Expired {
                    sessions: s,
                    rows: r,
                }) => {
                    sessions += s;
                    rows += r;
                    self.status
                        .sessions_deleted
                        .fetch_add(s as u64, Ordering::Relaxed);
                    self.status
                        .rows_deleted
                        .fetch_add(r as u64, Ordering::Relaxed);
                }
                Ok(other) => {
                    return Err(Stop::Failed(ApiError::Internal(format!(
                        "unexpected outcome of a retention write: {other:?}"
                    ))))
                }
                Err(ApiError::Busy) => {
                    // Ingest has the queue: let it be, and come back.
                    tokio::select! {
                        _ = tokio::time::sleep(BUSY_PAUSE) => {}
                        _ = stop.changed() => return Err(Stop::Stopping),
                    }
                }
                Err(ApiError::ShuttingDown) => return Err(Stop::Stopping),
                Err(err) => return Err(Stop::Failed(err)),
            }
            tokio::task::yield_now().await;
        }
    }
}

/// Why deleting stopped before nothing old was left.
enum Stop {
    /// The server is stopping.
    Stopping,
    /// A write failed.
    Failed(ApiError),
}
