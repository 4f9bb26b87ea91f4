//! Loading a native engine library: opens a `.so`, checks its abi_stable root module,
//! matches the engine's exported name against `ops_name` and configures it into a
//! [`NativeEngine`].
//!
//! A file that is not ours (not an engine, another SDK, another abi_stable, missing) gives
//! a one-line [`LoadError::Incompatible`], never a panic; abi_stable's full report goes to
//! the debug log. It must never load a library through `RootModule::load_from_file`, which
//! keeps the first library for the whole process and ignores a second path.

use super::bridge::HostBridge;
use super::{NativeEngine, call_error};
use crate::plugin::{EngineInstance, EngineLoader, HostRef, LoadError, Params};
use abi_stable::library::{LibraryError, lib_header_from_path};
use abi_stable::std_types::RResult;
use etmem_sdk::native::{EngineModRef, params_to};
use std::path::Path;

/// Loads native engine libraries (`.so`).
#[derive(Debug, Default, Clone, Copy)]
pub struct NativeLoader;

impl NativeLoader {
    /// A loader.
    pub fn new() -> NativeLoader {
        NativeLoader
    }
}

impl EngineLoader for NativeLoader {
    fn extension(&self) -> &'static str {
        "so"
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
        let incompatible = |e: LibraryError| {
            tracing::debug!("engine library `{shown}`: abi_stable says: {e}");
            LoadError::Incompatible {
                path: shown.clone(),
                reason: summarise(&e),
            }
        };
        let header = lib_header_from_path(path).map_err(incompatible)?;
        let module = header
            .init_root_module::<EngineModRef>()
            .map_err(incompatible)?;

        let exported = exported_name(module, path);
        if exported != ops_name {
            return Err(LoadError::NoSuchEngine {
                path: shown,
                ops_name: ops_name.to_string(),
                hint: format!(" (it exports `{exported}`)"),
            });
        }

        let bridge = HostBridge(host.as_ref());
        let rparams = params_to(params);
        let engine = match (module.configure())(rparams.as_rslice(), bridge.rhost()) {
            RResult::ROk(e) => e,
            RResult::RErr(e) => {
                return Err(LoadError::Configure {
                    engine: engine_name.to_string(),
                    error: call_error(e),
                });
            }
        };
        Ok(Box::new(NativeEngine {
            module,
            engine,
            label: format!("{exported} from {shown}"),
            failed: None,
        }))
    }
}

/// The name a library exports its engine under: the root module's own, else the file stem
/// without `lib` (libraries built before the SDK recorded names).
fn exported_name(module: EngineModRef, path: &Path) -> String {
    match module.name() {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            stem.strip_prefix("lib").unwrap_or(stem).to_string()
        }
    }
}

/// One line saying why a library is not a loadable engine.
fn summarise(e: &LibraryError) -> String {
    match e {
        LibraryError::OpenError { err, .. } => {
            format!("cannot be loaded: {}", first_line(&err.to_string()))
        }
        LibraryError::GetSymbolError { .. } => "not an etmem engine: it exports no abi_stable \
             root module (engines are built with etmem_sdk::export_engine!)"
            .to_string(),
        LibraryError::ParseVersionError(v) => format!(
            "not an etmem engine: unreadable version: {}",
            first_line(&v.to_string())
        ),
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => format!(
            "built with etmem-sdk {actual_version}, this daemon needs an engine built with \
             etmem-sdk {expected_version} or a compatible later version: rebuild the engine"
        ),
        LibraryError::RootModule { err, .. } => format!(
            "its root module failed to initialise: {}",
            first_line(&err.to_string())
        ),
        LibraryError::AbiInstability(err) => format!(
            "incompatible root module layout: {}; it was not built with this daemon's \
             etmem-sdk: rebuild the engine",
            layout_summary(&err.to_string())
        ),
        LibraryError::InvalidAbiHeader(_) => {
            "built with an incompatible abi_stable version: rebuild the engine".to_string()
        }
        LibraryError::InvalidCAbi { .. } => {
            "its C ABI differs from this daemon's (another compiler target?)".to_string()
        }
        LibraryError::Many(list) => match list.first() {
            Some(first) => summarise(first),
            None => "unknown abi_stable error".to_string(),
        },
    }
}

/// The gist of abi_stable's layout report (~160 lines): its last `Error:` line with the
/// expected and found types after it, e.g. `mismatched type (expected EngineMod, found
/// OtherMod)`.
fn layout_summary(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let Some(i) = lines.iter().rposition(|l| l.starts_with("Error:")) else {
        return first_line(text);
    };
    let error = lines[i].trim_start_matches("Error:").trim();
    let value_after = |label: &str| {
        lines[i..]
            .iter()
            .position(|l| *l == label)
            .and_then(|j| lines.get(i + j + 1))
            .filter(|l| !l.is_empty())
            .copied()
    };
    let gist = match (value_after("Expected:"), value_after("Found:")) {
        (Some(e), Some(f)) => format!("{error} (expected {e}, found {f})"),
        _ => error.to_string(),
    };
    first_line(&gist)
}

/// The first line that says something (abi_stable's texts start with blank lines and
/// banners), at most 200 characters.
fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.chars().all(|c| "-=*".contains(c)))
        .unwrap_or("");
    let mut out: String = line.chars().take(200).collect();
    if out.len() < line.len() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_summary_takes_the_last_error_with_its_types() {
        let report = "\nCompared <this>:\n  --- Type Layout ---\n  type:A\n0 error(s).\n\
                      Error:mismatched field\nExpected:\n    a\nFound:\n    b\n\n\
                      Error:mismatched type\nExpected:\n    EngineMod\nFound:\n    Other\n";
        assert_eq!(
            layout_summary(report),
            "mismatched type (expected EngineMod, found Other)"
        );
        assert_eq!(layout_summary("\n\nsomething else\n"), "something else");
    }

    #[test]
    fn first_line_skips_blank_lines_and_caps_length() {
        assert_eq!(
            first_line("\n\n  --- \n  real reason  \nmore"),
            "real reason"
        );
        let long = "x".repeat(300);
        assert_eq!(first_line(&long), format!("{}...", "x".repeat(200)));
        assert_eq!(first_line("\n\n"), "");
    }
}
