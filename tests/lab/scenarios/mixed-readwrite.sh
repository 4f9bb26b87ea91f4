#!/bin/sh
# mixed-readwrite: hot pages read and hot pages written side by side, as in a database's
# buffer pool: in 2 MiB hot blocks every 8 MiB of ONE anonymous mapping, every other hot
# page is only read and the rest written (every 100 ms); and 64 KiB hot chunks every
# 256 KiB with every fourth hot page only read. Soft-dirty sees only the written half:
# the read pages must not be called cold because written neighbours share their DAMON
# region. Same thresholds as mixed-halves (tests/lab/mixed.sh).
LAB_NAME=mixed-readwrite
. /lab/lib.sh
. /lab/mixed.sh
grep -q zram /proc/swaps || lab_fail reason=no-zram-swap
mixed_run "rwblocks 128 --access write --hot-block 2M --stride 8M --read-every 2" \
    "rwchunks 128 --access write --hot-block 64K --stride 256K --read-every 4"
