//! Golden tests of everything `etmem` answers without a daemon: usage, help texts, and
//! every command-line error of spec §2 (message, `etmem: error <n>`, help, exit code).
//!
//! Each `tests/golden/cases/*.case` file holds one invocation:
//!
//! ```text
//! # what it proves
//! args: obj add -o -s x        (split on whitespace; '' is an empty argument)
//! exit: 234
//! --- stdout
//! ...lines; a line {{obj}} stands for tests/golden/help/obj.txt...
//! --- stderr                   (optional; absent means stderr must be empty)
//! ...
//! ```
//!
//! The help files are generated from the spec's escaped strings, not from this program.

mod common;

use std::path::Path;

struct Case {
    args: Vec<String>,
    exit: i32,
    stdout: String,
    stderr: String,
}

fn load(path: &Path) -> Case {
    let text = std::fs::read_to_string(path).expect("read case");
    let (head, body) = text
        .split_once("--- stdout\n")
        .unwrap_or_else(|| panic!("{}: no `--- stdout` section", path.display()));
    let (stdout, stderr) = body.split_once("--- stderr\n").unwrap_or((body, ""));
    let mut args = None;
    let mut exit = None;
    for line in head.lines() {
        if let Some(a) = line.strip_prefix("args:") {
            args = Some(
                a.split_whitespace()
                    .map(|w| {
                        if w == "''" {
                            String::new()
                        } else {
                            w.to_owned()
                        }
                    })
                    .collect(),
            );
        } else if let Some(e) = line.strip_prefix("exit:") {
            exit = Some(e.trim().parse().expect("exit code"));
        }
    }
    Case {
        args: args.unwrap_or_else(|| panic!("{}: no `args:` line", path.display())),
        exit: exit.unwrap_or_else(|| panic!("{}: no `exit:` line", path.display())),
        stdout: common::expand(stdout),
        stderr: stderr.to_owned(),
    }
}

#[test]
fn golden_cases() {
    let dir = common::golden_dir().join("cases");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("cases dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 30,
        "golden cases missing in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for path in &paths {
        let case = load(path);
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let out = common::run(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if stdout != case.stdout {
            failures.push(format!(
                "{name}: stdout\n--- expected\n{}--- got\n{stdout}",
                case.stdout
            ));
        }
        if stderr != case.stderr {
            failures.push(format!(
                "{name}: stderr\n--- expected\n{}--- got\n{stderr}",
                case.stderr
            ));
        }
        if common::code(&out) != case.exit {
            failures.push(format!(
                "{name}: exit {} expected, got {}",
                case.exit,
                common::code(&out)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn help_files_match_spec_shape() {
    // Guards the generated golden files themselves: every help text starts with an empty
    // line and `Usage:` and ends with a newline, as the spec's strings do.
    for name in ["usage", "obj", "project", "engine"] {
        let h = common::help(name);
        assert!(h.starts_with("\nUsage:\n"), "{name}");
        assert!(h.ends_with(".\n") || h.ends_with("}\n"), "{name}");
    }
    assert!(common::help("project").contains("when execute add or del option."));
}

#[test]
fn socket_name_of_107_bytes_cannot_be_formatted() {
    let name = "a".repeat(107);
    let out = common::run(&["project", "show", "-s", &name]);
    let expected = common::expand(
        "set for sun_path fail\netmem_client_conn failed.\netmem: error -1\n{{project}}\n",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    assert_eq!(common::code(&out), 255);
}
