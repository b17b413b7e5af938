//! The CI entry point runs exactly the README's test command and fails when it fails.

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn ci_run_is_the_readme_test_command_and_propagates_failure() {
    let script = std::fs::read_to_string(root().join(".ci/run")).expect(".ci/run");
    assert!(script.contains("set -euo pipefail"), "{script}");
    assert!(
        script.lines().any(|l| l.trim() == "exec make test"),
        "{script}"
    );
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    assert!(
        readme.contains("make test"),
        "README names the test command"
    );

    // A failing `make` (standing in for a failing test run) fails .ci/run with its code.
    let tmp = tempfile::tempdir().expect("tmp");
    let fake = tmp.path().join("make");
    std::fs::write(&fake, "#!/bin/sh\necho \"fake make $*\"\nexit 3\n").expect("write");
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .expect("chmod");
    let path = format!(
        "{}:{}",
        tmp.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg(root().join(".ci/run"))
        .env("PATH", path)
        .output()
        .expect("run .ci/run");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("fake make test"));
}

#[test]
fn make_test_bootstraps_builds_and_runs_every_test_without_swallowing_failures() {
    let out = Command::new("make")
        .args(["-n", "test"])
        .current_dir(root())
        .output()
        .expect("make -n");
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("scripts/bootstrap"), "{plan}");
    assert!(plan.contains("cargo test --workspace"), "{plan}");
    for line in plan.lines() {
        assert!(
            !line.contains("|| true") && !line.trim_start().starts_with('-'),
            "swallows failure: {line}"
        );
    }
}

#[test]
fn bootstrap_is_idempotent() {
    // The suite ran bootstrap already: a second run finds everything and installs nothing.
    let out = Command::new(root().join("scripts/bootstrap"))
        .env("BOO_BOOTSTRAP_SKIP_FETCH", "1")
        .output()
        .expect("bootstrap");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("installing"), "{text}");
    assert!(text.contains("nvim: NVIM v0.11"), "{text}");
    assert!(text.contains("opencode: 1.18.33"), "{text}");
}
