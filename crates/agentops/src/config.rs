//! SDK configuration: a builder whose unset fields fall back to `AGENTOPS_*` environment
//! variables, then to documented defaults, validated once in [`ConfigBuilder::build`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use opentelemetry::{KeyValue, Value};
use uuid::Uuid;

/// The local `agentops serve` address, which is also the default OTLP/HTTP endpoint.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4318";

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
    /// Plain JSON.
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

/// How failed requests are retried: exponential backoff with jitter between two bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// How many times one request is tried in all (1 = no retry).
    pub attempts: u32,
    /// The first backoff.
    pub min_backoff: Duration,
    /// The largest backoff (a server's `Retry-After` is capped by it too).
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
    /// The project's API key (a UUID). `AGENTOPS_API_KEY`.
    pub api_key: Uuid,
    /// The backend's base URL, without a trailing slash. `AGENTOPS_API_ENDPOINT`.
    pub endpoint: String,
    /// The parent organisation's key, sent as `X-Agentops-Parent-Key`. `AGENTOPS_PARENT_KEY`.
    pub parent_key: Option<Uuid>,
    /// The longest an event waits before it is exported. `AGENTOPS_MAX_WAIT_TIME` (ms).
    pub max_wait_time: Duration,
    /// How many events a session holds while they wait for export; more are dropped and
    /// counted. `AGENTOPS_MAX_QUEUE_SIZE`.
    pub max_queue_size: usize,
    /// The most events in one `create_events` request. `AGENTOPS_BATCH_SIZE`.
    pub batch_size: usize,
    /// How requests are retried. `AGENTOPS_RETRY_ATTEMPTS`, `AGENTOPS_RETRY_MIN_BACKOFF`,
    /// `AGENTOPS_RETRY_MAX_BACKOFF` (ms).
    pub retry: RetryPolicy,
    /// The limit on one HTTP request, connection included. `AGENTOPS_REQUEST_TIMEOUT` (ms).
    pub request_timeout: Duration,
    /// The longest [`crate::Session::end`] waits for delivery. `AGENTOPS_SHUTDOWN_TIMEOUT` (ms).
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
    /// The share of non-error events kept, from 0 to 1; errors are always kept.
    /// `AGENTOPS_SAMPLING_RATE`.
    pub sampling_rate: f64,
    /// Request body compression. `AGENTOPS_COMPRESSION` (`gzip` or `none`).
    pub compression: Compression,
    /// Attributes added to every event of every session of this client.
    pub custom_attributes: Vec<KeyValue>,
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
    setter!(/// The share of non-error events kept, 0 to 1 (default 1).
        sampling_rate: f64 => "AGENTOPS_SAMPLING_RATE", |v| v.to_string());
    setter!(/// Gzip request bodies (default true).
        compression: bool => "AGENTOPS_COMPRESSION", |v| if v { "gzip".into() } else { "none".into() });

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

    /// Do not read `AGENTOPS_*` environment variables (useful in tests).
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
        let api_key = settings.get("AGENTOPS_API_KEY").ok_or_else(|| {
            ConfigError::new(
                "AGENTOPS_API_KEY",
                "is required (your project's API key, a UUID)",
            )
        })?;
        let api_key = parse_uuid("AGENTOPS_API_KEY", &api_key)?;
        let parent_key = settings
            .get("AGENTOPS_PARENT_KEY")
            .map(|key| parse_uuid("AGENTOPS_PARENT_KEY", &key))
            .transpose()?;
        let endpoint = settings
            .get("AGENTOPS_API_ENDPOINT")
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let endpoint = validate_endpoint(&endpoint)?;

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
        let request_timeout = settings.millis("AGENTOPS_REQUEST_TIMEOUT", 10_000)?;
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
            compression: settings.parse("AGENTOPS_COMPRESSION", Compression::Gzip)?,
            custom_attributes: self.custom_attributes,
        })
    }
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

    fn millis(&self, name: &'static str, default_ms: u64) -> Result<Duration, ConfigError> {
        self.parse(name, default_ms).map(Duration::from_millis)
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

fn validate_endpoint(text: &str) -> Result<String, ConfigError> {
    let trimmed = text.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
            Ok(trimmed.to_owned())
        }
        _ => Err(ConfigError::new(
            "AGENTOPS_API_ENDPOINT",
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
        assert_eq!(config.compression, Compression::Gzip);
        assert_eq!(config.sampling_rate, 1.0);
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
        let cases: [(ConfigBuilder, &str); 5] = [
            (
                Config::builder().sampling_rate(1.5),
                "AGENTOPS_SAMPLING_RATE",
            ),
            (
                Config::builder().endpoint("ftp://x"),
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
