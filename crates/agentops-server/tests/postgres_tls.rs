//! The server on a PostgreSQL database it reaches over TLS: through a proxy that speaks
//! PostgreSQL's TLS (the `SSLRequest`, then a TLS session with a certificate made here) and
//! forwards to the local server, refusing anything sent in the clear. A URL with
//! `sslmode=verify-full&sslrootcert=…` reaches it and every request works; a certificate
//! from an unknown authority, or for another name, is refused at start with the reason.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use agentops_server::store::postgres::{create_database_if_missing, drop_database, PgStore};
use agentops_server::store::StoreError;
use common::{temp_dir, TestServer, API_KEY};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The local PostgreSQL server, reached in the clear.
const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";
/// PostgreSQL's `SSLRequest`: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// A TLS-only PostgreSQL front: TLS sessions it served, and connections refused for not
/// asking for TLS.
struct TlsProxy {
    port: u16,
    tls_sessions: Arc<AtomicUsize>,
    refused_plain: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl TlsProxy {
    /// A proxy presenting a certificate for `names`; it and the certificate's PEM file.
    fn start(names: &[&str], dir: &Path) -> (TlsProxy, PathBuf) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(names).expect("certificate");
        let pem = dir.join("server-ca.pem");
        std::fs::write(&pem, cert.pem()).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let tls_sessions = Arc::new(AtomicUsize::new(0));
        let refused_plain = Arc::new(AtomicUsize::new(0));
        let upstream: SocketAddr = "127.0.0.1:5432".parse().unwrap();
        runtime.spawn({
            let (tls_sessions, refused_plain) = (tls_sessions.clone(), refused_plain.clone());
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let acceptor = acceptor.clone();
                    let (tls_sessions, refused_plain) =
                        (tls_sessions.clone(), refused_plain.clone());
                    tokio::spawn(async move {
                        let _ =
                            serve(client, acceptor, upstream, &tls_sessions, &refused_plain).await;
                    });
                }
            }
        });
        let proxy = TlsProxy {
            port,
            tls_sessions,
            refused_plain,
            _runtime: runtime,
        };
        (proxy, pem)
    }
}

/// One client connection: TLS if it asks first, else refused.
async fn serve(
    mut client: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    upstream: SocketAddr,
    tls_sessions: &AtomicUsize,
    refused_plain: &AtomicUsize,
) -> std::io::Result<()> {
    let mut head = [0u8; 8];
    client.read_exact(&mut head).await?;
    if head != SSL_REQUEST {
        refused_plain.fetch_add(1, Ordering::SeqCst);
        return Ok(());
    }
    client.write_all(b"S").await?;
    let mut tls = acceptor.accept(client).await?;
    tls_sessions.fetch_add(1, Ordering::SeqCst);
    let mut database = TcpStream::connect(upstream).await?;
    tokio::io::copy_bidirectional(&mut tls, &mut database).await?;
    Ok(())
}

/// A database of its own on the local server, dropped after the test.
struct Database {
    name: String,
}

impl Database {
    fn create(test: &str) -> Database {
        let name = format!(
            "agentops_it_tls_{test}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        create_database_if_missing(&format!("{POSTGRES}/{name}"))
            .unwrap_or_else(|e| panic!("cannot create {name} (is PostgreSQL running?): {e}"));
        Database { name }
    }

    /// Its URL through the proxy on `port`, with `query`.
    fn url_via(&self, port: u16, query: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/{}?{query}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Err(e) = drop_database(&format!("{POSTGRES}/{}", self.name)) {
            eprintln!("could not drop {}: {e}", self.name);
        }
    }
}

/// The URL's `sslrootcert`, percent-encoded as a URL value.
fn root_param(pem: &Path) -> String {
    format!(
        "sslrootcert={}",
        pem.display().to_string().replace('/', "%2F")
    )
}

#[test]
fn a_server_on_a_database_behind_tls_stores_and_reads_and_sends_nothing_in_the_clear() {
    let dir = temp_dir();
    let (proxy, pem) = TlsProxy::start(&["127.0.0.1"], &dir);
    let database = Database::create("ok");
    let url = database.url_via(
        proxy.port,
        &format!("sslmode=verify-full&{}", root_param(&pem)),
    );
    let server = TestServer::start_in(dir, |config| config.database_url = Some(url));
    let key = ("X-Agentops-Api-Key", API_KEY);
    let session = "7a7a7a7a-1111-4111-8111-000000000001";
    let created = server.post_json(
        "/v2/create_session",
        &[key],
        &json!({"session": {"session_id": session,
            "init_timestamp": "2026-12-03T10:00:00.000000+00:00", "tags": ["tls"],
            "end_state": "Indeterminate", "end_timestamp": null}}),
    );
    assert_eq!(created.status, 200, "{}", created.error(200));
    let jwt = created.json()["jwt"].as_str().unwrap().to_string();
    let events = server.post_json(
        "/v2/create_events",
        &[key, ("Authorization", &format!("Bearer {jwt}"))],
        &json!({"events": [{"id": "b1b1b1b1-2222-4222-8222-000000000001",
            "event_type": "actions", "action_type": "search",
            "init_timestamp": "2026-12-03T10:00:01.000000+00:00",
            "end_timestamp": "2026-12-03T10:00:02.000000+00:00"}]}),
    );
    assert_eq!(events.status, 200, "{}", events.error(200));
    let detail = server.session(session);
    assert_eq!(
        detail["events"].as_array().map(Vec::len),
        Some(1),
        "{detail}"
    );
    let health = server.get("/health", &[]);
    assert_eq!(health.status, 200, "{}", health.error(200));
    assert!(proxy.tls_sessions.load(Ordering::SeqCst) > 0);
    assert_eq!(proxy.refused_plain.load(Ordering::SeqCst), 0);
    drop(server);
}

/// The reason a store at `url` could not be opened.
fn refused(url: &str) -> String {
    match PgStore::connect(url) {
        Err(StoreError::Unavailable(reason)) => reason,
        Err(other) => panic!("{url}: not unavailable: {other}"),
        Ok(_) => panic!("{url}: connected"),
    }
}

#[test]
fn a_certificate_from_an_unknown_authority_is_refused_with_the_reason() {
    let dir = temp_dir();
    let (proxy, _pem) = TlsProxy::start(&["127.0.0.1"], &dir);
    let database = Database::create("ca");
    // no sslrootcert: Mozilla's roots, which did not sign the proxy's certificate
    let reason = refused(&database.url_via(proxy.port, "sslmode=require"));
    assert!(reason.contains("certificate"), "{reason}");
    assert!(reason.contains("UnknownIssuer"), "{reason}");
    assert_eq!(proxy.refused_plain.load(Ordering::SeqCst), 0);
}

#[test]
fn a_certificate_for_another_name_is_refused_with_the_reason() {
    let dir = temp_dir();
    let (proxy, pem) = TlsProxy::start(&["db.example.com"], &dir);
    let database = Database::create("name");
    let reason = refused(&database.url_via(
        proxy.port,
        &format!("sslmode=verify-full&{}", root_param(&pem)),
    ));
    assert!(reason.contains("certificate"), "{reason}");
    assert!(reason.contains("not valid for name"), "{reason}");
}

#[test]
fn a_url_without_sslmode_does_not_ask_for_tls() {
    let dir = temp_dir();
    let (proxy, _pem) = TlsProxy::start(&["127.0.0.1"], &dir);
    let database = Database::create("plain");
    let reason = refused(&database.url_via(proxy.port, "connect_timeout=5"));
    assert!(!reason.is_empty());
    assert_eq!(proxy.refused_plain.load(Ordering::SeqCst), 1);
    assert_eq!(proxy.tls_sessions.load(Ordering::SeqCst), 0);
}
