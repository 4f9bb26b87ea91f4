#!/bin/sh
# mixed-read: hot pages that are only READ (never written) every 100 ms, the first quarter of
# ONE anonymous mapping whose other three quarters are cold, at 128 MiB, and a hot part that
# starts and ends off any power of two (23 MiB from 3 MiB on, in 200 MiB): soft-dirty alone
# cannot see them; the same thresholds as mixed-halves, 0 hot pages read back from swap
# included (tests/lab/mixed.sh). DAMON's regions alone see these pages, and they can hide a
# few dozen of them in a cold region beside the read ones: the tracker keeps a margin
# there (refine::EDGE_CONFIDENCE), which costs some cold pages per edge of the hot part.
LAB_NAME=mixed-read
. /lab/lib.sh
. /lab/mixed.sh
grep -q zram /proc/swaps || lab_fail reason=no-zram-swap
mixed_run "read128 128 --access read" \
    "readodd 200 --access read --hot-block 23M --stride 200M --hot-offset 3M"
