//! Records the git revision the binary is built from, so the Lua side can tell a stale binary.
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let rev = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let time = git(&["log", "-1", "--format=%ct"]).unwrap_or_else(|| "0".into());
    println!("cargo:rustc-env=BOO_GIT_REVISION={rev}");
    println!("cargo:rustc-env=BOO_GIT_COMMIT_TIME={time}");
    // Rebuild when HEAD moves (a commit or a checkout), not on every source change.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/logs/HEAD");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
