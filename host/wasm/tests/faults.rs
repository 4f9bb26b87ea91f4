//! Issue 12, through the plug-in boundary: slide and cslide loaded as third-party engines
//! (`[engine] name=thirdparty`), once as native `.so` files (abi_stable, etmem-host's
//! `NativeLoader`) and once as `.wasm` components (this crate's `WasmLoader`), run over a
//! kernel that fails at random while the maps change, a child ends and restarts and the
//! cslide target's pid is recycled. Every kernel fault a capability hits now crosses the
//! boundary (the WIT host calls, the abi_stable bridge) before an engine sees it.
//!
//! The scenario and its assertions are etmem-host's (`host/core/tests/common/faults.rs`,
//! included below with the daemon test kit it is written against): no panic, the daemon
//! still answers and stops its projects, no page action on a process other than its
//! handle's or outside its VMAs, every injected fault logged exactly once, rounds kept
//! acting. 600 steps per form by default (1,200 s of the paused clock);
//! `ETMEM_FAULT_STEPS`, `ETMEM_FAULT_SEED`, `ETMEM_FAULT_RATE` and `ETMEM_FAULT_LOG=1` as
//! there. Run in release, as CI does: wasmtime compiles components ~25x slower in debug.
//!
//! The engines are built from source with `scripts/build-engine` (as users build them),
//! then installed root:root in a directory of the test's (the loaders' file rules).

#[path = "../../core/tests/common/mod.rs"]
mod daemon_kit;

mod common;

use daemon_kit::faults;
use etmem_host::EngineRegistry;
use etmem_host::plugin::native::NativeLoader;
use etmem_host_wasm::{WasmLoader, WasmOptions};
use sha2::Digest;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Steps per form unless `ETMEM_FAULT_STEPS` says otherwise.
const STEPS: u32 = 600;

/// Copies `file` into `dir` with `mode` (the loaders refuse files others may write; a
/// `.so` must be 0500 or 0700), keeping its name.
fn install(file: &Path, dir: &Path, mode: u32) -> PathBuf {
    let to = dir.join(file.file_name().expect("a file name"));
    std::fs::copy(file, &to).unwrap_or_else(|e| panic!("copy {}: {e}", file.display()));
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)).expect("chmod");
    to
}

/// The scenario with slide and cslide from the files of extension `ext` (`so` or `wasm`)
/// that `scripts/build-engine` makes, loaded by `registry`'s loader for it.
fn run_thirdparty(form: &str, registry: EngineRegistry) {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = |crate_dir: &str, lib: &str| {
        let (file, mode) = match form {
            "so" => (format!("lib{lib}.so"), 0o500),
            _ => (format!("{lib}.wasm"), 0o400),
        };
        let built = common::build_engine(crate_dir, form_of(form)).join(file);
        (install(&built, dir.path(), mode), lib.to_string())
    };
    let slide = engine("plugins/slide", "etmem_plugin_slide");
    let cslide = engine("plugins/cslide", "etmem_plugin_cslide");
    let conf = faults::thirdparty_config((&slide.0, &slide.1), (&cslide.0, &cslide.1));
    let out = faults::run(&format!("thirdparty .{form}"), registry, &conf, STEPS);
    // each load is logged at info with the file, its form and its content hash
    for (path, lib) in [&slide, &cslide] {
        let bytes = std::fs::read(path).expect("engine file");
        let hash: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let want = format!(
            "loaded {} (.{form}, ops `{lib}`, sha256 {hash})",
            path.display()
        );
        assert!(
            out.log
                .lines()
                .any(|l| l.contains(" INFO ") && l.contains(&want)),
            "no info line with {want:?}"
        );
    }
}

/// The `BUILD_ENGINE_FORMS` of a file extension.
fn form_of(ext: &str) -> &'static str {
    match ext {
        "so" => "native",
        _ => "wasm",
    }
}

#[test]
fn slide_and_cslide_as_so_survive_a_kernel_that_fails_at_random() {
    let mut registry = EngineRegistry::builtin();
    registry.add_loader(Arc::new(NativeLoader::new()));
    run_thirdparty("so", registry);
}

#[test]
fn slide_and_cslide_as_wasm_survive_a_kernel_that_fails_at_random() {
    let mut registry = EngineRegistry::builtin();
    registry.add_loader(Arc::new(
        WasmLoader::new(WasmOptions::default()).expect("wasm loader"),
    ));
    run_thirdparty("wasm", registry);
}
