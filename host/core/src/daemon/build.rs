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
    ));
    let href: HostRef = host.clone();
    let source = e.source.clone();
    let params = e.params.clone();
    let name = e.name.clone();
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
            } => loader.load(&path, &ops_name, &name, &params, &href),
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
    Ok(EngineCell::new(&e.project, &e.name, inst, host))
}
