//! `etmem-lab recycled-pid`: take a handle, let the process exit, reuse its pid (through
//! `ns_last_pid`), and check every action is refused on the old handle. It only acts on
//! the `sleep` processes it spawns.

use crate::Outcome;
use anyhow::Context;
use etmem_kernel::{Kernel, LinuxKernel, PageRef, SwapMethod, VmaFilter};

fn spawn_sleeper() -> anyhow::Result<std::process::Child> {
    std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .context("spawning `sleep 600`")
}

pub fn recycled_pid() -> Outcome {
    let k = LinuxKernel::default();
    let mut old = spawn_sleeper()?;
    let pid = old.id();
    let h = k.open_process(pid)?;
    h.check().context("fresh handle fails its check")?;
    let addr = k
        .vmas(&h, &VmaFilter::default())?
        .iter()
        .find(|v| v.is_anonymous())
        .map(|v| v.start)
        .context("no anonymous VMA in the sleeper")?;
    old.kill()?;
    old.wait()?;
    let gone_after_exit = h.check().is_err_and(|e| e.is_gone());
    // reuse the pid: ns_last_pid = pid - 1, then fork
    let mut new = None;
    for _ in 0..10 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string())
            .context("writing /proc/sys/kernel/ns_last_pid")?;
        let mut c = spawn_sleeper()?;
        if c.id() == pid {
            new = Some(c);
            break;
        }
        c.kill()?;
        c.wait()?;
    }
    let Some(mut new) = new else {
        return Ok((false, format!("reason=pid-not-reused pid={pid}")));
    };
    let check = h.check();
    let how = match &check {
        Err(etmem_kernel::ProcessError::Gone { .. }) => "gone",
        Err(etmem_kernel::ProcessError::Recycled { .. }) => "recycled",
        Err(_) => "other-error",
        Ok(()) => "accepted",
    };
    let page = [PageRef { addr, size: 4096 }];
    let swap = k.swap_out(&h, &page, u64::MAX, SwapMethod::Pageout);
    let mig = k.migrate(&h, &page, 0, u64::MAX);
    let vmas = k.vmas(&h, &VmaFilter::default());
    let refused = [
        swap.as_ref().err().is_some_and(|e| e.is_gone()),
        mig.as_ref().err().is_some_and(|e| e.is_gone()),
        vmas.as_ref().err().is_some_and(|e| e.is_gone()),
    ];
    eprintln!(
        "recycled-pid: pid {pid} reused; old handle check: {check:?}; swap {swap:?}; migrate {mig:?}"
    );
    // the new process itself is fine with a new handle
    let fresh_ok = k.open_process(pid).and_then(|h2| h2.check()).is_ok();
    new.kill()?;
    new.wait()?;
    let nrefused = refused.iter().filter(|r| **r).count();
    let ok = gone_after_exit && check.is_err() && nrefused == 3 && fresh_ok;
    Ok((
        ok,
        format!(
            "pid={pid} reused=1 gone_after_exit={} old_handle={how} refused={nrefused}/3 fresh_handle_ok={}",
            u8::from(gone_after_exit),
            u8::from(fresh_ok)
        ),
    ))
}
