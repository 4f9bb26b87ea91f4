#!/bin/sh
# slide-offload: etmemd + etmem with the slide engine (loop=2, interval=1, sleep=1, T=1)
# swap out a workload's cold anonymous memory (75 %) and keep its hot memory (25 %,
# written every 100 ms) in RAM, on zram swap. Driven only through etmemd/etmem.
# Pass: after the rounds, >= 99 % of the cold region and <= 0.1 % of the hot region are
# in swap (per /proc/PID/smaps of each region's own VMA: `Swap:` kB, exact per page).
# Reports: seconds from `project start` to 99 % (ramp_s), rounds seen in that time
# (ramp_s / round period), etmemd CPU seconds (utime+stime of /proc/PID/stat), and the
# workload's busy throughput with etmemd relative to a run without it in this boot.
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
set -- $(sed 's/.*) //' "/proc/$ED_PID/stat")
# after the comm field: $1=state ... utime is field 14 overall = $12 here, stime $13
cpu_s=$(awk -v u="$12" -v s="$13" -v hz=100 'BEGIN { printf "%.2f", (u + s) / hz }')
etmem project stop -n lab -s "$SOCK" >/dev/null 2>&1
cleanup_all

cold_pct=$(awk -v a="$cold_sw" -v b="$cold_kb" 'BEGIN { printf "%.2f", 100 * a / b }')
hot_pct=$(awk -v a="$hot_sw" -v b="$hot_kb" 'BEGIN { printf "%.3f", 100 * a / b }')
ratio=$(awk -v a="$run_rate" -v b="$base_rate" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "na" }')
res="cold_swapped_pct=$cold_pct hot_swapped_pct=$hot_pct ramp_s=${ramp:-none} etmemd_cpu_s=$cpu_s busy_rate=$run_rate base_busy_rate=$base_rate throughput_ratio=$ratio cold_kb=$cold_kb hot_kb=$hot_kb"
[ -n "$ramp" ] || lab_fail reason=cold-not-swapped $res
[ $((cold_sw * 100)) -ge $((cold_kb * 99)) ] || lab_fail reason=cold-swapped-back $res
[ $((hot_sw * 1000)) -le "$hot_kb" ] || lab_fail reason=hot-swapped $res
lab_pass $res
