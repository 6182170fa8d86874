//! Slow, idle and credential-less clients cannot exhaust the server: headers must arrive
//! within the header timeout, bodies within the body timeout, connections beyond the cap are
//! closed, and a write without valid credentials is refused before its body is read.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{temp_dir, TestServer, API_KEY};

fn connect(server: &TestServer) -> TcpStream {
    let address = server.url.trim_start_matches("http://").to_owned();
    let stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// What the server sends until it closes the connection (or the read timeout passes).
fn read_all(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn a_request_whose_headers_never_finish_is_closed_after_the_header_timeout() {
    let server = TestServer::start_in(temp_dir(), |config| {
        config.header_timeout = Duration::from_millis(500);
    });
    let mut slow = connect(&server);
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = Instant::now();
    let answer = read_all(&mut slow);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(!answer.contains("200 OK"), "{answer}");
    assert_eq!(server.get("/health", &[]).status, 200);
}

#[test]
fn a_body_that_never_arrives_gets_408() {
    let server = TestServer::start_in(temp_dir(), |config| {
        config.body_timeout = Duration::from_millis(500);
    });
    let mut slow = connect(&server);
    let head = format!(
        "POST /v2/create_session HTTP/1.1\r\nHost: x\r\nX-Agentops-Api-Key: {API_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    slow.write_all(head.as_bytes()).unwrap();
    let answer = read_all(&mut slow);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\""), "a JSON error: {answer}");
}

#[test]
fn a_write_without_valid_credentials_is_refused_before_its_body_is_read() {
    let server = TestServer::start();
    for (path, credentials, status) in [
        ("/v2/create_session", "", 401),
        (
            "/v1/traces",
            "X-Agentops-Api-Key: 0d5b7c1e-55a4-4e5e-8f1e-999999999999\r\n",
            401,
        ),
        (
            "/v1/traces",
            "Authorization: Bearer forged.token.here\r\n",
            401,
        ),
        // Spans without credentials are held for their trace, with a smaller body limit.
        ("/v1/traces", "", 413),
    ] {
        let mut client = connect(&server);
        // A 15 MB body is announced and never sent: the answer comes without waiting for it.
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\n{credentials}Content-Type: application/x-protobuf\r\n\
             Content-Length: 15000000\r\n\r\n"
        );
        client.write_all(head.as_bytes()).unwrap();
        let started = Instant::now();
        let mut answer = vec![0; 4096];
        let read = client.read(&mut answer).unwrap();
        let answer = String::from_utf8_lossy(&answer[..read]);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{path} {credentials:?}: {answer}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

#[test]
fn only_a_few_requests_without_credentials_are_read_at_once() {
    let server = TestServer::start();
    let announce = |client: &mut TcpStream| {
        // 1 MB announced, a little sent: the server is reading it.
        let head =
            "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n\
                    Content-Length: 1000000\r\n\r\n\x0a";
        client.write_all(head.as_bytes()).unwrap();
    };
    let mut slow: Vec<TcpStream> = (0..agentops_server::ingest::held::MAX_READING)
        .map(|_| connect(&server))
        .collect();
    for client in &mut slow {
        announce(client);
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut one_more = connect(&server);
    announce(&mut one_more);
    let answer = read_all(&mut one_more);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("being read already"), "{answer}");
    // With credentials, writes go on meanwhile.
    let reply = server.post(
        "/v1/traces",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("X-Agentops-Api-Key", API_KEY),
        ],
        b"",
    );
    assert_eq!(reply.status, 200);
    drop(slow);
}

#[test]
fn connections_beyond_the_cap_are_closed_and_the_server_recovers() {
    let server = TestServer::start_in(temp_dir(), |config| {
        config.max_connections = 4;
        config.header_timeout = Duration::from_secs(2);
    });
    let idle: Vec<TcpStream> = (0..4).map(|_| connect(&server)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = connect(&server);
    let _ = extra.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    let answer = read_all(&mut extra);
    assert!(answer.is_empty(), "closed at once: {answer:?}");
    // The idle ones are closed by the header timeout; then the server serves again.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(server.get("/health", &[]).status, 200);
    drop(idle);
}
