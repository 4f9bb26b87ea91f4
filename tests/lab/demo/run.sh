#!/bin/sh
# The etmem-rs demo, inside the kernel lab guest (Debian 6.12, zram swap, DAMON): a workload
# with 16 MiB of hot memory (written every 100 ms) and 48 MiB it never touches again;
# etmemd with the slide engine, driven only by etmem and a config file, swaps the cold
# memory out and leaves the hot memory in RAM. Run by scripts/demo via
# `tests/lab/run --with tests/lab/demo boot`.
. /lab/lib.sh
SOCK=demo
CONF=/tmp/demo.ini
L=/tmp/demo-layout.json

say() { echo "demo: $*"; }
run() { echo "\$ $*"; "$@"; echo "(exit $?)"; }
# region_kb PID START FIELD: a field (Rss, Swap) in kB of the VMA that starts at START.
region_kb() {
    hex=$(printf '%x' "$2")
    awk -v s="$hex-" -v f="$3:" '/^[0-9a-f]+-[0-9a-f]+ / { inv = (index($0, s) == 1); next }
        inv && $1 == f { print $2; exit }' "/proc/$1/smaps"
}
report() {
    say "$1: hot region rss=$(region_kb $WL_PID $hot_start Rss)kB swap=$(region_kb $WL_PID $hot_start Swap)kB;" \
        "cold region rss=$(region_kb $WL_PID $cold_start Rss)kB swap=$(region_kb $WL_PID $cold_start Swap)kB"
}

say "kernel $(uname -r); swap: $(tail -n +2 /proc/swaps | awk '{print $1, $3 "kB"}')"
run etmemd --probe
lab_start_workload "$L" --hot 16M --warm 0 --cold 48M --period-ms 100 --access write || {
    say "the workload did not start"; exit 1; }
set -- $(lab_region "$L" hot); hot_start=$1
set -- $(lab_region "$L" cold); cold_start=$1
say "workload pid $WL_PID"
report "before etmemd"

cat >"$CONF" <<CONF
[project]
name=demo
loop=2
interval=1
sleep=1

[engine]
name=slide
project=demo

[task]
project=demo
engine=slide
name=workload
type=pid
value=$WL_PID
T=1
CONF
chmod 0600 "$CONF"
say "config $CONF:"; cat "$CONF"

etmemd -l 1 -s "$SOCK" 2>/tmp/demo-etmemd.log &
ED=$!
i=0; until etmem project show -s "$SOCK" >/dev/null 2>&1; do i=$((i+1)); [ $i -le 50 ] || break; sleep 0.1; done
run etmem obj add -f "$CONF" -s "$SOCK"
run etmem project start -n demo -s "$SOCK"
run etmem project show -s "$SOCK"
sleep 12
report "after 12 s of etmemd"
run etmem project stop -n demo -s "$SOCK"
run etmem obj del -f "$CONF" -s "$SOCK"
run etmem project show -s "$SOCK"
kill -TERM "$ED"; wait "$ED"; say "etmemd exited with $?"
say "etmemd's log (info level):"; sed 's/^/    /' /tmp/demo-etmemd.log | tail -n 20
lab_cleanup
