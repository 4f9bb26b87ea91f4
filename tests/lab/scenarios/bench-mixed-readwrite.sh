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
# per round). And hot 2 MiB blocks every 8 MiB only read: DAMON's regions alone see them,
# and the tracker counts a margin beside each edge of a region read as accessed
# (refine::EDGE_CONFIDENCE, about 6/acc of DAMON's first regions), so many edges cost
# cold pages (readblocks_cold_swapped_pct) where mixed-read's one or two do not.
# Reported, not judged: the same figures as mixed-* (tests/lab/mixed.sh).
LAB_NAME=bench-mixed-readwrite
MIXED_FIGURES_ONLY=1
. /lab/lib.sh
. /lab/mixed.sh
grep -q zram /proc/swaps || lab_fail reason=no-zram-swap
mixed_run "rwblocks 128 --access write --hot-block 2M --stride 8M --read-every 2" \
    "rwchunks 128 --access write --hot-block 64K --stride 256K --read-every 4" \
    "readblocks 128 --access read --hot-block 2M --stride 8M"
