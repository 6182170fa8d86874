//! A real server on 127.0.0.1:0 with a temporary data directory, and a blocking HTTP client.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use agentops_server::{Config, Server};
use serde_json::Value;

/// The API key the captured Python SDK requests carry.
pub const API_KEY: &str = "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
/// The limit on bodies the test servers use.
pub const MAX_BODY: usize = 256 * 1024;

pub struct TestServer {
    runtime: tokio::runtime::Runtime,
    /// The PostgreSQL database it stores in (see [`test_database`]), dropped with `dir`.
    database: Option<String>,
    server: Option<Server>,
    pub url: String,
    pub dir: PathBuf,
    agent: ureq::Agent,
    keep_dir: bool,
}

/// The PostgreSQL database the test server of `dir` stores in, if the tests run on one (see
/// [`agentops_server::store::postgres::test_database_for`]).
pub fn test_database(dir: &Path) -> Option<String> {
    agentops_server::store::postgres::test_database_for(dir)
}

pub fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("agentops-it-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        if self.body.is_empty() {
            return Value::Null;
        }
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// Asserts the status and that the body is `{"error": "..."}`; returns the message.
    pub fn error(&self, status: u16) -> String {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        let body = self.json();
        body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message in {body}"))
            .to_owned()
    }
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_in(temp_dir(), |_| {})
    }

    pub fn start_in(dir: PathBuf, configure: impl FnOnce(&mut Config)) -> Self {
        let database = test_database(&dir);
        Self::start_on(dir, database, configure)
    }

    /// [`TestServer::start_in`] on the data directory's SQLite file, whatever store the
    /// tests run on: for the tests of that file itself.
    pub fn start_sqlite_in(dir: PathBuf, configure: impl FnOnce(&mut Config)) -> Self {
        Self::start_on(dir, None, configure)
    }

    fn start_on(
        dir: PathBuf,
        database: Option<String>,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut config = Config::new(&dir);
        config.database_url = database.clone();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.api_key = Some(API_KEY.into());
        config.max_body_bytes = MAX_BODY;
        configure(&mut config);
        let server = runtime.block_on(Server::start(config)).unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        TestServer {
            url: server.url(),
            server: Some(server),
            runtime,
            database,
            dir,
            agent,
            keep_dir: false,
        }
    }

    /// The secret its tokens are signed with: the data directory's, or the one its
    /// PostgreSQL database shares between replicas.
    pub fn jwt_secret(&self) -> Vec<u8> {
        match &self.database {
            None => std::fs::read(self.dir.join(agentops_server::SECRET_FILE)).unwrap(),
            Some(_) => self
                .server()
                .store()
                .shared_secret("jwt", b"")
                .unwrap()
                .expect("a PostgreSQL store shares its JWT secret"),
        }
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    /// Shuts down gracefully and keeps the data directory; returns it.
    pub fn stop(mut self) -> PathBuf {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown()).unwrap();
        }
        self.keep_dir = true;
        self.dir.clone()
    }

    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: impl AsRef<[u8]>) -> Reply {
        let mut request = self.agent.post(format!("{}{path}", self.url));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        Self::reply(request.send(body.as_ref()).unwrap())
    }

    pub fn post_json(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
        let mut all = vec![("Content-Type", "application/json; charset=UTF-8")];
        all.extend_from_slice(headers);
        self.post(path, &all, body.to_string())
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = self.agent.get(format!("{}{path}", self.url));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        Self::reply(request.call().unwrap())
    }

    /// A response as a [`Reply`].
    pub fn reply(response: ureq::http::Response<ureq::Body>) -> Reply {
        Self::try_reply(response).unwrap()
    }

    /// A response as a [`Reply`], or why its body could not be read.
    pub fn try_reply(mut response: ureq::http::Response<ureq::Body>) -> Result<Reply, String> {
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        let body = response
            .body_mut()
            .read_to_vec()
            .map_err(|e| e.to_string())?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// `GET /api/v1/sessions/{id}` with the default API key.
    pub fn session(&self, id: &str) -> Value {
        let reply = self.get(
            &format!("/api/v1/sessions/{id}"),
            &[("X-Agentops-Api-Key", API_KEY)],
        );
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        reply.json()
    }

    /// Everything the read API shows for the default project, to compare before/after.
    pub fn snapshot(&self) -> Value {
        let list = self
            .get(
                "/api/v1/sessions?limit=1000",
                &[("X-Agentops-Api-Key", API_KEY)],
            )
            .json();
        let mut details = Vec::new();
        for s in list["sessions"].as_array().unwrap() {
            details.push(self.session(s["id"].as_str().unwrap()));
        }
        serde_json::json!({"list": list, "details": details})
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = self.runtime.block_on(server.shutdown());
        }
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
            if let Some(url) = &self.database {
                let _ = agentops_server::store::postgres::drop_database(url);
            }
        }
    }
}

/// A captured request from `tests/fixtures`.
pub fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Builds the protobuf `ExportTraceServiceRequest` of an OTLP JSON body (ids in base64 or hex),
/// independently of the server's own JSON reader.
pub fn otlp_json_to_protobuf(json: &Value) -> Vec<u8> {
    use base64::Engine;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
    use prost::Message;

    fn id(v: &Value) -> Vec<u8> {
        let s = v.as_str().unwrap_or("");
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .unwrap_or_default()
    }
    fn num(v: &Value) -> u64 {
        v.as_str()
            .map(|s| s.parse().unwrap())
            .or_else(|| v.as_u64())
            .unwrap_or(0)
    }
    fn any(v: &Value) -> AnyValue {
        let value = if let Some(s) = v.get("stringValue") {
            any_value::Value::StringValue(s.as_str().unwrap().to_owned())
        } else if let Some(i) = v.get("intValue") {
            any_value::Value::IntValue(num(i) as i64)
        } else if let Some(d) = v.get("doubleValue") {
            any_value::Value::DoubleValue(d.as_f64().unwrap())
        } else if let Some(b) = v.get("boolValue") {
            any_value::Value::BoolValue(b.as_bool().unwrap())
        } else if let Some(a) = v.get("arrayValue") {
            any_value::Value::ArrayValue(ArrayValue {
                values: a["values"].as_array().unwrap().iter().map(any).collect(),
            })
        } else {
            panic!("unsupported value {v}")
        };
        AnyValue { value: Some(value) }
    }
    fn kvs(v: &Value) -> Vec<KeyValue> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|kv| KeyValue {
                        key: kv["key"].as_str().unwrap().to_owned(),
                        value: Some(any(&kv["value"])),
                        ..Default::default()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    let status_code = |s: &Value| match s.get("code").and_then(Value::as_str) {
        Some("STATUS_CODE_OK") => 1,
        Some("STATUS_CODE_ERROR") => 2,
        _ => 0,
    };
    let kind = |s: &Value| match s.as_str() {
        Some("SPAN_KIND_INTERNAL") => 1,
        Some("SPAN_KIND_CLIENT") => 3,
        _ => 0,
    };
    let request = ExportTraceServiceRequest {
        resource_spans: json["resourceSpans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|rs| ResourceSpans {
                resource: Some(Resource {
                    attributes: kvs(&rs["resource"]["attributes"]),
                    ..Default::default()
                }),
                scope_spans: rs["scopeSpans"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|ss| ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: ss["scope"]["name"].as_str().unwrap_or("").to_owned(),
                            version: ss["scope"]["version"].as_str().unwrap_or("").to_owned(),
                            ..Default::default()
                        }),
                        spans: ss["spans"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|s| Span {
                                trace_id: id(&s["traceId"]),
                                span_id: id(&s["spanId"]),
                                parent_span_id: id(&s["parentSpanId"]),
                                name: s["name"].as_str().unwrap().to_owned(),
                                kind: kind(&s["kind"]),
                                start_time_unix_nano: num(&s["startTimeUnixNano"]),
                                end_time_unix_nano: num(&s["endTimeUnixNano"]),
                                attributes: kvs(&s["attributes"]),
                                status: Some(Status {
                                    code: status_code(&s["status"]),
                                    message: s["status"]["message"]
                                        .as_str()
                                        .unwrap_or("")
                                        .to_owned(),
                                }),
                                events: s["events"]
                                    .as_array()
                                    .map(|evs| {
                                        evs.iter()
                                            .map(|e| span::Event {
                                                time_unix_nano: num(&e["timeUnixNano"]),
                                                name: e["name"].as_str().unwrap().to_owned(),
                                                attributes: kvs(&e["attributes"]),
                                                ..Default::default()
                                            })
                                            .collect()
                                    })
                                    .unwrap_or_default(),
                                flags: s["flags"].as_u64().unwrap_or(0) as u32,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
    };
    request.encode_to_vec()
}
