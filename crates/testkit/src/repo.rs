//! Small real git repositories for tests (made with the git CLI).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs git in `dir` with a fixed identity and no user or system config (any owner of the
/// directory, no CRLF conversion, `main` as the first branch); panics with git's output on
/// failure. The one git helper of the tests.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "init.defaultBranch=main", "-c", "core.autocrlf=false"])
        .args(["-c", "safe.directory=*"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "boo test")
        .env("GIT_AUTHOR_EMAIL", "test@boo.invalid")
        .env("GIT_COMMITTER_NAME", "boo test")
        .env("GIT_COMMITTER_EMAIL", "test@boo.invalid")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Creates `dir` as a repository with one commit holding `files` (path, content).
pub fn init(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir repo");
    git(dir, &["init", "-q", "-b", "main"]);
    for (path, content) in files {
        let p = dir.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, content).expect("write file");
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "initial"]);
    dir.to_path_buf()
}

/// A small sample project.
pub fn sample(dir: &Path) -> PathBuf {
    init(
        dir,
        &[
            ("README.md", "# sample\n\nA tiny project for boo.nvim.\n"),
            (
                "src/main.py",
                "def greet(name):\n    return 'hello ' + name\n\n\nprint(greet('world'))\n",
            ),
        ],
    )
}

/// Every entry of the working tree below `dir` (`.git` left out) with its kind, content and
/// permission bits, sorted: equal digests mean byte-for-byte the same files and modes.
pub fn tree_digest(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).expect("metadata");
            let rel = p
                .strip_prefix(dir)
                .expect("below dir")
                .display()
                .to_string();
            let mode = m.permissions().mode();
            if m.file_type().is_symlink() {
                let t = std::fs::read_link(&p).expect("read_link");
                out.push(format!("{rel} link -> {}", t.display()));
            } else if m.is_dir() {
                out.push(format!("{rel}/ dir {mode:o}"));
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).expect("read");
                out.push(format!(
                    "{rel} file {mode:o} {:?}",
                    String::from_utf8_lossy(&bytes)
                ));
            }
        }
    }
    out.sort();
    out
}

/// Path of generated file `i` (20 top directories of 20 subdirectories each).
pub fn generated_path(i: usize) -> String {
    format!("src/m{:02}/d{:03}/file{i:06}.txt", i % 20, i % 400)
}

/// Content of generated file `i`: 30 short lines.
pub fn generated_content(i: usize) -> String {
    (0..30)
        .map(|l| format!("file {i} line {l}: some text to diff\n"))
        .collect()
}

/// Makes `dir` a repository whose `main` (HEAD) is one commit of `files` generated files,
/// written with `git fast-import`. The checkout is left unpopulated: a session worktree is
/// made from HEAD, and checking the files out here too would double the time.
pub fn generate(dir: &Path, files: usize) -> PathBuf {
    use std::io::Write;
    std::fs::create_dir_all(dir).expect("mkdir repo");
    git(dir, &["init", "-q", "-b", "main"]);
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("git fast-import runs");
    {
        let stdin = child.stdin.take().expect("stdin");
        let mut w = std::io::BufWriter::new(stdin);
        let msg = "generated";
        write!(
            w,
            "commit refs/heads/main\ncommitter Gen <gen@boo.invalid> 1700000000 +0000\ndata {}\n{msg}\n",
            msg.len()
        )
        .expect("write");
        for i in 0..files {
            let c = generated_content(i);
            write!(
                w,
                "M 100644 inline {}\ndata {}\n{c}\n",
                generated_path(i),
                c.len()
            )
            .expect("write");
        }
        w.flush().expect("flush");
    }
    assert!(child.wait().expect("fast-import").success());
    dir.to_path_buf()
}

/// A generated repository of `files` files at `dest`, sharing the objects of one cached under
/// `cache` (made once; later calls only clone its refs, a fraction of a second).
pub fn generate_cached(cache: &Path, dest: &Path, files: usize) -> PathBuf {
    let src = cache.join(format!("generated-{files}"));
    let done = src.join(".git/boo-generated");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&src);
        generate(&src, files);
        std::fs::write(&done, "ok\n").expect("mark the cache complete");
    }
    let parent = dest.parent().expect("dest has a parent");
    std::fs::create_dir_all(parent).expect("mkdir");
    let out = Command::new("git")
        .args(["clone", "-q", "--shared", "--no-checkout"])
        .arg(&src)
        .arg(dest)
        .output()
        .expect("git clone runs");
    assert!(
        out.status.success(),
        "git clone: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dest.to_path_buf()
}
