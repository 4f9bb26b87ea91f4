#!/bin/sh
# boot: the environment every other scenario relies on. Prints
# `LAB boot pass kernel=... nodes=2 swap=zram damon=sysfs ...` or fails with the reason.
LAB_NAME=boot
. /lab/lib.sh

kernel=$(uname -r)
# Two NUMA nodes, node 1 without CPUs.
nodes=$(ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | wc -l)
[ "$nodes" = 2 ] || lab_fail reason=expected-2-numa-nodes nodes=$nodes
node1_cpus=$(cat /sys/devices/system/node/node1/cpulist)
[ -z "$node1_cpus" ] || lab_fail reason=node1-has-cpus cpus=$node1_cpus
node1_mb=$(( $(sed -n 's/.*MemTotal: *\([0-9]*\) kB/\1/p' /sys/devices/system/node/node1/meminfo) / 1024 ))

# zram swap on.
grep -q '^/dev/zram0 ' /proc/swaps || lab_fail reason=no-zram-swap
swap_kb=$(sed -n 's/^SwapTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)
[ "${swap_kb:-0}" -gt 0 ] || lab_fail reason=swap-total-zero

# DAMON sysfs with vaddr among its operations.
D=/sys/kernel/mm/damon/admin
[ -d "$D/kdamonds" ] || lab_fail reason=no-damon-sysfs
echo 1 >"$D/kdamonds/nr_kdamonds" || lab_fail reason=damon-nr-kdamonds-write
echo 1 >"$D/kdamonds/0/contexts/nr_contexts" || lab_fail reason=damon-nr-contexts-write
ops=$(cat "$D/kdamonds/0/contexts/0/avail_operations" | tr '\n' ',' | sed 's/,$//')
echo 0 >"$D/kdamonds/0/contexts/nr_contexts"
echo 0 >"$D/kdamonds/nr_kdamonds"
case ",$ops," in *,vaddr,*) ;; *) lab_fail reason=damon-without-vaddr ops=$ops ;; esac

# page_idle absent (Debian's kernel has no CONFIG_IDLE_PAGE_TRACKING): scenarios must not
# assume it; if this changes, the scenarios relying on its absence need a look.
[ ! -e /sys/kernel/mm/page_idle ] || lab_fail reason=page_idle-present

# Soft-dirty: clear_refs exists and pagemap readable.
[ -e /proc/self/clear_refs ] || lab_fail reason=no-clear_refs
[ "$(dd if=/proc/self/pagemap bs=8 count=1 2>/dev/null | wc -c)" = 8 ] || lab_fail reason=pagemap-unreadable

# The workload starts and writes a valid layout; its pages are present.
L=/tmp/boot-layout.json
lab_start_workload "$L" --hot 4M --warm 4M --cold 8M --period-ms 50 --warm-every 4 --access write ||
    lab_fail reason=workload-no-layout
[ "$(lab_json_num "$L" pid)" = "$WL_PID" ] || lab_fail reason=layout-pid-mismatch
[ "$(lab_json_num "$L" page_size)" = 4096 ] || lab_fail reason=layout-page-size
for c in hot warm cold; do
    set -- $(lab_region "$L" $c)
    [ $# = 3 ] || lab_fail reason=layout-without-$c
    [ $(( ($2 - $1) / 4096 )) = "$3" ] || lab_fail reason=layout-$c-pages-mismatch
    set -- $(lab_pagemap_flags "$WL_PID" "$1")
    [ "$1" = 1 ] || lab_fail reason=$c-page-not-present
done

# Soft-dirty works for real: after clear_refs 4, a cold page is clean, a hot page
# (written every 50 ms) is dirty again.
set -- $(lab_region "$L" cold); cold=$1
set -- $(lab_region "$L" hot); hot=$1
echo 4 >"/proc/$WL_PID/clear_refs" || lab_fail reason=clear_refs-write
sleep 0.5
set -- $(lab_pagemap_flags "$WL_PID" "$cold"); cold_sd=$3
set -- $(lab_pagemap_flags "$WL_PID" "$hot"); hot_sd=$3
[ "$cold_sd" = 0 ] && [ "$hot_sd" = 1 ] || lab_fail reason=soft-dirty-not-working cold_sd=$cold_sd hot_sd=$hot_sd

# The workload answers SIGUSR1 with a throughput line.
kill -USR1 "$WL_PID"
i=0
until grep -q '^WORKLOAD report=usr1 ' "$L.out"; do
    i=$((i + 1)); [ $i -le 50 ] || lab_fail reason=workload-no-usr1-report
    sleep 0.1
done
busy_tps=$(sed -n 's/^WORKLOAD report=usr1 .* busy_touches_per_sec=\([0-9]*\) .*/\1/p' "$L.out" | head -n 1)
[ "${busy_tps:-0}" -gt 0 ] || lab_fail reason=workload-zero-throughput

tiers=$(ls /sys/devices/virtual/memory_tiering 2>/dev/null | grep -c '^memory_tier')
bins=$(ls /lab/bin | tr '\n' ',' | sed 's/,$//')
lab_pass kernel=$kernel nodes=$nodes node1_cpus=none node1_mb=$node1_mb swap=zram swap_mb=$((swap_kb / 1024)) \
    damon=sysfs damon_ops=$ops page_idle=absent soft_dirty=yes memory_tiers=$tiers workload=ok workload_busy_touches_per_sec=$busy_tps bins=$bins
