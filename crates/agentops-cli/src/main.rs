//! `agentops`: run the AgentOps server, and inspect what it stored.

mod api_client;
mod backup;
mod config_file;
mod data_dir;
mod demo;
mod keys;
mod migrate;
mod projects;
mod sessions;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "agentops",
    version,
    about = "AgentOps in Rust: observability for AI agents"
)]
struct Cli {
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, env = "AGENTOPS_LOG", default_value = "info", global = true)]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (AgentOps v2 REST, /v3/auth/token, OTLP/HTTP /v1/traces, read API).
    Serve(ServeArgs),
    /// List, show or export the sessions of a running server.
    Sessions {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// Record a realistic multi-agent session (LLM calls, tools, an error) through the Rust
    /// SDK into a running server, to see real data at once.
    Demo {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Create, list or revoke API keys in the data directory (the server may be running).
    Keys {
        #[command(flatten)]
        store: data_dir::StoreArgs,
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// List projects, or set how long a project's sessions are kept (the server may be
    /// running; it applies a new retention at its next pass, within the hour).
    Projects {
        #[command(flatten)]
        store: data_dir::StoreArgs,
        #[command(subcommand)]
        command: ProjectsCommand,
    },
    /// Copy the database into a new file, consistently, while the server may be serving
    /// (SQLite's online backup; progress on standard error). The copy is a data directory's
    /// `agentops.db` of its own.
    Backup {
        /// The new file (refused if it exists); readable by its owner only.
        file: PathBuf,
        /// Data directory.
        #[arg(long, env = "AGENTOPS_DATA_DIR", default_value = agentops_server::config::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// Copy a whole SQLite store into a PostgreSQL database (for `serve --database-url`):
    /// table by table, in batches, progress on standard error, then the row counts of both
    /// compared. The source is only read (its server may be running: what it writes meanwhile
    /// is not copied). The target must be empty; an interrupted run resumes when run again.
    Migrate {
        /// The SQLite store: a data directory, or its agentops.db file.
        #[arg(long, value_name = "DATA_DIR|FILE", env = "AGENTOPS_DATA_DIR", default_value = agentops_server::config::DEFAULT_DATA_DIR)]
        from: PathBuf,
        /// The PostgreSQL database to fill, `postgres://user:password@host:port/database`
        /// (migrated to the current schema first).
        #[arg(
            long,
            value_name = "URL",
            env = "AGENTOPS_DATABASE_URL",
            hide_env_values = true
        )]
        to: String,
        /// Rows copied per transaction.
        #[arg(long, value_name = "ROWS", default_value_t = agentops_server::store::migrate::DEFAULT_BATCH_ROWS)]
        batch_rows: usize,
    },
    /// Create a project and print its new API key (the server may be running).
    CreateProject {
        /// The project's name.
        name: String,
        #[command(flatten)]
        store: data_dir::StoreArgs,
    },
}

/// How the client commands reach the server.
#[derive(Args)]
struct ServerArgs {
    /// The server's base URL.
    #[arg(
        long,
        global = true,
        env = "AGENTOPS_API_ENDPOINT",
        default_value = "http://127.0.0.1:4318"
    )]
    url: String,
    /// The project's API key.
    #[arg(long, global = true, env = "AGENTOPS_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// A new API key, printed once (only its hash is stored).
    Create {
        /// The project's id or name (default: the first project).
        #[arg(long)]
        project: Option<String>,
    },
    /// Every key's id, project and creation time (never the key).
    List,
    /// Deletes a key; a running server refuses it within seconds.
    Revoke {
        /// The key's id as `keys list` shows it (at least 8 hex digits).
        id: String,
    },
}

#[derive(Subcommand)]
enum ProjectsCommand {
    /// Every project's id, name, retention and creation time.
    List,
    /// Sets how long a project's sessions are kept, overriding the server's --retention-days.
    SetRetention {
        /// The project's id or name.
        project: String,
        /// Days (at least 1), `forever`, or `default` (follow the server's --retention-days).
        retention: projects::ProjectRetention,
    },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// The sessions, newest first, as a table.
    List(sessions::ListFilters),
    /// One session's events as a timeline, with durations, tokens and cost.
    Show {
        /// The session's id.
        id: String,
    },
    /// One session with all its events, as JSON on standard output.
    Export {
        /// The session's id.
        id: String,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// A TOML file of serve settings (`listen = "…"`, `data_dir = "…"`, …): flags and
    /// AGENTOPS_* variables override it.
    #[arg(long, env = "AGENTOPS_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "AGENTOPS_LISTEN", default_value = agentops_server::config::DEFAULT_LISTEN)]
    listen: String,
    /// Address OTLP/gRPC listens on (traces, logs, metrics), or `off`. By default
    /// 127.0.0.1:4317, skipped with a warning when that is taken; an address given here must be
    /// free.
    #[arg(long, env = "AGENTOPS_GRPC_LISTEN", value_name = "IP:PORT|off")]
    grpc_listen: Option<String>,
    /// Directory holding the SQLite database and the JWT secret (unused with --database-url).
    #[arg(long, env = "AGENTOPS_DATA_DIR", default_value = agentops_server::config::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Store everything in this PostgreSQL database instead of the data directory's SQLite
    /// file (`postgres://user[:password]@host[:port]/database`): every replica given the same
    /// URL serves the same projects, keys, sessions and tokens. TLS: add
    /// `?sslmode=verify-full` (and `&sslrootcert=/path/ca.pem` for a CA of your own).
    #[arg(
        long,
        env = "AGENTOPS_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// A known API key (UUID) for the default project, for scripts; stored hashed.
    #[arg(long, env = "AGENTOPS_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Largest request body accepted, in bytes, after gzip decompression.
    #[arg(long, env = "AGENTOPS_MAX_BODY_BYTES", default_value_t = agentops_server::config::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Connections served at once; more are closed as they arrive. Idle connections are
    /// closed after 15 s.
    #[arg(long, env = "AGENTOPS_MAX_CONNECTIONS", default_value_t = agentops_server::config::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Requests that may wait for the database writer before new ones get 503.
    #[arg(long, env = "AGENTOPS_QUEUE_CAPACITY", default_value_t = agentops_server::config::DEFAULT_QUEUE_CAPACITY)]
    queue_capacity: usize,
    /// Most requests committed in one transaction.
    #[arg(long, env = "AGENTOPS_BATCH_MAX", default_value_t = agentops_server::config::DEFAULT_BATCH_MAX)]
    batch_max: usize,
    /// Lifetime of issued JWTs, in seconds.
    #[arg(long, env = "AGENTOPS_JWT_TTL_SECS", default_value_t = agentops_server::config::DEFAULT_JWT_TTL.as_secs())]
    jwt_ttl_secs: u64,
    /// A JSON price table replacing the built-in one.
    #[arg(long, env = "AGENTOPS_PRICES")]
    prices: Option<PathBuf>,
    /// Public base URL used in `session_url` answers (default: http://<listen address>).
    #[arg(long, env = "AGENTOPS_PUBLIC_URL")]
    public_url: Option<String>,
    /// Store /v1/traces requests without any credentials in the default project at once. Off:
    /// they are held until an authenticated request of the same trace claims them (the Python
    /// SDK 0.4 exports its first spans before it has a token).
    #[arg(long, env = "AGENTOPS_ACCEPT_UNAUTHENTICATED_TRACES")]
    accept_unauthenticated_traces: bool,
    /// Let the read API (/api/v1) answer without credentials, for the default project. Only
    /// allowed when --listen is a loopback address (the server refuses to start otherwise).
    #[arg(long, env = "AGENTOPS_OPEN_READ_ACCESS")]
    open_read_access: bool,
    /// Serve GET /metrics (Prometheus) without credentials on any listen address. Without it,
    /// a loopback --listen needs none (for requests to localhost) and any other needs read
    /// credentials, as /api/v1 does.
    #[arg(long, env = "AGENTOPS_METRICS_PUBLIC")]
    metrics_public: bool,
    /// Delete sessions whose end (their start, if they never ended) is older than this many
    /// days, at start and then hourly; `forever` keeps everything. A project's own retention
    /// (`agentops projects set-retention`) overrides it.
    #[arg(
        long,
        env = "AGENTOPS_RETENTION_DAYS",
        value_name = "DAYS|forever",
        default_value = "forever"
    )]
    retention_days: agentops_server::config::Retention,
    /// End a plain trace's session (one without an AgentOps session span) once its root span
    /// has ended and no span of it has arrived for this many seconds; Fail when the root span
    /// failed, else Success.
    #[arg(
        long,
        env = "AGENTOPS_SESSION_QUIET_SECONDS",
        value_name = "SECONDS",
        default_value_t = 30
    )]
    session_quiet_seconds: u64,
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<agentops_server::Config> {
        let listen: SocketAddr = self.listen.parse().with_context(|| {
            format!(
                "invalid --listen / AGENTOPS_LISTEN {:?}: expected IP:PORT, e.g. 127.0.0.1:4318",
                self.listen
            )
        })?;
        if self.max_body_bytes < 1024 {
            bail!("--max-body-bytes / AGENTOPS_MAX_BODY_BYTES must be at least 1024");
        }
        if self.max_connections == 0 {
            bail!("--max-connections / AGENTOPS_MAX_CONNECTIONS must be at least 1");
        }
        if self.queue_capacity == 0 || self.batch_max == 0 {
            bail!("--queue-capacity and --batch-max must be at least 1");
        }
        if self.jwt_ttl_secs < 60 {
            bail!("--jwt-ttl-secs / AGENTOPS_JWT_TTL_SECS must be at least 60");
        }
        if let Some(key) = &self.api_key {
            if !agentops_server::auth::is_valid_api_key(key) {
                bail!("invalid --api-key / AGENTOPS_API_KEY: an AgentOps API key is a UUID");
            }
        }
        let mut config = agentops_server::Config::new(self.data_dir);
        config.database_url = self.database_url;
        config.listen = listen;
        (config.grpc_listen, config.grpc_required) = match self.grpc_listen.as_deref() {
            None => (
                agentops_server::config::DEFAULT_GRPC_LISTEN.parse().ok(),
                false,
            ),
            Some("off") => (None, true),
            Some(text) => (
                Some(text.parse().with_context(|| {
                    format!("invalid --grpc-listen / AGENTOPS_GRPC_LISTEN {text:?}: expected IP:PORT, e.g. 127.0.0.1:4317, or off")
                })?),
                true,
            ),
        };
        config.api_key = self.api_key;
        config.max_body_bytes = self.max_body_bytes;
        config.max_connections = self.max_connections;
        config.queue_capacity = self.queue_capacity;
        config.batch_max = self.batch_max;
        config.jwt_ttl = Duration::from_secs(self.jwt_ttl_secs);
        config.prices_file = self.prices;
        config.public_url = self.public_url;
        config.accept_unauthenticated_traces = self.accept_unauthenticated_traces;
        config.open_read_access = self.open_read_access;
        config.metrics_public = self.metrics_public;
        config.retention = self.retention_days;
        if self.session_quiet_seconds > 86_400 {
            bail!("--session-quiet-seconds / AGENTOPS_SESSION_QUIET_SECONDS must be at most 86400 (a day)");
        }
        config.session_quiet_window = Duration::from_secs(self.session_quiet_seconds);
        Ok(config)
    }
}

fn init_logging(level: &str) -> anyhow::Result<()> {
    let level: tracing::Level = level.parse().map_err(|_| {
        anyhow::anyhow!(
            "invalid --log / AGENTOPS_LOG {level:?}: expected error, warn, info, debug or trace"
        )
    })?;
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

/// Parses the command line, with the configuration file's values as the defaults of `serve`.
fn parse_cli() -> anyhow::Result<Cli> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut command = Cli::command();
    if let Some(path) = config_file::path_from(&args) {
        let serve_ids: Vec<String> = command
            .find_subcommand("serve")
            .map(|serve| {
                serve
                    .get_arguments()
                    .map(|arg| arg.get_id().to_string())
                    .filter(|id| id != "config" && id != "help")
                    .collect()
            })
            .unwrap_or_default();
        for (id, value) in config_file::read(&path, &serve_ids)? {
            // clap keeps defaults for the life of the program: leaking these few strings once is
            // the price of letting clap apply its own precedence (flag, then env, then default).
            let value: &'static str = Box::leak(value.into_boxed_str());
            command = command.mut_subcommand("serve", |serve| {
                serve.mut_arg(id.as_str(), |arg| arg.default_value(value))
            });
        }
    }
    let matches = command.get_matches_from(args);
    Cli::from_arg_matches(&matches).map_err(|err| err.exit())
}

fn main() -> std::process::ExitCode {
    match parse_cli().and_then(run) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // The message and each cause not already contained in it; no backtrace.
            let mut message = err.to_string();
            for cause in err.chain().skip(1) {
                let cause = cause.to_string();
                if !message.contains(&cause) {
                    message = format!("{message}: {cause}");
                }
            }
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    init_logging(&cli.log)?;
    match cli.command {
        Command::Serve(args) => {
            let config = args.into_config()?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(async {
                let server = agentops_server::Server::start(config).await?;
                // Caught before the server says it is up: whoever reads that may stop it at once.
                let signals = agentops_server::ShutdownSignals::listen()?;
                if let Some(key) = server.created_api_key() {
                    println!("Created the default project and its API key (shown only once, stored hashed):");
                    println!("  AGENTOPS_API_KEY={key}");
                }
                println!("AgentOps server listening on {}", server.url());
                server.run_until(signals).await?;
                Ok::<_, agentops_server::ServerError>(())
            })?;
        }
        Command::Sessions { server, command } => {
            let client = api_client::ApiClient::new(&server.url, server.api_key);
            let output = match command {
                SessionsCommand::List(filters) => sessions::list(&client, &filters)?,
                SessionsCommand::Show { id } => sessions::show(&client, &id)?,
                SessionsCommand::Export { id } => sessions::export(&client, &id)?,
            };
            print!("{output}");
        }
        Command::Demo { server } => {
            let api_key = server.api_key.context(
                "the demo needs the project's API key: pass --api-key or set AGENTOPS_API_KEY \
                 (`agentops serve` prints it on first start)",
            )?;
            println!("Recording a demo session into {} …", server.url);
            let summary = demo::run(&server.url, &api_key, |step| println!("  • {step}"))?;
            if let Some(err) = &summary.backend_error {
                anyhow::bail!("the server did not record the session: {err}");
            }
            let counts: Vec<String> = summary
                .event_counts
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(kind, n)| format!("{n} {kind}"))
                .collect();
            println!(
                "Done: session {} ({}), {} delivered, cost {}.",
                summary.session_id,
                counts.join(", "),
                summary.delivery.delivered,
                summary
                    .token_cost_usd()
                    .map_or("unknown".into(), sessions::dollars)
            );
            println!(
                "  see it:  {}/#/sessions/{}",
                server.url.trim_end_matches('/'),
                summary.session_id
            );
            println!("  or:      agentops sessions show {}", summary.session_id);
        }
        Command::Keys { store, command } => {
            let store = store.open()?;
            let store = store.as_ref();
            let output = match command {
                KeysCommand::Create { project } => keys::create(store, project.as_deref())?,
                KeysCommand::List => keys::list(store)?,
                KeysCommand::Revoke { id } => keys::revoke(store, &id)?,
            };
            print!("{output}");
        }
        Command::Projects { store, command } => {
            let store = store.open()?;
            let store = store.as_ref();
            let output = match command {
                ProjectsCommand::List => projects::list(store)?,
                ProjectsCommand::SetRetention { project, retention } => {
                    projects::set_retention(store, &project, retention)?
                }
            };
            print!("{output}");
        }
        Command::Backup { file, data_dir } => {
            let database = data_dir::existing_database(&data_dir)?;
            print!("{}", backup::run(&database, &file)?);
        }
        Command::Migrate {
            from,
            to,
            batch_rows,
        } => {
            print!("{}", migrate::run(&from, &to, batch_rows)?);
        }
        Command::CreateProject { name, store } => {
            let store = store.open_or_create()?;
            let store = store.as_ref();
            let (project_id, key) = agentops_server::create_project(store, &name)?;
            println!("project_id={project_id}");
            println!("AGENTOPS_API_KEY={key}");
        }
    }
    Ok(())
}
