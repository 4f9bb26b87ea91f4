//! [`LinuxKernel`]: the [`Kernel`] over a proc root and a sys root.

use crate::parse::{parse_id_list, parse_stat_ppid};
use crate::{Kernel, KernelError, Pid, ProcessTarget};
use std::path::{Path, PathBuf};

/// The real kernel (`/proc`, `/sys`), or a fake one when the roots point at a temporary
/// directory laid out like them.
#[derive(Debug, Clone)]
pub struct LinuxKernel {
    proc_root: PathBuf,
    sys_root: PathBuf,
}

impl Default for LinuxKernel {
    fn default() -> Self {
        LinuxKernel::with_roots("/proc", "/sys")
    }
}

impl LinuxKernel {
    /// A kernel reading `proc_root` as `/proc` and `sys_root` as `/sys`.
    pub fn with_roots(proc_root: impl Into<PathBuf>, sys_root: impl Into<PathBuf>) -> Self {
        LinuxKernel {
            proc_root: proc_root.into(),
            sys_root: sys_root.into(),
        }
    }

    /// The proc root.
    pub fn proc_root(&self) -> &Path {
        &self.proc_root
    }

    /// The sys root.
    pub fn sys_root(&self) -> &Path {
        &self.sys_root
    }

    fn read(&self, path: PathBuf) -> Result<String, KernelError> {
        std::fs::read_to_string(&path).map_err(|source| KernelError::Read { path, source })
    }

    /// Every numeric entry of the proc root, ascending.
    fn all_pids(&self) -> Result<Vec<Pid>, KernelError> {
        let dir = std::fs::read_dir(&self.proc_root).map_err(|source| KernelError::Read {
            path: self.proc_root.clone(),
            source,
        })?;
        let mut pids: Vec<Pid> = dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        pids.sort_unstable();
        Ok(pids)
    }

    fn main_pid(&self, target: &ProcessTarget) -> Result<Pid, KernelError> {
        match target {
            ProcessTarget::Pid(value) => {
                let pid: Pid = value
                    .parse()
                    .map_err(|_| KernelError::NoProcess(format!("`{value}` (not a pid)")))?;
                if self.proc_root.join(pid.to_string()).is_dir() {
                    Ok(pid)
                } else {
                    Err(KernelError::NoProcess(pid.to_string()))
                }
            }
            ProcessTarget::Comm(name) => self
                .all_pids()?
                .into_iter()
                .find(|pid| {
                    std::fs::read_to_string(self.proc_root.join(format!("{pid}/comm")))
                        .is_ok_and(|comm| comm.strip_suffix('\n').unwrap_or(&comm) == name)
                })
                .ok_or_else(|| KernelError::NoProcess(format!("named `{name}`"))),
        }
    }

    fn children(&self, parent: Pid) -> Result<Vec<Pid>, KernelError> {
        Ok(self
            .all_pids()?
            .into_iter()
            .filter(|pid| {
                std::fs::read_to_string(self.proc_root.join(format!("{pid}/stat")))
                    .ok()
                    .and_then(|s| parse_stat_ppid(&s))
                    == Some(parent)
            })
            .collect())
    }
}

impl Kernel for LinuxKernel {
    fn nr_cpus(&self) -> Result<usize, KernelError> {
        let path = self.sys_root.join("devices/system/cpu/online");
        let text = self.read(path.clone())?;
        parse_id_list(&text)
            .map(|ids| ids.len().max(1))
            .ok_or_else(|| KernelError::Parse {
                path,
                reason: format!("expected a cpu list, found `{}`", text.trim()),
            })
    }

    fn numa_nodes(&self) -> Result<Vec<u32>, KernelError> {
        let path = self.sys_root.join("devices/system/node/online");
        match self.read(path.clone()) {
            // A kernel without CONFIG_NUMA has no node directory: one node, 0.
            Err(KernelError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(vec![0])
            }
            Err(e) => Err(e),
            Ok(text) => parse_id_list(&text).ok_or_else(|| KernelError::Parse {
                path,
                reason: format!("expected a node list, found `{}`", text.trim()),
            }),
        }
    }

    fn resolve(
        &self,
        target: &ProcessTarget,
        with_children: bool,
    ) -> Result<Vec<Pid>, KernelError> {
        let main = self.main_pid(target)?;
        let mut pids = vec![main];
        if with_children {
            pids.extend(self.children(main)?);
        }
        Ok(pids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake() -> (tempfile::TempDir, LinuxKernel) {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let proc_ = root.join("proc");
        let sys = root.join("sys");
        for (pid, comm, ppid) in [
            (10, "mysqld", 1),
            (11, "worker", 10),
            (12, "mysqld", 1),
            (13, "x", 10),
        ] {
            let d = proc_.join(pid.to_string());
            std::fs::create_dir_all(&d).expect("mkdir");
            std::fs::write(d.join("comm"), format!("{comm}\n")).expect("write");
            std::fs::write(d.join("stat"), format!("{pid} ({comm}) S {ppid} 1 1 0"))
                .expect("write");
        }
        std::fs::create_dir_all(sys.join("devices/system/cpu")).expect("mkdir");
        std::fs::write(sys.join("devices/system/cpu/online"), "0-3\n").expect("write");
        let k = LinuxKernel::with_roots(proc_, sys);
        (dir, k)
    }

    #[test]
    fn resolves_by_pid_and_by_name_with_children() {
        let (_d, k) = fake();
        assert_eq!(
            k.resolve(&ProcessTarget::Pid("12".into()), false)
                .expect("pid"),
            vec![12]
        );
        assert_eq!(
            k.resolve(&ProcessTarget::Comm("mysqld".into()), true)
                .expect("name"),
            vec![10, 11, 13]
        );
        assert!(matches!(
            k.resolve(&ProcessTarget::Pid("99".into()), false),
            Err(KernelError::NoProcess(_))
        ));
        assert!(matches!(
            k.resolve(&ProcessTarget::Comm("mysql".into()), false),
            Err(KernelError::NoProcess(_))
        ));
    }

    #[test]
    fn cpus_and_nodes() {
        let (_d, k) = fake();
        assert_eq!(k.nr_cpus().expect("cpus"), 4);
        assert_eq!(k.numa_nodes().expect("nodes"), vec![0]);
    }
}
