//! Round timing and start/stop races, on tokio's paused clock.

mod common;

use common::steps::*;
use common::*;
use etmem_host::DaemonHandle;
use tokio::time::Instant;

/// Starts project `p` with the recorder's clock at 0, then lets `wait` seconds pass.
async fn start_and_wait(d: &DaemonHandle, rec: &Recorder, p: &str, wait: u64) {
    rec.reset_origin();
    d.start_project(p).await.expect("start");
    secs(wait).await;
}

/// Project `p` (loop=1, interval=5, sleep=1), its slide engine and `tasks`.
fn p_1_5_1(tasks: Vec<etmem_config::TaskConf>) -> etmem_config::ConfigFile {
    slide_file(project("p", 1, 5, 1), tasks)
}

/// Project `p` (loop=2, interval=10, sleep=1), its cslide engine (nodes 0→1, hot 1) and
/// tasks `vm1` (pid 100) and `vm2` (name qemu), each as `edit` leaves it.
fn cslide_vms(
    edit: fn(etmem_config::TaskConf) -> etmem_config::TaskConf,
) -> etmem_config::ConfigFile {
    file(
        vec![project("p", 2, 10, 1)],
        vec![cslide("p", &[(0, 1)], 1)],
        vec![
            edit(cslide_task("p", "vm1", pid("100"))),
            edit(cslide_task("p", "vm2", comm("qemu"))),
        ],
    )
}

/// Lets 100 s pass, then asserts that no round came after the `n` seen so far.
async fn assert_no_more_rounds(rec: &Recorder, n: usize) {
    secs(100).await;
    assert_eq!(rec.rounds().len(), n, "no round after stop");
}

/// Slide task `t` of project `p` on pid 100.
fn t100() -> etmem_config::TaskConf {
    slide_task("p", "t", pid("100"), 1)
}

#[tokio::test(start_paused = true)]
async fn slide_rounds_are_end_to_start() {
    let (_m, rec, d) = daemon_up();
    // loop=2, interval=10, sleep=3: a round lasts 2*3 = 6 s, the first one 3 s more (its
    // trackers start, and their first pass must see a full `sleep` window)
    let t = slide_task("p", "t", comm("mysqld"), 1);
    add(&d, slide_file(project("p", 2, 10, 3), vec![t])).await;
    start_and_wait(&d, &rec, "p", 52).await;
    let r = rec.rounds();
    let times: Vec<(u64, f64)> = r.iter().map(|r| (r.round, r.decided)).collect();
    assert_eq!(
        times,
        vec![(1, 19.0), (2, 35.0), (3, 51.0)],
        "rounds at interval, then interval after each end"
    );
    // pids re-resolved with direct children
    assert_eq!(
        (r[0].task.as_str(), r[0].pids.clone()),
        ("t", vec![100, 101])
    );
    assert_eq!(
        (r[0].project.as_str(), r[0].engine.as_str()),
        ("p", "slide")
    );
}

#[tokio::test(start_paused = true)]
async fn stop_during_sleep_is_prompt_and_restart_starts_over() {
    let (_m, rec, d) = daemon_up();
    add(&d, slide_file(project("p", 3, 10, 100), vec![t100()])).await;
    // inside the first round's first 100 s sleep
    start_and_wait(&d, &rec, "p", 20).await;
    let before = Instant::now();
    d.stop_project("p").await.expect("stop");
    assert_eq!(Instant::now(), before, "stop waited for the clock");
    secs(1000).await;
    assert!(rec.rounds().is_empty(), "{:?}", rec.rounds());

    // restart: a fresh first round interval after the new start
    let u = slide_task("q", "u", pid("200"), 1);
    add(&d, slide_file(project("q", 1, 5, 1), vec![u])).await;
    start_and_wait(&d, &rec, "q", 8).await;
    let r = rec.rounds();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].decided, 7.0);
    d.stop_project("q").await.expect("stop");
    start_and_wait(&d, &rec, "q", 8).await;
    let r = rec.rounds();
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!((r[1].round, r[1].decided), (1, 7.0));
}

#[tokio::test(start_paused = true)]
async fn deleting_a_running_project_stops_its_rounds() {
    let (_m, rec, d) = daemon_up();
    add(&d, p_1_5_1(vec![t100()])).await;
    start_and_wait(&d, &rec, "p", 8).await;
    assert_eq!(rec.rounds().len(), 1);
    d.del_objects(&del_projects(&["p"])).await.expect("del");
    assert!(rec.events().contains(&"stop t".to_string()));
    assert_no_more_rounds(&rec, 1).await;
}

#[tokio::test(start_paused = true)]
async fn task_added_to_started_project_starts_rounds() {
    let (_m, rec, d) = daemon_up();
    add(&d, p_1_5_1(vec![])).await;
    start_and_wait(&d, &rec, "p", 30).await;
    assert!(rec.rounds().is_empty());
    rec.reset_origin();
    add(&d, tasks_file(vec![slide_task("p", "late", pid("200"), 1)])).await;
    assert!(
        d.show(Some("p"))
            .output
            .contains("late             slide            true")
    );
    secs(8).await;
    let r = rec.rounds();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].decided, 7.0);
    assert_eq!((r[0].task.as_str(), r[0].pids.clone()), ("late", vec![200]));
}

#[tokio::test(start_paused = true)]
async fn a_vanished_process_skips_the_round() {
    let (m, rec, d) = daemon_up();
    add(&d, p_1_5_1(vec![t100()])).await;
    start_and_wait(&d, &rec, "p", 8).await;
    assert_eq!(rec.rounds().len(), 1);
    m.fake.remove_process(100).expect("rm");
    secs(20).await;
    assert_eq!(rec.rounds().len(), 1, "rounds ran on a vanished pid");
}

/// A per-task task whose process has left lets go of it at its next (skipped) round: the
/// host no longer offers that process's scans, nor keeps its handle (on the live kernel, a
/// pidfd: before, the last handle stayed open for as long as the task's rounds were
/// skipped, which is the extra pidfd of the lab's churn scenario).
#[tokio::test(start_paused = true)]
async fn a_vanished_process_leaves_the_tasks_view_at_its_next_round() {
    let (m, rec, d) = daemon_up();
    add(
        &d,
        p_1_5_1(vec![
            slide_task("p", "gone", pid("100"), 1),
            slide_task("p", "stays", pid("200"), 1),
        ]),
    )
    .await;
    *rec.peek.lock().expect("lock") = vec!["gone".into()];
    // both tasks plan at 7 s, then every 6 s (interval 5, one sleep of 1)
    start_and_wait(&d, &rec, "p", 8).await;
    let gone_scan = |r: &RoundRec| match &r.peeked[..] {
        [(t, Ok(pages))] if t == "gone" => pages.clone(),
        other => panic!("peeked {other:?}"),
    };
    let first = rec.rounds();
    let own = first
        .iter()
        .find(|r| r.task == "gone")
        .expect("a round of `gone`");
    assert_eq!(own.pids, vec![100, 101], "pid 100 and its child");
    assert!(!gone_scan(own).is_empty(), "{own:?}");
    m.fake.remove_process(100).expect("rm");
    // `gone`'s next round (12 s) is skipped; `stays` plans at 13, 19 and 25 s
    secs(20).await;
    let later: Vec<RoundRec> = rec
        .rounds()
        .into_iter()
        .filter(|r| r.decided > 12.0)
        .collect();
    assert!(
        later.iter().all(|r| r.task == "stays"),
        "rounds ran on a vanished pid: {later:?}"
    );
    assert_eq!(later.len(), 3, "{later:?}");
    for r in &later {
        assert_eq!(
            gone_scan(r),
            Vec::new(),
            "at {} s the host still offers the scans of pid 100, which left at 8 s",
            r.decided
        );
    }
}

#[tokio::test(start_paused = true)]
async fn cslide_worker_scans_working_tasks_and_stops_with_them() {
    let (_m, rec, d) = daemon_up();
    add(&d, cslide_vms(|t| t)).await;
    secs(60).await;
    assert!(rec.rounds().is_empty(), "worker ran without a started task");
    start_and_wait(&d, &rec, "p", 26).await;
    let r = rec.rounds();
    // one worker for the engine: rounds at 10 (a warm-up sleep for the new trackers, passes
    // end 13), then 23 (passes end 25); each working task planned in turn after both were
    // scanned
    let times: Vec<(u64, &str, Vec<u32>, f64)> = r
        .iter()
        .map(|r| (r.round, r.task.as_str(), r.pids.clone(), r.decided))
        .collect();
    assert_eq!(
        times,
        vec![
            (1, "vm2", vec![200], 13.0),
            (1, "vm1", vec![100], 13.0),
            (2, "vm2", vec![200], 25.0),
            (2, "vm1", vec![100], 25.0)
        ]
    );
    // deleting one task: the worker goes on with the other
    d.del_objects(&del_tasks(&[("p", "cslide", "vm2")]))
        .await
        .expect("del task");
    secs(12).await;
    let r = rec.rounds();
    assert_eq!(r.len(), 5);
    assert_eq!((r[4].task.as_str(), r[4].pids.clone()), ("vm1", vec![100]));
    d.stop_project("p").await.expect("stop");
    assert_no_more_rounds(&rec, 5).await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_every_task() {
    let (_m, rec, d) = daemon_up();
    add(
        &d,
        file(
            vec![project("a", 1, 5, 1), project("b", 1, 5, 1)],
            vec![slide("a"), slide("b")],
            vec![
                slide_task("a", "ta", pid("100"), 1),
                slide_task("b", "tb", pid("200"), 1),
            ],
        ),
    )
    .await;
    d.start_project("a").await.expect("start");
    d.start_project("b").await.expect("start");
    secs(8).await;
    assert_eq!(rec.rounds().len(), 2);
    let clone = d.clone();
    clone.shutdown().await;
    let ev = rec.events();
    assert!(ev.contains(&"stop ta".to_string()) && ev.contains(&"stop tb".to_string()));
    assert_no_more_rounds(&rec, 2).await;
}

#[tokio::test(start_paused = true)]
async fn deleting_a_running_engine_stops_its_rounds() {
    let (_m, rec, d) = daemon_up();
    add(
        &d,
        slide_and_cslide(vec![
            slide_task("p", "s", pid("100"), 1),
            cslide_task("p", "c", pid("200")),
        ]),
    )
    .await;
    start_and_wait(&d, &rec, "p", 8).await;
    assert_eq!(rec.rounds().len(), 2);
    d.del_objects(&del_engines(&[("p", "slide"), ("p", "cslide")]))
        .await
        .expect("del engines");
    assert_no_more_rounds(&rec, 2).await;
    assert_eq!(d.show(Some("p")).output.lines().count(), 2);
}

/// Project `p` (loop=1, interval=5, sleep=1), its slide and cslide (nodes 0→1, hot 1)
/// engines and `tasks`.
fn slide_and_cslide(tasks: Vec<etmem_config::TaskConf>) -> etmem_config::ConfigFile {
    file(
        vec![project("p", 1, 5, 1)],
        vec![slide("p"), cslide("p", &[(0, 1)], 1)],
        tasks,
    )
}

fn without_vm_flags(mut t: etmem_config::TaskConf) -> etmem_config::TaskConf {
    t.raw.retain(|(k, _)| k != "vm_flags");
    t
}

#[tokio::test(start_paused = true)]
async fn cslide_round_is_one_number_and_every_task_sees_this_rounds_scans() {
    let (m, rec, d) = daemon_up();
    *rec.peek.lock().expect("lock") = vec!["vm1".into(), "vm2".into(), "nope".into()];
    // without vm_flags=ht, so that the fake's anonymous pages are scanned
    add(&d, cslide_vms(without_vm_flags)).await;
    start_and_wait(&d, &rec, "p", 14).await;
    // round 1 planned at 13; before round 2 (at 25), pid 100's second page is accessed
    assert_eq!(rec.rounds().len(), 2);
    m.fake
        .set_pagemap(100, 0x11000, &[PRESENT | SOFT_DIRTY])
        .expect("pagemap");
    secs(12).await;
    let r = rec.rounds();
    assert_eq!(
        r.iter()
            .map(|r| (r.round, r.task.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, "vm2"), (1, "vm1"), (2, "vm2"), (2, "vm1")],
        "one round number per worker round, the same for every task"
    );
    // vm1's own pages changed between its rounds
    assert_ne!(r[1].pages, r[3].pages);
    assert!(r[3].pages.contains(&(100, 0x11000, 2)), "{:?}", r[3].pages);
    for rr in &r {
        let own = |t: &str| {
            r.iter()
                .find(|x| x.round == rr.round && x.task == t)
                .map(|x| x.pages.clone())
                .expect("task planned this round")
        };
        // every plan of round n sees round n's scans of every task, even one planned later
        assert_eq!(rr.peeked[0], ("vm1".to_string(), Ok(own("vm1"))), "{rr:?}");
        assert_eq!(rr.peeked[1], ("vm2".to_string(), Ok(own("vm2"))), "{rr:?}");
        assert_eq!(rr.peeked[2].0, "nope");
        assert!(rr.peeked[2].1.is_err(), "{rr:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn project_stop_calls_stop_task_for_every_task() {
    let (_m, rec, d) = daemon_up();
    add(
        &d,
        slide_and_cslide(vec![
            slide_task("p", "s1", pid("100"), 1),
            slide_task("p", "s2", pid("200"), 1),
            cslide_task("p", "c1", pid("100")),
            cslide_task("p", "c2", pid("200")),
        ]),
    )
    .await;
    start_and_wait(&d, &rec, "p", 8).await;
    assert_eq!(rec.rounds().len(), 4);
    let stops = |ev: Vec<String>| {
        let mut v: Vec<String> = ev.into_iter().filter(|e| e.starts_with("stop ")).collect();
        v.sort();
        v
    };
    assert!(stops(rec.events()).is_empty());
    d.stop_project("p").await.expect("stop");
    assert_eq!(
        stops(rec.events()),
        ["stop c1", "stop c2", "stop s1", "stop s2"]
    );
    assert_no_more_rounds(&rec, 4).await;
    // a restart and a second stop tell the engine again
    d.start_project("p").await.expect("restart");
    d.stop_project("p").await.expect("stop again");
    assert_eq!(stops(rec.events()).len(), 8);
}
