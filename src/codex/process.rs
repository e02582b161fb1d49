//! A codex child process that cannot outlive the stream that owns it.

use nix::{sys::signal::Signal, unistd::Pid};

/// Kills the child's whole process group when dropped. codex starts its own children (shell
/// commands, sandbox helpers); killing only the leader would leave them running, so the child
/// leads a fresh group and the guard signals the group.
#[derive(Debug)]
pub struct ProcessGroupGuard {
    pgid: Option<Pid>,
}

impl ProcessGroupGuard {
    pub fn new(pid: Option<u32>) -> Self {
        ProcessGroupGuard {
            pgid: pid
                .and_then(|pid| i32::try_from(pid).ok())
                .map(Pid::from_raw),
        }
    }
}

impl Drop for ProcessGroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // ESRCH (the group is already gone) is the normal case after a clean exit.
            let _ = nix::sys::signal::killpg(pgid, Signal::SIGKILL);
        }
    }
}
