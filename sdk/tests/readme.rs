//! `sdk/README.md` keeps building. How each of its code blocks is checked:
//!
//! - every ```rust block is a doctest: `src/lib.rs` includes the README as the docs of a
//!   `#[cfg(doctest)]` item, so `cargo test -p etmem-sdk` compiles and runs each one; this
//!   test refuses blocks rustdoc would skip or not compile (untagged, `ignore`, `no_run`,
//!   `compile_fail`, `text` for Rust) and checks the include is there;
//! - the block of "The shortest engine" is also `tests/readme/shortest_engine.rs`, compiled
//!   into this test and driven through the SDK's harness; this test checks the two are the
//!   same text and that it is under 25 lines;
//! - the ```ini block is loaded by the real config parser in `host/config/tests/conf.rs`;
//! - ```toml and ```sh blocks are checked for what they must say.

use etmem_sdk::testing::{FakeHost, Harness};
use etmem_sdk::{Action, EngineError, Params, PolicyEngine, Round, ScanResult, TaskInfo};

#[allow(dead_code)] // SwapIdle's field is read through the trait only
mod shortest {
    include!("readme/shortest_engine.rs");
}

const README: &str = include_str!("../README.md");

/// A fenced block of the README: its info string, first line (1-based), text.
#[derive(Debug)]
struct Block {
    info: String,
    line: usize,
    text: String,
}

fn blocks() -> Vec<Block> {
    let mut out = Vec::new();
    let mut cur: Option<Block> = None;
    for (i, line) in README.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut cur, fence) {
            (None, Some(info)) => {
                cur = Some(Block {
                    info: info.trim().to_string(),
                    line: i + 1,
                    text: String::new(),
                })
            }
            (Some(_), Some("")) => out.extend(cur.take()),
            (Some(b), _) => {
                b.text.push_str(line);
                b.text.push('\n');
            }
            (None, None) => {
                // rustdoc compiles an indented block as Rust: none may slip in
                assert!(
                    !(line.starts_with("    ") && !line.trim().is_empty() && prev_blank(i)),
                    "sdk/README.md:{}: an indented code block (rustdoc would compile it as \
                     Rust): fence it with a language",
                    i + 1
                );
            }
        }
    }
    assert!(cur.is_none(), "sdk/README.md: a code block is not closed");
    out
}

/// True when line `i` (0-based) follows a blank line outside a list item.
fn prev_blank(i: usize) -> bool {
    let lines: Vec<&str> = README.lines().collect();
    i > 0 && lines[i - 1].trim().is_empty() && {
        // a list item's continuation is indented too: look back for the paragraph's start
        let before = lines[..i - 1]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty() && !l.starts_with("  "));
        !before.is_some_and(|l| l.starts_with("- ") || l.starts_with("* "))
    }
}

#[test]
fn every_block_has_a_language_rustdoc_compiles_rust() {
    let blocks = blocks();
    assert!(blocks.len() >= 5, "{blocks:?}");
    for b in &blocks {
        assert!(
            ["rust", "toml", "ini", "sh"].contains(&b.info.as_str()),
            "sdk/README.md:{}: block tagged `{}`: Rust blocks are tagged exactly `rust` (they \
             are doctests, compiled and run), other blocks `toml`, `ini` or `sh`",
            b.line,
            b.info
        );
    }
    assert!(blocks.iter().filter(|b| b.info == "rust").count() >= 3);
    let lib = include_str!("../src/lib.rs");
    assert!(
        lib.contains("#[cfg(doctest)]\n#[doc = include_str!(\"../README.md\")]\npub struct"),
        "src/lib.rs must include README.md as doctests"
    );
}

#[test]
fn the_shortest_engine_is_under_25_lines_and_is_the_one_tested_here() {
    let text = README
        .split("## The shortest engine\n")
        .nth(1)
        .expect("a section `## The shortest engine`");
    let block = blocks()
        .into_iter()
        .find(|b| b.info == "rust" && text.contains(&b.text))
        .expect("a rust block in `## The shortest engine`");
    let lines = block.text.lines().count();
    assert!(
        lines < 25,
        "the shortest engine has {lines} lines, not under 25"
    );
    assert!(block.text.contains("export_policy!("));
    assert_eq!(
        block.text,
        include_str!("readme/shortest_engine.rs"),
        "sdk/README.md:{}: copy the shortest engine to tests/readme/shortest_engine.rs",
        block.line
    );
}

#[test]
fn the_shortest_engine_swaps_idle_runs_above_its_threshold() -> Result<(), EngineError> {
    type E = PolicyEngine<shortest::SwapIdle>;
    let mut h =
        Harness::<E>::configure(&Params::from_pairs([("min_pages", "3")]), FakeHost::new())?;
    h.new_task(&TaskInfo::named("p", "few", "app"), &Params::new())?;
    h.new_task(
        &TaskInfo::named("p", "any", "app"),
        &Params::from_pairs([("min_pages", "1")]),
    )?;
    // pid 7: 2 idle pages at 0x1000, 1 busy, 1 idle at 0x8000 (3 idle); pid 8: 1 idle page
    let seven = ScanResult::from_columns(
        7,
        1,
        &[0x1000, 0x3000, 0x8000],
        &[2, 1, 1],
        &[0, 1, 0],
        &[0; 3],
    )?;
    let eight = ScanResult::from_columns(8, 1, &[0x1000], &[1], &[0], &[0])?;
    let round = Round {
        number: 1,
        passes: 1,
    };
    let few = h.plan("few", &round, &[seven.clone(), eight.clone()])?;
    assert_eq!(few.len(), 1);
    assert_eq!((few[0].pid(), few[0].page_count()), (7, 3));
    assert!(matches!(few[0], Action::SwapOut { ref runs, .. } if runs.len() == 2));
    let any = h.plan("any", &round, &[seven, eight])?;
    assert_eq!(any.iter().map(Action::pid).collect::<Vec<_>>(), [7, 8]);

    let bad = h.new_task(
        &TaskInfo::named("p", "bad", "app"),
        &Params::from_pairs([("min_pages", "0")]),
    );
    assert_eq!(
        bad.expect_err("0 is out of range").to_string(),
        "key `min_pages`: expected an integer in 1..=65536, found `0`"
    );
    Ok(())
}

#[test]
fn the_toml_and_sh_blocks_say_what_the_loader_and_build_need() {
    let blocks = blocks();
    let toml: Vec<&Block> = blocks.iter().filter(|b| b.info == "toml").collect();
    assert!(
        toml.iter()
            .any(|b| b.text.contains("crate-type = [\"cdylib\"") && b.text.contains("etmem-sdk")),
        "the Cargo.toml block must give the crate type and the dependency"
    );
    let sh: String = blocks
        .iter()
        .filter(|b| b.info == "sh")
        .map(|b| b.text.as_str())
        .collect();
    // the loader's rules (host/core/src/plugin/thirdparty.rs): root:root, .so 0500 or 0700
    assert!(sh.contains("install -d -o root -g root -m 0755 /usr/lib/etmem_fetch"));
    assert!(sh.contains("-o root -g root -m 0500 out/libswap_idle.so"));
}
