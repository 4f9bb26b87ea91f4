//! Shared by the tests and the bench: builds engine crates from source with
//! `scripts/build-engine` (once per process, into a temporary directory; the cargo target
//! directory is kept under target/tmp so rebuilds are quick), the abi_stable host of the
//! native form (`etmem_sdk::testing::native::NativeHost`), and a recorded scan.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

const COMPONENT_LD: &str = "/usr/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld";

fn toolchain_present() -> bool {
    let rustup_wasip2 = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l == "wasm32-wasip2")
        })
        .unwrap_or(false);
    rustup_wasip2 || (Path::new(COMPONENT_LD).exists() && Path::new("/usr/bin/rustc").exists())
}

/// Builds the engine crate at `crate_dir` (relative to the repository root) in `forms`
/// (`wasm`, `native` or `both`) and returns the output directory holding `<name>.wasm`
/// and/or `lib<name>.so`. Panics with the build log on failure, and with setup advice when
/// the wasm toolchain is missing.
pub fn build_engine(crate_dir: &str, forms: &str) -> PathBuf {
    build_engine_for(crate_dir, forms, None)
}

/// [`build_engine`] with the wasm target forced (`BUILD_ENGINE_WASM_TARGET`), e.g.
/// `wasm32-wasip2` to get a component that imports WASI.
pub fn build_engine_for(crate_dir: &str, forms: &str, wasm_target: Option<&str>) -> PathBuf {
    static OUT: OnceLock<tempfile::TempDir> = OnceLock::new();
    static BUILT: OnceLock<Mutex<HashMap<(String, String), PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(HashMap::new()));
    let mut built = built
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let forms_key = match wasm_target {
        Some(t) => format!("{forms}-{t}"),
        None => forms.to_string(),
    };
    let key = (crate_dir.to_string(), forms_key.clone());
    if let Some(p) = built.get(&key) {
        return p.clone();
    }
    if forms != "native" {
        assert!(
            toolchain_present(),
            "the wasm engine toolchain is missing: run `scripts/build-engine sdk/examples/idle-swap \
             /tmp/engines` once as root (it installs Debian's rustc-web, rust-web-src, \
             rust-web-llvm, lld-22, wasi-libc; see sdk/README.md), or `rustup target add \
             wasm32-wasip2`"
        );
    }
    let out_root = OUT.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("etmem-engines-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("engine output dir")
    });
    let out = out_root
        .path()
        .join(format!("{}-{forms_key}", crate_dir.replace('/', "_")));
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("engines-target");
    let mut cmd = Command::new(repo().join("scripts/build-engine"));
    if let Some(t) = wasm_target {
        cmd.env("BUILD_ENGINE_WASM_TARGET", t);
    }
    let o = cmd
        .arg(repo().join(crate_dir))
        .arg(&out)
        .env("ENGINE_TARGET_DIR", &target)
        .env("BUILD_ENGINE_FORMS", forms)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("run scripts/build-engine");
    assert!(
        o.status.success(),
        "scripts/build-engine {crate_dir} failed ({}):\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    built.insert(key, out.clone());
    out
}

/// The abi_stable host of the native form, over any SDK host (kept here under the name
/// the tests and the bench use; not every test binary uses it).
#[allow(unused_imports)]
pub use etmem_sdk::testing::native::NativeHost;

/// A deterministic "recorded" scan: `pages` 4 KiB pages of `pid` from 0x7f00_0000_0000,
/// about a third of the gaps skip a page (absent); the layout depends on `pid` only, the
/// counts (biased to idle) on `pid` and `round`.
pub fn recorded_scan(pid: u32, pages: usize, round: u64) -> etmem_sdk::ScanResult {
    fn next(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }
    let mut layout: u64 = 0x9e37_79b9_7f4a_7c15 ^ (u64::from(pid) << 32);
    let mut heat: u64 = layout ^ round.wrapping_mul(0x2545_f491_4f6c_dd1d);
    let mut addrs = Vec::with_capacity(pages);
    let mut counts = Vec::with_capacity(pages);
    let mut addr: u64 = 0x7f00_0000_0000;
    while addrs.len() < pages {
        addr += if next(&mut layout).is_multiple_of(3) {
            0x2000
        } else {
            0x1000
        };
        addrs.push(addr);
        counts.push(match next(&mut heat) % 8 {
            0..=4 => 0,
            5 => 1,
            6 => 2,
            _ => 3,
        });
    }
    let sizes = vec![etmem_sdk::PageSize::Size4K; pages];
    etmem_sdk::ScanResult::new(pid, 1, addrs, counts, sizes).expect("valid recorded scan")
}
