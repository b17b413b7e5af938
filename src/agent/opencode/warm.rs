//! Warming a directory's opencode instance before its first prompt.
//!
//! opencode 1.18.33 loads most of a directory's instance (tool registry, plugins, the project
//! copy, location services) only when a prompt first runs there: about 1-2 s that the user's
//! first answer would wait for. No cheap request does that work (listing agents, tools,
//! providers or commands does not), but a prompt does, whatever its model. So the warm-up sends
//! one prompt to a scratch session, with a model of a provider that points at a closed local port:
//! opencode loads everything, fails to connect (nothing leaves the machine, nothing is billed),
//! and the session is aborted and deleted.
//!
//! The warm-up provider is only added to the server's config when the user's config names a
//! default `model`: opencode's fallback default is the first provider the config declares, and
//! that must never become ours.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::client::{Client, ModelRef};
use crate::agent::AgentError;

/// The provider id of the warm-up model (hidden from model lists).
pub const PROVIDER: &str = "boo-warmup";
const MODEL: &str = "none";
/// How long a warm-up may take before it is given up (the instance is loaded by then anyway).
const GIVE_UP: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

/// The provider's config: an OpenAI-compatible endpoint on a port nothing listens on.
pub fn provider_config() -> Value {
    json!({
        "npm": "@ai-sdk/openai-compatible",
        "name": "boo warm-up",
        "options": {"baseURL": "http://127.0.0.1:1/v1", "apiKey": "none"},
        "models": {MODEL: {"name": "boo warm-up", "limit": {"context": 1000, "output": 1}}}
    })
}

/// Whether a config names a default model (`model` at the top level).
fn names_model(text: &str) -> bool {
    serde_json::from_str::<Value>(&strip_comments(text))
        .ok()
        .and_then(|v| v.get("model").and_then(Value::as_str).map(str::to_string))
        .is_some_and(|m| !m.trim().is_empty())
}

/// Whether the config opencode will read names a default model: the inline config, the
/// `OPENCODE_CONFIG` file or the global config (`env` first, then our own environment). A
/// project's `opencode.json` is not looked at: it may differ per directory.
pub fn default_model_named(inline: Option<&str>, env: &[(String, String)]) -> bool {
    let var = |k: &str| {
        env.iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(k).ok())
    };
    if inline.is_some_and(names_model) {
        return true;
    }
    let read = |p: &Path| std::fs::read_to_string(p).ok();
    if var("OPENCODE_CONFIG")
        .and_then(|f| read(Path::new(&f)))
        .is_some_and(|t| names_model(&t))
    {
        return true;
    }
    let config_home = var("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| var("HOME").map(|h| Path::new(&h).join(".config")));
    config_home.is_some_and(|c| {
        ["opencode.json", "opencode.jsonc", "config.json"]
            .iter()
            .filter_map(|f| read(&c.join("opencode").join(f)))
            .any(|t| names_model(&t))
    })
}

/// JSONC -> JSON: drops `//` and `/* */` comments outside strings (trailing commas stay a
/// parse error, and then the config counts as naming no model).
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_str = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Runs the warm-up prompt in `dir` and cleans up after it. Returns once opencode tried the
/// model (its session reports a retry) or gave up on it.
pub async fn warm(client: &Client, dir: &Path) -> Result<Duration, AgentError> {
    let t = Instant::now();
    // A title of its own: opencode would otherwise ask the small model for one.
    let id = client.create_scratch_session(dir, "boo warm-up").await?;
    let model = ModelRef {
        provider: PROVIDER.to_string(),
        model: MODEL.to_string(),
    };
    let parts = vec![json!({"type": "text", "text": "warm-up"})];
    let sent = client
        .prompt_async(&id, dir, parts, Some(&model), None)
        .await;
    if sent.is_ok() {
        let mut seen_busy = false;
        while t.elapsed() < GIVE_UP {
            match client.status_of(&id, dir).await {
                Ok(Some(s)) if s == "retry" => break,
                Ok(Some(_)) => seen_busy = true,
                // Idle again: the prompt failed or ended before a retry.
                Ok(None) if seen_busy => break,
                Ok(None) => {}
                Err(_) => break,
            }
            tokio::time::sleep(POLL).await;
        }
        let _ = client.abort(&id, dir).await;
    }
    let deleted = client.delete_session(&id, dir).await;
    sent?;
    deleted?;
    Ok(t.elapsed())
}

#[cfg(test)]
mod tests {
    use super::{default_model_named, names_model, strip_comments};

    #[test]
    fn a_model_is_found_in_json_and_jsonc() {
        assert!(names_model(r#"{"model":"a/b"}"#));
        assert!(names_model(
            "{\n // the default\n \"model\": \"a/b\", /* x */ \"url\": \"http://h//p\"\n}"
        ));
        assert!(!names_model(r#"{"model":""}"#));
        assert!(!names_model(r#"{"small_model":"a/b"}"#));
        assert!(!names_model(r#"{"agent":{"build":{"model":"a/b"}}}"#));
        assert!(!names_model("not json"));
        assert_eq!(strip_comments(r#""a//b" // c"#).trim(), r#""a//b""#);
        assert_eq!(strip_comments(r#""a\"/*b" /* c */"#).trim(), r#""a\"/*b""#);
    }

    #[test]
    fn the_global_config_counts_and_an_empty_home_does_not() {
        let home = std::env::temp_dir().join(format!("boo-warm-{}", std::process::id()));
        let dir = home.join("opencode");
        std::fs::create_dir_all(&dir).expect("dir");
        let env = vec![(
            "XDG_CONFIG_HOME".to_string(),
            home.to_string_lossy().into_owned(),
        )];
        let isolated = |env: &[(String, String)]| {
            let mut e = env.to_vec();
            e.push(("OPENCODE_CONFIG".into(), "/nonexistent".into()));
            e
        };
        assert!(!default_model_named(None, &isolated(&env)));
        assert!(default_model_named(
            Some(r#"{"model":"p/m"}"#),
            &isolated(&env)
        ));
        std::fs::write(
            dir.join("opencode.jsonc"),
            "{ // mine\n \"model\": \"p/m\" }",
        )
        .expect("w");
        assert!(default_model_named(None, &isolated(&env)));
        let _ = std::fs::remove_dir_all(&home);
    }
}
