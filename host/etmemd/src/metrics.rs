//! Prometheus metrics as a text file (our addition): with `ETMEMD_METRICS_FILE=PATH` in its
//! environment, etmemd writes every project's and task's statistics
//! ([`etmem_host::metrics_text`]) to PATH every `ETMEMD_METRICS_INTERVAL` seconds (default
//! 15), for node_exporter's textfile collector. Off by default; nothing listens on a port.
//! Each write goes to a temporary file beside PATH, then is renamed over it, so a reader
//! never sees half a file.

use etmem_host::DaemonHandle;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// The environment variable naming the metrics file.
pub const METRICS_FILE_ENV: &str = "ETMEMD_METRICS_FILE";
/// The environment variable giving the seconds between writes.
pub const METRICS_INTERVAL_ENV: &str = "ETMEMD_METRICS_INTERVAL";
/// Seconds between writes when [`METRICS_INTERVAL_ENV`] is not set.
pub const DEFAULT_INTERVAL_SECS: u64 = 15;

/// A bad metrics setting.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MetricsConfigError {
    /// The file is not an absolute path.
    #[error("{METRICS_FILE_ENV}={0:?}: expected an absolute path")]
    NotAbsolute(String),
    /// The interval is not a whole number of seconds in range.
    #[error("{METRICS_INTERVAL_ENV}={0:?}: expected whole seconds from 1 to 3600")]
    Interval(String),
}

/// Where and how often to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// the file
    pub path: PathBuf,
    /// time between writes
    pub interval: Duration,
}

impl MetricsConfig {
    /// The settings from the two variables' values; `Ok(None)` when the file is not set.
    pub fn from_values(
        file: Option<&str>,
        interval: Option<&str>,
    ) -> Result<Option<MetricsConfig>, MetricsConfigError> {
        let Some(file) = file else {
            return Ok(None);
        };
        let path = PathBuf::from(file);
        if !path.is_absolute() {
            return Err(MetricsConfigError::NotAbsolute(file.to_string()));
        }
        let secs = match interval {
            None => DEFAULT_INTERVAL_SECS,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|s| (1..=3600).contains(s))
                .ok_or_else(|| MetricsConfigError::Interval(v.to_string()))?,
        };
        Ok(Some(MetricsConfig {
            path,
            interval: Duration::from_secs(secs),
        }))
    }

    /// The settings from etmemd's environment.
    pub fn from_env() -> Result<Option<MetricsConfig>, MetricsConfigError> {
        let file = std::env::var(METRICS_FILE_ENV).ok();
        let interval = std::env::var(METRICS_INTERVAL_ENV).ok();
        MetricsConfig::from_values(file.as_deref(), interval.as_deref())
    }
}

/// Writes `text` to `path` through a temporary file in the same directory (mode 0644),
/// renamed over `path`.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_data()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// Writes the metrics of `daemon` every `config.interval` until the runtime stops. A
/// failure is logged at warn once (and when it changes), a recovery at info.
pub async fn export(daemon: DaemonHandle, config: MetricsConfig) {
    let mut last_error: Option<String> = None;
    let mut tick = tokio::time::interval(config.interval);
    loop {
        tick.tick().await;
        let text = etmem_host::metrics_text(&daemon.all_stats());
        let path = config.path.clone();
        let r = tokio::task::spawn_blocking(move || write_atomically(&path, &text)).await;
        let error = match r {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("the write did not complete: {e}")),
        };
        match (&error, &last_error) {
            (Some(e), prev) if prev.as_ref() != Some(e) => tracing::warn!(
                "metrics file {}: {e}; retrying every {:?}",
                config.path.display(),
                config.interval
            ),
            (None, Some(_)) => {
                tracing::info!("metrics file {}: written again", config.path.display());
            }
            _ => {}
        }
        last_error = error;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_with_the_variable_named() {
        assert_eq!(MetricsConfig::from_values(None, Some("5")), Ok(None));
        assert_eq!(
            MetricsConfig::from_values(Some("/run/etmemd.prom"), None),
            Ok(Some(MetricsConfig {
                path: "/run/etmemd.prom".into(),
                interval: Duration::from_secs(15)
            }))
        );
        assert_eq!(
            MetricsConfig::from_values(Some("etmemd.prom"), None)
                .expect_err("relative")
                .to_string(),
            "ETMEMD_METRICS_FILE=\"etmemd.prom\": expected an absolute path"
        );
        for bad in ["0", "3601", "1.5", "x"] {
            assert_eq!(
                MetricsConfig::from_values(Some("/m.prom"), Some(bad))
                    .expect_err(bad)
                    .to_string(),
                format!("ETMEMD_METRICS_INTERVAL={bad:?}: expected whole seconds from 1 to 3600")
            );
        }
    }

    #[test]
    fn a_write_replaces_the_file_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("etmemd.prom");
        write_atomically(&p, "a 1\n").expect("first");
        write_atomically(&p, "b 2\n").expect("second");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "b 2\n");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["etmemd.prom"]);
        let e = write_atomically(&dir.path().join("no/such/dir/m.prom"), "x").expect_err("no dir");
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }
}
