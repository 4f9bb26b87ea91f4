//! Accepted values: every key's edge values and defaults, through the pure parser.

use std::path::Path;

use etmem_config::parse::{DEFAULT_RECORD_ROUNDS, MAX_RECORD_ROUNDS};
use etmem_config::*;
use etmem_proto::OptResult;

fn add(text: &str) -> ConfigFile {
    parse_for_add(text, Path::new("/t.ini")).unwrap_or_else(|e| panic!("{e}\n--\n{text}"))
}

fn add_err(text: &str) -> ConfigError {
    match parse_for_add(text, Path::new("/t.ini")) {
        Ok(c) => panic!("accepted: {c:?}\n--\n{text}"),
        Err(e) => e,
    }
}

fn project(extra: &str) -> ProjectConf {
    let c = add(&format!("[project]\nname=p\n{extra}"));
    c.projects.into_iter().next().expect("one project")
}

const TASK: &str = "[task]\nproject=p\nname=t\ntype=pid\nvalue=1\n";

fn task(engine: &str, extra: &str) -> (TaskConf, Vec<String>) {
    let c = add(&format!("{TASK}engine={engine}\n{extra}"));
    (c.tasks.into_iter().next().expect("one task"), c.warnings)
}

fn slide(extra: &str) -> SlideTaskConf {
    match task("slide", &format!("T=1\n{extra}")).0.engine_keys {
        TaskEngineConf::Slide(s) => s,
        other => panic!("{other:?}"),
    }
}

#[test]
fn page_project_edges_and_defaults() {
    for (l, i, s) in [(1, 1, 1), (120, 1200, 1200), (7, 60, 3)] {
        let p = project(&format!("loop={l}\ninterval={i}\nsleep={s}\n"));
        assert_eq!(
            p.scan,
            ScanConf::Page {
                loops: l,
                interval: i,
                sleep: s
            }
        );
        assert_eq!(p.scan.type_name(), "page");
        assert_eq!(p.sysmem_threshold, None);
        assert_eq!(p.swapcache_wmark, None);
    }
    // Sign and leading zeros as in g_key_file_get_int64; spaces around `=` stripped.
    let p = project("loop = +007\ninterval=\t5\nsleep =1\nscan_type=page\n");
    assert_eq!(
        p.scan,
        ScanConf::Page {
            loops: 7,
            interval: 5,
            sleep: 1
        }
    );
}

#[test]
fn project_thresholds_edges() {
    const PAGE: &str = "loop=1\ninterval=1\nsleep=1\n";
    for v in [0u8, 100] {
        let p = project(&format!("{PAGE}sysmem_threshold={v}\n"));
        assert_eq!(p.sysmem_threshold, Some(v));
    }
    for (h, l) in [(2u8, 1u8), (100, 99), (100, 1)] {
        let p = project(&format!(
            "{PAGE}swapcache_high_wmark={h}\nswapcache_low_wmark={l}\n"
        ));
        assert_eq!(p.swapcache_wmark, Some(SwapcacheWmark { high: h, low: l }));
    }
}

#[test]
fn psi_and_region_projects() {
    assert_eq!(
        project("scan_type=psi\ninterval=1200\n").scan,
        ScanConf::Psi { interval: 1200 }
    );
    let p = project(
        "scan_type=region\nsample_interval=0\naggr_interval=9223372036854775807\nupdate_interval=1\nmin_nr_regions=3\nmax_nr_regions=4\n",
    );
    assert_eq!(
        p.scan,
        ScanConf::Region {
            sample_interval: 0,
            aggr_interval: i64::MAX as u64,
            update_interval: 1,
            min_nr_regions: 3,
            max_nr_regions: 4
        }
    );
    assert_eq!(p.scan.type_name(), "region");
}

#[test]
fn keys_of_another_scan_type_are_ignored_with_a_warning() {
    let c = add("[project]\nname=p\nscan_type=psi\ninterval=5\nloop=3\n");
    assert_eq!(c.projects[0].scan, ScanConf::Psi { interval: 5 });
    assert_eq!(c.warnings.len(), 1);
    assert!(
        c.warnings[0].contains("[project] #1 (line 5): unknown key `loop` ignored"),
        "{:?}",
        c.warnings
    );
}

#[test]
fn identity_lengths_and_escapes() {
    let long = "n".repeat(64);
    let c = add(&format!(
        "[project]\nname={long}\nloop=1\ninterval=1\nsleep=1\n"
    ));
    assert_eq!(c.projects[0].name, long);
    // GKeyFile string escapes apply to string keys.
    let c = add("[project]\nname=a\\sb\\\\c\nloop=1\ninterval=1\nsleep=1\n");
    assert_eq!(c.projects[0].name, "a b\\c");
}

#[test]
fn generic_task_keys() {
    let (t, w) = task("slide", "T=0\n");
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(t.target, TaskTarget::Pid("1".into()));
    assert_eq!(t.target.type_name(), "pid");
    assert!(!t.swap_flag);
    assert_eq!(t.max_threads, 1);
    assert_eq!(
        (t.project.as_str(), t.engine.as_str(), t.name.as_str()),
        ("p", "slide", "t")
    );

    let c = add(
        "[task]\nproject=p\nengine=slide\nname=t\ntype=name\nvalue=aZ09._%/-aZ09._\nT=1\nswap_flag=yes\nmax_threads=0\n",
    );
    let t = &c.tasks[0];
    assert_eq!(t.target, TaskTarget::Name("aZ09._%/-aZ09._".into()));
    assert_eq!(t.target.value().len(), 15);
    assert!(t.swap_flag);
    // Kept as written: the core clamps with a warning, as C does.
    assert_eq!(t.max_threads, 0);
    assert_eq!(task("slide", "T=1\nmax_threads=-5\n").0.max_threads, -5);
    assert_eq!(
        task("slide", "T=1\nmax_threads=2147483647\n").0.max_threads,
        2_147_483_647
    );
    assert!(!task("slide", "T=1\nswap_flag=no\n").0.swap_flag);
}

#[test]
fn slide_task_keys() {
    assert_eq!(
        slide(""),
        SlideTaskConf {
            t: 1,
            swap_threshold_kb: None,
            dram_percent: None
        }
    );
    match task("slide", "T=0\n").0.engine_keys {
        TaskEngineConf::Slide(s) => assert_eq!(s.t, 0),
        other => panic!("{other:?}"),
    }
    for (v, kb) in [
        ("g", None),
        ("G", None),
        ("5G", Some(5u64 << 20)),
        ("50g", Some(50 << 20)),
        ("999999999g", Some(999_999_999u64 << 20)),
    ] {
        assert_eq!(
            slide(&format!("swap_threshold={v}\n")).swap_threshold_kb,
            kb,
            "{v}"
        );
    }
    for v in [1u8, 100] {
        assert_eq!(slide(&format!("dram_percent={v}\n")).dram_percent, Some(v));
    }
}

#[test]
fn dram_percent_outside_1_100_is_disabled_with_a_warning() {
    for v in ["0", "101", "-3"] {
        let (t, w) = task("slide", &format!("T=1\ndram_percent={v}\n"));
        match t.engine_keys {
            TaskEngineConf::Slide(s) => assert_eq!(s.dram_percent, None),
            other => panic!("{other:?}"),
        }
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("dram_percent") && w[0].contains("disabled"),
            "{w:?}"
        );
    }
}

#[test]
fn cslide_keys() {
    let (t, _) = task("cslide", "vm_flags=ht\nanon_only=yes\nign_host=yes\n");
    assert_eq!(
        t.engine_keys,
        TaskEngineConf::Cslide(CslideTaskConf {
            anon_only: true,
            ign_host: true
        })
    );
    let c = add(
        "[engine]\nproject=p\nname=cslide\nnode_pair=1 , 0 ; 3 2\nhot_threshold=0\nnode_mig_quota=0\nnode_hot_reserve=2147483647\n",
    );
    assert_eq!(c.engines[0].name(), "cslide");
    assert_eq!(
        c.engines[0].kind,
        EngineKind::Cslide(CslideEngineConf {
            node_pairs: vec![(1, 0), (3, 2)],
            hot_threshold: 0,
            node_mig_quota_mb: 0,
            node_hot_reserve_mb: 2_147_483_647,
        })
    );
}

#[test]
fn memdcd_sock() {
    for (v, want) in [
        ("-", "@_memdcd.server".to_string()),
        ("@my.sock", "@my.sock".to_string()),
        (&"s".repeat(107), "s".repeat(107)),
    ] {
        let (t, _) = task("memdcd", &format!("Sock={v}\n"));
        assert_eq!(
            t.engine_keys,
            TaskEngineConf::Memdcd(MemdcdTaskConf { sock: want })
        );
    }
}

#[test]
fn psi_defaults_and_forms() {
    let (t, _) = task("psi", "cg_dir=a\n");
    assert_eq!(
        t.engine_keys,
        TaskEngineConf::Psi(PsiTaskConf {
            pressure: 0.1,
            reclaim_rate: 0.05,
            reclaim_rate_max: 0.5,
            reclaim_rate_min: 0.01,
            limit_min_ratio: 0.1,
            limit_min_bytes: 0,
            reclaim_max_bytes: 1 << 30,
            cg_dir: "a".into(),
        })
    );
    let cg = "c".repeat(63);
    let (t, _) = task(
        "psi",
        &format!(
            "cg_dir={cg}\npressure=1e-2\nreclaim_rate=+0.2\nreclaim_rate_max=1\nreclaim_rate_min=.001\nlimit_min_ratio=0.5\nlimit_min_bytes=-1\nreclaim_max_bytes=0\n"
        ),
    );
    assert_eq!(
        t.engine_keys,
        TaskEngineConf::Psi(PsiTaskConf {
            pressure: 0.01,
            reclaim_rate: 0.2,
            reclaim_rate_max: 1.0,
            reclaim_rate_min: 0.001,
            limit_min_ratio: 0.5,
            // strtoul wrap-around kept (spec B25).
            limit_min_bytes: u64::MAX,
            reclaim_max_bytes: 0,
            cg_dir: cg,
        })
    );
}

#[test]
fn damon_engine_every_action() {
    for (word, action) in [
        ("willneed", DamonAction::Willneed),
        ("cold", DamonAction::Cold),
        ("pageout", DamonAction::Pageout),
        ("hugepage", DamonAction::Hugepage),
        ("nohugepage", DamonAction::Nohugepage),
        ("stat", DamonAction::Stat),
    ] {
        let c = add(&format!(
            "[engine]\nproject=p\nname=damon\nmin_size=0\nmax_size=9223372036854775807\nmin_acc=0\nmax_acc=4294967295\nmin_age=0\nmax_age=1\naction={word}\n"
        ));
        assert_eq!(
            c.engines[0].kind,
            EngineKind::Damon(DamonEngineConf {
                min_size: 0,
                max_size: i64::MAX as u64,
                min_acc: 0,
                max_acc: u32::MAX,
                min_age: 0,
                max_age: 1,
                action
            })
        );
    }
    let (t, w) = task("damon", "");
    assert_eq!(t.engine_keys, TaskEngineConf::Damon);
    assert!(w.is_empty());
}

#[test]
fn built_in_engines_without_keys() {
    for (name, kind) in [
        ("slide", EngineKind::Slide),
        ("memdcd", EngineKind::Memdcd),
        ("psi", EngineKind::Psi),
    ] {
        let c = add(&format!("[engine]\nproject=p\nname={name}\n"));
        assert_eq!(c.engines[0].kind, kind);
        assert_eq!(c.engines[0].name(), name);
        assert_eq!(c.engines[0].kind.type_name(), name);
    }
}

#[test]
fn thirdparty_engine_and_task_keep_private_keys_raw() {
    let c = add(
        "[engine]\nproject=p\nname=thirdparty\neng_name=mine\nlibname=/l.so\nops_name=ops\nk1=a b\nk2=\\s\n[task]\nproject=p\nengine=mine\nname=t\ntype=pid\nvalue=1\nswap_flag=yes\nx=1\ny=\n",
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.engines[0].name(), "mine");
    assert_eq!(
        c.engines[0].kind,
        EngineKind::Thirdparty(ThirdpartyEngineConf {
            eng_name: "mine".into(),
            libname: "/l.so".into(),
            ops_name: "ops".into(),
            params: vec![("k1".into(), "a b".into()), ("k2".into(), "\\s".into())],
        })
    );
    assert!(c.tasks[0].swap_flag);
    assert_eq!(
        c.tasks[0].engine_keys,
        TaskEngineConf::Thirdparty(vec![("x".into(), "1".into()), ("y".into(), String::new())])
    );
    // A private key given twice is still a duplicate.
    let e = add_err("[task]\nproject=p\nengine=mine\nname=t\ntype=pid\nvalue=1\nx=1\nx=2\n");
    assert!(
        matches!(&e, ConfigError::Key { key, problem: KeyProblem::Duplicate { first_line: 7 }, .. } if key == "x"),
        "{e}"
    );
    assert_eq!(e.result(), OptResult::InterErr);
}

#[test]
fn several_sections_are_separate_objects_in_file_order() {
    let c = add(
        "[task]\nproject=p\nengine=slide\nname=a\ntype=pid\nvalue=1\nT=1\n\n[unknown]\nz=1\n[task]\nproject=p\nengine=slide\nname=b\ntype=name\nvalue=x\nT=2\n",
    );
    let names: Vec<_> = c.tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(
        c.tasks[1].pos,
        SectionPos {
            index: 1,
            line: Some(11)
        }
    );
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains("line 9: unknown section [unknown] ignored"));
}

#[test]
fn unknown_keys_warn_and_crlf_works() {
    let c =
        add("[project]\r\nname=p\r\nloop=1\r\ninterval=1\r\nsleep=1\r\nswapcache_high_vmark=3\r\n");
    assert_eq!(c.projects[0].name, "p");
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains("unknown key `swapcache_high_vmark`"));
}

#[test]
fn first_error_follows_c_add_order() {
    // An engine error and a project error: the project one is reported (C adds projects
    // first and stops at the first failure).
    let e = add_err(
        "[engine]\nproject=p\nname=bogus\n[project]\nname=p\nloop=0\ninterval=1\nsleep=1\n",
    );
    assert_eq!(e.result(), OptResult::Inval);
    assert!(e.to_string().contains("key `loop`"), "{e}");
}

#[test]
fn del_reads_identity_keys_only() {
    let ids = parse_for_del(
        "[project]\nname=p\nloop=999\n[engine]\nproject=p\nname=thirdparty\neng_name=mine\n[engine]\nproject=p\nname=nosuch\n[task]\nproject=p\nengine=slide\nname=t\nT=-1\n",
        Path::new("/t.ini"),
    )
    .expect("del ignores other keys");
    assert_eq!(ids.projects, ["p"]);
    assert_eq!(
        ids.engines,
        [
            ("p".to_string(), "mine".to_string()),
            ("p".to_string(), "nosuch".to_string())
        ]
    );
    assert_eq!(
        ids.tasks,
        [("p".to_string(), "slide".to_string(), "t".to_string())]
    );
    let e =
        parse_for_del("[task]\nproject=p\nname=t\n", Path::new("/t.ini")).expect_err("no engine");
    assert_eq!(e.result(), OptResult::Inval);
    assert!(
        e.to_string()
            .contains("key `engine`: required key is missing"),
        "{e}"
    );
    let e = parse_for_del("# nothing\n", Path::new("/t.ini")).expect_err("no section");
    assert_eq!(e.result(), OptResult::Inval);
}

#[test]
fn raw_pairs_of_every_section_in_file_order() {
    let c = add("[project]\nname=p\nloop=3\ninterval=5\nsleep=1\n\
         [engine]\nproject=p\nname=cslide\nnode_pair=0,1\nhot_threshold=2\nnode_mig_quota=10\n\
         node_hot_reserve=5\nround_quota_bytes=8192\n\
         [task]\nproject=p\nengine=slide\nname=t\ntype=pid\nvalue=1\nT=2\nswap_flag=yes\n");
    let keys = |raw: &RawParams| raw.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(
        keys(&c.projects[0].raw),
        ["name", "loop", "interval", "sleep"]
    );
    assert_eq!(
        c.engines[0].raw.last(),
        Some(&("round_quota_bytes".to_string(), "8192".to_string()))
    );
    assert_eq!(c.engines[0].round_quota_bytes, Some(8192));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(
        c.tasks[0].raw[5..],
        [
            ("T".to_string(), "2".to_string()),
            ("swap_flag".to_string(), "yes".to_string())
        ]
    );
    let e = add_err("[engine]\nproject=p\nname=slide\nround_quota_bytes=0\n");
    assert_eq!(e.result(), OptResult::InterErr);
    assert!(e.to_string().contains("round_quota_bytes"), "{e}");
}

#[test]
fn dry_run_is_yes_or_no_and_off_by_default() {
    const PAGE: &str = "loop=1\ninterval=1\nsleep=1\n";
    assert!(!project(PAGE).dry_run);
    assert!(project(&format!("{PAGE}dry_run=yes\n")).dry_run);
    assert!(!project(&format!("{PAGE}dry_run=no\n")).dry_run);
    let e = add_err(&format!("[project]\nname=p\n{PAGE}dry_run=true\n"));
    let text = e.to_string();
    assert!(
        text.contains("dry_run") && text.contains("`yes` or `no`"),
        "{text}"
    );
    // a known key: no warning about it
    let c = add(&format!("[project]\nname=p\n{PAGE}dry_run=yes\n"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn record_scans_takes_an_absolute_path_and_bounded_rounds() {
    let (t, warnings) = task(
        "slide",
        "T=1\nrecord_scans=/var/tmp/t.scans\nrecord_rounds=5\n",
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        t.record,
        Some(RecordScans {
            path: "/var/tmp/t.scans".into(),
            rounds: 5
        })
    );
    // not an engine key: a thirdparty engine never sees it
    let (t, _) = task("mine", "record_scans=/r\nk=v\n");
    assert_eq!(t.record.map(|r| r.rounds), Some(DEFAULT_RECORD_ROUNDS));
    assert_eq!(
        t.engine_keys,
        TaskEngineConf::Thirdparty(vec![("k".into(), "v".into())])
    );
    assert_eq!(task("slide", "T=1\n").0.record, None);
    let (t, _) = task(
        "mine",
        &format!("record_scans=/r\nrecord_rounds={MAX_RECORD_ROUNDS}\n"),
    );
    assert_eq!(t.record.map(|r| r.rounds), Some(MAX_RECORD_ROUNDS));

    for (extra, want) in [
        (
            "record_scans=var/t.scans\n",
            "[task] #1 (line 8): key `record_scans`: expected an absolute path of a file, such as `/var/tmp/web.scans`, found `var/t.scans`",
        ),
        ("record_scans=/var/tmp/\n", "found `/var/tmp/`"),
        (
            "record_scans=/r\nrecord_rounds=0\n",
            "key `record_rounds`: expected",
        ),
        ("record_scans=/r\nrecord_rounds=100001\n", "found `100001`"),
        ("record_scans=/r\nrecord_rounds=ten\n", "found `ten`"),
        (
            "record_rounds=3\n",
            "key `record_rounds`: `record_rounds` needs `record_scans` (the file to record to)",
        ),
    ] {
        let text = add_err(&format!("{TASK}engine=slide\nT=1\n{extra}")).to_string();
        assert!(text.contains(want), "{extra:?}: {text}");
    }
}
