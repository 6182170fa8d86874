//! SDK configuration: a builder whose unset fields fall back to `AGENTOPS_*` environment
//! variables (and, for the OTLP protocol, the standard `OTEL_EXPORTER_OTLP_*` ones), then to
//! documented defaults, validated once in [`ConfigBuilder::build`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use opentelemetry::{KeyValue, Value};
use uuid::Uuid;

/// The local `agentops serve` address, which is also the default OTLP/HTTP endpoint.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4318";

/// The shortest metrics export interval accepted (`AGENTOPS_METRICS_INTERVAL`).
pub const MIN_METRICS_INTERVAL: Duration = Duration::from_millis(100);

/// A configuration value that cannot be used; the message names the setting and the value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid AgentOps configuration: {setting}: {problem}")]
pub struct ConfigError {
    /// The setting, as its environment variable is named (for example `AGENTOPS_API_KEY`).
    pub setting: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl ConfigError {
    fn new(setting: &'static str, problem: impl Into<String>) -> Self {
        Self {
            setting,
            problem: problem.into(),
        }
    }
}

/// Whether request bodies are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// `Content-Encoding: gzip` (the default).
    #[default]
    Gzip,
    /// Uncompressed bodies.
    None,
}

impl FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "gzip" | "true" | "on" | "1" => Ok(Compression::Gzip),
            "none" | "false" | "off" | "0" => Ok(Compression::None),
            other => Err(format!("expected gzip or none, got {other:?}")),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::Gzip => "gzip",
            Compression::None => "none",
        })
    }
}

/// The wire protocol events are exported with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// The AgentOps v2 REST API (`/v2/create_session`, `/v2/create_events`, …): the design
    /// document's protocol, spoken by AgentOps 0.3-era backends and `agentops serve`. The
    /// backend answers the session's cost when it ends.
    #[default]
    V2,
    /// OTLP/HTTP protobuf to `/v1/traces`, after exchanging the API key for a token at
    /// `/v3/auth/token` as agentops 0.4 does. Reaches `agentops serve`, AgentOps 0.4-era
    /// backends and any OpenTelemetry backend (Jaeger, Phoenix, Langfuse, a Collector). The
    /// session is a root span that every event descends from.
    Otlp,
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "v2" => Ok(Protocol::V2),
            "otlp" => Ok(Protocol::Otlp),
            other => Err(format!("expected v2 or otlp, got {other:?}")),
        }
    }
}

/// What one sampling decision covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SamplingScope {
    /// Each root event (an event with no parent) is kept or left out with its whole tree of
    /// children (the default).
    #[default]
    Trace,
    /// The session is kept or left out whole.
    Session,
}

impl FromStr for SamplingScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "trace" => Ok(SamplingScope::Trace),
            "session" => Ok(SamplingScope::Session),
            other => Err(format!("expected trace or session, got {other:?}")),
        }
    }
}

/// How failed requests are retried: exponential backoff with jitter between two bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// How many times one request is tried in all (1 = no retry).
    pub attempts: u32,
    /// The first backoff.
    pub min_backoff: Duration,
    /// The largest backoff.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The pause before retry number `retry` (1-based): a random time in
    /// `[min_backoff, min(max_backoff, min_backoff * 2^(retry-1))]`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .min_backoff
            .saturating_mul(
                1u32.checked_shl(retry.saturating_sub(1))
                    .unwrap_or(u32::MAX),
            )
            .min(self.max_backoff);
        let spread = ceiling.saturating_sub(self.min_backoff);
        self.min_backoff + spread.mul_f64(fastrand::f64())
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 12,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Where and how OTLP is sent when [`Config::protocol`] is [`Protocol::Otlp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    /// The full URL spans are POSTed to (default `{endpoint}/v1/traces`).
    pub traces_endpoint: String,
    /// Extra request headers (from `OTEL_EXPORTER_OTLP_HEADERS`, `…_TRACES_HEADERS` and
    /// [`ConfigBuilder::otlp_header`]).
    pub headers: Vec<(String, String)>,
    /// The full URL metrics are POSTed to: `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/metrics`, else `{endpoint}/v1/metrics`.
    pub metrics_endpoint: String,
    /// Extra headers of metrics requests (from `OTEL_EXPORTER_OTLP_HEADERS`,
    /// `…_METRICS_HEADERS` and [`ConfigBuilder::otlp_header`]).
    pub metrics_headers: Vec<(String, String)>,
}

/// Everything the SDK needs to know, validated. Build one with [`Config::builder`].
///
/// ```
/// use std::time::Duration;
/// let config = agentops::Config::builder()
///     .api_key("6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
///     .endpoint("http://127.0.0.1:4318")
///     .max_wait_time(Duration::from_millis(500))
///     .default_tags(["demo"])
///     .build()
///     .unwrap();
/// assert_eq!(config.default_tags, vec!["demo".to_string()]);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// The project's API key (a UUID). `AGENTOPS_API_KEY`. Required with the v2 protocol;
    /// with OTLP it is exchanged for a token at `/v3/auth/token` when set.
    pub api_key: Option<Uuid>,
    /// The AgentOps backend's base URL, without a trailing slash. `AGENTOPS_API_ENDPOINT`.
    pub endpoint: String,
    /// The parent organisation's key, sent as `X-Agentops-Parent-Key`. `AGENTOPS_PARENT_KEY`.
    pub parent_key: Option<Uuid>,
    /// The wire protocol. `AGENTOPS_PROTOCOL` (`v2` or `otlp`).
    pub protocol: Protocol,
    /// The OTLP endpoint and headers, used with [`Protocol::Otlp`].
    pub otlp: OtlpSettings,
    /// The longest an event waits before it is exported. `AGENTOPS_MAX_WAIT_TIME` (ms).
    pub max_wait_time: Duration,
    /// How many events a session holds while they wait for export; more are dropped and
    /// counted. `AGENTOPS_MAX_QUEUE_SIZE`.
    pub max_queue_size: usize,
    /// The most events in one request. `AGENTOPS_BATCH_SIZE`.
    pub batch_size: usize,
    /// How requests are retried. `AGENTOPS_RETRY_ATTEMPTS`, `AGENTOPS_RETRY_MIN_BACKOFF`,
    /// `AGENTOPS_RETRY_MAX_BACKOFF` (ms). A server's `Retry-After` is honoured up to 60 s.
    pub retry: RetryPolicy,
    /// The limit on one HTTP request, connection included. `AGENTOPS_REQUEST_TIMEOUT` (ms).
    pub request_timeout: Duration,
    /// The longest ending a session (or the client) waits for delivery.
    /// `AGENTOPS_SHUTDOWN_TIMEOUT` (ms).
    pub shutdown_timeout: Duration,
    /// Tags every session starts with. `AGENTOPS_DEFAULT_TAGS` (comma-separated).
    pub default_tags: Vec<String>,
    /// Whether LLM client instrumentation records calls. `AGENTOPS_INSTRUMENT_LLM_CALLS`.
    pub instrument_llm_calls: bool,
    /// Whether [`crate::init`] starts a session. `AGENTOPS_AUTO_START_SESSION`.
    pub auto_start_session: bool,
    /// Whether a session dropped without [`crate::Session::end`] is left open rather than
    /// ended as `Indeterminate`. `AGENTOPS_SKIP_AUTO_END_SESSION`.
    pub skip_auto_end_session: bool,
    /// Whether the host environment is left out of the session. `AGENTOPS_ENV_DATA_OPT_OUT`.
    pub env_data_opt_out: bool,
    /// The share of events kept, from 0 to 1. `AGENTOPS_SAMPLING_RATE`. Errors are always kept,
    /// with every event of their tree (so their parents and triggers are never missing).
    pub sampling_rate: f64,
    /// What one sampling decision covers. `AGENTOPS_SAMPLING_SCOPE` (`trace` or `session`).
    pub sampling_scope: SamplingScope,
    /// Request body compression. `AGENTOPS_COMPRESSION` (`gzip` or `none`).
    pub compression: Compression,
    /// Certificates (DER) of the authorities trusted for `https://`, instead of the built-in
    /// Mozilla roots, read from `AGENTOPS_CA_CERT` (a PEM file). Empty: the built-in roots.
    pub ca_certificates: Vec<Vec<u8>>,
    /// Attributes added to every event of every session of this client.
    pub custom_attributes: Vec<KeyValue>,
    /// Whether the client records OpenTelemetry metrics (LLM calls, tokens, cost, what became
    /// of events, export times) and exports them as OTLP/HTTP protobuf to
    /// [`Config::metrics_endpoint`]. `AGENTOPS_METRICS` (default true). See the crate's
    /// [Metrics](crate#metrics) section.
    pub metrics: bool,
    /// How often metrics are exported. `AGENTOPS_METRICS_INTERVAL` (ms, default 10 000, at
    /// least 100).
    pub metrics_interval: Duration,
    /// Where metrics are POSTed: `{endpoint}/v1/metrics` with [`Protocol::V2`] (with the API
    /// key in `X-Agentops-Api-Key`); with [`Protocol::Otlp`], [`OtlpSettings::metrics_endpoint`]
    /// (with the credentials the spans use).
    pub metrics_endpoint: String,
}

impl Config {
    /// A builder: set what you need; the rest comes from `AGENTOPS_*` variables or defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// A configuration from the environment alone.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::builder().build()
    }
}

/// Builds a [`Config`]. Values set here win over environment variables.
#[derive(Default, Clone)]
pub struct ConfigBuilder {
    values: BTreeMap<&'static str, String>,
    default_tags: Option<Vec<String>>,
    otlp_headers: Vec<(String, String)>,
    ca_pem: Option<Vec<u8>>,
    custom_attributes: Vec<KeyValue>,
    ignore_env: bool,
}

impl fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigBuilder")
            .field("settings", &self.values.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty => $var:literal, |$v:ident| $to_string:expr) => {
        $(#[$doc])*
        pub fn $name(mut self, $v: $ty) -> Self {
            self.values.insert($var, $to_string);
            self
        }
    };
}

impl ConfigBuilder {
    setter!(/// The project's API key (a UUID).
        api_key: impl Into<String> => "AGENTOPS_API_KEY", |v| v.into());
    setter!(/// The backend's base URL (default [`DEFAULT_ENDPOINT`]).
        endpoint: impl Into<String> => "AGENTOPS_API_ENDPOINT", |v| v.into());
    setter!(/// The parent organisation's key (a UUID).
        parent_key: impl Into<String> => "AGENTOPS_PARENT_KEY", |v| v.into());
    setter!(/// The wire protocol (default [`Protocol::V2`]).
        protocol: Protocol => "AGENTOPS_PROTOCOL", |v| match v { Protocol::V2 => "v2".into(), Protocol::Otlp => "otlp".into() });
    setter!(/// The full URL OTLP spans are sent to (default `{endpoint}/v1/traces`).
        otlp_endpoint: impl Into<String> => "AGENTOPS_EXPORTER_ENDPOINT", |v| v.into());
    setter!(/// The longest an event waits before export (default 5 s).
        max_wait_time: Duration => "AGENTOPS_MAX_WAIT_TIME", |v| v.as_millis().to_string());
    setter!(/// How many events wait for export at most, per session (default 4096).
        max_queue_size: usize => "AGENTOPS_MAX_QUEUE_SIZE", |v| v.to_string());
    setter!(/// The most events per request (default 256).
        batch_size: usize => "AGENTOPS_BATCH_SIZE", |v| v.to_string());
    setter!(/// How many times a request is tried in all (default 12: rides out 15 to 30 s of outage).
        retry_attempts: u32 => "AGENTOPS_RETRY_ATTEMPTS", |v| v.to_string());
    setter!(/// The first retry backoff (default 100 ms).
        retry_min_backoff: Duration => "AGENTOPS_RETRY_MIN_BACKOFF", |v| v.as_millis().to_string());
    setter!(/// The largest retry backoff (default 5 s).
        retry_max_backoff: Duration => "AGENTOPS_RETRY_MAX_BACKOFF", |v| v.as_millis().to_string());
    setter!(/// The limit on one HTTP request (default 10 s).
        request_timeout: Duration => "AGENTOPS_REQUEST_TIMEOUT", |v| v.as_millis().to_string());
    setter!(/// The longest ending a session waits for delivery (default 60 s).
        shutdown_timeout: Duration => "AGENTOPS_SHUTDOWN_TIMEOUT", |v| v.as_millis().to_string());
    setter!(/// Whether LLM client instrumentation records calls (default true).
        instrument_llm_calls: bool => "AGENTOPS_INSTRUMENT_LLM_CALLS", |v| v.to_string());
    setter!(/// Whether [`crate::init`] starts a session (default true).
        auto_start_session: bool => "AGENTOPS_AUTO_START_SESSION", |v| v.to_string());
    setter!(/// Whether dropped sessions stay open instead of ending `Indeterminate` (default false).
        skip_auto_end_session: bool => "AGENTOPS_SKIP_AUTO_END_SESSION", |v| v.to_string());
    setter!(/// Whether to leave the host environment out (default false).
        env_data_opt_out: bool => "AGENTOPS_ENV_DATA_OPT_OUT", |v| v.to_string());
    setter!(/// The share of events kept, 0 to 1 (default 1).
        sampling_rate: f64 => "AGENTOPS_SAMPLING_RATE", |v| v.to_string());
    setter!(/// What one sampling decision covers (default [`SamplingScope::Trace`]).
        sampling_scope: SamplingScope => "AGENTOPS_SAMPLING_SCOPE", |v| match v { SamplingScope::Trace => "trace".into(), SamplingScope::Session => "session".into() });
    setter!(/// Request body compression (default [`Compression::Gzip`]).
        compression: Compression => "AGENTOPS_COMPRESSION", |v| v.to_string());
    setter!(/// Whether the client records and exports OpenTelemetry metrics (default true).
        metrics: bool => "AGENTOPS_METRICS", |v| v.to_string());
    setter!(/// How often metrics are exported (default 10 s, at least 100 ms).
        metrics_interval: Duration => "AGENTOPS_METRICS_INTERVAL", |v| v.as_millis().to_string());

    /// Trusts the certificate authorities in this PEM file for `https://` instead of the
    /// built-in roots (for a backend with a private or self-signed certificate). Same as
    /// `AGENTOPS_CA_CERT`.
    pub fn ca_cert_file(mut self, path: impl AsRef<Path>) -> Self {
        self.values.insert(
            "AGENTOPS_CA_CERT",
            path.as_ref().to_string_lossy().into_owned(),
        );
        self
    }

    /// Trusts the certificate authorities in this PEM text for `https://` instead of the
    /// built-in roots.
    pub fn ca_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// A header sent with every OTLP request (it replaces one of the same name from
    /// `OTEL_EXPORTER_OTLP_HEADERS`).
    pub fn otlp_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.otlp_headers.push((name.into(), value.into()));
        self
    }

    /// Tags every session starts with.
    pub fn default_tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.default_tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// An attribute added to every event of this client's sessions.
    pub fn attribute(
        mut self,
        key: impl Into<opentelemetry::Key>,
        value: impl Into<Value>,
    ) -> Self {
        self.custom_attributes.push(KeyValue::new(key, value));
        self
    }

    /// Do not read `AGENTOPS_*` or `OTEL_*` environment variables (useful in tests).
    pub fn ignore_env(mut self) -> Self {
        self.ignore_env = true;
        self
    }

    /// Validates everything and returns the configuration, or the first problem found.
    pub fn build(self) -> Result<Config, ConfigError> {
        let ignore_env = self.ignore_env;
        self.build_with_env(|name| {
            if ignore_env {
                None
            } else {
                std::env::var(name).ok()
            }
        })
    }

    /// Like [`ConfigBuilder::build`], reading variables through `env` instead of the process
    /// environment.
    pub fn build_with_env(
        self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let settings = Settings {
            values: &self.values,
            env: &env,
        };
        let protocol: Protocol = settings.parse("AGENTOPS_PROTOCOL", Protocol::V2)?;
        let api_key = settings
            .get("AGENTOPS_API_KEY")
            .map(|key| parse_uuid("AGENTOPS_API_KEY", &key))
            .transpose()?;
        if api_key.is_none() && protocol == Protocol::V2 {
            return Err(ConfigError::new(
                "AGENTOPS_API_KEY",
                "is required (your project's API key, a UUID)",
            ));
        }
        let parent_key = settings
            .get("AGENTOPS_PARENT_KEY")
            .map(|key| parse_uuid("AGENTOPS_PARENT_KEY", &key))
            .transpose()?;
        let endpoint = settings
            .get("AGENTOPS_API_ENDPOINT")
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let endpoint = validate_url("AGENTOPS_API_ENDPOINT", &endpoint)?;
        let otlp_mode = protocol == Protocol::Otlp;
        let otlp = otlp_settings(&settings, &endpoint, self.otlp_headers, otlp_mode)?;

        let retry = RetryPolicy {
            attempts: settings.parse("AGENTOPS_RETRY_ATTEMPTS", RetryPolicy::default().attempts)?,
            min_backoff: settings.millis("AGENTOPS_RETRY_MIN_BACKOFF", 100)?,
            max_backoff: settings.millis("AGENTOPS_RETRY_MAX_BACKOFF", 5_000)?,
        };
        if retry.attempts == 0 {
            return Err(ConfigError::new(
                "AGENTOPS_RETRY_ATTEMPTS",
                "must be at least 1",
            ));
        }
        if retry.max_backoff < retry.min_backoff {
            return Err(ConfigError::new(
                "AGENTOPS_RETRY_MAX_BACKOFF",
                "must not be smaller than AGENTOPS_RETRY_MIN_BACKOFF",
            ));
        }
        let max_queue_size: usize = settings.parse("AGENTOPS_MAX_QUEUE_SIZE", 4096)?;
        let batch_size: usize = settings.parse("AGENTOPS_BATCH_SIZE", 256)?;
        if max_queue_size == 0 {
            return Err(ConfigError::new(
                "AGENTOPS_MAX_QUEUE_SIZE",
                "must be at least 1",
            ));
        }
        if batch_size == 0 || batch_size > max_queue_size {
            return Err(ConfigError::new(
                "AGENTOPS_BATCH_SIZE",
                format!("must be between 1 and the queue size ({max_queue_size})"),
            ));
        }
        let max_wait_time = settings.millis("AGENTOPS_MAX_WAIT_TIME", 5_000)?;
        if max_wait_time.is_zero() {
            return Err(ConfigError::new(
                "AGENTOPS_MAX_WAIT_TIME",
                "must be at least 1 ms",
            ));
        }
        let otel_timeout = if otlp_mode {
            settings.first(&[
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ])
        } else {
            None
        };
        let request_timeout = match (settings.get("AGENTOPS_REQUEST_TIMEOUT"), otel_timeout) {
            (None, Some((name, _))) => settings.millis(name, 10_000)?,
            _ => settings.millis("AGENTOPS_REQUEST_TIMEOUT", 10_000)?,
        };
        if request_timeout.is_zero() {
            return Err(ConfigError::new(
                "AGENTOPS_REQUEST_TIMEOUT",
                "must be at least 1 ms",
            ));
        }
        let sampling_rate: f64 = settings.parse("AGENTOPS_SAMPLING_RATE", 1.0)?;
        if !(0.0..=1.0).contains(&sampling_rate) {
            return Err(ConfigError::new(
                "AGENTOPS_SAMPLING_RATE",
                format!("must be between 0 and 1, got {sampling_rate}"),
            ));
        }
        let otel_compression = if otlp_mode {
            settings.first(&[
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                "OTEL_EXPORTER_OTLP_COMPRESSION",
            ])
        } else {
            None
        };
        let compression = match (settings.get("AGENTOPS_COMPRESSION"), otel_compression) {
            (None, Some((name, _))) => settings.parse(name, Compression::Gzip)?,
            _ => settings.parse("AGENTOPS_COMPRESSION", Compression::Gzip)?,
        };
        let ca_certificates = match (self.ca_pem, settings.get("AGENTOPS_CA_CERT")) {
            (Some(pem), _) => parse_certificates(&pem, "the PEM given to ca_cert_pem")?,
            (None, Some(path)) => {
                let pem = std::fs::read(&path).map_err(|err| {
                    ConfigError::new("AGENTOPS_CA_CERT", format!("cannot read {path:?}: {err}"))
                })?;
                parse_certificates(&pem, &PathBuf::from(path).display().to_string())?
            }
            (None, None) => Vec::new(),
        };
        let metrics = settings.flag("AGENTOPS_METRICS", true)?;
        let metrics_interval = settings.millis("AGENTOPS_METRICS_INTERVAL", 10_000)?;
        if metrics_interval < MIN_METRICS_INTERVAL {
            return Err(ConfigError::new(
                "AGENTOPS_METRICS_INTERVAL",
                format!(
                    "must be at least {} ms, got {} ms",
                    MIN_METRICS_INTERVAL.as_millis(),
                    metrics_interval.as_millis()
                ),
            ));
        }
        let metrics_endpoint = match protocol {
            Protocol::V2 => format!("{endpoint}/v1/metrics"),
            Protocol::Otlp => otlp.metrics_endpoint.clone(),
        };
        let default_tags = match self.default_tags {
            Some(tags) => tags,
            None => env("AGENTOPS_DEFAULT_TAGS")
                .map(|tags| split_tags(&tags))
                .unwrap_or_default(),
        };

        Ok(Config {
            api_key,
            endpoint,
            parent_key,
            protocol,
            otlp,
            max_wait_time,
            max_queue_size,
            batch_size,
            retry,
            request_timeout,
            shutdown_timeout: settings.millis("AGENTOPS_SHUTDOWN_TIMEOUT", 60_000)?,
            default_tags,
            instrument_llm_calls: settings.flag("AGENTOPS_INSTRUMENT_LLM_CALLS", true)?,
            auto_start_session: settings.flag("AGENTOPS_AUTO_START_SESSION", true)?,
            skip_auto_end_session: settings.flag("AGENTOPS_SKIP_AUTO_END_SESSION", false)?,
            env_data_opt_out: settings.flag("AGENTOPS_ENV_DATA_OPT_OUT", false)?,
            sampling_rate,
            sampling_scope: settings.parse("AGENTOPS_SAMPLING_SCOPE", SamplingScope::Trace)?,
            compression,
            ca_certificates,
            custom_attributes: self.custom_attributes,
            metrics,
            metrics_interval,
            metrics_endpoint,
        })
    }
}

/// The OTLP endpoint and headers: code, then `AGENTOPS_EXPORTER_ENDPOINT` (agentops 0.4's
/// variable), then the OpenTelemetry variables, then `{endpoint}/v1/traces`.
fn otlp_settings(
    settings: &Settings<'_>,
    endpoint: &str,
    code_headers: Vec<(String, String)>,
    otlp_mode: bool,
) -> Result<OtlpSettings, ConfigError> {
    let wire = settings.first(&[
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]);
    let metrics_wire = settings.first(&[
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]);
    for (variable, wire) in [wire, metrics_wire]
        .into_iter()
        .flatten()
        .filter(|_| otlp_mode)
    {
        if wire != "http/protobuf" {
            return Err(ConfigError::new(
                variable,
                format!("{wire:?} is not supported: the SDK sends http/protobuf"),
            ));
        }
    }
    let traces_endpoint = if let Some(url) = settings.get("AGENTOPS_EXPORTER_ENDPOINT") {
        validate_url("AGENTOPS_EXPORTER_ENDPOINT", &url)?
    } else if let Some(url) = settings.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        validate_url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &url)?
    } else if let Some(base) = settings.get("OTEL_EXPORTER_OTLP_ENDPOINT") {
        format!(
            "{}/v1/traces",
            validate_url("OTEL_EXPORTER_OTLP_ENDPOINT", &base)?
        )
    } else {
        format!("{endpoint}/v1/traces")
    };
    let metrics_endpoint = if let Some(url) = settings.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") {
        validate_url("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", &url)?
    } else if let Some(base) = settings.get("OTEL_EXPORTER_OTLP_ENDPOINT") {
        format!(
            "{}/v1/metrics",
            validate_url("OTEL_EXPORTER_OTLP_ENDPOINT", &base)?
        )
    } else {
        format!("{endpoint}/v1/metrics")
    };
    for (name, value) in &code_headers {
        if !valid_header(name, value) {
            return Err(ConfigError::new(
                "OTEL_EXPORTER_OTLP_HEADERS",
                format!("{name:?} is not a valid HTTP header"),
            ));
        }
    }
    let headers = otlp_headers(settings, "OTEL_EXPORTER_OTLP_TRACES_HEADERS", &code_headers)?;
    let metrics_headers = otlp_headers(
        settings,
        "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
        &code_headers,
    )?;
    Ok(OtlpSettings {
        traces_endpoint,
        headers,
        metrics_endpoint,
        metrics_headers,
    })
}

/// `OTEL_EXPORTER_OTLP_HEADERS`, then the signal's own variable, then the headers set in code,
/// each replacing a header of the same name.
fn otlp_headers(
    settings: &Settings<'_>,
    signal_variable: &'static str,
    code_headers: &[(String, String)],
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut put = |name: String, value: String| {
        headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(&name));
        headers.push((name, value));
    };
    for variable in ["OTEL_EXPORTER_OTLP_HEADERS", signal_variable] {
        if let Some(text) = settings.get(variable) {
            for (name, value) in parse_headers(variable, &text)? {
                put(name, value);
            }
        }
    }
    for (name, value) in code_headers {
        put(name.clone(), value.clone());
    }
    Ok(headers)
}

/// `name=value,name2=value2` with percent-encoded values, as the OpenTelemetry specification
/// defines `OTEL_EXPORTER_OTLP_HEADERS`.
fn parse_headers(variable: &'static str, text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut headers = Vec::new();
    for pair in text
        .split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
    {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(ConfigError::new(
                variable,
                format!("{pair:?} is not name=value"),
            ));
        };
        let value = percent_encoding::percent_decode_str(value.trim())
            .decode_utf8()
            .map_err(|_| ConfigError::new(variable, format!("{pair:?}: value is not UTF-8")))?
            .into_owned();
        let name = name.trim().to_owned();
        if !valid_header(&name, &value) {
            return Err(ConfigError::new(
                variable,
                format!("{name:?} is not a valid HTTP header"),
            ));
        }
        headers.push((name, value));
    }
    Ok(headers)
}

fn valid_header(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

fn parse_certificates(pem: &[u8], source: &str) -> Result<Vec<Vec<u8>>, ConfigError> {
    let mut certificates = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => certificates.push(cert.der().to_vec()),
            Ok(_) => {}
            Err(err) => {
                return Err(ConfigError::new(
                    "AGENTOPS_CA_CERT",
                    format!("{source}: {err}"),
                ))
            }
        }
    }
    if certificates.is_empty() {
        return Err(ConfigError::new(
            "AGENTOPS_CA_CERT",
            format!("{source}: no PEM certificate found"),
        ));
    }
    Ok(certificates)
}

/// Values set in code, then the environment.
struct Settings<'a> {
    values: &'a BTreeMap<&'static str, String>,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Settings<'_> {
    fn get(&self, name: &'static str) -> Option<String> {
        self.values
            .get(name)
            .cloned()
            .or_else(|| (self.env)(name))
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    /// The first of `names` that is set, with its value.
    fn first(&self, names: &[&'static str]) -> Option<(&'static str, String)> {
        names
            .iter()
            .find_map(|name| self.get(name).map(|value| (*name, value)))
    }

    fn parse<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|err| ConfigError::new(name, format!("cannot read {text:?}: {err}"))),
        }
    }

    /// A duration in milliseconds, at most a day.
    fn millis(&self, name: &'static str, default_ms: u64) -> Result<Duration, ConfigError> {
        const DAY_MS: u64 = 24 * 60 * 60 * 1000;
        let ms = self.parse(name, default_ms)?;
        if ms > DAY_MS {
            return Err(ConfigError::new(
                name,
                format!("{ms} ms is more than a day ({DAY_MS} ms)"),
            ));
        }
        Ok(Duration::from_millis(ms))
    }

    fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(text) => match text.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::new(
                    name,
                    format!("expected true or false, got {text:?}"),
                )),
            },
        }
    }
}

fn parse_uuid(setting: &'static str, text: &str) -> Result<Uuid, ConfigError> {
    Uuid::parse_str(text).map_err(|_| ConfigError::new(setting, format!("{text:?} is not a UUID")))
}

/// An `http://` or `https://` URL with a host, without its trailing slashes.
fn validate_url(setting: &'static str, text: &str) -> Result<String, ConfigError> {
    let trimmed = text.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"));
    match rest {
        Some(rest)
            if !rest.is_empty()
                && !rest.starts_with('/')
                && !rest.contains(char::is_whitespace) =>
        {
            Ok(trimmed.to_owned())
        }
        _ => Err(ConfigError::new(
            setting,
            format!("{text:?} is not an http:// or https:// URL"),
        )),
    }
}

fn split_tags(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = Config::builder()
            .api_key(KEY)
            .build_with_env(|_| None)
            .unwrap();
        assert_eq!(config.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(config.protocol, Protocol::V2);
        assert_eq!(
            config.otlp.traces_endpoint,
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(config.compression, Compression::Gzip);
        assert_eq!(config.sampling_rate, 1.0);
        assert_eq!(config.sampling_scope, SamplingScope::Trace);
        assert!(config.ca_certificates.is_empty());
        assert!(config.auto_start_session);
    }

    #[test]
    fn code_wins_over_environment_and_environment_over_defaults() {
        let env = env_of(&[
            ("AGENTOPS_API_KEY", KEY),
            ("AGENTOPS_BATCH_SIZE", "10"),
            ("AGENTOPS_MAX_WAIT_TIME", "250"),
            ("AGENTOPS_DEFAULT_TAGS", "a, b,,c"),
            ("AGENTOPS_COMPRESSION", "none"),
        ]);
        let config = Config::builder()
            .batch_size(20)
            .build_with_env(env)
            .unwrap();
        assert_eq!(config.batch_size, 20);
        assert_eq!(config.max_wait_time, Duration::from_millis(250));
        assert_eq!(config.default_tags, ["a", "b", "c"]);
        assert_eq!(config.compression, Compression::None);
        let config = Config::builder()
            .api_key(KEY)
            .compression(Compression::Gzip)
            .build_with_env(env_of(&[("AGENTOPS_COMPRESSION", "none")]))
            .unwrap();
        assert_eq!(config.compression, Compression::Gzip);
    }

    #[test]
    fn bad_values_name_their_setting() {
        let missing = Config::builder().build_with_env(|_| None).unwrap_err();
        assert_eq!(missing.setting, "AGENTOPS_API_KEY");
        let not_uuid = Config::builder()
            .api_key("abc")
            .build_with_env(|_| None)
            .unwrap_err();
        assert!(not_uuid.to_string().contains("not a UUID"), "{not_uuid}");
        let cases: [(ConfigBuilder, &str); 8] = [
            (
                Config::builder().sampling_rate(1.5),
                "AGENTOPS_SAMPLING_RATE",
            ),
            (
                Config::builder().endpoint("ftp://x"),
                "AGENTOPS_API_ENDPOINT",
            ),
            (
                Config::builder().endpoint("http:///path"),
                "AGENTOPS_API_ENDPOINT",
            ),
            (
                Config::builder().batch_size(10).max_queue_size(5),
                "AGENTOPS_BATCH_SIZE",
            ),
            (
                Config::builder().retry_attempts(0),
                "AGENTOPS_RETRY_ATTEMPTS",
            ),
            (Config::builder().parent_key("nope"), "AGENTOPS_PARENT_KEY"),
            (
                Config::builder().ca_cert_pem("not a certificate"),
                "AGENTOPS_CA_CERT",
            ),
            (
                Config::builder().ca_cert_file("/nonexistent/ca.pem"),
                "AGENTOPS_CA_CERT",
            ),
        ];
        for (builder, setting) in cases {
            let err = builder.api_key(KEY).build_with_env(|_| None).unwrap_err();
            assert_eq!(err.setting, setting, "{err}");
        }
        let env = env_of(&[
            ("AGENTOPS_API_KEY", KEY),
            ("AGENTOPS_MAX_QUEUE_SIZE", "lots"),
        ]);
        let err = Config::builder().build_with_env(env).unwrap_err();
        assert!(err.to_string().contains("\"lots\""), "{err}");
    }

    #[test]
    fn otlp_follows_the_opentelemetry_variables() {
        let env = env_of(&[
            ("AGENTOPS_PROTOCOL", "otlp"),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://collector.example:4318/",
            ),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-team=agents,authorization=Basic%20YWJjOmRlZg==",
            ),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "X-Team=traces"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
        ]);
        let config = Config::builder().build_with_env(env).unwrap();
        assert_eq!(config.protocol, Protocol::Otlp);
        assert_eq!(
            config.api_key, None,
            "no key is needed for a plain OTLP backend"
        );
        assert_eq!(
            config.otlp.traces_endpoint,
            "https://collector.example:4318/v1/traces"
        );
        assert_eq!(
            config.otlp.headers,
            [
                ("authorization".to_owned(), "Basic YWJjOmRlZg==".to_owned()),
                ("X-Team".to_owned(), "traces".to_owned()),
            ]
        );
        assert_eq!(config.request_timeout, Duration::from_millis(2500));
        assert_eq!(config.compression, Compression::None);

        let agentops_wins = Config::builder()
            .otlp_endpoint("http://127.0.0.1:9/custom/traces")
            .build_with_env(env_of(&[
                ("AGENTOPS_PROTOCOL", "otlp"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://other:4318/v1/traces",
                ),
            ]))
            .unwrap();
        assert_eq!(
            agentops_wins.otlp.traces_endpoint,
            "http://127.0.0.1:9/custom/traces"
        );
        let grpc = Config::builder().build_with_env(env_of(&[
            ("AGENTOPS_PROTOCOL", "otlp"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]));
        assert_eq!(grpc.unwrap_err().setting, "OTEL_EXPORTER_OTLP_PROTOCOL");
        let bad_header = Config::builder().build_with_env(env_of(&[
            ("AGENTOPS_PROTOCOL", "otlp"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign"),
        ]));
        assert_eq!(
            bad_header.unwrap_err().setting,
            "OTEL_EXPORTER_OTLP_HEADERS"
        );
    }

    #[test]
    fn metrics_are_on_by_default_and_go_where_the_protocol_says() {
        let config = Config::builder()
            .api_key(KEY)
            .endpoint("http://agentops.example:8000/")
            .build_with_env(|_| None)
            .unwrap();
        assert!(config.metrics);
        assert_eq!(config.metrics_interval, Duration::from_secs(10));
        assert_eq!(
            config.metrics_endpoint,
            "http://agentops.example:8000/v1/metrics"
        );

        let env = env_of(&[
            ("AGENTOPS_API_KEY", KEY),
            ("AGENTOPS_METRICS", "false"),
            ("AGENTOPS_METRICS_INTERVAL", "250"),
        ]);
        let config = Config::builder().build_with_env(&env).unwrap();
        assert!(!config.metrics);
        assert_eq!(config.metrics_interval, Duration::from_millis(250));
        let config = Config::builder()
            .metrics(true)
            .metrics_interval(Duration::from_secs(2))
            .build_with_env(env)
            .unwrap();
        assert!(config.metrics, "code wins over the environment");
        assert_eq!(config.metrics_interval, Duration::from_secs(2));

        // Over v2 the OTLP variables do not move the metrics, which go to our server.
        let v2 = Config::builder()
            .api_key(KEY)
            .build_with_env(env_of(&[(
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "http://collector:4318/v1/metrics",
            )]))
            .unwrap();
        assert_eq!(v2.metrics_endpoint, "http://127.0.0.1:4318/v1/metrics");
    }

    #[test]
    fn otlp_metrics_follow_the_opentelemetry_variables() {
        let base = env_of(&[
            ("AGENTOPS_PROTOCOL", "otlp"),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://collector.example:4318/",
            ),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-team=agents"),
            (
                "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
                "X-Team=metrics,x-extra=1",
            ),
        ]);
        let config = Config::builder().build_with_env(base).unwrap();
        assert_eq!(
            config.metrics_endpoint,
            "https://collector.example:4318/v1/metrics"
        );
        assert_eq!(config.otlp.metrics_endpoint, config.metrics_endpoint);
        assert_eq!(
            config.otlp.metrics_headers,
            [
                ("X-Team".to_owned(), "metrics".to_owned()),
                ("x-extra".to_owned(), "1".to_owned()),
            ]
        );
        assert_eq!(
            config.otlp.headers,
            [("x-team".to_owned(), "agents".to_owned())],
            "the metrics' headers are not the spans'"
        );
        let own = Config::builder()
            .otlp_header("x-team", "code")
            .build_with_env(env_of(&[
                ("AGENTOPS_PROTOCOL", "otlp"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318"),
                (
                    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                    "http://metrics.example/custom/",
                ),
                ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-team=env"),
            ]))
            .unwrap();
        assert_eq!(own.metrics_endpoint, "http://metrics.example/custom");
        assert_eq!(
            own.otlp.metrics_headers,
            [("x-team".to_owned(), "code".to_owned())],
            "headers set in code win"
        );
        let local = Config::builder()
            .protocol(Protocol::Otlp)
            .endpoint("http://127.0.0.1:9999")
            .build_with_env(|_| None)
            .unwrap();
        assert_eq!(local.metrics_endpoint, "http://127.0.0.1:9999/v1/metrics");
    }

    #[test]
    fn bad_metrics_settings_name_their_setting() {
        type Env = &'static [(&'static str, &'static str)];
        let cases: [(ConfigBuilder, Env, &str); 6] = [
            (
                Config::builder(),
                &[("AGENTOPS_METRICS", "maybe")],
                "AGENTOPS_METRICS",
            ),
            (
                Config::builder(),
                &[("AGENTOPS_METRICS_INTERVAL", "soon")],
                "AGENTOPS_METRICS_INTERVAL",
            ),
            (
                Config::builder().metrics_interval(Duration::from_millis(10)),
                &[],
                "AGENTOPS_METRICS_INTERVAL",
            ),
            (
                Config::builder().metrics_interval(Duration::from_secs(2 * 24 * 3600)),
                &[],
                "AGENTOPS_METRICS_INTERVAL",
            ),
            (
                Config::builder().protocol(Protocol::Otlp),
                &[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "collector:4318")],
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            ),
            (
                Config::builder().protocol(Protocol::Otlp),
                &[("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc")],
                "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            ),
        ];
        for (builder, env, setting) in cases {
            let err = builder
                .api_key(KEY)
                .build_with_env(env_of(env))
                .unwrap_err();
            assert_eq!(err.setting, setting, "{err}");
        }
        let short = Config::builder()
            .api_key(KEY)
            .metrics_interval(Duration::from_millis(10))
            .build_with_env(|_| None)
            .unwrap_err();
        assert!(short.to_string().contains("at least 100 ms"), "{short}");
    }

    #[test]
    fn backoff_grows_and_stays_within_bounds() {
        let policy = RetryPolicy {
            attempts: 5,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(800),
        };
        for retry in 1..40 {
            let pause = policy.backoff(retry);
            assert!(
                pause >= policy.min_backoff && pause <= policy.max_backoff,
                "{pause:?}"
            );
        }
        assert_eq!(policy.backoff(1), Duration::from_millis(100));
    }
}
