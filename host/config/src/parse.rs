//! Stage two: INI document → typed config ([`ConfigFile`] for add, [`ObjectIds`] for del).
//!
//! Pure: text in, typed values out; no file access, no daemon state. Each section is read
//! in C's table order (spec §4.4-4.7) and the first problem is returned, sections in C's
//! add order (`[project]`, then `[engine]`, then `[task]`), so the error class is C's.
//!
//! This file holds the entry points ([`parse_for_add`], [`parse_for_del`]), the limits
//! callers see, and the file-level order; `sections` builds each `[project]`, `[engine]`
//! and `[task]`, and `reader` reads and reports one key. None of them may open files,
//! touch the kernel or know daemon state.

mod reader;
mod sections;

use std::path::Path;

use crate::doc::{Section, parse_document};
use crate::error::{ConfigError, SectionKind};
use crate::types::*;
use reader::Reader;
use sections::{engine, project, task};

/// Longest identity value (project, engine and task names), in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Longest task `value`, in bytes.
pub const MAX_TASK_VALUE_LEN: usize = 15;
/// memdcd `Sock` must be shorter than this (C copies it into `sun_path[108]`).
pub const MEMDCD_SOCK_LIMIT: usize = 108;
/// Longest psi `cg_dir`, in bytes.
pub const MAX_CG_DIR_LEN: usize = 63;
/// The abstract socket name `Sock=-` stands for.
pub const MEMDCD_DEFAULT_SOCK: &str = "@_memdcd.server";

/// The `[engine]` key (any engine type) that caps the bytes acted on per round.
pub const ROUND_QUOTA_KEY: &str = "round_quota_bytes";

/// `[project]` key (an etmem-rs addition, not in C): `dry_run=yes` makes the host carry
/// out nothing its engines decide and report instead what would have moved. C etmemd
/// ignores the key and acts: do not hand such a file to a C daemon.
pub const DRY_RUN_KEY: &str = "dry_run";

/// `[task]` key (an etmem-rs addition, not in C): `record_scans=/abs/file` makes the host
/// append one JSON line per round of the task to the file (what its engine saw and
/// decided), for `etmem-replay`.
pub const RECORD_SCANS_KEY: &str = "record_scans";
/// `[task]` key (ours): how many rounds `record_scans` records, 1..=[`MAX_RECORD_ROUNDS`].
pub const RECORD_ROUNDS_KEY: &str = "record_rounds";
/// The most rounds one task records.
pub const MAX_RECORD_ROUNDS: u32 = 100_000;
/// Rounds recorded when `record_rounds` is absent.
pub const DEFAULT_RECORD_ROUNDS: u32 = 10;

fn section_kind(name: &str) -> Option<SectionKind> {
    match name {
        "project" => Some(SectionKind::Project),
        "engine" => Some(SectionKind::Engine),
        "task" => Some(SectionKind::Task),
        _ => None,
    }
}

fn document(text: &str, path: &Path) -> Result<Vec<Section>, ConfigError> {
    let sections = parse_document(text, path)?;
    if !sections.iter().any(|s| section_kind(&s.name).is_some()) {
        return Err(ConfigError::NoSection {
            path: path.to_path_buf(),
        });
    }
    Ok(sections)
}

fn of_kind(sections: &[Section], kind: SectionKind) -> impl Iterator<Item = &Section> {
    sections.iter().filter(move |s| s.name == kind.name())
}

/// Parses the text of a config file for `obj add`. `path` is only used in messages and
/// stored in the result. No file rules are checked here.
pub fn parse_for_add(text: &str, path: &Path) -> Result<ConfigFile, ConfigError> {
    let sections = document(text, path)?;
    let mut warnings = Vec::new();
    for s in &sections {
        if section_kind(&s.name).is_none() {
            warnings.push(format!(
                "{}: line {}: unknown section [{}] ignored",
                path.display(),
                s.line,
                s.name
            ));
        }
    }
    let mut projects = Vec::new();
    for s in of_kind(&sections, SectionKind::Project) {
        projects.push(project(path, s, &mut warnings)?);
    }
    let mut engines = Vec::new();
    for s in of_kind(&sections, SectionKind::Engine) {
        engines.push(engine(path, s, &mut warnings)?);
    }
    let mut tasks = Vec::new();
    for s in of_kind(&sections, SectionKind::Task) {
        tasks.push(task(path, s, &mut warnings)?);
    }
    Ok(ConfigFile {
        path: path.to_path_buf(),
        projects,
        engines,
        tasks,
        warnings,
    })
}

/// Parses the text of a config file for `obj del`: only the identity keys are read, in C's
/// delete order (`[task]`, `[engine]`, `[project]`); all other keys are ignored.
pub fn parse_for_del(text: &str, path: &Path) -> Result<ObjectIds, ConfigError> {
    let sections = document(text, path)?;
    let mut ids = ObjectIds::default();
    for s in of_kind(&sections, SectionKind::Task) {
        let mut r = Reader::new(path, s, SectionKind::Task);
        let project = r.identity("project")?;
        let engine = r.identity("engine")?;
        let name = r.identity("name")?;
        ids.tasks.push((project, engine, name));
    }
    for s in of_kind(&sections, SectionKind::Engine) {
        let mut r = Reader::new(path, s, SectionKind::Engine);
        let project = r.identity("project")?;
        let mut name = r.identity("name")?;
        if name == "thirdparty" {
            name = r.identity("eng_name")?;
        }
        ids.engines.push((project, name));
    }
    for s in of_kind(&sections, SectionKind::Project) {
        let mut r = Reader::new(path, s, SectionKind::Project);
        ids.projects.push(r.identity("name")?);
    }
    Ok(ids)
}
