//! Built-in engines: an [`etmem_sdk::Engine`] compiled into the daemon (slide, cslide, test
//! engines), carried behind [`EngineInstance`] by [`etmem_sdk::runtime::Runner`].
//!
//! Every call is guarded twice: the SDK's own guard turns a panic into
//! `EngineError::Panicked`, and the adapter maps that to [`CallError::Fault`]. Once an
//! instance has faulted it answers every later call with the same fault. This module must
//! not schedule, scan or act.

use super::{Action, SdkTaskInfo};
use super::{CallError, EngineInstance, HostRef, Params, Round, ScanResult, SdkEngineError};
use etmem_sdk::Engine;
use etmem_sdk::runtime::{Runner, guard};
use std::fmt;

/// Maps an SDK result to a call result: a caught panic is a fault.
pub(crate) fn to_call<T>(r: Result<T, SdkEngineError>) -> Result<T, CallError> {
    match r {
        Ok(v) => Ok(v),
        Err(SdkEngineError::Panicked(m)) => Err(CallError::Fault(format!("panicked: {m}"))),
        Err(e) => Err(CallError::Engine(e)),
    }
}

/// One built-in engine instance.
pub(crate) struct BuiltinInstance<E: Engine> {
    runner: Runner<E>,
    type_name: String,
    fault: Option<String>,
}

impl<E: Engine> fmt::Debug for BuiltinInstance<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuiltinInstance")
            .field("type", &self.type_name)
            .field("runner", &self.runner)
            .field("fault", &self.fault)
            .finish()
    }
}

impl<E: Engine> BuiltinInstance<E> {
    /// `configure` of a new instance.
    pub(crate) fn configure(
        type_name: &str,
        params: &Params,
        host: &HostRef,
    ) -> Result<BuiltinInstance<E>, CallError> {
        let h: &(dyn etmem_sdk::Host + Send + Sync) = &**host;
        let runner = to_call(guard(|| Runner::<E>::configure(params, h)))?;
        Ok(BuiltinInstance {
            runner,
            type_name: type_name.to_string(),
            fault: None,
        })
    }

    fn run<T>(
        &mut self,
        f: impl FnOnce(&mut Runner<E>) -> Result<T, SdkEngineError>,
    ) -> Result<T, CallError> {
        if let Some(f) = &self.fault {
            return Err(CallError::Fault(f.clone()));
        }
        let runner = &mut self.runner;
        let r = to_call(guard(|| f(runner)));
        if let Err(CallError::Fault(why)) = &r {
            self.fault = Some(why.clone());
        }
        r
    }
}

impl<E: Engine> EngineInstance for BuiltinInstance<E> {
    fn new_task(
        &mut self,
        task: &SdkTaskInfo,
        params: &Params,
        host: &HostRef,
    ) -> Result<(), CallError> {
        let h = host.clone();
        self.run(|r| r.new_task(task, params, &*h))
    }

    fn plan(
        &mut self,
        task: &str,
        round: &Round,
        scans: &[ScanResult],
        host: &HostRef,
    ) -> Result<Vec<Action>, CallError> {
        let h = host.clone();
        self.run(|r| r.plan(task, round, scans, &*h))
    }

    fn stop_task(&mut self, task: &str, host: &HostRef) -> Result<(), CallError> {
        let h = host.clone();
        self.run(|r| r.stop_task(task, &*h))
    }

    fn drop_task(&mut self, task: &str) -> Result<(), CallError> {
        self.run(|r| r.drop_task(task))
    }

    fn command(
        &mut self,
        cmd: &str,
        task: Option<&str>,
        host: &HostRef,
    ) -> Result<String, CallError> {
        let h = host.clone();
        self.run(|r| r.command(cmd, task, &*h))
    }
}
