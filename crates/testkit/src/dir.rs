//! Temporary directories of tests: removed when the test passes, kept (and named on stderr)
//! when it fails, so a failure can be looked at and a passing suite leaves nothing behind.

use std::path::{Path, PathBuf};

/// A fresh directory under the temp dir; see the module docs for when it is removed.
#[derive(Debug)]
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    /// A new directory named `{prefix}XXXXXX`.
    pub fn new(prefix: &str) -> TestDir {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("create a temp dir");
        TestDir { path: dir.keep() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test failed: its files are kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
