#!/bin/sh
# mixed-interleaved: hot blocks among cold ones inside ONE anonymous mapping (hot written
# every 100 ms): 2 MiB hot blocks every 8 MiB, 64 KiB hot chunks every 256 KiB, and a layout
# that fits no power of two (1236 KiB hot every 5 MiB from 700 KiB on), same thresholds as
# mixed-halves (tests/lab/mixed.sh).
LAB_NAME=mixed-interleaved
. /lab/lib.sh
. /lab/mixed.sh
grep -q zram /proc/swaps || lab_fail reason=no-zram-swap
mixed_run "blocks2m 128 --access write --hot-block 2M --stride 8M" \
    "chunks64k 128 --access write --hot-block 64K --stride 256K" \
    "odd 200 --access write --hot-block 1236K --stride 5M --hot-offset 700K"
