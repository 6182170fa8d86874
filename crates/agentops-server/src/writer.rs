//! The write path: a bounded queue into one writer thread that commits in batches.
//!
//! Request handlers [`WriterHandle::submit`] a [`Write`] and wait; the writer thread takes
//! everything queued (up to a batch size), commits it in one transaction (group commit), and only
//! then answers each waiting request. So a request is acknowledged only once its data is durable,
//! and a full queue is refused at once ([`ApiError::Busy`], HTTP 503 with `Retry-After`) rather
//! than lost.

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::store::{Outcome, Store, StoreError, Write};

struct Job {
    write: Write,
    reply: oneshot::Sender<Result<Outcome, StoreError>>,
}

/// Submits writes to the writer thread. Cheap to clone; the thread stops once every handle is
/// dropped and the queue is drained.
#[derive(Clone, Debug)]
pub struct WriterHandle {
    queue: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl WriterHandle {
    /// Queues `write` and waits until it is committed (or refused by the store).
    pub async fn submit(&self, write: Write) -> Result<Outcome, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .try_send(Job { write, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => ApiError::Busy,
                mpsc::error::TrySendError::Closed(_) => ApiError::ShuttingDown,
            })?;
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
    let thread = std::thread::Builder::new().name("agentops-writer".into()).spawn(move || {
        let mut writes = Vec::with_capacity(batch_max);
        let mut replies = Vec::with_capacity(batch_max);
        while let Some(first) = jobs.blocking_recv() {
            writes.push(first.write);
            replies.push(first.reply);
            while writes.len() < batch_max {
                match jobs.try_recv() {
                    Ok(job) => {
                        writes.push(job.write);
                        replies.push(job.reply);
                    }
                    Err(_) => break,
                }
            }
            let started = std::time::Instant::now();
            match store.commit(&writes) {
                Ok(results) => {
                    tracing::trace!(writes = writes.len(), elapsed = ?started.elapsed(), "committed batch");
                    for (reply, result) in replies.drain(..).zip(results) {
                        // The requester may have gone away; its data is committed all the same.
                        let _ = reply.send(result);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, writes = writes.len(), "batch commit failed");
                    for reply in replies.drain(..) {
                        let _ = reply.send(Err(StoreError::Io(std::io::Error::other(format!(
                            "commit failed: {e}"
                        )))));
                    }
                }
            }
            writes.clear();
            replies.clear();
        }
        tracing::debug!("writer drained and stopped");
    })?;
    Ok((WriterHandle { queue }, thread))
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
        batches: Mutex<Vec<usize>>,
    }

    impl Store for GatedStore {
        fn commit(&self, writes: &[Write]) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
            let _ = self.gate.lock().unwrap().recv();
            self.batches.lock().unwrap().push(writes.len());
            Ok(writes.iter().map(|_| Ok(Outcome::Done)).collect())
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
        assert_eq!(*store.batches.lock().unwrap(), vec![1, 2]);
        drop(writer);
        tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap();
    }
}
