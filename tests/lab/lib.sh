# Helpers for scenario scripts (busybox sh inside the lab guest): `. /lab/lib.sh`.
# A scenario sets LAB_NAME and ends with exactly one `lab_pass k=v...` or `lab_fail reason=...`.

LAB_NAME=${LAB_NAME:-$(basename "$0" .sh)}
WL_PID=""

lab_pass() { echo "LAB $LAB_NAME pass $*"; lab_cleanup; exit 0; }
lab_fail() { echo "LAB $LAB_NAME fail $*"; lab_cleanup; exit 1; }
lab_cleanup() {
    if [ -n "$WL_PID" ]; then kill "$WL_PID" 2>/dev/null; wait "$WL_PID" 2>/dev/null; WL_PID=""; fi
}

# lab_wait_file FILE SECS: waits until FILE exists; fails after SECS.
lab_wait_file() {
    i=0
    while [ ! -s "$1" ]; do
        i=$((i + 1))
        [ "$i" -le $(($2 * 10)) ] || return 1
        sleep 0.1
    done
}

# lab_start_workload LAYOUT [etmem-workload args...]: starts the workload in the
# background (stdout to LAYOUT.out), sets WL_PID, waits up to 60 s for its layout.
lab_start_workload() {
    layout=$1; shift
    rm -f "$layout"
    etmem-workload --layout "$layout" "$@" >"$layout.out" 2>&1 &
    WL_PID=$!
    if ! lab_wait_file "$layout" 60; then
        echo "workload output:"; cat "$layout.out"
        return 1
    fi
}

# lab_region LAYOUT CLASS: prints "start end pages" (decimal) of a region, or nothing.
lab_region() {
    sed -n "s/.*{\"class\":\"$2\",\"start\":\([0-9]*\),\"end\":\([0-9]*\),\"len\":[0-9]*,\"pages\":\([0-9]*\)}.*/\1 \2 \3/p" "$1"
}

# lab_json_num LAYOUT KEY: a top-level number (or null) of the layout.
lab_json_num() {
    sed -n "s/.*\"$2\":\([0-9a-z]*\).*/\1/p" "$1" | head -n 1
}

# lab_pagemap_flags PID VADDR: prints "present swapped softdirty exclusive" (0/1 each)
# for the page at VADDR (decimal), from /proc/PID/pagemap.
lab_pagemap_flags() {
    set -- $(dd if="/proc/$1/pagemap" bs=8 skip=$(($2 / 4096)) count=1 2>/dev/null | od -An -tu1)
    [ $# -eq 8 ] || return 1
    echo "$(( ($8 >> 7) & 1 )) $(( ($8 >> 6) & 1 )) $(( ($7 >> 7) & 1 )) $(( $8 & 1 ))"
}

# lab_smaps_kb PID START(decimal) FIELD: the FIELD kB (e.g. Swap, Rss) of the VMA at START
# in /proc/PID/smaps, -1 if there is none.
lab_smaps_kb() {
    hex=$(printf '%x' "$2")
    awk -v s="$hex-" -v f="$3:" '
        /^[0-9a-f]+-[0-9a-f]+ / { inv = (index($0, s) == 1); next }
        inv && $1 == f { print $2; found = 1; exit }
        END { if (!found) print -1 }' "/proc/$1/smaps"
}

# lab_kd_state N: kdamond N's state (on/off). The kernel answers a read of `state` with
# EBUSY while a DAMON command holds its sysfs lock (each of etmemd's passes does, for a
# moment), so a failed read is retried for up to 5 s while the file is there; nothing is
# printed (status 1) when the kdamond is gone (at once) or never answered.
lab_kd_state() {
    _kf=/sys/kernel/mm/damon/admin/kdamonds/$1/state
    _kt=0
    while [ "$_kt" -lt 50 ]; do
        _ks=$(cat "$_kf" 2>/dev/null)
        [ -n "$_ks" ] && { echo "$_ks"; return 0; }
        [ -e "$_kf" ] || return 1
        _kt=$((_kt + 1)); sleep 0.1
    done
    return 1
}

# lab_damon_state: "n=N" plus, per kdamond, "K:state:nr_contexts".
lab_damon_state() {
    kd=/sys/kernel/mm/damon/admin/kdamonds
    n=$(cat "$kd/nr_kdamonds" 2>/dev/null || echo 0)
    s="n=$n"
    i=0
    while [ "$i" -lt "$n" ]; do
        s="$s $i:$(lab_kd_state "$i"):$(cat "$kd/$i/contexts/nr_contexts")"
        i=$((i + 1))
    done
    echo "$s"
}

# lab_damon_busy: true while some kdamond is on or configured (a context left behind).
lab_damon_busy() { lab_damon_state | grep -q ':on:\| [0-9]*:[a-z]*:[1-9]'; }

# lab_start_etmemd SOCK LOG [LEVEL]: starts etmemd in the background on socket SOCK with
# log level LEVEL (default 0: debug), appending to LOG; sets ED_PID; returns 1 if it does
# not answer `etmem project show` within 10 s.
lab_start_etmemd() {
    etmemd -l "${3:-0}" -s "$1" >>"$2" 2>&1 &
    ED_PID=$!
    i=0
    until etmem project show -s "$1" >/dev/null 2>&1; do
        i=$((i + 1)); [ "$i" -le 100 ] || return 1
        sleep 0.1
    done
}

# lab_slide_conf FILE PID LOOP: a slide project `lab` (interval=1, sleep=1, T=1) with one
# task `wl` on PID, mode 0600 as etmemd demands.
lab_slide_conf() {
    cat >"$1" <<CONF
[project]
name=lab
loop=$3
interval=1
sleep=1

[engine]
name=slide
project=lab

[task]
project=lab
engine=slide
name=wl
type=pid
value=$2
T=1
CONF
    chmod 0600 "$1"
}
