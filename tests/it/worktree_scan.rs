//! The scanner's narrow pending scans (from the worktree watch) give what a full scan gives,
//! after each of many kinds of edit, and most of them are narrow.

use std::path::Path;

use crate::support::worktree::*;
use boocoder::worktree::{self, PendingScanner, SessionWorktree};

/// A small deterministic generator: the same edits on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

fn files_of(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel == ".git" || rel.starts_with("ignored") {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

fn check(step: &str, scanner: &PendingScanner, wt: &SessionWorktree) {
    let full = worktree::pending(wt).unwrap();
    let narrow = scanner.pending(wt).unwrap();
    assert_eq!(narrow, full, "after {step}");
}

#[test]
fn narrow_scans_equal_full_scans_through_many_edits() {
    let mut files: Vec<(String, String)> = (0..40)
        .map(|i| (format!("d{}/f{i}.txt", i % 5), numbered(20)))
        .collect();
    files.push((".gitignore".into(), "ignored/\n*.log\n".into()));
    files.push(("deep/a/b/c.txt".into(), "c\n".into()));
    let fx = Fixture::owned(&files);
    let wt = fx.create("s1");
    let root = wt.path.clone();
    let scanner = PendingScanner::new(&wt.path);
    check("nothing", &scanner, &wt);
    assert!(scanner.watching(), "the watch is on after the first scan");
    let mut rng = Lcg(7);
    for step in 0..120 {
        let existing = files_of(&root);
        let pick = |rng: &mut Lcg| existing[rng.next(existing.len())].clone();
        let what = match rng.next(11) {
            0..=2 => {
                let f = pick(&mut rng);
                let text = std::fs::read_to_string(root.join(&f)).unwrap_or_default();
                write(&root.join(&f), format!("{text}edit {step}\n"));
                format!("modify {f}")
            }
            3 => {
                let f = format!("d{}/new{step}.txt", rng.next(6));
                write(&root.join(&f), format!("new {step}\n"));
                format!("create {f}")
            }
            4 => {
                let f = format!("fresh{step}/x/y{step}.txt");
                write(&root.join(&f), "nested\n");
                format!("create nested {f}")
            }
            5 => {
                let f = pick(&mut rng);
                let _ = std::fs::remove_file(root.join(&f));
                format!("delete {f}")
            }
            6 => {
                let f = pick(&mut rng);
                set_exec(&root.join(&f), !is_exec(&root.join(&f)));
                format!("chmod {f}")
            }
            7 => {
                let f = pick(&mut rng);
                let to = format!("d{}/moved{step}.txt", rng.next(5));
                std::fs::create_dir_all(root.join(&to).parent().unwrap()).unwrap();
                let _ = std::fs::rename(root.join(&f), root.join(&to));
                format!("rename {f} -> {to}")
            }
            8 => {
                write(&root.join(format!("ignored/junk{step}")), "junk\n");
                write(&root.join(format!("d1/trace{step}.log")), "log\n");
                "ignored files".to_string()
            }
            9 => {
                // Restore a file to its base content: it leaves the pending list.
                let f = format!("d{}/f{}.txt", step % 5, (step % 8) * 5 + step % 5);
                write(&root.join(&f), numbered(20));
                format!("restore {f}")
            }
            _ => {
                let dirs = ["d0", "d1", "d2", "d3", "d4", "deep/a"];
                let d = dirs[rng.next(dirs.len())];
                if root.join(d).exists() && rng.next(2) == 0 {
                    let to = format!("moved_dir{step}");
                    std::fs::rename(root.join(d), root.join(&to)).unwrap();
                    format!("move dir {d} -> {to}")
                } else {
                    let _ = std::fs::remove_dir_all(root.join(d));
                    format!("remove dir {d}")
                }
            }
        };
        check(&format!("step {step}: {what}"), &scanner, &wt);
    }
    // Names git escapes: not UTF-8, a backslash, a newline.
    {
        use std::os::unix::ffi::OsStrExt;
        let odd = std::ffi::OsStr::from_bytes(b"d0/caf\xe9.txt");
        write(&root.join(odd), "latin1\n");
        write(&root.join("back\\slash.txt"), "b\n");
        write(&root.join("two\nlines.txt"), "nl\n");
        check("odd names", &scanner, &wt);
        let _ = std::fs::remove_file(root.join(odd));
        check("odd name removed", &scanner, &wt);
    }
    // Editing .gitignore widens what is pending: a full scan, and right.
    write(&root.join(".gitignore"), "*.log\n");
    check(".gitignore edit", &scanner, &wt);
    write(&root.join("ignored/now-seen.txt"), "seen\n");
    check("a file in a directory no longer ignored", &scanner, &wt);
    // Accepting moves the review base: the scan follows it.
    let pending = worktree::pending(&wt).unwrap();
    if let Some(c) = pending.first() {
        worktree::accept(&wt, &c.path, None).unwrap();
        check("an accept", &scanner, &wt);
    }
    let full = scanner.full_scans();
    println!("{full} of 124 scans read every file");
    assert!(
        full < 40,
        "most scans are narrow: {full} of 124 read every file"
    );
}
