//! The compiled-component cache: compile each component once, keyed by the sha256 of its
//! bytes; in memory always, and on disk when a cache directory is configured.
//!
//! A file on disk is native code: loading one is `unsafe`, because wasmtime trusts it. So
//! this module loads only files it wrote itself: the directory must be owned by this user
//! with mode 0700 (created so when missing), a file must be a regular file owned by this user
//! and writable by nobody else, and its name carries the content hash, the wasmtime version
//! and a hash of the engine settings. Any mismatch, or a file wasmtime rejects, means a
//! fresh compile that replaces the file (written to a temporary name, then renamed).
//!
//! It must not load anything it did not write, and it must not decide policy about engines.

use crate::{WASMTIME_VERSION, WasmSetupError};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::component::Component;

/// How components were obtained, since the loader was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// compiled from the component bytes
    pub compiled: u64,
    /// found compiled in memory
    pub memory_hits: u64,
    /// loaded from the disk cache
    pub disk_hits: u64,
    /// disk cache files that were unusable (mismatch, rejected) and were recompiled
    pub disk_rejected: u64,
}

/// In-memory map from content hash to compiled component, over an optional [`DiskCache`].
pub(crate) struct ComponentCache {
    memory: Mutex<HashMap<[u8; 32], Component>>,
    disk: Option<DiskCache>,
    compiled: AtomicU64,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    disk_rejected: AtomicU64,
}

impl ComponentCache {
    pub(crate) fn new(disk: Option<DiskCache>) -> ComponentCache {
        ComponentCache {
            memory: Mutex::new(HashMap::new()),
            disk,
            compiled: AtomicU64::new(0),
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            disk_rejected: AtomicU64::new(0),
        }
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            compiled: self.compiled.load(Ordering::Relaxed),
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            disk_rejected: self.disk_rejected.load(Ordering::Relaxed),
        }
    }

    /// Forgets the in-memory entries (the disk cache stays); for measurements and tests.
    pub(crate) fn clear_memory(&self) {
        self.memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// The compiled form of `bytes`: from memory, from disk, or compiled now. The error is
    /// wasmtime's compile error, as text.
    pub(crate) fn get_or_compile(
        &self,
        engine: &wasmtime::Engine,
        bytes: &[u8],
    ) -> Result<Component, String> {
        let hash: [u8; 32] = Sha256::digest(bytes).into();
        // The map holds plain data; a panic elsewhere cannot leave it inconsistent.
        let memory = || {
            self.memory
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(c) = memory().get(&hash) {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(c.clone());
        }
        if let Some(disk) = &self.disk {
            match disk.load(engine, &hash) {
                DiskLookup::Hit(c) => {
                    self.disk_hits.fetch_add(1, Ordering::Relaxed);
                    memory().insert(hash, c.clone());
                    return Ok(c);
                }
                DiskLookup::Rejected(why) => {
                    self.disk_rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(target: "etmem::wasm", "compiled cache: {why}; recompiling");
                }
                DiskLookup::Miss => {}
            }
        }
        let c = Component::new(engine, bytes).map_err(|e| format!("{e:#}"))?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        if let Some(disk) = &self.disk
            && let Err(why) = disk.store(&hash, &c)
        {
            tracing::warn!(target: "etmem::wasm", "compiled cache: {why}");
        }
        memory().insert(hash, c.clone());
        Ok(c)
    }
}

enum DiskLookup {
    Hit(Component),
    Miss,
    Rejected(String),
}

/// The directory of serialized components this process writes and reads.
pub(crate) struct DiskCache {
    dir: PathBuf,
    /// `<wasmtime version>-<engine settings hash>`, the file name suffix
    flavour: String,
    uid: u32,
}

impl DiskCache {
    /// Opens (creating with mode 0700 when missing) and checks `dir`.
    pub(crate) fn open(dir: &Path, engine: &wasmtime::Engine) -> Result<DiskCache, WasmSetupError> {
        let bad = |reason: String| WasmSetupError::CacheDir {
            path: dir.display().to_string(),
            reason,
        };
        if !dir.is_absolute() {
            return Err(bad("must be an absolute path".to_string()));
        }
        match std::fs::symlink_metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| bad(format!("cannot create: {e}")))?;
            }
            Err(e) => return Err(bad(format!("cannot inspect: {e}"))),
            Ok(_) => {}
        }
        let meta =
            std::fs::symlink_metadata(dir).map_err(|e| bad(format!("cannot inspect: {e}")))?;
        let uid = rustix::process::geteuid().as_raw();
        if !meta.is_dir() {
            return Err(bad("not a directory".to_string()));
        }
        if meta.uid() != uid {
            return Err(bad(format!(
                "owned by uid {}, expected {uid} (this daemon)",
                meta.uid()
            )));
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(bad(format!(
                "mode {mode:04o} lets group or others write: expected 0700"
            )));
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Ok(DiskCache {
            dir: dir.to_path_buf(),
            flavour: format!("wasmtime{WASMTIME_VERSION}-{:016x}", h.finish()),
            uid,
        })
    }

    fn file(&self, hash: &[u8; 32]) -> PathBuf {
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}-{}.cwasm", self.flavour))
    }

    fn load(&self, engine: &wasmtime::Engine, hash: &[u8; 32]) -> DiskLookup {
        let path = self.file(hash);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return DiskLookup::Miss,
            Err(e) => return DiskLookup::Rejected(format!("`{}`: {e}", path.display())),
        };
        if !meta.is_file() || meta.uid() != self.uid || meta.permissions().mode() & 0o022 != 0 {
            return DiskLookup::Rejected(format!(
                "`{}` is not a regular file of uid {} writable only by it",
                path.display(),
                self.uid
            ));
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => return DiskLookup::Rejected(format!("`{}`: {e}", path.display())),
        };
        // SAFETY: `Component::deserialize` trusts its input to be a component serialized by
        // this wasmtime with compatible settings. The file is one this daemon wrote itself
        // (`store`): a regular file, owned by our uid and writable by nobody else, in a
        // directory owned by our uid that group and others cannot write; its name carries the
        // sha256 of the source, the wasmtime version and the engine settings hash. wasmtime
        // checks the version and settings again and errors (we then recompile) on mismatch.
        match unsafe { Component::deserialize(engine, &bytes) } {
            Ok(c) => DiskLookup::Hit(c),
            Err(e) => DiskLookup::Rejected(format!("`{}`: {e:#}", path.display())),
        }
    }

    fn store(&self, hash: &[u8; 32], c: &Component) -> Result<(), String> {
        let path = self.file(hash);
        let bytes = c.serialize().map_err(|e| format!("serializing: {e:#}"))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(&self.dir)
            .map_err(|e| format!("`{}`: {e}", self.dir.display()))?;
        tmp.write_all(&bytes)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| format!("writing `{}`: {e}", tmp.path().display()))?;
        tmp.persist(&path)
            .map_err(|e| format!("`{}`: {}", path.display(), e.error))?;
        Ok(())
    }
}
