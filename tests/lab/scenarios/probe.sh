#!/bin/sh
# probe: the lab kernel (Debian 6.12) offers DAMON and soft-dirty trackers, process_madvise,
# move_pages, swap, PAGEMAP_SCAN (the trackers' cheaper pagemap pass) and the damon_aggregated
# tracepoint (DAMON's regions in one read); it lacks openEuler's idle_pages/swap_pages and page_idle, each
# reported with a reason.
# `etmemd --probe` prints etmem_kernel::probe(); `etmem-lab probe` checks the expectations
# and etmemd's own output must agree with it tracker by tracker.
LAB_NAME=probe
. /lab/lib.sh

res=$(etmem-lab probe \
    --expect-available damon,softdirty,process_madvise,move_pages,swap_space,pagemap_scan,damon_trace \
    --expect-missing idle_pages,page_idle,swap_pages 2>/tmp/probe.txt)
rc=$?
cat /tmp/probe.txt
grep -q '^tracker idle_pages: missing: .' /tmp/probe.txt || lab_fail reason=idle_pages-without-reason $res
grep -q '^tracker page_idle: missing: .' /tmp/probe.txt || lab_fail reason=page_idle-without-reason $res

timeout 10 etmemd --probe >/tmp/etmemd-probe.txt 2>&1 || lab_fail reason=etmemd-probe-failed $res
grep -q '^tracker ' /tmp/etmemd-probe.txt || lab_fail reason=etmemd-probe-printed-no-trackers $res
for t in damon softdirty idle_pages page_idle; do
    a=$(grep "^tracker $t:" /tmp/probe.txt | cut -d: -f2)
    b=$(grep "^tracker $t:" /tmp/etmemd-probe.txt | cut -d: -f2)
    [ "$a" = "$b" ] || lab_fail reason=etmemd-probe-differs-on-$t $res
done
[ $rc = 0 ] && lab_pass $res source=etmemd
lab_fail $res source=etmemd
