//! Memory cgroups in the fake sys root: the files of cgroup v2's unified hierarchy or of
//! openEuler's v1 `memory` and `cpuacct` hierarchies, as the cgroup layer reads them.

use super::write;
use std::io;
use std::path::Path;

/// A memory cgroup to lay out under the fake sys root, in bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeCgroup {
    /// path below the hierarchy's root
    pub path: String,
    /// usage
    pub usage: u64,
    /// limit (`None`: `max`, or v1's unlimited 9223372036854771712)
    pub limit: Option<u64>,
    /// `memory.min`
    pub min: u64,
    /// `memory.low`
    pub low: u64,
    /// file pages
    pub file: u64,
    /// anonymous pages
    pub anon: u64,
    /// swap limit (v1: memory+swap limit); `None`: unlimited
    pub swap_limit: Option<u64>,
    /// swap usage (v1: memory+swap usage)
    pub swap_usage: u64,
    /// `some avg10`
    pub avg10: f64,
    /// `some avg60`
    pub avg60: f64,
}

impl FakeCgroup {
    /// A cgroup at `path` using `file + anon` bytes, no limits, no pressure.
    pub fn new(path: &str, file: u64, anon: u64) -> FakeCgroup {
        FakeCgroup {
            path: path.to_string(),
            usage: file + anon,
            limit: None,
            min: 0,
            low: 0,
            file,
            anon,
            swap_limit: None,
            swap_usage: 0,
            avg10: 0.0,
            avg60: 0.0,
        }
    }
}

/// Writes `cg` under the sys root `sys` in the layout of `v` (v2: the unified tree with
/// `cgroup.controllers`; v1: the `memory` and `cpuacct` hierarchies), with an empty
/// `memory.reclaim`.
pub fn write_fake_cgroup(sys: &Path, v: crate::CgroupVersion, cg: &FakeCgroup) -> io::Result<()> {
    let root = sys.join("fs/cgroup");
    let psi = format!(
        "some avg10={:.2} avg60={:.2} avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        cg.avg10, cg.avg60
    );
    match v {
        crate::CgroupVersion::V2 => {
            write(
                &root.join("cgroup.controllers"),
                "cpuset cpu io memory pids\n",
            )?;
            let d = root.join(&cg.path);
            let lim = |l: Option<u64>| l.map_or("max\n".to_string(), |x| format!("{x}\n"));
            write(&d.join("memory.current"), format!("{}\n", cg.usage))?;
            write(&d.join("memory.max"), lim(cg.limit))?;
            write(&d.join("memory.min"), format!("{}\n", cg.min))?;
            write(&d.join("memory.low"), format!("{}\n", cg.low))?;
            write(
                &d.join("memory.stat"),
                format!("anon {}\nfile {}\nkernel 0\n", cg.anon, cg.file),
            )?;
            write(&d.join("memory.swap.max"), lim(cg.swap_limit))?;
            write(
                &d.join("memory.swap.current"),
                format!("{}\n", cg.swap_usage),
            )?;
            write(&d.join("memory.pressure"), psi)?;
            write(&d.join("memory.reclaim"), "")?;
        }
        crate::CgroupVersion::V1 => {
            const UNLIMITED: u64 = 9_223_372_036_854_771_712;
            let m = root.join("memory").join(&cg.path);
            let c = root.join("cpuacct").join(&cg.path);
            write(&root.join("cpuacct/memory.pressure"), psi.clone())?;
            write(&c.join("memory.pressure"), psi)?;
            write(&m.join("memory.usage_in_bytes"), format!("{}\n", cg.usage))?;
            write(
                &m.join("memory.limit_in_bytes"),
                format!("{}\n", cg.limit.unwrap_or(UNLIMITED)),
            )?;
            write(&m.join("memory.min"), format!("{}\n", cg.min))?;
            write(&m.join("memory.low"), format!("{}\n", cg.low))?;
            let (fi, fa) = (cg.file / 2, cg.file - cg.file / 2);
            let (ai, aa) = (cg.anon / 2, cg.anon - cg.anon / 2);
            write(
                &m.join("memory.stat"),
                format!(
                    "cache {}\nrss {}\ntotal_inactive_anon {ai}\ntotal_active_anon {aa}\n\
                     total_inactive_file {fi}\ntotal_active_file {fa}\n",
                    cg.file, cg.anon
                ),
            )?;
            write(
                &m.join("memory.memsw.limit_in_bytes"),
                format!("{}\n", cg.swap_limit.unwrap_or(UNLIMITED)),
            )?;
            write(
                &m.join("memory.memsw.usage_in_bytes"),
                format!("{}\n", cg.swap_usage),
            )?;
            write(&m.join("memory.reclaim"), "")?;
        }
    }
    Ok(())
}
