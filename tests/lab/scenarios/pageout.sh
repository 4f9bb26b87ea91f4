#!/bin/sh
# pageout: process_madvise(MADV_PAGEOUT) of the workload's cold region puts exactly those
# pages in (zram) swap per pagemap, none of the hot/warm ones, and a page outside every
# VMA is refused. Pages the kernel cannot isolate yet (still in a CPU's LRU-add batch,
# at most 31 per CPU) are re-advised once and reported as not_reclaimed.
LAB_NAME=pageout
. /lab/lib.sh

grep -q zram /proc/swaps || lab_fail reason=no-zram-swap
L=/tmp/po-layout.json
lab_start_workload "$L" --hot 8M --warm 4M --cold 16M --period-ms 100 ||
    lab_fail reason=workload-no-layout
if res=$(etmem-lab pageout --layout "$L" --class cold --method pageout --with-outside); then
    lab_pass $res swap_used_kb=$(awk 'NR>1 {s+=$4} END {print s}' /proc/swaps)
fi
lab_fail $res
