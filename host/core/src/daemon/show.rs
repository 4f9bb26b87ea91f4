//! The `project show` text, made from the daemon's state.
//!
//! It must not change the state: it only reads what the caller's lock gives it.

use crate::action::ActionError;
use crate::model::State;
use etmem_proto::OptResult;
use std::fmt::Write as _;

/// `project show -o json` (ours): `{"projects":[{"name":..,"started":..,"dry_run":..,
/// "tracker":"damon"|null,"tasks":[{"number":1,"type":"pid","value":"..","name":..,
/// "engine":..,"started":..}]}]}` on one line, the tasks in the text's order. A named
/// project that does not exist is an error (the text form prints a sentence instead).
pub(super) fn show_json(state: &State, name: Option<&str>) -> Result<String, ActionError> {
    #[derive(serde::Serialize)]
    struct Task<'a> {
        number: usize,
        r#type: &'a str,
        value: String,
        name: &'a str,
        engine: &'a str,
        started: bool,
    }
    #[derive(serde::Serialize)]
    struct Project<'a> {
        name: &'a str,
        started: bool,
        dry_run: bool,
        tracker: Option<String>,
        tasks: Vec<Task<'a>>,
    }
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        projects: Vec<Project<'a>>,
    }
    let projects: Vec<Project> = state
        .projects
        .iter()
        .filter(|p| name.is_none_or(|n| p.conf.name == n))
        .map(|p| Project {
            name: &p.conf.name,
            started: p.started,
            dry_run: p.conf.dry_run,
            tracker: p.tracker.map(|k| k.to_string()),
            tasks: p
                .engines
                .iter()
                .flat_map(|e| {
                    e.tasks.iter().enumerate().map(|(i, t)| Task {
                        number: i + 1,
                        r#type: t.info.target.type_name(),
                        value: t.info.target.value().to_string(),
                        name: &t.info.name,
                        engine: &e.name,
                        started: t.started,
                    })
                })
                .collect(),
        })
        .collect();
    if let Some(n) = name
        && projects.is_empty()
    {
        return Err(ActionError::new(
            OptResult::ProNoExist,
            format!("project `{n}` does not exist"),
        ));
    }
    let mut out = serde_json::to_string(&Doc { projects })
        .map_err(|e| ActionError::new(OptResult::InterErr, format!("project show: {e}")))?;
    out.push('\n');
    Ok(out)
}

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
