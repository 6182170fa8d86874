//! The host environment sent with a session (unless `env_data_opt_out`), in the Python SDK's shape.

use serde_json::{json, Value};

/// A description of this host: SDK, OS, CPU and working directory.
pub(crate) fn collect() -> Value {
    let hostname = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .unwrap_or_default();
    let os_release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|release| release.trim().to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let cwd = std::env::current_dir()
        .map(|dir| dir.display().to_string())
        .unwrap_or_default();
    json!({
        "SDK": {
            "AgentOps SDK Version": env!("CARGO_PKG_VERSION"),
            "Language": "Rust",
        },
        "OS": {
            "Hostname": hostname,
            "OS": std::env::consts::OS,
            "OS Release": os_release,
            "Architecture": std::env::consts::ARCH,
        },
        "CPU": { "Total cores": cores },
        "Project Working Directory": { "Project Working Directory": cwd },
    })
}
