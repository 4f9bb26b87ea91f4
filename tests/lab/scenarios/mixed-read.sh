#!/bin/sh
# mixed-read: hot pages that are only READ (never written) every 100 ms, the first quarter of
# ONE anonymous mapping whose other three quarters are cold, at 128 MiB, and a hot part that
# starts and ends off any power of two (23 MiB from 3 MiB on, in 200 MiB): soft-dirty alone
# cannot see them; same thresholds as mixed-halves, but for hot pages read back from swap:
# at most 0.1 % of them (DAMON's merges round a small read part down to 0; CI saw 0-4
# such pages per case, each read back once) (tests/lab/mixed.sh).
LAB_NAME=mixed-read
. /lab/lib.sh
. /lab/mixed.sh
grep -q zram /proc/swaps || lab_fail reason=no-zram-swap
mixed_run "read128 128 --access read" \
    "readodd 200 --access read --hot-block 23M --stride 200M --hot-offset 3M"
