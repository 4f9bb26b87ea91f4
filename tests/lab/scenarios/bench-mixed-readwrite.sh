#!/bin/sh
# bench-mixed-readwrite (figures only: a known limit, measured): hot pages read and hot
# pages written side by side, as in a database's buffer pool, in ONE anonymous mapping:
# 2 MiB hot blocks every 8 MiB with every other hot page only read (the first of each
# block among them), and 64 KiB hot chunks every 256 KiB with every fourth hot page only
# read (the first of each chunk among them); the rest written, every 100 ms.
# Soft-dirty sees only the written pages. An unwritten page in a gap of fewer than 16
# pages between written ones keeps its DAMON region's count (hot), so the read pages
# inside a hot run stay; a read page at the edge of a written run, next to a long cold
# run, cannot be told from that cold run by anything this kernel offers but DAMON's
# region, and is swapped out each round and read back (hot_majflt: about one per hot run
# per round). Reported, not judged: the same figures as mixed-* (tests/lab/mixed.sh).
LAB_NAME=bench-mixed-readwrite
MIXED_FIGURES_ONLY=1
. /lab/lib.sh
. /lab/mixed.sh
grep -q zram /proc/swaps || lab_fail reason=no-zram-swap
mixed_run "rwblocks 128 --access write --hot-block 2M --stride 8M --read-every 2" \
    "rwchunks 128 --access write --hot-block 64K --stride 256K --read-every 4"
