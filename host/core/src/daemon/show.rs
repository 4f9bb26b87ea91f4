//! The `project show` text, made from the daemon's state.
//!
//! It must not change the state: it only reads what the caller's lock gives it.

use crate::model::State;
use std::fmt::Write as _;

/// The `project show` text (spec §5.1), byte for byte.
pub(super) fn show_text(state: &State, name: Option<&str>) -> String {
    let mut out = String::new();
    let mut matched = false;
    for p in state
        .projects
        .iter()
        .filter(|p| name.is_none_or(|n| p.conf.name == n))
    {
        matched = true;
        let _ = writeln!(out, "project: {}", p.conf.name);
        let _ = writeln!(
            out,
            "{:<8} {:<8} {:<16} {:<16} {:<16} {:<8}",
            "number", "type", "value", "name", "engine", "started"
        );
        for e in &p.engines {
            for (i, t) in e.tasks.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{:<8} {:<8} {:<16} {:<16} {:<16} {:<8}",
                    i + 1,
                    t.info.target.type_name(),
                    t.info.target.value(),
                    t.info.name,
                    e.name,
                    if t.started { "true" } else { "false" }
                );
            }
        }
    }
    if !matched {
        match name {
            None => out.push_str("no project exists\n\n"),
            Some(n) => {
                let _ = write!(out, "project: project {n} is not existed\n\n");
            }
        }
    }
    out
}
