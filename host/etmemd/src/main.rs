//! `etmemd`: parse the command line (C's rules), set up logging, fork for systemd if `-m`,
//! bind the abstract socket and serve the daemon core until SIGINT or SIGTERM.
//!
//! Thin wiring only: everything testable lives in the `etmemd` library and in `etmem-host`.

use etmemd::cli::{self, Options, Outcome};
use etmemd::server::{self, ServerConfig};
use etmemd::{logging, systemd};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// How long the daemon core may take to stop every task after a signal.
const CORE_SHUTDOWN_LIMIT: Duration = Duration::from_millis(500);

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // `etmemd --version` (our addition, sole argument, like `--probe` below)
    if argv.len() == 2 && argv[1] == cli::VERSION_ARG {
        print!("{}", cli::version_text());
        return ExitCode::SUCCESS;
    }
    // `etmemd --probe` (our addition, outside C's option set so C's parsing and usage text
    // stay byte-identical): what this kernel offers for tracking and moving memory.
    if argv.len() == 2 && argv[1] == cli::PROBE_ARG {
        print!(
            "{}",
            etmem_kernel::probe(&etmem_kernel::LinuxKernel::default())
        );
        return ExitCode::SUCCESS;
    }
    etmem_host::alloc::configure();
    let parse = cli::parse_args(&argv);
    let systemd_mode = matches!(&parse.outcome, Outcome::Run(o) if o.systemd);
    logging::init(parse.log_level, !systemd_mode);
    for message in &parse.log {
        tracing::error!("{message}");
    }
    print!("{}", parse.stdout);
    let _ = std::io::stdout().flush();
    let opts = match parse.outcome {
        Outcome::Run(opts) => opts,
        Outcome::Help => return ExitCode::SUCCESS,
        Outcome::Fail => return ExitCode::from(255),
    };

    // Fork before any thread exists (the runtime starts below).
    let notifier = if opts.systemd {
        match systemd::fork_for_systemd(&systemd::pid_file()) {
            Ok(systemd::Role::Parent { exit_status }) => return ExitCode::from(exit_status),
            Ok(systemd::Role::Child(notifier)) => Some(notifier),
            Err(e) => {
                println!("fail to start rpc server of etmemd");
                println!("{e}");
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(etmem_host::runtime::max_blocking_threads())
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            println!("fail to start rpc server of etmemd");
            println!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(opts, notifier));
    runtime.shutdown_timeout(Duration::from_millis(100));
    code
}

async fn run(opts: Options, notifier: Option<systemd::ReadyNotifier>) -> ExitCode {
    // Signal handlers first, so a SIGTERM right after the socket appears is handled.
    let signals = signal(SignalKind::interrupt())
        .and_then(|int| signal(SignalKind::terminate()).map(|term| (int, term)));
    let (mut sigint, mut sigterm) = match signals {
        Ok(s) => s,
        Err(e) => {
            println!("fail to start rpc server of etmemd");
            println!("cannot install the SIGINT/SIGTERM handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match server::bind(&opts.socket)
        .map_err(|e| e.to_string())
        .and_then(|l| tokio::net::UnixListener::from_std(l).map_err(|e| e.to_string()))
    {
        Ok(l) => l,
        Err(reason) => {
            tracing::error!("{reason}");
            println!("fail to start rpc server of etmemd");
            println!("{reason}");
            let _ = std::io::stdout().flush();
            return ExitCode::FAILURE;
        }
    };
    tracing::info!("etmemd listens on @{}", opts.socket);
    if let Some(notifier) = notifier
        && let Err(e) = notifier.ready()
    {
        tracing::error!("cannot tell the systemd start-up parent that etmemd listens: {e}");
    }

    let kernel = Arc::new(etmem_kernel::LinuxKernel::default());
    let daemon = etmem_host::Daemon::start(kernel.clone(), engine_registry());
    match etmemd::metrics::MetricsConfig::from_env() {
        Ok(Some(config)) => {
            tracing::info!(
                "writing metrics to {} every {:?}",
                config.path.display(),
                config.interval
            );
            tokio::spawn(etmemd::metrics::export(daemon.clone(), config));
        }
        Ok(None) => {}
        // a bad setting of an optional export: said at error, and etmemd serves without it
        Err(e) => tracing::error!("{e}; no metrics file is written"),
    }
    let shutdown = async {
        let signo = tokio::select! {
            _ = sigint.recv() => libc::SIGINT,
            _ = sigterm.recv() => libc::SIGTERM,
        };
        // C logs this at error; a requested stop is not one (info, with what happens next)
        let name = if signo == libc::SIGTERM {
            "SIGTERM"
        } else {
            "SIGINT"
        };
        tracing::info!("caught signal {signo} ({name}): stopping every project, then exiting");
    };
    server::serve(
        listener,
        Arc::new(daemon.clone()),
        ServerConfig::default(),
        shutdown,
    )
    .await;
    if tokio::time::timeout(CORE_SHUTDOWN_LIMIT, daemon.shutdown())
        .await
        .is_err()
    {
        tracing::error!(
            "tasks did not stop within {CORE_SHUTDOWN_LIMIT:?}; exiting without waiting for them"
        );
    }
    // A scan pass still running on a blocking thread would keep its tracker (and a DAMON
    // kdamond of ours) past our exit: release them here, whatever is still running.
    for (dir, e) in kernel.release_trackers() {
        tracing::error!("cannot remove our kdamond {}: {e}", dir.display());
    }
    tracing::info!("close rpc done");
    ExitCode::SUCCESS
}

/// The engines this etmemd knows: the first-party `slide`, `cslide` and `psi` compiled in, and the
/// loaders of third-party engine files. `ETMEMD_FETCH_DIR` overrides the directory where a
/// relative `libname` is looked up (default `/usr/lib/etmem_fetch`), for tests and staging.
fn engine_registry() -> etmem_host::EngineRegistry {
    use etmem_host::engine::Scheduling;
    let mut registry = etmem_host::EngineRegistry::builtin();
    registry.register_builtin::<etmem_plugin_slide::Slide>("slide", Scheduling::PerTask);
    registry.register_builtin::<etmem_plugin_cslide::Cslide>("cslide", Scheduling::PerEngine);
    registry.register_builtin::<etmem_plugin_memdcd::Memdcd>("memdcd", Scheduling::PerTask);
    registry.register_builtin::<etmem_plugin_damon::Damon>("damon", Scheduling::Region);
    registry.register_builtin::<etmem_plugin_psi::Psi>("psi", Scheduling::Cgroup);
    registry.add_loader(std::sync::Arc::new(
        etmem_host::plugin::native::NativeLoader::new(),
    ));
    #[cfg(feature = "wasm")]
    add_wasm_loader(&mut registry);
    if let Some(dir) = std::env::var_os("ETMEMD_FETCH_DIR") {
        registry.set_fetch_dir(dir);
    }
    registry
}

/// WebAssembly engines (feature `wasm`, on by default): compiled components are cached in
/// `/var/cache/etmem/wasm` (created 0700; `ETMEMD_WASM_CACHE` overrides it) so a restart
/// does not recompile them. Without a usable cache directory they are compiled at every
/// load, which is slower but correct. Each instance's linear memory is capped at 512 MiB,
/// or `ETMEMD_WASM_MEMORY_MB` (1 to 4096); a bad value is logged and the default kept.
#[cfg(feature = "wasm")]
fn add_wasm_loader(registry: &mut etmem_host::EngineRegistry) {
    use etmem_host_wasm::{MEMORY_ENV, WASM32_MEMORY, WasmLoader, WasmOptions};
    let cache_dir = std::env::var_os("ETMEMD_WASM_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/var/cache/etmem/wasm".into());
    let mut base = WasmOptions::default();
    if let Some(v) = std::env::var_os(MEMORY_ENV) {
        let text = v.to_string_lossy();
        match text.trim().parse::<u64>() {
            Ok(mb) if (1..=WASM32_MEMORY >> 20).contains(&mb) => base.memory_limit = mb << 20,
            _ => tracing::error!(
                "{MEMORY_ENV}={text:?}: expected MiB from 1 to {}; wasm engines keep the \
                 default limit of {} MiB",
                WASM32_MEMORY >> 20,
                base.memory_limit >> 20
            ),
        }
    }
    let loader = WasmLoader::new(WasmOptions {
        cache_dir: Some(cache_dir.clone()),
        ..base.clone()
    })
    .or_else(|e| {
        tracing::warn!(
            "wasm compile cache {}: {e}; wasm engines will be compiled at every load",
            cache_dir.display()
        );
        WasmLoader::new(base)
    });
    match loader {
        Ok(loader) => registry.add_loader(std::sync::Arc::new(loader)),
        Err(e) => tracing::error!("wasm engines are unavailable: {e}"),
    }
}
