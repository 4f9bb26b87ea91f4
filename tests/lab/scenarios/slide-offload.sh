#!/bin/sh
# slide-offload: etmemd + etmem with the slide engine (loop=2, interval=1, sleep=1, T=1)
# swap out a workload's cold anonymous memory (75 %) and keep its hot memory (25 %,
# written over and over without pause, like a busy server's working set) in RAM, on
# zram swap. Driven only through etmemd/etmem. The workload's throughput is its touches
# per second: with pauses between short bursts (say 0.1 ms of work every 100 ms) the
# figure would be per-burst latency, which under TCG swings 10x with the host's
# scheduling of qemu's threads, whatever runs in the guest.
# Pass: after the rounds, >= 99 % of the cold region and <= 0.1 % of the hot region are
# in swap (per /proc/PID/smaps of each region's own VMA: `Swap:` kB, exact per page), no
# more than 0.1 % of the hot pages were swapped out and read back meanwhile (major faults),
# the cold one within 2 rounds (etmemd's debug log names each round's plan).
# Reports: seconds from `project start` to 99 % (ramp_s), the rounds planned by then
# (rounds_to_99), etmemd CPU seconds (utime+stime of /proc/PID/stat) and, apart, the CPU
# of the kdamond our DAMON tracker runs (tracker_cpu_s, a kernel thread: not in etmemd's
# figure).
# Throughput (goal: loss <= 5 %): under TCG a window's touches per second, even per CPU
# second of the workload's vCPU, swing 20-35 % between neighbouring windows with nothing of
# ours running (the host's caches and memory, shared with everything else on it), which
# drowns a 5 % goal in sequential windows. So the loss is measured against a control run
# at the same time: an untracked twin of the workload (same arguments), both pinned to
# vCPU 0, so the guest's scheduler gives each half of the same CPU in slices of a few ms
# and whatever the host does hits both alike. Every window reports the tracked workload's
# touches over the twin's (share_i); windows without etmemd (A) and with it tracking the
# workload (B) are interleaved A1 B1 A2 ... B7 A8. Anything etmemd does to the tracked
# process (soft-dirty write faults after clear_refs, DAMON's access-bit sampling, TLB
# flushes, swap-ins) is charged to the tracked workload's half and lowers its share:
# share_ratio is the median share of the B windows over that of the A windows. CPU that
# etmemd, its kdamond or anything else takes from vCPU 0 slows both twins alike, so it is
# measured apart: the twins' CPU ticks over vCPU 0's per window, cpu_ratio the median with
# over the median without. The verdict, throughput_ratio = share_ratio * cpu_ratio, must
# be >= 0.95; pair_ratios compares each B's share with the mean of the A windows around
# it, for the record. The host still reports, without judging, the twins' total touches
# per CPU second of vCPU 0's qemu thread per window (LABWIN marks, `etmem-lab windows`,
# vcpu_*).
LAB_NAME=slide-offload
. /lab/lib.sh

SOCK=lab_slide
CONF=/tmp/slide-offload.conf
L=/tmp/so-layout.json
LC=/tmp/so-twin.json
HOT=8M
COLD=24M
ED_PID=""
TWIN_PID=""

cleanup_all() {
    [ -n "$ED_PID" ] && kill "$ED_PID" 2>/dev/null && wait "$ED_PID" 2>/dev/null
    ED_PID=""
}
cleanup_twin() {
    [ -n "$TWIN_PID" ] && kill "$TWIN_PID" 2>/dev/null && wait "$TWIN_PID" 2>/dev/null
    TWIN_PID=""
}
fail() { cleanup_all; cleanup_twin; lab_fail "$@"; }

# now: seconds since boot with centiseconds.
now() { cut -d' ' -f1 /proc/uptime; }

# win_touches OUTFILE: the workload's last `win_touches`.
win_touches() {
    sed -n 's/.* win_touches=\([0-9]*\).*/\1/p' "$1" | tail -n 1
}

# cpu_s PID: utime+stime of PID in seconds (fields 14 and 15 of /proc/PID/stat).
cpu_s() {
    set -- $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null)
    # after the comm field: $1=state ... utime is field 14 overall = $12 here, stime $13
    awk -v u="${12:-0}" -v s="${13:-0}" -v hz=100 'BEGIN { printf "%.2f", (u + s) / hz }'
}

# majflt PID: the major page faults of PID so far (field 12 of /proc/PID/stat). The
# workload never touches its cold memory again, locks the rest of its own memory
# (--lock-rest) and its code is in the initramfs (no disk), so every major fault is a hot
# page that was swapped out and had to be read back: what a snapshot of smaps' Swap
# would miss.
majflt() { set -- $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null); echo "${10:-0}"; }

# kdamond_cpu_s: CPU seconds of every running kdamond (ours: nothing else uses DAMON here),
# found by their comm (`kdamond.N`): the sysfs `pid` file answers EBUSY while a DAMON
# command of etmemd's runs.
kdamond_cpu_s() {
    t=0
    for c in /proc/[0-9]*/comm; do
        case "$(cat "$c" 2>/dev/null)" in
            kdamond.*) p=${c%/comm}; p=${p#/proc/}
                t=$(awk -v a="$t" -v b="$(cpu_s "$p")" 'BEGIN { printf "%.2f", a + b }') ;;
        esac
    done
    echo "$t"
}

# last_round: the highest round number etmemd's log shows a plan for (0 if none).
last_round() {
    sed -n 's/.*: round \([0-9]*\): plan returned.*/\1/p' /tmp/so-etmemd.log | sort -n | tail -n 1 | grep . || echo 0
}

# plans: how many round plans etmemd's log shows, over every etmemd of the scenario.
plans() { grep -c ': round [0-9]*: plan returned' /tmp/so-etmemd.log; }

# cpu0_ticks: "idle total" jiffies of vCPU 0 (idle + iowait, and every field) in /proc/stat.
cpu0_ticks() { awk '$1 == "cpu0" { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit }' /proc/stat; }

# ticks PID: utime+stime of PID in clock ticks (every thread).
ticks() { set -- $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null); echo $(( ${12:-0} + ${13:-0} )); }

# measure_window LABEL SECS: reset both workloads' report windows at once, wait, report;
# prints "TRACKED:TWIN:CPU": the touches of each in the window and the share of vCPU 0's
# time the two got (their CPU ticks over vCPU 0's, busy or idle: what etmemd, its kdamond
# or anything else took from that vCPU is missing from it). LABEL (A<i>/B<i>, or - for
# none) marks the window on the console for the host's per-vCPU-second report: start and
# end as the signals go, then both twins' touches once they have reported them, with the
# share of the window vCPU 0 was busy. The marks go to stderr, the console: the caller
# captures stdout.
measure_window() {
    set -- "$1" "$2" $(cpu0_ticks) $(( $(ticks "$WL_PID") + $(ticks "$TWIN_PID") ))
    [ "$1" = - ] || echo "LABWIN $LAB_NAME $1 start" >&2
    kill -USR1 "$WL_PID" "$TWIN_PID"; sleep "$2"; kill -USR1 "$WL_PID" "$TWIN_PID"
    [ "$1" = - ] || echo "LABWIN $LAB_NAME $1 end" >&2
    set -- "$@" $(cpu0_ticks) $(( $(ticks "$WL_PID") + $(ticks "$TWIN_PID") ))
    sleep 0.5
    busy=$(awk -v i0="$3" -v t0="$4" -v i1="$6" -v t1="$7" 'BEGIN {
        if (t1 > t0) printf " busy=%.3f", 1 - (i1 - i0) / (t1 - t0) }')
    cpu=$(awk -v t0="$4" -v t1="$7" -v w0="$5" -v w1="$8" 'BEGIN {
        if (t1 > t0) printf "%.4f", (w1 - w0) / (t1 - t0); else print 0 }')
    wt=$(win_touches "$L.out"); wc=$(win_touches "$LC.out")
    [ "$1" = - ] || echo "LABWIN $LAB_NAME $1 work=$((${wt:-0} + ${wc:-0}))$busy" >&2
    echo "${wt:-0}:${wc:-0}:$cpu"
}

grep -q zram /proc/swaps || lab_fail reason=no-zram-swap
command -v etmemd >/dev/null || lab_fail reason=no-etmemd
command -v etmem >/dev/null || lab_fail reason=no-etmem

# start_etmemd: etmemd in the background (debug log appended to /tmp/so-etmemd.log),
# the project added and started.
start_etmemd() {
    lab_start_etmemd "$SOCK" /tmp/so-etmemd.log || fail reason=etmemd-not-listening
    out=$(etmem obj add -f "$CONF" -s "$SOCK" 2>&1) || fail reason=obj-add "out=\"$(echo $out)\""
    t0=$(now)
    out=$(etmem project start -n lab -s "$SOCK" 2>&1) || fail reason=project-start "out=\"$(echo $out)\""
}

# stop_etmemd: SIGTERM, as systemd stops it; etmemd removes its kdamond on the way out.
stop_etmemd() { cleanup_all; }

# The workload (tracked) and its twin (never tracked) for the whole scenario, both pinned
# to vCPU 0 (every thread); the twin first, so that WL_PID is the tracked one.
WL_ARGS="--hot $HOT --warm 0 --cold $COLD --period-ms 0 --access write --lock-rest"
lab_start_workload "$LC" $WL_ARGS || lab_fail reason=twin-no-layout
TWIN_PID=$WL_PID
lab_start_workload "$L" $WL_ARGS || fail reason=workload-no-layout
for t in /proc/"$WL_PID"/task/* /proc/"$TWIN_PID"/task/*; do
    taskset -p 1 "${t##*/}" >/dev/null || fail reason=pin-workload "tid=${t##*/}"
done
set -- $(lab_region "$L" hot); hot_start=$1; hot_kb=$(( ($2 - $1) / 1024 ))
set -- $(lab_region "$L" cold); cold_start=$1; cold_kb=$(( ($2 - $1) / 1024 ))
[ "$hot_kb" -gt 0 ] && [ "$cold_kb" -gt 0 ] || fail reason=layout-regions

lab_slide_conf "$CONF" "$WL_PID" 2
: >/tmp/so-etmemd.log

sleep 2
# the first window after start is slow in every run (10-20x), whatever runs: left out
measure_window - 3 >/dev/null
a1=$(measure_window A1 5)

# B1: etmemd from project start until 99 % of the cold region is swapped (at most 120 s:
# TCG is slow).
flt0=$(majflt "$WL_PID")
start_etmemd
ramp=""
while :; do
    sw=$(lab_smaps_kb "$WL_PID" "$cold_start" Swap)
    [ "$sw" -ge 0 ] || fail reason=cold-vma-gone
    if [ $((sw * 100)) -ge $((cold_kb * 99)) ]; then
        ramp=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
        rounds=$(last_round)
        break
    fi
    awk -v a="$t0" -v b="$(now)" 'BEGIN { exit !(b - a > 120) }' && break
    sleep 0.5
done
# The steady state: rounds go on (about interval + loop*sleep = 3 s each, plus scan time),
# so a hot page wrongly swapped would show.
b1=$(measure_window B1 5)
cold_sw=$(lab_smaps_kb "$WL_PID" "$cold_start" Swap)
hot_sw=$(lab_smaps_kb "$WL_PID" "$hot_start" Swap)
cpu_s=$(cpu_s "$ED_PID")
kd_cpu_s=$(kdamond_cpu_s)
etmem project stop -n lab -s "$SOCK" >/dev/null 2>&1
stop_etmemd
damon_after1=$(lab_damon_state)
a2=$(measure_window A2 5)

# B2..B7: etmemd again (a new one each time), tracking the steady workload from its
# second round on, each followed by a window without it.
cycle=2
damon_after2=""
bs="$b1"
as="$a1 $a2"
while [ "$cycle" -le 7 ]; do
    mark=$(plans)
    start_etmemd
    i=0
    while [ "$(plans)" -lt $((mark + 2)) ]; do
        i=$((i + 1)); [ "$i" -le 300 ] || fail reason=no-rounds-run-$cycle
        sleep 0.2
    done
    b=$(measure_window "B$cycle" 5)
    stop_etmemd
    d=$(lab_damon_state)
    [ "$d" = "n=0" ] || damon_after2="$damon_after2 $d"
    a=$(measure_window "A$((cycle + 1))" 5)
    bs="$bs $b"
    as="$as $a"
    cycle=$((cycle + 1))
done
damon_after2=${damon_after2:-n=0}
hot_refaults=$(( $(majflt "$WL_PID") - flt0 ))
hot_sw2=$(lab_smaps_kb "$WL_PID" "$hot_start" Swap)
[ "$hot_sw2" -gt "$hot_sw" ] && hot_sw=$hot_sw2
cleanup_twin
lab_cleanup
[ "$(echo $as | wc -w)" = 8 ] && [ "$(echo $bs | wc -w)" = 7 ] || fail reason=missing-window "as=\"$as\"" "bs=\"$bs\""
for v in $as $bs; do
    case "$v" in 0:*|*:0:*|*:0) fail reason=no-window-report "as=\"$as\"" "bs=\"$bs\"" ;; esac
done
# Each window's share: tracked touches over the twin's, and the twins' share of vCPU 0
# (the windows are TRACKED:TWIN:CPU).
shares() { echo "$@" | tr ' ' '\n' | awk -F: '{ printf "%s%.4f", (NR > 1 ? " " : ""), $1 / $2 }'; }
cpus() { echo "$@" | tr ' ' '\n' | awk -F: '{ printf "%s%s", (NR > 1 ? " " : ""), $3 }'; }
sa=$(shares $as)
sb=$(shares $bs)
# share_ratio: median share with etmemd over median share without (what etmemd costs the
# process it tracks); cpu_ratio: the same for the twins' share of vCPU 0 (what etmemd and
# its kdamond took from the workload's CPU); throughput_ratio, the verdict, is their
# product. pair_ratios: each B<i>'s share over the mean of A<i> and A<i+1>.
med() { echo "$@" | tr ' ' '\n' | sort -n | awk '{ v[NR] = $1 } END {
    if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
share_ratio=$(awk -v b="$(med $sb)" -v a="$(med $sa)" 'BEGIN { printf "%.4f", b / a }')
cpu_ratio=$(awk -v b="$(med $(cpus $bs))" -v a="$(med $(cpus $as))" 'BEGIN { printf "%.4f", b / a }')
ratio=$(awk -v s="$share_ratio" -v c="$cpu_ratio" 'BEGIN { printf "%.3f", s * c }')
pairs=$(echo "$sa|$sb" | awk -F'|' '{
    na = split($1, a, " "); nb = split($2, b, " ")
    for (i = 1; i <= nb; i++) printf "%s%.3f", (i > 1 ? "," : ""), 2 * b[i] / (a[i] + a[i + 1])
}')
# The twins' own spread: how far apart the shares without etmemd were (max - min).
a_spread=$(echo $sa | tr ' ' '\n' | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.3f", hi - lo }')
# Touches per wall second of the tracked workload, for the record (half a vCPU each).
wall_rate() { echo "$@" | tr ' ' '\n' | awk -F: -v w=5 '{ s += $1 } END { printf "%.0f", s / NR / w }'; }
wall_ratio=$(awk -v b="$(wall_rate $bs)" -v a="$(wall_rate $as)" 'BEGIN { printf "%.3f", b / a }')

cold_pct=$(awk -v a="$cold_sw" -v b="$cold_kb" 'BEGIN { printf "%.2f", 100 * a / b }')
hot_pct=$(awk -v a="$hot_sw" -v b="$hot_kb" 'BEGIN { printf "%.3f", 100 * a / b }')
res="cold_swapped_pct=$cold_pct hot_swapped_pct=$hot_pct ramp_s=${ramp:-none} rounds_to_99=${rounds:-none} etmemd_cpu_s=$cpu_s tracker_cpu_s=$kd_cpu_s throughput_ratio=$ratio share_ratio=$share_ratio cpu_ratio=$cpu_ratio pair_ratios=$pairs shares_without=$(echo $sa | tr ' ' ,) shares_with=$(echo $sb | tr ' ' ,) shares_without_spread=$a_spread cpu_without=$(cpus $as | tr ' ' ,) cpu_with=$(cpus $bs | tr ' ' ,) wall_throughput_ratio=$wall_ratio cold_kb=$cold_kb hot_kb=$hot_kb hot_refaults=$hot_refaults"
res="$res damon_after_stop=\"$damon_after1\" damon_after_sigterm=\"$damon_after2\""
[ -n "$ramp" ] || lab_fail reason=cold-not-swapped $res
[ "$rounds" -le 2 ] || lab_fail reason=more-than-2-rounds $res
[ $((cold_sw * 100)) -ge $((cold_kb * 99)) ] || lab_fail reason=cold-swapped-back $res
[ $((hot_sw * 1000)) -le "$hot_kb" ] || lab_fail reason=hot-swapped $res
# hot pages swapped out and faulted back in (4 KiB each): at most 0.1 % of the hot pages
[ $((hot_refaults * 4 * 1000)) -le "$hot_kb" ] || lab_fail reason=hot-swapped-and-refaulted $res
if echo "$damon_after1 $damon_after2" | grep -q ':on:\| [0-9]*:[a-z]*:[1-9]'; then
    grep -i 'damon\|tracker\|signal\|stop' /tmp/so-etmemd.log | tail -n 20 | sed 's/^/etmemd: /'
    lab_fail reason=kdamond-left-behind $res
fi
awk -v r="$ratio" 'BEGIN { exit !(r >= 0.95) }' || lab_fail reason=throughput $res
lab_pass $res
