//! A chat's transcript as buffer lines, updated incrementally. Each item knows how many of its
//! lines the buffer holds (`synced`) and from which line it changed since (`dirty_from`), so a
//! frame sends only the changed tail of an item — a streamed delta costs O(delta), never a
//! re-render of the whole answer.

use serde::Serialize;
use serde_json::Value as Json;

use super::markdown;
use crate::model::transcript::{Edit, Transcript};
use crate::model::ItemKind;

/// Replace buffer lines `[first, last)` with `lines` (0-based, end-exclusive; `last = -1`: to end).
///
/// With `keep = Some(col)`, line `first` keeps its first `col` bytes and `lines[0]` is only what
/// follows them: a streamed answer's growing line costs the new text, not the whole line, on
/// the wire and in Neovim.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinesOp {
    pub first: i64,
    pub last: i64,
    pub lines: Vec<String>,
    pub keep: Option<usize>,
}

/// Where an item is in the buffer, for highlights and folds (0-based, inclusive).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decor {
    /// The item's index: Lua replaces the decorations it drew for this item.
    pub seq: usize,
    pub first: usize,
    pub last: usize,
    pub kind: ItemKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The item belongs to an undone turn (`:Boo undo`): drawn dimmed and folded.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub undone: bool,
}

/// The render state of one transcript item; its content is in the `Transcript`.
#[derive(Clone, Debug)]
struct Item {
    kind: ItemKind,
    status: Option<String>,
    undone: bool,
    /// Rendered lines, ending with one blank separator line.
    lines: Vec<String>,
    /// How many of this item's lines the buffer holds.
    synced: usize,
    /// First line that differs from the buffer, if any.
    dirty_from: Option<usize>,
    /// Markdown of each line as the buffer holds it, and the scanner state before it (text only).
    md: Vec<(markdown::State, markdown::Line)>,
    /// The decoration last sent for this item.
    sent: Option<Decor>,
    /// `(line, col)`: the buffer's line `line` (the first dirty one) still holds this item's first
    /// `col` bytes of it; only appends happened to it since the last flush.
    keep: Option<(usize, usize)>,
    /// Its markdown is still to be sent (a whole render sends the last items' first).
    hl_pending: bool,
}

/// Lines whose markdown a whole render sends at once, from the end (what a window following
/// the transcript shows), and then with each later frame: a restored 50,000-line transcript
/// otherwise sent some 200,000 spans in its first batch, and Neovim took a second to read it.
const HL_LINES_FIRST: usize = 3_000;
const HL_LINES_PER_FRAME: usize = 2_000;

/// Markdown highlights of item `seq` from its row `from` on, in rows relative to the item's
/// first line (so they stay right when earlier items grow). Lua drops what it holds for the
/// item from `from` on, and the code blocks whose closing fence is there, then keeps `spans`
/// (`[row, col, end_col, group]`) and fenced `code` blocks (`[first, last, lang]`, inclusive body
/// rows) to draw them when they are on screen (a decoration provider).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HlOp {
    pub seq: usize,
    pub from: usize,
    pub spans: Vec<(usize, usize, usize, &'static str)>,
    pub code: Vec<(usize, usize, String)>,
}

/// What one flush sends for a chat, in the order Lua applies it.
#[derive(Debug, Default)]
pub struct Flush {
    pub lines: Vec<LinesOp>,
    pub hl: Vec<HlOp>,
    /// Items whose range or state changed (all of them after a fresh render).
    pub decor: Vec<Decor>,
}

/// One chat's buffer lines, rendered from its `Transcript`.
#[derive(Debug, Default)]
pub struct ChatLayout {
    items: Vec<Item>,
    /// The buffer content is unknown (first show in this process): replace it whole.
    fresh: bool,
    /// Item ranges or states changed: decorations must be re-sent.
    decor_dirty: bool,
    /// Lines of markdown a whole render sends at once (`HL_LINES_FIRST` unless set: tests).
    hl_first: Option<usize>,
}

fn status_of(kind: ItemKind, meta: &Json) -> Option<String> {
    match kind {
        ItemKind::Tool
        | ItemKind::Permission
        | ItemKind::Reasoning
        | ItemKind::User
        | ItemKind::Info => meta
            .get("status")
            .and_then(Json::as_str)
            .map(str::to_string),
        _ => None,
    }
}

/// Whether an item's meta marks it as part of an undone turn.
fn undone_of(meta: &Json) -> bool {
    meta.get("undone").and_then(Json::as_bool).unwrap_or(false)
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

fn str_field<'a>(meta: &'a Json, key: &str) -> &'a str {
    meta.get(key).and_then(Json::as_str).unwrap_or_default()
}

/// The header line of a folded block. The status is in parentheses: brackets would be read as
/// a markdown link and concealed.
fn header(kind: ItemKind, meta: &Json) -> Option<String> {
    let status = str_field(meta, "status");
    let badge = if status.is_empty() {
        String::new()
    } else {
        format!(" ({status})")
    };
    match kind {
        ItemKind::Reasoning => Some(format!("▸ Reasoning{badge}")),
        ItemKind::Tool => {
            let tool = str_field(meta, "tool");
            let summary = [str_field(meta, "title"), str_field(meta, "summary")]
                .into_iter()
                .find(|s| !s.is_empty())
                .map(|s| format!(": {}", one_line(s, 80)))
                .unwrap_or_default();
            Some(format!("⚙ {tool}{summary}{badge}{}", tool_result(meta)))
        }
        ItemKind::Permission => {
            let what = str_field(meta, "permission");
            let patterns = meta
                .get("patterns")
                .and_then(Json::as_array)
                .map(|p| {
                    p.iter()
                        .filter_map(Json::as_str)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            Some(format!(
                "⚠ Permission {what}: {}{badge}",
                one_line(&patterns, 80)
            ))
        }
        _ => None,
    }
}

/// A finished tool's result in a few words, so a folded block says how it went: the error,
/// the file written, or the exit status and first line of output.
fn tool_result(meta: &Json) -> String {
    let first = |key: &str| {
        meta.get(key)
            .and_then(Json::as_str)
            .and_then(|s| s.lines().map(str::trim).find(|l| !l.is_empty()))
            .map(|l| one_line(l, 60))
    };
    let status = str_field(meta, "status");
    if status == "error" {
        return first("error")
            .map(|e| format!(" → {e}"))
            .unwrap_or_default();
    }
    if status != "completed" {
        return String::new();
    }
    let tool = str_field(meta, "tool").to_ascii_lowercase();
    let path = meta.pointer("/input/filePath").and_then(Json::as_str);
    if let (true, Some(p)) = (matches!(tool.as_str(), "write" | "edit" | "patch"), path) {
        let name = p.rsplit('/').next().unwrap_or(p);
        return format!(" → wrote {name}");
    }
    let out = first("output");
    match (meta.get("exit").and_then(Json::as_i64), out) {
        (Some(code), Some(o)) => format!(" → exit {code}: {o}"),
        (Some(code), None) => format!(" → exit {code}"),
        (None, Some(o)) => format!(" → {o}"),
        (None, None) => String::new(),
    }
}

/// A tool's body: its input (command or path) and its output or error, from the meta.
fn tool_body(content: &str, meta: &Json) -> String {
    let mut out = Vec::new();
    if let Some(cmd) = meta.pointer("/input/command").and_then(Json::as_str) {
        out.push(format!("$ {cmd}"));
    } else if !content.is_empty() {
        out.push(content.to_string());
    }
    for key in ["output", "error"] {
        match meta.get(key) {
            Some(Json::String(s)) if !s.trim().is_empty() => out.push(s.trim_end().to_string()),
            _ => {}
        }
    }
    out.join("\n")
}

fn body_lines(kind: ItemKind, content: &str) -> impl Iterator<Item = String> + '_ {
    let prefix = match kind {
        ItemKind::User => "> ",
        _ => "",
    };
    let first_prefix = match kind {
        ItemKind::Error => "✗ ",
        _ => prefix,
    };
    content.split('\n').enumerate().map(move |(i, l)| {
        let p = if i == 0 { first_prefix } else { prefix };
        format!("{p}{l}")
    })
}

fn render(kind: ItemKind, content: &str, meta: &Json) -> Vec<String> {
    // A message opencode removed (reverted, compacted) keeps its place but shows nothing.
    if meta.get("removed") == Some(&Json::Bool(true)) {
        return Vec::new();
    }
    if kind == ItemKind::Info && str_field(meta, "type") == "todo" {
        return todo_lines(meta);
    }
    let header = header(kind, meta);
    let body = match kind {
        ItemKind::Tool => tool_body(content, meta),
        // The header says it all.
        ItemKind::Permission => String::new(),
        // A step's usage, as a footer under its answer.
        ItemKind::Info => match crate::model::usage::Usage::of_step(meta) {
            Some(u) => format!("  {}", super::usage::footer(&u)),
            None => content.to_string(),
        },
        _ => content.to_string(),
    };
    // An empty item (a text part announced before its first delta) takes no lines at all.
    if header.is_none() && body.is_empty() {
        return Vec::new();
    }
    let mut lines: Vec<String> = header.into_iter().collect();
    if !(body.is_empty() && lines.len() == 1) {
        lines.extend(body_lines(kind, &body));
    }
    lines.push(String::new());
    lines
}

/// The agent's todo list as a checklist: `[x]` done, `[~]` in progress, `[-]` cancelled.
fn todo_lines(meta: &Json) -> Vec<String> {
    let todos = meta.get("todos").and_then(Json::as_array);
    let todos = todos.map(Vec::as_slice).unwrap_or_default();
    if todos.is_empty() {
        return Vec::new();
    }
    let done = todos
        .iter()
        .filter(|t| str_field(t, "status") == "completed")
        .count();
    let mut lines = vec![format!("☑ Todo ({done}/{} done)", todos.len())];
    for t in todos {
        let mark = match str_field(t, "status") {
            "completed" => "x",
            "in_progress" => "~",
            "cancelled" => "-",
            _ => " ",
        };
        lines.push(format!(
            "- [{mark}] {}",
            one_line(str_field(t, "content"), 200)
        ));
    }
    lines.push(String::new());
    lines
}

/// Where item `seq` is (starting at buffer line `pos`) and what state it shows.
fn decor_of(it: &Item, seq: usize, pos: usize) -> Decor {
    let n = it.lines.len();
    // The block covers the item without its blank separator.
    let last = pos + n.saturating_sub(2);
    Decor {
        seq,
        first: pos,
        last: last.max(pos),
        kind: it.kind,
        status: it.status.clone(),
        undone: it.undone,
    }
}

/// Re-scans an item's markdown from line `from` on (answer text only; other kinds are plain).
fn highlight(it: &mut Item, seq: usize, from: usize) -> Option<HlOp> {
    if it.kind != ItemKind::Text {
        return None;
    }
    it.hl_pending = false;
    // Nothing scanned before `from` yet (its markdown was deferred): from the top.
    let from = from.min(it.md.len());
    it.md.truncate(from);
    let mut state = match it.md.last() {
        Some((before, line)) => {
            let mut st = before.clone();
            // Re-run the last kept line to get the state after it (one line's work).
            let text = &it.lines[from - 1];
            let again = markdown::line(&mut st, from - 1, text);
            debug_assert_eq!(&again, line);
            st
        }
        None => markdown::State::default(),
    };
    let mut op = HlOp {
        seq,
        from,
        ..Default::default()
    };
    for (row, text) in it.lines.iter().enumerate().skip(from) {
        let before = state.clone();
        let l = markdown::line(&mut state, row, text);
        for s in &l.spans {
            op.spans.push((row, s.col, s.end, s.hl));
        }
        if let Some(f) = &l.closes {
            if f.close > f.open + 1 && !f.lang.is_empty() {
                op.code.push((f.open + 1, f.close - 1, f.lang.clone()));
            }
        }
        it.md.push((before, l));
    }
    Some(op)
}

impl ChatLayout {
    pub fn new() -> Self {
        ChatLayout {
            fresh: true,
            ..Default::default()
        }
    }

    /// Renders a transcript as it is (e.g. loaded from the store).
    pub fn from_transcript(t: &Transcript) -> Self {
        let mut layout = ChatLayout::new();
        layout.catch_up(t);
        layout
    }

    /// Renders the items of `t` this layout has not seen yet.
    fn catch_up(&mut self, t: &Transcript) {
        for it in t.items().skip(self.items.len()) {
            self.items.push(Item {
                kind: it.kind,
                status: status_of(it.kind, &it.meta),
                undone: undone_of(&it.meta),
                lines: render(it.kind, &it.content, &it.meta),
                synced: 0,
                dirty_from: Some(0),
                md: Vec::new(),
                hl_pending: false,
                sent: None,
                keep: None,
            });
            self.decor_dirty = true;
        }
    }

    /// Brings the lines up to date with one edit of `t`.
    pub fn update(&mut self, t: &Transcript, edit: &Edit) {
        match edit {
            Edit::None => {}
            Edit::Pushed(_) => self.catch_up(t),
            Edit::Replaced(idx) => self.rerender(t, *idx),
            Edit::Appended(idx, delta) => self.append(t, *idx, delta),
        }
    }

    fn rerender(&mut self, t: &Transcript, idx: usize) {
        self.catch_up(t);
        let (Some(src), Some(it)) = (t.get(idx), self.items.get_mut(idx)) else {
            return;
        };
        let lines = render(src.kind, &src.content, &src.meta);
        let status = status_of(src.kind, &src.meta);
        let undone = undone_of(&src.meta);
        if status != it.status || undone != it.undone || lines.len() != it.lines.len() {
            self.decor_dirty = true;
        }
        it.status = status;
        it.undone = undone;
        let first_diff = it
            .lines
            .iter()
            .zip(&lines)
            .position(|(a, b)| a != b)
            .unwrap_or(it.lines.len().min(lines.len()));
        if first_diff == it.lines.len() && first_diff == lines.len() {
            // Same lines (a status shown only as decoration, say): nothing to redraw but that.
            return;
        }
        it.dirty_from = Some(it.dirty_from.map_or(first_diff, |d| d.min(first_diff)));
        it.keep = None;
        it.lines = lines;
    }

    /// Streamed text: only the item's last content line and what follows change.
    fn append(&mut self, t: &Transcript, idx: usize, delta: &str) {
        self.catch_up(t);
        let (Some(src), Some(it)) = (t.get(idx), self.items.get(idx)) else {
            return;
        };
        let was_empty = src.content.len() == delta.len();
        let has_header = header(src.kind, &src.meta).is_some();
        if src.kind == ItemKind::Tool || (has_header || it.lines.is_empty()) && was_empty {
            // No body line to extend yet (or a derived body): render once.
            self.rerender(t, idx);
            return;
        }
        let Some(it) = self.items.get_mut(idx) else {
            return;
        };
        // lines = [header?] body... separator; the last body line is at len - 2.
        let sep = it.lines.pop().unwrap_or_default();
        let last_body = it.lines.len().saturating_sub(1);
        let prefix = if it.kind == ItemKind::User { "> " } else { "" };
        let mut parts = delta.split('\n');
        let unsynced = last_body >= it.synced;
        if let (Some(first), Some(line)) = (parts.next(), it.lines.last_mut()) {
            // The buffer's copy of this line is still a prefix of it when the line was clean
            // (or kept) before: remember how much of it to keep.
            it.keep = match it.dirty_from {
                // Dirty from here or earlier (lines started since the last flush, say): what
                // was kept for that line still holds.
                Some(d) if d <= last_body => it.keep,
                // A line the buffer does not have yet has nothing to keep.
                _ if unsynced => None,
                // Clean up to here: the buffer holds the whole line.
                _ => Some((last_body, line.len())),
            };
            line.push_str(first);
        }
        let before = it.lines.len();
        for p in parts {
            it.lines.push(format!("{prefix}{p}"));
        }
        it.lines.push(sep);
        if it.lines.len() != before + 1 {
            self.decor_dirty = true;
        }
        it.dirty_from = Some(it.dirty_from.map_or(last_body, |d| d.min(last_body)));
    }

    /// Whether the buffer needs an update.
    pub fn is_dirty(&self) -> bool {
        self.fresh
            || self.decor_dirty
            || self
                .items
                .iter()
                .any(|i| i.dirty_from.is_some() || i.hl_pending)
    }

    /// Forgets what the buffer holds (e.g. the Lua buffer was recreated): next flush is whole.
    pub fn invalidate(&mut self) {
        self.fresh = true;
    }

    /// The ops that bring the buffer up to date, oldest item first: changed lines, their
    /// markdown, and the decorations of items whose range or state changed. Work is in
    /// proportion to what changed (plus one pass over the item list), never to the buffer.
    pub fn flush(&mut self) -> Flush {
        let mut out = Flush::default();
        let fresh = std::mem::take(&mut self.fresh);
        // A whole render: the markdown of items before `later` waits for later frames.
        let later = if fresh {
            let mut budget = self.hl_first.unwrap_or(HL_LINES_FIRST);
            let mut cut = self.items.len();
            while cut > 0 && budget > 0 {
                cut -= 1;
                budget = budget.saturating_sub(self.items[cut].lines.len());
            }
            cut
        } else {
            0
        };
        let mut all = Vec::new();
        let mut pos = 0usize;
        for (seq, it) in self.items.iter_mut().enumerate() {
            let from = if fresh {
                it.dirty_from = None;
                it.keep = None;
                all.extend(it.lines.iter().cloned());
                it.synced = it.lines.len();
                it.sent = None;
                Some(0)
            } else if let Some(from) = it.dirty_from.take() {
                let from = from.min(it.synced).min(it.lines.len());
                let keep = match it.keep.take() {
                    Some((line, col))
                        if line == from
                            && from < it.synced
                            && it.lines.get(from).is_some_and(|l| l.is_char_boundary(col)) =>
                    {
                        Some(col)
                    }
                    _ => None,
                };
                let mut lines = it.lines[from..].to_vec();
                if let (Some(col), Some(first)) = (keep, lines.first_mut()) {
                    first.drain(..col);
                }
                out.lines.push(LinesOp {
                    first: (pos + from) as i64,
                    last: (pos + it.synced) as i64,
                    lines,
                    keep,
                });
                it.synced = it.lines.len();
                Some(from)
            } else {
                None
            };
            if let Some(from) = from {
                if fresh && seq < later && it.kind == ItemKind::Text {
                    it.md.clear();
                    it.hl_pending = true;
                } else if let Some(hl) = highlight(it, seq, from) {
                    out.hl.push(hl);
                }
            }
            let d = decor_of(it, seq, pos);
            pos += it.synced;
            if it.sent.as_ref() != Some(&d) {
                it.sent = Some(d.clone());
                out.decor.push(d);
            }
        }
        // Markdown left from a whole render, newest first, a frame's worth at a time.
        let mut budget = if fresh { 0 } else { HL_LINES_PER_FRAME };
        for (seq, it) in self.items.iter_mut().enumerate().rev() {
            if budget == 0 {
                break;
            }
            if it.hl_pending {
                budget = budget.saturating_sub(it.lines.len());
                if let Some(hl) = highlight(it, seq, 0) {
                    out.hl.push(hl);
                }
            }
        }
        if fresh {
            out.lines.insert(
                0,
                LinesOp {
                    first: 0,
                    last: -1,
                    lines: all,
                    keep: None,
                },
            );
        }
        self.decor_dirty = false;
        out
    }

    /// Every item's decoration as the buffer should have it (tests).
    pub fn decorations(&self) -> Vec<Decor> {
        let mut pos = 0usize;
        self.items
            .iter()
            .enumerate()
            .map(|(seq, it)| {
                let d = decor_of(it, seq, pos);
                pos += it.lines.len();
                d
            })
            .collect()
    }

    /// All lines as the buffer should hold them (tests, full re-render).
    pub fn all_lines(&self) -> Vec<String> {
        self.items
            .iter()
            .flat_map(|i| i.lines.iter().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ItemChange;
    use serde_json::json;
    use std::collections::{BTreeMap, BTreeSet};

    /// A transcript and its layout, changed together the way the app does.
    struct Chat {
        t: Transcript,
        l: ChatLayout,
    }

    impl Chat {
        fn new() -> Self {
            Chat {
                t: Transcript::new(1),
                l: ChatLayout::new(),
            }
        }
        fn apply(&mut self, c: ItemChange) {
            let e = self.t.apply(c);
            self.l.update(&self.t, &e);
        }
        fn push(&mut self, kind: ItemKind, content: &str, meta: Json) {
            let idx = self.t.push(kind, None, content.into(), meta);
            self.l.update(&self.t, &Edit::Pushed(idx));
        }
        fn set(&mut self, idx: usize, content: &str, meta: Json) {
            let e = self.t.set(idx, content.into(), meta);
            self.l.update(&self.t, &e);
        }
        fn flush(&mut self) -> Flush {
            self.l.flush()
        }
        fn all_lines(&self) -> Vec<String> {
            self.l.all_lines()
        }
        fn is_dirty(&self) -> bool {
            self.l.is_dirty()
        }
    }

    /// Applies ops to a plain Vec<String> the way nvim_buf_set_lines does.
    fn apply(buf: &mut Vec<String>, ops: &[LinesOp]) {
        for op in ops {
            let last = if op.last < 0 {
                buf.len()
            } else {
                op.last as usize
            };
            let first = op.first as usize;
            let mut lines = op.lines.clone();
            if let (Some(col), Some(l)) = (op.keep, lines.first_mut()) {
                *l = format!("{}{l}", &buf[first][..col]);
            }
            buf.splice(first..last, lines);
        }
    }

    fn upsert(part: &str, kind: ItemKind, content: &str, meta: Json) -> ItemChange {
        ItemChange::Upsert {
            part_id: part.into(),
            kind,
            content: content.into(),
            meta,
        }
    }

    #[test]
    fn streamed_deltas_send_only_the_tail_and_match_a_full_render() {
        let mut l = Chat::new();
        let mut buf = vec![String::new()];
        l.push(ItemKind::User, "hello\nworld", json!({}));
        l.apply(upsert(
            "r",
            ItemKind::Reasoning,
            "",
            json!({"status": "running"}),
        ));
        l.apply(upsert("t", ItemKind::Text, "", json!({})));
        let ops = l.flush().lines;
        apply(&mut buf, &ops);
        for d in ["Hel", "lo the", "re\nsecond", " line\n\nfourth"] {
            l.apply(ItemChange::Append {
                part_id: "t".into(),
                delta: d.into(),
            });
            let ops = l.flush().lines;
            // Never more than the lines the delta touched (plus the separator).
            assert!(ops.iter().all(|o| o.lines.len() <= 4), "{ops:?}");
            apply(&mut buf, &ops);
        }
        l.apply(ItemChange::Append {
            part_id: "r".into(),
            delta: "think\nmore".into(),
        });
        let ops = l.flush().lines;
        apply(&mut buf, &ops);
        assert_eq!(buf, l.all_lines());
        assert!(buf.contains(&"Hello there".to_string()), "{buf:?}");
        assert!(buf.contains(&"second line".to_string()));
        assert!(buf.contains(&"> world".to_string()));
        assert_eq!(buf.iter().filter(|s| s.contains("Hello there")).count(), 1);
    }

    #[test]
    fn a_growing_line_is_sent_as_its_new_text_only() {
        let mut l = Chat::new();
        let mut buf = vec![String::new()];
        l.apply(upsert("t", ItemKind::Text, "start", json!({})));
        apply(&mut buf, &l.flush().lines);
        let mut sent = 0;
        for i in 0..200 {
            // Deltas between flushes: the kept part is what the buffer had before them all,
            // also when they start lines (two in one flush every third time).
            let deltas = match i % 3 {
                0 => vec![
                    format!(" chunk-{i}\n"),
                    format!("a-{i}\n"),
                    format!("b-{i}"),
                ],
                _ => vec![format!(" chunk-{i}"), format!(" more-{i}")],
            };
            for d in deltas {
                l.apply(ItemChange::Append {
                    part_id: "t".into(),
                    delta: d,
                });
            }
            let ops = l.flush().lines;
            assert!(ops.iter().all(|o| o.keep.is_some()), "{ops:?}");
            sent += ops
                .iter()
                .flat_map(|o| &o.lines)
                .map(|x| x.len())
                .sum::<usize>();
            apply(&mut buf, &ops);
        }
        assert_eq!(buf, l.all_lines());
        let line = buf.iter().map(|x| x.len()).max().unwrap_or(0);
        // O(new text), not O(line) per flush: 200 flushes of some 20 bytes each.
        assert!(
            sent < 200 * 40,
            "sent {sent} bytes, the longest line {line} bytes"
        );
        // A rewrite of the line (the final text differs) falls back to the whole line.
        l.apply(upsert("t", ItemKind::Text, "replaced", json!({})));
        let ops = l.flush().lines;
        assert!(ops.iter().all(|o| o.keep.is_none()), "{ops:?}");
        apply(&mut buf, &ops);
        assert_eq!(buf, l.all_lines());
    }

    #[test]
    fn upsert_replaces_in_place_and_keeps_later_items_right() {
        let mut l = Chat::new();
        let mut buf = Vec::new();
        l.apply(upsert(
            "tool",
            ItemKind::Tool,
            "",
            json!({"tool": "bash", "status": "running", "summary": "echo hi"}),
        ));
        l.apply(upsert("t", ItemKind::Text, "after", json!({})));
        apply(&mut buf, &l.flush().lines);
        l.apply(upsert(
            "tool",
            ItemKind::Tool,
            "$ echo hi\nhi",
            json!({"tool": "bash", "status": "completed", "summary": "echo hi"}),
        ));
        let f = l.flush();
        let (decor, ops) = (f.decor, f.lines);
        apply(&mut buf, &ops);
        assert_eq!(buf, l.all_lines());
        assert_eq!(buf[0], "⚙ bash: echo hi (completed)");
        assert_eq!(buf[2], "hi");
        assert_eq!(decor.len(), 2, "both items moved or changed");
        assert_eq!(decor[0].status.as_deref(), Some("completed"));
        assert_eq!((decor[0].first, decor[0].last), (0, 2));
        assert_eq!(decor[1].first, 4);
        // The same state again is no change at all.
        l.apply(upsert(
            "tool",
            ItemKind::Tool,
            "$ echo hi\nhi",
            json!({"tool": "bash", "status": "completed", "summary": "echo hi"}),
        ));
        assert!(!l.is_dirty());
    }

    #[test]
    fn a_todo_list_is_a_checklist_and_a_removed_item_draws_nothing() {
        let mut l = Chat::new();
        l.push(ItemKind::Text, "before", json!({}));
        let todos = |second: &str| {
            json!({"type": "todo", "todos": [
                {"content": "write the test", "status": "completed", "priority": "high"},
                {"content": "make it pass", "status": second, "priority": "low"}]})
        };
        l.apply(upsert("todo:m", ItemKind::Info, "", todos("in_progress")));
        l.push(ItemKind::Text, "after", json!({}));
        l.flush();
        assert_eq!(
            l.all_lines(),
            vec![
                "before",
                "",
                "☑ Todo (1/2 done)",
                "- [x] write the test",
                "- [~] make it pass",
                "",
                "after",
                ""
            ]
        );
        l.apply(upsert("todo:m", ItemKind::Info, "", todos("completed")));
        l.flush();
        assert_eq!(
            l.all_lines()[2..5],
            [
                "☑ Todo (2/2 done)",
                "- [x] write the test",
                "- [x] make it pass"
            ]
        );
        l.apply(upsert(
            "todo:m",
            ItemKind::Info,
            "",
            json!({"removed": true}),
        ));
        l.flush();
        assert_eq!(l.all_lines(), vec!["before", "", "after", ""]);
    }

    #[test]
    fn a_finished_tool_header_says_how_it_went() {
        let h = |meta: Json| header(ItemKind::Tool, &meta).unwrap_or_default();
        assert_eq!(
            h(
                json!({"tool": "bash", "status": "completed", "title": "echo hi", "output": "\nhi\nthere", "exit": 0})
            ),
            "⚙ bash: echo hi (completed) → exit 0: hi"
        );
        assert_eq!(
            h(
                json!({"tool": "write", "status": "completed", "title": "src/a.py", "input": {"filePath": "/w/src/a.py"}, "output": "ok"})
            ),
            "⚙ write: src/a.py (completed) → wrote a.py"
        );
        assert_eq!(
            h(
                json!({"tool": "read", "status": "error", "title": "x", "error": "File not found: x\nmore"})
            ),
            "⚙ read: x (error) → File not found: x"
        );
        assert_eq!(
            h(
                json!({"tool": "bash", "status": "running", "title": "sleep 1", "output": "partial"})
            ),
            "⚙ bash: sleep 1 (running)"
        );
    }

    #[test]
    fn empty_text_parts_take_no_lines_until_their_first_delta() {
        let mut l = Chat::new();
        let mut buf = Vec::new();
        l.apply(upsert("a", ItemKind::Text, "", json!({})));
        l.apply(upsert("b", ItemKind::Text, "", json!({})));
        apply(&mut buf, &l.flush().lines);
        assert!(buf.is_empty(), "{buf:?}");
        l.apply(ItemChange::Append {
            part_id: "b".into(),
            delta: "x\ny".into(),
        });
        apply(&mut buf, &l.flush().lines);
        assert_eq!(buf, vec!["x", "y", ""]);
        assert_eq!(buf, l.all_lines());
    }

    #[test]
    fn a_status_change_alone_resends_decorations_and_is_saved() {
        let mut l = Chat::new();
        l.push(ItemKind::User, "q", json!({"status": "queued"}));
        l.flush();
        l.t.take_unsaved();
        l.set(0, "q", json!({}));
        let f = l.flush();
        let (decor, ops) = (f.decor, f.lines);
        assert!(ops.is_empty());
        assert_eq!(decor.len(), 1, "only the changed item");
        assert_eq!(decor[0].status, None);
        assert_eq!(l.t.take_unsaved().len(), 1);
    }

    #[test]
    fn unknown_part_delta_is_kept_as_text() {
        let mut l = Chat::new();
        l.apply(ItemChange::Append {
            part_id: "x".into(),
            delta: "orphan".into(),
        });
        assert_eq!(l.all_lines(), vec!["orphan".to_string(), String::new()]);
    }

    #[test]
    fn a_layout_of_a_loaded_transcript_matches_one_built_live() {
        let mut live = Chat::new();
        live.push(ItemKind::User, "q", json!({}));
        live.apply(upsert("t", ItemKind::Text, "", json!({})));
        live.apply(ItemChange::Append {
            part_id: "t".into(),
            delta: "a\nb".into(),
        });
        let rows = live.t.take_unsaved();
        let loaded = ChatLayout::from_transcript(&Transcript::from_items(1, rows));
        assert_eq!(loaded.all_lines(), live.all_lines());
        assert_eq!(loaded.decorations(), live.l.decorations());
    }

    /// Markdown of one item as Lua keeps it: spans per item row, code blocks by first body row.
    type ItemMd = (
        BTreeMap<usize, Vec<(usize, usize, &'static str)>>,
        BTreeMap<usize, (usize, String)>,
    );

    /// What Lua holds after applying flushes: lines, markdown per item, decorations.
    #[derive(Default, Debug, PartialEq)]
    struct Screen {
        lines: Vec<String>,
        md: BTreeMap<usize, ItemMd>,
        decor: BTreeMap<usize, (usize, usize, Option<String>)>,
    }

    /// What the decoration provider draws: marks per buffer row and code blocks (absolute).
    #[derive(Debug, PartialEq)]
    struct Drawn {
        lines: Vec<String>,
        marks: Vec<Vec<(usize, usize, &'static str)>>,
        code: BTreeSet<(usize, usize, String)>,
        decor: BTreeMap<usize, (usize, usize, Option<String>)>,
    }

    impl Screen {
        fn apply(&mut self, f: Flush) {
            for op in &f.lines {
                let last = if op.last < 0 {
                    self.lines.len()
                } else {
                    op.last as usize
                };
                let first = op.first as usize;
                let mut lines = op.lines.clone();
                if let (Some(col), Some(l)) = (op.keep, lines.first_mut()) {
                    *l = format!("{}{l}", &self.lines[first][..col]);
                }
                self.lines.splice(first..last, lines);
            }
            // As chat.lua's `hl`: rows from `from` on are replaced, and the blocks closed there.
            for h in f.hl {
                let (rows, code) = self.md.entry(h.seq).or_default();
                rows.retain(|r, _| *r < h.from);
                code.retain(|_, (last, _)| *last + 1 < h.from);
                for (row, col, end, hl) in h.spans {
                    rows.entry(row).or_default().push((col, end, hl));
                }
                for (first, last, lang) in h.code {
                    code.insert(first, (last, lang));
                }
            }
            for d in f.decor {
                self.decor.insert(d.seq, (d.first, d.last, d.status));
            }
        }

        fn drawn(&self) -> Drawn {
            let mut marks = vec![Vec::new(); self.lines.len()];
            let mut code = BTreeSet::new();
            for (seq, (rows, blocks)) in &self.md {
                let base = self.decor.get(seq).map_or(0, |d| d.0);
                for (r, m) in rows {
                    marks[base + r].extend(m.iter().cloned());
                }
                for (first, (last, lang)) in blocks {
                    code.insert((base + first, base + last, lang.clone()));
                }
            }
            Drawn {
                lines: self.lines.clone(),
                marks,
                code,
                decor: self.decor.clone(),
            }
        }
    }

    #[test]
    fn a_long_transcript_sends_its_tails_markdown_first_and_the_rest_over_later_frames() {
        let answer: String = (0..1000)
            .map(|l| match l % 50 {
                0 => "## heading\n".to_string(),
                7 => "```lua\nlocal x = 1\n```\n".to_string(),
                _ => format!("- item {l} with `code` and **bold**\n"),
            })
            .collect();
        let mut t = Transcript::new(1);
        for i in 0..12 {
            t.apply(upsert(&format!("p{i}"), ItemKind::Text, &answer, json!({})));
        }
        let mut whole = ChatLayout::from_transcript(&t);
        let mut first = Screen::default();
        let f = whole.flush();
        let sent: usize = f.hl.iter().map(|h| h.spans.len()).sum();
        first.apply(f);
        let lines = first.lines.len();
        assert!(lines > 12_000, "{lines}");
        // The tail's markdown came at once: enough for any window on the end.
        let drawn = first.drawn();
        let tail = &drawn.marks[lines - HL_LINES_FIRST / 2..];
        assert!(tail.iter().filter(|m| !m.is_empty()).count() > HL_LINES_FIRST / 4);
        assert!(
            drawn.marks[..100].iter().all(Vec::is_empty),
            "the top waits"
        );
        assert!(whole.is_dirty(), "more markdown to send");
        // Later frames send the rest, each a bounded share, until it matches a full render.
        let mut frames = 0;
        while whole.is_dirty() {
            let f = whole.flush();
            assert!(f.lines.is_empty(), "no lines resent");
            // Items of about 1,000 lines: two fill a frame's share, a third starts past it.
            assert!(!f.hl.is_empty() && f.hl.len() <= 3, "{} items", f.hl.len());
            first.apply(f);
            frames += 1;
            assert!(frames < 100);
        }
        assert!(sent < 10 * HL_LINES_FIRST, "first batch spans: {sent}");
        let mut expect = Screen::default();
        let mut at_once = ChatLayout::from_transcript(&t);
        at_once.hl_first = Some(usize::MAX);
        expect.apply(at_once.flush());
        assert!(!at_once.is_dirty());
        assert_eq!(first.drawn(), expect.drawn());
    }

    #[test]
    fn an_item_changed_while_its_markdown_waits_is_scanned_whole() {
        let long: String = (0..4000).map(|l| format!("**b{l}**\n")).collect();
        let mut t = Transcript::new(1);
        t.apply(upsert("a", ItemKind::Text, &long, json!({})));
        t.apply(upsert("b", ItemKind::Text, &long, json!({})));
        let mut l = ChatLayout::from_transcript(&t);
        let mut screen = Screen::default();
        screen.apply(l.flush());
        assert!(!screen.md.contains_key(&0), "the first item waits");
        let e = t.apply(ItemChange::Append {
            part_id: "a".into(),
            delta: "tail *x*".into(),
        });
        l.update(&t, &e);
        while l.is_dirty() {
            screen.apply(l.flush());
        }
        let mut expect = Screen::default();
        let mut at_once = ChatLayout::from_transcript(&t);
        at_once.hl_first = Some(usize::MAX);
        expect.apply(at_once.flush());
        assert_eq!(screen.drawn(), expect.drawn());
    }

    /// Splits `s` into pieces of the given sizes (cycled), on char boundaries.
    fn deltas(s: &str, sizes: &[usize]) -> Vec<String> {
        let chars: Vec<char> = s.chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        let mut k = 0;
        while i < chars.len() {
            let n = sizes[k % sizes.len()].max(1);
            out.push(chars[i..(i + n).min(chars.len())].iter().collect());
            i += n;
            k += 1;
        }
        out
    }

    #[test]
    fn streamed_highlights_and_folds_equal_rendering_the_final_text_at_once() {
        let answer = "# Plan\n\nSome *emphasis* and **strong** and `code`.\n\n- one `a`\n- two **b**\n  1. nested\n\n```lua\nlocal x = 1 -- `not a span`\n```\n\n~~~\nplain ~~~ block\n~~~\n\n```rust\nfn main() {}\n```\ntail *x*";
        for sizes in [&[1usize][..], &[2, 5, 3], &[7], &[13, 1, 4], &[1000]] {
            let mut live = Chat::new();
            let mut screen = Screen::default();
            live.push(ItemKind::User, "q", json!({}));
            live.apply(upsert(
                "r",
                ItemKind::Reasoning,
                "",
                json!({"status": "running"}),
            ));
            live.apply(upsert("t", ItemKind::Text, "", json!({})));
            screen.apply(live.flush());
            for (k, d) in deltas("think\nhard\nlonger", sizes).into_iter().enumerate() {
                live.apply(ItemChange::Append {
                    part_id: "r".into(),
                    delta: d,
                });
                if k % 2 == 0 {
                    screen.apply(live.flush());
                }
            }
            live.apply(upsert(
                "r",
                ItemKind::Reasoning,
                "think\nhard\nlonger",
                json!({"status": "completed"}),
            ));
            for (k, d) in deltas(answer, sizes).into_iter().enumerate() {
                live.apply(ItemChange::Append {
                    part_id: "t".into(),
                    delta: d,
                });
                if k % 3 != 1 {
                    screen.apply(live.flush());
                }
            }
            live.apply(upsert(
                "tool",
                ItemKind::Tool,
                "$ ls\na\nb",
                json!({"tool": "bash", "status": "completed"}),
            ));
            screen.apply(live.flush());

            let mut at_once = Chat::new();
            at_once.push(ItemKind::User, "q", json!({}));
            at_once.apply(upsert(
                "r",
                ItemKind::Reasoning,
                "think\nhard\nlonger",
                json!({"status": "completed"}),
            ));
            at_once.apply(upsert("t", ItemKind::Text, answer, json!({})));
            at_once.apply(upsert(
                "tool",
                ItemKind::Tool,
                "$ ls\na\nb",
                json!({"tool": "bash", "status": "completed"}),
            ));
            let mut want = Screen::default();
            want.apply(at_once.flush());
            assert_eq!(screen.drawn(), want.drawn(), "deltas of sizes {sizes:?}");
        }
        // The final render is what it should be, not just equal: the lua block and a list.
        let mut l = Chat::new();
        l.apply(upsert("t", ItemKind::Text, answer, json!({})));
        let mut s = Screen::default();
        s.apply(l.flush());
        let s = s.drawn();
        let lua = s
            .lines
            .iter()
            .position(|x| x.starts_with("local x"))
            .expect("lua line");
        assert!(
            s.code.contains(&(lua, lua, "lua".to_string())),
            "{:?}",
            s.code
        );
        assert!(
            s.marks[lua].is_empty(),
            "code inside a fence is left to its parser"
        );
        let one = s.lines.iter().position(|x| x == "- one `a`").expect("list");
        assert!(s.marks[one].contains(&(0, 1, "BooMdList")));
        assert!(s.marks[one].contains(&(6, 9, "BooMdCodeSpan")));
        assert!(s.marks[0].contains(&(0, 6, "BooMdHeading")));
    }

    #[test]
    fn a_streamed_delta_rescans_only_the_lines_it_changed() {
        let mut l = Chat::new();
        l.apply(upsert("t", ItemKind::Text, "", json!({})));
        l.flush();
        let long: String = (0..500).map(|i| format!("line {i}\n")).collect();
        l.apply(ItemChange::Append {
            part_id: "t".into(),
            delta: long,
        });
        l.flush();
        l.apply(ItemChange::Append {
            part_id: "t".into(),
            delta: "more *x*".into(),
        });
        let f = l.flush();
        assert_eq!(f.hl.len(), 1);
        assert!(f.hl[0].from >= 499, "{:?}", f.hl[0].from);
        assert!(f.hl[0].spans.len() <= 2, "{:?}", f.hl[0].spans);
        assert!(f.decor.len() <= 1);
    }
}
