#!/bin/sh
# lab-append: psi=1
# psi-engine: the psi engine on cgroup v2 (memory.reclaim, memory.pressure). Three cgroups
# under lab/: `work` and its unreclaimed `twin` each hold 48 MiB of cold page cache (clean
# blocks of a zram disk: tmpfs pages are no file cache) and a workload with 16 MiB hot and
# 48 MiB cold anonymous memory; `held` thrashes (a 40 MiB hot set under memory.max 24 MiB)
# so its PSI stays over its task's low `pressure` limit. The psi project (interval 2) must
# reclaim `work` to near its working set with its avg10 under its limit, leave `held`
# alone (pressure skips, nothing reclaimed), and keep work's hot throughput near the twin's.
LAB_NAME=psi-engine
. /lab/lib.sh

CG=/sys/fs/cgroup
SOCK=psi_lab
CONF=/tmp/psi.ini
LOG=/tmp/etmemd-psi.log
HOT_MB=16
RUN_S=${PSI_RUN_SECS:-30}
PIDS=""
fail() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    [ -z "${ED_PID:-}" ] || kill "$ED_PID" 2>/dev/null
    echo "---- etmemd log (last 30 lines)"; tail -n 30 "$LOG" 2>/dev/null
    lab_fail "$@"
}

[ -e /proc/pressure/memory ] || lab_fail reason=no-psi cmdline="$(tr ' ' ',' </proc/cmdline)"
[ -e $CG/cgroup.controllers ] || lab_fail reason=no-cgroup2
grep -q zram /proc/swaps || lab_fail reason=no-zram-swap
probe=$(etmemd --probe 2>&1 | grep '^action cgroup reclaim')
echo "probe: $probe"
echo +memory >$CG/cgroup.subtree_control || lab_fail reason=memory-controller
mkdir -p $CG/lab && echo +memory >$CG/lab/cgroup.subtree_control || lab_fail reason=lab-cgroup
for c in work twin held; do mkdir -p $CG/lab/$c; done
[ -e $CG/lab/work/memory.reclaim ] || lab_fail reason=no-memory.reclaim
echo 24M >$CG/lab/held/memory.max

# a block device for page cache
n=$(cat /sys/class/zram-control/hot_add) || lab_fail reason=zram-hot-add
echo 128M >/sys/block/zram$n/disksize || lab_fail reason=zram-disksize
in_cg() { # cgroup command...: runs command in cgroup lab/$1
    c=$1; shift
    sh -c "echo \$\$ >$CG/lab/$c/cgroup.procs && exec \"\$@\"" sh "$@"
}
in_cg work dd if=/dev/urandom of=/dev/zram$n bs=1M count=48 2>/dev/null
in_cg twin dd if=/dev/urandom of=/dev/zram$n bs=1M count=48 seek=48 2>/dev/null
sync

start_wl() { # cgroup hot cold
    L=/tmp/psi-$1.json
    rm -f "$L"
    in_cg "$1" etmem-workload --layout "$L" --hot "$2" --cold "$3" --period-ms 100 >"$L.out" 2>&1 &
    PIDS="$PIDS $!"
    eval "PID_$1=$!"
    lab_wait_file "$L" 60 || fail reason=workload-no-layout cgroup=$1
}
start_wl work ${HOT_MB}M 48M
start_wl twin ${HOT_MB}M 48M
start_wl held 40M 0
sleep 3

mb() { echo $(( $(cat $CG/lab/$1/memory.current) / 1048576 )); }
file_mb() { echo $(( $(sed -n 's/^file //p' $CG/lab/$1/memory.stat) / 1048576 )); }
anon_mb() { echo $(( $(sed -n 's/^anon //p' $CG/lab/$1/memory.stat) / 1048576 )); }
avg10() { sed -n 's/^some avg10=\([0-9.]*\) .*/\1/p' $CG/lab/$1/memory.pressure; }
work0=$(mb work); twin0=$(mb twin); file0=$(file_mb work); anon0=$(anon_mb work)
echo "before: work ${work0} MiB (file $file0 anon $anon0) twin ${twin0} MiB held $(mb held) MiB avg10 held $(avg10 held)"

# throughput windows start now
usr1() { # cgroup -> win_busy_touches_per_sec of a fresh report
    eval "p=\$PID_$1"
    L=/tmp/psi-$1.json
    before=$(grep -c '^WORKLOAD report=usr1 ' "$L.out")
    kill -USR1 "$p"
    i=0
    while [ "$(grep -c '^WORKLOAD report=usr1 ' "$L.out")" -le "$before" ]; do
        i=$((i + 1)); [ $i -le 50 ] || { echo 0; return; }
        sleep 0.1
    done
    grep '^WORKLOAD report=usr1 ' "$L.out" | tail -n 1 |
        sed -n 's/.* win_busy_touches_per_sec=\([0-9]*\).*/\1/p'
}
usr1 work >/dev/null; usr1 twin >/dev/null

cat >"$CONF" <<CONF
[project]
name=psi
scan_type=psi
interval=2

[engine]
name=psi
project=psi

[task]
project=psi
engine=psi
name=work
type=name
value=cgroup_v2
cg_dir=lab/w*
pressure=20
reclaim_rate=0.3
reclaim_rate_max=0.5
reclaim_rate_min=0.05
limit_min_bytes=$(( (HOT_MB + 4) * 1048576 ))
reclaim_max_bytes=67108864

[task]
project=psi
engine=psi
name=held
type=name
value=cgroup_v2
cg_dir=lab/{held}
pressure=0.5
reclaim_rate=0.3
CONF
chmod 0600 "$CONF"
lab_start_etmemd "$SOCK" "$LOG" 1 || fail reason=etmemd-not-answering
out=$(etmem obj add -f "$CONF" -s "$SOCK" 2>&1) || fail reason=obj-add "out=\"$(echo $out)\""
out=$(etmem project start -n psi -s "$SOCK" 2>&1) || fail reason=project-start "out=\"$(echo $out)\""

max_avg10=0.00; held_min_avg10=""
t=0
while [ $t -lt "$RUN_S" ]; do
    sleep 1; t=$((t + 1))
    a=$(avg10 work); h=$(avg10 held)
    max_avg10=$(awk -v a="$a" -v m="$max_avg10" 'BEGIN { print (a > m) ? a : m }')
    held_min_avg10=$(awk -v a="$h" -v m="${held_min_avg10:-999}" 'BEGIN { print (a < m) ? a : m }')
    [ $((t % 5)) -ne 0 ] || echo "t=${t}s work $(mb work) MiB (file $(file_mb work) anon $(anon_mb work)) avg10 $a; held $(mb held) MiB avg10 $h"
done
tps_work=$(usr1 work); tps_twin=$(usr1 twin)
work1=$(mb work); twin1=$(mb twin); file1=$(file_mb work); anon1=$(anon_mb work)
show_work=$(etmem engine showcg -n psi -e psi -t work -s "$SOCK" 2>&1)
show_held=$(etmem engine showcg -n psi -e psi -t held -s "$SOCK" 2>&1)
echo "$show_work"; echo "$show_held"
etmem project stop -n psi -s "$SOCK" >/dev/null 2>&1
rounds=$(grep -c "task \`work\` cgroup \`lab/work\`: reclaim" "$LOG")
held_writes=$(grep -c "reclaimed from cgroup \`lab/held\`" "$LOG")
held_skips=$(echo "$show_held" | sed -n 's/.*cgroup lab\/held .* pressure_skips \([0-9]*\).*/\1/p')
work_rate=$(echo "$show_work" | sed -n 's/.*cgroup lab\/work rate \([0-9.]*\) .*/\1/p')
held_rate=$(echo "$show_held" | sed -n 's/.*cgroup lab\/held rate \([0-9.]*\) .*/\1/p')
reclaimed=$((work0 - work1))
ratio=$(awk -v a="$tps_work" -v b="$tps_twin" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print 0 }')
kill "$ED_PID" 2>/dev/null
for p in $PIDS; do kill "$p" 2>/dev/null; done

res="reclaimed_mb=$reclaimed work_mb=$work0->$work1 work_file_mb=$file0->$file1 work_anon_mb=$anon0->$anon1 twin_mb=$twin0->$twin1 hot_mb=$HOT_MB"
res="$res work_max_avg10=$max_avg10 work_pressure_limit=20 reclaim_rounds=$rounds work_rate=$work_rate"
res="$res held_min_avg10=$held_min_avg10 held_pressure_limit=0.5 held_skips=${held_skips:-0} held_reclaims=$held_writes held_rate=$held_rate"
res="$res tps_work=$tps_work tps_twin=$tps_twin throughput_ratio=$ratio run_s=$RUN_S"
[ "$reclaimed" -ge 60 ] || fail reason=too-little-reclaimed $res
[ "$work1" -le $((HOT_MB + 32)) ] || fail reason=not-near-working-set $res
awk -v m="$max_avg10" 'BEGIN { exit !(m < 20) }' || fail reason=work-pressure-over-limit $res
[ "$held_writes" = 0 ] || fail reason=held-cgroup-reclaimed $res
[ "${held_skips:-0}" -ge 1 ] || fail reason=held-never-skipped $res
awk -v r="$ratio" 'BEGIN { exit !(r >= 0.5) }' || fail reason=throughput-lost $res
lab_pass $res
