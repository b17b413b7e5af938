//! The client side of ACP's file methods and the permission options.
//!
//! Reads serve the editor's buffer text when the file is open there (unsaved edits included,
//! through [`Buffers`]), else the file. Writes go into the session's worktree only, through
//! `worktree::check_inside` (no `..`, no `.git`, no write beyond or through a symlink), so they
//! land in the pending diff like every other agent edit.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::agent::PermissionReply;

/// Where the editor's unsaved text comes from (the app asks Neovim without blocking it).
#[async_trait]
pub trait Buffers: Send + Sync {
    /// The text of the buffer showing `path`, if one is loaded.
    async fn text(&self, path: &Path) -> Option<String>;
}

/// `path` (absolute, or relative to the worktree) checked to lie inside `worktree`; returns the
/// full path.
pub fn inside(worktree: &Path, path: &str) -> Result<PathBuf, String> {
    let p = Path::new(path);
    let rel = if p.is_absolute() {
        let canon = worktree
            .canonicalize()
            .unwrap_or_else(|_| worktree.to_path_buf());
        p.strip_prefix(worktree)
            .or_else(|_| p.strip_prefix(&canon))
            .map_err(|_| format!("{path} is outside the session's worktree"))?
            .to_path_buf()
    } else {
        p.to_path_buf()
    };
    let rel = rel.to_string_lossy().to_string();
    if rel.is_empty() {
        return Ok(worktree.to_path_buf());
    }
    crate::worktree::check_inside(worktree, &rel).map_err(|e| e.to_string())
}

/// `fs/read_text_file`: `{path, line?, limit?}` -> `{content}`.
pub async fn read(
    worktree: &Path,
    p: &Value,
    buffers: Option<&dyn Buffers>,
) -> Result<Value, String> {
    let path = p.get("path").and_then(Value::as_str).unwrap_or("");
    let full = inside(worktree, path)?;
    let mut text = match buffers {
        Some(b) => b.text(&full).await,
        None => None,
    };
    if text.is_none() {
        if tokio::fs::symlink_metadata(&full)
            .await
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            // A link may point anywhere; its target is not the agent's to read.
            return Err(format!("{path} is a symbolic link"));
        }
        let bytes = tokio::fs::read(&full)
            .await
            .map_err(|e| format!("cannot read {path}: {e}"))?;
        text = Some(String::from_utf8_lossy(&bytes).into_owned());
    }
    let text = text.unwrap_or_default();
    let line = p
        .get("line")
        .and_then(Value::as_u64)
        .map(|l| l.max(1) as usize);
    let limit = p.get("limit").and_then(Value::as_u64).map(|l| l as usize);
    let content = if line.is_some() || limit.is_some() {
        let skip = line.unwrap_or(1) - 1;
        let lines = text.split_inclusive('\n').skip(skip);
        match limit {
            Some(n) => lines.take(n).collect(),
            None => lines.collect(),
        }
    } else {
        text
    };
    Ok(json!({ "content": content }))
}

/// `fs/write_text_file`: `{path, content}`, into the worktree only.
pub async fn write(worktree: &Path, p: &Value) -> Result<Value, String> {
    let path = p.get("path").and_then(Value::as_str).unwrap_or("");
    let content = p
        .get("content")
        .and_then(Value::as_str)
        .ok_or("fs/write_text_file without content")?;
    let full = inside(worktree, path)?;
    if tokio::fs::symlink_metadata(&full)
        .await
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        return Err(format!("{path} is a symbolic link: not written through"));
    }
    if let Some(parent) = full.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| format!("cannot create the folder of {path}: {e}"))?;
    }
    tokio::fs::write(&full, content)
        .await
        .map_err(|e| format!("cannot write {path}: {e}"))?;
    tracing::info!(target: "acp", path = %full.display(), bytes = content.len(), "agent wrote a file");
    Ok(Value::Null)
}

/// The agent's option for our reply (`allow_once`, `allow_always`, `reject_once`,
/// `reject_always`), the nearest when the exact kind is not offered.
pub fn pick_option(options: &Value, reply: PermissionReply) -> Option<String> {
    let wanted: &[&str] = match reply {
        PermissionReply::Once => &["allow_once", "allow_always"],
        PermissionReply::Always => &["allow_always", "allow_once"],
        PermissionReply::Reject => &["reject_once", "reject_always"],
    };
    let opts = options.as_array()?;
    wanted.iter().find_map(|k| {
        opts.iter()
            .find(|o| o.get("kind").and_then(Value::as_str) == Some(k))
            .and_then(|o| o.get("optionId").and_then(Value::as_str))
            .map(str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_map_onto_our_replies() {
        let o = json!([{"optionId":"a","kind":"allow_once"},{"optionId":"r","kind":"reject_once"}]);
        assert_eq!(pick_option(&o, PermissionReply::Once).as_deref(), Some("a"));
        assert_eq!(
            pick_option(&o, PermissionReply::Always).as_deref(),
            Some("a")
        );
        assert_eq!(
            pick_option(&o, PermissionReply::Reject).as_deref(),
            Some("r")
        );
    }

    #[tokio::test]
    async fn writes_stay_in_the_worktree_and_reads_take_lines() {
        let tmp = tempfile::tempdir().expect("tmp");
        let wt = tmp.path().join("wt");
        std::fs::create_dir_all(&wt).expect("mkdir");
        let f = wt.join("a/b.txt");
        write(&wt, &json!({"path": f.to_str(), "content": "1\n2\n3\n"}))
            .await
            .expect("writes");
        let r = read(
            &wt,
            &json!({"path": f.to_str(), "line": 2, "limit": 1}),
            None,
        )
        .await
        .expect("reads");
        assert_eq!(r["content"], "2\n");
        let out = tmp.path().join("outside.txt");
        let e = write(&wt, &json!({"path": out.to_str(), "content": "x"}))
            .await
            .expect_err("refused");
        assert!(e.contains("outside"), "{e}");
        assert!(!out.exists());
        std::os::unix::fs::symlink(tmp.path(), wt.join("link")).expect("symlink");
        let e = write(
            &wt,
            &json!({"path": wt.join("link/x.txt").to_str(), "content": "x"}),
        )
        .await
        .expect_err("refused");
        assert!(e.contains("symbolic link"), "{e}");
        assert!(!tmp.path().join("x.txt").exists());
        let e = write(
            &wt,
            &json!({"path": wt.join("../wt2/x").to_str(), "content": "x"}),
        )
        .await
        .expect_err("refused");
        assert!(!e.is_empty());
    }
}
