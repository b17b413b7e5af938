//! Server-sent events framing: bytes in (split anywhere), `data` payloads out.
//!
//! opencode sends only `data: <json>` lines separated by blank lines, but the parser follows the
//! SSE rules that matter for robustness: `\n`, `\r\n` and `\r` line ends, multi-line `data`
//! joined with `\n`, comment lines (`:`) and other fields ignored, UTF-8 split across chunks.

/// Incremental SSE parser. Feed chunks with [`push`](SseParser::push); complete events'
/// `data` strings are appended to the output vector.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the current, incomplete line.
    line: Vec<u8>,
    /// `data` lines of the current event.
    data: String,
    has_data: bool,
    /// The previous chunk ended with `\r` (a following `\n` belongs to it).
    pending_cr: bool,
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Forgets any partial line or event (after a reconnect).
    pub fn reset(&mut self) {
        *self = SseParser::default();
    }

    /// Parses `chunk`, appending the data of every event it completes to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<String>) {
        let mut rest = chunk;
        if self.pending_cr {
            self.pending_cr = false;
            if rest.first() == Some(&b'\n') {
                rest = &rest[1..];
            }
        }
        while let Some(i) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (head, tail) = rest.split_at(i);
            if self.line.is_empty() {
                self.line_done(head, out);
            } else {
                self.line.extend_from_slice(head);
                let line = std::mem::take(&mut self.line);
                self.line_done(&line, out);
            }
            if tail[0] == b'\r' {
                if tail.len() == 1 {
                    self.pending_cr = true;
                    rest = &[];
                    break;
                }
                rest = if tail[1] == b'\n' {
                    &tail[2..]
                } else {
                    &tail[1..]
                };
            } else {
                rest = &tail[1..];
            }
        }
        self.line.extend_from_slice(rest);
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<String>) {
        if line.is_empty() {
            if self.has_data {
                out.push(std::mem::take(&mut self.data));
                self.has_data = false;
            }
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(p) => {
                let v = &line[p + 1..];
                (&line[..p], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &[][..]),
        };
        if field == b"data" {
            if self.has_data {
                self.data.push('\n');
            }
            self.data.push_str(&String::from_utf8_lossy(value));
            self.has_data = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<String> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.push(c, &mut out);
        }
        out
    }

    const STREAM: &str = "data: {\"type\":\"server.connected\"}\n\n: comment\ndata: {\"a\":\"é€\"}\n\nevent: x\nid: 3\ndata: line1\ndata: line2\n\n";

    #[test]
    fn whole_stream() {
        assert_eq!(
            parse_all(&[STREAM.as_bytes()]),
            vec![
                "{\"type\":\"server.connected\"}".to_string(),
                "{\"a\":\"é€\"}".to_string(),
                "line1\nline2".to_string()
            ]
        );
    }

    #[test]
    fn split_at_every_position_and_bytewise() {
        let whole = parse_all(&[STREAM.as_bytes()]);
        let b = STREAM.as_bytes();
        for i in 0..=b.len() {
            assert_eq!(parse_all(&[&b[..i], &b[i..]]), whole, "split at {i}");
        }
        let bytes: Vec<&[u8]> = b.chunks(1).collect();
        assert_eq!(parse_all(&bytes), whole);
    }

    #[test]
    fn crlf_and_cr_line_ends_split_anywhere() {
        let s = "data: a\r\n\r\ndata: b\r\rdata: c\n\n";
        let b = s.as_bytes();
        let want = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        for i in 0..=b.len() {
            for j in i..=b.len() {
                assert_eq!(parse_all(&[&b[..i], &b[i..j], &b[j..]]), want, "{i} {j}");
            }
        }
    }

    #[test]
    fn incomplete_event_waits_and_reset_drops_it() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.push(b"data: {\"x\":1}\n", &mut out);
        assert!(out.is_empty());
        p.reset();
        p.push(b"\ndata: y\n\n", &mut out);
        assert_eq!(out, vec!["y".to_string()]);
    }
}

#[cfg(test)]
mod random_tests {
    use super::*;
    use crate::agent::fuzz::{for_seeds, Rng};

    const STREAM: &[u8] = include_bytes!("../../../tests/data/opencode_long_stream.sse");

    fn parse_in_chunks(bytes: &[u8], rng: &mut Rng) -> Vec<String> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = 1 + rng.below(rest.len().min(300));
            p.push(&rest[..n], &mut out);
            rest = &rest[n..];
        }
        out
    }

    #[test]
    fn random_chunking_gives_the_same_events() {
        let mut whole = Vec::new();
        SseParser::new().push(STREAM, &mut whole);
        assert!(whole.len() > 4000, "{}", whole.len());
        for_seeds(30, |rng| assert_eq!(parse_in_chunks(STREAM, rng), whole));
    }

    #[test]
    fn garbage_truncated_and_corrupted_streams_do_not_panic() {
        for_seeds(100, |rng| {
            let mut bytes = STREAM[..rng.below(STREAM.len())].to_vec();
            for _ in 0..rng.below(50) {
                let i = rng.below(bytes.len().max(1));
                if i < bytes.len() {
                    bytes[i] = [b'\r', b'\n', b':', 0xff, 0xc3, rng.next() as u8][rng.below(6)];
                }
            }
            let garbage: Vec<u8> = (0..rng.below(2000)).map(|_| rng.next() as u8).collect();
            bytes.extend(garbage);
            let mut p = SseParser::new();
            let mut out = Vec::new();
            parse_in_chunks(&bytes, rng);
            p.push(&bytes, &mut out);
            p.reset();
            p.push(b"data: {}\n\n", &mut out);
            assert_eq!(out.last().map(String::as_str), Some("{}"));
        });
    }
}
