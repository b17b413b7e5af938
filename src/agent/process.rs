//! Child processes die with boocoder: every agent process asks the kernel for SIGKILL when its
//! parent dies (`PR_SET_PDEATHSIG`), so even a SIGKILLed boocoder leaves nothing running.
//!
//! The signal is tied to the *thread* that forked, so the fork must happen on a thread that lives
//! as long as the process (a runtime worker or a dedicated spawner thread, never the blocking
//! pool, whose idle threads are reaped).

/// The pre-exec hook: run it in the child between fork and exec (`Command::pre_exec`).
///
/// # Safety
/// Only for a `pre_exec` closure: it calls prctl, getppid and _exit, which are
/// async-signal-safe and touch no memory of the parent.
pub(crate) unsafe fn die_with_parent_hook(parent: libc::pid_t) -> std::io::Result<()> {
    libc::prctl(
        libc::PR_SET_PDEATHSIG,
        libc::SIGKILL as libc::c_ulong,
        0,
        0,
        0,
    );
    if libc::getppid() != parent {
        // The parent died between fork and prctl.
        libc::_exit(1);
    }
    Ok(())
}

/// Makes a tokio child die with boocoder (see the module docs for where to spawn it).
pub(crate) fn die_with_parent(cmd: &mut tokio::process::Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the hook only makes async-signal-safe calls (see `die_with_parent_hook`).
    unsafe {
        cmd.pre_exec(move || die_with_parent_hook(parent));
    }
}

/// Makes a std child die with boocoder.
pub(crate) fn die_with_parent_std(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the hook only makes async-signal-safe calls (see `die_with_parent_hook`).
    unsafe {
        cmd.pre_exec(move || die_with_parent_hook(parent));
    }
}
