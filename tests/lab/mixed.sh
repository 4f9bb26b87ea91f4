# Mixed mappings (issue 10), for the mixed-* scenarios (busybox sh): `. /lab/mixed.sh` after
# `. /lab/lib.sh`. One case = one `etmem-workload --mixed` process (hot and cold pages in ONE
# anonymous mapping, laid out by its arguments) tracked by etmemd's slide (loop=3,
# interval=1, sleep=1, T=1, tracker auto) from `project start` to round 3 (or, with
# --move-after, until the cooled half is out), scored from pagemap after every round by
# `etmem-lab score`.
#
# Thresholds (every case): after round 1 and within 10 s of `project start`, >= 99 % of the
# cold pages and <= 0.1 % of the hot pages swapped; no more than that in swap at any later
# poll either; no major fault of the workload meanwhile (its own memory is locked, cold
# pages are never touched again: a major fault is a hot page read back from swap), with
# hot pages written or only read (--access read). With
# --move-after: the cooled half >= 99 % swapped by the end of the first round whose passes
# all follow the move (`cooled_rounds` <= 2 round ends after the move; a round whose last
# pass came before the move counts as before it, see below).

MIXED_REASON=""
MIXED_RES=""
# passes per round (slide's loop)
MX_LOOP=3
# set (to anything) for a bench-* scenario: figures only, no thresholds
MIXED_FIGURES_ONLY=${MIXED_FIGURES_ONLY:-}

mx_now() { cut -d' ' -f1 /proc/uptime; }

# mx_kv "k=v ..." KEY: the value of KEY.
mx_kv() { echo " $1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

# mx_majflt PID: major faults so far.
mx_majflt() { set -- $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null); echo "${10:-0}"; }

# mx_cpu_ticks PID: utime+stime in clock ticks.
mx_cpu_ticks() { set -- $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null); echo $(( ${12:-0} + ${13:-0} )); }

# mx_kdamond_ticks: CPU ticks of every kdamond (ours: nothing else uses DAMON in the lab).
mx_kdamond_ticks() {
    t=0
    for c in /proc/[0-9]*/comm; do
        case "$(cat "$c" 2>/dev/null)" in
            kdamond.*) p=${c%/comm}; t=$((t + $(mx_cpu_ticks "${p#/proc/}"))) ;;
        esac
    done
    echo "$t"
}

# mx_rounds LOG: rounds etmemd finished (scan, plan and act: the INFO line after the act).
mx_rounds() { grep -c ': round [0-9]*: tracked' "$1"; }

# mx_gt A B: A > B (decimals).
mx_ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

# mixed_case LABEL SIZE_MIB WORKLOAD_ARGS...: runs one case. Sets MIXED_RES (LABEL_k=v
# figures) and returns 0, or sets MIXED_REASON too and returns 1.
mixed_case() {
    label=$1; size_mib=$2; shift 2
    L=/tmp/mx-$label.json; log=/tmp/mx-$label.log; sock=mx_$label; conf=/tmp/mx-$label.conf
    MIXED_RES=""; MIXED_REASON=""
    lab_start_workload "$L" --mixed "${size_mib}M" --warm 0 --period-ms 100 --lock-rest "$@" ||
        { MIXED_REASON=$label-workload-no-layout; return 1; }
    lab_slide_conf "$conf" "$WL_PID" "$MX_LOOP"
    sleep 1
    flt0=$(mx_majflt "$WL_PID")
    : >"$log"
    lab_start_etmemd "$sock" "$log" || { MIXED_REASON=$label-etmemd-not-listening; mx_end; return 1; }
    out=$(etmem obj add -f "$conf" -s "$sock" 2>&1) ||
        { MIXED_REASON="$label-obj-add out=\"$(echo $out)\""; mx_end; return 1; }
    ed_t0=$(mx_cpu_ticks "$ED_PID"); kd_t0=$(mx_kdamond_ticks)
    t0=$(mx_now)
    out=$(etmem project start -n lab -s "$sock" 2>&1) ||
        { MIXED_REASON="$label-project-start out=\"$(echo $out)\""; mx_end; return 1; }
    seen=0; ramp=""; r99=""; moved_at=""; cooled_rounds=""; after_move=0
    worst_hot=0; per_round=""
    moving=0; case " $* " in *" --move-after "*) moving=1 ;; esac
    while :; do
        # The move, and the rounds before it. A pass reads the accesses since the pass
        # before it, so the first pass of a round still sees what was touched after the
        # previous round's last pass. When the move comes after the last pass of the round
        # in progress (during its act: round 1 swaps ~100 MiB for ~1 s, about when the move
        # comes), the next round's first pass still sees the cooled half touched, and the
        # round after that is the first whose passes all follow the move: the round in
        # progress counts as one before the move. (Counting only round ends, three lab runs
        # of 2026-12-06 failed with cooled_rounds=3: moves seen during round 1's act, the
        # cooled half out at round 3.) The move is looked for before the rounds are counted,
        # so a round that ends between the two reads counts as before it. The console
        # shows what was seen.
        if [ "$moving" = 1 ] && [ -z "$moved_at" ]; then
            moved_at=$(sed -n 's/^WORKLOAD moved .* t=\([0-9.]*\).*/\1/p' "$L.out")
            if [ -n "$moved_at" ]; then
                moved_round=$(mx_rounds "$log")
                passes=$(grep -c 'DAMON pass of pid' "$log")
                [ "$passes" -ge $(( (moved_round + 1) * MX_LOOP )) ] && moved_round=$((moved_round + 1))
                echo "$label: move seen $(awk -v a="$t0" -v b="$(mx_now)" 'BEGIN { printf "%.1f", b - a }') s after start, $passes pass(es) done: rounds before it $moved_round" >&2
            fi
        fi
        n=$(mx_rounds "$log")
        s=$(etmem-lab score --layout "$L") || { MIXED_REASON=$label-score-failed; mx_end; return 1; }
        el=$(awk -v a="$t0" -v b="$(mx_now)" 'BEGIN { printf "%.1f", b - a }')
        cold=$(mx_kv "$s" cold_swapped_pct); hot=$(mx_kv "$s" hot_swapped_pct)
        mx_ge "$hot" "$worst_hot" && worst_hot=$hot
        if [ -z "$ramp" ] && mx_ge "$cold" 99; then ramp=$el; fi
        while [ "$seen" -lt "$n" ]; do
            seen=$((seen + 1))
            # a round just ended: its figures
            per_round="$per_round r${seen}_cold=$cold r${seen}_hot=$hot"
            if [ "$seen" -le 2 ]; then
                eval "r${seen}_cold=$cold r${seen}_hot=$hot r${seen}_t=$el"
            fi
            [ -z "$r99" ] && mx_ge "$cold" 99 && r99=$seen
            if [ -n "$moved_at" ] && [ "$seen" -gt "$moved_round" ] && [ -z "$cooled_rounds" ]; then
                after_move=$((seen - moved_round))
                echo "$label: round $seen ended ($after_move after the move): cooled $(mx_kv "$s" cooled_swapped_pct) % swapped" >&2
                mx_ge "$(mx_kv "$s" cooled_swapped_pct)" 99 && cooled_rounds=$after_move
            fi
        done
        if [ "$moving" = 1 ]; then
            [ -n "$cooled_rounds" ] && break
            [ "$after_move" -ge 4 ] && break
        else
            [ "$n" -ge 3 ] && break
        fi
        mx_ge "$el" 90 && break
        sleep 0.2
    done
    ed_cpu=$(( $(mx_cpu_ticks "$ED_PID") - ed_t0 )); kd_cpu=$(( $(mx_kdamond_ticks) - kd_t0 ))
    flt=$(( $(mx_majflt "$WL_PID") - flt0 ))
    # etmemd's own account of each round's CPU (scan + plan + act, the sleeps left out):
    # round 1 (the one that swaps the cold pages out: mostly the kernel's page-out) and the
    # steady rounds after it; per GiB tracked too
    sed -n 's/.*: round \([0-9]*\): tracked .* (cpu \([0-9.]*\) ms), plan \([0-9.]*\) ms, act [0-9.]* ms (cpu \([0-9.]*\) ms.*/\1 \2 \3 \4/p' \
        "$log" >/tmp/mx-rounds
    cpu_figs=$(awk -v m="$size_mib" '
        $1 == 1 { r1 = $2 + $3 + $4; s1 = $2 }
        $1 > 1 { st += $2 + $3 + $4; ss += $2; n++ }
        END {
            if (r1 == "") r1 = "none"; else r1 = sprintf("%.1f", r1)
            printf "r1_cpu_ms=%s r1_scan_cpu_ms=%s", r1, (s1 == "" ? "none" : sprintf("%.1f", s1))
            if (n) printf " steady_cpu_ms=%.1f steady_scan_cpu_ms=%.1f steady_cpu_ms_per_gib=%.1f steady_scan_cpu_ms_per_gib=%.1f", st / n, ss / n, st / n * 1024 / m, ss / n * 1024 / m
            else printf " steady_cpu_ms=none"
        }' /tmp/mx-rounds | sed "s/\([a-z0-9_]*\)=/${label}_\1=/g")
    passes=$(grep 'DAMON pass of pid' "$log" | tail -n 3 | sed 's/.*region(s) read in [0-9.]* ms (\([^)]*\)).*/\1/' | tr ' ,:' '__-' | tr '\n' ';')
    MIXED_RES="${label}_cold_swapped_pct=${r1_cold:-none} ${label}_hot_swapped_pct=${r1_hot:-none} ${label}_r2_cold_swapped_pct=${r2_cold:-none} ${label}_r2_hot_swapped_pct=${r2_hot:-none} ${label}_worst_hot_pct=$worst_hot ${label}_rounds_to_99=${r99:-none} ${label}_ramp_s=${ramp:-none} ${label}_r1_s=${r1_t:-none} ${label}_hot_majflt=$flt $cpu_figs ${label}_etmemd_cpu_s=$(awk -v t="$ed_cpu" 'BEGIN { printf "%.2f", t / 100 }') ${label}_kdamond_cpu_s=$(awk -v t="$kd_cpu" 'BEGIN { printf "%.2f", t / 100 }') ${label}_last_passes=$passes"
    [ "$moving" = 1 ] && MIXED_RES="$MIXED_RES ${label}_moved_at_s=${moved_at:-none} ${label}_cooled_rounds=${cooled_rounds:-none}"
    etmem project stop -n lab -s "$sock" >/dev/null 2>&1
    mx_end
    # for the console log (not the LAB line): what etmemd did, round by round
    grep -E 'project start|round [0-9]+: tracked|DAMON pass|tracepoint|WARN|ERROR' "$log" |
        sed "s/^/$label etmemd: /" >&2
    if [ -z "$r1_cold" ]; then MIXED_REASON=$label-no-round-1; return 1; fi
    # figures only (bench-* scenarios): measured is enough
    [ -n "$MIXED_FIGURES_ONLY" ] && return 0
    mx_ge "$r1_cold" 99 || { MIXED_REASON=$label-cold-after-round-1; return 1; }
    mx_ge 0.1 "$r1_hot" || { MIXED_REASON=$label-hot-after-round-1; return 1; }
    mx_ge 0.1 "$worst_hot" || { MIXED_REASON=$label-hot-swapped; return 1; }
    mx_ge 10 "${r1_t}" || { MIXED_REASON=$label-round-1-after-10s; return 1; }
    # hot pages read back from swap: none, written or only read
    [ "$flt" = 0 ] || { MIXED_REASON=$label-hot-read-back; return 1; }
    if [ "$moving" = 1 ]; then
        [ -n "$cooled_rounds" ] && [ "$cooled_rounds" -le 2 ] || { MIXED_REASON=$label-cooled-not-swapped; return 1; }
    fi
    return 0
}

# mx_end: etmemd (SIGTERM: it removes its kdamond) and the workload go.
mx_end() {
    [ -n "$ED_PID" ] && kill "$ED_PID" 2>/dev/null && wait "$ED_PID" 2>/dev/null
    ED_PID=""
    lab_cleanup
    # let the kernel settle: no kdamond of ours may be left for the next case
    i=0
    while lab_damon_busy && [ "$i" -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
}

# mixed_run CASE_SPEC...: runs each "LABEL SIZE_MIB ARGS" (one string each) and ends the
# scenario: lab_pass with every case's figures, or lab_fail naming the first case that
# failed (the others' figures still printed).
mixed_run() {
    all=""; failed=""
    for spec in "$@"; do
        # shellcheck disable=SC2086
        set -- $spec
        if ! mixed_case "$@"; then
            failed="${failed:+$failed,}$MIXED_REASON"
        fi
        all="$all $MIXED_RES"
    done
    [ -z "$failed" ] && lab_pass $all
    lab_fail reason=$failed $all
}
