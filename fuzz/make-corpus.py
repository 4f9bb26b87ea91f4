#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ from the project's test fixtures
(conf/, tests/ui/config/err/, the texts of the parsers' unit tests) and a few small
samples of real kernel output. Run once by hand; the result is committed.
Usage: fuzz/make-corpus.py [--proc]   (--proc adds samples of this machine's /proc)"""
import os, struct, sys, glob

root = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(root)
proc = "--proc" in sys.argv


def put(target, name, data):
    d = os.path.join(root, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def head(path, n):
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return None


# frame: the C client's frames, one per command, and the unit tests' edge cases
frames = {
    "obj_add": "proj_name - file_name /etc/etmem/slide_conf.yaml cmd 0 eng_name - eng_cmd - task_name -",
    "obj_del": "proj_name - file_name /etc/etmem/slide_conf.yaml cmd 1 eng_name - eng_cmd - task_name -",
    "start": "proj_name test file_name - cmd 2 eng_name - eng_cmd - task_name -",
    "stop": "proj_name test file_name - cmd 3 eng_name - eng_cmd - task_name -",
    "show": "proj_name - file_name - cmd 4 eng_name - eng_cmd - task_name -",
    "engine": "proj_name test file_name - cmd 5 eng_name cslide eng_cmd showtaskpages task_name t1",
    "nul_and_extra": "proj_name p file_name - cmd 3 eng_name - eng_cmd - task_name t extra\0junk",
    "dash_value": "proj_name -x file_name - cmd 2 eng_name - eng_cmd - task_name -",
    "plus_cmd": "proj_name p file_name - cmd +9 eng_name - eng_cmd - task_name -",
    "empty_value": "proj_name  file_name - cmd 2 eng_name - eng_cmd - task_name -",
}
for k, v in frames.items():
    put("frame", k, v)

# config: every example in conf/ and the small error fixtures
for p in sorted(glob.glob(os.path.join(repo, "conf", "*.ini"))):
    put("config", "conf_" + os.path.basename(p), open(p, "rb").read())
for p in sorted(glob.glob(os.path.join(repo, "tests/ui/config/err", "*.ini"))):
    if os.path.getsize(p) <= 2048:
        put("config", "err_" + os.path.basename(p), open(p, "rb").read())

# idle_pages: byte 0 = page size (bits 0-1) and extra VMAs (bits 2-3), then VMAs, then
# the stream (records as in host/kernel/src/parse/idle_pages.rs unit tests)
BASE = 0x7F00_0000_0000
K, M2 = 4096, 2 << 20


def addr(a):
    return b"\xa0" + struct.pack(">Q", a)


def rec(t, n):
    return bytes([t << 4 | n])


def vma(start_page, pages, flags):
    return struct.pack(">IHB", start_page, pages, flags)


put("idle_pages", "every_type", b"\x00" + addr(BASE) + rec(0, 2) + rec(3, 1) + rec(5, 3)
    + rec(8, 2) + addr(BASE + M2) + rec(1, 1) + rec(4, 1) + rec(6, 1) + rec(9, 1)
    + rec(7, 1) + addr(1 << 30) + rec(2, 1))
put("idle_pages", "joined_runs", b"\x00" + addr(BASE) + rec(0, 15) + rec(0, 15) + rec(0, 1)
    + rec(5, 2) + addr(BASE + 33 * K) + rec(5, 1) + rec(8, 1) + rec(5, 1)
    + addr(BASE + 100 * K) + rec(5, 1))
put("idle_pages", "pmd_split", b"\x00" + addr(BASE + M2) + rec(1, 1) + addr(BASE + M2)
    + rec(0, 3) + rec(7, 1) + rec(5, 15))
put("idle_pages", "misaligned_truncated", b"\x00" + addr(BASE + K) + rec(1, 1) + rec(0, 1)
    + b"\xa0\x00\x00")
put("idle_pages", "overflow", b"\x00" + addr(2**64 - 0x1000) + rec(0, 2))
put("idle_pages", "errors", b"\x00" + addr(BASE) + rec(5, 1) + b"\xb1")
put("idle_pages", "shift16", b"\x02" + addr(0) + rec(7, 2) + rec(1, 1))
# two extra VMAs: 512 pages at page 256, and a hugetlb (PMD) VMA of 1024 pages at 2 GiB
put("idle_pages", "vmas_hugetlb", b"\x08" + vma(256, 512, 0) + vma(0x80000, 1024, 1)
    + addr(256 * K) + rec(0, 15) + rec(6, 1) + addr(0x80000 * K) + rec(1, 3) + rec(0, 5)
    + rec(7, 1))

# maps / smaps: the unit tests' texts (host/kernel/src/parse/maps.rs)
MAPS = """55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]
7f1c00000000-7f1c00200000 rw-p 00000000 00:00 0 
7f1c10000000-7f1c10001000 r-xp 00002000 fd:01 1234                       /usr/lib/libc.so.6
7f1c20000000-7f1c20004000 rw-s 00000000 00:05 99                         /dev/shm/x
7f1c30000000-7f1c30002000 rw-p 00001000 fd:01 555                        /data/my file with spaces (deleted)
7f1c40000000-7f1c40001000 r--p 00000000 fd:01 556                        /ro/file"""
SPECIAL = """7ffd1c5f2000-7ffd1c5f6000 r--p 00000000 00:00 0                          [vvar]
7ffd1c5f6000-7ffd1c5f8000 r-xp 00000000 00:00 0                          [vdso]
7ffd1c500000-7ffd1c521000 rw-p 00000000 00:00 0                          [stack]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
"""
SMAPS = """7f1c00000000-7f1c00400000 rw-p 00000000 00:00 0 
Size:               4096 kB
Rss:                2048 kB
Swap:                 12 kB
AnonHugePages:      2048 kB
KernelPageSize:     2048 kB
VmFlags: rd wr mr mw me ac sd hg ht
7f1c10000000-7f1c10001000 rw-p 00000000 00:00 0 
Rss:                   4 kB
KernelPageSize:        4 kB
VmFlags: rd wr mr mw me ac sd"""
put("maps", "unit_maps", MAPS)
put("maps", "unit_special", SPECIAL)
put("maps", "bad_line", "00400000-00401000 r-xp 0 fd:01 1 /x\nnot a line\n")
put("smaps", "unit_smaps", SMAPS)
put("smaps", "attr_first", "Rss: 4 kB\n")
if proc:
    put("maps", "proc_self_maps", head("/proc/self/maps", 4096))
    s = head("/proc/self/smaps", 1 << 20) or b""
    put("smaps", "proc_self_smaps", b"\n".join(s.split(b"\n")[:75]) + b"\n")

# meminfo / status: the unit tests' texts (parse/meminfo.rs)
put("meminfo", "unit_meminfo", "MemTotal:        1000000 kB\nMemFree:          500000 kB\nMemAvailable:     700000 kB\nBuffers: 1 kB\nCached: 2 kB\nSwapCached:           30 kB\nSwapTotal:        262144 kB\nSwapFree:         262000 kB\n")
put("meminfo", "unit_node", "Node 1 MemTotal:       524288 kB\nNode 1 MemFree:        520000 kB\nNode 1 MemUsed:           4288 kB\n")
put("meminfo", "unit_status", "Name:\tmysqld\nVmPeak:\t 9000 kB\nVmLck:\t     512 kB\nVmRSS:\t    1234 kB\nRssAnon:\t 1000 kB\nVmSwap:\t      56 kB")
if proc:
    put("meminfo", "proc_meminfo", head("/proc/meminfo", 4096))
    put("meminfo", "proc_self_status", head("/proc/self/status", 4096))
    n = head("/sys/devices/system/node/node0/meminfo", 4096)
    if n:
        put("meminfo", "node0_meminfo", n)

# psi (parse/psi.rs)
put("psi", "unit_memory", "some avg10=1.50 avg60=0.25 avg300=0.00 total=12345\nfull avg10=0.10 avg60=0.00 avg300=0.00 total=99\n")
put("psi", "unit_some_only", "some avg10=0.00 avg60=0.00 avg300=0.00 total=0")
put("psi", "unit_bad", "some avg10=x avg60=0.00 avg300=0.00 total=0\n")
if proc:
    for f in ("memory", "cpu", "io"):
        d = head("/proc/pressure/" + f, 4096)
        if d:
            put("psi", "proc_pressure_" + f, d)

# damon_trace (track/damon/trace.rs and tests/labtool's raw bench)
line = "kdamond.0-77 [000] ..... 5.000001: damon_aggregated: target_id=0 nr_regions=2 {}-{}: 1 0\n"
put("damon_trace", "unit_line", "       kdamond.0-93      [001] .....    52.071542: damon_aggregated: target_id=1 nr_regions=2 94649011245056-94649011253248: 3 7\n")
put("damon_trace", "two_regions", line.format(4096, 8192) + line.format(8192, 12288))
put("damon_trace", "torn_then_whole",
    "kdamond.0-93 [001] ..... 20.000100: damon_aggregated: target_id=0 nr_regions=2 8192-20480: 9 1\n"
    "kdamond.0-93 [001] ..... 30.000100: damon_aggregated: target_id=0 nr_regions=3 4096-6144: 0 1\n"
    "kdamond.0-93 [001] ..... 30.000100: damon_aggregated: target_id=0 nr_regions=3 6144-8192: 2 1\n"
    "kdamond.0-93 [001] ..... 30.000100: damon_aggregated: target_id=0 nr_regions=3 8192-20480: 0 1\n"
    "kdamond.0-93 [001] ..... 31.000100: damon_aggregated: target_id=1 nr_regions=1 36864-40960: 4 2\n"
    "CPU:1 [LOST 12 EVENTS]\n")

# damon_state (track/damon/state.rs): byte 0 is the kdamond index (mod 4)
put("damon_state", "record", b"\x02index=2\nkthread_pid=77\nowner_pid=1234\nowner_start=99\n")
put("damon_state", "twice", b"\x00index=0\nindex=0\nkthread_pid=1\nowner_pid=1\nowner_start=1\n")
put("damon_state", "zero_pid", b"\x01index=1\nkthread_pid=0\nowner_pid=1\nowner_start=1\n")

# sysfs: byte 0 picks the parser (see fuzz_targets/sysfs.rs)
put("sysfs", "id_list", b"\x000-3,5\n")
put("sysfs", "id_list_bad", b"\x003-1")
# once expanded into 16 GiB (docs/fuzzing.md)
put("sysfs", "id_list_huge_range", b"\x000-4294967295")
put("sysfs", "distance", b"\x0110 20\n")
put("sysfs", "tier", b"\x02memory_tier4")
put("sysfs", "hugepages", b"\x03hugepages-2048kB")
put("sysfs", "counter", b"\x0416\n")
put("sysfs", "stat", b"\x0577 (we ird) n) S 1 77 77 0 -1 4194560 100 0 0 0 3 4 0 0 20 0 1 0 123456 1000 50")
