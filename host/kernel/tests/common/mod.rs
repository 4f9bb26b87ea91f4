//! Helpers the kernel crate's integration tests share: a FakeKernel with one process, and
//! the access map of its mappings. Test support only; nothing here touches the machine.

use etmem_kernel::access::AccessMap;
use etmem_kernel::{FakeKernel, FakeProcess, Kernel, VmaFilter};

/// A FakeKernel with one process `pid` (`db`) owning the anonymous mapping `start..end`.
pub fn fake_with(pid: u32, start: u64, end: u64) -> FakeKernel {
    let f = FakeKernel::new().expect("fake");
    f.add_process(&FakeProcess::new(pid, "db").anon(start, end))
        .expect("process");
    f
}

/// The access map of `p`'s mappings, as a tracker gets it.
pub fn map_for(f: &FakeKernel, p: &etmem_kernel::ProcessHandle) -> AccessMap {
    let vmas = f.vmas(p, &VmaFilter::default()).expect("vmas");
    AccessMap::new(&vmas, f.page_sizes())
}
