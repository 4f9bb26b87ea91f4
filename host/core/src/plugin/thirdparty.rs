//! Third-party engine files (`[engine] name=thirdparty libname=...`): where the file is and
//! whether the daemon may load it. Loading itself is the loaders' job (native `.so`, wasm).
//!
//! Rules, checked in this order (spec §4.6 and §5.4, plus the wasm rule of etmem-rs):
//! 1. a relative `libname` is taken inside the fetch directory (default
//!    [`DEFAULT_FETCH_DIR`]); the path is then resolved with realpath;
//! 2. it must be a regular file;
//! 3. its name must end in `.so` (native engine) or `.wasm` (WebAssembly component);
//! 4. it must be owned by root:root;
//! 5. a `.so` must have mode exactly 0500 or 0700 (C's rule); a `.wasm` must not be
//!    writable by group or others.
//!
//! This module reads file metadata only; it must not open or load the file.

use super::LoadError;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where relative `libname`s are looked up unless the daemon is told otherwise.
pub const DEFAULT_FETCH_DIR: &str = "/usr/lib/etmem_fetch";

/// The kinds of engine files, by name ending.
pub const ENGINE_EXTENSIONS: &[&str] = &["so", "wasm"];

/// Resolves `libname` (relative ones inside `fetch_dir`) and checks the file rules of the
/// module docs. Returns the real path and its extension (`so` or `wasm`).
pub fn check_library(
    libname: &str,
    fetch_dir: &Path,
) -> Result<(PathBuf, &'static str), LoadError> {
    let given = Path::new(libname);
    let joined = if given.is_absolute() {
        given.to_path_buf()
    } else {
        fetch_dir.join(given)
    };
    let shown = joined.display().to_string();
    let real = std::fs::canonicalize(&joined).map_err(|e| LoadError::File {
        path: shown.clone(),
        reason: format!("cannot resolve it: {e}"),
    })?;
    let path = real.display().to_string();
    let meta = std::fs::metadata(&real).map_err(|e| LoadError::File {
        path: path.clone(),
        reason: format!("cannot read its metadata: {e}"),
    })?;
    if !meta.is_file() {
        return Err(LoadError::File {
            path,
            reason: "not a regular file".to_string(),
        });
    }
    let ext = real
        .extension()
        .and_then(|e| e.to_str())
        .and_then(|e| ENGINE_EXTENSIONS.iter().find(|k| **k == e).copied());
    let Some(ext) = ext else {
        return Err(LoadError::Unsupported {
            path,
            reason: "not an engine file: engines end in `.so` (native) or `.wasm` \
                     (WebAssembly component)"
                .to_string(),
        });
    };
    if meta.uid() != 0 || meta.gid() != 0 {
        return Err(LoadError::Permissions {
            path,
            reason: format!(
                "owned by {}:{}, must be owned by root:root",
                meta.uid(),
                meta.gid()
            ),
        });
    }
    let mode = meta.mode() & 0o7777;
    match ext {
        "so" if mode != 0o500 && mode != 0o700 => Err(LoadError::Permissions {
            path,
            reason: format!("mode {mode:04o}, a native engine must have mode 0500 or 0700"),
        }),
        "wasm" if mode & 0o022 != 0 => Err(LoadError::Permissions {
            path,
            reason: format!(
                "mode {mode:04o}, a wasm engine must not be writable by group or others"
            ),
        }),
        _ => Ok((real, ext)),
    }
}
