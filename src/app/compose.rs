//! Composing a prompt: `@path[:a-b]` file mentions and the `#diff`/`#gitdiff` context are
//! resolved here, off the loop (disk and git); the editor's own context (`#buffer`...) comes
//! from Lua with the text. A bad mention is one line for the user and the prompt is not sent.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::App;
use crate::agent::Attachment;
use crate::model::{ChatId, ItemKind};
use crate::rpc::SendArgs;

/// Text files above this are cut (and the user told so).
const MAX_TEXT: usize = 256 * 1024;
/// Images above this are refused.
const MAX_IMAGE: u64 = 8 * 1024 * 1024;
/// Lines of an attachment shown (folded) in the transcript.
const PREVIEW_LINES: usize = 200;
/// `#diff` / `#gitdiff` are cut here.
const MAX_DIFF: usize = 256 * 1024;
/// Files offered to `@` completion.
pub const MAX_FILES: usize = 50_000;

#[derive(Clone, Debug, PartialEq)]
pub enum Mention {
    File {
        rel: String,
        lines: Option<(usize, usize)>,
    },
    /// `#diff`: the session's pending changes.
    Diff,
    /// `#gitdiff`: the user's uncommitted changes.
    GitDiff,
}

/// What a prompt carries besides its text, and how the transcript shows it.
#[derive(Debug, Default)]
pub struct Composed {
    pub attachments: Vec<Attachment>,
    /// (label, folded preview) per attachment.
    pub shown: Vec<(String, String)>,
    /// Lines for the user (a file cut at the limit).
    pub notes: Vec<String>,
}

/// The mentions the backend resolves, in order. `@` and `#` count at the start of a word only
/// (`a@b.c` is no mention); trailing punctuation is not part of a path.
pub fn parse(text: &str) -> Vec<Mention> {
    let mut out = Vec::new();
    for word in text.split_whitespace() {
        let word = word.trim_end_matches([',', ';', '!', '?', ')', '.', '"', '\'']);
        if let Some(rest) = word.strip_prefix('@') {
            if rest.is_empty() {
                continue;
            }
            let (rel, lines) = split_range(rest);
            out.push(Mention::File {
                rel: rel.to_string(),
                lines,
            });
        } else if word == "#diff" {
            out.push(Mention::Diff);
        } else if word == "#gitdiff" {
            out.push(Mention::GitDiff);
        }
    }
    out
}

/// `path:10-20` -> (path, (10, 20)); `path:7` -> (path, (7, 7)).
fn split_range(s: &str) -> (&str, Option<(usize, usize)>) {
    let Some((path, range)) = s.rsplit_once(':') else {
        return (s, None);
    };
    let (a, b) = range.split_once('-').unwrap_or((range, range));
    match (a.parse::<usize>(), b.parse::<usize>()) {
        (Ok(a), Ok(b)) if !path.is_empty() => (path, Some((a, b))),
        _ => (s, None),
    }
}

fn image_mime(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => return None,
    })
}

fn label(rel: &str, lines: Option<(usize, usize)>) -> String {
    match lines {
        Some((a, b)) => format!("@{rel}:{a}-{b}"),
        None => format!("@{rel}"),
    }
}

fn preview(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().take(PREVIEW_LINES + 1).collect();
    if lines.len() > PREVIEW_LINES {
        lines.truncate(PREVIEW_LINES);
        lines.push("…");
    }
    lines.join("\n")
}

/// Resolves one file mention in the worktree `dir` (canonical). Blocking.
fn file(
    dir: &Path,
    rel: &str,
    lines: Option<(usize, usize)>,
    out: &mut Composed,
) -> Result<(), String> {
    let at = label(rel, lines);
    let joined = dir.join(rel);
    let path = joined
        .canonicalize()
        .map_err(|_| format!("{at}: no such file in the session's worktree"))?;
    if !path.starts_with(dir) {
        return Err(format!("{at}: outside the session's worktree"));
    }
    let meta = std::fs::metadata(&path).map_err(|e| format!("{at}: {e}"))?;
    if meta.is_dir() {
        return Err(format!("{at}: is a directory; mention the files in it"));
    }
    if let Some(mime) = image_mime(&path) {
        if meta.len() > MAX_IMAGE {
            return Err(format!("{at}: image over {} MB", MAX_IMAGE >> 20));
        }
        out.shown
            .push((at, format!("image, {} KB", meta.len().div_ceil(1024))));
        out.attachments.push(Attachment::File {
            path,
            rel: rel.to_string(),
            mime: mime.to_string(),
            lines: None,
        });
        return Ok(());
    }
    let bytes = std::fs::read(&path).map_err(|e| format!("{at}: {e}"))?;
    if bytes[..bytes.len().min(8192)].contains(&0) {
        return Err(format!(
            "{at}: binary file (only text and png/jpg/gif/webp images can be attached)"
        ));
    }
    let text = String::from_utf8_lossy(&bytes);
    if let Some((a, b)) = lines {
        let count = text.lines().count();
        if a == 0 || b < a || a > count {
            return Err(format!("{at}: no such lines (the file has {count})"));
        }
        let cut: Vec<&str> = text.lines().skip(a - 1).take(b + 1 - a).collect();
        out.shown.push((at, preview(&cut.join("\n"))));
        out.attachments.push(Attachment::File {
            path,
            rel: rel.to_string(),
            mime: "text/plain".into(),
            lines: Some((a, b.min(count))),
        });
        return Ok(());
    }
    if bytes.len() > MAX_TEXT {
        // Cut at a line end below the limit; sent as text so the cut is ours, not the agent's.
        let head = &text[..text.floor_char_boundary(MAX_TEXT)];
        let head = head.rfind('\n').map_or(head, |i| &head[..=i]);
        let kept = head.lines().count();
        out.notes.push(format!(
            "boo: {at} is {} KB; only its first {kept} lines are attached",
            bytes.len() / 1024
        ));
        out.shown.push((format!("{at} (cut)"), preview(head)));
        out.attachments.push(Attachment::Text {
            label: format!("{rel} (first {kept} lines of a larger file)"),
            text: head.to_string(),
        });
        return Ok(());
    }
    out.shown.push((at, preview(&text)));
    out.attachments.push(Attachment::File {
        path,
        rel: rel.to_string(),
        mime: "text/plain".into(),
        lines: None,
    });
    Ok(())
}

/// A pasted image (`@paste:{name}`): a plain file name in the pastes folder.
fn pasted(pastes: Option<&Path>, name: &str, out: &mut Composed) -> Result<(), String> {
    let at = format!("@paste:{name}");
    let dir = pastes.ok_or_else(|| format!("{at}: no store folder for pasted images"))?;
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(format!("{at}: not a pasted image name"));
    }
    let path = dir.join(name);
    let mime = image_mime(&path).ok_or_else(|| format!("{at}: not an image"))?;
    let meta = std::fs::metadata(&path).map_err(|_| format!("{at}: no such pasted image"))?;
    out.shown
        .push((at, format!("image, {} KB", meta.len().div_ceil(1024))));
    out.attachments.push(Attachment::File {
        path,
        rel: name.to_string(),
        mime: mime.to_string(),
        lines: None,
    });
    Ok(())
}

/// What `resolve` needs of the session.
pub struct Where {
    pub dir: PathBuf,
    /// Where pasted images are saved (`@paste:{name}`), beside the store.
    pub pastes: Option<PathBuf>,
    pub repo_root: PathBuf,
    pub target: Option<super::review::Target>,
}

/// Resolves the mentions (blocking: disk and git). The first bad one is the error.
pub fn resolve(w: &Where, mentions: &[Mention]) -> Result<Composed, String> {
    let dir = w
        .dir
        .canonicalize()
        .map_err(|e| format!("the session's worktree is missing: {e}"))?;
    let mut out = Composed::default();
    for m in mentions {
        match m {
            Mention::File { rel, lines } => match rel.strip_prefix("paste:") {
                Some(name) => pasted(w.pastes.as_deref(), name, &mut out)?,
                None => file(&dir, rel, *lines, &mut out)?,
            },
            Mention::GitDiff => {
                let patch = crate::worktree::uncommitted_patch(&w.repo_root, MAX_DIFF)
                    .map_err(|e| format!("#gitdiff: {e}"))?;
                push_text(
                    &mut out,
                    "#gitdiff",
                    "uncommitted changes of your checkout",
                    patch,
                );
            }
            Mention::Diff => {
                let t = w
                    .target
                    .as_ref()
                    .ok_or("#diff: the session has no worktree yet")?;
                let wt = t.open().map_err(|e| format!("#diff: {e}"))?;
                let changes = crate::worktree::pending(&wt).map_err(|e| format!("#diff: {e}"))?;
                let mut patch = String::new();
                for c in &changes {
                    if patch.len() + c.patch.len() > MAX_DIFF {
                        patch.push_str("… (cut)\n");
                        break;
                    }
                    patch.push_str(&c.patch);
                }
                push_text(&mut out, "#diff", "the session's pending changes", patch);
            }
        }
    }
    Ok(out)
}

fn push_text(out: &mut Composed, label: &str, what: &str, text: String) {
    let text = if text.trim().is_empty() {
        "(no changes)".to_string()
    } else {
        text
    };
    out.shown.push((label.to_string(), preview(&text)));
    out.attachments.push(Attachment::Text {
        label: format!("{label}: {what}"),
        text,
    });
}

impl App {
    /// A prompt sent from the input joins its history; the draft is gone.
    async fn remember_prompt(&mut self, chat: ChatId, text: String) {
        let p = self.prompts.entry(chat).or_default();
        let p = std::sync::Arc::make_mut(p);
        if p.history.last() != Some(&text) {
            p.history.push(text.clone());
        }
        let cap = crate::store::HISTORY_CAP as usize;
        if p.history.len() > cap {
            p.history.drain(..p.history.len() - cap);
        }
        p.draft.clear();
        self.write_later("input history not saved", move |s| async move {
            s.add_prompt(chat, text).await
        })
        .await;
    }

    pub(super) async fn save_draft(&mut self, chat: ChatId, text: String) {
        if !self.ws.chats.contains_key(&chat) {
            return;
        }
        let p = self.prompts.entry(chat).or_default();
        if p.draft == text {
            return;
        }
        std::sync::Arc::make_mut(p).draft = text.clone();
        self.write_later("draft not saved", move |s| async move {
            s.set_draft(chat, text).await
        })
        .await;
    }

    /// Lists the files of the chat's worktree again, off the loop.
    pub(super) fn refresh_files(
        &mut self,
        chat: Option<ChatId>,
        pane: Option<crate::model::PaneId>,
    ) {
        let session = self
            .ws
            .target_chat(chat, pane)
            .and_then(|c| self.ws.chats.get(&c))
            .map(|c| c.session);
        let Some(s) = session.and_then(|s| self.ws.sessions.get(&s)) else {
            return;
        };
        let (Some(dir), session) = (s.dir.clone(), s.id) else {
            return;
        };
        let agent = chat
            .or_else(|| self.ws.target_chat(None, pane))
            .and_then(|c| self.ws.chats.get(&c))
            .map(|c| c.agent.clone());
        if let Some(agent) = agent {
            let events = self.events.clone();
            self.agents.commands(&agent, dir.clone(), move |commands| {
                let _ = events.send(super::Event::Commands { session, commands });
            });
        }
        let events = self.events.clone();
        tokio::task::spawn_blocking(move || match crate::worktree::list_files(&dir, MAX_FILES) {
            Ok(files) => {
                let files = std::sync::Arc::new(files);
                let _ = events.send(super::Event::Files { session, files });
            }
            Err(e) => tracing::warn!(session, "files not listed: {e}"),
        });
    }

    /// Resolves a prompt's attachments and sends it; mentions the backend must read are
    /// resolved off the loop and come back as `Event::Composed`.
    pub(super) async fn compose(&mut self, chat: ChatId, a: SendArgs, text: String) {
        let mentions = parse(&text);
        let mut lua = Composed::default();
        for c in &a.context {
            lua.shown.push((c.label.clone(), preview(&c.text)));
            lua.attachments.push(Attachment::Text {
                label: c.label.clone(),
                text: c.text.clone(),
            });
        }
        if mentions.is_empty() {
            return self.composed(chat, a, text, Ok(lua)).await;
        }
        let session = self.ws.chats.get(&chat).map(|c| c.session);
        let s = session.and_then(|s| self.ws.sessions.get(&s));
        let Some((dir, repo_root)) = s.and_then(|s| Some((s.dir.clone()?, s.repo_root.clone())))
        else {
            let msg = "boo: prompt not sent, it stays in the input: the session's worktree is still being made; send it again in a moment";
            return self.ui.notify(msg, 3);
        };
        let target = session.and_then(|s| self.target_of(s));
        let pastes = self
            .config
            .store_path
            .as_ref()
            .and_then(|p| p.parent())
            .map(|p| p.join("pastes"));
        let events = self.events.clone();
        tokio::task::spawn_blocking(move || {
            let w = Where {
                dir,
                pastes,
                repo_root,
                target,
            };
            let result = resolve(&w, &mentions).map(|mut c| {
                c.attachments.extend(lua.attachments);
                c.shown.extend(lua.shown);
                c.notes.extend(lua.notes);
                c
            });
            let _ = events.send(super::Event::Composed {
                chat,
                args: Box::new(a),
                text,
                result,
            });
        });
    }

    /// Shows the prompt and its attachments (each a folded block under it) and starts the turn;
    /// on a bad mention only says so (the prompt stays in the input).
    pub(super) async fn composed(
        &mut self,
        chat: ChatId,
        a: SendArgs,
        text: String,
        result: Result<Composed, String>,
    ) {
        let c = match result {
            Ok(c) => c,
            Err(e) => {
                let keep = if a.from_input {
                    ", it stays in the input"
                } else {
                    ""
                };
                return self
                    .ui
                    .notify(format!("boo: prompt not sent{keep}: {e}"), 4);
            }
        };
        let busy = self.ws.chats.get(&chat).is_some_and(|c| c.busy());
        let meta = if busy {
            json!({"status": "queued"})
        } else {
            json!({})
        };
        let Some(seq) = self.tx_push(chat, ItemKind::User, None, text.clone(), meta) else {
            return;
        };
        for (label, body) in &c.shown {
            let meta =
                json!({"tool": label, "status": "attached", "output": body, "attachment": true});
            self.tx_push(chat, ItemKind::Tool, None, String::new(), meta);
        }
        for n in &c.notes {
            self.ui.notify(n.clone(), 3);
        }
        if a.from_input {
            self.ui.input_clear(chat);
            self.remember_prompt(chat, text.clone()).await;
        }
        if let Some(line) = self.over_budget(chat) {
            self.tx_set(chat, seq, text, json!({"status": "not sent"}));
            let shown = line.trim_start_matches("boo: ").to_string();
            self.tx_push(chat, ItemKind::Error, None, shown, serde_json::Value::Null);
            return self.ui.notify(line, 3);
        }
        let creator = a.creator.unwrap_or_else(|| "user".into());
        // A command's text after its `/name` is its arguments.
        let text = match &a.command {
            Some(name) => text
                .strip_prefix(&format!("/{name}"))
                .unwrap_or(&text)
                .trim()
                .to_string(),
            None => text,
        };
        let extras = crate::agent::Extras {
            attachments: c.attachments,
            command: a.command.clone(),
            ..Default::default()
        };
        self.start_turn(chat, text, creator, Some(seq), extras)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mentions_ranges_and_ignores_mail_addresses() {
        let m = parse("see @src/app.py:10-20, @README.md and a@b.c #diff #buffer @x:3");
        assert_eq!(
            m,
            vec![
                Mention::File {
                    rel: "src/app.py".into(),
                    lines: Some((10, 20))
                },
                Mention::File {
                    rel: "README.md".into(),
                    lines: None
                },
                Mention::Diff,
                Mention::File {
                    rel: "x".into(),
                    lines: Some((3, 3))
                },
            ]
        );
    }

    #[test]
    fn a_huge_file_is_cut_at_a_line_end_and_the_user_told_so() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let line = "x".repeat(99) + "\n";
        std::fs::write(root.join("big.txt"), line.repeat(MAX_TEXT / 100 + 500)).unwrap();
        let mut out = Composed::default();
        file(&root, "big.txt", None, &mut out).unwrap();
        let [Attachment::Text { label, text }] = out.attachments.as_slice() else {
            panic!("not one text attachment: {:?}", out.attachments);
        };
        assert!(
            text.len() <= MAX_TEXT && text.ends_with('\n'),
            "{}",
            text.len()
        );
        let kept = text.lines().count();
        assert_eq!(kept, MAX_TEXT / 100);
        assert!(label.contains(&format!("first {kept} lines")), "{label}");
        assert_eq!(out.notes.len(), 1);
        assert!(out.notes[0].contains("only its first"), "{:?}", out.notes);
        assert_eq!(out.shown[0].0, "@big.txt (cut)");
    }
}
