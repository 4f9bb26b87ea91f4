#!/bin/sh
# lab-append: psi=1
# psi-engine: the psi engine on cgroup v2 (memory.reclaim, memory.pressure). Three cgroups
# under lab/: `work` and its unreclaimed `twin` each hold PSI_FILE_MB of cold page cache
# (a file each wrote on an ext2 filesystem on a zram disk, so the cache is charged to the
# writer's cgroup) and run a workload with PSI_HOT_MB hot and PSI_COLD_MB cold anonymous
# memory (no warm region: the working set is the hot one); `held` thrashes (PSI_HELD_MB hot
# under memory.max 24 MiB) so its PSI stays over its task's low `pressure` limit.
# The psi project (interval 2) must reclaim `work` to near its working set with its avg10
# under its limit, and leave `held` alone (pressure skips, nothing reclaimed). work and twin
# share vCPU 0; their throughput is touches per CPU second of the workload (touches from
# its SIGUSR1 reports, CPU time from /proc/PID/schedstat: what a swapped-out hot page or a
# refault costs lands there, the time the other twin runs does not), compared before
# etmemd starts (A) and while it runs (B): throughput_ratio = (work/twin in B) / (work/twin
# in A).
# Sizes and times: --env PSI_HOT_MB=, PSI_COLD_MB=, PSI_FILE_MB=, PSI_HELD_MB=, PSI_RUN_SECS=,
# PSI_WINDOW_SECS= (window A).
LAB_NAME=psi-engine
. /lab/lib.sh

CG=/sys/fs/cgroup
SOCK=psi_lab
CONF=/tmp/psi.ini
LOG=/tmp/etmemd-psi.log
MNT=/tmp/psi-fs
HOT_MB=${PSI_HOT_MB:-16}
COLD_MB=${PSI_COLD_MB:-48}
FILE_MB=${PSI_FILE_MB:-48}
HELD_MB=${PSI_HELD_MB:-40}
RUN_S=${PSI_RUN_SECS:-30}
WIN_S=${PSI_WINDOW_SECS:-15}
LIMIT=20
# the floor the task is given: the hot set and 4 MiB (limit_min_bytes), plus what the
# cgroup cannot give back (kernel memory: page tables, slab), measured below
MIN_MB=$((HOT_MB + 4))
PIDS=""
fail() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    [ -z "${ED_PID:-}" ] || kill "$ED_PID" 2>/dev/null
    echo "---- etmemd log (last 30 lines)"; tail -n 30 "$LOG" 2>/dev/null
    umount "$MNT" 2>/dev/null
    lab_fail "$@"
}

[ -e /proc/pressure/memory ] || lab_fail reason=no-psi cmdline="$(tr ' ' ',' </proc/cmdline)"
[ -e $CG/cgroup.controllers ] || lab_fail reason=no-cgroup2
grep -q zram /proc/swaps || lab_fail reason=no-zram-swap
# what `etmemd --probe` says the engine needs: the cgroup reclaim action and the engine
probe=$(etmemd --probe 2>&1 | grep -e '^action cgroup reclaim' -e '^engine psi')
echo "probe: $probe"
echo "$probe" | grep -qx 'action cgroup reclaim: available' || lab_fail reason=probe "probe=\"$probe\""
echo "$probe" | grep -qx 'engine psi: available' || lab_fail reason=probe-engine-psi "probe=\"$probe\""
echo +memory >$CG/cgroup.subtree_control || lab_fail reason=memory-controller
mkdir -p $CG/lab && echo +memory >$CG/lab/cgroup.subtree_control || lab_fail reason=lab-cgroup
for c in work twin held; do mkdir -p $CG/lab/$c; done
[ -e $CG/lab/work/memory.reclaim ] || lab_fail reason=no-memory.reclaim
echo 24M >$CG/lab/held/memory.max

in_cg() { # cgroup command...: runs command in cgroup lab/$1
    c=$1; shift
    sh -c "echo \$\$ >$CG/lab/$c/cgroup.procs && exec \"\$@\"" sh "$@"
}
mb() { echo $(( $(cat $CG/lab/$1/memory.current) / 1048576 )); }
stat_mb() { echo $(( $(sed -n "s/^$2 //p" $CG/lab/$1/memory.stat) / 1048576 )); }
file_mb() { stat_mb "$1" file; }
anon_mb() { stat_mb "$1" anon; }
avg10() { sed -n 's/^some avg10=\([0-9.]*\) .*/\1/p' $CG/lab/$1/memory.pressure; }

# an ext2 filesystem on a zram disk for the page cache (zero blocks: zram keeps them in
# nothing; the page cache holds every page all the same)
grep -q ext2 /proc/filesystems || lab_fail reason=no-ext2 filesystems="$(tr '\t\n' ' ,' </proc/filesystems)"
n=$(cat /sys/class/zram-control/hot_add) || lab_fail reason=zram-hot-add
echo $((FILE_MB * 2 + 32))M >/sys/block/zram$n/disksize || lab_fail reason=zram-disksize
# 4 KiB blocks: zram's logical block size (ext4 refuses 1 KiB blocks on it)
mke2fs -b 4096 /dev/zram$n >/dev/null || lab_fail reason=mke2fs
mkdir -p $MNT && mount -t ext2 /dev/zram$n $MNT || lab_fail reason=mount-ext2
for c in work twin; do
    in_cg $c dd if=/dev/zero of=$MNT/$c.dat bs=1M count="$FILE_MB" 2>/dev/null ||
        fail reason=write-file cgroup=$c
done
sync
for c in work twin; do
    f=$(file_mb $c)
    echo "page cache of $c: $f MiB (wrote $FILE_MB MiB)"
    [ "$f" -ge $((FILE_MB * 9 / 10)) ] || fail reason=file-cache-not-charged cgroup=$c file_mb=$f want_mb=$FILE_MB
done

start_wl() { # cgroup cpu-mask hot cold
    L=/tmp/psi-$1.json
    rm -f "$L"
    in_cg "$1" taskset "$2" etmem-workload --layout "$L" --hot "$3" --warm 0 --cold "$4" \
        --period-ms 100 >"$L.out" 2>&1 &
    PIDS="$PIDS $!"
    lab_wait_file "$L" 60 || fail reason=workload-no-layout cgroup=$1
    # the workload's own pid (the layout says it): `$!` is the shell that runs it
    p=$(sed -n 's/^{"pid":\([0-9]*\),.*/\1/p' "$L")
    [ -n "$p" ] || fail reason=workload-no-pid cgroup=$1
    PIDS="$PIDS $p"
    eval "PID_$1=$p"
}
# work and twin on vCPU 0 (mask 1), held on vCPU 1 (mask 2)
start_wl work 1 ${HOT_MB}M ${COLD_MB}M
start_wl twin 1 ${HOT_MB}M ${COLD_MB}M
start_wl held 2 ${HELD_MB}M 0
sleep 3

usr1() { # cgroup -> touches since its previous report (win_touches)
    eval "p=\$PID_$1"
    L=/tmp/psi-$1.json
    before=$(grep -c '^WORKLOAD report=usr1 ' "$L.out")
    kill -USR1 "$p" || { echo 0; return; }
    i=0
    while [ "$(grep -c '^WORKLOAD report=usr1 ' "$L.out")" -le "$before" ]; do
        i=$((i + 1)); [ $i -le 50 ] || { echo 0; return; }
        sleep 0.1
    done
    grep '^WORKLOAD report=usr1 ' "$L.out" | tail -n 1 |
        sed -n 's/.* win_touches=\([0-9]*\) .*/\1/p'
}
ticks() { # cgroup -> CPU time of its workload, ns (schedstat: exact, where stat has ticks)
    eval "p=\$PID_$1"
    cut -d' ' -f1 "/proc/$p/schedstat"
}
# window_start, then window_end: sets W_work and W_twin, touches per CPU second in between
window_start() {
    for c in work twin; do
        usr1 $c >/dev/null
        eval "T0_$c=\$(ticks $c)"
    done
}
window_end() {
    for c in work twin; do
        n=$(usr1 $c)
        eval "t0=\$T0_$c"
        t1=$(ticks $c)
        d=$((t1 - t0))
        w=$(awk -v n="$n" -v d="$d" 'BEGIN { if (d > 0) printf "%d", n * 1e9 / d; else print 0 }')
        eval "W_$c=$w CPU_$c=$((d / 1000000))"
    done
}
# window A: nothing of ours running
window_start
sleep "$WIN_S"
window_end
a_work=$W_work; a_twin=$W_twin; a_cpu="${CPU_work}ms/${CPU_twin}ms"
work0=$(mb work); twin0=$(mb twin); file0=$(file_mb work); anon0=$(anon_mb work)
# what work holds besides file and anonymous pages (kernel memory): no reclaim takes it
other0=$((work0 - file0 - anon0))
[ "$other0" -ge 0 ] || other0=0
echo "before: work ${work0} MiB (file $file0 anon $anon0 other $other0) twin ${twin0} MiB held $(mb held) MiB avg10 held $(avg10 held); A: work $a_work twin $a_twin touches per CPU s (CPU $a_cpu)"

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
pressure=$LIMIT
reclaim_rate=0.3
reclaim_rate_max=0.5
reclaim_rate_min=0.05
limit_min_bytes=$((MIN_MB * 1048576))
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
shown=$(etmem project show -n psi -s "$SOCK" 2>&1) || fail reason=project-show "out=\"$(echo $shown)\""
echo "$shown"

# window B: etmemd reclaiming work
window_start
max_avg10=0.00; held_min_avg10=""
t=0
while [ $t -lt "$RUN_S" ]; do
    sleep 1; t=$((t + 1))
    a=$(avg10 work); h=$(avg10 held)
    max_avg10=$(awk -v a="$a" -v m="$max_avg10" 'BEGIN { print (a > m) ? a : m }')
    held_min_avg10=$(awk -v a="$h" -v m="${held_min_avg10:-999}" 'BEGIN { print (a < m) ? a : m }')
    [ $((t % 5)) -ne 0 ] || echo "t=${t}s work $(mb work) MiB (file $(file_mb work) anon $(anon_mb work)) avg10 $a; held $(mb held) MiB avg10 $h"
done
window_end
b_work=$W_work; b_twin=$W_twin; b_cpu="${CPU_work}ms/${CPU_twin}ms"
work1=$(mb work); twin1=$(mb twin); file1=$(file_mb work); anon1=$(anon_mb work)
show_work=$(etmem engine showcg -n psi -e psi -t work -s "$SOCK" 2>&1)
show_held=$(etmem engine showcg -n psi -e psi -t held -s "$SOCK" 2>&1)
echo "$show_work"; echo "$show_held"
etmem project stop -n psi -s "$SOCK" >/dev/null 2>&1
rounds=$(grep -c "task \`work\` cgroup \`lab/work\`: reclaim" "$LOG")
held_writes=$(grep -c "reclaimed from cgroup \`lab/held\`" "$LOG")
# the twin is matched by no task: etmemd never names it
twin_lines=$(grep -c "lab/twin" "$LOG")
held_skips=$(echo "$show_held" | sed -n 's/.*cgroup lab\/held .* pressure_skips \([0-9]*\).*/\1/p')
held_bytes=$(echo "$show_held" | sed -n 's/.*cgroup lab\/held .* reclaimed \([0-9]*\) .*/\1/p')
work_rate=$(echo "$show_work" | sed -n 's/.*cgroup lab\/work rate \([0-9.]*\) .*/\1/p')
held_rate=$(echo "$show_held" | sed -n 's/.*cgroup lab\/held rate \([0-9.]*\) .*/\1/p')
reclaimed=$((work0 - work1))
# near the working set: the floor (hot + 4 MiB + kernel memory) and 8 MiB or 10 % of what
# the cgroup held, for page-table and LRU slack
ws=$((MIN_MB + other0))
slack=$((work0 / 10)); [ "$slack" -ge 8 ] || slack=8
want_reclaimed=$(( (work0 - ws - slack) ))
ratio=$(awk -v aw="$a_work" -v at="$a_twin" -v bw="$b_work" -v bt="$b_twin" \
    'BEGIN { if (aw > 0 && at > 0 && bt > 0) printf "%.3f", (bw / bt) / (aw / at); else print 0 }')
raw_ratio=$(awk -v a="$b_work" -v b="$b_twin" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print 0 }')
kill "$ED_PID" 2>/dev/null
for p in $PIDS; do kill "$p" 2>/dev/null; done
sleep 0.5
umount "$MNT" 2>/dev/null

res="hot_mb=$HOT_MB cold_mb=$COLD_MB file_mb=$FILE_MB reclaimed_mb=$reclaimed want_reclaimed_mb=$want_reclaimed"
res="$res work_mb=$work0->$work1 working_set_mb=$ws work_file_mb=$file0->$file1 work_anon_mb=$anon0->$anon1 twin_mb=$twin0->$twin1"
res="$res work_max_avg10=$max_avg10 work_pressure_limit=$LIMIT reclaim_rounds=$rounds work_rate=$work_rate"
res="$res held_min_avg10=$held_min_avg10 held_pressure_limit=0.5 held_skips=${held_skips:-0} held_reclaims=$held_writes held_reclaimed_bytes=${held_bytes:-?} held_rate=$held_rate"
res="$res tpcs_a_work=$a_work tpcs_a_twin=$a_twin cpu_a=$a_cpu tpcs_b_work=$b_work tpcs_b_twin=$b_twin cpu_b=$b_cpu b_work_over_twin=$raw_ratio throughput_ratio=$ratio run_s=$RUN_S"
[ "$reclaimed" -ge "$want_reclaimed" ] || fail reason=too-little-reclaimed $res
[ "$work1" -le $((ws + slack)) ] || fail reason=not-near-working-set $res
awk -v m="$max_avg10" -v l="$LIMIT" 'BEGIN { exit !(m < l) }' || fail reason=work-pressure-over-limit $res
[ "$held_writes" = 0 ] && [ "${held_bytes:-0}" = 0 ] || fail reason=held-cgroup-reclaimed $res
[ "${held_skips:-0}" -ge 1 ] || fail reason=held-never-skipped $res
[ "$twin_lines" = 0 ] || fail reason=twin-touched $res
# TCG moves the twins' per-CPU-second ratio by 10-15 % between windows (0.92 and 1.12
# over two runs with the same code); a hot page reclaimed and read back from zram costs
# tens of times a touch, which this still catches
awk -v r="$ratio" 'BEGIN { exit !(r >= 0.7) }' || fail reason=throughput-lost $res
lab_pass $res
