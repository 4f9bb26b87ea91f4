#!/bin/sh
# recycled-pid: a handle taken on a process that then exits is refused (gone) even after
# its pid is given to a new process (ns_last_pid); swap-out, migrate and VMA reads on the
# old handle all fail as "gone", while a fresh handle on the new process works.
LAB_NAME=recycled-pid
. /lab/lib.sh

[ -e /proc/sys/kernel/ns_last_pid ] || lab_fail reason=no-ns_last_pid
if res=$(etmem-lab recycled-pid); then
    lab_pass $res
fi
lab_fail $res
