#!/bin/sh
# dry-run: `dry_run=yes` in [project] shows what slide would move, and a real run of the
# same project then moves that much. Hot and cold pages interleaved in ONE anonymous
# mapping (DRY_SIZE, default 64M, with DRY_HOT_BLOCK hot bytes, default 64K, every
# DRY_STRIDE, default 256K, from DRY_HOT_OFFSET, default 0; written every 100 ms; the rest
# of the workload's memory locked, so only that mapping can swap).
# 1. Dry run: workload A, slide (loop=2, interval=1, sleep=1, T=1) with dry_run=yes for
#    DRY_ROUNDS rounds: A's VmSwap stays 0, and `etmem project stats -o json` reports
#    the last round's would-move bytes.
# 2. Real run: a fresh workload B with the same arguments, the same project without
#    dry_run, for the same number of rounds: B's VmSwap is what moved.
# Pass: the dry run moved nothing; what it reports over its rounds (stats `total`) is
# within 5 % of B's VmSwap and of the real run's own stats total. Reports both, in KiB.
# Why the total and not the last round: slide remembers what it swapped out; in a dry run
# those pages are still there next round, so slide takes them for pages read back and keeps
# them out for 10 rounds (its refault rule): after round 1 a dry run reports only pages
# that turned cold since.
LAB_NAME=dry-run
. /lab/lib.sh

SOCK=lab_dry
CONF=/tmp/dry-run.conf
LOG=/tmp/dry-run-etmemd.log
L=/tmp/dry-layout.json
ED_PID=""
ARGS="--mixed ${DRY_SIZE:-64M} --hot-block ${DRY_HOT_BLOCK:-64K} --stride ${DRY_STRIDE:-256K} --hot-offset ${DRY_HOT_OFFSET:-0}"
ROUNDS=${DRY_ROUNDS:-4}

cleanup_all() {
    [ -n "$ED_PID" ] && kill "$ED_PID" 2>/dev/null && wait "$ED_PID" 2>/dev/null
    ED_PID=""
    lab_cleanup
}
fail() { cleanup_all; lab_fail "$@"; }

grep -q zram /proc/swaps || lab_fail reason=no-zram-swap

swap_kb() { awk '$1 == "VmSwap:" { print $2 }' "/proc/$1/status" 2>/dev/null; }
# stats: `etmem project stats -o json` of project `dry`, one line.
stats() { etmem project stats -n dry -s "$SOCK" -o json 2>/dev/null; }
# jnum JSON PATH: the number after `PATH` (e.g. `"rounds":`) in JSON, first match.
jnum() { echo "$1" | sed -n "s/.*$2\([0-9]*\).*/\1/p" | head -n 1; }

# run DRY: a fresh workload and project `dry` with dry_run=DRY for ROUNDS rounds; sets
# RUN_SWAP_KB (the workload's VmSwap), RUN_LAST_KB and RUN_TOTAL_KB (from stats), and
# RUN_STATS (the JSON).
run() {
    lab_start_workload "$L" $ARGS --warm 0 --period-ms 100 --access write --lock-rest ||
        fail reason=workload-no-layout "dry=$1"
    cat >"$CONF" <<CONF
[project]
name=dry
loop=2
interval=1
sleep=1
dry_run=$1

[engine]
name=slide
project=dry

[task]
project=dry
engine=slide
name=wl
type=pid
value=$WL_PID
T=1
CONF
    chmod 0600 "$CONF"
    sleep 1
    out=$(etmem obj add -f "$CONF" -s "$SOCK" 2>&1) || fail reason=obj-add "dry=$1" "out=\"$(echo $out)\""
    out=$(etmem project start -n dry -s "$SOCK" 2>&1) || fail reason=project-start "dry=$1" "out=\"$(echo $out)\""
    i=0
    while :; do
        RUN_STATS=$(stats)
        n=$(jnum "$RUN_STATS" '"rounds":')
        [ "${n:-0}" -ge "$ROUNDS" ] && break
        i=$((i + 1)); [ "$i" -le 600 ] || fail reason=rounds-timeout "dry=$1" "rounds=${n:-none}"
        sleep 0.5
    done
    RUN_SWAP_KB=$(swap_kb "$WL_PID")
    RUN_LAST_KB=$(( $(jnum "$RUN_STATS" '"last":{"dry_run":[a-z]*,"swap_bytes":') / 1024 ))
    RUN_TOTAL_KB=$(( $(jnum "$RUN_STATS" '"total":{"dry_run":[a-z]*,"swap_bytes":') / 1024 ))
    etmem project stop -n dry -s "$SOCK" >/dev/null 2>&1
    etmem obj del -f "$CONF" -s "$SOCK" >/dev/null 2>&1 || fail reason=obj-del "dry=$1"
    lab_cleanup
}

: >"$LOG"
lab_start_etmemd "$SOCK" "$LOG" 1 || fail reason=etmemd-not-listening
run yes
dry_swap=$RUN_SWAP_KB; dry_last=$RUN_LAST_KB; dry_total=$RUN_TOTAL_KB
grep -q "dry run, would move: swap out" "$LOG" || fail reason=no-dry-run-line
run no
real_swap=$RUN_SWAP_KB; real_total=$RUN_TOTAL_KB
cleanup_all
res="args=\"$ARGS\" rounds=$ROUNDS dry_vmswap_kb=$dry_swap dry_last_round_kb=$dry_last dry_would_kb=$dry_total real_vmswap_kb=$real_swap real_moved_kb=$real_total"
[ "$dry_swap" = 0 ] || lab_fail reason=dry-run-swapped $res
[ "$real_swap" -gt 0 ] || lab_fail reason=real-run-swapped-nothing $res
# |dry - real| <= 5 % of real, against what B holds in swap and what the real run reports
d=$((dry_total - real_swap)); [ "$d" -lt 0 ] && d=$((-d))
[ $((d * 100)) -le $((real_swap * 5)) ] || lab_fail reason=dry-not-within-5pct-of-vmswap $res
d=$((dry_total - real_total)); [ "$d" -lt 0 ] && d=$((-d))
[ $((d * 100)) -le $((real_total * 5)) ] || lab_fail reason=dry-not-within-5pct-of-moved $res
lab_pass $res
