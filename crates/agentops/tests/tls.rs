//! `https://` backends: reached through rustls with the built-in roots or the authorities
//! given in `AGENTOPS_CA_CERT`; an untrusted certificate fails at once, with the reason,
//! instead of being retried for a minute.

mod support;

use std::time::{Duration, Instant};

use agentops::{BackendError, Client, EndState, Event, SessionOptions};
use support::{FakeBackend, API_KEY};

fn builder(backend: &FakeBackend) -> agentops::ConfigBuilder {
    agentops::Config::builder()
        .ignore_env()
        .api_key(API_KEY)
        .endpoint(backend.endpoint())
        .max_wait_time(Duration::from_millis(50))
}

#[test]
fn a_backend_with_a_private_certificate_is_reached_once_its_authority_is_trusted() {
    let (backend, ca_pem) = FakeBackend::start_tls();
    assert!(backend.endpoint().starts_with("https://localhost:"));
    let client = Client::new(builder(&backend).ca_cert_pem(ca_pem).build().unwrap()).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    session.wait_until_created(Duration::from_secs(10)).unwrap();
    session.record(Event::action("over TLS")).unwrap();
    let summary = session.end(EndState::Success, "").unwrap();
    assert_eq!(summary.delivery.delivered, 1, "{summary:?}");
    assert_eq!(summary.token_cost.as_deref(), Some("0.0123"));
    assert_eq!(backend.accepted_events()[0]["action_type"], "over TLS");
}

#[test]
fn the_authority_can_come_from_a_pem_file_named_by_agentops_ca_cert() {
    let (backend, ca_pem) = FakeBackend::start_tls();
    let file = std::env::temp_dir().join(format!("agentops-ca-{}.pem", std::process::id()));
    std::fs::write(&file, ca_pem).unwrap();
    let path = file.display().to_string();
    let config = builder(&backend)
        .build_with_env(|name| (name == "AGENTOPS_CA_CERT").then(|| path.clone()))
        .unwrap();
    assert_eq!(config.ca_certificates.len(), 1);
    let session = Client::new(config)
        .unwrap()
        .start_session(SessionOptions::default())
        .unwrap();
    session.record(Event::action("x")).unwrap();
    assert_eq!(
        session
            .end(EndState::Success, "")
            .unwrap()
            .delivery
            .delivered,
        1
    );
    let _ = std::fs::remove_file(file);
}

#[test]
fn an_untrusted_certificate_fails_fast_and_says_why() {
    let (backend, _) = FakeBackend::start_tls();
    // The default policy would retry for half a minute; an untrusted certificate is not
    // retried at all.
    let client = Client::new(builder(&backend).build().unwrap()).unwrap();
    let session = client.start_session(SessionOptions::default()).unwrap();
    let started = Instant::now();
    let err = session
        .wait_until_created(Duration::from_secs(20))
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, BackendError::Unusable { .. }), "{err:?}");
    assert!(err.to_string().contains("TLS"), "{err}");
    session.record(Event::action("never sent")).unwrap();
    let summary = session.end(EndState::Success, "").unwrap();
    assert_eq!(summary.delivery.failed, 1);
    assert!(summary.delivery.is_balanced());
    assert!(
        backend.requests().is_empty(),
        "nothing crossed the failed handshake"
    );
}

#[test]
fn https_to_a_plain_http_server_fails_fast_too() {
    // A plain HTTP server answers the TLS greeting with an HTTP error, as most do.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            use std::io::Write as _;
            let mut stream = stream;
            let _ = stream.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let config = agentops::Config::builder()
        .ignore_env()
        .api_key(API_KEY)
        .endpoint(format!("https://localhost:{port}"))
        .build()
        .unwrap();
    let session = Client::new(config)
        .unwrap()
        .start_session(SessionOptions::default())
        .unwrap();
    let started = Instant::now();
    let err = session
        .wait_until_created(Duration::from_secs(20))
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, BackendError::Unusable { .. }), "{err:?}");
}
