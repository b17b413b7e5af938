//! The arena view: one line per contestant (status, elapsed time, tokens and cost, diffstat,
//! check), decided here; `lua/boo/ui/arena.lua` only puts the lines in a buffer and maps keys.

use std::time::Duration;

use serde::Serialize;

use crate::model::{ChatId, SessionId};

/// Where a contestant is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Queued,
    Running,
    Done,
    Failed,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Done => "done",
            Status::Failed => "failed",
        }
    }
}

/// A check's state in one worktree.
#[derive(Clone, Debug, PartialEq)]
pub enum Check {
    Running,
    /// Ended: passed or not, how long it took, its last lines.
    Ended {
        passed: bool,
        took: Duration,
        tail: Vec<String>,
        /// Why it failed when it did not run to an exit status (timeout, not found).
        note: Option<String>,
    },
}

/// What the app knows of one contestant.
#[derive(Clone, Debug, PartialEq)]
pub struct Contestant {
    pub label: String,
    pub status: Status,
    pub elapsed: Option<Duration>,
    pub tokens: u64,
    pub cost: f64,
    /// files, additions, deletions of its pending diff.
    pub diff: Option<(usize, usize, usize)>,
    pub check: Option<Check>,
    pub session: Option<SessionId>,
    pub chat: Option<ChatId>,
    pub winner: bool,
}

/// One line of the view.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub line: String,
    pub status: Status,
    /// `pass`, `fail`, `running` or absent: the line's check highlight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<&'static str>,
    /// The check's last output lines, shown under the row.
    pub tail: Vec<String>,
}

/// The whole view (`Op::Arena`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArenaView {
    pub arena: u32,
    pub header: Vec<String>,
    pub rows: Vec<Row>,
    /// Show the view (else only redraw it when it is shown).
    pub open: bool,
}

/// Last lines of a check shown in the view.
pub const TAIL: usize = 3;

fn elapsed(d: Option<Duration>) -> String {
    match d {
        None => "-".into(),
        Some(d) => {
            let s = d.as_secs();
            format!("{}:{:02}", s / 60, s % 60)
        }
    }
}

fn check_text(c: Option<&Check>) -> (String, Option<&'static str>) {
    match c {
        None => ("check -".into(), None),
        Some(Check::Running) => ("check running".into(), Some("running")),
        Some(Check::Ended {
            passed, took, note, ..
        }) => {
            let word = if *passed { "pass" } else { "fail" };
            let note = note.as_ref().map(|n| format!(", {n}")).unwrap_or_default();
            (
                format!("check {word} ({:.1}s{note})", took.as_secs_f64()),
                Some(word),
            )
        }
    }
}

/// The view of arena `arena` asked with `prompt`.
pub fn view(arena: u32, prompt: &str, check: Option<&[String]>, cs: &[Contestant]) -> ArenaView {
    let prompt = prompt.split_whitespace().collect::<Vec<_>>().join(" ");
    let check = match check {
        Some(argv) if !argv.is_empty() => argv.join(" "),
        _ => "none (arena.check)".into(),
    };
    let header = vec![
        format!("Arena {arena}: {prompt}"),
        format!("check: {check}"),
        "<CR> transcript  d diff  c check  o check output  w winner  r refresh  q close".into(),
    ];
    let rows = cs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let diff = match c.diff {
                Some((f, a, d)) => format!("{f} file(s) +{a} -{d}"),
                None => "-".into(),
            };
            let (check, hl) = check_text(c.check.as_ref());
            let won = if c.winner { "  (winner)" } else { "" };
            let line = format!(
                "{:>2}. {:<28} {:<8} {:>5}  {:>5} tok {:>8}  {:<20} {check}{won}",
                i + 1,
                c.label,
                c.status.word(),
                elapsed(c.elapsed),
                super::usage::tokens(c.tokens),
                super::usage::cost(c.cost),
                diff,
            );
            let tail = match &c.check {
                Some(Check::Ended { tail, .. }) => {
                    let from = tail.len().saturating_sub(TAIL);
                    tail[from..]
                        .iter()
                        .map(|l| format!("      | {l}"))
                        .collect()
                }
                _ => Vec::new(),
            };
            Row {
                line,
                status: c.status,
                check: hl,
                tail,
            }
        })
        .collect();
    ArenaView {
        arena,
        header,
        rows,
        open: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(label: &str, status: Status) -> Contestant {
        Contestant {
            label: label.into(),
            status,
            elapsed: None,
            tokens: 0,
            cost: 0.0,
            diff: None,
            check: None,
            session: None,
            chat: None,
            winner: false,
        }
    }

    #[test]
    fn arena_rows_show_status_time_usage_diff_and_check() {
        let mut done = c("opencode/fake/ok", Status::Done);
        done.elapsed = Some(Duration::from_secs(75));
        done.tokens = 1540;
        done.cost = 0.0123;
        done.diff = Some((2, 10, 3));
        done.check = Some(Check::Ended {
            passed: true,
            took: Duration::from_millis(1500),
            tail: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            note: None,
        });
        let mut failed = c("qwen", Status::Failed);
        failed.check = Some(Check::Ended {
            passed: false,
            took: Duration::from_secs(300),
            tail: vec![],
            note: Some("timed out".into()),
        });
        let v = view(
            7,
            "fix\n  the  bug",
            Some(&["make".into(), "test".into()]),
            &[done, c("opencode/fake/b", Status::Queued), failed],
        );
        assert_eq!(v.header[0], "Arena 7: fix the bug");
        assert_eq!(v.header[1], "check: make test");
        let l = &v.rows[0].line;
        assert!(l.starts_with(" 1. opencode/fake/ok"), "{l}");
        for part in [
            "done",
            "1:15",
            "1.5k tok",
            "$0.012",
            "2 file(s) +10 -3",
            "check pass (1.5s)",
        ] {
            assert!(l.contains(part), "{part:?} in {l}");
        }
        assert_eq!(v.rows[0].check, Some("pass"));
        // Only the last lines of the output, under the row.
        assert_eq!(v.rows[0].tail, vec!["      | b", "      | c", "      | d"]);
        assert!(v.rows[1].line.contains("queued"));
        assert!(v.rows[1].line.contains("check -"));
        assert_eq!(v.rows[1].check, None);
        assert!(v.rows[2].line.contains("check fail (300.0s, timed out)"));
        assert_eq!(v.rows[2].status, Status::Failed);
    }

    #[test]
    fn arena_payload_serializes_for_lua() {
        let mut w = c("opencode", Status::Running);
        w.winner = true;
        w.check = Some(Check::Running);
        let v = view(1, "p", None, &[w]);
        let j = serde_json::to_value(&v).unwrap_or_default();
        assert_eq!(j["arena"], 1);
        assert_eq!(j["rows"][0]["status"], "running");
        assert_eq!(j["rows"][0]["check"], "running");
        assert!(j["rows"][0]["line"]
            .as_str()
            .is_some_and(|l| l.ends_with("(winner)")));
        assert_eq!(j["header"][1], "check: none (arena.check)");
    }
}
