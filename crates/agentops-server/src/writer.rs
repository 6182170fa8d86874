//! The write path: a bounded queue into the writer threads, which commit in batches: one
//! thread on SQLite (one writer at a time), more on a store that commits several
//! transactions at once ([`WriteStore::concurrent_commits`]; their writes to one session are
//! serialised by the store, and the order of writes that wait together is not kept).
//!
//! Request handlers [`WriterHandle::submit`] a [`Write`] and wait; a writer thread takes
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
//! the error and its earlier pieces stay stored (ids make a retry store nothing twice). When
//! a commit is given up because the store stopped answering ([`StoreError::TimedOut`]), every
//! request waiting is answered so at once, so that none waits longer than one commit.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::server_metrics::WriterMetrics;
use crate::store::{Outcome, StoreError, Write, WriteError, WriteStore};

/// Rows in one piece of a large write.
pub const PIECE_ROWS: usize = 500;
/// Rows a transaction takes before it is committed (at least one piece).
pub const TRANSACTION_ROWS: usize = 1_000;
/// Writes of at most this many rows are packed on the request's own task; larger ones on the
/// blocking pool, so that they do not hold up the small requests sharing a thread with them.
const PACK_INLINE_ROWS: usize = 64;

type Reply = oneshot::Sender<Result<Outcome, WriteError>>;

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
    store: Arc<dyn WriteStore>,
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

/// The writer threads, to wait for once every [`WriterHandle`] is dropped.
#[derive(Debug)]
pub struct WriterThreads(Vec<JoinHandle<()>>);

impl WriterThreads {
    /// Waits until every writer thread has committed what was queued and stopped; `Err` if
    /// one panicked.
    pub fn join(self) -> std::thread::Result<()> {
        let mut result = Ok(());
        for thread in self.0 {
            if let Err(panic) = thread.join() {
                result = Err(panic);
            }
        }
        result
    }
}

/// The queue the writer threads take jobs from, one at a time.
type Jobs = std::sync::Mutex<mpsc::Receiver<Job>>;

/// Starts the writer threads over `store` (as many as it commits at once:
/// [`WriteStore::concurrent_commits`]), with a queue of `capacity` requests, committing at
/// most `batch_max` requests per transaction.
pub fn spawn(
    store: Arc<dyn WriteStore>,
    capacity: usize,
    batch_max: usize,
) -> std::io::Result<(WriterHandle, WriterThreads)> {
    let (queue, jobs) = mpsc::channel::<Job>(capacity.max(1));
    let jobs = Arc::new(Jobs::new(jobs));
    let batch_max = batch_max.max(1);
    let metrics = WriterMetrics::default();
    let mut threads = Vec::new();
    for n in 0..store.concurrent_commits().max(1) {
        let thread = std::thread::Builder::new()
            .name(format!("agentops-writer-{n}"))
            .spawn({
                let (store, jobs, metrics) = (store.clone(), jobs.clone(), metrics.clone());
                move || run(store.as_ref(), &jobs, batch_max, &metrics)
            })?;
        threads.push(thread);
    }
    Ok((
        WriterHandle {
            queue,
            store,
            metrics,
        },
        WriterThreads(threads),
    ))
}

/// A writer thread: until every handle is gone and the queue drained, commits transactions
/// of pieces of the requests it took, in turn. Several threads share the queue: one waits on
/// it when it has nothing to do; one with work in hand takes more only when the queue is free.
fn run(store: &dyn WriteStore, jobs: &Jobs, batch_max: usize, metrics: &WriterMetrics) {
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut transaction: u64 = 0;
    loop {
        let queue = if in_flight.is_empty() {
            let mut queue = jobs.lock().unwrap_or_else(|p| p.into_inner());
            match queue.blocking_recv() {
                Some(job) => in_flight.push_back(InFlight::new(job)),
                None => break,
            }
            Some(queue)
        } else {
            jobs.try_lock().ok()
        };
        if let Some(mut queue) = queue {
            while in_flight.len() < batch_max {
                match queue.try_recv() {
                    Ok(job) => in_flight.push_back(InFlight::new(job)),
                    Err(_) => break,
                }
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
        let mut failed: Vec<Option<WriteError>> = in_flight.iter().map(|_| None).collect();
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
            Err(e) if is_store_wide(&e) => {
                // Every request waiting would meet the same store: answer them all now
                // rather than one commit's wait after another (a database that hangs would
                // hold the last in the queue for the sum of them).
                tracing::error!(error = %e, writes = writes.len(), "batch commit failed; answering every waiting request");
                failed
                    .iter_mut()
                    .for_each(|f| *f = Some(batch_failure(&e).into()));
                if let Ok(mut queue) = jobs.try_lock() {
                    while let Ok(job) = queue.try_recv() {
                        let _ = job.reply.send(Err(batch_failure(&e).into()));
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = writes.len(), "batch commit failed");
                for owner in &owners {
                    failed[*owner] = Some(batch_failure(&e).into());
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

/// Whether a failed commit says every commit now would wait as long: the store stopped
/// answering (not one broken connection, or a refused one: those fail fast).
fn is_store_wide(e: &StoreError) -> bool {
    matches!(e, StoreError::TimedOut(_))
}

/// What each request of a batch that failed as a whole is answered: a store that is
/// unavailable or cannot be written stays that (503, "retry later"), anything else is the
/// commit's failure.
fn batch_failure(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(why) => StoreError::Unavailable(why.clone()),
        StoreError::TimedOut(why) => StoreError::TimedOut(why.clone()),
        StoreError::Unwritable(why) => StoreError::Unwritable(why.clone()),
        other => StoreError::Io(std::io::Error::other(format!("commit failed: {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc as std_mpsc;
    use std::sync::Mutex;

    use super::*;

    /// What a [`GatedStore`]'s commit waits for.
    enum Gate {
        Commit,
        /// Fail as a database that cannot be reached.
        Unreachable,
    }

    /// A store whose commits wait for a go-ahead, to fill the queue deterministically.
    struct GatedStore {
        gate: Mutex<std_mpsc::Receiver<Gate>>,
        /// The rows of each write, per commit.
        batches: Mutex<Vec<Vec<usize>>>,
    }

    impl WriteStore for GatedStore {
        fn commit(&self, writes: &[Write]) -> Result<Vec<Result<Outcome, WriteError>>, StoreError> {
            let verdict = self.gate.lock().unwrap().recv();
            self.batches
                .lock()
                .unwrap()
                .push(writes.iter().map(Write::rows).collect());
            if let Ok(Gate::Unreachable) = verdict {
                return Err(StoreError::TimedOut("database did not answer".into()));
            }
            Ok(writes
                .iter()
                .map(|write| match write {
                    Write::IngestSpans { spans, .. } => Ok(Outcome::Inserted(spans.len())),
                    _ => Ok(Outcome::Done),
                })
                .collect())
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

        go.send(Gate::Commit).unwrap();
        go.send(Gate::Commit).unwrap();
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

    /// A commit given up because the store stopped answering answers every waiting request at
    /// once (503), not each after a commit of its own: behind a hung database the last in
    /// the queue would wait for the sum of them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_that_stopped_answering_answers_every_waiting_request_after_one_commit() {
        let (go, gate) = std_mpsc::channel();
        let store = Arc::new(GatedStore {
            gate: Mutex::new(gate),
            batches: Mutex::new(Vec::new()),
        });
        let (writer, thread) = spawn(store.clone(), 8, 2).unwrap();
        let first = tokio::spawn({
            let w = writer.clone();
            async move { w.submit(log_write()).await }
        });
        while store.gate.try_lock().is_ok() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        // Five more wait behind it: more than one batch's worth (two per batch here).
        let queued: Vec<_> = (0..5)
            .map(|_| {
                let w = writer.clone();
                tokio::spawn(async move { w.submit(log_write()).await })
            })
            .collect();
        while writer.queue_depth() < 5 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        go.send(Gate::Unreachable).unwrap();
        for answer in std::iter::once(first).chain(queued) {
            // (a writer that tried a commit per batch would wait at the gate again)
            let answer = tokio::time::timeout(std::time::Duration::from_secs(5), answer)
                .await
                .expect("answered after the one failed commit");
            assert!(matches!(
                answer.unwrap(),
                Err(ApiError::StorageUnavailable(_))
            ));
        }
        assert_eq!(store.batches.lock().unwrap().len(), 1, "one commit tried");
        // The next write tries the store again.
        go.send(Gate::Commit).unwrap();
        assert_eq!(writer.submit(log_write()).await.unwrap(), Outcome::Done);
        drop(writer);
        tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap();
    }

    /// A store whose commits go through only two at a time.
    struct TwoAtOnce {
        both: std::sync::Barrier,
    }

    impl WriteStore for TwoAtOnce {
        fn commit(&self, writes: &[Write]) -> Result<Vec<Result<Outcome, WriteError>>, StoreError> {
            self.both.wait();
            Ok(writes.iter().map(|_| Ok(Outcome::Done)).collect())
        }

        fn concurrent_commits(&self) -> usize {
            2
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_that_commits_two_at_once_gets_two_writer_threads() {
        let store = Arc::new(TwoAtOnce {
            both: std::sync::Barrier::new(2),
        });
        // one request per transaction: each writer takes one
        let (writer, threads) = spawn(store, 8, 1).unwrap();
        let answers: Vec<_> = (0..4)
            .map(|_| {
                let w = writer.clone();
                tokio::spawn(async move { w.submit(log_write()).await })
            })
            .collect();
        for answer in answers {
            // (a single writer thread would wait at the barrier for ever)
            let answer = tokio::time::timeout(std::time::Duration::from_secs(5), answer)
                .await
                .expect("two commits ran at once");
            assert_eq!(answer.unwrap().unwrap(), Outcome::Done);
        }
        drop(writer);
        tokio::task::spawn_blocking(move || threads.join().unwrap())
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
        go.send(Gate::Commit).unwrap();
        go.send(Gate::Commit).unwrap();
        // The small write is answered after the second transaction, long before the large one.
        assert_eq!(small.await.unwrap().unwrap(), Outcome::Done);
        assert!(!large.is_finished());
        go.send(Gate::Commit).unwrap();
        go.send(Gate::Commit).unwrap();
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
        go.send(Gate::Commit).unwrap();
        go.send(Gate::Commit).unwrap();
        assert_eq!(small.await.unwrap().unwrap(), Outcome::Done);
        assert!(!large.is_finished());
        for _ in 0..13 {
            go.send(Gate::Commit).unwrap();
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
