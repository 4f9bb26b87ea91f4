#!/bin/sh
# tracker-softdirty: the soft-dirty tracker finds the cold region of a workload whose hot
# pages are written every 50 ms: cold recall >= 99% and precision >= 99.9% within 3 rounds.
# (Soft-dirty sees writes only; the workload's rw access writes every hot page.)
LAB_NAME=tracker-softdirty
. /lab/lib.sh

L=/tmp/sd-layout.json
lab_start_workload "$L" --hot 16M --warm 8M --cold 32M --period-ms 50 --access rw ||
    lab_fail reason=workload-no-layout
if res=$(etmem-lab track --tracker softdirty --layout "$L" --rounds 3 --passes 3 \
    --interval-ms 500 --min-recall 0.99 --min-precision 0.999); then
    lab_pass $res
fi
lab_fail $res
