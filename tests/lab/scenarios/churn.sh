#!/bin/sh
# churn: etmemd's slide follows `type=name` tasks while processes of those names start and
# exit at 1,000 a minute (issue 12). CHURN_SECS (default 60; `tests/lab/run --env
# CHURN_SECS=300 --timeout 600 churn` for the 5-minute soak) seconds of `etmem-lab churn`:
# - task `long` (type=name value=wlchurn): a long-lived workload named wlchurn (hot 8 MiB
#   written every 100 ms, cold 24 MiB) started first, on the lowest pid, plus wlchurn
#   children that live 0.2-2 s, CHURN_PER_MIN (1000) starts a minute;
# - task `flip` (type=name value=wlflip): only short-lived processes (2-8 s, 60 a minute),
#   so its target changes and exits during rounds;
# - decoys (wldecoy, untracked, 600 a minute, 0.5-3 s) that take the pids the others free:
#   pid_max is lowered to CHURN_PID_MAX (400) for the run, so pids come round every few
#   seconds. Every child maps the same 1 MiB at the same address in an address space
#   forked from one parent, filled once: an action meant for a flip that reached the decoy
#   now holding its pid would swap the decoy's pages, which each child reports before it
#   exits.
# Pass: etmemd answers `project show` all along and is up at the end; its RSS and open fds
# at the end within 10 % of those after its first rounds, and every pidfd it holds at the
# end refers to the long-lived process (fdinfo `Pid:`), the only target left; no decoy page ever in swap while
# decoys did get pids of flips gone moments before (the hazard happened); some flips had
# pages swapped (etmemd acted on short-lived targets); the long-lived process's cold region
# >= 99 % in swap, its hot one <= 0.1 %, at most 0.1 % of its hot pages read back.
LAB_NAME=churn
. /lab/lib.sh

SECS=${CHURN_SECS:-60}
PER_MIN=${CHURN_PER_MIN:-1000}
PID_MAX=${CHURN_PID_MAX:-400}
SOCK=lab_churn
CONF=/tmp/churn.conf
LOG=/tmp/churn-etmemd.log
L=/tmp/churn-layout.json
REP=/tmp/churn-report.txt
ED_PID=""
SP_PID=""
pid_max0=$(cat /proc/sys/kernel/pid_max)

cleanup_all() {
    [ -n "$SP_PID" ] && kill "$SP_PID" 2>/dev/null && wait "$SP_PID" 2>/dev/null
    [ -n "$ED_PID" ] && kill "$ED_PID" 2>/dev/null && wait "$ED_PID" 2>/dev/null
    SP_PID=""; ED_PID=""
    echo "$pid_max0" >/proc/sys/kernel/pid_max
}
fail() { cleanup_all; lab_fail "$@"; }

grep -q zram /proc/swaps || lab_fail reason=no-zram-swap
[ -e /proc/sys/kernel/ns_last_pid ] || lab_fail reason=no-ns_last_pid

# majflt PID: the major faults of PID (its cold region is never touched again and the rest
# of its memory is locked: each one is a hot page read back from swap).
majflt() { set -- $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null); echo "${10:-0}"; }
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status" 2>/dev/null; }
nfds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
# fd_targets PID: what PID's fds point at, one per line, sorted.
fd_targets() { for f in /proc/"$1"/fd/*; do readlink "$f"; done 2>/dev/null | sort; }
# pidfd_pids PID: the pid each of PID's pidfds refers to (fdinfo `Pid:`; -1 once that
# process has exited), sorted, comma-joined.
pidfd_pids() {
    for f in /proc/"$1"/fd/*; do
        [ "$(readlink "$f")" = "anon_inode:[pidfd]" ] || continue
        awk '$1 == "Pid:" { print $2 }' "/proc/$1/fdinfo/${f##*/}"
    done 2>/dev/null | sort -n | tr '\n' , | sed 's/,$//'
}
# added A B: the lines of B beyond those of A (counted), comma-joined.
added() {
    echo "$1" | awk -v b="$2" 'NF { n[$0]++ } END {
        k = split(b, l, "\n"); s = ""
        for (i = 1; i <= k; i++) if (l[i] != "" && n[l[i]]-- <= 0) s = s (s == "" ? "" : ",") l[i]
        print (s == "" ? "none" : s) }'
}
# plans TASK: the round plans etmemd logged for TASK so far.
plans() { grep -c "task \`$1\`: round [0-9]*: plan returned" "$LOG"; }
# wait_plans TASK N SECS: until TASK has N plans; 1 after SECS.
wait_plans() {
    i=0
    while [ "$(plans "$1")" -lt "$2" ]; do
        i=$((i + 1)); [ "$i" -le $(($3 * 5)) ] || return 1
        sleep 0.2
    done
}

# The long-lived wlchurn first, on the lowest pid the churn can use (pids come round to
# 300, RESERVED_PIDS, after pid_max): comm is the name of the file executed.
ln -sf "$(command -v etmem-workload)" /tmp/wlchurn
rm -f "$L"
echo 299 >/proc/sys/kernel/ns_last_pid
/tmp/wlchurn --layout "$L" --hot 8M --warm 0 --cold 24M --period-ms 100 --access write \
    --lock-rest >"$L.out" 2>&1 &
WL_PID=$!
lab_wait_file "$L" 60 || fail reason=workload-no-layout
[ "$(cat /proc/$WL_PID/comm)" = wlchurn ] || fail reason=workload-comm "comm=$(cat /proc/$WL_PID/comm)"
set -- $(lab_region "$L" hot); hot_start=$1; hot_kb=$(( ($2 - $1) / 1024 ))
set -- $(lab_region "$L" cold); cold_start=$1; cold_kb=$(( ($2 - $1) / 1024 ))

cat >"$CONF" <<CONF
[project]
name=churn
loop=3
interval=1
sleep=1

[engine]
name=slide
project=churn

[task]
project=churn
engine=slide
name=long
type=name
value=wlchurn
T=1

[task]
project=churn
engine=slide
name=flip
type=name
value=wlflip
T=1
CONF
chmod 0600 "$CONF"

: >"$LOG"
lab_start_etmemd "$SOCK" "$LOG" || fail reason=etmemd-not-listening
out=$(etmem obj add -f "$CONF" -s "$SOCK" 2>&1) || fail reason=obj-add "out=\"$(echo $out)\""
flt0=$(majflt "$WL_PID")
out=$(etmem project start -n churn -s "$SOCK" 2>&1) || fail reason=project-start "out=\"$(echo $out)\""
wait_plans long 2 120 || fail reason=no-first-rounds
rss0=$(rss_kb "$ED_PID"); fds0=$(nfds "$ED_PID"); fdt0=$(fd_targets "$ED_PID")
pidfds0=$(pidfd_pids "$ED_PID")

echo "$PID_MAX" >/proc/sys/kernel/pid_max || fail reason=pid_max
etmem-lab churn --secs "$SECS" --per-min "$PER_MIN" --report "$REP" >/tmp/churn.out 2>/tmp/churn.err &
SP_PID=$!
shows=0; show_failed=0
while kill -0 "$SP_PID" 2>/dev/null; do
    sleep 5
    shows=$((shows + 1))
    etmem project show -s "$SOCK" >/dev/null 2>&1 || show_failed=$((show_failed + 1))
done
wait "$SP_PID"; sp_rc=$?
SP_PID=""
echo "$pid_max0" >/proc/sys/kernel/pid_max
churn=$(cat /tmp/churn.out)
[ -n "$churn" ] || fail reason=no-churn-summary "err=\"$(tail -n 3 /tmp/churn.err | tr '\n' ' ')\""

# two more rounds of the long-lived process after the churn
n=$(plans long)
wait_plans long $((n + 2)) 60 || fail reason=no-rounds-after-churn $churn
kill -0 "$ED_PID" 2>/dev/null || fail reason=etmemd-died $churn
etmem project show -s "$SOCK" >/dev/null 2>&1 || fail reason=no-show-after $churn
rss1=$(rss_kb "$ED_PID"); fds1=$(nfds "$ED_PID"); fdt1=$(fd_targets "$ED_PID")
pidfds1=$(pidfd_pids "$ED_PID")
fds_added=$(added "$fdt0" "$fdt1" | tr -c 'A-Za-z0-9_.,:/[]\n-' _)
cold_sw=$(lab_smaps_kb "$WL_PID" "$cold_start" Swap)
hot_sw=$(lab_smaps_kb "$WL_PID" "$hot_start" Swap)
hot_refaults=$(( $(majflt "$WL_PID") - flt0 ))
left=$(grep -c 'left during the round\|left before its scan\|the process is gone' "$LOG")
skipped=$(grep -c "task \`flip\`: round skipped" "$LOG")
flip_plans=$(plans flip)
panics=$(grep -ci 'panick' "$LOG")
etmem project stop -n churn -s "$SOCK" >/dev/null 2>&1
cleanup_all

num() { echo "$churn" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
res="$churn sp_rc=$sp_rc long_pid=$WL_PID etmemd_rss_kb=$rss0,$rss1 etmemd_fds=$fds0,$fds1 etmemd_fds_added=$fds_added etmemd_pidfds=${pidfds0:-none}/${pidfds1:-none} shows=$shows show_failed=$show_failed"
res="$res long_plans=$(plans long) flip_plans=$flip_plans flip_rounds_skipped=$skipped targets_left=$left panics=$panics"
res="$res cold_kb=$cold_kb cold_swap_kb=$cold_sw hot_swap_kb=$hot_sw hot_refaults=$hot_refaults"
[ "$sp_rc" = 0 ] || lab_fail reason=spawner $res
[ "$panics" = 0 ] || lab_fail reason=panic $res
[ "$show_failed" = 0 ] || lab_fail reason=show-failed $res
[ $((rss1 * 10)) -le $((rss0 * 11)) ] || lab_fail reason=rss-grew $res
[ $((fds1 * 10)) -le $((fds0 * 11)) ] || lab_fail reason=fds-grew $res
# after the churn only the long-lived wlchurn is a target: every pidfd etmemd still holds
# must refer to it (not to an exited process, -1, nor to another one)
[ -n "$pidfds1" ] || lab_fail reason=no-pidfd-for-long $res
for p in $(echo "$pidfds1" | tr , ' '); do
    [ "$p" = "$WL_PID" ] || lab_fail reason=pidfd-of-another-process $res
done
[ "$(num decoy_on_flip_pid)" -gt 0 ] || lab_fail reason=no-pid-reuse $res
[ "$(num flip_swapped)" -gt 0 ] || lab_fail reason=no-flip-swapped $res
[ "$left" -gt 0 ] || lab_fail reason=no-target-left $res
[ $((cold_sw * 100)) -ge $((cold_kb * 99)) ] || lab_fail reason=long-cold-not-swapped $res
[ $((hot_sw * 1000)) -le "$hot_kb" ] || lab_fail reason=long-hot-swapped $res
[ $((hot_refaults * 4 * 1000)) -le "$hot_kb" ] || lab_fail reason=long-hot-refaulted $res
lab_pass $res
