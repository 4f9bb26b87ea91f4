#!/bin/sh
# bench-round: issue 5's two benchmarks, as figures and ratios against a baseline measured
# in this boot (never timed assertions; TCG speed drifts with the host's load, so compare
# the ratios, not absolute times across runs).
#  (a) the cost of a round (scan + plan + act) per GiB of target memory, against the raw
#      kernel cost of the same work: etmemd (slide, loop=2, sleep=1, T=1, DAMON tracker)
#      logs each round's cost (`round N: tracked X KiB ..., scan A ms (cpu B ms), plan C ms,
#      act D ms (cpu E ms, F page(s))`); `etmem-lab bench-raw` does the same work on a
#      fresh copy of the workload directly: a kdamond, 2 x (update_schemes_tried_regions +
#      read the regions), one process_madvise(MADV_PAGEOUT) per 1024 cold ranges.
#      Round 1 is the round that swaps the cold 75 % out (its scan includes starting the
#      tracker: the raw figure includes starting the kdamond too); round 2 is a steady
#      round (scan of an already swapped workload).
#  (b) etmemd's resident memory per GiB tracked: VmRSS/VmHWM of an idle etmemd, then
#      after 2 rounds of a project tracking each workload size; the marginal KiB per GiB
#      is (RSS at the big size - RSS at the small one) / (GiB tracked difference).
# Sizes: BENCH_SIZES (MiB, default "128 256"): 25 % hot (written every 100 ms), 75 % cold;
# the zram swap holds 256 MiB, so 75 % of a size must stay under it.
# Keys per size M: mM_tracked_kib, mM_ours_ms_gib / mM_raw_ms_gib / mM_ratio (round 1
# wall), mM_ours_cpu_ms_gib / mM_raw_cpu_ms_gib / mM_cpu_ratio (thread CPU; the plan
# counts as CPU; the raw figure is the mean of a run before and one after etmemd's, both
# in mM_raw_runs_ms), mM_scan2_cpu_ms_gib / mM_raw_scan_cpu_ms_gib / mM_scan2_cpu_ratio (round
# 2's scan CPU against as many raw passes made after the raw page-out, when DAMON has split
# its regions as it has for etmemd's round 2; their region counts in
# mM_raw_steady_regions), pages acted on by each, mM_rss_kib, mM_hwm_kib;
# then idle_rss_kib, rss_kib_per_gib and hwm_kib_per_gib (marginal, between the first and
# last size), kdamonds_left (kdamonds etmemd left behind; the scenario removes them).
# Wall times include DAMON's wait for its next aggregation (up to `sleep` per pass): the
# CPU figures are the steadier ones.
# Pass: every figure was measured.
LAB_NAME=bench-round
. /lab/lib.sh

SOCK=lab_bench
CONF=/tmp/bench-round.conf
L=/tmp/br-layout.json
LOG=/tmp/br-etmemd.log
KD=/sys/kernel/mm/damon/admin/kdamonds
SIZES=${BENCH_SIZES:-128 256}
ED_PID=""

stop_etmemd() {
    [ -n "$ED_PID" ] && kill "$ED_PID" 2>/dev/null && wait "$ED_PID" 2>/dev/null
    ED_PID=""
}
fail() {
    [ -f "$LOG" ] && tail -n 20 "$LOG" | sed 's/^/etmemd: /'
    stop_etmemd
    lab_fail "$@"
}

# damon_reset: turns off and empties every kdamond (etmemd may leave its own behind: a
# known bug), so the next DAMON user finds DAMON free. Prints how many were left.
damon_reset() {
    n=$(cat "$KD/nr_kdamonds")
    i=0
    while [ "$i" -lt "$n" ]; do
        [ "$(cat "$KD/$i/state")" = off ] || echo off >"$KD/$i/state" 2>/dev/null
        echo 0 >"$KD/$i/contexts/nr_contexts" 2>/dev/null
        i=$((i + 1))
    done
    [ "$n" = 0 ] || echo 0 >"$KD/nr_kdamonds"
    echo "$n"
}

# status_kb PID FIELD: VmRSS, VmHWM... of /proc/PID/status in kB.
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# round_line N: etmemd's cost line of round N, as "kib pids scan scan_cpu plan act act_cpu
# pages", then whatever the line says after (the scan's CPU by part), apart.
round_line() {
    sed -n "s/.*: round $1: tracked \([0-9]*\) KiB in \([0-9]*\) pid(s), scan \([0-9.]*\) ms (cpu \([0-9.?]*\) ms), plan \([0-9.]*\) ms, act \([0-9.]*\) ms (cpu \([0-9.?]*\) ms, \([0-9]*\) page(s))\(.*\)/\1 \2 \3 \4 \5 \6 \7 \8 \9/p" "$LOG" | head -n 1
}

# wait_round N: waits (150 s at most: TCG is slow) for round N's cost line.
wait_round() {
    i=0
    until [ -n "$(round_line "$1")" ]; do
        i=$((i + 1)); [ "$i" -le 300 ] || return 1
        kill -0 "$ED_PID" 2>/dev/null || return 1
        sleep 0.5
    done
}

# kv FILE KEY: the value of KEY=... in a key=value line.
kv() { tr ' ' '\n' <"$1" | sed -n "s/^$2=//p" | head -n 1; }

calc() { awk "BEGIN { $1 }"; }

start_workload() {
    lab_start_workload "$L" --hot "$(($1 / 4))M" --warm 0 --cold "$(($1 * 3 / 4))M" \
        --period-ms 100 --access write || fail reason=workload-no-layout "size_mib=$1"
}

# raw_run SIZE OUT: etmem-lab bench-raw on a fresh workload of SIZE MiB, its line in OUT.
raw_run() {
    start_workload "$1"
    sleep 1
    etmem-lab bench-raw --layout "$L" --passes 2 --window-ms 1000 --steady-passes 2 >"$2" 2>"$2.err" ||
        fail reason=bench-raw "size_mib=$1" "$(cat "$2")"
    lab_cleanup
    damon_reset >/dev/null
}

grep -q zram /proc/swaps || lab_fail reason=no-zram-swap
[ -f "$KD/nr_kdamonds" ] || lab_fail reason=no-damon-sysfs
for b in etmemd etmem etmem-lab; do command -v "$b" >/dev/null || lab_fail "reason=no-$b"; done
left=$(damon_reset)

res=""
rss_prev=""
for M in $SIZES; do
    # 1. the raw kernel cost, on a fresh workload (again after etmemd's run: the mean of
    # both is the baseline, as the host's load drifts)
    raw_run "$M" /tmp/br-raw1.out

    # 2. etmemd on another fresh workload
    start_workload "$M"
    : >"$LOG"
    lab_start_etmemd "$SOCK" "$LOG" 1 || fail reason=etmemd-not-listening
    sleep 1
    idle_rss=$(status_kb "$ED_PID" VmRSS)
    lab_slide_conf "$CONF" "$WL_PID" 2
    out=$(etmem obj add -f "$CONF" -s "$SOCK" 2>&1) || fail reason=obj-add "out=\"$(echo $out)\""
    out=$(etmem project start -n lab -s "$SOCK" 2>&1) || fail reason=project-start "out=\"$(echo $out)\""
    wait_round 2 || fail reason=no-round-2 "size_mib=$M"
    rss=$(status_kb "$ED_PID" VmRSS)
    hwm=$(status_kb "$ED_PID" VmHWM)
    etmem project stop -n lab -s "$SOCK" >/dev/null 2>&1
    stop_etmemd
    lab_cleanup
    left=$((left + $(damon_reset)))
    raw_run "$M" /tmp/br-raw2.out
    echo "bench-round: size $M MiB: raw before: $(cat /tmp/br-raw1.out)"
    echo "bench-round: size $M MiB: raw after: $(cat /tmp/br-raw2.out)"
    echo "bench-round: size $M MiB: round 1: $(round_line 1)"
    echo "bench-round: size $M MiB: round 2: $(round_line 2)"
    grep 'swap out pid' "$LOG" | head -n 2 | sed "s/^/bench-round: size $M MiB: etmemd: /"

    set -- $(round_line 1)
    kib=$1; o_ms=$(calc "print $3 + $5 + $6"); o_cpu=$(calc "print $4 + $5 + $7"); o_pages=$8
    set -- $(round_line 2)
    o2_scan_cpu=$4
    R=/tmp/br-raw1.out
    R2=/tmp/br-raw2.out
    r_ms=$(calc "print ($(kv $R start_ms) + $(kv $R scan_ms) + $(kv $R act_ms) + $(kv $R2 start_ms) + $(kv $R2 scan_ms) + $(kv $R2 act_ms)) / 2")
    r_cpu=$(calc "print ($(kv $R start_cpu_ms) + $(kv $R scan_cpu_ms) + $(kv $R act_cpu_ms) + $(kv $R2 start_cpu_ms) + $(kv $R2 scan_cpu_ms) + $(kv $R2 act_cpu_ms)) / 2")
    # round 2's scan against the raw passes that follow the raw page-out (DAMON has split
    # its regions by then, as for etmemd's round 2)
    r_scan_cpu=$(calc "print ($(kv $R steady_scan_cpu_ms) + $(kv $R2 steady_scan_cpu_ms)) / 2")
    r_kib=$(kv $R tracked_kib)
    gib=$(calc "print $kib / 1048576")
    r_gib=$(calc "print $r_kib / 1048576")
    res="$res m${M}_tracked_kib=$kib"
    res="$res m${M}_ours_ms_gib=$(calc "printf \"%.0f\", $o_ms / $gib") m${M}_raw_ms_gib=$(calc "printf \"%.0f\", $r_ms / $r_gib")"
    res="$res m${M}_ratio=$(calc "printf \"%.2f\", ($o_ms / $gib) / ($r_ms / $r_gib)")"
    res="$res m${M}_raw_runs_ms=$(calc "printf \"%.0f,%.0f\", $(kv $R start_ms) + $(kv $R scan_ms) + $(kv $R act_ms), $(kv $R2 start_ms) + $(kv $R2 scan_ms) + $(kv $R2 act_ms)")"
    res="$res m${M}_ours_cpu_ms_gib=$(calc "printf \"%.0f\", $o_cpu / $gib") m${M}_raw_cpu_ms_gib=$(calc "printf \"%.0f\", $r_cpu / $r_gib")"
    res="$res m${M}_cpu_ratio=$(calc "printf \"%.2f\", ($o_cpu / $gib) / ($r_cpu / $r_gib)")"
    res="$res m${M}_scan2_cpu_ms_gib=$(calc "printf \"%.0f\", $o2_scan_cpu / $gib") m${M}_raw_scan_cpu_ms_gib=$(calc "printf \"%.0f\", $r_scan_cpu / $r_gib")"
    res="$res m${M}_scan2_cpu_ratio=$(calc "printf \"%.2f\", ($o2_scan_cpu / $gib) / ($r_scan_cpu / $r_gib)")"
    res="$res m${M}_raw_steady_regions=$(kv $R steady_regions),$(kv $R2 steady_regions)"
    res="$res m${M}_pages_ours=$o_pages m${M}_pages_raw=$(kv $R act_pages)"
    res="$res m${M}_rss_kib=$rss m${M}_hwm_kib=$hwm"
    if [ -n "$rss_prev" ]; then
        per_gib=$(calc "printf \"%.0f\", ($rss - $rss_prev) / (($kib - $kib_prev) / 1048576)")
        hwm_per_gib=$(calc "printf \"%.0f\", ($hwm - $hwm_prev) / (($kib - $kib_prev) / 1048576)")
    fi
    [ -n "$rss_prev" ] || { rss_prev=$rss; hwm_prev=$hwm; kib_prev=$kib; }
done
res="$res idle_rss_kib=$idle_rss rss_kib_per_gib=${per_gib:-na} hwm_kib_per_gib=${hwm_per_gib:-na} kdamonds_left=$left"
lab_pass "${res# }"
