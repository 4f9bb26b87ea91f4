#!/bin/sh
# damon-multi: one etmemd project with two slide tasks (one per workload pid, loop=2,
# interval=1, sleep=1, T=1) on the DAMON tracker tracks both processes with ONE kdamond of
# ours: one context, two targets (one per pid), two stat schemes (a `target` filter each).
# Pass: >= 99 % of each workload's cold region is in swap within 120 s and <= 0.1 % of each
# hot region (smaps `Swap:` of each region's own VMA); while both run there is exactly one
# kdamond, on, with 2 targets whose pids are the two workloads and 2 schemes whose first
# regions differ and lie in their own target's address span (the `target` filter works:
# the scenario has the kernel fill them, since etmemd reads its regions through the
# damon_aggregated tracepoint and keeps the schemes as its fallback), and both processes'
# passes got regions through that tracepoint; when workload B exits its
# target is removed (1 target left: A's) with the kdamond still on, and A's task goes on
# with rounds; after `project stop` no kdamond of ours is left (DAMON as before).
LAB_NAME=damon-multi
. /lab/lib.sh

SOCK=lab_dm
CONF=/tmp/damon-multi.conf
LA=/tmp/dm-a.json
LB=/tmp/dm-b.json
LOG=/tmp/dm-etmemd.log
K=/sys/kernel/mm/damon/admin/kdamonds
ED_PID=""
WA=""
WB=""

cleanup_all() {
    [ -n "$ED_PID" ] && kill "$ED_PID" 2>/dev/null && wait "$ED_PID" 2>/dev/null
    ED_PID=""
    for p in $WA $WB; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    WA=""; WB=""; WL_PID=""
}
fail() {
    [ -f "$LOG" ] && grep -i 'damon\|tracker\|warn\|error' "$LOG" | tail -n 20 | sed 's/^/etmemd: /'
    cleanup_all
    lab_fail "$@" "damon=\"$(lab_damon_state)\""
}
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# targets: "N:pid,pid..." of our kdamond 0's context (the only kdamond in the lab).
targets() {
    c=$K/0/contexts/0/targets
    n=$(cat "$c/nr_targets" 2>/dev/null || echo 0)
    s="$n:"; i=0
    while [ "$i" -lt "$n" ]; do
        s="$s$(cat "$c/$i/pid_target")"; i=$((i + 1)); [ "$i" -lt "$n" ] && s="$s,"
    done
    echo "$s"
}

# first_region I: the start of scheme I's first tried region (left by etmemd's last
# update), if it lies in the address span of target I's process, else "out" or "empty".
# Without per-target filters every scheme would hold the same regions (both processes').
first_region() {
    c=$K/0/contexts/0
    pid=$(cat "$c/targets/$1/pid_target")
    # region directories are not numbered from 0 in every scheme (lab, 6.12): take the lowest
    d=$c/schemes/$1/tried_regions
    r=$(ls "$d" 2>/dev/null | grep '^[0-9]' | sort -n | head -n 1)
    f=$(cat "$d/$r/start" 2>/dev/null) && [ -n "$r" ] || { echo empty; return; }
    lo=$(head -n 1 "/proc/$pid/maps" | cut -d- -f1)
    hi=$(grep -v vsyscall "/proc/$pid/maps" | tail -n 1 | cut -d' ' -f1 | cut -d- -f2)
    if [ "$f" -ge $((0x$lo)) ] && [ "$f" -lt $((0x$hi)) ]; then echo "$f"; else echo out; fi
}

# rounds TASK: how many round plans etmemd's log shows for TASK.
rounds() { grep -c "task \`$1\`: round [0-9]*: plan returned" "$LOG"; }

[ -f $K/nr_kdamonds ] || lab_fail reason=no-damon-sysfs
grep -q zram /proc/swaps || lab_fail reason=no-zram-swap
before=$(lab_damon_state)
lab_damon_busy && lab_fail reason=damon-busy-before "damon=\"$before\""

lab_start_workload "$LA" --hot 4M --warm 0 --cold 12M --period-ms 20 --access write ||
    lab_fail reason=workload-a-no-layout
WA=$WL_PID
lab_start_workload "$LB" --hot 4M --warm 0 --cold 12M --period-ms 20 --access write ||
    fail reason=workload-b-no-layout
WB=$WL_PID
set -- $(lab_region "$LA" hot); a_hot=$1; a_hot_kb=$(( ($2 - $1) / 1024 ))
set -- $(lab_region "$LA" cold); a_cold=$1; a_cold_kb=$(( ($2 - $1) / 1024 ))
set -- $(lab_region "$LB" hot); b_hot=$1; b_hot_kb=$(( ($2 - $1) / 1024 ))
set -- $(lab_region "$LB" cold); b_cold=$1; b_cold_kb=$(( ($2 - $1) / 1024 ))

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
name=wa
type=pid
value=$WA
T=1

[task]
project=lab
engine=slide
name=wb
type=pid
value=$WB
T=1
CONF
chmod 0600 "$CONF"

: >"$LOG"
lab_start_etmemd "$SOCK" "$LOG" || fail reason=etmemd-not-listening
out=$(etmem obj add -f "$CONF" -s "$SOCK" 2>&1) || fail reason=obj-add "out=\"$(echo $out)\""
t0=$(now)
out=$(etmem project start -n lab -s "$SOCK" 2>&1) || fail reason=project-start "out=\"$(echo $out)\""

# both cold regions >= 99 % in swap (120 s at most); meanwhile, the kdamonds seen
ramp=""
max_kdamonds=0
both_targets=""
while :; do
    n=$(cat $K/nr_kdamonds)
    [ "$n" -gt "$max_kdamonds" ] && max_kdamonds=$n
    t=$(targets)
    case "$t" in "2:$WA,$WB"|"2:$WB,$WA") both_targets=$t ;; esac
    sa=$(lab_smaps_kb "$WA" "$a_cold" Swap); sb=$(lab_smaps_kb "$WB" "$b_cold" Swap)
    [ "$sa" -ge 0 ] && [ "$sb" -ge 0 ] || fail reason=cold-vma-gone
    if [ $((sa * 100)) -ge $((a_cold_kb * 99)) ] && [ $((sb * 100)) -ge $((b_cold_kb * 99)) ]; then
        ramp=$(since "$t0")
        break
    fi
    awk -v a="$t0" -v b="$(now)" 'BEGIN { exit !(b - a > 120) }' && break
    sleep 0.5
done
# a few more rounds, then the state while both run
mark=$(rounds wa)
i=0
while [ "$(rounds wa)" -lt $((mark + 2)) ]; do
    i=$((i + 1)); [ "$i" -le 300 ] || fail reason=no-more-rounds
    sleep 0.2
done
n=$(cat $K/nr_kdamonds)
[ "$n" -gt "$max_kdamonds" ] && max_kdamonds=$n
state_both=$(lab_kd_state 0)
targets_both=$(targets)
schemes_both=$(cat $K/0/contexts/0/schemes/nr_schemes 2>/dev/null)
a_cold_sw=$(lab_smaps_kb "$WA" "$a_cold" Swap); b_cold_sw=$(lab_smaps_kb "$WB" "$b_cold" Swap)
a_hot_sw=$(lab_smaps_kb "$WA" "$a_hot" Swap); b_hot_sw=$(lab_smaps_kb "$WB" "$b_hot" Swap)
# etmemd reads its regions through the damon_aggregated tracepoint (both targets' from one
# trace_pipe); its fallback, the schemes' tried_regions, must still hold each target's own
# regions (the target filters): the scenario asks the kernel to fill them itself
trace=no
grep -q "regions read through the damon_aggregated tracepoint" "$LOG" && trace=yes
passes_a=$(grep -c "DAMON pass of pid $WA: [1-9]" "$LOG")
passes_b=$(grep -c "DAMON pass of pid $WB: [1-9]" "$LOG")
own=""
i=0
while [ "$i" -lt 20 ]; do
    echo update_schemes_tried_regions >"$K/0/state" 2>/dev/null
    f0=$(first_region 0); f1=$(first_region 1)
    case "$f0$f1" in *[a-z]*) own="$f0,$f1" ;; *) [ "$f0" != "$f1" ] && { own=ok; break; }; own=same ;; esac
    i=$((i + 1)); sleep 0.3
done
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", 100 * a / b }'; }
res="ramp_s=${ramp:-none} a_cold_swapped_pct=$(pct "$a_cold_sw" "$a_cold_kb") b_cold_swapped_pct=$(pct "$b_cold_sw" "$b_cold_kb")"
res="$res a_hot_swapped_pct=$(pct "$a_hot_sw" "$a_hot_kb") b_hot_swapped_pct=$(pct "$b_hot_sw" "$b_hot_kb")"
res="$res max_kdamonds=$max_kdamonds state=$state_both targets=$targets_both seen_both=${both_targets:-no} schemes=$schemes_both own_regions=$own"
res="$res tracepoint=$trace passes_with_regions_a=$passes_a passes_with_regions_b=$passes_b"

# workload B exits: its target goes, A's stays and is still tracked
kill "$WB"; wait "$WB" 2>/dev/null; WB=""
t1=$(now)
left=""
i=0
while [ "$i" -le 300 ]; do
    t=$(targets)
    [ "$t" = "1:$WA" ] && { left=$t; break; }
    i=$((i + 1)); sleep 0.1
done
drop_s=$(since "$t1")
state_after_exit=$(lab_kd_state 0)
mark=$(rounds wa)
i=0
while [ "$(rounds wa)" -lt $((mark + 2)) ]; do
    i=$((i + 1)); [ "$i" -le 300 ] || fail reason=a-not-tracked-after-b-exit $res
    sleep 0.2
done
a_hot_sw2=$(lab_smaps_kb "$WA" "$a_hot" Swap)
[ "$a_hot_sw2" -gt "$a_hot_sw" ] && a_hot_sw=$a_hot_sw2
res="$res after_b_exit=${left:-$(targets)} drop_s=$drop_s state_after_b_exit=$state_after_exit"

etmem project stop -n lab -s "$SOCK" >/dev/null 2>&1 || fail reason=project-stop $res
t2=$(now)
i=0
while lab_damon_busy; do
    # 20 s: the stop waits for a pass in flight, on a TCG guest whose host may be busy
    i=$((i + 1)); [ "$i" -le 200 ] || fail reason=kdamond-left-after-stop $res
    sleep 0.1
done
after=$(lab_damon_state)
res="$res before=\"$before\" after_stop=\"$after\" stop_s=$(since "$t2")"
cleanup_all

[ -n "$ramp" ] || lab_fail reason=cold-not-swapped $res
[ "$max_kdamonds" = 1 ] || lab_fail reason=not-one-kdamond $res
[ "$state_both" = on ] || lab_fail reason=kdamond-not-on $res
case "$targets_both" in "2:"*) ;; *) lab_fail reason=not-two-targets $res ;; esac
[ -n "$both_targets" ] || lab_fail reason=targets-not-the-workloads $res
[ "$schemes_both" = 2 ] || lab_fail reason=not-two-schemes $res
[ "$own" = ok ] || lab_fail reason=scheme-regions-not-its-target $res
[ "$trace" = yes ] || lab_fail reason=regions-not-through-the-tracepoint $res
[ "$passes_a" -gt 0 ] && [ "$passes_b" -gt 0 ] || lab_fail reason=a-target-without-regions $res
[ $((a_cold_sw * 100)) -ge $((a_cold_kb * 99)) ] || lab_fail reason=a-cold-swapped-back $res
[ $((b_cold_sw * 100)) -ge $((b_cold_kb * 99)) ] || lab_fail reason=b-cold-swapped-back $res
[ $((a_hot_sw * 1000)) -le "$a_hot_kb" ] || lab_fail reason=a-hot-swapped $res
[ $((b_hot_sw * 1000)) -le "$b_hot_kb" ] || lab_fail reason=b-hot-swapped $res
[ -n "$left" ] || lab_fail reason=b-target-not-removed $res
[ "$state_after_exit" = on ] || lab_fail reason=kdamond-stopped-with-b $res
[ "$after" = "$before" ] || lab_fail reason=damon-not-as-before $res
lab_pass $res
