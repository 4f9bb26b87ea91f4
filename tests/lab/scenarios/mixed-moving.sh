#!/bin/sh
# mixed-moving: a hot set that moves: 2 MiB hot blocks every 8 MiB of ONE anonymous mapping
# (written every 100 ms), half of which goes cold about 8 s after the workload starts (in
# etmemd's round 2): the cooled half must be swapped by the end of the first round that
# starts after the move, the rest of the hot set never (tests/lab/mixed.sh).
LAB_NAME=mixed-moving
. /lab/lib.sh
. /lab/mixed.sh
grep -q zram /proc/swaps || lab_fail reason=no-zram-swap
mixed_run "moving 128 --access write --hot-block 2M --stride 8M --move-after 9"
