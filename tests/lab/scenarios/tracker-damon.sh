#!/bin/sh
# tracker-damon: a DAMON vaddr kdamond of our own (added next to none in use) finds the
# cold region: cold recall >= 95% and precision >= 98% within 3 rounds; our kdamond is
# removed afterwards.
LAB_NAME=tracker-damon
. /lab/lib.sh

K=/sys/kernel/mm/damon/admin/kdamonds
[ -e $K/nr_kdamonds ] || lab_fail reason=no-damon-sysfs
before=$(cat $K/nr_kdamonds)
L=/tmp/damon-layout.json
lab_start_workload "$L" --hot 8M --warm 8M --cold 32M --period-ms 20 --access rw ||
    lab_fail reason=workload-no-layout
ok=0
res=$(etmem-lab track --tracker damon --layout "$L" --rounds 3 --passes 3 --interval-ms 1000 \
    --warmup-ms 5000 --damon-min-regions 200 --damon-aggr-us 200000 \
    --min-recall 0.95 --min-precision 0.98) && ok=1
after=$(cat $K/nr_kdamonds)
[ "$after" = "$before" ] || lab_fail reason=kdamond-left-behind before=$before after=$after $res
[ $ok = 1 ] && lab_pass $res kdamonds_after=$after
lab_fail $res
