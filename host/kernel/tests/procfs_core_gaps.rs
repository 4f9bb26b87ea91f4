//! Where procfs-core (0.18, the parse-only half of the `procfs` crate) differs from our
//! hand parsers in a way that matters to etmem. Each test asserts what procfs-core does
//! today, beside what ours does; docs/crates.md says which parser stays and why. When a
//! procfs-core release changes one of these, the test fails and the choice is worth
//! revisiting.

use etmem_kernel::parse::{parse_maps, parse_meminfo, parse_psi, parse_smaps, parse_status};
use procfs_core::process::{MMapPath, MemoryMaps, Status, VmFlags};
use procfs_core::{FromBufRead, Meminfo, MemoryPressure};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// True when `f` panics (the panic message still goes to the test's stderr).
fn panics<T>(f: impl FnOnce() -> T) -> bool {
    catch_unwind(AssertUnwindSafe(f)).is_err()
}

/// A file name that is not UTF-8 (Latin-1 `é`): Linux allows any byte but `/` and NUL.
/// procfs-core reads lines into a `String`, so one such mapping makes the whole maps or
/// smaps of the process an error: etmem could not scan a process that maps it.
#[test]
fn a_non_utf8_path_fails_the_whole_file() {
    let maps = b"00400000-00401000 r-xp 00000000 fd:01 12 /usr/bin/db\n\
7f0000000000-7f0000001000 rw-p 00000000 fd:01 13                         /data/caf\xe9.db\n\
7f0000100000-7f0000200000 rw-p 00000000 00:00 0 \n";
    assert!(MemoryMaps::from_buf_read(&maps[..]).is_err());
    let ours = parse_maps(maps).expect("ours takes it");
    assert_eq!(ours.len(), 3);
    assert_eq!(ours[1].path, "/data/caf\u{fffd}.db");
    assert!(ours[2].is_anonymous());
}

/// Kernel-made SysV shared memory names (`/SYSV` and 8 hex digits) parse, into
/// `MMapPath::Vsys`; any other path that starts with `/SYSV` is sliced at bytes 5..13:
/// a short one panics, a non-hex one fails the whole file. Our fuzz targets require no
/// panic on any input.
#[test]
fn sysv_lookalike_paths_panic_or_fail() {
    let real = b"7f0000000000-7f0000100000 rw-s 00000000 00:01 32770                      /SYSV0000162e (deleted)\n";
    let m = MemoryMaps::from_buf_read(&real[..]).expect("a real SysV name");
    assert_eq!(m.0[0].pathname, MMapPath::Vsys(0x162e));
    assert_eq!(
        parse_maps(real).expect("ours")[0].path,
        "/SYSV0000162e (deleted)"
    );

    let short =
        b"7f0000000000-7f0000001000 rw-p 00000000 fd:01 14                         /SYSVx\n";
    assert!(panics(|| MemoryMaps::from_buf_read(&short[..])));
    assert_eq!(parse_maps(short).expect("ours")[0].path, "/SYSVx");

    let word = b"7f0000000000-7f0000001000 rw-p 00000000 fd:01 14                         /SYSVnotahexkey\n";
    assert!(MemoryMaps::from_buf_read(&word[..]).is_err());
    assert_eq!(parse_maps(word).expect("ours").len(), 1);
}

/// procfs-core trims the path: a file whose name ends in spaces becomes another name.
#[test]
fn trailing_spaces_of_a_path_are_lost() {
    let maps =
        b"7f0000000000-7f0000001000 rw-p 00000000 fd:01 14                         /tmp/x  \n";
    let m = MemoryMaps::from_buf_read(&maps[..]).expect("procfs");
    assert_eq!(m.0[0].pathname, MMapPath::Path("/tmp/x".into()));
    assert_eq!(parse_maps(maps).expect("ours")[0].path, "/tmp/x  ");
}

/// `VmFlags` become a 32-bit set of the flags procfs-core knows; newer ones (`ss` shadow
/// stack, `sl` sealed, `mt` arm64 MTE, `bt`, `ui`...) are dropped. A task's `vm_flags`
/// filter takes any two-letter flag, so ours keeps the words.
#[test]
fn newer_vm_flags_are_dropped() {
    let smaps = b"7f0000000000-7f0000200000 rw-p 00000000 00:00 0 \n\
Rss:                2048 kB\n\
VmFlags: rd wr mr mw me ac sd ss sl mt\n";
    let m = MemoryMaps::from_buf_read(&smaps[..]).expect("procfs");
    let known = VmFlags::RD | VmFlags::WR | VmFlags::MR | VmFlags::MW;
    assert_eq!(
        m.0[0].extension.vm_flags,
        known | VmFlags::ME | VmFlags::AC | VmFlags::SD
    );
    let ours = parse_smaps(smaps).expect("ours");
    assert!(ours[0].has_vm_flags(&["ss", "sl", "mt"]));
}

/// procfs-core turns `kB` into bytes with an unchecked `* 1024`: a value near `u64::MAX`
/// panics in a build with overflow checks (tests, debug) and wraps silently in release.
/// Ours keeps kB as printed.
#[test]
fn huge_kb_values_overflow() {
    let smaps = b"7f0000000000-7f0000200000 rw-p 00000000 00:00 0 \n\
Rss:        18446744073709551615 kB\n";
    assert_eq!(
        panics(|| MemoryMaps::from_buf_read(&smaps[..])),
        cfg!(debug_assertions)
    );
    assert_eq!(parse_smaps(smaps).expect("ours")[0].rss_kb, Some(u64::MAX));
    let meminfo = b"MemTotal:       18446744073709551615 kB\n";
    assert_eq!(
        panics(|| Meminfo::from_buf_read(&meminfo[..])),
        cfg!(debug_assertions)
    );
    assert_eq!(parse_meminfo(meminfo).mem_total_kb, Some(u64::MAX));
}

/// A NUMA node's meminfo (`/sys/devices/system/node/nodeN/meminfo`, read by the tiering
/// and cslide paths) prefixes every line with `Node N`: procfs-core's `Meminfo` refuses it.
#[test]
fn per_node_meminfo_is_refused() {
    let node = include_bytes!("../../../fuzz/corpus/meminfo/node0_meminfo");
    assert!(Meminfo::from_buf_read(&node[..]).is_err());
    let ours = parse_meminfo(node);
    assert_eq!(ours.mem_total_kb, Some(24_683_784));
    assert_eq!(ours.mem_free_kb, Some(10_524_356));
}

/// `Meminfo` and `Status` need some 20 fields each (Buffers, Active, Uid, Gid, ...): a file
/// with only the ones we read, as the fake kernel's trees and some container views
/// (lxcfs) give, is refused.
#[test]
fn files_with_only_the_fields_we_read_are_refused() {
    let meminfo = b"MemTotal:        1000000 kB\nMemFree:          500000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n";
    assert!(Meminfo::from_buf_read(&meminfo[..]).is_err());
    assert_eq!(parse_meminfo(meminfo).mem_free_kb, Some(500_000));
    let status = b"Name:\tdb\nVmLck:\t     512 kB\nVmRSS:\t    1234 kB\nVmSwap:\t      56 kB\n";
    assert!(Status::from_buf_read(&status[..]).is_err());
    assert_eq!(parse_status(status).vm_rss_kb, Some(1234));
}

/// The cpu PSI file of kernels before 5.13 has no `full` line; procfs-core requires one.
/// A file cut to `some` without even its values panics (`&line[5..]` on 4 bytes).
#[test]
fn psi_without_full_fails_and_a_cut_line_panics() {
    let some_only = include_bytes!("../../../fuzz/corpus/psi/unit_some_only");
    assert!(MemoryPressure::from_buf_read(&some_only[..]).is_err());
    let ours = parse_psi(some_only).expect("ours");
    assert_eq!(ours.full, None);

    assert!(panics(|| MemoryPressure::from_buf_read(&b"some"[..])));
    assert_eq!(parse_psi(b"some"), None);
}

/// PSI averages are `f32` in procfs-core: `12.34` does not come back as the `f64` 12.34
/// that a threshold in the config is compared with.
#[test]
fn psi_averages_lose_precision() {
    let text = b"some avg10=12.34 avg60=0.00 avg300=0.00 total=5\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1\n";
    let theirs = MemoryPressure::from_buf_read(&text[..]).expect("procfs");
    assert_ne!(f64::from(theirs.some.avg10), 12.34);
    assert_eq!(parse_psi(text).expect("ours").some.avg10, 12.34);
}
