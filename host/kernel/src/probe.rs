//! [`probe`]: what this kernel offers etmem, tracker by tracker and action by action, with
//! the reason for anything missing. Used by `etmemd --probe` and the kernel lab.
//!
//! The probe only reads files and makes syscalls that cannot change anything (invalid
//! fds, zero-length lists). It never writes to `/proc` or `/sys`.

use crate::Kernel;
use crate::linux::LinuxKernel;
use crate::track::{self, TrackerKind};

/// One capability and whether it is usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    /// `tracker damon`, `action move_pages`...
    pub name: String,
    /// `Ok` or the reason it is missing
    pub status: Result<(), String>,
}

/// What [`probe`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// `/proc/sys/kernel/osrelease`
    pub kernel: String,
    /// effective uid 0
    pub root: bool,
    /// online NUMA nodes
    pub nodes: Vec<u32>,
    /// one entry per tracker, in `auto` order
    pub trackers: Vec<(TrackerKind, Result<(), String>)>,
    /// `swap_pages`, `process_madvise`, `move_pages`, `swap space`
    pub actions: Vec<Capability>,
    /// what makes a tracker cheaper when present: `pagemap_scan`, `damon_trace`
    pub aids: Vec<Capability>,
    /// what the built-in engines need beyond a tracker: `damon` (DAMON sysfs, free for a
    /// kdamond of ours), `psi` (a memory cgroup hierarchy with memory.reclaim and PSI)
    pub engines: Vec<Capability>,
}

impl ProbeReport {
    /// The tracker `auto` would choose.
    pub fn auto_tracker(&self) -> Option<TrackerKind> {
        self.trackers
            .iter()
            .find(|(_, s)| s.is_ok())
            .map(|(k, _)| *k)
    }

    /// The status of a tracker.
    pub fn tracker(&self, kind: TrackerKind) -> Option<&Result<(), String>> {
        self.trackers
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, s)| s)
    }

    /// The status of an aid by name.
    pub fn aid(&self, name: &str) -> Option<&Result<(), String>> {
        self.aids.iter().find(|c| c.name == name).map(|c| &c.status)
    }

    /// The status of an action by name.
    pub fn action(&self, name: &str) -> Option<&Result<(), String>> {
        self.actions
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.status)
    }
}

fn line(f: &mut std::fmt::Formatter<'_>, what: &str, s: &Result<(), String>) -> std::fmt::Result {
    match s {
        Ok(()) => writeln!(f, "{what}: available"),
        Err(r) => writeln!(f, "{what}: missing: {r}"),
    }
}

impl std::fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nodes: Vec<String> = self.nodes.iter().map(u32::to_string).collect();
        writeln!(
            f,
            "kernel {}, {}, numa nodes {}",
            self.kernel,
            if self.root { "root" } else { "not root" },
            nodes.join(",")
        )?;
        for (k, s) in &self.trackers {
            line(f, &format!("tracker {k}"), s)?;
        }
        match self.auto_tracker() {
            Some(k) => writeln!(f, "tracker auto: {k}")?,
            None => writeln!(f, "tracker auto: none")?,
        }
        for c in &self.actions {
            line(f, &format!("action {}", c.name), &c.status)?;
        }
        for c in &self.aids {
            line(f, &format!("aid {}", c.name), &c.status)?;
        }
        for c in &self.engines {
            line(f, &format!("engine {}", c.name), &c.status)?;
        }
        Ok(())
    }
}

fn errno_of(r: libc::c_long) -> Option<i32> {
    (r < 0).then(|| std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// Probes `k` (the live kernel, or a fake tree: then syscalls are reported as unchecked).
pub fn probe(k: &LinuxKernel) -> ProbeReport {
    let root = rustix::process::geteuid().is_root();
    let not_root = |s: Result<(), String>| -> Result<(), String> {
        match s {
            Ok(()) if !root => Err("not root (needs CAP_SYS_ADMIN to read other processes' \
                                    page tables and write /sys)"
                .into()),
            s => s,
        }
    };
    let kernel = std::fs::read_to_string(k.proc_root().join("sys/kernel/osrelease"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let nodes = k.numa_nodes().unwrap_or_default();
    let trackers = TrackerKind::ALL
        .iter()
        .map(|kind| (*kind, not_root(track::availability(k, *kind))))
        .collect();
    let mut actions = Vec::new();
    actions.push(Capability {
        name: "swap_pages".into(),
        status: if k.proc_root().join("self/swap_pages").exists() {
            not_root(Ok(()))
        } else {
            Err("no /proc/PID/swap_pages: the openEuler etmem_swap module is not loaded".into())
        },
    });
    let live = k.is_live();
    let madvise = if !live {
        Err("not checked: not the live kernel".into())
    } else {
        // SAFETY: an invalid pidfd (-1), no iovecs: the kernel returns EBADF if the call
        // exists and ENOSYS if not; nothing is read or written.
        let r = unsafe {
            libc::syscall(
                libc::SYS_process_madvise,
                -1i32,
                std::ptr::null::<libc::iovec>(),
                0usize,
                21i32,
                0u32,
            )
        };
        match errno_of(r) {
            Some(libc::ENOSYS) => Err("process_madvise(2) not in this kernel (needs 5.10+ and \
                                       CONFIG_ADVISE_SYSCALLS)"
                .into()),
            _ => not_root(Ok(())),
        }
    };
    actions.push(Capability {
        name: "process_madvise".into(),
        status: madvise,
    });
    let move_pages = if !live {
        Err("not checked: not the live kernel".into())
    } else {
        // SAFETY: zero pages for our own pid: no pointer is dereferenced.
        let r = unsafe {
            libc::syscall(
                libc::SYS_move_pages,
                0i32,
                0usize,
                std::ptr::null::<*mut libc::c_void>(),
                std::ptr::null::<i32>(),
                std::ptr::null_mut::<i32>(),
                0i32,
            )
        };
        match errno_of(r) {
            Some(libc::ENOSYS) => {
                Err("move_pages(2) not in this kernel (CONFIG_MIGRATION off)".into())
            }
            _ if nodes.len() < 2 => Err(format!(
                "only {} NUMA node(s) online: nowhere to migrate to",
                nodes.len()
            )),
            _ => not_root(Ok(())),
        }
    };
    actions.push(Capability {
        name: "move_pages".into(),
        status: move_pages,
    });
    let swaps = std::fs::read_to_string(k.proc_root().join("swaps")).unwrap_or_default();
    let devices = swaps
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count();
    actions.push(Capability {
        name: "swap space".into(),
        status: if devices > 0 {
            Ok(())
        } else {
            Err("no active swap device in /proc/swaps: swap-out has nowhere to go".into())
        },
    });
    // the psi engine: proactive reclaim of memory cgroups, driven by their pressure
    actions.push(Capability {
        name: "cgroup reclaim".into(),
        status: crate::cgroup::availability(k.proc_root(), k.sys_root())
            .map(|_| ())
            .and_then(|()| not_root(Ok(()))),
    });
    let not_live = || Err("not checked: not the live kernel".into());
    let aids = vec![
        Capability {
            name: "pagemap_scan".into(),
            status: if live {
                track::pagemap_scan_availability(k.proc_root())
            } else {
                not_live()
            },
        },
        Capability {
            // DAMON's regions read in bulk (one trace_pipe read) instead of three sysfs
            // files per region
            name: "damon_trace".into(),
            status: track::damon_trace_availability(k.sys_root()),
        },
    ];
    // the damon engine: DAMON sysfs with a kdamond of ours possible (or ours already
    // serving schemes), as the tracker's check; the schemes act on their own (pageout
    // needs swap space, listed under the actions)
    let engines = vec![
        Capability {
            name: "damon".into(),
            status: not_root(track::damon_scheme_availability(k.sys_root())),
        },
        // the psi engine: the cgroup reclaim above (memory.reclaim, memory.pressure)
        Capability {
            name: "psi".into(),
            status: not_root(crate::cgroup::availability(k.proc_root(), k.sys_root()).map(|_| ())),
        },
    ];
    ProbeReport {
        kernel,
        root,
        nodes,
        trackers,
        actions,
        aids,
        engines,
    }
}
