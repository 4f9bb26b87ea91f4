//! Helpers for the end-to-end tests: find (building if needed) the `etmemd` and `etmem`
//! binaries of this workspace, run a daemon on a unique abstract socket, run the client,
//! write config files with the modes the daemon demands, build engine crates from source
//! (native `.so` and wasm components).
//!
//! Test support only: it must not be used by the daemon or the client. Helpers panic on
//! setup failures (they are test code).

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The cargo target dir and profile dir this test binary was built in
/// (`<target>/<profile>/deps/<test>`).
fn target_and_profile() -> (PathBuf, PathBuf) {
    let exe = std::env::current_exe().expect("test binary path");
    let profile = exe.ancestors().nth(2).expect("profile dir").to_path_buf();
    let target = profile.parent().expect("target dir").to_path_buf();
    (target, profile)
}

/// The directory holding `etmemd`, `etmem` and `etmem-gen-docs` (which scripts/install
/// runs for the completions and man pages), built once per test process with
/// `cargo build -p etmemd -p etmem -p etmem-clidoc` into this test's own target dir and
/// profile (a no-op when they are fresh).
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let (target, profile) = target_and_profile();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "-q",
            "-p",
            "etmemd",
            "-p",
            "etmem",
            "-p",
            "etmem-clidoc",
        ])
        .current_dir(workspace())
        .env("CARGO_TARGET_DIR", &target);
        if profile.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("run cargo build");
        assert!(
            st.success(),
            "cargo build -p etmemd -p etmem -p etmem-clidoc failed"
        );
        for b in ["etmemd", "etmem", "etmem-gen-docs"] {
            assert!(
                profile.join(b).exists(),
                "{b} not built in {}",
                profile.display()
            );
        }
        profile
    })
}

/// Builds an engine crate (a path relative to the workspace) with `scripts/build-engine`
/// (native form) once per process; engines share `<target>/engine-fixtures`. Returns the
/// `.so` cargo made (copy it before loading: the daemon checks owner and mode).
pub fn native_engine(crate_dir: &str) -> PathBuf {
    build_engine_once(crate_dir, "native", "so")
}

/// Builds an engine crate (a path relative to the workspace) as a wasm component with
/// `scripts/build-engine` once per process (`BUILD_ENGINE_FORMS=wasm`; engines share
/// `<target>/engine-fixtures`). Returns the `<name>.wasm` it made (copy it with
/// [`install_wasm`] before loading).
pub fn wasm_engine(crate_dir: &str) -> PathBuf {
    build_engine_once(crate_dir, "wasm", "wasm")
}

/// Builds `crate_dir` in `form` (`BUILD_ENGINE_FORMS`) once per process, each build into
/// a folder of its own: the file ending in `.<ext>` it made. A wasm build runs without the
/// test's RUSTFLAGS (they are meant for the host target).
fn build_engine_once(crate_dir: &str, form: &str, ext: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<(String, String), PathBuf>>> = OnceLock::new();
    static OUT: OnceLock<tempfile::TempDir> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let key = (form.to_string(), crate_dir.to_string());
    if let Some(p) = built.get(&key) {
        return p.clone();
    }
    let (target, _) = target_and_profile();
    let out = OUT
        .get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
        .join(built.len().to_string());
    std::fs::create_dir_all(&out).expect("out dir");
    let mut cmd = Command::new(workspace().join("scripts/build-engine"));
    cmd.arg(workspace().join(crate_dir))
        .arg(&out)
        .env("ENGINE_TARGET_DIR", target.join("engine-fixtures"))
        .env("BUILD_ENGINE_FORMS", form);
    if form == "wasm" {
        cmd.env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
    }
    let o = cmd.output().expect("run scripts/build-engine");
    assert!(
        o.status.success(),
        "scripts/build-engine {crate_dir} ({form}) failed ({}):\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let made = std::fs::read_dir(&out)
        .expect("out dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == ext))
        .unwrap_or_else(|| panic!("a .{ext} from build-engine"));
    built.insert(key, made.clone());
    made
}

/// A socket name no other test uses.
pub fn unique_socket(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "etmem-e2e-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// True when an abstract unix socket `@name` is listening (per `/proc/net/unix`).
pub fn listening(name: &str) -> bool {
    let want = format!("@{name}");
    std::fs::read_to_string("/proc/net/unix")
        .map(|t| {
            t.lines()
                .any(|l| l.split_whitespace().last() == Some(want.as_str()))
        })
        .unwrap_or(false)
}

/// A running `etmemd -l 0 -s <socket>`, killed when dropped.
pub struct Daemon {
    child: Child,
    /// the abstract socket name
    pub socket: String,
    /// the daemon's stderr log
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts a daemon; `env` is added to its environment (e.g. `ETMEMD_FETCH_DIR`).
    pub fn start(tag: &str, env: &[(&str, &Path)]) -> Daemon {
        let socket = unique_socket(tag);
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("etmemd.log");
        let mut cmd = Command::new(bin_dir().join("etmemd"));
        cmd.args(["-l", "0", "-s", &socket])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn etmemd");
        let t0 = Instant::now();
        while !listening(&socket) {
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "etmemd exited with {st} before listening: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "etmemd never listened on @{socket}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Daemon {
            child,
            socket,
            log,
            _dir: dir,
        }
    }

    /// Runs `etmem <args> -s <socket>`.
    pub fn etmem(&self, args: &[&str]) -> Run {
        let out = Command::new(bin_dir().join("etmem"))
            .args(args)
            .args(["-s", &self.socket])
            .stdin(Stdio::null())
            .output()
            .expect("run etmem");
        Run::from(out)
    }

    /// Whether the daemon is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one `etmem` run gave.
#[derive(Debug)]
pub struct Run {
    /// exit code (`None`: killed by a signal)
    pub code: Option<i32>,
    /// stdout
    pub stdout: String,
    /// stderr
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Panics with the whole run unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, Some(code), "{self:#?}");
        self
    }
}

/// A process to point tasks at, killed when dropped.
pub struct Sleeper(Child);

impl Sleeper {
    /// Starts `sleep 1000`.
    pub fn start() -> Sleeper {
        Sleeper(
            Command::new("sleep")
                .arg("1000")
                .spawn()
                .expect("spawn sleep"),
        )
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes `text` to `dir/name` with mode 0600 (we run as root, so it is root:root).
pub fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write config");
    chmod(&p, 0o600)
}

/// Sets the mode of `path` to `mode`: `path`.
fn chmod(path: &Path, mode: u32) -> PathBuf {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path.to_path_buf()
}

/// Copies an engine `.so` into `dir` with mode 0500, as the daemon demands.
pub fn install_engine(so: &Path, dir: &Path) -> PathBuf {
    let dest = dir.join(so.file_name().expect("file name"));
    std::fs::copy(so, &dest).expect("copy engine");
    chmod(&dest, 0o500)
}

/// Copies a wasm component into `dir` as `name` with mode 0444 (a component is read, never
/// mapped executable: read-only for everyone is enough, as long as group and others cannot
/// write it).
pub fn install_wasm(wasm: &Path, dir: &Path, name: &str) -> PathBuf {
    let dest = dir.join(name);
    std::fs::copy(wasm, &dest).expect("copy engine");
    chmod(&dest, 0o444)
}
