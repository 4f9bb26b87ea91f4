//! Shared helpers for the golden tests: run the built `etmem`, load golden texts.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The directory of golden files.
pub fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// A help text, generated from the spec: `usage`, `obj`, `project` or `engine`.
pub fn help(name: &str) -> String {
    let path = golden_dir().join("help").join(format!("{name}.txt"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Replaces each `{{name}}` line (with its newline) by that help text.
pub fn expand(text: &str) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches('\n');
        match bare.strip_prefix("{{").and_then(|s| s.strip_suffix("}}")) {
            Some(name) => out.push_str(&help(name)),
            None => out.push_str(line),
        }
    }
    out
}

/// Runs the built `etmem` with `args`, with no stdin.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_etmem"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run etmem")
}

/// The exit code, failing the test if killed by a signal.
pub fn code(out: &Output) -> i32 {
    out.status.code().expect("etmem exited by a signal")
}
