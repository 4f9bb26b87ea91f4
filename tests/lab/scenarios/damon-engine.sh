#!/bin/sh
# damon-engine: the `damon` engine (scan_type=region) with a `pageout` scheme for regions
# not accessed for DE_MIN_AGE aggregations, on two tasks of one project: task `mixed` (one
# mapping, DE_HOT_BLOCK hot blocks written every 100 ms every DE_STRIDE, the rest cold) and task
# `plain` (separate hot and cold mappings). Each task's process gets its own DAMON target
# and scheme on one kdamond of ours. Pass: within DE_WAIT_S of `project start`, each
# workload's cold pages >= DE_COLD_PCT % swapped while its hot pages stay <= DE_HOT_PCT %
# (pagemap, `etmem-lab score`), with swapped kB per region printed; then `project stop`
# leaves DAMON as it was before (nr_kdamonds back, no kdamond on or configured), and a
# second start + `obj del` of the started project (B13) does too.
# Sampling: DE_SAMPLE_US 20 ms, DE_AGGR_US 400 ms (20 samples). The hot blocks are written
# every 100 ms, so a 5 ms sample saw a hot page touched in ~5 % of samples (about one per
# aggregation, often none): DAMON merged hot and cold pieces whose counts matched, and a 6
# MiB cold stretch could stay glued to a hot block for the whole 90 s (86-87.5 % of the
# mixed cold out in three lab runs of 2026-12-06). At 20 ms a hot page is seen in ~20 % of
# samples, as an operator would size the interval to the application's access period.
# Layout (DE_MIXED_MIB, DE_HOT_BLOCK, DE_STRIDE, DE_ACCESS=write|read) and the DAMON figures
# are arguments.
LAB_NAME=damon-engine
. /lab/lib.sh

SOCK=lab_de
CONF=/tmp/damon-engine.conf
LM=/tmp/de-mixed.json
LP=/tmp/de-plain.json
LOG=/tmp/de-etmemd.log
ED_PID=""
WL2_PID=""
MIXED_MIB=${DE_MIXED_MIB:-64}
PLAIN_HOT=${DE_PLAIN_HOT:-8M}
PLAIN_COLD=${DE_PLAIN_COLD:-24M}
HOT_BLOCK=${DE_HOT_BLOCK:-2M}
# how the mixed mapping's hot blocks are touched: write, or read (pages only read)
ACCESS=${DE_ACCESS:-write}
STRIDE=${DE_STRIDE:-8M}
SAMPLE_US=${DE_SAMPLE_US:-20000}
AGGR_US=${DE_AGGR_US:-400000}
MIN_AGE=${DE_MIN_AGE:-10}
MIN_NR=${DE_MIN_NR:-100}
COLD_PCT=${DE_COLD_PCT:-90}
HOT_PCT=${DE_HOT_PCT:-5}
WAIT_S=${DE_WAIT_S:-90}

fail() {
    [ -f "$LOG" ] && grep -v 'DEBUG' "$LOG" | tail -n 30 | sed 's/^/etmemd: /'
    # SIGTERM, and wait: etmemd removes its kdamond on the way out (the lab kills whatever
    # is left with SIGKILL after a scenario, which would leave the kdamond to the next one)
    [ -n "$ED_PID" ] && kill "$ED_PID" 2>/dev/null && wait "$ED_PID"
    [ -n "$WL2_PID" ] && kill "$WL2_PID" 2>/dev/null
    lab_fail "$@" "damon_at_exit=\"$(lab_damon_state)\""
}

kv() { echo " $1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

# settled WHAT: no kdamond of ours left within 20 s.
settled() {
    i=0
    while lab_damon_busy; do
        i=$((i + 1)); [ "$i" -le 200 ] || fail reason="kdamond-left-after-$1" "damon=\"$(lab_damon_state)\""
        sleep 0.1
    done
}

grep -q zram /proc/swaps || lab_fail reason=no-zram-swap
[ -f /sys/kernel/mm/damon/admin/kdamonds/nr_kdamonds ] || lab_fail reason=no-damon-sysfs
before=$(lab_damon_state)
lab_damon_busy && lab_fail reason=damon-busy-before "damon=\"$before\""

lab_start_workload "$LP" --hot "$PLAIN_HOT" --warm 0 --cold "$PLAIN_COLD" --period-ms 100 \
    --access write || lab_fail reason=workload-plain-no-layout
WL2_PID=$WL_PID
lab_start_workload "$LM" --mixed "${MIXED_MIB}M" --warm 0 --period-ms 100 --access "$ACCESS" \
    --hot-block "$HOT_BLOCK" --stride "$STRIDE" || fail reason=workload-mixed-no-layout

cat >"$CONF" <<CONF
[project]
name=lab
scan_type=region
sample_interval=$SAMPLE_US
aggr_interval=$AGGR_US
update_interval=$((AGGR_US * 10))
min_nr_regions=$MIN_NR
max_nr_regions=1000

[engine]
name=damon
project=lab
min_size=4096
max_size=1073741824
min_acc=0
max_acc=0
min_age=$MIN_AGE
max_age=4294967295
action=pageout

[task]
project=lab
engine=damon
name=mixed
type=pid
value=$WL_PID

[task]
project=lab
engine=damon
name=plain
type=pid
value=$WL2_PID
CONF
chmod 0600 "$CONF"

: >"$LOG"
lab_start_etmemd "$SOCK" "$LOG" || fail reason=etmemd-not-listening
out=$(etmem obj add -f "$CONF" -s "$SOCK" 2>&1) || fail reason=obj-add "out=\"$(echo $out)\""
t0=$(cut -d' ' -f1 /proc/uptime)
out=$(etmem project start -n lab -s "$SOCK" 2>&1) || fail reason=project-start "out=\"$(echo $out)\""
show=$(etmem project show -s "$SOCK" 2>&1 | tr -s ' ' | tr '\n' '|')

# our kdamond: on, one target per task, each with its pageout scheme
kd=/sys/kernel/mm/damon/admin/kdamonds
i=0
until lab_damon_busy && [ "$(cat $kd/$(($(cat $kd/nr_kdamonds) - 1))/contexts/0/targets/nr_targets 2>/dev/null)" = 2 ]; do
    i=$((i + 1)); [ "$i" -le 200 ] || fail reason=no-kdamond-with-2-targets "damon=\"$(lab_damon_state)\""
    sleep 0.1
done
k=$(($(cat $kd/nr_kdamonds) - 1))
ctx=$kd/$k/contexts/0
running="$(lab_damon_state)"
targets="$(cat $ctx/targets/0/pid_target),$(cat $ctx/targets/1/pid_target)"
actions="$(cat $ctx/schemes/0/action),$(cat $ctx/schemes/1/action)"
ages="$(cat $ctx/schemes/0/access_pattern/age/min)"
case ",$targets," in *",$WL_PID,"*) ;; *) fail reason=mixed-not-a-target "targets=$targets" ;; esac
case ",$targets," in *",$WL2_PID,"*) ;; *) fail reason=plain-not-a-target "targets=$targets" ;; esac
[ "$actions" = pageout,pageout ] || fail reason=not-pageout "actions=$actions"

# wait until both cold regions are out (or the time is up); the hot ones' worst is kept
worst_hot_m=0; worst_hot_p=0; el=0
while :; do
    sm=$(etmem-lab score --layout "$LM") || fail reason=score-mixed
    sp=$(etmem-lab score --layout "$LP") || fail reason=score-plain
    el=$(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }')
    hm=$(kv "$sm" hot_swapped_pct); hp=$(kv "$sp" hot_swapped_pct)
    ge "$hm" "$worst_hot_m" && worst_hot_m=$hm
    ge "$hp" "$worst_hot_p" && worst_hot_p=$hp
    if ge "$(kv "$sm" cold_swapped_pct)" "$COLD_PCT" && ge "$(kv "$sp" cold_swapped_pct)" "$COLD_PCT"; then
        break
    fi
    ge "$el" "$WAIT_S" && break
    sleep 2
done
# a few more seconds: hot pages must stay in
sleep 5
sm=$(etmem-lab score --layout "$LM"); sp=$(etmem-lab score --layout "$LP")
hm=$(kv "$sm" hot_swapped_pct); hp=$(kv "$sp" hot_swapped_pct)
ge "$hm" "$worst_hot_m" && worst_hot_m=$hm
ge "$hp" "$worst_hot_p" && worst_hot_p=$hp
kb() { echo $(( $(kv "$1" "$2_swapped") * 4 )); }
figures="mixed_cold_kb=$(( $(kv "$sm" cold_pages) * 4 )) mixed_cold_swapped_kb=$(kb "$sm" cold) \
mixed_cold_swapped_pct=$(kv "$sm" cold_swapped_pct) mixed_hot_kb=$(( $(kv "$sm" hot_pages) * 4 )) \
mixed_hot_swapped_kb=$(kb "$sm" hot) mixed_hot_worst_pct=$worst_hot_m \
plain_cold_kb=$(( $(kv "$sp" cold_pages) * 4 )) plain_cold_swapped_kb=$(kb "$sp" cold) \
plain_cold_swapped_pct=$(kv "$sp" cold_swapped_pct) plain_hot_kb=$(( $(kv "$sp" hot_pages) * 4 )) \
plain_hot_swapped_kb=$(kb "$sp" hot) plain_hot_worst_pct=$worst_hot_p \
elapsed_s=$el thresholds=cold>=${COLD_PCT}%,hot<=${HOT_PCT}%,within=${WAIT_S}s min_age=$MIN_AGE min_nr_regions=$MIN_NR sample_us=$SAMPLE_US aggr_us=$AGGR_US \
layout=${MIXED_MIB}M/$HOT_BLOCK/$STRIDE/$ACCESS"

ge "$(kv "$sm" cold_swapped_pct)" "$COLD_PCT" || fail reason=mixed-cold-not-out $figures
ge "$(kv "$sp" cold_swapped_pct)" "$COLD_PCT" || fail reason=plain-cold-not-out $figures
ge "$HOT_PCT" "$worst_hot_m" || fail reason=mixed-hot-out $figures
ge "$HOT_PCT" "$worst_hot_p" || fail reason=plain-hot-out $figures

# project stop: our kdamond goes
out=$(etmem project stop -n lab -s "$SOCK" 2>&1) || fail reason=project-stop "out=\"$(echo $out)\""
settled project-stop
after_stop=$(lab_damon_state)
[ "$after_stop" = "$before" ] || fail reason=damon-not-as-before-after-stop "before=\"$before\"" "after=\"$after_stop\""

# started again, then deleted while started (B13): the kdamond goes too
out=$(etmem project start -n lab -s "$SOCK" 2>&1) || fail reason=project-restart "out=\"$(echo $out)\""
i=0
until lab_damon_busy; do
    i=$((i + 1)); [ "$i" -le 100 ] || fail reason=no-kdamond-after-restart "damon=\"$(lab_damon_state)\""
    sleep 0.1
done
out=$(etmem obj del -f "$CONF" -s "$SOCK" 2>&1) || fail reason=obj-del "out=\"$(echo $out)\""
settled obj-del
after_del=$(lab_damon_state)
[ "$after_del" = "$before" ] || fail reason=damon-not-as-before-after-del "before=\"$before\"" "after=\"$after_del\""

kill "$ED_PID"; wait "$ED_PID"; ED_PID=""
kill "$WL2_PID" 2>/dev/null; wait "$WL2_PID" 2>/dev/null; WL2_PID=""
lab_pass $figures "targets=$targets" "actions=$actions" "min_age_file=$ages" \
    "before=\"$before\"" "running=\"$running\"" "after_stop=\"$after_stop\"" \
    "after_del=\"$after_del\"" "show=\"$show\""
