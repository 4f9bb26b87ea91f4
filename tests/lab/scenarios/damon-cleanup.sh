#!/bin/sh
# damon-cleanup: etmemd removes the kdamond its DAMON tracker created, whatever ends the
# tracking: `etmem project stop`, SIGTERM to etmemd, or the tracked process exiting.
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

# settled WHAT: DAMON must be free within 5 s.
settled() {
    i=0
    while lab_damon_busy; do
        i=$((i + 1)); [ "$i" -le 50 ] || fail reason="kdamond-left-after-$1" "damon=\"$(lab_damon_state)\""
        sleep 0.1
    done
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

lab_pass "before=\"$before\"" "after_stop=\"$after_stop\"" "after_sigterm=\"$after_term\"" "after_exit=\"$after_exit\""
