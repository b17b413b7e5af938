//! A prompt's parts for `prompt_async`: the text, then one part per attachment. A file is a
//! `file` part opencode reads itself (a `file://` URL; a line range as `?start=&end=` and as
//! the part's text source); editor context is a delimited text part.

use serde_json::{json, Value};

use crate::agent::Attachment;

pub fn prompt_parts(text: &str, attachments: &[Attachment]) -> Vec<Value> {
    let mut parts = vec![json!({"type": "text", "text": text})];
    for a in attachments {
        parts.push(match a {
            Attachment::File {
                path,
                rel,
                mime,
                lines,
            } => {
                let mut url = format!("file://{}", encode_path(&path.to_string_lossy()));
                let mut part = json!({"type": "file", "mime": mime, "filename": rel});
                if let Some((a, b)) = lines {
                    url.push_str(&format!("?start={a}&end={b}"));
                    let value = format!("@{rel}:{a}-{b}");
                    part["source"] = json!({
                        "type": "file",
                        "path": rel,
                        "text": {"value": value, "start": 0, "end": value.len()},
                    });
                }
                part["url"] = json!(url);
                part
            }
            Attachment::Text { .. } => json!({"type": "text", "text": a.as_text()}),
        });
    }
    parts
}

/// Percent-encodes what a URL path cannot hold as is.
fn encode_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn a_file_with_a_range_becomes_a_file_part_with_a_text_source() {
        let parts = prompt_parts(
            "look",
            &[Attachment::File {
                path: PathBuf::from("/w/src/my app.py"),
                rel: "src/my app.py".into(),
                mime: "text/plain".into(),
                lines: Some((2, 3)),
            }],
        );
        assert_eq!(parts[0], json!({"type": "text", "text": "look"}));
        assert_eq!(parts[1]["url"], "file:///w/src/my%20app.py?start=2&end=3");
        assert_eq!(parts[1]["source"]["text"]["value"], "@src/my app.py:2-3");
    }
}
