//! Content conversion between the repository and a working directory, as git does it: the
//! `filter=<driver>` attribute's `clean`/`smudge` commands, then end-of-line conversion from
//! the `text`/`eol` attributes and `core.autocrlf`/`core.eol`.
//!
//! The pending diff compares the review base (repository form) with the worktree's files
//! *cleaned*, so a CRLF checkout shows only the lines the agent changed; what accept or reject
//! writes to a working directory is *smudged* back (CRLF again). libgit2 only converts on
//! checkout and when hashing, not for the buffers the review engine diffs, hence this module.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use git2::{AttrCheckFlags, AttrValue, Repository};

use super::paths::Content;
use super::{Result, WorktreeError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Text {
    /// `-text`, `binary`, or nothing asks for conversion.
    No,
    /// `text` (or an `eol` attribute): always converted.
    Yes,
    /// `text=auto` or `core.autocrlf`: converted when the content does not look binary.
    Auto,
}

/// The conversions of one path.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Plan {
    text: Text,
    /// Working-directory line ends are CRLF.
    crlf: bool,
    /// The filter driver's `clean` and `smudge` commands, and whether a failure is an error.
    clean: Option<String>,
    smudge: Option<String>,
    required: bool,
}

/// Conversion rules of one repository (its configuration read once).
pub(crate) struct Filters {
    /// `core.autocrlf`: `Some(true)` for true, `Some(false)` for input.
    autocrlf: Option<bool>,
    eol_crlf: bool,
    /// Where filter commands run (git runs them at the top of the working tree).
    workdir: Option<PathBuf>,
    config: Option<git2::Config>,
}

impl Filters {
    pub(crate) fn new(repo: &Repository) -> Filters {
        let config = repo.config().and_then(|mut c| c.snapshot()).ok();
        let get = |k: &str| config.as_ref().and_then(|c| c.get_string(k).ok());
        let autocrlf = match get("core.autocrlf").as_deref().map(str::to_ascii_lowercase) {
            Some(v) if v == "input" => Some(false),
            Some(v) if matches!(v.as_str(), "true" | "yes" | "on" | "1") => Some(true),
            _ => None,
        };
        Filters {
            autocrlf,
            eol_crlf: get("core.eol").as_deref() == Some("crlf"),
            workdir: repo.workdir().map(Path::to_path_buf),
            config,
        }
    }

    fn plan(&self, repo: &Repository, path: &str) -> Plan {
        let attr = |name: &str| {
            repo.get_attr(Path::new(path), name, AttrCheckFlags::FILE_THEN_INDEX)
                .ok()
                .flatten()
                .map(|v| match AttrValue::from_string(Some(v)) {
                    AttrValue::True => "\u{1}set".to_string(),
                    AttrValue::False => "\u{1}unset".to_string(),
                    AttrValue::String(s) => s.to_string(),
                    AttrValue::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                    AttrValue::Unspecified => String::new(),
                })
        };
        let eol = attr("eol");
        let text = match attr("text").as_deref() {
            Some("\u{1}unset") => Text::No,
            Some("\u{1}set") => Text::Yes,
            Some("auto") => Text::Auto,
            _ if matches!(eol.as_deref(), Some("crlf" | "lf")) => Text::Yes,
            _ if self.autocrlf.is_some() => Text::Auto,
            _ => Text::No,
        };
        let crlf = match eol.as_deref() {
            Some("crlf") => true,
            Some("lf") => false,
            _ => match self.autocrlf {
                Some(true) => true,
                Some(false) => false,
                None => self.eol_crlf,
            },
        };
        let driver = attr("filter").filter(|d| !d.starts_with('\u{1}') && !d.is_empty());
        let cfg = |k: &str| {
            let d = driver.as_deref()?;
            self.config
                .as_ref()?
                .get_string(&format!("filter.{d}.{k}"))
                .ok()
        };
        Plan {
            text,
            crlf,
            clean: cfg("clean"),
            smudge: cfg("smudge"),
            required: driver.is_some()
                && self.config.as_ref().is_some_and(|c| {
                    c.get_bool(&format!(
                        "filter.{}.required",
                        driver.as_deref().unwrap_or("")
                    ))
                    .unwrap_or(false)
                }),
        }
    }

    /// Working-directory content to repository form. `base` (the repository's current
    /// version, if any) decides `auto` like git's index check: content the repository already
    /// holds with CRs is left alone.
    pub(crate) fn clean(
        &self,
        repo: &Repository,
        path: &str,
        c: Content,
        base: Option<&[u8]>,
    ) -> Result<Content> {
        if c.is_link() {
            return Ok(c);
        }
        let plan = self.plan(repo, path);
        let mut bytes = match &plan.clean {
            Some(cmd) => self.run(cmd, path, c.bytes, plan.required)?,
            None => c.bytes,
        };
        let auto_skip = plan.text == Text::Auto
            && (looks_binary(&bytes) || base.is_some_and(|b| b.contains(&b'\r')));
        if plan.text != Text::No && !auto_skip && bytes.contains(&b'\r') {
            bytes = crlf_to_lf(&bytes);
        }
        Ok(Content {
            bytes,
            mode: c.mode,
        })
    }

    /// Repository content to working-directory form.
    pub(crate) fn smudge(&self, repo: &Repository, path: &str, c: Content) -> Result<Content> {
        if c.is_link() {
            return Ok(c);
        }
        let plan = self.plan(repo, path);
        let mut bytes = c.bytes;
        let auto_skip = plan.text == Text::Auto && (looks_binary(&bytes) || bytes.contains(&b'\r'));
        if plan.text != Text::No && plan.crlf && !auto_skip {
            bytes = lf_to_crlf(&bytes);
        }
        if let Some(cmd) = &plan.smudge {
            bytes = self.run(cmd, path, bytes, plan.required)?;
        }
        Ok(Content {
            bytes,
            mode: c.mode,
        })
    }

    /// Runs a filter command as git does (`sh -c`, `%f` the quoted path, at the top of the
    /// working tree). A failing optional filter passes the content through unchanged.
    fn run(&self, cmd: &str, path: &str, input: Vec<u8>, required: bool) -> Result<Vec<u8>> {
        let quoted = format!("'{}'", path.replace('\'', "'\\''"));
        let cmd = cmd.replace("%f", &quoted);
        let fail = |why: String| WorktreeError::Git(format!("filter for {path}: {why}"));
        let mut child = Command::new("sh");
        child
            .arg("-c")
            .arg(&cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(d) = &self.workdir {
            child.current_dir(d);
        }
        let result = child
            .spawn()
            .map_err(|e| fail(e.to_string()))
            .and_then(|mut ch| {
                // Written from a thread: a filter that answers before reading all would deadlock.
                let mut stdin = ch.stdin.take();
                let data = input.clone();
                let writer = std::thread::spawn(move || {
                    if let Some(s) = stdin.as_mut() {
                        let _ = s.write_all(&data);
                    }
                });
                let out = ch.wait_with_output().map_err(|e| fail(e.to_string()));
                let _ = writer.join();
                let out = out?;
                if out.status.success() {
                    Ok(out.stdout)
                } else {
                    Err(fail(
                        String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    ))
                }
            });
        match result {
            Ok(b) => Ok(b),
            Err(e) if required => Err(e),
            Err(e) => {
                tracing::warn!("{e}; content used unfiltered");
                Ok(input)
            }
        }
    }
}

fn looks_binary(b: &[u8]) -> bool {
    b.iter().take(8000).any(|c| *c == 0)
}

fn crlf_to_lf(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    for (i, &c) in b.iter().enumerate() {
        if c == b'\r' && b.get(i + 1) == Some(&b'\n') {
            continue;
        }
        out.push(c);
    }
    out
}

fn lf_to_crlf(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() + b.len() / 16);
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' && (i == 0 || b[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_end_conversions_leave_lone_crs_and_existing_crlfs() {
        assert_eq!(crlf_to_lf(b"a\r\nb\rc\r\n\r"), b"a\nb\rc\n\r");
        assert_eq!(lf_to_crlf(b"\na\r\nb\n"), b"\r\na\r\nb\r\n");
    }
}
