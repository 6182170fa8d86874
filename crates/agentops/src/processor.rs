//! The session's span processor: opentelemetry-sdk's `BatchSpanProcessor`, behind a bound that
//! the session counts itself.
//!
//! The batch processor drops spans silently when its queue is full and does not say how many.
//! This wrapper refuses a span *before* the batch processor's queue can fill, so every event is
//! either queued (and later delivered or failed) or counted as dropped.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Span, SpanData, SpanProcessor};
use opentelemetry_sdk::Resource;

use crate::backend::SessionBackend;

/// Bounds a [`BatchSpanProcessor`] at `max_queue_size` events and counts what it refuses.
pub(crate) struct BoundedBatchProcessor {
    inner: BatchSpanProcessor,
    backend: Arc<SessionBackend>,
    max_queue_size: u64,
}

impl std::fmt::Debug for BoundedBatchProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedBatchProcessor")
            .field("session_id", &self.backend.id)
            .field("max_queue_size", &self.max_queue_size)
            .finish()
    }
}

impl BoundedBatchProcessor {
    pub(crate) fn new(
        inner: BatchSpanProcessor,
        backend: Arc<SessionBackend>,
        max_queue_size: usize,
    ) -> Self {
        Self {
            inner,
            backend,
            max_queue_size: max_queue_size as u64,
        }
    }
}

impl SpanProcessor for BoundedBatchProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        let stats = &self.backend.stats;
        if stats.queued.fetch_add(1, Ordering::AcqRel) >= self.max_queue_size {
            stats.queued.fetch_sub(1, Ordering::AcqRel);
            if stats.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(target: "agentops", session_id = %self.backend.id, max_queue_size = self.max_queue_size, "event queue full: dropping events until the backend catches up");
            }
            return;
        }
        stats.unsettled.fetch_add(1, Ordering::AcqRel);
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
