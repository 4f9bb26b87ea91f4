#!/bin/sh
# slide-offload: etmemd + etmem with the slide engine (loop=2, interval=1, sleep=1, T=1)
# swap out a workload's cold anonymous memory (75 %) and keep its hot memory (25 %,
# written every 100 ms) in RAM, on zram swap. Driven only through etmemd/etmem.
# Pass: after the rounds, >= 99 % of the cold region and <= 0.1 % of the hot region are
# in swap (per /proc/PID/smaps of each region's own VMA: `Swap:` kB, exact per page),
# the cold one within 2 rounds (etmemd's debug log names each round's plan).
# Reports: seconds from `project start` to 99 % (ramp_s), the rounds planned by then
# (rounds_to_99), etmemd CPU seconds (utime+stime of /proc/PID/stat) and, apart, the CPU
# of the kdamond our DAMON tracker runs (tracker_cpu_s, a kernel thread: not in etmemd's
# figure), and the workload's busy throughput with etmemd relative to runs without it in
# this boot (one before, one after; base_busy_rate is their mean).
LAB_NAME=slide-offload
. /lab/lib.sh

SOCK=lab_slide
CONF=/tmp/slide-offload.conf
L=/tmp/so-layout.json
HOT=8M
COLD=24M
ED_PID=""

cleanup_all() {
    [ -n "$ED_PID" ] && kill "$ED_PID" 2>/dev/null && wait "$ED_PID" 2>/dev/null
    ED_PID=""
}
fail() { cleanup_all; lab_fail "$@"; }

# now: seconds since boot with centiseconds.
now() { cut -d' ' -f1 /proc/uptime; }

# smaps_kb PID START(decimal) FIELD: the FIELD (e.g. Swap, Rss) kB of the VMA at START.
smaps_kb() {
    hex=$(printf '%x' "$2")
    awk -v s="$hex-" -v f="$3:" '
        /^[0-9a-f]+-[0-9a-f]+ / { inv = (index($0, s) == 1); next }
        inv && $1 == f { print $2; found = 1; exit }
        END { if (!found) print -1 }' "/proc/$1/smaps"
}

# busy_rate OUTFILE: the workload's last `win_busy_touches_per_sec`.
busy_rate() {
    sed -n 's/.*win_busy_touches_per_sec=\([0-9.]*\).*/\1/p' "$1" | tail -n 1
}

# cpu_s PID: utime+stime of PID in seconds (fields 14 and 15 of /proc/PID/stat).
cpu_s() {
    set -- $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null)
    # after the comm field: $1=state ... utime is field 14 overall = $12 here, stime $13
    awk -v u="${12:-0}" -v s="${13:-0}" -v hz=100 'BEGIN { printf "%.2f", (u + s) / hz }'
}

# kdamond_cpu_s: CPU seconds of every running kdamond (ours: nothing else uses DAMON here).
kdamond_cpu_s() {
    t=0
    for d in /sys/kernel/mm/damon/admin/kdamonds/[0-9]*; do
        [ -f "$d/pid" ] || continue
        p=$(cat "$d/pid"); [ "$p" -gt 0 ] 2>/dev/null || continue
        t=$(awk -v a="$t" -v b="$(cpu_s "$p")" 'BEGIN { printf "%.2f", a + b }')
    done
    echo "$t"
}

# last_round: the highest round number etmemd's log shows a plan for (0 if none).
last_round() {
    sed -n 's/.*: round \([0-9]*\): plan returned.*/\1/p' /tmp/so-etmemd.log | sort -n | tail -n 1 | grep . || echo 0
}

# measure_window: reset the report window, wait, report; prints the busy rate.
measure_window() {
    kill -USR1 "$WL_PID"; sleep "$1"; kill -USR1 "$WL_PID"; sleep 0.5
    busy_rate "$L.out"
}

grep -q zram /proc/swaps || lab_fail reason=no-zram-swap
command -v etmemd >/dev/null || lab_fail reason=no-etmemd
command -v etmem >/dev/null || lab_fail reason=no-etmem

# 1. Baseline: the workload alone.
lab_start_workload "$L" --hot "$HOT" --warm 0 --cold "$COLD" --period-ms 100 --access write ||
    lab_fail reason=workload-no-layout
sleep 2
base_rate=$(measure_window 6)
lab_cleanup
[ -n "$base_rate" ] || lab_fail reason=no-baseline-report

# 2. The same workload under etmemd.
lab_start_workload "$L" --hot "$HOT" --warm 0 --cold "$COLD" --period-ms 100 --access write ||
    lab_fail reason=workload-no-layout
set -- $(lab_region "$L" hot); hot_start=$1; hot_kb=$(( ($2 - $1) / 1024 ))
set -- $(lab_region "$L" cold); cold_start=$1; cold_kb=$(( ($2 - $1) / 1024 ))
[ "$hot_kb" -gt 0 ] && [ "$cold_kb" -gt 0 ] || fail reason=layout-regions

cat >"$CONF" <<CONF
[project]
name=lab
loop=2
interval=1
sleep=1

[engine]
name=slide
project=lab

[task]
project=lab
engine=slide
name=wl
type=pid
value=$WL_PID
T=1
CONF
chmod 0600 "$CONF"

etmemd -l 0 -s "$SOCK" >/tmp/so-etmemd.log 2>&1 &
ED_PID=$!
i=0
until etmem project show -s "$SOCK" >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -le 50 ] || fail reason=etmemd-not-listening
    sleep 0.1
done
out=$(etmem obj add -f "$CONF" -s "$SOCK" 2>&1) || fail reason=obj-add "out=\"$(echo $out)\""
t0=$(now)
out=$(etmem project start -n lab -s "$SOCK" 2>&1) || fail reason=project-start "out=\"$(echo $out)\""

# Poll until 99 % of the cold region is swapped (at most 120 s: TCG is slow).
ramp=""
while :; do
    sw=$(smaps_kb "$WL_PID" "$cold_start" Swap)
    [ "$sw" -ge 0 ] || fail reason=cold-vma-gone
    if [ $((sw * 100)) -ge $((cold_kb * 99)) ]; then
        ramp=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
        rounds=$(last_round)
        break
    fi
    awk -v a="$t0" -v b="$(now)" 'BEGIN { exit !(b - a > 120) }' && break
    sleep 0.5
done
# Two more rounds (round period about interval + loop*sleep = 3 s, plus scan time), so a
# hot page wrongly swapped would show, and the steady state is measured.
sleep 8
cold_sw=$(smaps_kb "$WL_PID" "$cold_start" Swap)
hot_sw=$(smaps_kb "$WL_PID" "$hot_start" Swap)
run_rate=$(measure_window 6)
cpu_s=$(cpu_s "$ED_PID")
kd_cpu_s=$(kdamond_cpu_s)
etmem project stop -n lab -s "$SOCK" >/dev/null 2>&1
cleanup_all
lab_cleanup

# 3. The workload alone again: the host's load changes TCG speed over time, so the
# baseline is the mean of a run before and a run after.
lab_start_workload "$L" --hot "$HOT" --warm 0 --cold "$COLD" --period-ms 100 --access write ||
    lab_fail reason=workload-no-layout
sleep 2
base2_rate=$(measure_window 6)
lab_cleanup
[ -n "$base2_rate" ] || lab_fail reason=no-baseline-report
base1_rate=$base_rate
base_rate=$(awk -v a="$base1_rate" -v b="$base2_rate" 'BEGIN { printf "%.0f", (a + b) / 2 }')

cold_pct=$(awk -v a="$cold_sw" -v b="$cold_kb" 'BEGIN { printf "%.2f", 100 * a / b }')
hot_pct=$(awk -v a="$hot_sw" -v b="$hot_kb" 'BEGIN { printf "%.3f", 100 * a / b }')
ratio=$(awk -v a="$run_rate" -v b="$base_rate" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "na" }')
res="cold_swapped_pct=$cold_pct hot_swapped_pct=$hot_pct ramp_s=${ramp:-none} rounds_to_99=${rounds:-none} etmemd_cpu_s=$cpu_s tracker_cpu_s=$kd_cpu_s busy_rate=$run_rate base_busy_rate=$base_rate base_runs=$base1_rate,$base2_rate throughput_ratio=$ratio cold_kb=$cold_kb hot_kb=$hot_kb"
[ -n "$ramp" ] || lab_fail reason=cold-not-swapped $res
[ "$rounds" -le 2 ] || lab_fail reason=more-than-2-rounds $res
[ $((cold_sw * 100)) -ge $((cold_kb * 99)) ] || lab_fail reason=cold-swapped-back $res
[ $((hot_sw * 1000)) -le "$hot_kb" ] || lab_fail reason=hot-swapped $res
lab_pass $res
