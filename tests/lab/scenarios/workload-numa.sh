#!/bin/sh
# workload-numa: `etmem-workload --node 1` has every page of every region on node 1
# (numa_maps), with base pages and with 2 MiB hugetlb pages.
# lab-hugepages: 16
LAB_NAME=workload-numa
. /lab/lib.sh

# check_regions LAYOUT KIND: every region's numa_maps line says bind:1 and N1=<pages>, no N0.
check_regions() {
    layout=$1 kind=$2
    for c in hot warm cold; do
        set -- $(lab_region "$layout" $c)
        [ $# = 3 ] || lab_fail reason=$kind-layout-without-$c
        start=$1 pages=$3
        line=$(grep "^$(printf '%x' "$start") " "/proc/$WL_PID/numa_maps")
        [ -n "$line" ] || lab_fail reason=$kind-$c-not-in-numa_maps
        echo "$kind $c: $line"
        case " $line " in *" bind:1 "*) ;; *) lab_fail reason=$kind-$c-policy-not-bind1 ;; esac
        case " $line " in *" N0="*) lab_fail reason=$kind-$c-pages-on-node0 ;; esac
        case " $line " in *" N1=$pages "*) ;; *) lab_fail reason=$kind-$c-not-all-on-node1 want_n1=$pages ;; esac
    done
}

L=/tmp/numa-layout.json
lab_start_workload "$L" --node 1 --hot 8M --warm 8M --cold 16M --period-ms 50 ||
    lab_fail reason=workload-no-layout
[ "$(lab_json_num "$L" node)" = 1 ] || lab_fail reason=layout-node-not-1
check_regions "$L" base
base_pages=$(( $(lab_region "$L" hot | cut -d' ' -f3) + $(lab_region "$L" warm | cut -d' ' -f3) + $(lab_region "$L" cold | cut -d' ' -f3) ))
lab_cleanup

free1=$(cat /sys/devices/system/node/node1/hugepages/hugepages-2048kB/free_hugepages)
[ "${free1:-0}" -ge 8 ] || lab_fail reason=hugepages-not-reserved-on-node1 free=$free1
H=/tmp/numa-huge-layout.json
lab_start_workload "$H" --node 1 --hugetlb --hot 4M --warm 4M --cold 8M --period-ms 50 ||
    lab_fail reason=hugetlb-workload-no-layout
[ "$(lab_json_num "$H" page_size)" = 2097152 ] || lab_fail reason=hugetlb-page-size
check_regions "$H" huge
used1=$(( free1 - $(cat /sys/devices/system/node/node1/hugepages/hugepages-2048kB/free_hugepages) ))
[ "$used1" = 8 ] || lab_fail reason=hugetlb-node1-pages-used-$used1-not-8

lab_pass base_pages=$base_pages huge_pages=$used1 node=1
