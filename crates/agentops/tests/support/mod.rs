//! A scripted fake AgentOps backend on loopback: records every request and answers as the
//! test's script says (faults included), falling back to the v2 API's normal answers.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const API_KEY: &str = "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/// One request as the fake backend received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HashMap<String, String>,
    /// The body, gunzipped if it came compressed: JSON as sent, or an OTLP protobuf export
    /// decoded with `opentelemetry-proto` (see [`decode_otlp`]).
    pub body: Value,
    /// The body as received, gunzipped if it came compressed (an OTLP metrics export is
    /// decoded from it by the test that reads it).
    pub raw: Vec<u8>,
    /// The status the backend answered with.
    pub status: u16,
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// What the backend answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            body: json!({"error": format!("scripted {status}")}).to_string(),
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Script = Box<dyn FnMut(&Recorded) -> Option<Reply> + Send>;

struct State {
    requests: Mutex<Vec<Recorded>>,
    script: Mutex<Option<Script>>,
    jwt_generation: AtomicUsize,
    token_generation: AtomicUsize,
    running: AtomicBool,
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// The fake backend. Dropping it stops it.
pub struct FakeBackend {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl FakeBackend {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A backend on `https://localhost:<port>` with a fresh self-signed certificate, and that
    /// certificate in PEM (the CA a client must trust).
    pub fn start_tls() -> (Self, String) {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .expect("TLS server config");
        (Self::start_with(Some(Arc::new(config))), cert.pem())
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let backend = Self {
            addr,
            state: Arc::new(State {
                requests: Mutex::new(Vec::new()),
                script: Mutex::new(None),
                jwt_generation: AtomicUsize::new(1),
                token_generation: AtomicUsize::new(0),
                running: AtomicBool::new(false),
                tls,
            }),
        };
        backend.serve(listener);
        backend
    }

    /// A free loopback address with nothing listening on it (yet).
    pub fn reserve() -> Self {
        let backend = Self::start();
        backend.stop();
        backend
    }

    fn serve(&self, listener: TcpListener) {
        listener.set_nonblocking(true).expect("nonblocking");
        self.state.running.store(true, Ordering::SeqCst);
        let state = self.state.clone();
        thread::spawn(move || {
            while state.running.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let state = state.clone();
                        thread::spawn(move || {
                            let _ = stream.set_nonblocking(false);
                            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                            match &state.tls {
                                None => handle_connection(stream, &state),
                                Some(tls) => {
                                    let Ok(connection) = rustls::ServerConnection::new(tls.clone())
                                    else {
                                        return;
                                    };
                                    handle_connection(
                                        rustls::StreamOwned::new(connection, stream),
                                        &state,
                                    );
                                }
                            }
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
    }

    /// Stops: new connections are refused, and open ones are closed at their next request.
    pub fn stop(&self) {
        self.state.running.store(false, Ordering::SeqCst);
        thread::sleep(Duration::from_millis(30));
    }

    /// Listens again on the same address.
    pub fn resume(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match TcpListener::bind(self.addr) {
                Ok(listener) => return self.serve(listener),
                Err(err) if Instant::now() < deadline => {
                    let _ = err;
                    thread::sleep(Duration::from_millis(20));
                }
                Err(err) => panic!("cannot listen on {} again: {err}", self.addr),
            }
        }
    }

    pub fn endpoint(&self) -> String {
        match self.state.tls {
            None => format!("http://{}", self.addr),
            Some(_) => format!("https://localhost:{}", self.addr.port()),
        }
    }

    /// Answers with `script`'s reply when it gives one, else normally.
    pub fn script(&self, script: impl FnMut(&Recorded) -> Option<Reply> + Send + 'static) {
        *self.state.script.lock().unwrap() = Some(Box::new(script));
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Every span the backend accepted over OTLP (2xx `/v1/traces` answers), in arrival order.
    pub fn accepted_spans(&self) -> Vec<Value> {
        self.requests_to("/v1/traces")
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .flat_map(|r| r.body["spans"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// Every event the backend accepted (from 2xx `create_events` answers), in arrival order.
    pub fn accepted_events(&self) -> Vec<Value> {
        self.requests_to("/v2/create_events")
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .flat_map(|r| r.body["events"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

impl Drop for FakeBackend {
    fn drop(&mut self) {
        self.state.running.store(false, Ordering::SeqCst);
    }
}

fn handle_connection(stream: impl Read + Write, state: &State) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        if !state.running.load(Ordering::SeqCst) {
            // Stopped: open connections die too, without an answer.
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut raw = vec![0; length];
        if reader.read_exact(&mut raw).is_err() {
            return;
        }
        if headers.get("content-encoding").map(String::as_str) == Some("gzip") {
            let mut plain = Vec::new();
            if flate2::read::GzDecoder::new(&raw[..])
                .read_to_end(&mut plain)
                .is_err()
            {
                return;
            }
            raw = plain;
        }
        let body: Value = if path == "/v1/traces" {
            decode_otlp(&raw)
        } else {
            serde_json::from_slice(&raw).unwrap_or(Value::Null)
        };
        let mut recorded = Recorded {
            path,
            headers,
            body,
            raw,
            status: 0,
            at: Instant::now(),
        };
        let scripted = state
            .script
            .lock()
            .unwrap()
            .as_mut()
            .and_then(|script| script(&recorded));
        let reply = scripted.unwrap_or_else(|| normal_answer(&recorded, state));
        recorded.status = reply.status;
        state.requests.lock().unwrap().push(recorded);
        thread::sleep(reply.delay);
        let mut head = format!(
            "HTTP/1.1 {} Scripted\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            reply.status,
            reply.body.len()
        );
        for (name, value) in &reply.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let writer = reader.get_mut();
        if writer.write_all(head.as_bytes()).is_err()
            || writer.write_all(reply.body.as_bytes()).is_err()
            || writer.flush().is_err()
        {
            return;
        }
    }
}

fn normal_answer(request: &Recorded, state: &State) -> Reply {
    let session_id = request.body["session"]["session_id"]
        .as_str()
        .or_else(|| request.body["session_id"].as_str())
        .unwrap_or("?")
        .to_owned();
    let body = match request.path.as_str() {
        "/v2/create_session" => json!({
            "status": "success",
            "jwt": format!("jwt-{session_id}-1"),
            "session_url": format!("http://dashboard.test/sessions/{session_id}"),
        }),
        "/v2/reauthorize_jwt" => {
            let generation = state.jwt_generation.fetch_add(1, Ordering::SeqCst) + 1;
            json!({"jwt": format!("jwt-{session_id}-{generation}")})
        }
        "/v2/update_session" => json!({"status": "success", "token_cost": "0.0123"}),
        "/v2/create_events" => json!("Success"),
        "/v3/auth/token" => {
            let generation = state.token_generation.fetch_add(1, Ordering::SeqCst) + 1;
            json!({"token": format!("otlp-token-{generation}"), "project_id": "p1"})
        }
        "/v1/traces" => {
            return Reply {
                status: 200,
                body: String::new(),
                headers: vec![("Content-Type".into(), "application/x-protobuf".into())],
                delay: Duration::ZERO,
            }
        }
        _ => json!({"status": "success"}),
    };
    Reply {
        status: 200,
        body: body.to_string(),
        headers: Vec::new(),
        delay: Duration::ZERO,
    }
}

/// An OTLP `ExportTraceServiceRequest` in protobuf, decoded with `opentelemetry-proto` (the
/// OpenTelemetry Collector's own types) into `{"resource": {..}, "spans": [..]}`, each span
/// with hex ids, its name, nanosecond times, status and attributes as a JSON object.
pub fn decode_otlp(raw: &[u8]) -> Value {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use prost::Message as _;

    fn json_of(value: &Option<AnyValue>) -> Value {
        match value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => json!(s),
            Some(any_value::Value::IntValue(i)) => json!(i),
            Some(any_value::Value::DoubleValue(f)) => json!(f),
            Some(any_value::Value::BoolValue(b)) => json!(b),
            Some(any_value::Value::ArrayValue(array)) => Value::Array(
                array
                    .values
                    .iter()
                    .map(|v| json_of(&Some(v.clone())))
                    .collect(),
            ),
            _ => Value::Null,
        }
    }
    fn attributes(list: &[KeyValue]) -> Value {
        Value::Object(
            list.iter()
                .map(|kv| (kv.key.clone(), json_of(&kv.value)))
                .collect(),
        )
    }
    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
    let Ok(request) = ExportTraceServiceRequest::decode(raw) else {
        return json!({"undecodable": raw.len()});
    };
    let mut spans = Vec::new();
    let mut resource = Value::Null;
    for resource_spans in &request.resource_spans {
        if let Some(r) = &resource_spans.resource {
            resource = attributes(&r.attributes);
        }
        for scope in &resource_spans.scope_spans {
            for span in &scope.spans {
                let status = span.status.clone().unwrap_or_default();
                spans.push(json!({
                    "trace_id": hex(&span.trace_id),
                    "span_id": hex(&span.span_id),
                    "parent_span_id": hex(&span.parent_span_id),
                    "name": span.name,
                    "kind": span.kind,
                    "start": span.start_time_unix_nano,
                    "end": span.end_time_unix_nano,
                    "status": {"code": status.code, "message": status.message},
                    "scope": scope.scope.as_ref().map(|s| s.name.clone()),
                    "attributes": attributes(&span.attributes),
                }));
            }
        }
    }
    json!({"resource": resource, "spans": spans})
}

/// Waits until `condition` holds, failing the test after `timeout`.
pub fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "not true within {timeout:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// A configuration pointing at `backend`, quick to export and to retry.
pub fn config(backend: &FakeBackend) -> agentops::ConfigBuilder {
    agentops::Config::builder()
        .ignore_env()
        .api_key(API_KEY)
        .endpoint(backend.endpoint())
        .max_wait_time(Duration::from_millis(50))
        .retry_min_backoff(Duration::from_millis(20))
        .retry_max_backoff(Duration::from_millis(200))
        .request_timeout(Duration::from_secs(2))
}
