//! `project heatmap` and `engine <cmd> -o json` through the daemon core, on a FakeKernel:
//! the heatmap of a task's rounds shows its hot and cold pages where the fake kernel's
//! soft-dirty bits put them, in the text, JSON and SVG forms; the real cslide answers
//! `showtaskpages` in JSON, and its text stays C's.

mod common;

use common::*;
use etmem_host::action::HeatmapFormat;
use etmem_host::{Action, ActionHandler, Daemon, DaemonOptions, EngineRegistry, Scheduling};
use etmem_kernel::FakeProcess;
use etmem_proto::OptResult;
use std::time::Duration;

const BASE: u64 = 0x100_0000;
const PAGES: usize = 128;

#[tokio::test(start_paused = true)]
async fn heatmap_shows_the_hot_and_cold_buckets_of_the_rounds() {
    let m = machine();
    // pid 300: 128 pages, the first 32 written in every pass (soft-dirty), the rest idle
    m.fake
        .add_process(&FakeProcess::new(300, "heat").anon(BASE, BASE + PAGES as u64 * 4096))
        .expect("300");
    let mut flags = vec![PRESENT; PAGES];
    for f in &mut flags[..32] {
        *f |= SOFT_DIRTY;
    }
    m.fake.set_pagemap(300, BASE, &flags).expect("pagemap");
    let rec = Recorder::new();
    let d = daemon_with(&m, &rec, DaemonOptions::default());
    d.add_config(&file(
        vec![project("p", 2, 5, 1)],
        vec![slide("p")],
        vec![slide_task("p", "h", pid("300"), 1)],
    ))
    .await
    .expect("add");
    d.start_project("p").await.expect("start");
    tokio::time::sleep(Duration::from_secs(40)).await;
    let rounds = rec.rounds().len();
    assert!(rounds >= 3, "{rounds} rounds");
    let heat = |format| Action::TaskHeatmap {
        project: "p".into(),
        engine: None,
        task: "h".into(),
        format,
    };

    // text: one line per round, 2 pages a bucket: 16 hot buckets, then 48 cold ones
    let text = d
        .handle(heat(HeatmapFormat::Text))
        .await
        .expect("text")
        .output;
    let grid: Vec<&str> = text
        .lines()
        .filter(|l| l.ends_with('|') && !l.contains("round"))
        .collect();
    assert_eq!(grid.len(), rounds, "{text}");
    for (i, line) in grid.iter().enumerate() {
        assert_eq!(
            *line,
            format!("{:>8} |{}{}|", i + 1, "@".repeat(16), ".".repeat(48)),
            "{text}"
        );
    }
    assert!(
        text.contains("0x0000000001000000") && text.contains("0x0000000001080000"),
        "{text}"
    );

    // json: the matrix with its addresses
    let json = d
        .handle(heat(HeatmapFormat::Json))
        .await
        .expect("json")
        .output;
    let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(v["task"], "h");
    assert_eq!(v["engine"], "slide");
    assert_eq!(v["columns"], 64);
    let bounds = v["bounds"].as_array().expect("bounds");
    assert_eq!(bounds.len(), 65);
    assert_eq!(bounds[0], BASE);
    assert_eq!(bounds[16], BASE + 32 * 4096);
    assert_eq!(bounds[64], BASE + PAGES as u64 * 4096);
    let rows = v["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), rounds);
    for r in rows {
        for i in 0..64 {
            assert_eq!(r["pages"][i], 2, "{r}");
            assert_eq!(r["accessed"][i], if i < 16 { 2 } else { 0 }, "{r}");
        }
    }

    // svg: a cell per bucket and round, hot ones red, cold ones blue
    let svg = d
        .handle(heat(HeatmapFormat::Svg))
        .await
        .expect("svg")
        .output;
    assert!(svg.starts_with("<?xml") && svg.ends_with("</svg>\n"));
    assert_eq!(svg.matches("<rect ").count(), rounds * 64);
    assert_eq!(svg.matches(r##"fill="#d73027""##).count(), rounds * 16);
    assert_eq!(svg.matches(r##"fill="#313695""##).count(), rounds * 48);

    // a deleted task forgets its history
    d.del_objects(&etmem_host::DelTargets {
        tasks: vec![("p".into(), "slide".into(), "h".into())],
        ..Default::default()
    })
    .await
    .expect("del");
    let e = d
        .handle(heat(HeatmapFormat::Text))
        .await
        .expect_err("deleted");
    assert_eq!(e.result, OptResult::TaskNoExist);
    // added again, it starts with no history
    d.add_config(&file(
        vec![],
        vec![],
        vec![slide_task("p", "h", pid("300"), 1)],
    ))
    .await
    .expect("add again");
    let text = d
        .handle(heat(HeatmapFormat::Text))
        .await
        .expect("text")
        .output;
    assert_eq!(
        text,
        "heatmap of project `p` engine `slide` task `h`: no round yet\n"
    );
    d.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn cslide_answers_showtaskpages_in_json_and_keeps_its_text() {
    let m = machine();
    let mut registry = EngineRegistry::builtin();
    registry.register_builtin::<etmem_plugin_cslide::Cslide>("cslide", Scheduling::PerEngine);
    let d = Daemon::start(m.kernel.clone(), registry);
    d.add_config(&file(
        vec![project("p", 1, 10, 1)],
        vec![cslide("p", &[(0, 1)], 2)],
        vec![cslide_task("p", "vm", pid("200"))],
    ))
    .await
    .expect("add");
    d.start_project("p").await.expect("start");
    let cmd = |c: &str, json| Action::EngineCmd {
        project: "p".into(),
        engine: "cslide".into(),
        cmd: c.into(),
        task: Some("vm".into()),
        json,
    };
    let json = d
        .handle(cmd("showtaskpages", true))
        .await
        .expect("showtaskpages -o json")
        .output;
    let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(v["task"], "vm");
    assert_eq!(v["pid"], 200);
    let nodes = v["nodes"].as_array().expect("nodes");
    assert_eq!(
        nodes.iter().map(|n| n["node"].clone()).collect::<Vec<_>>(),
        vec![0, 1]
    );
    // the text is C's
    let text = d
        .handle(cmd("showtaskpages", false))
        .await
        .expect("showtaskpages")
        .output;
    assert!(
        text.ends_with(
            "] task 200 pages info (KB):\n node       used        hot       cold\n    0          0          0          0\n    1          0          0          0\n"
        ),
        "{text:?}"
    );
    // a command cslide does not know gives no JSON either
    let e = d.handle(cmd("showpages", true)).await.expect_err("unknown");
    assert_eq!(e.result, OptResult::Inval);
    assert_eq!(
        e.detail,
        "engine `cslide` of project `p` gives no JSON for command `showpages`"
    );
    d.shutdown().await;
}
