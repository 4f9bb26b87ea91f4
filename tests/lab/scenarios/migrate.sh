#!/bin/sh
# migrate: move_pages of the workload's cold region to the CPU-less node 1 with an 8 MiB
# quota moves the first 8 MiB (per-page status; busy pages are reported, not assumed
# moved), nothing past the quota and nothing of the other regions (move_pages query).
LAB_NAME=migrate
. /lab/lib.sh

[ -d /sys/devices/system/node/node1 ] || lab_fail reason=no-node1
L=/tmp/mig-layout.json
lab_start_workload "$L" --hot 8M --warm 4M --cold 16M --period-ms 100 ||
    lab_fail reason=workload-no-layout
if res=$(etmem-lab migrate --layout "$L" --class cold --to 1 --quota 8388608); then
    lab_pass $res
fi
lab_fail $res
