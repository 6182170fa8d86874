//! TLS to PostgreSQL, as the connection URL asks (`sslmode`, `sslrootcert`), over rustls.
//!
//! - no `sslmode`, or `sslmode=disable`: no TLS (libpq would try TLS first without checking
//!   the server: that protects nothing, so here the URL says when it wants TLS);
//! - `sslmode=prefer`: TLS when the server offers it;
//! - `sslmode=require`, `verify-ca` or `verify-full`: TLS, or no connection.
//!
//! Whenever TLS is used, the server's certificate is verified, its name included (libpq's
//! `verify-full`): against the CA certificates of the PEM file `sslrootcert` names (a managed
//! database's CA bundle, say), else against Mozilla's roots (`webpki-roots`).

use std::str::FromStr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::redact;
use crate::store::StoreError;

/// What connecting to the database at a URL takes: its configuration and the TLS connector
/// (used only when the configuration's `sslmode` asks for TLS).
pub(crate) fn connection(
    url: &str,
) -> Result<(tokio_postgres::Config, MakeRustlsConnect), StoreError> {
    let TlsUrl {
        url: plain,
        mode,
        root_file,
    } = TlsUrl::split(url)?;
    let mut config = tokio_postgres::Config::from_str(&plain)
        .map_err(|e| StoreError::Config(format!("{} is not a PostgreSQL URL: {e}", redact(url))))?;
    if mode.is_none() {
        config.ssl_mode(SslMode::Disable);
    }
    let roots = match &root_file {
        Some(path) => roots_from_file(path)?,
        None => rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StoreError::Config(format!("TLS to PostgreSQL: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok((config, MakeRustlsConnect::new(tls)))
}

/// One connection to the database at `url`, with TLS as it asks: the client, and the task
/// that drives the connection (it ends when the client is dropped).
pub(crate) async fn connect(
    url: &str,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), StoreError> {
    let (config, tls) = connection(url)?;
    let (client, connection) = config.connect(tls).await.map_err(|e| {
        StoreError::Unavailable(format!(
            "PostgreSQL at {}: {}",
            redact(url),
            super::with_causes(&e)
        ))
    })?;
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok((client, driver))
}

/// A connection URL with what tokio-postgres does not read taken out of it.
#[derive(Debug, PartialEq)]
struct TlsUrl {
    /// The URL without `sslrootcert`, its `sslmode` one tokio-postgres knows.
    url: String,
    /// The `sslmode` it gave, if any.
    mode: Option<String>,
    /// The `sslrootcert` it gave, if any.
    root_file: Option<String>,
}

impl TlsUrl {
    fn split(url: &str) -> Result<TlsUrl, StoreError> {
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, query),
            None => (url, ""),
        };
        let mut kept = Vec::new();
        let mut mode = None;
        let mut root_file = None;
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => {
                    let known = match value {
                        "disable" | "prefer" | "require" => value,
                        "verify-ca" | "verify-full" => "require",
                        other => {
                            return Err(StoreError::Config(format!(
                                "sslmode={other} in {}: use disable, prefer, require, verify-ca or verify-full",
                                redact(url)
                            )))
                        }
                    };
                    kept.push(format!("sslmode={known}"));
                    mode = Some(value.to_string());
                }
                "sslrootcert" => root_file = Some(percent_decoded(value)),
                _ => kept.push(pair.to_string()),
            }
        }
        if root_file.is_some() && matches!(mode.as_deref(), None | Some("disable")) {
            return Err(StoreError::Config(format!(
                "{} gives sslrootcert without asking for TLS: add sslmode=require (or verify-full)",
                redact(url)
            )));
        }
        let url = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok(TlsUrl {
            url,
            mode,
            root_file,
        })
    }
}

/// `text` with its `%XX` escapes decoded (a path in a URL: `/` may be written `%2F`).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The CA certificates of the PEM file at `path`.
fn roots_from_file(path: &str) -> Result<rustls::RootCertStore, StoreError> {
    let unusable = |why: String| StoreError::Config(format!("sslrootcert {path}: {why}"));
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| unusable(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unusable(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certificates);
    if added == 0 {
        return Err(unusable("holds no usable CA certificate (PEM)".into()));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> TlsUrl {
        TlsUrl::split(url).unwrap()
    }

    #[test]
    fn the_url_keeps_what_tokio_postgres_reads_and_gives_the_rest_apart() {
        assert_eq!(
            split("postgres://u@h/db"),
            TlsUrl {
                url: "postgres://u@h/db".into(),
                mode: None,
                root_file: None
            }
        );
        assert_eq!(
            split("postgres://u@h/db?connect_timeout=3&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem"),
            TlsUrl {
                url: "postgres://u@h/db?connect_timeout=3&sslmode=require".into(),
                mode: Some("verify-full".into()),
                root_file: Some("/etc/ca.pem".into())
            }
        );
        assert_eq!(
            split("postgres://u@h/db?sslmode=prefer").url,
            "postgres://u@h/db?sslmode=prefer"
        );
    }

    #[test]
    fn an_unknown_sslmode_or_a_root_file_without_tls_is_refused_clearly() {
        let refused = |url: &str| match TlsUrl::split(url) {
            Err(StoreError::Config(message)) => message,
            other => panic!("{url}: {other:?}"),
        };
        assert!(refused("postgres://u:secret@h/db?sslmode=allow").contains("use disable, prefer"));
        assert!(!refused("postgres://u:secret@h/db?sslmode=allow").contains("secret"));
        assert!(refused("postgres://u@h/db?sslrootcert=/ca.pem").contains("add sslmode=require"));
    }

    #[test]
    fn no_sslmode_means_no_tls_and_a_missing_root_file_is_named() {
        let (config, _) = connection("postgres://u@h/db").unwrap();
        assert_eq!(config.get_ssl_mode(), SslMode::Disable);
        let (config, _) = connection("postgres://u@h/db?sslmode=verify-full").unwrap();
        assert_eq!(config.get_ssl_mode(), SslMode::Require);
        match connection("postgres://u@h/db?sslmode=require&sslrootcert=/no/such/ca.pem") {
            Err(StoreError::Config(message)) => {
                assert!(message.contains("/no/such/ca.pem"), "{message}")
            }
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("a missing sslrootcert file was accepted"),
        }
    }
}
