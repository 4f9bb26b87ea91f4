//! The wasmtime loader of etmem engines: turns a WebAssembly component built against
//! `wit/engine.wit` (world `etmem-engine`) into an [`EngineInstance`].
//!
//! The sandbox, in one place:
//! * **Imports.** The linker provides our `etmem:engine/host` interface (and the type-only
//!   `etmem:engine/types`), and WASI 0.2 (`wasi:cli`, `wasi:clocks`, `wasi:filesystem`,
//!   `wasi:io`, `wasi:random`, `wasi:sockets`) through wasmtime-wasi with a context that
//!   grants nothing, so that a plain `wasm32-wasip2` build loads (see [`wasi`]). A component
//!   that imports anything else is refused at load, with the import named. The recommended
//!   build (`scripts/build-engine` without rustup's wasip2: wasm32-unknown-unknown linked by
//!   `wasm-component-ld`) imports no WASI at all.
//! * **Time.** One `wasmtime::Engine` per loader, with epoch interruption; a ticker thread
//!   advances the epoch, and every call gets a deadline ([`WasmOptions::call_deadline`]).
//! * **Memory.** Each instance has its own `Store` whose limiter caps the total of its linear
//!   memories ([`WasmOptions::memory_limit`]); a refused growth traps at once.
//! * **Faults.** A trap, a missed deadline or the memory cap ends the call with
//!   [`CallError::Fault`]; the instance then refuses every call
//!   (`engine already failed: <first reason>`). Other instances and the loader are unaffected.
//!
//! **`ops_name`.** The WIT gives a component no name: a component exports exactly one engine,
//! and `ops_name` must equal the component's file stem (`ops_name = idle_swap` for
//! `idle_swap.wasm`, which is the file name `scripts/build-engine` gives it).
//!
//! **Compiled cache.** A component is compiled once per content hash (sha256) and kept in
//! memory; with [`WasmOptions::cache_dir`], the compiled form is also written to disk and
//! reused across restarts (see [`cache`]).
//!
//! This crate must not schedule, scan or act: it only carries calls to and from a guest.

pub mod cache;
mod convert;
mod store;
pub mod wasi;

use store::MemoryLimitReached;
pub use store::StoreState;

use cache::{CacheStats, ComponentCache, DiskCache};
use etmem_host::plugin::{
    CallError, EngineInstance, EngineLoader, HostRef, LoadError, Params, Round, ScanResult,
    SdkEngineError, SdkTaskInfo,
};
use etmem_sdk::Action;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use thiserror::Error;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Store, Trap};

/// Host bindings generated from `wit/engine.wit`.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "etmem-engine",
    });
}

use bindings::EtmemEnginePre;
use bindings::etmem::engine::types as wit;

/// Our own interfaces, which a component may import.
pub const GRANTED_IMPORTS: &[&str] = &["etmem:engine/host@0.2.0", "etmem:engine/types@0.2.0"];

/// Whether a component may import `name`: one of [`GRANTED_IMPORTS`], or an interface of a
/// WASI 0.2 package in [`wasi::PACKAGES`] (whose version the linker then checks).
pub fn import_granted(name: &str) -> bool {
    GRANTED_IMPORTS.contains(&name)
        || wasi::PACKAGES.iter().any(|p| {
            name.strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('/'))
        })
}

/// The wasmtime release this crate is built against (pinned in Cargo.toml); part of the
/// on-disk cache key.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Settings of a [`WasmLoader`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmOptions {
    /// Cap on the total linear memory of one instance, in bytes (default 512 MiB: a
    /// 256 GiB target's scan for an engine like slide; see [`GUEST_BYTES_PER_RUN`]).
    pub memory_limit: u64,
    /// Wall-clock budget of one call into an engine, host calls included (default 5 s).
    pub call_deadline: Duration,
    /// Directory for compiled components (created 0700 if missing; must be owned by this
    /// user and not writable by group or others). `None`: compile once per process.
    pub cache_dir: Option<PathBuf>,
}

/// Bytes of a wasm engine's linear memory counted per run of a scan when etmemd decides
/// whether a round can fit: the lowered lists (address 8, length 4, count 1, size 1), which
/// the SDK keeps as they are, and what an engine like slide builds from them (its cold
/// runs, what it remembers of them for the next rounds, the actions it returns). slide as
/// a component peaked at 70 bytes per run at 16 GiB and 84 at 256 GiB over three rounds
/// (the scale bench, with the limit lowered until its plan trapped), when the SDK still
/// built a 16-byte `ScanRun` per run from the lists; 96 leaves room for the allocator's
/// slack.
pub const GUEST_BYTES_PER_RUN: u64 = 96;

/// wasm32's whole linear memory: the most [`WasmOptions::memory_limit`] can be.
pub const WASM32_MEMORY: u64 = 4 << 30;

/// The environment variable etmemd reads for [`WasmOptions::memory_limit`], in MiB.
pub const MEMORY_ENV: &str = "ETMEMD_WASM_MEMORY_MB";

impl Default for WasmOptions {
    fn default() -> WasmOptions {
        WasmOptions {
            memory_limit: 512 << 20,
            call_deadline: Duration::from_secs(5),
            cache_dir: None,
        }
    }
}

/// Why a [`WasmLoader`] could not be built.
#[derive(Debug, Error)]
pub enum WasmSetupError {
    /// wasmtime refused the engine configuration.
    #[error("wasm loader: wasmtime configuration: {0}")]
    Engine(String),
    /// The bindings could not be linked (a bug in this crate).
    #[error("wasm loader: linking the host interface: {0}")]
    Linker(String),
    /// The on-disk cache directory is unusable.
    #[error("wasm loader: cache directory `{path}`: {reason}")]
    CacheDir {
        /// the directory
        path: String,
        /// what is wrong with it
        reason: String,
    },
    /// The epoch ticker thread could not be started.
    #[error("wasm loader: starting the epoch ticker: {0}")]
    Ticker(String),
    /// A limit is zero or too large.
    #[error("wasm loader: {what} must be {expected}, found {found}")]
    Option {
        /// the option
        what: &'static str,
        /// what is accepted
        expected: &'static str,
        /// the value given
        found: String,
    },
}

/// Loads `.wasm` engine components (see the module docs for the sandbox).
pub struct WasmLoader {
    engine: wasmtime::Engine,
    linker: Linker<StoreState>,
    cache: ComponentCache,
    options: WasmOptions,
    tick: Duration,
    ticks_per_call: u64,
    ticker: Arc<Ticker>,
}

impl fmt::Debug for WasmLoader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmLoader")
            .field("options", &self.options)
            .field("cache", &self.cache.stats())
            .finish_non_exhaustive()
    }
}

impl WasmLoader {
    /// A loader with `options`: one wasmtime engine, its epoch ticker thread, the host
    /// interface linked, and the disk cache directory checked (created if missing).
    pub fn new(options: WasmOptions) -> Result<WasmLoader, WasmSetupError> {
        if options.memory_limit == 0
            || options.memory_limit > WASM32_MEMORY
            || usize::try_from(options.memory_limit).is_err()
        {
            return Err(WasmSetupError::Option {
                what: "memory_limit",
                expected: "1 byte to 4 GiB (wasm32's linear memory)",
                found: options.memory_limit.to_string(),
            });
        }
        if options.call_deadline.is_zero() {
            return Err(WasmSetupError::Option {
                what: "call_deadline",
                expected: "positive",
                found: format!("{:?}", options.call_deadline),
            });
        }
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        let engine =
            wasmtime::Engine::new(&config).map_err(|e| WasmSetupError::Engine(e.to_string()))?;

        let mut linker = Linker::<StoreState>::new(&engine);
        bindings::EtmemEngine::add_to_linker::<StoreState, HasSelf<StoreState>>(&mut linker, |s| s)
            .map_err(|e| WasmSetupError::Linker(format!("{e:#}")))?;
        wasi::add_to_linker(&mut linker).map_err(|e| WasmSetupError::Linker(format!("{e:#}")))?;

        let disk = match &options.cache_dir {
            Some(dir) => Some(DiskCache::open(dir, &engine)?),
            None => None,
        };

        // Ten ticks per deadline, at most 100 ms each. A deadline is `ceil(deadline / tick)
        // + 1` ticks away, as the first tick may come at once: a runaway call is stopped after
        // its deadline, at most two ticks late.
        let tick = (options.call_deadline / 10)
            .clamp(Duration::from_millis(1), Duration::from_millis(100));
        let ticks_per_call = options
            .call_deadline
            .as_nanos()
            .div_ceil(tick.as_nanos())
            .try_into()
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let ticker = Ticker::start(engine.clone(), tick)?;
        Ok(WasmLoader {
            cache: ComponentCache::new(disk),
            engine,
            linker,
            options,
            tick,
            ticks_per_call,
            ticker,
        })
    }

    /// How components were obtained so far (compiled, from memory, from disk).
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Forgets the compiled components kept in memory (the disk cache stays): the next load
    /// of each comes from disk or is compiled again. For measurements and tests.
    pub fn forget_compiled(&self) {
        self.cache.clear_memory();
    }

    /// The options this loader was built with.
    pub fn options(&self) -> &WasmOptions {
        &self.options
    }

    /// The epoch tick (the resolution of the call deadline).
    pub fn tick(&self) -> Duration {
        self.tick
    }

    fn prepare(&self, path: &Path, bytes: &[u8]) -> Result<EtmemEnginePre<StoreState>, LoadError> {
        let shown = path.display().to_string();
        let incompatible = |reason: String| LoadError::Incompatible {
            path: shown.clone(),
            reason,
        };
        if bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0] {
            return Err(incompatible(
                "a core wasm module, not a component (build it with scripts/build-engine)"
                    .to_string(),
            ));
        }
        let component = self
            .cache
            .get_or_compile(&self.engine, bytes)
            .map_err(|e| incompatible(format!("not a usable wasm component: {e}")))?;
        let ty = component.component_type();
        for (name, _) in ty.imports(&self.engine) {
            if !import_granted(name) {
                return Err(incompatible(format!(
                    "imports `{name}`, which etmem does not grant (an engine may import \
                     `etmem:engine/host@0.2.0` and the WASI 0.2 interfaces of wasi:cli, \
                     wasi:clocks, wasi:filesystem, wasi:io, wasi:random, wasi:sockets)"
                )));
            }
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| incompatible(format!("does not match wit/engine.wit: {e:#}")))?;
        EtmemEnginePre::new(pre).map_err(|e| {
            incompatible(format!(
                "does not export `etmem:engine/engine@0.2.0` as wit/engine.wit says: {e:#}"
            ))
        })
    }
}

impl EngineLoader for WasmLoader {
    fn extension(&self) -> &'static str {
        "wasm"
    }

    fn load(
        &self,
        path: &Path,
        ops_name: &str,
        engine_name: &str,
        params: &Params,
        host: &HostRef,
    ) -> Result<Box<dyn EngineInstance>, LoadError> {
        let shown = path.display().to_string();
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if ops_name != stem {
            return Err(LoadError::NoSuchEngine {
                path: shown,
                ops_name: ops_name.to_string(),
                hint: format!(
                    " (a wasm component exports one engine, named after its file: `{stem}`)"
                ),
            });
        }
        let bytes = std::fs::read(path).map_err(|e| LoadError::File {
            path: shown.clone(),
            reason: format!("cannot read: {e}"),
        })?;
        let pre = self.prepare(path, &bytes)?;

        let configure_err = |error| LoadError::Configure {
            engine: engine_name.to_string(),
            error,
        };
        let mut state = Store::new(
            &self.engine,
            StoreState {
                host: None,
                memory_limit: self.options.memory_limit,
                memory_used: 0,
                wasi: wasi::nothing_granted(),
                table: wasmtime::component::ResourceTable::new(),
            },
        );
        state.limiter(|s| s);
        state.set_epoch_deadline(self.ticks_per_call);
        let mut instance = WasmInstance {
            name: engine_name.to_string(),
            bindings: None,
            store: state,
            failed: None,
            deadline: self.options.call_deadline,
            memory_limit: self.options.memory_limit,
            ticks_per_call: self.ticks_per_call,
            _ticker: Arc::clone(&self.ticker),
        };
        let bindings = instance
            .guard(Some(host), |store| pre.instantiate(store).map(Ok))
            .map_err(configure_err)?;
        instance.bindings = Some(bindings);
        let pairs: Vec<(String, String)> = params.pairs().to_vec();
        instance
            .call(Some(host), |b, store| {
                b.etmem_engine_engine().call_configure(store, &pairs)
            })
            .map_err(configure_err)?;
        Ok(Box::new(instance))
    }
}

/// One component instance serving one `[engine]`.
struct WasmInstance {
    name: String,
    bindings: Option<bindings::EtmemEngine>,
    store: Store<StoreState>,
    /// the first fault; every later call is refused with it
    failed: Option<String>,
    deadline: Duration,
    memory_limit: u64,
    ticks_per_call: u64,
    /// keeps the epoch ticking while this instance lives
    _ticker: Arc<Ticker>,
}

impl fmt::Debug for WasmInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmInstance")
            .field("name", &self.name)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl WasmInstance {
    /// Runs `f` with `host` in the store and a fresh deadline; a wasmtime error becomes a
    /// fault that poisons the instance, an `engine-error` stays a value.
    fn guard<R>(
        &mut self,
        host: Option<&HostRef>,
        f: impl FnOnce(&mut Store<StoreState>) -> wasmtime::Result<Result<R, wit::EngineError>>,
    ) -> Result<R, CallError> {
        if let Some(reason) = &self.failed {
            return Err(CallError::Fault(format!("engine already failed: {reason}")));
        }
        self.store.data_mut().host = host.cloned();
        self.store.set_epoch_deadline(self.ticks_per_call);
        let result = f(&mut self.store);
        self.store.data_mut().host = None;
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(CallError::Engine(SdkEngineError::from(e))),
            Err(e) => {
                let reason = self.fault_text(&e);
                tracing::error!(
                    target: "etmem::wasm",
                    "engine `{}`: {reason}; the engine is marked failed",
                    self.name
                );
                self.failed = Some(reason.clone());
                Err(CallError::Fault(reason))
            }
        }
    }

    fn call<R>(
        &mut self,
        host: Option<&HostRef>,
        f: impl FnOnce(
            &bindings::EtmemEngine,
            &mut Store<StoreState>,
        ) -> wasmtime::Result<Result<R, wit::EngineError>>,
    ) -> Result<R, CallError> {
        let Some(b) = self.bindings.take() else {
            return Err(CallError::Fault(
                "engine was never instantiated".to_string(),
            ));
        };
        let r = self.guard(host, |store| f(&b, store));
        self.bindings = Some(b);
        r
    }

    /// Refuses, as an error value (the engine is not at fault), scans that cannot fit in
    /// the engine's linear memory: each run takes [`GUEST_BYTES_PER_RUN`] there during
    /// `plan`. A scan under the limit may still not fit beside what the engine keeps; then
    /// its growth traps (a fault).
    fn check_fits(&self, task: &str, scans: &[ScanResult]) -> Result<(), CallError> {
        let runs: u64 = scans.iter().map(|s| s.runs().len() as u64).sum();
        let need = runs.saturating_mul(GUEST_BYTES_PER_RUN);
        if need <= self.memory_limit {
            return Ok(());
        }
        let pages: u64 = scans.iter().map(|s| s.len() as u64).sum();
        let hint = if need > WASM32_MEMORY {
            "that is more than wasm32's 4 GiB of linear memory: use the engine's native \
             .so form for a target this large"
                .to_string()
        } else {
            format!(
                "{MEMORY_ENV} (MiB, at most {}) raises the limit, or use the engine's \
                 native .so form",
                WASM32_MEMORY >> 20
            )
        };
        Err(CallError::Engine(SdkEngineError::Host(format!(
            "task `{task}`: its scan is {runs} runs of equal pages ({pages} pages); wasm \
             engine `{}` would need about {} MiB of linear memory for them, over its limit \
             of {}, which holds about {} runs; {hint}",
            self.name,
            need.div_ceil(1 << 20),
            mib(self.memory_limit),
            self.memory_limit / GUEST_BYTES_PER_RUN
        ))))
    }

    fn fault_text(&self, e: &wasmtime::Error) -> String {
        if e.downcast_ref::<MemoryLimitReached>().is_some() {
            return format!("memory limit of {} exceeded", mib(self.memory_limit));
        }
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => {
                format!("deadline of {} exceeded", secs(self.deadline))
            }
            // wasmtime's text of a trap already starts with "wasm trap: " in most cases.
            Some(trap) => {
                let text = trap.to_string();
                if text.starts_with("wasm trap: ") {
                    text
                } else {
                    format!("wasm trap: {text}")
                }
            }
            None => format!("wasm fault: {e:#}"),
        }
    }
}

fn mib(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

fn secs(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

impl EngineInstance for WasmInstance {
    fn new_task(
        &mut self,
        task: &SdkTaskInfo,
        params: &Params,
        host: &HostRef,
    ) -> Result<(), CallError> {
        let info = wit::TaskInfo {
            project: task.project.clone(),
            name: task.name.clone(),
            target_type: task.target_type.clone(),
            target_value: task.target_value.clone(),
        };
        let pairs: Vec<(String, String)> = params.pairs().to_vec();
        self.call(Some(host), |b, s| {
            b.etmem_engine_engine().call_new_task(s, &info, &pairs)
        })
    }

    fn plan(
        &mut self,
        task: &str,
        round: &Round,
        scans: &[ScanResult],
        host: &HostRef,
    ) -> Result<Vec<Action>, CallError> {
        let round = wit::RoundInfo {
            number: round.number,
            passes: round.passes,
        };
        self.check_fits(task, scans)?;
        let scans: Vec<wit::ScanResult> = scans.iter().map(convert::scan_to).collect();
        let actions = self.call(Some(host), |b, s| {
            b.etmem_engine_engine().call_plan(s, task, round, &scans)
        })?;
        Ok(actions.into_iter().map(convert::action_from).collect())
    }

    fn stop_task(&mut self, task: &str, host: &HostRef) -> Result<(), CallError> {
        self.call(Some(host), |b, s| {
            b.etmem_engine_engine().call_stop_task(s, task).map(Ok)
        })
    }

    fn drop_task(&mut self, task: &str) -> Result<(), CallError> {
        self.call(None, |b, s| {
            b.etmem_engine_engine().call_drop_task(s, task).map(Ok)
        })
    }

    fn command(
        &mut self,
        cmd: &str,
        task: Option<&str>,
        host: &HostRef,
    ) -> Result<String, CallError> {
        self.call(Some(host), |b, s| {
            b.etmem_engine_engine().call_command(s, cmd, task)
        })
    }
}

/// Advances an engine's epoch every `tick` until the last holder is dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: wasmtime::Engine, tick: Duration) -> Result<Arc<Ticker>, WasmSetupError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("etmem-wasm-epoch".to_string())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| WasmSetupError::Ticker(e.to_string()))?;
        Ok(Arc::new(Ticker {
            stop,
            thread: Some(thread),
        }))
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}
