//! The write path: a bounded queue into one writer thread that commits in batches.
//!
//! Request handlers [`WriterHandle::submit`] a [`Write`] and wait; the writer thread takes
//! what is queued (up to a batch size), commits it in one transaction (group commit), and only
//! then answers each waiting request. So a request is acknowledged only once its data is durable,
//! and a full queue is refused at once ([`ApiError::Busy`], HTTP 503 with `Retry-After`) rather
//! than lost.
//!
//! No request holds the writer for long: a large write is cut into pieces of
//! [`PIECE_ROWS`] rows ([`Write::into_pieces`]), and a transaction takes a piece of each
//! waiting request in turn, round after round, until it holds [`TRANSACTION_ROWS`] rows. A project's small
//! write waits for at most about one such transaction, whatever another project sends. A
//! request is answered once its last piece is committed; if a piece fails, the request gets
//! the error and its earlier pieces stay stored (ids make a retry store nothing twice).

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::server_metrics::WriterMetrics;
use crate::store::{Outcome, Store, StoreError, Write};

/// Rows in one piece of a large write.
pub const PIECE_ROWS: usize = 500;
/// Rows a transaction takes before it is committed (at least one piece).
pub const TRANSACTION_ROWS: usize = 1_000;
/// Writes of at most this many rows are packed on the request's own task; larger ones on the
/// blocking pool, so that they do not hold up the small requests sharing a thread with them.
const PACK_INLINE_ROWS: usize = 64;

type Reply = oneshot::Sender<Result<Outcome, StoreError>>;

struct Job {
    write: Write,
    reply: Reply,
}

/// A request being written: its pieces not committed yet, and what the committed ones did.
struct InFlight {
    pieces: VecDeque<Write>,
    done: Option<Outcome>,
    reply: Reply,
    /// The transaction that last took a piece of it (0: none yet).
    last_served: u64,
}

impl InFlight {
    fn new(job: Job) -> Self {
        Self {
            pieces: job.write.into_pieces(PIECE_ROWS).into(),
            done: None,
            reply: job.reply,
            last_served: 0,
        }
    }
}

/// Submits writes to the writer thread. Cheap to clone; the thread stops once every handle is
/// dropped and the queue is drained.
#[derive(Clone)]
pub struct WriterHandle {
    queue: mpsc::Sender<Job>,
    /// Asked which dictionary payloads are packed with.
    store: Arc<dyn Store>,
    /// What the writer thread commits, for `GET /metrics`.
    metrics: WriterMetrics,
}

impl std::fmt::Debug for WriterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterHandle").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl WriterHandle {
    /// Requests waiting for the writer: queued, or holding a place in the queue while their
    /// payloads are packed (not those the writer has taken).
    pub fn queue_depth(&self) -> usize {
        self.queue
            .max_capacity()
            .saturating_sub(self.queue.capacity())
    }

    /// What the writer thread has committed (transactions, spans, events).
    pub fn metrics(&self) -> &WriterMetrics {
        &self.metrics
    }

    /// Queues `write` and waits until it is committed (or refused by the store).
    ///
    /// Before it is queued, the write's payloads are packed ([`Write::pack`]) here, on the
    /// request's task (a large write on the blocking pool), not on the writer thread.
    pub async fn submit(&self, mut write: Write) -> Result<Outcome, ApiError> {
        // A place in the queue first: a full queue is refused before any work is done.
        let permit = self.queue.try_reserve().map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ApiError::Busy,
            mpsc::error::TrySendError::Closed(_) => ApiError::ShuttingDown,
        })?;
        let dictionary = self.store.payload_dictionary();
        if write.rows() <= PACK_INLINE_ROWS {
            write.pack(dictionary);
        } else {
            write = tokio::task::spawn_blocking(move || {
                write.pack(dictionary);
                write
            })
            .await
            .map_err(|e| ApiError::Internal(format!("packing task failed: {e}")))?;
        }
        let (reply, answer) = oneshot::channel();
        permit.send(Job { write, reply });
        match answer.await {
            Ok(result) => result.map_err(ApiError::from),
            Err(_) => Err(ApiError::Internal(
                "the writer stopped before answering".into(),
            )),
        }
    }
}

/// Starts the writer thread over `store`, with a queue of `capacity` requests, committing at
/// most `batch_max` requests per transaction.
pub fn spawn(
    store: Arc<dyn Store>,
    capacity: usize,
    batch_max: usize,
) -> std::io::Result<(WriterHandle, JoinHandle<()>)> {
    let (queue, mut jobs) = mpsc::channel::<Job>(capacity.max(1));
    let batch_max = batch_max.max(1);
    let metrics = WriterMetrics::default();
    let thread = std::thread::Builder::new()
        .name("agentops-writer".into())
        .spawn({
            let store = store.clone();
            let metrics = metrics.clone();
            move || run(store.as_ref(), &mut jobs, batch_max, &metrics)
        })?;
    Ok((
        WriterHandle {
            queue,
            store,
            metrics,
        },
        thread,
    ))
}

/// The writer thread: until every handle is gone and the queue drained, commits transactions
/// of pieces of the requests in flight, taken in turn.
fn run(
    store: &dyn Store,
    jobs: &mut mpsc::Receiver<Job>,
    batch_max: usize,
    metrics: &WriterMetrics,
) {
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut transaction: u64 = 0;
    loop {
        if in_flight.is_empty() {
            match jobs.blocking_recv() {
                Some(job) => in_flight.push_back(InFlight::new(job)),
                None => break,
            }
        }
        while in_flight.len() < batch_max {
            match jobs.try_recv() {
                Ok(job) => in_flight.push_back(InFlight::new(job)),
                Err(_) => break,
            }
        }
        // A piece of each request in turn, round after round, within the row budget; the
        // requests that waited longest for a piece first, so that a request as large as the
        // budget cannot keep the others out.
        transaction += 1;
        in_flight
            .make_contiguous()
            .sort_by_key(|request| request.last_served);
        let mut writes = Vec::new();
        let mut owners = Vec::new();
        let mut rows = 0;
        'rounds: loop {
            let before = writes.len();
            for (index, request) in in_flight.iter_mut().enumerate() {
                let full = writes.len() == batch_max || rows >= TRANSACTION_ROWS;
                if full && !writes.is_empty() {
                    break 'rounds;
                }
                if let Some(piece) = request.pieces.pop_front() {
                    request.last_served = transaction;
                    rows += piece.rows();
                    writes.push(piece);
                    owners.push(index);
                }
            }
            if writes.len() == before {
                break;
            }
        }
        let started = std::time::Instant::now();
        let results = store.commit(&writes);
        tracing::trace!(writes = writes.len(), rows, elapsed = ?started.elapsed(), "committed batch");
        let requests = in_flight
            .iter()
            .filter(|request| request.last_served == transaction)
            .count();
        metrics.transaction(started.elapsed(), requests, &writes, &results);
        let mut failed: Vec<Option<StoreError>> = in_flight.iter().map(|_| None).collect();
        match results {
            Ok(results) => {
                for (owner, result) in owners.iter().zip(results) {
                    let request = &mut in_flight[*owner];
                    match result {
                        Ok(outcome) => {
                            request.done = Some(match request.done.take() {
                                Some(before) => before.and(outcome),
                                None => outcome,
                            });
                        }
                        Err(refused) => failed[*owner] = Some(refused),
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = writes.len(), "batch commit failed");
                for owner in &owners {
                    failed[*owner] = Some(StoreError::Io(std::io::Error::other(format!(
                        "commit failed: {e}"
                    ))));
                }
            }
        }
        // Answer the requests that are finished: all pieces committed, or one refused.
        let mut kept = VecDeque::with_capacity(in_flight.len());
        for (request, failure) in in_flight.drain(..).zip(failed) {
            match failure {
                // The requester may have gone away; what is committed stays all the same.
                Some(err) => {
                    let _ = request.reply.send(Err(err));
                }
                None if request.pieces.is_empty() => {
                    let outcome = request.done.unwrap_or(Outcome::Done);
                    let _ = request.reply.send(Ok(outcome));
                }
                None => kept.push_back(request),
            }
        }
        in_flight = kept;
    }
    tracing::debug!("writer drained and stopped");
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc as std_mpsc;
    use std::sync::Mutex;

    use super::*;
    use crate::store::{SessionDetail, SessionSummary};

    /// A store whose commits wait for a go-ahead, to fill the queue deterministically.
    struct GatedStore {
        gate: Mutex<std_mpsc::Receiver<()>>,
        /// The rows of each write, per commit.
        batches: Mutex<Vec<Vec<usize>>>,
    }

    impl Store for GatedStore {
        fn size_bytes(&self) -> Result<u64, StoreError> {
            Ok(0)
        }

        fn commit(&self, writes: &[Write]) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
            let _ = self.gate.lock().unwrap().recv();
            self.batches
                .lock()
                .unwrap()
                .push(writes.iter().map(Write::rows).collect());
            Ok(writes
                .iter()
                .map(|write| match write {
                    Write::IngestSpans { spans, .. } => Ok(Outcome::Inserted(spans.len())),
                    _ => Ok(Outcome::Done),
                })
                .collect())
        }
        fn create_project(&self, _: &str) -> Result<String, StoreError> {
            unimplemented!()
        }
        fn default_project(&self) -> Result<Option<String>, StoreError> {
            unimplemented!()
        }
        fn add_api_key(&self, _: &str, _: &str) -> Result<bool, StoreError> {
            unimplemented!()
        }
        fn api_key_count(&self) -> Result<u64, StoreError> {
            unimplemented!()
        }
        fn project_for_key(&self, _: &str) -> Result<Option<String>, StoreError> {
            unimplemented!()
        }
        fn list_api_keys(&self) -> Result<Vec<crate::store::ApiKeyInfo>, StoreError> {
            unimplemented!()
        }
        fn revoke_api_key(&self, _: &str) -> Result<String, StoreError> {
            unimplemented!()
        }
        fn find_project(&self, _: &str) -> Result<Option<String>, StoreError> {
            unimplemented!()
        }
        fn session_exists(&self, _: &str, _: &str) -> Result<bool, StoreError> {
            unimplemented!()
        }
        fn list_sessions(&self, _: &str, _: usize) -> Result<Vec<SessionSummary>, StoreError> {
            unimplemented!()
        }
        fn session_detail(&self, _: &str, _: &str) -> Result<Option<SessionDetail>, StoreError> {
            unimplemented!()
        }
        fn session_changes(
            &self,
            _: &str,
            _: &str,
            _: Option<&crate::store::SessionMark>,
            _: bool,
        ) -> Result<Option<crate::store::SessionChanges>, StoreError> {
            unimplemented!()
        }
        fn query_sessions(
            &self,
            _: &str,
            _: &crate::store::SessionQuery,
        ) -> Result<crate::store::SessionPage, StoreError> {
            unimplemented!()
        }
        fn event_detail(
            &self,
            _: &str,
            _: &str,
            _: &str,
        ) -> Result<Option<crate::store::EventRow>, StoreError> {
            unimplemented!()
        }
        fn log_records(
            &self,
            _: &str,
            _: &str,
            _: Option<&str>,
        ) -> Result<Vec<crate::store::LogRecord>, StoreError> {
            unimplemented!()
        }
        fn call_refs(&self, _: &str, _: &str) -> Result<Vec<crate::store::CallRef>, StoreError> {
            unimplemented!()
        }
        fn metric_names(&self, _: &str) -> Result<Vec<crate::store::MetricInfo>, StoreError> {
            unimplemented!()
        }
        fn metric_points(
            &self,
            _: &str,
            _: &str,
            _: Option<&str>,
            _: Option<&str>,
        ) -> Result<Vec<crate::store::MetricPoint>, StoreError> {
            unimplemented!()
        }
        fn list_agents(&self, _: &str) -> Result<Vec<crate::store::AgentSummary>, StoreError> {
            unimplemented!()
        }
        fn stats(
            &self,
            _: &str,
            _: Option<&str>,
            _: Option<&str>,
        ) -> Result<crate::store::RawStats, StoreError> {
            unimplemented!()
        }
    }

    fn log_write() -> Write {
        Write::AppendLog {
            project_id: "p".into(),
            session_id: "s".into(),
            body: String::new(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn full_queue_is_refused_and_queued_writes_commit_together() {
        let (go, gate) = std_mpsc::channel();
        let store = Arc::new(GatedStore {
            gate: Mutex::new(gate),
            batches: Mutex::new(Vec::new()),
        });
        let (writer, thread) = spawn(store.clone(), 2, 16).unwrap();

        // The first write is taken by the writer, which then waits at the gate.
        let first = tokio::spawn({
            let w = writer.clone();
            async move { w.submit(log_write()).await }
        });
        while store.gate.try_lock().is_ok() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        // Two more fill the queue; the fourth is refused at once.
        let queued: Vec<_> = (0..2)
            .map(|_| {
                let w = writer.clone();
                tokio::spawn(async move { w.submit(log_write()).await })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(matches!(
            writer.submit(log_write()).await,
            Err(ApiError::Busy)
        ));

        go.send(()).unwrap();
        go.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), Outcome::Done);
        for q in queued {
            assert_eq!(q.await.unwrap().unwrap(), Outcome::Done);
        }
        // the two queued writes were committed as one batch
        assert_eq!(*store.batches.lock().unwrap(), vec![vec![1], vec![1, 1]]);
        drop(writer);
        tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap();
    }

    /// `n` spans of a session stored before.
    fn spans(n: usize) -> Write {
        Write::IngestSpans {
            project_id: "p".into(),
            sessions: Vec::new(),
            spans: (0..n)
                .map(|i| crate::store::EventRecord {
                    id: i.to_string(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_write_goes_in_pieces_and_others_pass_between_them() {
        let (go, gate) = std_mpsc::channel();
        let store = Arc::new(GatedStore {
            gate: Mutex::new(gate),
            batches: Mutex::new(Vec::new()),
        });
        let (writer, thread) = spawn(store.clone(), 16, 16).unwrap();
        let large = tokio::spawn({
            let w = writer.clone();
            async move { w.submit(spans(8 * PIECE_ROWS)).await }
        });
        while store.gate.try_lock().is_ok() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        // While the first piece commits, another project's small write arrives.
        let small = tokio::spawn({
            let w = writer.clone();
            async move { w.submit(log_write()).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        go.send(()).unwrap();
        go.send(()).unwrap();
        // The small write is answered after the second transaction, long before the large one.
        assert_eq!(small.await.unwrap().unwrap(), Outcome::Done);
        assert!(!large.is_finished());
        go.send(()).unwrap();
        go.send(()).unwrap();
        assert_eq!(
            large.await.unwrap().unwrap(),
            Outcome::Inserted(8 * PIECE_ROWS),
            "one answer, for all the pieces"
        );
        // Alone, the large write fills a transaction with two pieces; the small write that
        // waited goes first in the next one.
        let first_piece = PIECE_ROWS;
        assert_eq!(
            *store.batches.lock().unwrap(),
            vec![
                vec![first_piece, PIECE_ROWS],
                vec![1, PIECE_ROWS, PIECE_ROWS],
                vec![PIECE_ROWS, PIECE_ROWS],
                vec![PIECE_ROWS, PIECE_ROWS],
            ]
        );
        drop(writer);
        tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap();
    }

    /// `n` spans, each of a session of its own, as a request of many traces sends them.
    fn spans_in_own_sessions(n: usize) -> Write {
        Write::IngestSpans {
            project_id: "p".into(),
            sessions: (0..n)
                .map(|i| crate::store::SessionRecord {
                    id: format!("s{i}"),
                    ..Default::default()
                })
                .collect(),
            spans: (0..n)
                .map(|i| crate::store::EventRecord {
                    id: i.to_string(),
                    session_id: format!("s{i}"),
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_of_many_sessions_goes_in_smaller_pieces_and_others_pass() {
        let (go, gate) = std_mpsc::channel();
        let store = Arc::new(GatedStore {
            gate: Mutex::new(gate),
            batches: Mutex::new(Vec::new()),
        });
        let (writer, thread) = spawn(store.clone(), 16, 16).unwrap();
        let large = tokio::spawn({
            let w = writer.clone();
            async move { w.submit(spans_in_own_sessions(6 * PIECE_ROWS)).await }
        });
        while store.gate.try_lock().is_ok() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let small = tokio::spawn({
            let w = writer.clone();
            async move { w.submit(log_write()).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        go.send(()).unwrap();
        go.send(()).unwrap();
        assert_eq!(small.await.unwrap().unwrap(), Outcome::Done);
        assert!(!large.is_finished());
        for _ in 0..13 {
            go.send(()).unwrap();
        }
        assert_eq!(
            large.await.unwrap().unwrap(),
            Outcome::Inserted(6 * PIECE_ROWS)
        );
        // A session weighs SESSION_ROW_WEIGHT rows, so a piece holds 100 spans and their 100
        // sessions (500 rows), two a transaction; the small write goes first in the
        // transaction after the one it arrived during.
        let piece = PIECE_ROWS;
        let mut expected = vec![vec![piece, piece], vec![1, piece, piece]];
        expected.extend(std::iter::repeat_n(vec![piece, piece], 13));
        assert_eq!(*store.batches.lock().unwrap(), expected);
        drop(writer);
        tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap();
    }
}
