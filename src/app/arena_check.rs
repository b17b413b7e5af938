//! The arena's check command in one worktree: argv as configured (never a shell line built from
//! model text), its own process group (killed when it ends, times out or boocoder exits), the
//! output captured. Async (tokio::process): the loop never waits on it.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::agent::process::{own, Group};

/// Lines of output kept (the last ones).
const KEEP_LINES: usize = 5000;

#[derive(Debug)]
pub struct Output {
    pub passed: bool,
    pub took: Duration,
    /// stdout, then stderr.
    pub lines: Vec<String>,
    /// Why it failed without an exit status of its own (timeout, could not start).
    pub note: Option<String>,
}

/// A check finished (`run` tells it from a newer one of the same contestant).
#[derive(Debug)]
pub struct CheckDone {
    pub arena: u32,
    pub index: usize,
    pub run: u32,
    pub output: Output,
}

fn failed(took: Duration, note: String) -> Output {
    Output {
        passed: false,
        took,
        lines: Vec::new(),
        note: Some(note),
    }
}

/// Runs `argv` in `dir`, stopped after `timeout_secs`.
pub async fn run(argv: &[String], dir: &Path, timeout_secs: u64) -> Output {
    let start = Instant::now();
    let Some((prog, args)) = argv.split_first() else {
        return failed(Duration::ZERO, "no check command".into());
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    own(&mut cmd);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return failed(start.elapsed(), format!("cannot run {prog}: {e}")),
    };
    // Whatever the check left running in its group dies with this guard.
    let _group = child.id().map(|pid| Group { pgid: pid as i32 });
    let limit = Duration::from_secs(timeout_secs.max(1));
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Err(_) => failed(
            start.elapsed(),
            format!("timed out after {}s", limit.as_secs()),
        ),
        Ok(Err(e)) => failed(start.elapsed(), format!("check failed: {e}")),
        Ok(Ok(out)) => {
            let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .chain(String::from_utf8_lossy(&out.stderr).lines())
                .map(str::to_string)
                .collect();
            if lines.len() > KEEP_LINES {
                lines.drain(..lines.len() - KEEP_LINES);
            }
            let note = match out.status.code() {
                Some(0) => None,
                Some(c) => Some(format!("exit {c}")),
                None => Some("killed by a signal".into()),
            };
            Output {
                passed: out.status.success(),
                took: start.elapsed(),
                lines,
                note,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn arena_check_passes_fails_and_times_out() {
        let dir = std::env::temp_dir();
        let ok = run(&argv(&["sh", "-c", "echo one; echo two >&2"]), &dir, 10).await;
        assert!(ok.passed, "{ok:?}");
        assert_eq!(ok.lines, vec!["one", "two"]);
        let bad = run(&argv(&["sh", "-c", "exit 3"]), &dir, 10).await;
        assert!(!bad.passed);
        assert_eq!(bad.note.as_deref(), Some("exit 3"));
        let t = Instant::now();
        let slow = run(&argv(&["sleep", "30"]), &dir, 1).await;
        assert!(!slow.passed);
        assert!(t.elapsed() < Duration::from_secs(10));
        assert_eq!(slow.note.as_deref(), Some("timed out after 1s"));
        // What the check started in its group goes with it.
        let tmp = std::env::temp_dir().join(format!("boo-arena-check-{}", std::process::id()));
        let pidfile = tmp.display().to_string();
        let script = format!("sleep 30 & echo $! > {pidfile}; wait");
        let slow = run(&argv(&["sh", "-c", &script]), &dir, 1).await;
        assert!(!slow.passed);
        let pid: i32 = std::fs::read_to_string(&tmp)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let _ = std::fs::remove_file(&tmp);
        assert!(pid > 0);
        let deadline = Instant::now() + Duration::from_secs(5);
        // SAFETY: kill(2) with signal 0 only asks whether the process exists.
        while unsafe { libc::kill(pid, 0) } == 0 {
            assert!(
                Instant::now() < deadline,
                "the check's child {pid} outlived it"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let missing = run(&argv(&["boo-no-such-check"]), &dir, 1).await;
        assert!(missing.note.is_some_and(|n| n.starts_with("cannot run")));
    }
}
