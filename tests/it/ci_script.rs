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
    assert!(plan.contains("scripts/test"), "{plan}");
    assert!(
        plan.contains("stylua.cjs --check"),
        "the checks run first: {plan}"
    );
    let script = std::fs::read_to_string(root().join("scripts/test")).expect("scripts/test");
    assert!(script.contains("cargo test \"$@\""), "{script}");
    assert!(script.contains("run unit --workspace --lib"), "{script}");
    assert!(script.contains("--test it"), "{script}");
    assert!(script.contains("exit \"$rc\""), "{script}");
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

#[test]
fn the_lua_checks_fail_on_a_misformatted_file_and_an_accidental_global() {
    let tmp = tempfile::tempdir().expect("tmp");
    let bad = tmp.path().join("bad.lua");
    std::fs::write(&bad, "local  x =   {1,2}\nreturn x\n").expect("write");
    let fmt = |f: &Path| {
        Command::new("node")
            .arg(root().join("scripts/stylua.cjs"))
            .arg("--check")
            .arg(f)
            .output()
            .expect("node scripts/stylua.cjs")
    };
    let out = fmt(&bad);
    assert!(
        !out.status.success(),
        "a mis-formatted file passes the check"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not formatted"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let good = tmp.path().join("good.lua");
    std::fs::write(&good, "local x = { 1, 2 }\nreturn x\n").expect("write");
    assert!(
        fmt(&good).status.success(),
        "a formatted file fails the check"
    );

    let global = tmp.path().join("global.lua");
    std::fs::write(
        &global,
        "local M = {}\nfunction M.f() count = 1 end\nreturn M\n",
    )
    .expect("write");
    let out = Command::new(boo_testkit::tools::nvim())
        .args(["--headless", "--clean", "-u", "NONE", "-l"])
        .arg(root().join("scripts/lua_lint.lua"))
        .arg(&global)
        .output()
        .expect("nvim -l lua_lint");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sets the global 'count'"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_config_help_is_generated_from_the_schema_and_a_changed_default_fails_the_check() {
    let check = |dir: &Path| {
        Command::new(boo_testkit::tools::nvim())
            .args(["--headless", "--clean", "-u", "NONE", "-l"])
            .arg(root().join("scripts/config_doc.lua"))
            .arg("--check")
            .current_dir(dir)
            .output()
            .expect("nvim -l config_doc")
    };
    let out = check(root());
    assert!(
        out.status.success(),
        "doc/boo.txt is not what `make docs` makes: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A copy with one default changed and the help left as it was.
    let tmp = tempfile::tempdir().expect("tmp");
    for d in ["lua/boo/ui", "doc"] {
        std::fs::create_dir_all(tmp.path().join(d)).expect("mkdir");
    }
    std::fs::copy(root().join("doc/boo.txt"), tmp.path().join("doc/boo.txt")).expect("copy");
    let cfg = std::fs::read_to_string(root().join("lua/boo/config.lua")).expect("config.lua");
    let changed = cfg.replacen("default = 180", "default = 240", 1);
    assert_ne!(cfg, changed, "the watchdog default is in the schema");
    std::fs::write(tmp.path().join("lua/boo/config.lua"), changed).expect("write");
    for f in ["lua/boo/util.lua"] {
        if root().join(f).exists() {
            std::fs::copy(root().join(f), tmp.path().join(f)).expect("copy");
        }
    }
    let out = check(tmp.path());
    assert!(!out.status.success(), "a changed default passes the check");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("make docs"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
