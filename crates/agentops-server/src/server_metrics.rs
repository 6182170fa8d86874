//! The server's own health, for Prometheus: `GET /metrics` in the text exposition format
//! 0.0.4 (`text/plain; version=0.0.4`), or OpenMetrics 1.0 to a scraper that asks for it
//! (`Accept: application/openmetrics-text`, as Prometheus does).
//!
//! What is measured:
//! - every HTTP request, by the route template it matched (`/api/v1/sessions/{id}`, never the
//!   raw path; `other` when none matched) and by method and status ([`track_requests`], an
//!   axum middleware), so that the number of series stays bounded whatever clients send;
//! - what the writer commits ([`WriterMetrics`], recorded on the writer thread): each
//!   transaction's duration and requests, the spans, events and log records committed;
//! - the `503`s answered because the write queue was full or the storage failing
//!   ([`BusyRejection`], marked on the response by [`ApiError`]'s answer);
//! - read when scraped: the write queue's depth, the database's size on disk (file and WAL)
//!   and, on Linux, the process's resident memory.
//!
//! Who may scrape ([`MetricsAccess`]): anyone with `--metrics-public`; else, on a loopback listen
//! address, requests addressed to a loopback host name (as open read access, so that a web page
//! cannot read it through DNS rebinding); else read credentials, as for `/api/v1`.
//!
//! The metrics are kept by the official Rust client, `prometheus-client`, which writes
//! OpenMetrics; [`openmetrics_to_text_004`] turns that into the 0.0.4 text format.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::caller::{addressed_to_loopback, Reader};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{Outcome, StoreError, Write, WriteError};

/// The content type of the Prometheus text exposition format.
pub const TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The content type of the OpenMetrics text format.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The route label of a request that matched no route.
pub const OTHER_ROUTE: &str = "other";

/// Bucket bounds of HTTP request durations, in seconds.
const REQUEST_SECONDS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Bucket bounds of writer transaction durations, in seconds.
const COMMIT_SECONDS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Bucket bounds of the requests in one writer transaction.
const BATCH_REQUESTS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_SECONDS)
}

/// What the writer thread records: each transaction's duration and requests, and what it
/// committed. Cheap to clone (the clones share the values).
#[derive(Clone, Debug)]
pub struct WriterMetrics {
    commit_seconds: Histogram,
    batch_requests: Histogram,
    spans: Counter,
    events: Family<SourceLabels, Counter>,
    otlp: Counter,
    v2: Counter,
    logs: Counter,
}

impl Default for WriterMetrics {
    fn default() -> Self {
        let events = Family::<SourceLabels, Counter>::default();
        let source = |source| events.get_or_create(&SourceLabels { source }).clone();
        let (otlp, v2, logs) = (source("otlp"), source("v2"), source("logs"));
        Self {
            commit_seconds: Histogram::new(COMMIT_SECONDS),
            batch_requests: Histogram::new(BATCH_REQUESTS),
            spans: Counter::default(),
            events,
            otlp,
            v2,
            logs,
        }
    }
}

impl WriterMetrics {
    /// Records one transaction: how long `store.commit` took, how many requests had a piece
    /// in it, and, if it committed, what the `writes` that succeeded held.
    pub fn transaction(
        &self,
        elapsed: Duration,
        requests: usize,
        writes: &[Write],
        results: &Result<Vec<Result<Outcome, WriteError>>, StoreError>,
    ) {
        self.commit_seconds.observe(elapsed.as_secs_f64());
        self.batch_requests.observe(requests as f64);
        let Ok(results) = results else {
            return;
        };
        for (write, result) in writes.iter().zip(results) {
            if result.is_err() {
                continue;
            }
            match write {
                Write::IngestSpans { spans, .. } => {
                    self.spans.inc_by(spans.len() as u64);
                    self.otlp.inc_by(spans.len() as u64);
                }
                Write::CreateEvents { events, .. } => {
                    self.v2.inc_by(events.len() as u64);
                }
                Write::IngestLogs { records, .. } => {
                    self.logs.inc_by(records.len() as u64);
                }
                _ => {}
            }
        }
    }
}

/// Who may read `GET /metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsAccess {
    /// Anyone (`--metrics-public`).
    Public,
    /// A loopback listen address: requests addressed to a loopback host name need no
    /// credentials, others need read credentials.
    Loopback,
    /// Read credentials, as for `/api/v1`.
    Credentials,
}

impl MetricsAccess {
    /// The rule for a server listening on `listen`, `public` when `--metrics-public` is set.
    pub fn for_listen(listen: SocketAddr, public: bool) -> Self {
        if public {
            Self::Public
        } else if listen.ip().is_loopback() {
            Self::Loopback
        } else {
            Self::Credentials
        }
    }

    /// Whether a request with these headers must bring read credentials.
    pub fn needs_credentials(self, headers: &HeaderMap) -> bool {
        match self {
            Self::Public => false,
            Self::Loopback => !addressed_to_loopback(headers),
            Self::Credentials => true,
        }
    }
}

/// A `503` answered because the write queue was full or the storage failing; [`ApiError`]
/// puts it in the extensions of its answer, for [`track_requests`] to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusyRejection {
    /// The write queue was full ([`ApiError::Busy`]).
    QueueFull,
    /// The database could not be written ([`ApiError::StorageUnavailable`]).
    Storage,
}

impl BusyRejection {
    /// The rejection `error` is, if it is one.
    pub fn of(error: &ApiError) -> Option<Self> {
        match error {
            ApiError::Busy => Some(Self::QueueFull),
            ApiError::StorageUnavailable(_) => Some(Self::Storage),
            _ => None,
        }
    }
}

/// The server's metrics and their registry.
#[derive(Debug)]
pub struct ServerMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
    queue_full: Counter,
    storage_failing: Counter,
    queue_depth: Gauge,
    database_bytes: Gauge,
    resident_memory: Gauge,
    access: MetricsAccess,
}

impl ServerMetrics {
    /// The metrics of a server whose writer records into `writer`, readable as `access` says.
    pub fn new(writer: &WriterMetrics, access: MetricsAccess) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "agentops_http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let durations: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(request_histogram);
        registry.register(
            "agentops_http_request_duration_seconds",
            "Time to answer an HTTP request (until the response head), by route template",
            durations.clone(),
        );
        registry.register(
            "agentops_spans_ingested",
            "OTLP spans committed by the writer",
            writer.spans.clone(),
        );
        registry.register(
            "agentops_events_ingested",
            "Events committed by the writer, by source: otlp (spans), v2 (events), logs (OTLP log records)",
            writer.events.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "agentops_write_queue_depth",
            "Write requests waiting for the writer",
            queue_depth.clone(),
        );
        registry.register(
            "agentops_commit_duration_seconds",
            "Time to commit one writer transaction",
            writer.commit_seconds.clone(),
        );
        registry.register(
            "agentops_commit_batch_requests",
            "Requests with a piece in one writer transaction",
            writer.batch_requests.clone(),
        );
        let busy = Family::<ReasonLabels, Counter>::default();
        let queue_full = busy
            .get_or_create(&ReasonLabels {
                reason: "queue_full",
            })
            .clone();
        let storage_failing = busy
            .get_or_create(&ReasonLabels { reason: "storage" })
            .clone();
        registry.register(
            "agentops_busy_rejections",
            "Requests answered 503 because the write queue was full (queue_full) or the storage full, failing or unreachable (storage)",
            busy,
        );
        let database_bytes = Gauge::default();
        registry.register(
            "agentops_database_bytes",
            "Size of the store on disk: the SQLite file and its WAL, or the PostgreSQL database",
            database_bytes.clone(),
        );
        let build = Family::<VersionLabels, Gauge>::default();
        build
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "agentops_build_info",
            "The server's version, as a label; always 1",
            build,
        );
        let resident_memory = Gauge::default();
        if cfg!(target_os = "linux") {
            registry.register(
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                resident_memory.clone(),
            );
        }
        Self {
            registry,
            requests,
            durations,
            queue_full,
            storage_failing,
            queue_depth,
            database_bytes,
            resident_memory,
            access,
        }
    }

    /// Who may scrape.
    pub fn access(&self) -> MetricsAccess {
        self.access
    }

    /// Counts one answered request.
    fn record(
        &self,
        route: String,
        method: &'static str,
        status: u16,
        elapsed: Duration,
        busy: Option<BusyRejection>,
    ) {
        self.durations
            .get_or_create(&RouteLabels {
                route: route.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status,
            })
            .inc();
        match busy {
            Some(BusyRejection::QueueFull) => {
                self.queue_full.inc();
            }
            Some(BusyRejection::Storage) => {
                self.storage_failing.inc();
            }
            None => {}
        }
    }

    /// Sets what is measured at scrape time (the write queue's depth, the store's size), then
    /// encodes everything: OpenMetrics if `openmetrics`, else the 0.0.4 text format.
    pub fn render(
        &self,
        queue_depth: usize,
        database_bytes: u64,
        openmetrics: bool,
    ) -> Result<String, ApiError> {
        self.queue_depth
            .set(i64::try_from(queue_depth).unwrap_or(i64::MAX));
        self.database_bytes
            .set(i64::try_from(database_bytes).unwrap_or(i64::MAX));
        if let Some(bytes) = resident_memory_bytes() {
            self.resident_memory.set(bytes);
        }
        let mut text = String::with_capacity(8 * 1024);
        let encoded = if openmetrics {
            prometheus_client::encoding::text::encode(&mut text, &self.registry)
        } else {
            prometheus_client::encoding::text::encode_registry(&mut text, &self.registry)
        };
        encoded.map_err(|e| ApiError::Internal(format!("encoding the metrics: {e}")))?;
        Ok(if openmetrics {
            text
        } else {
            openmetrics_to_text_004(&text)
        })
    }
}

/// The process's resident memory (`VmRSS` of `/proc/self/status`), on Linux.
fn resident_memory_bytes() -> Option<i64> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: i64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// The OpenMetrics text `prometheus-client` writes, in the Prometheus text format 0.0.4: a
/// counter family's `# HELP` and `# TYPE` name its samples (`…_total`), an `info` family is a
/// gauge of `…_info` samples, `unknown` is `untyped`, and there is no `# UNIT` or `# EOF`.
/// Samples are written alike in both (label values escaped the same way).
pub fn openmetrics_to_text_004(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len() + 256);
    // A `# HELP` line waits for its family's `# TYPE`, which tells the name to give it.
    let mut help: Option<&str> = None;
    let flush_help = |out: &mut String, help: &mut Option<&str>| {
        if let Some(pending) = help.take() {
            out.push_str("# HELP ");
            out.push_str(pending);
            out.push('\n');
        }
    };
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            flush_help(&mut out, &mut help);
            help = Some(rest);
            continue;
        }
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            flush_help(&mut out, &mut help);
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
        let (sample_name, kind) = match kind {
            "counter" => (format!("{name}_total"), "counter"),
            "info" => (format!("{name}_info"), "gauge"),
            "unknown" => (name.to_owned(), "untyped"),
            other => (name.to_owned(), other),
        };
        if let Some(pending) = help.take() {
            let text = pending
                .strip_prefix(name)
                .and_then(|text| text.strip_prefix(' '));
            match text {
                Some(text) => {
                    out.push_str("# HELP ");
                    out.push_str(&sample_name);
                    out.push(' ');
                    out.push_str(text);
                    out.push('\n');
                }
                None => flush_help(&mut out, &mut Some(pending)),
            }
        }
        out.push_str("# TYPE ");
        out.push_str(&sample_name);
        out.push(' ');
        out.push_str(kind);
        out.push('\n');
    }
    flush_help(&mut out, &mut help);
    out
}

/// The route label of a request: the route template it matched, else [`OTHER_ROUTE`].
fn route_label(matched: Option<&MatchedPath>) -> String {
    matched.map_or_else(|| OTHER_ROUTE.to_owned(), |path| path.as_str().to_owned())
}

/// The method label: the standard methods by name, any other `other` (a client may send any
/// token as a method).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Middleware: counts each request and its duration by route template, method and status,
/// and the `503`s of a full queue or failing storage. Layered over every route in
/// [`crate::app`] (so that the route it matched is known).
pub async fn track_requests(
    State(metrics): State<Arc<ServerMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = route_label(request.extensions().get::<MatchedPath>());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let busy = response.extensions().get::<BusyRejection>().copied();
    metrics.record(
        route,
        method,
        response.status().as_u16(),
        started.elapsed(),
        busy,
    );
    response
}

/// Whether the scraper prefers OpenMetrics: it lists `application/openmetrics-text` in
/// `Accept` (Prometheus does, ahead of the 0.0.4 format).
fn wants_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let kind = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|param| {
                param
                    .trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            kind.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        })
}

/// `GET /metrics`: the server's metrics, for Prometheus (see the module's documentation for
/// who may read them).
pub async fn scrape(State(state): State<AppState>, mut parts: Parts) -> Result<Response, ApiError> {
    let metrics = state.metrics();
    if metrics.access().needs_credentials(&parts.headers) {
        // Server-wide figures: a session token, which reads one session only, may not.
        Reader::from_request_parts(&mut parts, &state)
            .await?
            .project()?;
    }
    let openmetrics = wants_openmetrics(&parts.headers);
    let store = state.store().clone();
    let database_bytes = match tokio::task::spawn_blocking(move || store.size_bytes()).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: the store's size could not be read");
            0
        }
        Err(_) => 0,
    };
    let text = metrics.render(state.writer().queue_depth(), database_bytes, openmetrics)?;
    let content_type = if openmetrics { OPENMETRICS } else { TEXT_004 };
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        text,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};
    use axum::Router;

    fn metrics() -> Arc<ServerMetrics> {
        Arc::new(ServerMetrics::new(
            &WriterMetrics::default(),
            MetricsAccess::Loopback,
        ))
    }

    /// Sends `method path` through a router of two routes and a fallback, tracked by `metrics`.
    async fn send(metrics: &Arc<ServerMetrics>, method: &str, path: &str) -> u16 {
        use hyper::service::Service as _;
        let router = Router::new()
            .route("/api/v1/sessions/{id}", get(|| async { "a session" }))
            .route("/v1/traces", post(|| async { "stored" }))
            .fallback(|| async { axum::http::StatusCode::NOT_FOUND })
            .layer(axum::middleware::from_fn_with_state(
                metrics.clone(),
                track_requests,
            ));
        let request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let service = hyper_util::service::TowerToHyperService::new(router);
        service.call(request).await.unwrap().status().as_u16()
    }

    #[tokio::test]
    async fn requests_are_labelled_by_route_template_never_by_raw_path() {
        let metrics = metrics();
        assert_eq!(send(&metrics, "GET", "/api/v1/sessions/abc-123").await, 200);
        assert_eq!(send(&metrics, "GET", "/api/v1/sessions/def-456").await, 200);
        assert_eq!(send(&metrics, "GET", "/no/such/path/xyz").await, 404);
        assert_eq!(send(&metrics, "GET", "/v1/traces").await, 405);
        assert_eq!(send(&metrics, "BREW", "/v1/traces").await, 405);
        let text = metrics.render(0, 0, false).unwrap();
        assert!(
            text.contains(
                r#"agentops_http_requests_total{route="/api/v1/sessions/{id}",method="GET",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"agentops_http_requests_total{route="other",method="GET",status="404"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"agentops_http_requests_total{route="/v1/traces",method="GET",status="405"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"agentops_http_requests_total{route="/v1/traces",method="other",status="405"} 1"#
            ),
            "{text}"
        );
        for raw in ["abc-123", "def-456", "xyz", "BREW"] {
            assert!(!text.contains(raw), "{raw} in {text}");
        }
        assert!(text.contains(
            r#"agentops_http_request_duration_seconds_count{route="/api/v1/sessions/{id}"} 2"#
        ));
    }

    #[test]
    fn busy_and_storage_refusals_are_marked_for_counting() {
        let marked = |error: ApiError| {
            error
                .into_response()
                .extensions()
                .get::<BusyRejection>()
                .copied()
        };
        assert_eq!(marked(ApiError::Busy), Some(BusyRejection::QueueFull));
        assert_eq!(
            marked(ApiError::StorageUnavailable("disk full".into())),
            Some(BusyRejection::Storage)
        );
        assert_eq!(marked(ApiError::ShuttingDown), None);
        assert_eq!(marked(ApiError::bad("no")), None);
        let metrics = metrics();
        metrics.record(
            "/v1/traces".into(),
            "POST",
            503,
            Duration::from_millis(1),
            Some(BusyRejection::QueueFull),
        );
        let text = metrics.render(3, 0, false).unwrap();
        assert!(text.contains("agentops_busy_rejections_total{reason=\"queue_full\"} 1\n"));
        assert!(text.contains("agentops_busy_rejections_total{reason=\"storage\"} 0\n"));
        assert!(text.contains("agentops_write_queue_depth 3\n"));
    }

    #[test]
    fn method_labels_are_bounded() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::OPTIONS), "OPTIONS");
        let custom = Method::from_bytes(b"PROPFIND").unwrap();
        assert_eq!(method_label(&custom), "other");
    }

    #[test]
    fn openmetrics_counters_and_infos_become_text_004_families() {
        let openmetrics = "# HELP requests Requests answered.\n\
                           # TYPE requests counter\n\
                           requests_total{route=\"/x\"} 3\n\
                           # HELP build The build.\n\
                           # TYPE build info\n\
                           build_info{version=\"1\"} 1\n\
                           # HELP depth Depth.\n\
                           # TYPE depth gauge\n\
                           # UNIT depth requests\n\
                           depth 2\n\
                           # EOF\n";
        assert_eq!(
            openmetrics_to_text_004(openmetrics),
            "# HELP requests_total Requests answered.\n\
             # TYPE requests_total counter\n\
             requests_total{route=\"/x\"} 3\n\
             # HELP build_info The build.\n\
             # TYPE build_info gauge\n\
             build_info{version=\"1\"} 1\n\
             # HELP depth Depth.\n\
             # TYPE depth gauge\n\
             depth 2\n"
        );
    }

    #[test]
    fn who_may_scrape() {
        let loopback: SocketAddr = "127.0.0.1:4318".parse().unwrap();
        let anywhere: SocketAddr = "0.0.0.0:4318".parse().unwrap();
        let lan: SocketAddr = "192.0.2.10:4318".parse().unwrap();
        assert_eq!(
            MetricsAccess::for_listen(loopback, false),
            MetricsAccess::Loopback
        );
        assert_eq!(
            MetricsAccess::for_listen(anywhere, false),
            MetricsAccess::Credentials
        );
        assert_eq!(
            MetricsAccess::for_listen(lan, false),
            MetricsAccess::Credentials
        );
        assert_eq!(
            MetricsAccess::for_listen(anywhere, true),
            MetricsAccess::Public
        );
        let mut local = HeaderMap::new();
        local.insert(header::HOST, HeaderValue::from_static("127.0.0.1:4318"));
        let mut rebound = HeaderMap::new();
        rebound.insert(header::HOST, HeaderValue::from_static("evil.example:4318"));
        assert!(!MetricsAccess::Loopback.needs_credentials(&local));
        assert!(MetricsAccess::Loopback.needs_credentials(&rebound));
        assert!(MetricsAccess::Credentials.needs_credentials(&local));
        assert!(!MetricsAccess::Public.needs_credentials(&rebound));
    }

    #[test]
    fn openmetrics_is_served_to_scrapers_that_ask_for_it() {
        let accept = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_static(value));
            wants_openmetrics(&headers)
        };
        assert!(accept(
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2"
        ));
        assert!(!accept("text/plain;version=0.0.4"));
        assert!(!accept("application/openmetrics-text;q=0"));
        assert!(!wants_openmetrics(&HeaderMap::new()));
    }
}
