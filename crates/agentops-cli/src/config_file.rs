//! The optional configuration file of `agentops serve` (`--config FILE` or `AGENTOPS_CONFIG`).
//!
//! A TOML file whose keys are the `serve` flags (`listen`, `data_dir` or `data-dir`, …). Its
//! values become the flags' defaults, so the order of precedence is: command-line flag, then
//! `AGENTOPS_*` variable, then the file, then the built-in default.
//!
//! ```toml
//! listen = "0.0.0.0:4318"
//! data_dir = "/var/lib/agentops"
//! max_body_bytes = 33554432
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The flag and variable naming the file.
pub const FLAG: &str = "--config";
/// The environment variable naming the file.
pub const ENV: &str = "AGENTOPS_CONFIG";

/// The file named by `--config FILE`, `--config=FILE` or `AGENTOPS_CONFIG`, if any.
pub fn path_from(args: &[OsString]) -> Option<PathBuf> {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        if text == FLAG {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = text.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os(ENV).map(PathBuf::from)
}

/// Reads the file into `(flag id, value)` pairs, checking each key against `known` flag ids.
pub fn read(path: &Path, known: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let mut values = Vec::new();
    for (key, value) in table {
        let id = key.replace('-', "_");
        if !known.contains(&id) {
            bail!(
                "{}: unknown setting {key:?} (known: {})",
                path.display(),
                known.join(", ")
            );
        }
        let value = match value {
            toml::Value::String(text) => text,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(x) => x.to_string(),
            other => bail!(
                "{}: {key} must be a string, number or boolean, not {}",
                path.display(),
                other.type_str()
            ),
        };
        values.push((id, value));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        [
            "listen",
            "data_dir",
            "max_body_bytes",
            "accept_unauthenticated_traces",
        ]
        .map(String::from)
        .to_vec()
    }

    fn write(text: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("agentops-config-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn reads_flags_with_either_spelling() {
        let path = write("listen = \"127.0.0.1:9\"\ndata-dir = \"/x\"\nmax_body_bytes = 2048\naccept_unauthenticated_traces = true\n");
        let values = read(&path, &known()).unwrap();
        assert_eq!(
            values,
            [
                ("accept_unauthenticated_traces".into(), "true".into()),
                ("data_dir".into(), "/x".into()),
                ("listen".into(), "127.0.0.1:9".into()),
                ("max_body_bytes".into(), "2048".into()),
            ]
        );
    }

    #[test]
    fn names_what_is_wrong() {
        let unknown = read(&write("lisen = \"x\""), &known()).unwrap_err();
        assert!(
            unknown.to_string().contains("unknown setting \"lisen\""),
            "{unknown}"
        );
        let bad = read(&write("listen = "), &known()).unwrap_err();
        assert!(format!("{bad:#}").contains("not valid TOML"), "{bad:#}");
        let table = read(&write("[listen]\na = 1"), &known()).unwrap_err();
        assert!(table.to_string().contains("must be a string"), "{table}");
        let missing = read(Path::new("/nonexistent/agentops.toml"), &known()).unwrap_err();
        assert!(missing.to_string().contains("cannot read"), "{missing}");
    }

    #[test]
    fn finds_the_flag_in_both_forms() {
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            path_from(&args(&["agentops", "serve", "--config", "a.toml"])),
            Some("a.toml".into())
        );
        assert_eq!(
            path_from(&args(&["agentops", "serve", "--config=b.toml"])),
            Some("b.toml".into())
        );
    }
}
