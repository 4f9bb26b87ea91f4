use super::*;

fn vma(start: u64, end: u64) -> etmem_kernel::Vma {
    etmem_kernel::Vma {
        start,
        end,
        ..etmem_kernel::Vma::default()
    }
}

/// Pages passed, the first refusals, refusals per reason.
type Checked = (
    Vec<PageRef>,
    Vec<(u64, String)>,
    BTreeMap<&'static str, u64>,
);

/// Every chunk of `runs`, the pages passed, and the refusals (first few, per reason).
fn check_pages(runs: &[PageRun], vmas: &[etmem_kernel::Vma], budget: &mut Option<u64>) -> Checked {
    let mut c = PageChecker::new(runs, vmas);
    let mut ok = Vec::new();
    loop {
        let chunk = c.next_chunk(budget);
        if chunk.is_empty() {
            break;
        }
        assert!(chunk.len() <= CHUNK_PAGES);
        ok.extend(chunk);
    }
    (ok, c.refusals.first, c.refusals.by_reason)
}

/// The page-by-page reference: each page of each run checked on its own.
fn reference(
    runs: &[PageRun],
    vmas: &[etmem_kernel::Vma],
    budget: &mut Option<u64>,
) -> (Vec<PageRef>, BTreeMap<&'static str, u64>) {
    let mut ok = Vec::new();
    let mut by = BTreeMap::new();
    for r in runs {
        let size = r.size.bytes();
        for k in 0..u64::from(r.pages) {
            let why = match r.addr.checked_add(k * size) {
                None => Some(OUTSIDE),
                Some(a) if a % size != 0 => Some(NOT_ALIGNED),
                Some(a) if !vmas.iter().any(|v| v.contains_range(a, size)) => Some(OUTSIDE),
                Some(_) if budget.is_some_and(|b| b < size) => Some(OVER_QUOTA),
                Some(a) => {
                    if let Some(b) = budget {
                        *b -= size;
                    }
                    ok.push(PageRef { addr: a, size });
                    None
                }
            };
            if let Some(w) = why {
                *by.entry(w).or_default() += 1;
            }
        }
    }
    (ok, by)
}

#[test]
fn pages_are_checked_for_alignment_vmas_and_quota() {
    let vmas = [vma(0x10000, 0x14000)];
    let mut budget = Some(2 * 4096);
    let runs: Vec<PageRun> = [0x10000, 0x10001, 0x20000, 0x11000, 0x12000]
        .into_iter()
        .map(|a| PageRun::single(a, PageSize::Size4K))
        .collect();
    let (ok, refused, by) = check_pages(&runs, &vmas, &mut budget);
    assert_eq!(
        ok,
        vec![
            PageRef {
                addr: 0x10000,
                size: 4096
            },
            PageRef {
                addr: 0x11000,
                size: 4096
            }
        ]
    );
    let why: Vec<(u64, &str)> = refused.iter().map(|(a, w)| (*a, w.as_str())).collect();
    assert_eq!(
        why,
        vec![
            (0x10001, "not aligned to its page size (4096 bytes)"),
            (0x20000, "outside the process's VMAs"),
            (0x12000, "over the round's byte quota"),
        ]
    );
    assert_eq!(by.values().sum::<u64>(), 3);
    assert_eq!(budget, Some(0));
}

#[test]
fn a_long_run_goes_to_the_kernel_in_bounded_chunks() {
    let pages = 3 * CHUNK_PAGES as u32 + 100;
    let vmas = [vma(0x1000_0000, 0x1000_0000 + u64::from(pages) * 4096)];
    let runs = [PageRun {
        addr: 0x1000_0000,
        pages,
        size: PageSize::Size4K,
    }];
    let mut c = PageChecker::new(&runs, &vmas);
    let mut none = None;
    let sizes: Vec<usize> = std::iter::from_fn(|| {
        let chunk = c.next_chunk(&mut none);
        (!chunk.is_empty()).then_some(chunk.len())
    })
    .collect();
    assert_eq!(sizes, [CHUNK_PAGES, CHUNK_PAGES, CHUNK_PAGES, 100]);
    // an engine naming 4G pages outside every VMA costs a few steps, not one per page
    let far = [PageRun {
        addr: 0x7000_0000_0000,
        pages: u32::MAX,
        size: PageSize::Size4K,
    }];
    let (ok, first, by) = check_pages(&far, &vmas, &mut none);
    assert!(ok.is_empty());
    assert_eq!(first.len(), 1);
    assert_eq!(by.get(OUTSIDE), Some(&u64::from(u32::MAX)));
}

#[test]
fn run_checks_agree_with_page_by_page_checks_on_random_runs() {
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};
    let mut rng = StdRng::seed_from_u64(11);
    for case in 0..400 {
        let base = 0x4000_0000u64;
        // VMAs of 1..200 pages with gaps, some 2 MiB aligned
        let mut vmas = Vec::new();
        let mut at = base;
        for _ in 0..rng.random_range(1..6) {
            at += rng.random_range(0..3u64) * (2 << 20) + rng.random_range(0..4u64) * 4096;
            let len = rng.random_range(1..200u64) * 4096 + rng.random_range(0..2u64) * (2 << 20);
            vmas.push(vma(at, at + len));
            at += len;
        }
        let mut runs = Vec::new();
        for _ in 0..rng.random_range(0..12) {
            let huge = rng.random_bool(0.2);
            let size = if huge {
                PageSize::Size2M
            } else {
                PageSize::Size4K
            };
            let mut addr = base + rng.random_range(0..(at - base + (4 << 20)) / 4096) * 4096;
            if huge && rng.random_bool(0.7) {
                addr &= !((2 << 20) - 1);
            }
            if rng.random_bool(0.05) {
                addr += 1;
            }
            if rng.random_bool(0.02) {
                addr = u64::MAX - 3 * 4096 + 1;
            }
            runs.push(PageRun {
                addr,
                pages: rng.random_range(1..300),
                size,
            });
        }
        let budget = rng
            .random_bool(0.5)
            .then(|| rng.random_range(0..400u64) * 4096);
        let (mut b1, mut b2) = (budget, budget);
        let (ok, _, by) = check_pages(&runs, &vmas, &mut b1);
        let (want, want_by) = reference(&runs, &vmas, &mut b2);
        assert_eq!(
            ok, want,
            "case {case}: {runs:x?} in {vmas:x?}, budget {budget:?}"
        );
        assert_eq!(
            by, want_by,
            "case {case}: {runs:x?} in {vmas:x?}, budget {budget:?}"
        );
        assert_eq!(b1, b2, "case {case}");
    }
}

#[test]
fn system_facts_carry_every_huge_page_pool_of_each_node() {
    let fake = Arc::new(etmem_kernel::FakeKernel::new().expect("fake"));
    fake.set_nodes(&[0, 1], 1 << 20, 1 << 19).expect("nodes");
    fake.set_node_hugepages(0, 2048, 16, 4).expect("2M node0");
    fake.set_node_hugepages(0, 1 << 20, 1, 1).expect("1G node0");
    fake.set_node_hugepages(1, 2048, 8, 8).expect("2M node1");
    let host = EngineHost::new("p", "cslide", fake, None, false);
    let nodes: Vec<(u32, u64, u64, u64)> = host
        .system_facts()
        .nodes
        .iter()
        .map(|n| (n.node, n.total_kb, n.huge_total_kb, n.huge_free_kb))
        .collect();
    assert_eq!(
        nodes,
        vec![
            (0, 1 << 20, 16 * 2048 + (1 << 20), 4 * 2048 + (1 << 20)),
            (1, 1 << 20, 8 * 2048, 8 * 2048),
        ]
    );
}

#[test]
fn swapcache_reclaim_checks_the_pid_and_watermarks_then_asks_the_kernel() {
    use etmem_kernel::{FakeKernel, FakeProcess, RecordedCall};
    let fake = Arc::new(FakeKernel::new().expect("fake"));
    fake.add_process(&FakeProcess::new(7, "db").anon(0x10000, 0x11000))
        .expect("7");
    let host = EngineHost::new("p", "slide", fake.clone(), None, false);
    host.add_task("t", None);
    host.begin_round("t", vec![Arc::new(fake.open_process(7).expect("open"))]);
    // an upstream kernel: refused, naming the module
    let e = host
        .reclaim_swapcache("t", 7, 10, 30)
        .expect_err("no swap_pages");
    assert!(e.to_string().contains("etmem_swap"), "{e}");
    // with etmem_swap: done through pid 7, with the watermarks asked
    fake.write_proc("7/swap_pages", "").expect("swap_pages");
    host.reclaim_swapcache("t", 7, 10, 30).expect("reclaim");
    let w = etmem_kernel::SwapcacheWmark::new(10, 30).expect("valid");
    assert_eq!(
        fake.calls(),
        vec![RecordedCall::ReclaimSwapcache { pid: 7, wmark: w }]
    );
    // a pid that is not the task's, and watermarks out of order: refused, not asked
    let e = host
        .reclaim_swapcache("t", 8, 10, 30)
        .expect_err("foreign pid");
    assert!(e.to_string().contains("pid 8"), "{e}");
    let e = host
        .reclaim_swapcache("t", 7, 30, 30)
        .expect_err("low not below high");
    assert!(e.to_string().contains("low 30 and high 30"), "{e}");
    assert_eq!(fake.calls().len(), 1);
}

#[test]
fn huge_pages_must_fit() {
    let m2 = 2 << 20;
    let run = [PageRun::single(m2, PageSize::Size2M)];
    let mut none = None;
    let (ok, refused, _) = check_pages(&run, &[vma(m2, m2 + 4096)], &mut none);
    assert!(ok.is_empty());
    assert_eq!(refused[0].1, "outside the process's VMAs");
    let (ok, _, _) = check_pages(&run, &[vma(m2, 2 * m2)], &mut none);
    assert_eq!(ok, vec![PageRef { addr: m2, size: m2 }]);
}

/// A fake memdcd on a socket file: accepts one connection per entry of `replies`, reads
/// each request to its end, answers that entry (`None`: closes without a word) and returns
/// the requests.
fn memdcd_server(
    path: &std::path::Path,
    replies: Vec<Option<&'static [u8]>>,
) -> std::thread::JoinHandle<Vec<Vec<u8>>> {
    use std::io::{Read, Write};
    let l = std::os::unix::net::UnixListener::bind(path).expect("bind");
    std::thread::spawn(move || {
        let mut got = Vec::new();
        for r in replies {
            let (mut c, _) = l.accept().expect("accept");
            let mut req = Vec::new();
            c.read_to_end(&mut req).expect("read");
            if let Some(r) = r {
                c.write_all(r).expect("reply");
            }
            got.push(req);
        }
        // nothing more may come: a further connection would be accepted here
        l.set_nonblocking(true).expect("nonblocking");
        assert!(l.accept().is_err(), "one connection too many");
        got
    })
}

fn ne_u32(m: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(m[at..at + 4].try_into().expect("4 bytes"))
}
fn ne_u64(m: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(m[at..at + 8].try_into().expect("8 bytes"))
}

/// Checks every field of every message of a list of `n` pages from `base`, count
/// `i % 5` for page `i`, sent for `pid`.
fn check_messages(msgs: &[Vec<u8>], pid: u32, n: u64, base: u64) {
    let want = n.div_ceil(512);
    assert_eq!(
        msgs.len() as u64,
        want,
        "{n} pages: one connection per message"
    );
    let mut next = 0u64;
    for (k, m) in msgs.iter().enumerate() {
        let k = k as u64;
        assert_eq!(m.len(), memdcd::MESSAGE_BYTES, "{n}: message {k} size");
        let entries = if k + 1 < want { 512 } else { n - 512 * k };
        let status = if k == 0 {
            0
        } else if k + 1 == want {
            2
        } else {
            1
        };
        assert_eq!(ne_u32(m, 0), 0, "cmd_type");
        assert_eq!(ne_u32(m, 4), 0, "padding");
        assert_eq!(ne_u32(m, 8), pid, "pid");
        assert_eq!(ne_u32(m, 12), 1, "enable_uswap");
        assert_eq!(ne_u32(m, 16), 0xFFFF_FF01, "type");
        assert_eq!(ne_u32(m, 20), 0, "padding");
        assert_eq!(ne_u64(m, 24), entries * 24, "{n}: message {k} length");
        assert_eq!(ne_u64(m, 32), n, "{n}: total_length");
        assert_eq!(ne_u32(m, 40), status, "{n}: message {k} status");
        assert_eq!(ne_u32(m, 44), 0, "padding");
        for j in 0..512usize {
            let at = 48 + j * 24;
            if (j as u64) < entries {
                assert_eq!(ne_u64(m, at), base + next * 4096, "{n}: {k}/{j} addr");
                assert_eq!(ne_u64(m, at + 8), 4096, "{n}: {k}/{j} len");
                assert_eq!(ne_u32(m, at + 16), (next % 5) as u32, "{n}: {k}/{j} count");
                assert_eq!(ne_u32(m, at + 20), 0, "{n}: {k}/{j} padding");
                next += 1;
            } else {
                assert!(
                    m[at..at + 24].iter().all(|&b| b == 0),
                    "{n}: {k}/{j} unused"
                );
            }
        }
    }
    assert_eq!(next, n);
}

const LIST_BASE: u64 = 0x7f00_0000_0000;

fn list(pid: u32, n: u64) -> ScanResult {
    ScanResult::from_pages(
        pid,
        1,
        (0..n).map(|i| etmem_sdk::Page {
            addr: LIST_BASE + i * 4096,
            count: (i % 5) as u8,
            size: PageSize::Size4K,
        }),
    )
    .expect("scan")
}

/// A host of task `t` on pid 7 (VMA of 4096 pages at [`LIST_BASE`]) whose `Sock` is
/// `sock`.
fn memdcd_host(sock: &str, dry_run: bool) -> (Arc<etmem_kernel::FakeKernel>, EngineHost) {
    use etmem_kernel::{FakeKernel, FakeProcess};
    let fake = Arc::new(FakeKernel::new().expect("fake"));
    fake.add_process(&FakeProcess::new(7, "qemu").anon(LIST_BASE, LIST_BASE + 4096 * 4096))
        .expect("7");
    fake.add_process(&FakeProcess::new(8, "other").anon(LIST_BASE, LIST_BASE + 4096 * 4096))
        .expect("8");
    let host = EngineHost::new("p", "memdcd", fake.clone(), None, dry_run);
    host.add_task(
        "t",
        Some(crate::engine::parse_sock(sock).map_err(|e| e.to_string())),
    );
    host.begin_round("t", vec![Arc::new(fake.open_process(7).expect("open"))]);
    (fake, host)
}

#[test]
fn page_lists_reach_a_fake_memdcd_message_by_message_every_field_checked() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("memdcd.sock");
    let sock = path.to_str().expect("utf-8").to_string();
    let (_fake, host) = memdcd_host(&sock, false);
    for n in [0u64, 1, 511, 512, 513, 1024, 1025] {
        let want = n.div_ceil(512);
        // memdcd closes without a word, or says `success`, in turn
        let replies = (0..want)
            .map(|k| (k % 2 == 1).then_some(&b"success"[..]))
            .collect();
        let server = memdcd_server(&path, replies);
        let sent = host.send_page_list("t", &sock, &list(7, n)).expect("sent");
        assert_eq!(sent, want, "{n}");
        let msgs = server.join().expect("server");
        check_messages(&msgs, 7, n, LIST_BASE);
        std::fs::remove_file(&path).expect("unbind");
    }
}

#[test]
fn a_reply_other_than_success_is_an_error_naming_the_socket_and_the_reply() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("m.sock");
    let sock = path.to_str().expect("utf-8").to_string();
    let (_fake, host) = memdcd_host(&sock, false);
    // the first of two messages is refused: the second is never sent
    let server = memdcd_server(&path, vec![Some(b"fail\n\x1b")]);
    let e = host
        .send_page_list("t", &sock, &list(7, 600))
        .expect_err("refused")
        .to_string();
    assert_eq!(
        e,
        format!(
            "host refused: memdcd at {sock}: message 1 of 2 (pid 7): reply `fail\\n\\x1b`, \
             expected `success` or none"
        )
    );
    assert_eq!(server.join().expect("server").len(), 1);
    // nobody listening: the connect error names the socket
    std::fs::remove_file(&path).expect("unbind");
    let e = host
        .send_page_list("t", &sock, &list(7, 1))
        .expect_err("no memdcd")
        .to_string();
    assert!(e.contains(&format!("connect socket {sock}: ")), "{e}");
}

#[test]
fn page_lists_go_only_to_the_tasks_own_sock_for_its_own_pids_inside_its_vmas() {
    let (fake, host) = memdcd_host("-", false);
    for _ in 0..3 {
        fake.script_unix_reply(Ok(Vec::new()));
    }
    // `-` and `@_memdcd.server` are the same socket; an abstract name, not a file
    assert_eq!(host.send_page_list("t", "-", &list(7, 1)), Ok(1));
    assert_eq!(
        host.send_page_list("t", "@_memdcd.server", &list(7, 1)),
        Ok(1)
    );
    let ex = fake.unix_exchanges();
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0].0, UnixAddr::Abstract("_memdcd.server".into()));
    // another socket, a file named like it, another pid, another task: refused, unsent
    for (task, sock, pid, why) in [
        (
            "t",
            "@other",
            7,
            "socket `@other` is not the task's `Sock` (@_memdcd.server)",
        ),
        ("t", "_memdcd.server", 7, "is not the task's `Sock`"),
        ("t", "-", 8, "pid 8 is not a current process of task `t`"),
        ("u", "-", 7, "no task `u`"),
        ("t", "", 7, "socket address ``: empty"),
    ] {
        let e = host
            .send_page_list(task, sock, &list(pid, 1))
            .expect_err(why)
            .to_string();
        assert!(e.contains(why), "{e}");
    }
    assert_eq!(fake.unix_exchanges().len(), 2);
    // a task without `Sock` may send nowhere
    host.add_task("s", None);
    let e = host
        .send_page_list("s", "-", &list(7, 1))
        .expect_err("no Sock")
        .to_string();
    assert!(e.contains("has no `Sock` key"), "{e}");
    // pages outside the process's VMAs are left out; the rest is sent
    let mut pages: Vec<etmem_sdk::Page> = list(7, 3).pages().collect();
    pages.push(etmem_sdk::Page {
        addr: 0x1000,
        count: 1,
        size: PageSize::Size4K,
    });
    let s = ScanResult::from_pages(7, 1, pages).expect("scan");
    assert_eq!(host.send_page_list("t", "-", &s), Ok(1));
    let ex = fake.unix_exchanges();
    assert_eq!(ex.len(), 3);
    assert_eq!(
        ne_u64(&ex[2].1, 32),
        3,
        "total_length without the foreign page"
    );
    assert_eq!(ne_u64(&ex[2].1, 48), LIST_BASE);
}

#[test]
fn a_dry_run_checks_and_counts_but_sends_nothing() {
    let (fake, host) = memdcd_host("@nobody-listens-here", true);
    assert_eq!(
        host.send_page_list("t", "@nobody-listens-here", &list(7, 1025)),
        Ok(3)
    );
    assert!(
        host.send_page_list("t", "@x", &list(7, 1)).is_err(),
        "checked like the real thing"
    );
    assert!(fake.unix_exchanges().is_empty());
}

#[test]
fn smaps_vmas_carry_their_flags_and_filter_on_them() {
    use etmem_kernel::{FakeKernel, FakeProcess};
    let fake = Arc::new(FakeKernel::new().expect("fake"));
    let mut p = FakeProcess::new(7, "qemu")
        .anon(0x10000, 0x20000)
        .anon(0x30000, 0x40000);
    if let Some(f) = p.vmas[1].vm_flags.as_mut() {
        f.push("us".into());
    }
    fake.add_process(&p).expect("7");
    let host = EngineHost::new("p", "memdcd", fake.clone(), None, false);
    host.add_task("t", None);
    host.begin_round("t", vec![Arc::new(fake.open_process(7).expect("open"))]);
    let all = host.task_smaps_vmas("t", 7, &[]).expect("all");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].vm_flags, ["rd", "wr", "mr", "mw", "me", "ac"]);
    let us = host.task_smaps_vmas("t", 7, &["us"]).expect("us");
    assert_eq!(us.len(), 1);
    assert_eq!((us[0].start, us[0].end), (0x30000, 0x40000));
    assert!(us[0].has_vm_flag("us"));
    // maps has no flags
    assert!(host.task_vmas("t", 7).expect("maps")[0].vm_flags.is_empty());
    assert!(host.task_smaps_vmas("t", 8, &["us"]).is_err());
}

#[test]
fn cgroup_calls_stay_inside_the_tasks_glob_bound_the_bytes_and_honour_dry_run() {
    use etmem_kernel::{CgroupVersion, FakeCgroup, FakeKernel, RecordedCall};
    for v in [CgroupVersion::V1, CgroupVersion::V2] {
        let fake = Arc::new(FakeKernel::new().expect("fake"));
        for p in ["batch/a", "batch/b", "other"] {
            fake.add_cgroup(v, &FakeCgroup::new(p, 64 << 20, 0))
                .expect("cgroup");
        }
        let host = EngineHost::new("p", "psi", fake.clone(), None, false);
        host.add_task("t", None);
        // no cg_dir: refused
        assert!(host.cgroup_glob("t").is_err());
        host.set_task_cgroups("t", "batch/*", 10 << 20);
        // nothing named before a glob
        assert!(host.cgroup_memory("t", "batch/a").is_err());
        let found: Vec<String> = host
            .cgroup_glob("t")
            .expect("glob")
            .into_iter()
            .map(|c| c.path)
            .collect();
        assert_eq!(found, ["batch/a", "batch/b"]);
        let m = host.cgroup_memory("t", "batch/a").expect("memory");
        assert_eq!(
            (m.usage, m.file, m.v2),
            (64 << 20, 64 << 20, v == CgroupVersion::V2)
        );
        // a cgroup outside the task's glob: refused, nothing written
        assert!(host.cgroup_memory("t", "other").is_err());
        assert!(host.cgroup_reclaim("t", "other", 4096).is_err());
        assert!(host.cgroup_reclaim("t", "../other", 4096).is_err());
        // bounded by reclaim_max_bytes, in whole pages
        let r = host
            .cgroup_reclaim("t", "batch/a", (50 << 20) + 123)
            .expect("reclaim");
        assert_eq!(
            (r.requested, r.reclaimed, r.complete),
            (10 << 20, 10 << 20, true)
        );
        let r = host.cgroup_reclaim("t", "batch/b", 4095).expect("tiny");
        assert_eq!(r.requested, 0);
        assert_eq!(
            fake.calls(),
            vec![RecordedCall::CgroupReclaim {
                path: "batch/a".into(),
                bytes: 10 << 20
            }]
        );
        // a dry run checks, reports, and writes nothing
        let dry = EngineHost::new("p", "psi", fake.clone(), None, true);
        dry.add_task("t", None);
        dry.set_task_cgroups("t", "{other}", 1 << 30);
        dry.cgroup_glob("t").expect("glob");
        let r = dry.cgroup_reclaim("t", "other", 1 << 20).expect("dry");
        assert!(r.dry_run && !r.complete);
        assert_eq!(r.requested, 1 << 20);
        assert_eq!(fake.calls().len(), 1);
    }
}
