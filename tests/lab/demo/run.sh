#!/bin/sh
# The etmem-rs demo, inside the kernel lab guest (Debian 6.12, zram swap, DAMON), run by
# scripts/demo through `tests/lab/run --with DIR --host-bin /usr/bin/perl boot`. Two parts:
# 1. README.md's path "From a fresh host to the first cold page swapped", as written there
#    (DIR/first-steps.sh, cut out of README.md by scripts/demo), from the .deb that
#    scripts/package built (DIR/target/package), installed with busybox's dpkg; the guest
#    has no systemd, so DIR/shim holds stand-ins for `systemctl start|stop etmemd` (the
#    installed unit's ExecStart) and `journalctl -t` (busybox syslogd's file). The perl
#    process's memory, written once, must end up mostly in swap.
# 2. a workload with 16 MiB of hot memory (written every 100 ms) and 48 MiB it never
#    touches again; etmemd with the slide engine swaps the cold memory out and leaves the
#    hot memory in RAM.
# Exits non-zero when either part did not show what it says.
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
ok=1
# kB_of PID FIELD: a field (VmRSS, VmSwap) of /proc/PID/status in kB.
kB_of() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

say "part 1: README.md's path from a fresh host, with the package"
# Only the package's binaries from here on.
rm -f /lab/bin/etmemd /lab/bin/etmem
# busybox dpkg's database: libc6 and libgcc-s1, which the .deb depends on, are in the guest
# (the lab copies the build machine's libraries), with the versions scripts/demo read off it.
mkdir -p /var/lib/dpkg/info /var/lib/dpkg/updates
cp /lab/with/dpkg-status /var/lib/dpkg/status
syslogd -O /tmp/messages
PATH=/lab/with/shim:$PATH
export PATH
sh -x ./first-steps.sh 2>&1
say "etmemd and etmem are $(command -v etmemd) and $(command -v etmem)"
[ "$(command -v etmemd)" = /usr/bin/etmemd ] || { say "FAIL: etmemd is not the package's"; ok=0; }
perl_pid=$(pidof perl)
if [ -n "$perl_pid" ]; then
    rss=$(kB_of "$perl_pid" VmRSS); swapped=$(kB_of "$perl_pid" VmSwap)
    say "perl (pid $perl_pid): VmRSS ${rss} kB, VmSwap ${swapped} kB"
    # 64 MiB written once: at least half of it must be in swap.
    [ "${swapped:-0}" -ge 32768 ] || { say "FAIL: less than 32768 kB of perl's memory swapped"; ok=0; }
    kill "$perl_pid"
else
    say "FAIL: no perl process"; ok=0
fi
n=$(grep -c "round" /tmp/messages)
say "etmemd logged $n round line(s) to syslog"
[ "$n" -gt 0 ] || { say "FAIL: no round in etmemd's log"; ok=0; }
systemctl stop etmemd

say "part 2: hot memory stays, cold memory goes"
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
hot_swap=$(region_kb $WL_PID $hot_start Swap); cold_swap=$(region_kb $WL_PID $cold_start Swap)
# 48 MiB cold: at least 3/4 in swap; 16 MiB hot: at most 1/8 of it.
[ "${cold_swap:-0}" -ge 36864 ] || { say "FAIL: only ${cold_swap:-0} kB of the 48 MiB cold region swapped"; ok=0; }
[ "${hot_swap:-0}" -le 2048 ] || { say "FAIL: ${hot_swap} kB of the 16 MiB hot region swapped"; ok=0; }
run etmem project stop -n demo -s "$SOCK"
run etmem obj del -f "$CONF" -s "$SOCK"
run etmem project show -s "$SOCK"
kill -TERM "$ED"; wait "$ED"; say "etmemd exited with $?"
say "etmemd's log (info level):"; sed 's/^/    /' /tmp/demo-etmemd.log | tail -n 20
lab_cleanup
if [ "$ok" = 1 ]; then say "both parts showed what they say"; else say "FAILED"; exit 1; fi
