#!/bin/sh
# lab-hugepages: 16
# cslide-tiering: etmemd + etmem with the cslide engine (node_pair=0,1: node 0 hot/DRAM,
# node 1 cold) on a hugetlb workload whose hot (written every 100 ms) and cold regions
# both start on node 0. node_hot_reserve is larger than node 0's free huge memory, so
# cold pages must leave node 0, at most node_mig_quota (8 MiB = 4 pages) per round.
# Pass: within a few rounds >= 99 % of the cold region is on node 1 and >= 99 % of the
# hot region on node 0 (per /proc/PID/numa_maps of each region's VMA); no two samples
# less than 1 s apart (rounds are `interval` = 1 s apart) differ by more than the quota;
# `showtaskpages` and `showhostpages` agree with numa_maps and the nodes' nr_hugepages.
LAB_NAME=cslide-tiering
. /lab/lib.sh

SOCK=lab_cslide
CONF=/tmp/cslide-tiering.conf
L=/tmp/ct-layout.json
QUOTA_MB=8
ED_PID=""

cleanup_all() {
    [ -n "$ED_PID" ] && kill "$ED_PID" 2>/dev/null && wait "$ED_PID" 2>/dev/null
    ED_PID=""
}
# On failure, the end of etmemd's log goes to the console (the LAB line stays last).
dump_log() { [ -f /tmp/ct-etmemd.log ] && tail -n 40 /tmp/ct-etmemd.log | sed 's/^/etmemd: /'; }
fail() { cleanup_all; dump_log; lab_fail "$@"; }

# numa_pages PID START(decimal) NODE: huge pages of the VMA at START on NODE (N<node>=).
numa_pages() {
    hex=$(printf '%x' "$2")
    awk -v s="$hex" -v k="N$3" '
        $1 == s { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) n = kv[2] }
                  print n + 0; found = 1; exit }
        END { if (!found) print -1 }' "/proc/$1/numa_maps"
}

[ -d /sys/devices/system/node/node1 ] || lab_fail reason=no-node1
command -v etmemd >/dev/null || lab_fail reason=no-etmemd
for n in 0 1; do
    hp=$(cat /sys/devices/system/node/node$n/hugepages/hugepages-2048kB/nr_hugepages)
    [ "$hp" -ge 16 ] || lab_fail reason=no-hugepages node=$n nr=$hp
done

lab_start_workload "$L" --hugetlb --node 0 --hot 8M --warm 0 --cold 16M --period-ms 100 \
    --access write || lab_fail reason=workload-no-layout
set -- $(lab_region "$L" hot); hot_start=$1; hot_pages=$(( ($2 - $1) / 2097152 ))
set -- $(lab_region "$L" cold); cold_start=$1; cold_pages=$(( ($2 - $1) / 2097152 ))
[ "$(numa_pages "$WL_PID" "$cold_start" 0)" -eq "$cold_pages" ] || fail reason=cold-not-on-node0
[ "$(numa_pages "$WL_PID" "$hot_start" 0)" -eq "$hot_pages" ] || fail reason=hot-not-on-node0

cat >"$CONF" <<CONF
[project]
name=lab
loop=1
interval=1
sleep=1

[engine]
name=cslide
project=lab
node_pair=0,1
hot_threshold=1
node_mig_quota=$QUOTA_MB
node_hot_reserve=1024

[task]
project=lab
engine=cslide
name=wl
type=pid
value=$WL_PID
vm_flags=ht
anon_only=no
ign_host=yes
CONF
chmod 0600 "$CONF"

: >/tmp/ct-etmemd.log
lab_start_etmemd "$SOCK" /tmp/ct-etmemd.log || fail reason=etmemd-not-listening
out=$(etmem obj add -f "$CONF" -s "$SOCK" 2>&1) || fail reason=obj-add "out=\"$(echo $out)\""
out=$(etmem project start -n lab -s "$SOCK" 2>&1) || fail reason=project-start "out=\"$(echo $out)\""

# Sample about every 0.25 s, each with its time: pages moved = cold pages on node 1 + hot
# pages on node 1. Rounds act at least `interval` (1 s) apart, so no two samples less than
# 1 s apart may differ by more than the quota. The times are read, not assumed: a busy
# host can make an iteration take longer than 0.25 s.
quota_pages=$((QUOTA_MB / 2))
now() { cut -d' ' -f1 /proc/uptime; }
t0=$(now)
samples=""
done_t=""
while :; do
    c1=$(numa_pages "$WL_PID" "$cold_start" 1)
    h1=$(numa_pages "$WL_PID" "$hot_start" 1)
    [ "$c1" -ge 0 ] && [ "$h1" -ge 0 ] || fail reason=vma-gone
    t=$(now)
    samples="$samples $t:$((c1 + h1))"
    if [ -z "$done_t" ] && [ $((c1 * 100)) -ge $((cold_pages * 99)) ]; then
        done_t=$t
    fi
    # after convergence, two more rounds (about 3 s each) before checking; 60 s at most
    [ -n "$done_t" ] && awk -v a="$done_t" -v b="$t" 'BEGIN { exit !(b - a >= 6) }' && break
    awk -v a="$t0" -v b="$t" 'BEGIN { exit !(b - a >= 60) }' && break
    sleep 0.25
done
# max_window: the most pages moved between two samples less than 1 s apart; windows: how
# many such pairs there were (0 would make the quota check empty).
set -- $(echo $samples | tr ' ' '\n' | awk -F: '
    { t[NR] = $1; s[NR] = $2 }
    END {
        max = 0; n = 0
        for (i = 2; i <= NR; i++)
            for (j = i - 1; j >= 1 && t[i] - t[j] < 1.0; j--) {
                n++; d = s[i] - s[j]; if (d > max) max = d
            }
        print max, n
    }')
max_window=$1
windows=$2

cold_n1=$(numa_pages "$WL_PID" "$cold_start" 1)
hot_n0=$(numa_pages "$WL_PID" "$hot_start" 0)
tp=$(etmem engine showtaskpages -n lab -e cslide -t wl -s "$SOCK" 2>&1)
hp=$(etmem engine showhostpages -n lab -e cslide -s "$SOCK" 2>&1)
etmem project stop -n lab -s "$SOCK" >/dev/null 2>&1
cleanup_all
echo "showtaskpages:"; echo "$tp"; echo "showhostpages:"; echo "$hp"

# showtaskpages rows: node used hot cold (KB)
t_hot0=$(echo "$tp" | awk '$1 == "0" { print $3 }')
t_cold1=$(echo "$tp" | awk '$1 == "1" { print $4 }')
# showhostpages rows: node total used hot cold (KB)
h_total0=$(echo "$hp" | awk '$1 == "0" { print $2 }')
h_total1=$(echo "$hp" | awk '$1 == "1" { print $2 }')
nr0=$(cat /sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages)
nr1=$(cat /sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages)

secs=$(awk -v a="$t0" -v b="$done_t" 'BEGIN { if (b == "") print "none"; else printf "%.2f", b - a }')
res="cold_on_node1=$cold_n1/$cold_pages hot_on_node0=$hot_n0/$hot_pages converge_s=$secs max_pages_per_1s=$max_window windows_1s=$windows quota_pages=$quota_pages show_hot0_kb=${t_hot0:-none} show_cold1_kb=${t_cold1:-none} show_total_kb=${h_total0:-none},${h_total1:-none}"
[ $((cold_n1 * 100)) -ge $((cold_pages * 99)) ] || fail reason=cold-not-demoted $res
[ $((hot_n0 * 100)) -ge $((hot_pages * 99)) ] || fail reason=hot-demoted $res
[ "$windows" -gt 0 ] || fail reason=no-sub-second-sample-pairs $res
[ "$max_window" -le "$quota_pages" ] || fail reason=quota-exceeded $res
[ "$t_hot0" = $((hot_n0 * 2048)) ] || fail reason=showtaskpages-hot-mismatch $res
[ "$t_cold1" = $((cold_n1 * 2048)) ] || fail reason=showtaskpages-cold-mismatch $res
[ "$h_total0" = $((nr0 * 2048)) ] && [ "$h_total1" = $((nr1 * 2048)) ] ||
    fail reason=showhostpages-total-mismatch $res
lab_pass $res
