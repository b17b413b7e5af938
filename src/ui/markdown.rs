//! Markdown highlighting of transcript lines, one line at a time: each line's spans depend only
//! on its text and on whether it starts inside a fenced block, so a streamed delta re-highlights
//! only the lines it changed (never the whole answer, never the buffer). Fenced blocks are
//! reported once they close, for Lua to highlight with the language's own parser on the block's
//! text. A small line scanner rather than a CommonMark parser: a full parser needs the whole
//! document per change, which is the cost this replaces.

use serde::Serialize;

/// A highlight on one line: byte columns `[col, end)` in group `hl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Span {
    pub col: usize,
    pub end: usize,
    pub hl: &'static str,
}

/// A fenced block, lines relative to the item (0-based, inclusive of the fences).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    pub open: usize,
    pub close: usize,
    pub lang: String,
}

/// The scanner's state at the start of a line: the open fence, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// (fence char, its length, the line it opened on, the language).
    fence: Option<(u8, usize, usize, String)>,
}

/// One line's result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Line {
    pub spans: Vec<Span>,
    /// The fenced block this line closes.
    pub closes: Option<Fence>,
}

fn fence_marker(text: &str) -> Option<(u8, usize, &str)> {
    let t = text.trim_start_matches(' ');
    if text.len() - t.len() > 3 {
        return None;
    }
    let c = *t.as_bytes().first()?;
    if c != b'`' && c != b'~' {
        return None;
    }
    let n = t.bytes().take_while(|b| *b == c).count();
    (n >= 3).then(|| (c, n, t[n..].trim()))
}

/// Highlights line `row` (item-relative) given the state before it; updates the state.
pub fn line(state: &mut State, row: usize, text: &str) -> Line {
    let whole = |hl| Span {
        col: 0,
        end: text.len(),
        hl,
    };
    if let Some((c, n, open, lang)) = state.fence.clone() {
        if let Some((c2, n2, rest)) = fence_marker(text) {
            if c2 == c && n2 >= n && rest.is_empty() {
                state.fence = None;
                return Line {
                    spans: vec![whole("BooMdFence")],
                    closes: Some(Fence {
                        open,
                        close: row,
                        lang,
                    }),
                };
            }
        }
        return Line {
            spans: if lang.is_empty() {
                vec![whole("BooMdCode")]
            } else {
                Vec::new()
            },
            closes: None,
        };
    }
    if let Some((c, n, info)) = fence_marker(text) {
        if !(c == b'`' && info.contains('`')) {
            let lang = info
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            state.fence = Some((c, n, row, lang));
            return Line {
                spans: vec![whole("BooMdFence")],
                closes: None,
            };
        }
    }
    let mut spans = Vec::new();
    let t = text.trim_start();
    let indent = text.len() - t.len();
    let hashes = t.bytes().take_while(|b| *b == b'#').count();
    if (1..=6).contains(&hashes) && (t.len() == hashes || t.as_bytes()[hashes] == b' ') {
        spans.push(whole("BooMdHeading"));
        return Line {
            spans,
            closes: None,
        };
    }
    let mut body = indent;
    if t.starts_with("- ") || t.starts_with("* ") || t.starts_with("+ ") {
        spans.push(Span {
            col: indent,
            end: indent + 1,
            hl: "BooMdList",
        });
        body = indent + 2;
    } else {
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && matches!(&t[digits..].get(..2), Some(". ") | Some(") ")) {
            spans.push(Span {
                col: indent,
                end: indent + digits + 1,
                hl: "BooMdList",
            });
            body = indent + digits + 2;
        }
    }
    if t.starts_with("> ") || t == ">" {
        spans.push(whole("BooMdQuote"));
    }
    inline(text, body, &mut spans);
    Line {
        spans,
        closes: None,
    }
}

/// Code spans, then `**strong**` and `*em*`/`_em_` outside them.
fn inline(text: &str, from: usize, spans: &mut Vec<Span>) {
    let b = text.as_bytes();
    let mut i = from;
    let mut plain_from = from;
    while i < b.len() {
        if b[i] == b'`' {
            let n = b[i..].iter().take_while(|c| **c == b'`').count();
            let tick = &text[i..i + n];
            if let Some(off) = text[i + n..].find(tick) {
                emphasis(text, plain_from, i, spans);
                let end = i + n + off + n;
                spans.push(Span {
                    col: i,
                    end,
                    hl: "BooMdCodeSpan",
                });
                i = end;
                plain_from = end;
                continue;
            }
            i += n;
            continue;
        }
        i += 1;
    }
    emphasis(text, plain_from, b.len(), spans);
}

fn emphasis(text: &str, from: usize, to: usize, spans: &mut Vec<Span>) {
    let seg = &text[from..to];
    for (mark, hl) in [("**", "BooMdStrong"), ("__", "BooMdStrong")] {
        let mut at = 0;
        while let Some(s) = seg[at..].find(mark) {
            let s = at + s;
            let Some(e) = seg[s + 2..].find(mark) else {
                break;
            };
            let e = s + 2 + e + 2;
            if e - s > 4 {
                spans.push(Span {
                    col: from + s,
                    end: from + e,
                    hl,
                });
            }
            at = e;
        }
    }
    // Single `*x*`: a star not part of `**`, followed by a non-space.
    let sb = seg.as_bytes();
    let mut i = 0;
    while i < sb.len() {
        let single = |j: usize| {
            sb[j] == b'*'
                && (j == 0 || sb[j - 1] != b'*')
                && sb.get(j + 1).is_none_or(|c| *c != b'*')
        };
        if single(i) && sb.get(i + 1).is_some_and(|c| *c != b' ') {
            if let Some(e) = (i + 2..sb.len()).find(|j| single(*j) && sb[j - 1] != b' ') {
                spans.push(Span {
                    col: from + i,
                    end: from + e + 1,
                    hl: "BooMdEmphasis",
                });
                i = e + 1;
                continue;
            }
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hl(lines: &[&str]) -> Vec<Line> {
        let mut st = State::default();
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| line(&mut st, i, l))
            .collect()
    }

    #[test]
    fn headings_lists_code_spans_and_emphasis() {
        let r = hl(&["## Title", "- item `x` and **b** *e*", "1. one"]);
        assert_eq!(r[0].spans[0].hl, "BooMdHeading");
        let groups: Vec<_> = r[1].spans.iter().map(|s| (s.hl, s.col, s.end)).collect();
        assert!(groups.contains(&("BooMdList", 0, 1)), "{groups:?}");
        assert!(groups.contains(&("BooMdCodeSpan", 7, 10)), "{groups:?}");
        assert!(groups.contains(&("BooMdStrong", 15, 20)), "{groups:?}");
        assert!(groups.contains(&("BooMdEmphasis", 21, 24)), "{groups:?}");
        assert_eq!(
            r[2].spans[0],
            Span {
                col: 0,
                end: 2,
                hl: "BooMdList"
            }
        );
    }

    #[test]
    fn a_fence_is_reported_when_it_closes_and_hides_markdown_inside() {
        let r = hl(&["```lua", "# not a heading", "```", "after"]);
        assert!(
            r[1].spans.is_empty(),
            "language blocks are left to its parser"
        );
        assert_eq!(
            r[2].closes,
            Some(Fence {
                open: 0,
                close: 2,
                lang: "lua".into()
            })
        );
        assert!(r[3].spans.is_empty());
    }
}
