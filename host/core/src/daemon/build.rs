//! The construction of a new engine's instance for `obj add`: its host capabilities and
//! its `configure` (built-in factory or loaded library), run on a blocking thread with
//! panics caught.
//!
//! It must not touch the daemon's state: the caller inserts the engine only once the whole
//! file was accepted.

use super::Daemon;
use crate::action::ActionError;
use crate::add::{NewEngine, Source};
use crate::caps::EngineHost;
use crate::model::EngineCell;
use crate::plugin::{CallError, EngineInstance, HostRef, LoadError};
use etmem_proto::OptResult;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// The sha256 of the file at `path` in hex, or why it could not be read (the load itself
/// reports its own errors).
fn file_sha256(path: &std::path::Path) -> String {
    use sha2::{Digest, Sha256};
    match std::fs::read(path) {
        Ok(bytes) => Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        Err(e) => format!("unavailable: {e}"),
    }
}

/// Builds the instance of a checked engine on a blocking thread (its `configure` runs).
pub(super) async fn build_engine(
    d: &Daemon,
    e: &NewEngine,
) -> Result<Arc<EngineCell>, ActionError> {
    let quota = e.conf.round_quota_bytes.or(d.options.round_quota_bytes);
    let host = Arc::new(EngineHost::new(
        &e.project,
        &e.name,
        d.kernel.clone(),
        quota,
        e.dry_run,
    ));
    let href: HostRef = host.clone();
    let source = e.source.clone();
    let params = e.params.clone();
    let name = e.name.clone();
    let project = e.project.clone();
    let r = tokio::task::spawn_blocking(move || {
        let built = catch_unwind(AssertUnwindSafe(|| match source {
            Source::Builtin(f) => f(&params, &href).map_err(|error| LoadError::Configure {
                engine: name.clone(),
                error,
            }),
            Source::Library {
                path,
                ops_name,
                loader,
            } => {
                let hash = file_sha256(&path);
                let inst = loader.load(&path, &ops_name, &name, &params, &href)?;
                tracing::info!(
                    "engine `{name}` of project `{project}`: loaded {} (.{}, ops `{ops_name}`, sha256 \
                     {hash})",
                    path.display(),
                    loader.extension()
                );
                Ok(inst)
            }
        }));
        match built {
            Ok(r) => r,
            Err(p) => Err(LoadError::Configure {
                engine: name,
                error: CallError::Fault(format!(
                    "panicked: {}",
                    etmem_sdk::runtime::panic_message(p.as_ref())
                )),
            }),
        }
    })
    .await;
    let inst: Box<dyn EngineInstance> = match r {
        Ok(Ok(i)) => i,
        Ok(Err(err)) => {
            return Err(ActionError::new(
                OptResult::InterErr,
                format!(
                    "{}: engine `{}` in project `{}`: {err}",
                    e.at, e.name, e.project
                ),
            ));
        }
        Err(err) => {
            return Err(ActionError::new(
                OptResult::InterErr,
                format!(
                    "{}: engine `{}` in project `{}`: configure did not complete: {err}",
                    e.at, e.name, e.project
                ),
            ));
        }
    };
    Ok(EngineCell::new(
        &e.project,
        &e.name,
        inst,
        host,
        e.params.clone(),
    ))
}
