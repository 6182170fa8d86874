//! What a user meets when PostgreSQL goes away in the middle of a run, over real loopback HTTP.
//!
//! The server's `database_url` points at a small scripted TCP proxy in front of the local
//! PostgreSQL (127.0.0.1:5432), on a database of its own (`agentops_it_outage_*`, made through
//! the real port and dropped at the end, panic or not). The proxy can *cut* (close every live
//! connection and close new ones at once: PostgreSQL dead or refusing), *hang* (keep the
//! connections open but forward nothing: a black hole, PostgreSQL stalled or the network gone)
//! and *restore*. The tests show that:
//!
//! - before the outage, v2 and OTLP (JSON and protobuf) writes are acknowledged and read back;
//! - during a cut, reads answer 503 with a JSON error and `Retry-After: 10`, `/health` answers
//!   503 with `"status": "unavailable"`, writes are refused (never acknowledged), each within
//!   the pool's waits plus slack, and the process goes on answering request after request;
//! - after a cut or a hang, writes succeed again without restarting the server (polled,
//!   bounded), and every write acknowledged with a 2xx (resent writes included, and writes
//!   whose answer never came during a hang) is stored exactly once, as the read API counts it.
//!
//! - writes that need nothing from the store before the writer (a cached key, a token naming
//!   no key) answer 503 with `Retry-After` during a cut, not 500;
//! - during a hang, every request (writes, reads, `/health`) is answered 503 within the
//!   store's deadline on a connection's work, instead of waiting for ever.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use agentops_server::auth::{Claims, JwtKeys};
use common::{otlp_json_to_protobuf, temp_dir, Reply, TestServer, API_KEY};
use serde_json::{json, Value};

const KEY: (&str, &str) = ("X-Agentops-Api-Key", API_KEY);
/// The local PostgreSQL the tests make their database on (trust authentication).
const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";
/// The longest any request may take while PostgreSQL is out: the pool waits 5 s for a
/// connection to open or to be freed (`store::postgres::CONNECTION_WAIT`); the rest is slack
/// for a loaded machine. A liveness bound, not a speed benchmark.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);
/// How long the test's client waits for an answer before it calls the request hung (more than
/// [`ANSWER_WITHIN`], so that a slow answer is told from a hung one).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the client waits during a hang in the test that only checks what follows it.
const HANG_PATIENCE: Duration = Duration::from_secs(8);
/// How long after the restore writes may keep failing.
const RECOVER_WITHIN: Duration = Duration::from_secs(20);
/// Where the spans' times start (2026-11-22).
const T0: u64 = 1_795_311_032_000_000_000;

// ---------------------------------------------------------------------------------------------
// The proxy

/// What the proxy does with the bytes between the server and PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Forwards both ways.
    Forward,
    /// Keeps every connection open and accepts new ones, but moves no byte (bytes read just
    /// as the hang began are held until it ends): a black hole.
    Hang,
    /// Every live connection was closed; new ones are closed as soon as they are accepted.
    Cut,
}

#[derive(Default)]
struct Links {
    /// Both sockets of each connection forwarded since the last cut.
    open: Vec<TcpStream>,
    /// Connections accepted during a hang, never forwarded; closed on the restore or a cut.
    stalled: Vec<TcpStream>,
}

struct Shared {
    mode: Mutex<Mode>,
    changed: Condvar,
    links: Mutex<Links>,
    stop: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Waits out a hang; whether to go on forwarding (not after a cut, nor once stopped).
    fn forwarding(&self) -> bool {
        let mut mode = lock(&self.mode);
        while *mode == Mode::Hang && !self.stop.load(Ordering::SeqCst) {
            mode = self
                .changed
                .wait(mode)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *mode == Mode::Forward && !self.stop.load(Ordering::SeqCst)
    }
}

/// A TCP proxy 127.0.0.1:`port` → `upstream`, told what to do by [`Proxy::cut`],
/// [`Proxy::hang`] and [`Proxy::restore`].
struct Proxy {
    port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            mode: Mutex::new(Mode::Forward),
            changed: Condvar::new(),
            links: Mutex::new(Links::default()),
            stop: AtomicBool::new(false),
        });
        let acceptor = std::thread::Builder::new()
            .name("outage-proxy".into())
            .spawn({
                let shared = shared.clone();
                move || accept(&listener, upstream, &shared)
            })
            .unwrap();
        Proxy {
            port,
            shared,
            acceptor: Some(acceptor),
        }
    }

    fn set(&self, mode: Mode) {
        *lock(&self.shared.mode) = mode;
        self.shared.changed.notify_all();
        let mut links = lock(&self.shared.links);
        let closed: Vec<TcpStream> = match mode {
            Mode::Cut => {
                let Links { open, stalled } = &mut *links;
                open.drain(..).chain(stalled.drain(..)).collect()
            }
            Mode::Forward => links.stalled.drain(..).collect(),
            Mode::Hang => Vec::new(),
        };
        for socket in closed {
            let _ = socket.shutdown(Shutdown::Both);
        }
        eprintln!("proxy: {mode:?}");
    }

    /// PostgreSQL dies: every connection is closed, new ones are closed at once.
    fn cut(&self) {
        self.set(Mode::Cut);
    }

    /// PostgreSQL stalls: nothing more goes through, but no connection is closed.
    fn hang(&self) {
        self.set(Mode::Hang);
    }

    /// PostgreSQL is back: bytes flow again (those held by a hang first).
    fn restore(&self) {
        self.set(Mode::Forward);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.cut();
        // wakes the acceptor, which then sees `stop`
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept(listener: &TcpListener, upstream: SocketAddr, shared: &Arc<Shared>) {
    for incoming in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = incoming else { continue };
        let mode = *lock(&shared.mode);
        match mode {
            // closed as soon as it is accepted: the startup gets an end of file
            Mode::Cut => drop(client),
            Mode::Hang => lock(&shared.links).stalled.push(client),
            Mode::Forward => {
                let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(2))
                else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (Ok(client_write), Ok(server_write)) = (client.try_clone(), server.try_clone())
                else {
                    continue;
                };
                {
                    let mut links = lock(&shared.links);
                    links.open.extend(client.try_clone());
                    links.open.extend(server.try_clone());
                }
                // (a cut between reading the mode and registering the sockets is seen by the
                // pumps, which check the mode before each read)
                for (from, to) in [(client, server_write), (server, client_write)] {
                    let shared = shared.clone();
                    let _ = std::thread::Builder::new()
                        .name("outage-pump".into())
                        .spawn(move || pump(from, to, &shared));
                }
            }
        }
    }
}

/// Copies `from` to `to` while the proxy forwards; closes both when either ends or on a cut.
fn pump(mut from: TcpStream, mut to: TcpStream, shared: &Shared) {
    // short reads, so that a hang or a cut is noticed between them
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = vec![0; 64 * 1024];
    while shared.forwarding() {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(_) => break,
        };
        if !shared.forwarding() || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

// ---------------------------------------------------------------------------------------------
// The rig: a database, the proxy, a server on it, a client with timeouts

/// A database made for one test through the real port; dropped (with whatever is connected
/// to it) when this is, panic or not.
struct Database {
    url: String,
}

impl Database {
    fn create(test: &str) -> Database {
        let name = format!(
            "agentops_it_outage_{test}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let url = format!("{POSTGRES}/{name}");
        agentops_server::store::postgres::create_database_if_missing(&url)
            .unwrap_or_else(|e| panic!("cannot create {url} (is PostgreSQL running?): {e}"));
        Database { url }
    }

    /// Its URL through another port of the same host.
    fn url_via(&self, port: u16) -> String {
        let name = self.url.rsplit('/').next().unwrap();
        format!("postgres://postgres@127.0.0.1:{port}/{name}")
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Err(e) = agentops_server::store::postgres::drop_database(&self.url) {
            eprintln!("could not drop {}: {e}", self.url);
        }
    }
}

/// What a request got, and how long it took.
struct Answer {
    what: String,
    reply: Result<Reply, String>,
    took: Duration,
}

impl Answer {
    fn status(&self) -> Option<u16> {
        self.reply.as_ref().ok().map(|r| r.status)
    }

    fn is_success(&self) -> bool {
        self.status().is_some_and(|s| (200..300).contains(&s))
    }

    fn describe(&self) -> String {
        match &self.reply {
            Ok(reply) => format!(
                "{}: {} in {:.2?}: {}",
                self.what,
                reply.status,
                self.took,
                String::from_utf8_lossy(&reply.body)
            ),
            Err(e) => format!("{}: no answer in {:.2?}: {e}", self.what, self.took),
        }
    }

    /// Asserts an answer within [`ANSWER_WITHIN`]; the reply.
    fn in_time(&self) -> &Reply {
        let reply = self.reply.as_ref().unwrap_or_else(|_| {
            panic!(
                "hung: {} (the client gave up; bound {ANSWER_WITHIN:?})",
                self.describe()
            )
        });
        assert!(
            self.took < ANSWER_WITHIN,
            "slower than {ANSWER_WITHIN:?}: {}",
            self.describe()
        );
        reply
    }

    /// Asserts the store's refusal: in time, 503, a JSON error saying to retry, and the
    /// `Retry-After: 10` that `ApiError::StorageUnavailable` promises.
    fn assert_unavailable(&self) {
        let reply = self.in_time();
        assert_eq!(reply.status, 503, "{}", self.describe());
        let body: Value = serde_json::from_slice(&reply.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", self.describe()));
        let message = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message: {}", self.describe()));
        assert!(message.contains("retry later"), "{}", self.describe());
        assert_eq!(
            reply.header("retry-after"),
            Some("10"),
            "{}",
            self.describe()
        );
    }

    /// Asserts `/health`'s answer while the store is out: in time, 503, `"unavailable"`.
    fn assert_health_unavailable(&self) {
        let reply = self.in_time();
        assert_eq!(reply.status, 503, "{}", self.describe());
        let body = reply.json();
        assert_eq!(body["status"], "unavailable", "{}", self.describe());
        assert!(body["store"].is_string(), "{}", self.describe());
    }
}

/// A write the test sends, and the events it stores when acknowledged.
#[derive(Clone)]
struct Request {
    what: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// session → the ids of its events this request writes.
    events: Vec<(String, String)>,
}

/// The events of each session acknowledged with a 2xx.
#[derive(Default)]
struct Ledger {
    acknowledged: BTreeMap<String, BTreeSet<String>>,
}

impl Ledger {
    fn record(&mut self, request: &Request) {
        for (session, event) in &request.events {
            self.acknowledged
                .entry(session.clone())
                .or_default()
                .insert(event.clone());
        }
    }
}

struct Rig {
    server: Option<TestServer>,
    proxy: Proxy,
    _database: Database,
    /// A client that gives up after a while (see [`Rig::start`]), one connection per request.
    client: ureq::Agent,
    /// Signs tokens the server accepts.
    jwt: JwtKeys,
    ledger: Ledger,
}

impl Drop for Rig {
    fn drop(&mut self) {
        // A store call stuck in a hang would hold up the server's graceful shutdown (and the
        // runtime's, which waits for its blocking tasks): close every connection first.
        self.proxy.cut();
        drop(self.server.take());
    }
}

impl Rig {
    /// A database, the proxy, a server on them; a client that gives up after `patience`.
    fn start(test: &str, patience: Duration) -> Rig {
        let database = Database::create(test);
        let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap());
        let url = database.url_via(proxy.port);
        let server = TestServer::start_in(temp_dir(), |config| {
            config.database_url = Some(url);
        });
        // the secret the PostgreSQL database shares between replicas (`TestServer::jwt_secret`
        // looks in the data directory when the suite runs on SQLite)
        let secret = server
            .server()
            .store()
            .shared_secret("jwt", b"")
            .unwrap()
            .expect("a PostgreSQL store shares its JWT secret");
        let jwt = JwtKeys::new(secret, 3600);
        let client: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(patience))
            .max_idle_connections(0)
            .build()
            .into();
        Rig {
            server: Some(server),
            proxy,
            _database: database,
            client,
            jwt,
            ledger: Ledger::default(),
        }
    }

    fn server(&self) -> &TestServer {
        self.server.as_ref().unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server().url)
    }

    fn answer(
        what: String,
        started: Instant,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Answer {
        let reply = result
            .map_err(|e| e.to_string())
            .and_then(TestServer::try_reply);
        Answer {
            what,
            reply,
            took: started.elapsed(),
        }
    }

    fn get(&self, what: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.client.get(self.url(path));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let started = Instant::now();
        let answer = Self::answer(format!("GET {path} ({what})"), started, request.call());
        eprintln!("{}", short(&answer));
        answer
    }

    /// Sends `request` once; records its events when acknowledged.
    fn send(&mut self, request: &Request) -> Answer {
        let answer = self.send_only(request);
        if answer.is_success() {
            self.ledger.record(request);
        }
        answer
    }

    /// Sends `request` once (from any thread); records nothing.
    fn send_only(&self, request: &Request) -> Answer {
        let mut call = self.client.post(self.url(&request.path));
        for (k, v) in &request.headers {
            call = call.header(k, v);
        }
        let started = Instant::now();
        let answer = Self::answer(
            format!("POST {} ({})", request.path, request.what),
            started,
            call.send(&request.body[..]),
        );
        eprintln!("{}", short(&answer));
        answer
    }

    /// Sends `request`, asserting a 2xx.
    fn must_store(&mut self, request: &Request) {
        let answer = self.send(request);
        assert!(answer.is_success(), "{}", answer.describe());
    }

    fn health(&self) -> Answer {
        self.get("health", "/health", &[])
    }

    /// `POST /v2/create_session` with the API key; the session token it answers.
    fn create_session(&mut self, session: &str) -> String {
        let request = Request {
            what: "v2 create_session".into(),
            path: "/v2/create_session".into(),
            headers: vec![
                (KEY.0.into(), KEY.1.into()),
                ("Content-Type".into(), "application/json".into()),
            ],
            body: json!({"session": {"session_id": session,
                "init_timestamp": "2026-11-22T01:30:00.000000+00:00", "tags": ["outage"],
                "end_state": "Indeterminate", "end_timestamp": null}})
            .to_string()
            .into_bytes(),
            events: Vec::new(),
        };
        let answer = self.send(&request);
        assert!(answer.is_success(), "{}", answer.describe());
        answer.reply.unwrap().json()["jwt"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A session token of `session` that names no API key: the server checks nothing in the
    /// store to accept it, so its writes go straight to the writer thread.
    fn keyless_token(&self, session: &str) -> String {
        let now = unix_now();
        self.jwt.sign(&Claims {
            sub: session.into(),
            project_id: self.server().server().project_id().into(),
            exp: now + 3600,
            iat: now,
            key: None,
        })
    }

    /// The ids of the events the read API shows in `session` (asserting none is shown twice),
    /// and its `event_count`.
    fn stored_events(&self, session: &str) -> (BTreeSet<String>, u64) {
        let detail = self.server().session(session);
        let ids: Vec<String> = detail["events"]
            .as_array()
            .unwrap_or_else(|| panic!("no events in {detail}"))
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        let unique: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(unique.len(), ids.len(), "an event shown twice: {ids:?}");
        (unique, detail["event_count"].as_u64().unwrap())
    }

    /// Asserts that the read API shows exactly the acknowledged events, each once.
    fn assert_ledger_stored(&self) {
        for (session, acknowledged) in &self.ledger.acknowledged {
            let (stored, count) = self.stored_events(session);
            assert_eq!(&stored, acknowledged, "session {session}");
            assert_eq!(count, acknowledged.len() as u64, "session {session}");
            eprintln!(
                "session {session}: {} acknowledged events stored, each once",
                stored.len()
            );
        }
    }

    /// After the restore: sends `first` until it is acknowledged (within [`RECOVER_WITHIN`],
    /// each attempt answered in time); how long that took.
    fn wait_for_recovery(&mut self, first: &Request) -> Duration {
        let restored = Instant::now();
        loop {
            let answer = self.send(first);
            if answer.is_success() {
                return restored.elapsed();
            }
            answer.in_time();
            assert!(
                restored.elapsed() < RECOVER_WITHIN,
                "writes still fail {RECOVER_WITHIN:?} after the restore: {}",
                answer.describe()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

fn short(answer: &Answer) -> String {
    let mut text = answer.describe();
    if text.len() > 300 {
        let mut end = 300;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ---------------------------------------------------------------------------------------------
// What the tests send

/// A v2 event id: the session's tag and a number.
fn event_id(tag: u32, n: u32) -> String {
    format!("{tag:08x}-0000-4000-8000-{n:012x}")
}

/// `POST /v2/create_events` of the events `numbers` of `session`, with these credentials.
fn v2_events(
    what: &str,
    session: &str,
    tag: u32,
    numbers: std::ops::Range<u32>,
    credentials: &[(&str, &str)],
) -> Request {
    let ids: Vec<String> = numbers.map(|n| event_id(tag, n)).collect();
    let events: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({"id": id, "event_type": "actions",
                "init_timestamp": "2026-11-22T01:30:24.000000+00:00",
                "end_timestamp": "2026-11-22T01:30:25.000000+00:00",
                "params": {}, "returns": null, "session_id": session, "action_type": "step"})
        })
        .collect();
    let mut headers: Vec<(String, String)> = credentials
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    headers.push(("Content-Type".into(), "application/json".into()));
    Request {
        what: what.into(),
        path: "/v2/create_events".into(),
        headers,
        body: json!({ "events": events }).to_string().into_bytes(),
        events: ids.into_iter().map(|id| (session.to_owned(), id)).collect(),
    }
}

/// The session a plain trace's spans go to.
fn trace_session(trace: &str) -> String {
    uuid::Uuid::parse_str(trace).unwrap().to_string()
}

/// An OTLP span request (with the API key) of spans `numbers` of `trace`, as protobuf or
/// JSON.
fn otlp_spans(what: &str, trace: &str, numbers: std::ops::Range<u32>, protobuf: bool) -> Request {
    use base64::Engine;
    let hex_bytes = |hex: &str| -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    };
    let b64 = |hex: &str| base64::engine::general_purpose::STANDARD.encode(hex_bytes(hex));
    let span_ids: Vec<String> = numbers.map(|n| format!("00f067aa{n:08x}")).collect();
    let spans: Vec<Value> = span_ids
        .iter()
        .enumerate()
        .map(|(i, span)| {
            let start = T0 + i as u64 * 1_000_000;
            // the server reads hex or base64 ids in JSON; the protobuf converter reads base64
            let (trace_id, span_id) = if protobuf {
                (b64(trace), b64(span))
            } else {
                (trace.to_owned(), span.clone())
            };
            json!({"traceId": trace_id, "spanId": span_id, "name": "step", "kind": 1,
                "startTimeUnixNano": start.to_string(),
                "endTimeUnixNano": (start + 500_000).to_string(), "attributes": []})
        })
        .collect();
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "outage"}}]},
        "scopeSpans": [{"scope": {"name": "outage-test"}, "spans": spans}]}]});
    let (content_type, body) = if protobuf {
        ("application/x-protobuf", otlp_json_to_protobuf(&body))
    } else {
        ("application/json", body.to_string().into_bytes())
    };
    let session = trace_session(trace);
    Request {
        what: what.into(),
        path: "/v1/traces".into(),
        headers: vec![
            (KEY.0.into(), KEY.1.into()),
            ("Content-Type".into(), content_type.into()),
        ],
        body,
        events: span_ids
            .into_iter()
            .map(|id| (session.clone(), id))
            .collect(),
    }
}

const SESSION_A: &str = "0a0a0a0a-1111-4111-8111-000000000001";
const TAG_A: u32 = 0x0a0a_0a0a;
const TRACE_B: &str = "0b0b0b0b0b0b4b0b8b0b0b0b0b0b0b0b";

/// Before the outage: a v2 session with events, a plain trace's spans as JSON and protobuf;
/// all acknowledged and read back. The session token (which names the API key).
fn write_before_the_outage(rig: &mut Rig) -> String {
    let jwt = rig.create_session(SESSION_A);
    let bearer = format!("Bearer {jwt}");
    rig.must_store(&v2_events(
        "v2 events before",
        SESSION_A,
        TAG_A,
        0..5,
        &[KEY, ("Authorization", &bearer)],
    ));
    rig.must_store(&otlp_spans("OTLP JSON before", TRACE_B, 0..3, false));
    rig.must_store(&otlp_spans("OTLP protobuf before", TRACE_B, 3..5, true));
    assert!(rig.health().is_success());
    rig.assert_ledger_stored();
    assert_eq!(rig.stored_events(SESSION_A).1, 5);
    assert_eq!(rig.stored_events(&trace_session(TRACE_B)).1, 5);
    jwt
}

/// The writes sent during an outage, round `round`: v2 events with the SDK's credentials
/// (token and API key), with a token that needs no store lookup (straight to the writer),
/// and OTLP spans as JSON and as protobuf with the API key.
fn outage_writes(rig: &Rig, jwt: &str, round: u32) -> Vec<Request> {
    let bearer = format!("Bearer {jwt}");
    let keyless = format!("Bearer {}", rig.keyless_token(SESSION_A));
    let base = 100 + round * 100;
    vec![
        v2_events(
            &format!("v2 events, token and key, round {round}"),
            SESSION_A,
            TAG_A,
            base..base + 5,
            &[KEY, ("Authorization", &bearer)],
        ),
        v2_events(
            &format!("v2 events, key-less token (writer path), round {round}"),
            SESSION_A,
            TAG_A,
            base + 50..base + 55,
            &[("Authorization", &keyless)],
        ),
        otlp_spans(
            &format!("OTLP JSON, round {round}"),
            TRACE_B,
            base..base + 3,
            false,
        ),
        otlp_spans(
            &format!("OTLP protobuf, round {round}"),
            TRACE_B,
            base + 50..base + 52,
            true,
        ),
    ]
}

/// The reads tried during an outage.
fn outage_reads(rig: &Rig) -> Vec<Answer> {
    vec![
        rig.get(
            "session detail",
            &format!("/api/v1/sessions/{SESSION_A}"),
            &[KEY],
        ),
        rig.get("session list", "/api/v1/sessions", &[KEY]),
    ]
}

/// After the restore: the first refused write until it is acknowledged, then every other
/// write not acknowledged, and one acknowledged before (an SDK's duplicate resend); then the
/// read API must show every acknowledged event once.
fn recover_and_check(rig: &mut Rig, refused: &[Request], jwt: &str) {
    let first = refused.first().expect("some write was refused");
    let took = rig.wait_for_recovery(first);
    eprintln!("writes succeed again {took:.2?} after the restore");
    for request in &refused[1..] {
        rig.must_store(request);
    }
    let bearer = format!("Bearer {jwt}");
    rig.must_store(&v2_events(
        "v2 events before, resent",
        SESSION_A,
        TAG_A,
        0..5,
        &[KEY, ("Authorization", &bearer)],
    ));
    rig.must_store(&otlp_spans(
        "OTLP JSON before, resent",
        TRACE_B,
        0..3,
        false,
    ));
    rig.must_store(&v2_events(
        "v2 events after",
        SESSION_A,
        TAG_A,
        900..903,
        &[KEY, ("Authorization", &bearer)],
    ));
    let health = rig.health();
    assert_eq!(health.status(), Some(200), "{}", health.describe());
    assert_eq!(health.reply.unwrap().json()["status"], "ok");
    rig.assert_ledger_stored();
}

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn a_cut_database_is_refused_in_bounded_time_and_writes_resume_after_it() {
    let mut rig = Rig::start("cut", CLIENT_TIMEOUT);
    let jwt = write_before_the_outage(&mut rig);
    let before: usize = rig.ledger.acknowledged.values().map(BTreeSet::len).sum();

    rig.proxy.cut();
    let mut refused = Vec::new();
    // a second round: the process goes on answering
    for round in 0..2 {
        for request in outage_writes(&rig, &jwt, round) {
            let answer = rig.send(&request);
            assert!(!answer.is_success(), "{}", answer.describe());
            answer.assert_unavailable();
            refused.push(request);
        }
        for read in outage_reads(&rig) {
            read.assert_unavailable();
        }
        rig.health().assert_health_unavailable();
    }
    let during: usize = rig.ledger.acknowledged.values().map(BTreeSet::len).sum();
    assert_eq!(
        during, before,
        "nothing is acknowledged while PostgreSQL is cut"
    );

    rig.proxy.restore();
    recover_and_check(&mut rig, &refused, &jwt);
}

/// Writes that need nothing from the store before the writer thread (a token naming no API
/// key; also a token and key whose lookup is cached, for 5 s) are refused by the writer's
/// failed commit: 503 with `Retry-After`, as the store is unavailable, not a 500.
#[test]
fn writes_that_reach_the_writer_during_a_cut_answer_503_with_retry_after() {
    let mut rig = Rig::start("cutw", CLIENT_TIMEOUT);
    write_before_the_outage(&mut rig);
    rig.proxy.cut();
    let keyless = format!("Bearer {}", rig.keyless_token(SESSION_A));
    for round in 0..2 {
        let request = v2_events(
            &format!("v2 events, key-less token, round {round}"),
            SESSION_A,
            TAG_A,
            500 + round * 10..505 + round * 10,
            &[("Authorization", &keyless)],
        );
        rig.send(&request).assert_unavailable();
    }
}

/// During a hang every request must still be answered in bounded time: 503, `/health` 503
/// "unavailable". A request handed an idle pooled connection (the pool recycles without a
/// round trip) would wait on it for ever, and the writer with it, were it not for the store's
/// deadline on a connection's work (`PgStore::with_client`).
#[test]
fn a_hung_database_is_answered_503_in_bounded_time() {
    let mut rig = Rig::start("hang", CLIENT_TIMEOUT);
    let jwt = write_before_the_outage(&mut rig);
    rig.proxy.hang();
    let writes = outage_writes(&rig, &jwt, 0);
    let (written, reads, health) = during_a_hang(&rig, &writes);
    // let what hung finish before judging (and before the rig shuts down)
    rig.proxy.restore();
    for answer in written.iter().chain(&reads) {
        answer.assert_unavailable();
    }
    health.assert_health_unavailable();
}

#[test]
fn after_a_hang_heals_writes_resume_and_each_acknowledged_write_is_stored_once() {
    let mut rig = Rig::start("heal", HANG_PATIENCE);
    let jwt = write_before_the_outage(&mut rig);
    rig.proxy.hang();
    let writes = outage_writes(&rig, &jwt, 0);
    let (written, _reads, _health) = during_a_hang(&rig, &writes);
    // A write whose answer never came may still be committed once the bytes flow again: it
    // is resent below with the same ids, as an SDK would, and must be stored once.
    let mut refused = Vec::new();
    for (request, answer) in writes.iter().zip(&written) {
        if answer.is_success() {
            rig.ledger.record(request);
        } else {
            refused.push(request.clone());
        }
    }
    rig.proxy.restore();
    recover_and_check(&mut rig, &refused, &jwt);
}

/// Sends `writes`, the outage reads and `/health` at once, as several clients would; their
/// answers, each within the client's patience.
fn during_a_hang(rig: &Rig, writes: &[Request]) -> (Vec<Answer>, Vec<Answer>, Answer) {
    let (written, reads, health) = std::thread::scope(|scope| {
        let writes: Vec<_> = writes
            .iter()
            .map(|request| scope.spawn(move || rig.send_only(request)))
            .collect();
        let reads = scope.spawn(move || outage_reads(rig));
        let health = scope.spawn(move || rig.health());
        (
            writes
                .into_iter()
                .map(|w| w.join().unwrap())
                .collect::<Vec<_>>(),
            reads.join().unwrap(),
            health.join().unwrap(),
        )
    });
    let outcomes: Vec<String> = written
        .iter()
        .chain(&reads)
        .chain([&health])
        .map(Answer::describe)
        .collect();
    eprintln!("during the hang:\n  {}", outcomes.join("\n  "));
    (written, reads, health)
}
