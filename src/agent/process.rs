//! Everything boocoder starts ends with it, and so does everything *those* processes start.
//!
//! Three layers, because each alone leaves something behind:
//! * every child runs in its own process group, and stopping it signals the whole group
//!   ([`signal_group`], [`Group`]): tools a CLI or server started with `&` go with it;
//! * every child asks the kernel for SIGKILL when boocoder dies (`PR_SET_PDEATHSIG`), also when
//!   boocoder is SIGKILLed;
//! * every child carries an owner marker in its environment ([`OWNER_ENV`]), which everything it
//!   starts inherits, also across `setsid` and double forks. A small guard process (boocoder
//!   itself, re-executed with `--guard`, see [`start_guard`]) waits for boocoder's end on a pipe
//!   and then kills every process that carries the marker. A process that clears its own
//!   environment escapes; `:checkhealth boo` says so.
//!
//! The parent-death signal is tied to the *thread* that forked, so the fork must happen on a
//! thread that lives as long as the process (a runtime worker or a dedicated spawner thread,
//! never the blocking pool, whose idle threads are reaped).

use std::io::Read;
use std::sync::OnceLock;
use std::time::Duration;

/// The environment variable that marks a process (and its descendants) as boocoder's.
pub const OWNER_ENV: &str = "BOO_OWNER";

/// This boocoder's marker value: its pid and a random part, so a reused pid never matches.
pub fn owner_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let mut r = [0u8; 8];
        let random = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut r))
            .map(|_| u64::from_ne_bytes(r))
            .unwrap_or_else(|_| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
            });
        format!("{}-{random:016x}", std::process::id())
    })
}

/// Sends `sig` to the process group `pgid` (nothing for `pgid <= 0`).
pub(crate) fn signal_group(pgid: i32, sig: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) on a process group we created; touches no memory.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

/// A process group we started; SIGKILLed on drop.
#[derive(Debug)]
pub(crate) struct Group {
    pub pgid: i32,
}

impl Group {
    pub fn signal(&self, sig: i32) {
        signal_group(self.pgid, sig);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

/// The pre-exec hook: run it in the child between fork and exec (`Command::pre_exec`).
///
/// # Safety
/// Only for a `pre_exec` closure: it calls prctl, getppid and _exit, which are
/// async-signal-safe and touch no memory of the parent.
unsafe fn die_with_parent_hook(parent: libc::pid_t) -> std::io::Result<()> {
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

/// Makes a tokio child ours: own process group, parent-death signal, owner marker.
pub(crate) fn own(cmd: &mut tokio::process::Command) {
    let parent = std::process::id() as libc::pid_t;
    cmd.process_group(0).env(OWNER_ENV, owner_token());
    // SAFETY: the hook only makes async-signal-safe calls (see `die_with_parent_hook`).
    unsafe {
        cmd.pre_exec(move || die_with_parent_hook(parent));
    }
}

/// Makes a std child ours (see [`own`]).
pub(crate) fn own_std(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    cmd.process_group(0).env(OWNER_ENV, owner_token());
    // SAFETY: the hook only makes async-signal-safe calls (see `die_with_parent_hook`).
    unsafe {
        cmd.pre_exec(move || die_with_parent_hook(parent));
    }
}

const NO_GUARD: &str =
    "processes that start their own session (setsid) can outlive a kill -9 of boocoder";

/// What keeps processes from outliving boocoder, for `:checkhealth` (set by [`start_guard`]).
pub fn guard_status() -> String {
    GUARD
        .get()
        .map(|g| g.status.clone())
        .unwrap_or_else(|| format!("no guard: {NO_GUARD}"))
}

struct Guard {
    /// The write end of the guard's stdin, never written: closing it (boocoder's exit, any
    /// way) wakes the guard.
    _pipe: Option<std::process::ChildStdin>,
    status: String,
}

static GUARD: OnceLock<Guard> = OnceLock::new();

/// Starts the guard process, once. Errors only make [`guard_status`] say so.
pub fn start_guard() {
    let started = (|| -> std::io::Result<Guard> {
        let exe = std::env::current_exe()?;
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("--guard")
            .arg(owner_token())
            .env_remove(OWNER_ENV)
            .stdin(std::process::Stdio::piped())
            // stdout is the RPC channel: never the guard's.
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = cmd.spawn()?;
        let pid = child.id();
        // Never waited for: it outlives us by design; a reaped-late zombie is harmless.
        let pipe = child.stdin.take();
        std::mem::forget(child);
        Ok(Guard {
            _pipe: pipe,
            status: format!(
                "guard process {pid}: when boocoder ends (also by kill -9) it kills every process started under it, found by the {OWNER_ENV} environment marker; a process that clears its environment escapes"
            ),
        })
    })();
    match started {
        Ok(g) => {
            tracing::info!("{}", g.status);
            let _ = GUARD.set(g);
        }
        Err(e) => {
            tracing::warn!("no process guard: {e}");
            let _ = GUARD.set(Guard {
                _pipe: None,
                status: format!("no guard ({e}): {NO_GUARD}"),
            });
        }
    }
}

/// The guard's whole life (`boocoder --guard TOKEN`): wait for EOF on stdin, then sweep.
pub fn run_guard(token: &str) {
    // SAFETY: setsid and signal with SIG_IGN have no memory effects. A new session keeps the
    // terminal's signals (Ctrl-C, hang-up) from reaching the guard before its work is done.
    unsafe {
        libc::setsid();
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let mut buf = [0u8; 64];
    let mut stdin = std::io::stdin().lock();
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    sweep(token);
}

/// Kills every process whose environment carries `BOO_OWNER=token`, in rounds until a round
/// finds none (a process may fork while the sweep runs). Returns how many were signalled.
pub fn sweep(token: &str) -> usize {
    let marker = format!("{OWNER_ENV}={token}").into_bytes();
    let me = std::process::id();
    let mut total = 0;
    for _ in 0..50 {
        let found = marked_processes(&marker, me);
        if found.is_empty() {
            break;
        }
        for pid in &found {
            // SAFETY: kill(2) has no memory effects; the pid carries our marker.
            unsafe {
                libc::kill(*pid as libc::pid_t, libc::SIGKILL);
            }
        }
        total += found.len();
        std::thread::sleep(Duration::from_millis(20));
    }
    total
}

/// Pids (other than `me`) whose environment has the exact entry `marker`. Zombies have an empty
/// environment, so they are not listed again.
fn marked_processes(marker: &[u8], me: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|entry| entry == marker))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_kills_marked_processes_also_in_their_own_session_and_spares_others() {
        let token = format!("test-{}", std::process::id());
        let spawn = |marked: bool| {
            let mut c = std::process::Command::new("setsid");
            c.args(["sleep", "30"]);
            if marked {
                c.env(OWNER_ENV, &token);
            } else {
                c.env_remove(OWNER_ENV);
            }
            c.spawn().expect("setsid sleep")
        };
        let mut marked = spawn(true);
        let mut other = spawn(false);
        // Wait until exec has happened (the environment is read from /proc).
        std::thread::sleep(Duration::from_millis(200));
        assert!(sweep(&token) >= 1);
        let status = marked.wait().expect("wait");
        assert!(!status.success(), "the marked process was killed");
        assert!(
            other.try_wait().expect("try_wait").is_none(),
            "the unmarked one still runs"
        );
        let _ = other.kill();
        let _ = other.wait();
        assert_eq!(sweep(&token), 0);
    }
}

/// The last lines a child wrote to stderr, kept for one-line error messages (each line is also
/// logged). Lines are read as bytes, so output that is not UTF-8 never stops the reader (the
/// child would block on a full pipe).
#[derive(Clone, Debug, Default)]
pub struct StderrTail(std::sync::Arc<parking_lot::Mutex<std::collections::VecDeque<String>>>);

impl StderrTail {
    /// Reads `err` to its end in a task, keeping the last `keep` non-empty lines.
    pub fn collect(
        &self,
        err: tokio::process::ChildStderr,
        keep: usize,
        who: &str,
    ) -> tokio::task::JoinHandle<()> {
        use tokio::io::AsyncBufReadExt;
        let tail = self.clone();
        let who = who.to_string();
        tokio::spawn(async move {
            let mut r = tokio::io::BufReader::new(err);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let line = String::from_utf8_lossy(&buf).trim().to_string();
                tracing::debug!(child = %who, "stderr: {line}");
                if line.is_empty() {
                    continue;
                }
                let mut t = tail.0.lock();
                if t.len() >= keep {
                    t.pop_front();
                }
                t.push_back(line);
            }
        })
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().iter().cloned().collect()
    }
}
