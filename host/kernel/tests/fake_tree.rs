//! Trackers, actions, process handles and the probe against the FakeKernel's temp tree
//! (the DAMON tracker's own tests are in `fake_damon.rs`). Nothing here writes to the real
//! /proc or /sys.

mod common;

use common::{fake_with, map_for};
use etmem_kernel::fake::FakeKdamond;
use etmem_kernel::parse::idle_pages::StreamItem::{Addr, Rec};
use etmem_kernel::parse::idle_pages::encode_stream;
use etmem_kernel::track;
use etmem_kernel::{
    FailReason, FakeKernel, FakeProcess, HugePool, Kernel, PageActionError, PageRef, ProcessError,
    RecordedCall, SwapMethod, SwapcacheWmark, TrackError, TrackerChoice, TrackerKind, VmaFilter,
};

const K: u64 = 4096;
const PRESENT: u64 = 1 << 63;
const SWAPPED: u64 = 1 << 62;
const SOFT_DIRTY: u64 = 1 << 55;

#[test]
fn process_handle_sees_exit_and_reuse() {
    let f = fake_with(42, 0x10000, 0x20000);
    let h = f.open_process(42).expect("open");
    assert_eq!(h.pid(), 42);
    assert_eq!(h.start_time(), 1000);
    assert!(h.pidfd().is_none(), "no pidfd over a fake tree");
    h.check().expect("alive");
    f.recycle_process(42, 2000).expect("recycle");
    let e = h.check().expect_err("must fail");
    assert!(
        matches!(
            e,
            ProcessError::Recycled {
                pid: 42,
                expected: 1000,
                found: 2000
            }
        ),
        "{e}"
    );
    assert!(e.is_gone());
    // every action and read on the old handle is refused as gone
    let page = [PageRef {
        addr: 0x10000,
        size: K,
    }];
    assert!(
        f.swap_out(&h, &page, u64::MAX, SwapMethod::Auto)
            .expect_err("must fail")
            .is_gone()
    );
    assert!(
        f.migrate(&h, &page, 1, u64::MAX)
            .expect_err("must fail")
            .is_gone()
    );
    assert!(
        f.vmas(&h, &VmaFilter::default())
            .expect_err("must fail")
            .is_gone()
    );
    assert!(f.calls().is_empty(), "nothing recorded for a recycled pid");
    f.remove_process(42).expect("rm");
    assert!(matches!(h.check(), Err(ProcessError::Gone { pid: 42 })));
    assert!(matches!(
        f.open_process(42),
        Err(ProcessError::Gone { pid: 42 })
    ));
}

#[test]
fn live_handle_uses_pidfd_and_sees_exit() {
    let k = etmem_kernel::LinuxKernel::default();
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    let h = k.open_process(child.id()).expect("open child");
    assert!(h.pidfd().is_some());
    h.check().expect("alive");
    child.kill().expect("kill");
    child.wait().expect("wait");
    assert!(matches!(h.check(), Err(ProcessError::Gone { .. })));
}

#[test]
fn live_page_nodes_query_of_our_own_pages() {
    // move_pages with no node list only reads where our own pages are
    let k = etmem_kernel::LinuxKernel::default();
    let me = k.open_process(std::process::id()).expect("self");
    let buf = vec![7u8; 4 * 4096];
    let addr = (buf.as_ptr() as u64 + 4095) & !4095;
    let nodes = k.page_nodes(&me, &[addr]).expect("query");
    let online = k.numa_nodes().expect("nodes");
    match nodes[0] {
        Ok(n) => assert!(online.contains(&n), "node {n} not in {online:?}"),
        Err(e) => panic!("our own written page has no node: {e}"),
    }
}

#[test]
fn vmas_status_and_filters() {
    let f = FakeKernel::new().expect("fake");
    let mut p = FakeProcess::new(7, "svc")
        .anon(0x10000, 0x20000)
        .anon(0x400000, 0x800000);
    p.vmas[1]
        .vm_flags
        .as_mut()
        .expect("flags")
        .push("ht".into());
    p.vm_rss_kb = 1234;
    p.vm_swap_kb = 5;
    f.add_process(&p).expect("add");
    let h = f.open_process(7).expect("open");
    assert_eq!(f.vmas(&h, &VmaFilter::default()).expect("maps").len(), 2);
    let ht = f
        .vmas(
            &h,
            &VmaFilter {
                anon_only: true,
                vm_flags: vec!["ht".into()],
                ..Default::default()
            },
        )
        .expect("smaps");
    assert_eq!(ht.len(), 1);
    assert_eq!(ht[0].start, 0x400000);
    let st = f.status(&h).expect("status");
    assert_eq!((st.vm_rss_kb, st.vm_swap_kb), (Some(1234), Some(5)));
    assert_eq!(f.meminfo().expect("meminfo").mem_total_kb, Some(1_048_576));
    f.set_nodes(&[0, 1], 524288, 1000).expect("nodes");
    assert_eq!(f.numa_nodes().expect("nodes"), vec![0, 1]);
    assert_eq!(f.node_meminfo(1).expect("node1").mem_free_kb, Some(1000));
}

#[test]
fn node_huge_page_pools_of_every_size() {
    let f = fake_with(10, 0x10000, 0x20000);
    f.set_nodes(&[0, 1], 524288, 1000).expect("nodes");
    // no hugepages directory: no pool (a kernel without hugetlbfs)
    assert_eq!(f.node_hugepages(0).expect("node0"), vec![]);
    f.set_node_hugepages(0, 2048, 16, 3).expect("2M");
    f.set_node_hugepages(0, 1048576, 1, 1).expect("1G");
    f.set_node_hugepages(1, 2048, 8, 8).expect("2M");
    // something else in the directory is not a pool
    f.write_sys("devices/system/node/node1/hugepages/README", "x")
        .expect("stray file");
    let pool = |size_kb, total, free| HugePool {
        size_kb,
        total,
        free,
    };
    assert_eq!(
        f.node_hugepages(0).expect("node0"),
        vec![pool(2048, 16, 3), pool(1048576, 1, 1)]
    );
    assert_eq!(f.node_hugepages(1).expect("node1"), vec![pool(2048, 8, 8)]);
    // a counter that is not a number names the file
    f.write_sys(
        "devices/system/node/node1/hugepages/hugepages-2048kB/free_hugepages",
        "lots\n",
    )
    .expect("bad counter");
    let e = f.node_hugepages(1).expect_err("bad counter").to_string();
    assert!(
        e.contains("node1/hugepages/hugepages-2048kB/free_hugepages") && e.contains("`lots`"),
        "{e}"
    );
}

#[test]
fn soft_dirty_tracker_counts_written_pages() {
    let f = fake_with(10, 0x10000, 0x20000);
    f.enable_soft_dirty().expect("sd");
    let mut entries = vec![0u64; 16];
    for e in &mut entries[0..4] {
        *e = PRESENT | SOFT_DIRTY | 0x100;
    }
    for e in &mut entries[4..8] {
        *e = PRESENT | 0x200;
    }
    entries[8] = SWAPPED;
    f.set_pagemap(10, 0x10000, &entries).expect("pagemap");
    let h = f.open_process(10).expect("open");
    let mut t = f.tracker(TrackerChoice::Auto).expect("auto");
    assert_eq!(t.kind(), TrackerKind::SoftDirty);
    let mut m = map_for(&f, &h);
    assert!(matches!(t.pass(&h, &mut m), Err(TrackError::NotStarted(_))));
    t.start(&h, &m).expect("start");
    let clear_refs = f.proc_root().join("10/clear_refs");
    assert_eq!(std::fs::read_to_string(&clear_refs).expect("read"), "4");
    std::fs::write(&clear_refs, "").expect("reset");
    t.pass(&h, &mut m).expect("pass");
    t.pass(&h, &mut m).expect("pass");
    assert_eq!(
        std::fs::read_to_string(&clear_refs).expect("read"),
        "4",
        "cleared after each pass"
    );
    assert_eq!(m.passes(), 2);
    assert_eq!(m.get(0x10000), Some(2));
    assert_eq!(m.get(0x13000), Some(2));
    assert_eq!(m.get(0x14000), Some(0));
    assert_eq!(
        m.get(0x18000),
        None,
        "swapped pages are not tracked as present"
    );
    assert_eq!(m.get(0x1f000), None);
    t.stop().expect("stop");
}

#[test]
fn page_idle_tracker_marks_and_reads_the_bitmap() {
    let f = fake_with(11, 0x10000, 0x18000);
    f.enable_page_idle(64).expect("bitmap");
    let entries: Vec<u64> = (0..8).map(|i| PRESENT | (100 + i)).collect();
    f.set_pagemap(11, 0x10000, &entries).expect("pagemap");
    let h = f.open_process(11).expect("open");
    let mut t = f
        .tracker(TrackerChoice::Only(TrackerKind::PageIdle))
        .expect("page_idle");
    let mut m = map_for(&f, &h);
    t.start(&h, &m).expect("start");
    let bitmap = f.sys_root().join("kernel/mm/page_idle/bitmap");
    let word = |b: &[u8]| u64::from_ne_bytes(b[8..16].try_into().expect("8 bytes"));
    let b = std::fs::read(&bitmap).expect("read");
    assert_eq!(word(&b), 0xFF << (100 - 64), "exactly our PFNs marked idle");
    assert_eq!(&b[..8], &[0u8; 8], "no other word written");
    // the "kernel" clears the idle bit of PFN 101 (page 1 accessed)
    let mut b2 = b.clone();
    b2[8..16].copy_from_slice(&(word(&b) & !(1 << (101 - 64))).to_ne_bytes());
    std::fs::write(&bitmap, &b2).expect("write");
    t.pass(&h, &mut m).expect("pass");
    assert_eq!(m.get(0x10000), Some(0));
    assert_eq!(m.get(0x11000), Some(1));
    assert_eq!(
        word(&std::fs::read(&bitmap).expect("read")),
        0xFF << 36,
        "re-marked"
    );
}

#[test]
fn idle_pages_tracker_loops_until_the_vma_end() {
    let start = 0x200000u64;
    let end = 0x600000u64;
    let f = fake_with(12, start, end);
    f.enable_idle_pages().expect("idle_pages");
    // first read: 15 accessed + 15 idle pages, then the kernel's buffer "filled"
    let s1 = encode_stream(&[Addr(start), Rec(0, 15), Rec(5, 15)]);
    let mid = start + 30 * K;
    // second read at `mid`: 2 dirty pages, then a jump to a PMD of idle PTEs
    let s2 = encode_stream(&[Addr(mid), Rec(3, 2), Rec(8, 3), Addr(0x400000), Rec(7, 1)]);
    f.write_at(12, "idle_pages", start, &s1).expect("s1");
    f.write_at(12, "idle_pages", mid, &s2).expect("s2");
    let h = f.open_process(12).expect("open");
    let mut t = f.tracker(TrackerChoice::Auto).expect("auto");
    assert_eq!(t.kind(), TrackerKind::IdlePages);
    let mut m = map_for(&f, &h);
    t.start(&h, &m).expect("start");
    t.pass(&h, &mut m).expect("pass");
    assert_eq!(m.get(start), Some(1));
    assert_eq!(m.get(start + 14 * K), Some(1));
    assert_eq!(m.get(start + 15 * K), Some(0));
    assert_eq!(
        m.get(mid),
        Some(3),
        "dirty weight 3, from the second read (B20)"
    );
    assert_eq!(m.get(mid + K), Some(3));
    assert_eq!(m.get(mid + 2 * K), None, "hole");
    assert_eq!(m.get(0x400000), Some(0));
    assert_eq!(
        m.get(0x5ff000),
        Some(0),
        "PMD_IDLE_PTES expanded to 512 pages"
    );
    let idle = m.iter().filter(|p| p.count == 0).count();
    assert_eq!(idle, 15 + 512);
}

#[test]
fn scan_flags_go_to_idle_pages_and_swap_flag_is_refused_elsewhere() {
    use etmem_kernel::ScanFlags;
    use etmem_kernel::track::{SCAN_AS_HUGE, SCAN_IGN_HOST, VMA_SCAN_FLAG};
    let f = fake_with(14, 0x200000, 0x300000);
    f.enable_idle_pages().expect("idle_pages");
    f.enable_soft_dirty().expect("soft-dirty");
    let s = encode_stream(&[Addr(0x200000), Rec(0, 1)]);
    f.write_at(14, "idle_pages", 0x200000, &s).expect("stream");
    let h = f.open_process(14).expect("open");
    // idle_pages takes every flag and sends it on the pass's open: the fake's regular
    // file answers the ioctl with ENOTTY, which shows it was sent
    let mut t = f.tracker(TrackerChoice::Auto).expect("auto");
    assert_eq!(t.kind(), TrackerKind::IdlePages);
    let all = ScanFlags {
        scan: SCAN_AS_HUGE | SCAN_IGN_HOST,
        vma: VMA_SCAN_FLAG,
    };
    t.set_scan_flags(all).expect("idle_pages takes them");
    let mut m = map_for(&f, &h);
    t.start(&h, &m).expect("start");
    let e = t.pass(&h, &mut m).expect_err("ioctl on a regular file");
    assert!(e.to_string().starts_with("ioctl "), "{e}");
    t.set_scan_flags(ScanFlags::default()).expect("none");
    t.pass(&h, &mut m).expect("no flags: no ioctl");
    // soft-dirty: swap_flag refused with the reason, the scan flags kept to what it can do
    let mut t = f
        .tracker(TrackerChoice::Only(TrackerKind::SoftDirty))
        .expect("soft-dirty");
    let e = t
        .set_scan_flags(ScanFlags {
            scan: 0,
            vma: VMA_SCAN_FLAG,
        })
        .expect_err("swap_flag needs idle_pages");
    assert!(e.to_string().contains("MADV_SWAPFLAG"), "{e}");
    t.set_scan_flags(ScanFlags {
        scan: SCAN_AS_HUGE | SCAN_IGN_HOST,
        vma: 0,
    })
    .expect("huge and ign_host are not refused");
}

#[test]
fn idle_pages_garbage_is_a_decode_error() {
    let f = fake_with(13, 0x200000, 0x300000);
    f.enable_idle_pages().expect("idle_pages");
    f.write_at(13, "idle_pages", 0x200000, &[0x01, 0x02])
        .expect("w");
    let h = f.open_process(13).expect("open");
    let mut t = f.tracker(TrackerChoice::Auto).expect("auto");
    let mut m = map_for(&f, &h);
    t.start(&h, &m).expect("start");
    let e = t.pass(&h, &mut m).expect_err("must fail");
    assert!(e.to_string().contains("parse address fail"), "{e}");
}

#[test]
fn choose_names_what_is_missing() {
    let f = fake_with(30, 0x10000, 0x20000);
    let e = f.tracker(TrackerChoice::Auto).expect_err("must fail");
    let msg = e.to_string();
    for needle in [
        "idle_pages",
        "CONFIG_IDLE_PAGE_TRACKING",
        "CONFIG_DAMON_SYSFS",
        "softdirty",
    ] {
        assert!(msg.contains(needle), "{msg}");
    }
    let e = f
        .tracker(TrackerChoice::Only(TrackerKind::PageIdle))
        .expect_err("must fail");
    assert!(
        matches!(
            e,
            TrackError::Unavailable {
                kind: TrackerKind::PageIdle,
                ..
            }
        ),
        "{e}"
    );
    f.add_damon(&[], 1).expect("damon");
    f.enable_soft_dirty().expect("sd");
    assert_eq!(
        f.tracker(TrackerChoice::Auto).expect("auto").kind(),
        TrackerKind::Damon
    );
    f.enable_page_idle(8).expect("pi");
    assert_eq!(
        f.tracker(TrackerChoice::Auto).expect("auto").kind(),
        TrackerKind::PageIdle
    );
    assert_eq!(
        track::availability(f.linux(), TrackerKind::SoftDirty),
        Ok(())
    );
}

#[test]
fn fake_records_swaps_and_migrations_after_validation() {
    let f = fake_with(40, 0x10000, 0x20000);
    let h = f.open_process(40).expect("open");
    let pages = [
        PageRef {
            addr: 0x10000,
            size: K,
        },
        PageRef {
            addr: 0x11000,
            size: K,
        },
        PageRef {
            addr: 0x90000,
            size: K,
        },
        PageRef {
            addr: 0x12000,
            size: K,
        },
    ];
    let rep = f
        .swap_out(&h, &pages, 2 * K, SwapMethod::Pageout)
        .expect("swap");
    assert_eq!(rep.requested_pages, 4);
    assert_eq!(rep.done_pages, 2);
    assert_eq!(rep.failed.get(&FailReason::OutsideVma), Some(&1));
    assert_eq!(rep.failed.get(&FailReason::OverQuota), Some(&1));
    let calls = f.swap_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].pid, 40);
    assert_eq!(calls[0].method, SwapMethod::Pageout);
    assert_eq!(calls[0].pages, pages[..2].to_vec());
    let rep = f.migrate(&h, &pages[1..2], 1, u64::MAX).expect("migrate");
    assert_eq!(rep.done_pages, 1);
    assert_eq!(f.migrate_calls()[0].node, 1);
    let nodes = f.page_nodes(&h, &[0x10000, 0x11000]).expect("nodes");
    assert_eq!(nodes, vec![Ok(0), Ok(1)]);
    assert_eq!(f.calls().len(), 3);
}

#[test]
fn swap_skips_mlocked_vmas_but_migration_does_not() {
    let f = FakeKernel::new().expect("fake");
    let mut p = FakeProcess::new(41, "db")
        .anon(0x10000, 0x20000)
        .anon(0x30000, 0x40000);
    // the first VMA is mlock()ed: `lo` in VmFlags, and status says VmLck: 64 kB
    p.vmas[0]
        .vm_flags
        .as_mut()
        .expect("flags")
        .push("lo".into());
    f.add_process(&p).expect("add");
    let h = f.open_process(41).expect("open");
    assert_eq!(f.status(&h).expect("status").vm_lck_kb, Some(64));
    let pages = [
        PageRef {
            addr: 0x10000,
            size: K,
        },
        PageRef {
            addr: 0x30000,
            size: K,
        },
    ];
    let rep = f
        .swap_out(&h, &pages, u64::MAX, SwapMethod::Pageout)
        .expect("swap");
    assert_eq!(rep.done_pages, 1, "{rep:?}");
    assert_eq!(rep.failed.get(&FailReason::Locked), Some(&1), "{rep:?}");
    assert_eq!(f.swap_calls()[0].pages, pages[1..].to_vec());
    let rep = f.migrate(&h, &pages, 1, u64::MAX).expect("migrate");
    assert_eq!(rep.done_pages, 2, "{rep:?}");
}

#[test]
fn swapcache_reclaim_needs_swap_pages_and_sends_both_ioctls() {
    let w = SwapcacheWmark::new(10, 30).expect("10 < 30");
    // upstream kernel (no swap_pages): unavailable, naming the module; nothing recorded
    let f = fake_with(43, 0x10000, 0x20000);
    let h = f.open_process(43).expect("open");
    for r in [
        f.linux().reclaim_swapcache(&h, w),
        f.reclaim_swapcache(&h, w),
    ] {
        match r {
            Err(e @ PageActionError::SwapcacheUnavailable(_)) => {
                assert!(e.to_string().contains("etmem_swap"), "{e}");
            }
            other => panic!("expected unavailable, got {other:?}"),
        }
    }
    assert!(f.calls().is_empty(), "{:?}", f.calls());
    // with swap_pages: the fake records the watermarks; the real code opens the file and
    // issues SET_SWAPCACHE_WMARK first (a regular file answers ENOTTY to any ioctl)
    f.write_proc("43/swap_pages", "").expect("swap_pages");
    f.reclaim_swapcache(&h, w).expect("recorded");
    assert_eq!(
        f.calls(),
        vec![RecordedCall::ReclaimSwapcache { pid: 43, wmark: w }]
    );
    match f.linux().reclaim_swapcache(&h, w) {
        Err(PageActionError::Syscall { pid, call, source }) => {
            assert_eq!((pid, call), (43, "ioctl SET_SWAPCACHE_WMARK"));
            assert_eq!(source.raw_os_error(), Some(libc::ENOTTY), "{source}");
        }
        other => panic!("expected the ioctl to fail on a regular file, got {other:?}"),
    }
}

#[test]
fn swap_pages_file_gets_whole_lines() {
    let f = fake_with(41, 0x10000, 0x10000 + 500 * K);
    f.write_proc("41/swap_pages", "").expect("swap_pages");
    let h = f.open_process(41).expect("open");
    let pages: Vec<PageRef> = (0..450)
        .map(|i| PageRef {
            addr: 0x10000 + i * K,
            size: K,
        })
        .collect();
    let k = f.linux();
    let rep = k
        .swap_out(&h, &pages, u64::MAX, SwapMethod::Auto)
        .expect("swap");
    assert_eq!(rep.method, "swap_pages");
    assert_eq!(rep.done_pages, 450);
    let text = std::fs::read_to_string(f.proc_root().join("41/swap_pages")).expect("read");
    let got: Vec<&str> = text.lines().collect();
    assert_eq!(got.len(), 450);
    assert_eq!(got[0], "0x10000");
    assert_eq!(got[449], format!("{:#x}", 0x10000 + 449 * K));
    // no swap_pages file: explicit method fails, syscalls refuse on a fake tree
    let f2 = fake_with(42, 0x10000, 0x20000);
    let h2 = f2.open_process(42).expect("open");
    let one = [PageRef {
        addr: 0x10000,
        size: K,
    }];
    assert!(matches!(
        f2.linux()
            .swap_out(&h2, &one, u64::MAX, SwapMethod::SwapPages),
        Err(PageActionError::Unavailable(_))
    ));
    assert!(matches!(
        f2.linux().swap_out(&h2, &one, u64::MAX, SwapMethod::Auto),
        Err(PageActionError::NotLive("process_madvise"))
    ));
    assert!(matches!(
        f2.linux().migrate(&h2, &one, 1, u64::MAX),
        Err(PageActionError::NotLive(_))
    ));
}

#[test]
fn probe_reports_reasons() {
    let f = fake_with(50, 0x10000, 0x20000);
    f.enable_soft_dirty().expect("sd");
    let rep = etmem_kernel::probe(f.linux());
    let text = rep.to_string();
    assert!(text.contains("tracker softdirty: available"), "{text}");
    assert!(
        text.contains("tracker idle_pages: missing: no /proc/PID/idle_pages"),
        "{text}"
    );
    assert!(
        text.contains("tracker page_idle: missing: no /sys/kernel/mm/page_idle/bitmap"),
        "{text}"
    );
    assert!(
        text.contains("tracker damon: missing: no /sys/kernel/mm/damon/admin"),
        "{text}"
    );
    assert!(text.contains("action swap_pages: missing"), "{text}");
    assert!(text.contains("action swap space: missing"), "{text}");
    assert!(text.starts_with("kernel 6.12.0-fake"), "{text}");
    assert_eq!(rep.auto_tracker(), Some(TrackerKind::SoftDirty));
    f.add_damon(
        &[FakeKdamond {
            running: true,
            nr_contexts: 1,
        }],
        0,
    )
    .expect("damon");
    let rep = etmem_kernel::probe(f.linux());
    let damon = rep
        .tracker(TrackerKind::Damon)
        .expect("damon")
        .clone()
        .expect_err("must fail");
    assert!(damon.contains("running and is not ours"), "{damon}");
    // the bulk read of DAMON's regions: missing without tracefs' damon event, then there
    let trace = rep
        .aid("damon_trace")
        .expect("aid")
        .clone()
        .expect_err("no tracefs");
    assert!(
        trace.contains("no tracefs with the damon:damon_aggregated event"),
        "{trace}"
    );
    let tr = f.sys_root().join("kernel/tracing");
    std::fs::create_dir_all(tr.join("events/damon/damon_aggregated")).expect("event");
    std::fs::create_dir_all(tr.join("instances")).expect("instances");
    let rep = etmem_kernel::probe(f.linux());
    assert_eq!(rep.aid("damon_trace"), Some(&Ok(())));
    assert!(
        rep.to_string().contains("aid damon_trace: available"),
        "{rep}"
    );
}

#[test]
fn probe_of_this_machine_lists_everything() {
    let rep = etmem_kernel::probe(&etmem_kernel::LinuxKernel::default());
    assert_eq!(rep.trackers.len(), 4);
    for a in ["swap_pages", "process_madvise", "move_pages", "swap space"] {
        assert!(rep.action(a).is_some(), "{a}");
    }
    assert!(!rep.nodes.is_empty());
}
