#!/bin/sh
# damon-cleanup: etmemd removes the kdamond its DAMON tracker created, whatever ends the
# tracking: `etmem project stop`, SIGTERM to etmemd, or the tracked process exiting; and
# a new etmemd reclaims the kdamond an etmemd killed with SIGKILL left running.
# After each, /sys/kernel/mm/damon/admin/kdamonds must be as before (no kdamond left on
# or configured), so the next DAMON user (another etmemd, damo) finds DAMON free.
LAB_NAME=damon-cleanup
. /lab/lib.sh

SOCK=lab_dc
CONF=/tmp/damon-cleanup.conf
L=/tmp/dc-layout.json
ED_PID=""

fail() {
    [ -f /tmp/dc-etmemd.log ] && tail -n 30 /tmp/dc-etmemd.log | sed 's/^/etmemd: /'
    [ -n "$ED_PID" ] && kill "$ED_PID" 2>/dev/null
    lab_fail "$@"
}

# wait_round MARK: waits (60 s at most) for etmemd's log to show, after its line MARK, a
# round planned.
wait_round() {
    i=0
    until tail -n +$(($1 + 1)) /tmp/dc-etmemd.log | grep -q ": round [0-9]*: plan returned"; do
        i=$((i + 1)); [ "$i" -le 600 ] || return 1
        sleep 0.1
    done
}

start_etmemd() {
    : >/tmp/dc-etmemd.log
    lab_start_etmemd "$SOCK" /tmp/dc-etmemd.log || fail reason=etmemd-not-listening
}

start_project() {
    lab_slide_conf "$CONF" "$WL_PID" 1
    mark=$(wc -l </tmp/dc-etmemd.log)
    out=$(etmem obj add -f "$CONF" -s "$SOCK" 2>&1) || fail reason=obj-add "out=\"$(echo $out)\""
    out=$(etmem project start -n lab -s "$SOCK" 2>&1) || fail reason=project-start "out=\"$(echo $out)\""
    wait_round "$mark" || fail reason=no-round "$1" "damon=\"$(lab_damon_state)\""
    lab_damon_busy || fail reason=no-kdamond-while-tracking "$1" "damon=\"$(lab_damon_state)\""
}

# settled WHAT: DAMON must be free within 20 s (a pass or two, then the kdamond's stop, on
# a TCG guest whose host may be busy); the seconds it took are reported as settle_s.
settle_s=""
# trace_instances: etmemd's trace instances (instances/etmemd-PID under tracefs, one with
# each kdamond of ours), comma-separated; they must go with the kdamond.
trace_instances() { ls /sys/kernel/tracing/instances 2>/dev/null | grep '^etmemd-' | tr '\n' ,; }
settled() {
    t=$(cut -d' ' -f1 /proc/uptime)
    i=0
    while lab_damon_busy || [ -n "$(trace_instances)" ]; do
        i=$((i + 1)); [ "$i" -le 200 ] || fail reason="kdamond-left-after-$1" "damon=\"$(lab_damon_state)\"" "trace_instances=$(trace_instances)" "settle_s=$settle_s"
        sleep 0.1
    done
    settle_s="$settle_s${settle_s:+,}$1:$(awk -v a="$t" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }')"
}

[ -f /sys/kernel/mm/damon/admin/kdamonds/nr_kdamonds ] || lab_fail reason=no-damon-sysfs
before=$(lab_damon_state)
lab_damon_busy && lab_fail reason=damon-busy-before "damon=\"$before\""

lab_start_workload "$L" --hot 4M --warm 0 --cold 8M --period-ms 100 --access write ||
    lab_fail reason=workload-no-layout

# 1. project stop
start_etmemd
start_project case=stop
etmem project stop -n lab -s "$SOCK" >/dev/null 2>&1 || fail reason=project-stop
settled project-stop
after_stop=$(lab_damon_state)
etmem obj del -f "$CONF" -s "$SOCK" >/dev/null 2>&1 || fail reason=obj-del

# 2. SIGTERM to etmemd while tracking
start_project case=sigterm
kill "$ED_PID"; wait "$ED_PID"; ED_PID=""
settled sigterm
after_term=$(lab_damon_state)

# 3. the tracked process exits while tracking (etmemd keeps running)
start_etmemd
start_project case=exit
lab_cleanup
settled process-exit
after_exit=$(lab_damon_state)
kill "$ED_PID"; wait "$ED_PID"; ED_PID=""

# 4. SIGKILL to etmemd while tracking: its kdamond keeps running, recorded in
# /run/etmemd/damon-K.state; a new etmemd reclaims it (its owner is dead), tracks the
# workload on it, and removes it on `project stop`.
lab_start_workload "$L" --hot 4M --warm 0 --cold 8M --period-ms 100 --access write ||
    fail reason=workload-no-layout case=sigkill
start_etmemd
start_project case=sigkill
killed=$ED_PID
kill -9 "$ED_PID"; wait "$ED_PID" 2>/dev/null; ED_PID=""
sleep 0.5
lab_damon_busy || fail reason=no-kdamond-after-sigkill "damon=\"$(lab_damon_state)\""
kd=/sys/kernel/mm/damon/admin/kdamonds
k=$(($(cat $kd/nr_kdamonds) - 1))
[ "$(lab_kd_state "$k")" = on ] || fail reason=kdamond-not-on-after-sigkill "damon=\"$(lab_damon_state)\""
kthread=$(cat $kd/$k/pid)
st=/run/etmemd/damon-$k.state
grep -qx "owner_pid=$killed" "$st" 2>/dev/null ||
    fail reason=no-state-file "file=$st" "content=\"$(cat "$st" 2>/dev/null | tr '\n' ' ')\""
grep -qx "kthread_pid=$kthread" "$st" || fail reason=state-file-kthread "kthread=$kthread" \
    "content=\"$(tr '\n' ' ' <"$st")\""
after_kill=$(lab_damon_state)
killed_instances=$(trace_instances)
start_etmemd
start_project case=reclaim
grep -q "reclaimed kdamond $k (kthread pid $kthread) left running by etmemd pid $killed" /tmp/dc-etmemd.log ||
    fail reason=not-reclaimed "damon=\"$(lab_damon_state)\""
# the killed etmemd's trace instance was removed by the new one
case ",$(trace_instances)" in *",etmemd-$killed,"*)
    fail reason=dead-etmemd-trace-instance-left "instances=$(trace_instances)" ;;
esac
k2=$(($(cat $kd/nr_kdamonds) - 1))
[ "$(lab_kd_state "$k2")" = on ] || fail reason=reclaimed-not-on "damon=\"$(lab_damon_state)\""
[ "$(cat $kd/$k2/contexts/0/targets/0/pid_target)" = "$WL_PID" ] ||
    fail reason=not-our-target "damon=\"$(lab_damon_state)\""
grep -qx "owner_pid=$ED_PID" "/run/etmemd/damon-$k2.state" 2>/dev/null ||
    fail reason=state-file-not-rewritten
etmem project stop -n lab -s "$SOCK" >/dev/null 2>&1 || fail reason=project-stop case=reclaim
settled reclaim-project-stop
[ -e "/run/etmemd/damon-$k2.state" ] && fail reason=state-file-left-after-stop
kill "$ED_PID"; wait "$ED_PID"; ED_PID=""
settled reclaim-sigterm
after_reclaim=$(lab_damon_state)

lab_pass "before=\"$before\"" "after_stop=\"$after_stop\"" "after_sigterm=\"$after_term\"" "after_exit=\"$after_exit\"" \
    "after_kill=\"$after_kill\"" "after_reclaim=\"$after_reclaim\"" "settle_s=$settle_s" \
    "trace_instances_after_kill=${killed_instances:-none}"
