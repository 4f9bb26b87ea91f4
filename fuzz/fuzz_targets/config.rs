//! A config file given to `etmem obj add` / `obj del` (`etmem_config::parse_for_add`,
//! `parse_for_del`: the INI reader and the typed stage).
//!
//! Invariants: no panic; a file that adds can be deleted, and deleting it names exactly
//! the objects adding it made.
#![no_main]

use etmem_config::{parse_for_add, parse_for_del};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    // the daemon refuses a file that is not UTF-8 before parsing it (file::read_checked)
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/etc/etmem/fuzz.ini");
    let del = parse_for_del(text, path);
    let Ok(add) = parse_for_add(text, path) else {
        return;
    };
    let del = match del {
        Ok(d) => d,
        Err(e) => panic!("adds but does not delete: {e}"),
    };
    let projects: Vec<&str> = add.projects.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(del.projects, projects);
    let engines: Vec<(&str, &str)> = add
        .engines
        .iter()
        .map(|e| (e.project.as_str(), e.name()))
        .collect();
    let del_engines: Vec<(&str, &str)> = del
        .engines
        .iter()
        .map(|(p, n)| (p.as_str(), n.as_str()))
        .collect();
    assert_eq!(del_engines, engines);
    let tasks: Vec<(&str, &str, &str)> = add
        .tasks
        .iter()
        .map(|t| (t.project.as_str(), t.engine.as_str(), t.name.as_str()))
        .collect();
    let del_tasks: Vec<(&str, &str, &str)> = del
        .tasks
        .iter()
        .map(|(p, e, n)| (p.as_str(), e.as_str(), n.as_str()))
        .collect();
    assert_eq!(del_tasks, tasks);
});
