//! Cross-session conflicts: hunks of one session's pending diff whose changed lines overlap
//! those of another live session of the repository, or of the user's uncommitted changes since
//! the session's review base. Read from the pending patches (the store keeps every session's,
//! refreshed after each turn), so the cost grows with the changed lines, never with the
//! repository: per shared path, one tree lookup per base and, for the user's side, one
//! file read and a blob diff.

use std::collections::HashMap;
use std::path::Path;

use git2::{DiffOptions, Oid, Patch, Repository};

use super::create::open_user_repo;
use super::Result;

/// One session's pending changes, as patches (`diff --git` text, hunks with context).
#[derive(Clone, Debug)]
pub struct SessionPatches {
    pub session: i64,
    pub title: String,
    /// The commit its pending diff is taken against.
    pub review_base: String,
    /// `(path, patch)` per changed file.
    pub files: Vec<(String, String)>,
}

/// A hunk of a session that someone else also changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub path: String,
    /// The hunk's `@@ … @@` header, as the review view shows it.
    pub header: String,
    /// Who else: "session <title>" or "your checkout".
    pub by: Vec<String>,
}

/// Lines `[start, end)` of the review base a hunk changes; an insertion touches the line it
/// follows (`start == end` is widened to one line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn overlaps(self, o: Span) -> bool {
        self.start < o.end && o.start < self.end
    }
}

/// A hunk being read: its header, the next base line, the span touched so far.
struct Reading {
    header: String,
    at: u32,
    touched: Option<Span>,
    /// The last line was a `-` (or a `+` after one): a `+` now replaces, not inserts.
    after_minus: bool,
}

impl Reading {
    fn touch(&mut self, start: u32, end: u32) {
        let t = self.touched.get_or_insert(Span { start, end });
        t.start = t.start.min(start);
        t.end = t.end.max(end);
    }

    fn line(&mut self, line: &str) {
        let replacing = self.after_minus;
        self.after_minus = line.starts_with('-') || (replacing && line.starts_with('+'));
        match line.as_bytes().first() {
            Some(b' ') => self.at += 1,
            Some(b'-') => {
                self.touch(self.at, self.at + 1);
                self.at += 1;
            }
            // A `+` after `-` lines replaces them; an insertion sits between lines `at - 1`
            // and `at`, and touches both (git's merge calls adjacent edits a conflict too).
            Some(b'+') if !replacing => self.touch(self.at.saturating_sub(1).max(1), self.at + 1),
            _ => {}
        }
    }

    fn done(self) -> Option<Hunk> {
        self.touched.map(|t| Hunk {
            header: self.header,
            span: Span {
                start: t.start,
                end: t.end.max(t.start + 1),
            },
        })
    }
}

struct Hunk {
    header: String,
    span: Span,
}

/// The hunks of a patch: header and the span of base lines its `+`/`-` lines touch (context
/// lines left out, so edits a few lines apart are not a conflict).
fn hunks_of(patch: &str) -> Vec<Hunk> {
    let mut out = Vec::new();
    let mut cur: Option<Reading> = None;
    for line in patch.lines() {
        if let Some(rest) = line.strip_prefix("@@ -") {
            out.extend(cur.take().and_then(Reading::done));
            let old: u32 = rest
                .split([',', ' '])
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            cur = Some(Reading {
                header: line.to_string(),
                at: old.max(1),
                touched: None,
                after_minus: false,
            });
        } else if let Some(r) = cur.as_mut() {
            r.line(line);
        }
    }
    out.extend(cur.and_then(Reading::done));
    out
}

fn blob_at(
    repo: &Repository,
    base: &str,
    path: &str,
    cache: &mut HashMap<(String, String), Option<Oid>>,
) -> Option<Oid> {
    cache
        .entry((base.to_string(), path.to_string()))
        .or_insert_with(|| {
            let commit = repo.find_commit(Oid::from_str(base).ok()?).ok()?;
            let entry = commit.tree().ok()?.get_path(Path::new(path)).ok()?;
            Some(entry.id())
        })
        .to_owned()
}

/// The spans of the user's checkout that differ from `base`'s version of `path`.
fn user_spans(repo: &Repository, blob: Option<Oid>, path: &str) -> Vec<Span> {
    let Some(root) = repo.workdir() else {
        return Vec::new();
    };
    let Ok(mine) = std::fs::read(root.join(path)) else {
        return Vec::new();
    };
    let old = blob.and_then(|b| repo.find_blob(b).ok());
    let old = old.as_ref().map_or(&[][..], |b| b.content());
    let mut opts = DiffOptions::new();
    opts.context_lines(0);
    let p = Some(Path::new(path));
    let Ok(mut patch) = Patch::from_buffers(old, p, &mine, p, Some(&mut opts)) else {
        return Vec::new();
    };
    let Ok(buf) = patch.to_buf() else {
        return Vec::new();
    };
    hunks_of(&String::from_utf8_lossy(&buf))
        .into_iter()
        .map(|h| h.span)
        .collect()
}

/// Every session's marked hunks. Sessions from different bases are compared where their base
/// versions of the file agree; where they differ, each hunk of the file is marked (line
/// numbers of two versions cannot be compared).
pub fn find(repo_path: &Path, sessions: &[SessionPatches]) -> Result<HashMap<i64, Vec<Mark>>> {
    let repo = open_user_repo(repo_path)?;
    let mut blobs = HashMap::new();
    // path -> (session index, its hunks)
    let mut by_path: HashMap<&str, Vec<(usize, Vec<Hunk>)>> = HashMap::new();
    for (i, s) in sessions.iter().enumerate() {
        for (path, patch) in &s.files {
            let hunks = hunks_of(patch);
            if !hunks.is_empty() {
                by_path.entry(path.as_str()).or_default().push((i, hunks));
            }
        }
    }
    let mut marks: HashMap<(usize, String, String), Vec<String>> = HashMap::new();
    let mut mark = |i: usize, path: &str, header: &str, by: String| {
        let list = marks
            .entry((i, path.to_string(), header.to_string()))
            .or_default();
        if !list.contains(&by) {
            list.push(by);
        }
    };
    for (path, touched) in &by_path {
        for (a, (ia, ha)) in touched.iter().enumerate() {
            let sa = &sessions[*ia];
            let base_a = blob_at(&repo, &sa.review_base, path, &mut blobs);
            let user = user_spans(&repo, base_a, path);
            for h in ha {
                if user.iter().any(|u| u.overlaps(h.span)) {
                    mark(*ia, path, &h.header, "your checkout".into());
                }
            }
            for (ib, hb) in touched.iter().skip(a + 1) {
                let sb = &sessions[*ib];
                let same_base = base_a == blob_at(&repo, &sb.review_base, path, &mut blobs);
                for x in ha {
                    for y in hb {
                        if !same_base || x.span.overlaps(y.span) {
                            mark(*ia, path, &x.header, format!("session {}", sb.title));
                            mark(*ib, path, &y.header, format!("session {}", sa.title));
                        }
                    }
                }
            }
        }
    }
    let mut out: HashMap<i64, Vec<Mark>> = HashMap::new();
    for ((i, path, header), by) in marks {
        out.entry(sessions[i].session)
            .or_default()
            .push(Mark { path, header, by });
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| (&a.path, &a.header).cmp(&(&b.path, &b.header)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hunk_spans_its_changed_lines_not_its_context() {
        let patch = "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,7 +1,7 @@\n a\n b\n c\n-d\n+D\n e\n f\n g\n@@ -20,3 +20,4 @@ fn x\n t\n u\n+new\n v\n";
        let h = hunks_of(patch);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].span, Span { start: 4, end: 5 });
        assert_eq!(h[0].header, "@@ -1,7 +1,7 @@");
        // Inserted after line 21: touches lines 21 and 22.
        assert_eq!(h[1].span, Span { start: 21, end: 23 });
        assert!(!h[0].span.overlaps(Span { start: 6, end: 7 }));
        assert!(h[0].span.overlaps(Span { start: 4, end: 5 }));
    }

    #[test]
    fn a_new_file_spans_from_its_first_line() {
        let h = hunks_of("@@ -0,0 +1,2 @@\n+a\n+b\n");
        assert_eq!(h[0].span, Span { start: 1, end: 2 });
    }
}
