//! Property tests of the config text (issue 12): a file written from typed values (slide
//! projects, engines and tasks, as in `conf/slide.ini`) parses back to those values for
//! `obj add`, and to the same object names for `obj del`. No function prints a config
//! (`project show` prints daemon state, see etmem-host), so the text is written here.
//! The fuzz target `fuzz/fuzz_targets/config.rs` checks the add/del agreement on mutated
//! files.

use std::fmt::Write as _;
use std::path::Path;

use etmem_config::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Task {
    name: String,
    by_pid: bool,
    value: String,
    t: u32,
    max_threads: i32,
    swap_flag: Option<bool>,
}

#[derive(Debug, Clone)]
struct Project {
    name: String,
    loops: u32,
    interval: u32,
    sleep: u32,
    tasks: Vec<Task>,
}

fn task() -> impl Strategy<Value = Task> {
    (
        "[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}",
        any::<bool>(),
        "[A-Za-z0-9._%/-]{1,15}",
        0u32..=i32::MAX as u32,
        any::<i32>(),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(name, by_pid, value, t, max_threads, swap_flag)| Task {
            name,
            by_pid,
            value,
            t,
            max_threads,
            swap_flag,
        })
}

fn project() -> impl Strategy<Value = Project> {
    (
        "[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}",
        1u32..=120,
        1u32..=1200,
        1u32..=1200,
        proptest::collection::vec(task(), 0..4),
    )
        .prop_map(|(name, loops, interval, sleep, tasks)| Project {
            name,
            loops,
            interval,
            sleep,
            tasks,
        })
}

/// The file as an operator writes it: every project, then its engine, then its tasks.
fn text(projects: &[Project]) -> String {
    let mut s = String::from("# written by a property test\n");
    for p in projects {
        let _ = write!(
            s,
            "[project]\nname={}\nscan_type=page\nloop={}\ninterval={}\nsleep={}\n\n",
            p.name, p.loops, p.interval, p.sleep
        );
    }
    for p in projects {
        let _ = write!(s, "[engine]\nname=slide\nproject={}\n\n", p.name);
    }
    for p in projects {
        for t in &p.tasks {
            let _ = write!(
                s,
                "[task]\nproject={}\nengine=slide\nname={}\ntype={}\nvalue={}\nT={}\nmax_threads={}\n",
                p.name,
                t.name,
                if t.by_pid { "pid" } else { "name" },
                t.value,
                t.t,
                t.max_threads
            );
            if let Some(f) = t.swap_flag {
                let _ = writeln!(s, "swap_flag={}", if f { "yes" } else { "no" });
            }
            s.push('\n');
        }
    }
    s
}

proptest! {
    #[test]
    fn a_written_file_parses_to_its_values(projects in proptest::collection::vec(project(), 1..4)) {
        let path = Path::new("/etc/etmem/props.ini");
        let text = text(&projects);
        let c = parse_for_add(&text, path).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(c.projects.len(), projects.len());
        for (got, p) in c.projects.iter().zip(&projects) {
            prop_assert_eq!(&got.name, &p.name);
            prop_assert_eq!(got.scan, ScanConf::Page { loops: p.loops, interval: p.interval, sleep: p.sleep });
        }
        for (got, p) in c.engines.iter().zip(&projects) {
            prop_assert_eq!((got.project.as_str(), got.name()), (p.name.as_str(), "slide"));
        }
        let tasks: Vec<(&Project, &Task)> =
            projects.iter().flat_map(|p| p.tasks.iter().map(move |t| (p, t))).collect();
        prop_assert_eq!(c.tasks.len(), tasks.len());
        for (got, (p, t)) in c.tasks.iter().zip(&tasks) {
            prop_assert_eq!(&got.project, &p.name);
            prop_assert_eq!(got.engine.as_str(), "slide");
            prop_assert_eq!(&got.name, &t.name);
            let target = if t.by_pid {
                TaskTarget::Pid(t.value.clone())
            } else {
                TaskTarget::Name(t.value.clone())
            };
            prop_assert_eq!(&got.target, &target);
            prop_assert_eq!(got.max_threads, i64::from(t.max_threads));
            prop_assert_eq!(got.swap_flag, t.swap_flag.unwrap_or(false));
            match &got.engine_keys {
                TaskEngineConf::Slide(k) => prop_assert_eq!(k.t, t.t),
                other => prop_assert!(false, "not slide keys: {:?}", other),
            }
        }
        let del = parse_for_del(&text, path).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let names: Vec<String> = projects.iter().map(|p| p.name.clone()).collect();
        prop_assert_eq!(del.projects, names);
        prop_assert_eq!(del.tasks.len(), tasks.len());
    }
}
