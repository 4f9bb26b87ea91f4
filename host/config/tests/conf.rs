//! Every example in `conf/` loads through `load_for_add` (after a chmod 0600 copy, since
//! git does not keep modes) and carries the values its comments describe.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use etmem_config::*;

fn conf_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf")
}

fn load(dir: &Path, name: &str) -> ConfigFile {
    let src = conf_dir().join(name);
    let dst = dir.join(name);
    std::fs::copy(&src, &dst).expect("copy example");
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    load_for_add(dst.to_str().expect("utf-8 path"))
        .unwrap_or_else(|e| panic!("{name}: {e} ({})", e.result().text()))
}

fn check_slide(c: &ConfigFile) {
    let p = &c.projects[0];
    assert_eq!(p.name, "slide_demo");
    assert_eq!(
        p.scan,
        ScanConf::Page {
            loops: 3,
            interval: 60,
            sleep: 2
        }
    );
    assert_eq!(p.sysmem_threshold, Some(50));
    assert_eq!(p.swapcache_wmark, Some(SwapcacheWmark { high: 10, low: 6 }));
    assert_eq!(c.engines[0].kind, EngineKind::Slide);
    assert_eq!(c.engines[0].project, "slide_demo");
    let t = &c.tasks[0];
    assert_eq!(
        (t.project.as_str(), t.engine.as_str()),
        ("slide_demo", "slide")
    );
    assert_eq!(t.target, TaskTarget::Name("mysqld".into()));
    assert_eq!(t.max_threads, 2);
    assert!(!t.swap_flag);
    assert_eq!(
        t.engine_keys,
        TaskEngineConf::Slide(SlideTaskConf {
            t: 2,
            swap_threshold_kb: Some(10 << 20),
            dram_percent: Some(80),
        })
    );
}

fn check_cslide(c: &ConfigFile) {
    assert_eq!(
        c.projects[0].scan,
        ScanConf::Page {
            loops: 3,
            interval: 10,
            sleep: 1
        }
    );
    assert_eq!(
        c.engines[0].kind,
        EngineKind::Cslide(CslideEngineConf {
            node_pairs: vec![(0, 2), (1, 3)],
            hot_threshold: 2,
            node_mig_quota_mb: 1024,
            node_hot_reserve_mb: 1024,
        })
    );
    assert_eq!(c.tasks[0].target, TaskTarget::Pid("1".into()));
    assert_eq!(
        c.tasks[0].engine_keys,
        TaskEngineConf::Cslide(CslideTaskConf {
            anon_only: false,
            ign_host: false
        })
    );
}

fn check_memdcd(c: &ConfigFile) {
    assert_eq!(c.engines[0].kind, EngineKind::Memdcd);
    assert_eq!(c.tasks[0].target, TaskTarget::Name("redis-server".into()));
    assert_eq!(
        c.tasks[0].engine_keys,
        TaskEngineConf::Memdcd(MemdcdTaskConf {
            sock: "@_memdcd.server".into()
        })
    );
}

fn check_damon(c: &ConfigFile) {
    assert_eq!(
        c.projects[0].scan,
        ScanConf::Region {
            sample_interval: 5000,
            aggr_interval: 100_000,
            update_interval: 1_000_000,
            min_nr_regions: 10,
            max_nr_regions: 1000,
        }
    );
    assert_eq!(
        c.engines[0].kind,
        EngineKind::Damon(DamonEngineConf {
            min_size: 4096,
            max_size: 1 << 30,
            min_acc: 0,
            max_acc: 0,
            min_age: 10,
            max_age: u32::MAX,
            action: DamonAction::Pageout,
        })
    );
    assert_eq!(c.tasks[0].engine_keys, TaskEngineConf::Damon);
}

fn check_psi(c: &ConfigFile) {
    assert_eq!(c.projects[0].scan, ScanConf::Psi { interval: 10 });
    assert_eq!(c.engines[0].kind, EngineKind::Psi);
    assert_eq!(
        c.tasks[0].engine_keys,
        TaskEngineConf::Psi(PsiTaskConf {
            pressure: 0.1,
            reclaim_rate: 0.05,
            reclaim_rate_max: 0.5,
            reclaim_rate_min: 0.01,
            limit_min_ratio: 0.1,
            limit_min_bytes: 100 << 20,
            reclaim_max_bytes: 512 << 20,
            cg_dir: "batch/*".into(),
        })
    );
}

fn check_thirdparty(c: &ConfigFile) {
    assert_eq!(
        c.engines[0].kind,
        EngineKind::Thirdparty(ThirdpartyEngineConf {
            eng_name: "idle_swap".into(),
            libname: "libidle_swap.so".into(),
            ops_name: "idle_swap".into(),
            params: vec![],
        })
    );
    assert_eq!(c.engines[0].name(), "idle_swap");
    assert_eq!(c.tasks[0].engine, "idle_swap");
    assert_eq!(
        c.tasks[0].engine_keys,
        TaskEngineConf::Thirdparty(vec![("idle_rounds".into(), "3".into())])
    );
}

/// The ```ini blocks of `path` (relative to the repository), in order.
fn ini_blocks(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(path),
    )
    .unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut blocks = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        match (&mut cur, line.trim_end()) {
            (None, "```ini") => cur = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                cur = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn the_sdk_readme_ini_loads_as_pasted_with_its_values() {
    let blocks = ini_blocks("sdk/README.md");
    assert_eq!(blocks.len(), 1, "one ini block in sdk/README.md");
    let c = parse_for_add(&blocks[0], Path::new("/pasted.ini"))
        .unwrap_or_else(|e| panic!("the README's ini: {e}"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(
        c.engines[0].kind,
        EngineKind::Thirdparty(ThirdpartyEngineConf {
            eng_name: "my_engine".into(),
            libname: "libswap_idle.so".into(),
            ops_name: "swap_idle".into(),
            params: vec![],
        })
    );
    assert_eq!(
        c.tasks[0].engine_keys,
        TaskEngineConf::Thirdparty(vec![("min_pages".into(), "16".into())])
    );
}

#[test]
fn every_example_in_conf_loads_with_its_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(conf_dir()).expect("conf/ exists") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().into_string().expect("utf-8 name");
        // Unit files and the like are not etmem configs.
        if name.ends_with(".service") || name.ends_with(".md") || !entry.path().is_file() {
            continue;
        }
        let c = load(dir.path(), &name);
        assert!(c.warnings.is_empty(), "{name}: {:?}", c.warnings);
        assert_eq!(
            (c.projects.len(), c.engines.len(), c.tasks.len()),
            (1, 1, 1),
            "{name}"
        );
        match name.as_str() {
            "slide.ini" => check_slide(&c),
            "cslide.ini" => check_cslide(&c),
            "memdcd.ini" => check_memdcd(&c),
            "damon.ini" => check_damon(&c),
            "psi.ini" => check_psi(&c),
            "thirdparty.ini" => check_thirdparty(&c),
            other => panic!("conf/{other}: add its expected values to this test"),
        }
        seen.push(name);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "cslide.ini",
            "damon.ini",
            "memdcd.ini",
            "psi.ini",
            "slide.ini",
            "thirdparty.ini"
        ]
    );
}

#[test]
fn every_example_also_parses_for_del() {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = "thirdparty.ini";
    load(dir.path(), name);
    let ids = load_for_del(dir.path().join(name).to_str().expect("utf-8")).expect("del ids");
    assert_eq!(ids.projects, ["plugin_demo"]);
    assert_eq!(
        ids.engines,
        [("plugin_demo".to_string(), "idle_swap".to_string())]
    );
    assert_eq!(
        ids.tasks,
        [(
            "plugin_demo".to_string(),
            "idle_swap".to_string(),
            "nginx_workers".to_string()
        )]
    );
}
