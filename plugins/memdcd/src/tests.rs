//! Engine-level tests through the SDK's harness (the same glue as the exported forms).

use super::*;
use etmem_sdk::testing::{FakeHost, Harness};
use etmem_sdk::{Page, PageSize};

fn vma(start: u64, end: u64, flags: &[&str]) -> Vma {
    Vma {
        start,
        end,
        readable: true,
        writable: true,
        vm_flags: flags.iter().map(|f| f.to_string()).collect(),
        ..Vma::default()
    }
}

fn scan(pid: u32, pages: &[(u64, u8)]) -> ScanResult {
    ScanResult::from_pages(
        pid,
        2,
        pages.iter().map(|&(addr, count)| Page {
            addr,
            count,
            size: PageSize::Size4K,
        }),
    )
    .expect("valid scan")
}

fn harness(sock: &str, host: FakeHost) -> Harness<Memdcd> {
    let mut h = Harness::<Memdcd>::configure(&Params::from_pairs([("loop", "2")]), host)
        .expect("configure");
    h.new_task(
        &TaskInfo::named("p", "vm", "qemu"),
        &Params::from_pairs([("Sock", sock)]),
    )
    .expect("new task");
    h
}

const ROUND: Round = Round {
    number: 1,
    passes: 2,
};

#[test]
fn sock_is_required_and_dash_means_the_default() {
    let p = |v: &str| parse_sock(&Params::from_pairs([("Sock", v)]));
    assert_eq!(p("-").expect("-"), "@_memdcd.server");
    assert_eq!(p("@x").expect("@x"), "@x");
    assert_eq!(p("/run/m.sock").expect("path"), "/run/m.sock");
    for bad in ["", "@", &"x".repeat(108)] {
        assert!(
            matches!(p(bad), Err(EngineError::InvalidParam { .. })),
            "{bad}"
        );
    }
    assert_eq!(p(&"x".repeat(107)).expect("107").len(), 107);
    assert_eq!(
        parse_sock(&Params::new()),
        Err(EngineError::MissingParam("Sock".into()))
    );
}

#[test]
fn only_pages_in_us_vmas_are_sent_hot_and_cold_with_their_counts() {
    let host = FakeHost::new().with_vmas(
        "vm",
        7,
        vec![
            vma(0x1000, 0x3000, &["rd", "wr", "us"]),
            vma(0x3000, 0x5000, &["rd", "wr"]),
            vma(0x8000, 0x9000, &["rd", "wr", "mr", "us"]),
        ],
    );
    let mut h = harness("-", host);
    let pages = [
        (0x1000, 0),
        (0x2000, 2),
        (0x3000, 1),
        (0x4000, 0),
        (0x8000, 1),
        (0xa000, 2),
    ];
    let actions = h.plan("vm", &ROUND, &[scan(7, &pages)]).expect("plan");
    assert!(actions.is_empty());
    let lists = h.host.page_lists();
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0].task, "vm");
    assert_eq!(lists[0].sock, "@_memdcd.server");
    assert_eq!(
        lists[0].pages,
        scan(7, &[(0x1000, 0), (0x2000, 2), (0x8000, 1)])
    );
    assert!(h.host.calls().contains(&"task-smaps-vmas"));
}

#[test]
fn huge_pages_are_clipped_to_whole_pages_inside_the_vma() {
    let m2 = 2u64 << 20;
    let host = FakeHost::new().with_vmas("vm", 7, vec![vma(m2, 3 * m2 + 4096, &["us"])]);
    let mut h = harness("@s", host);
    let s = ScanResult::from_runs(
        7,
        1,
        [ScanRun {
            addr: m2,
            pages: 3,
            count: 1,
            size: PageSize::Size2M,
        }],
    )
    .expect("scan");
    h.plan("vm", &ROUND, &[s]).expect("plan");
    let lists = h.host.page_lists();
    assert_eq!(lists[0].pages.len(), 2);
    assert_eq!(lists[0].pages.addrs(), &[m2]);
}

#[test]
fn nothing_in_us_vmas_sends_nothing_and_a_gone_pid_is_skipped() {
    let host = FakeHost::new().with_vmas("vm", 7, vec![vma(0x1000, 0x9000, &["rd"])]);
    let mut h = harness("-", host);
    // pid 8 has no VMAs known to the host: skipped
    let scans = [scan(7, &[(0x1000, 1)]), scan(8, &[(0x1000, 1)])];
    assert_eq!(h.plan("vm", &ROUND, &scans), Ok(Vec::new()));
    assert!(h.host.page_lists().is_empty());
    assert!(
        h.host
            .logs()
            .iter()
            .any(|(l, m)| *l == LogLevel::Debug && m.contains("pid 8: skipped")),
        "{:?}",
        h.host.logs()
    );
}

#[test]
fn a_refused_list_fails_the_plan_after_trying_every_pid() {
    let host = FakeHost::new()
        .with_vmas("vm", 7, vec![vma(0x1000, 0x9000, &["us"])])
        .with_vmas("vm", 8, vec![vma(0x1000, 0x9000, &["us"])])
        .refusing_page_lists("memdcd at @_memdcd.server: reply `fail`");
    let mut h = harness("-", host);
    let scans = [scan(7, &[(0x1000, 1)]), scan(8, &[(0x1000, 1)])];
    let e = h.plan("vm", &ROUND, &scans).expect_err("refused");
    assert!(e.to_string().contains("reply `fail`"), "{e}");
    assert!(e.to_string().contains("and 1 more"), "{e}");
    let sends = h
        .host
        .calls()
        .iter()
        .filter(|c| **c == "send-page-list")
        .count();
    assert_eq!(sends, 2);
}
