#!/bin/sh
# mixed-halves: hot and cold pages in ONE anonymous mapping as contiguous parts, 1:3 (the
# first quarter hot, written every 100 ms), at 128 and 512 MiB: slide (loop=3, interval=1,
# sleep=1, T=1) must swap >= 99 % of the cold pages and <= 0.1 % of the hot ones in round 1,
# within 10 s of `project start`, with no hot page read back (tests/lab/mixed.sh).
LAB_NAME=mixed-halves
. /lab/lib.sh
. /lab/mixed.sh
grep -q zram /proc/swaps || lab_fail reason=no-zram-swap
mixed_run "halves128 128 --access write" "halves512 512 --access write"
