//! The REST side of the opencode server: one small method per route we use. Every call has a
//! timeout (except the event stream), basic auth when a password is set, and the session's
//! directory as `?directory=` (which opencode prefers over the header).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use serde_json::{json, Value};

use crate::agent::AgentError;

/// A model reference as the prompt body wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRef {
    pub provider: String,
    pub model: String,
}

impl ModelRef {
    /// Parses `provider/model` (the model part may itself contain `/`).
    pub fn parse(s: &str) -> Option<ModelRef> {
        let (p, m) = s.trim().split_once('/')?;
        (!p.is_empty() && !m.is_empty()).then(|| ModelRef {
            provider: p.to_string(),
            model: m.to_string(),
        })
    }
}

#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT` without trailing slash.
    base: String,
    username: String,
    password: Option<String>,
    timeout: Duration,
}

impl Client {
    pub fn new(base: &str, username: &str, password: Option<String>) -> Client {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(30));
        let local = ["://127.0.0.1", "://localhost", "://[::1]"]
            .iter()
            .any(|h| base.contains(h));
        if local {
            // A local server is never reached through the user's HTTP proxy.
            builder = builder.no_proxy();
        }
        let http = builder.build().unwrap_or_default();
        Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            username: username.to_string(),
            password,
            timeout: Duration::from_secs(15),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        dir: Option<&Path>,
    ) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(pw) = &self.password {
            r = r.basic_auth(&self.username, Some(pw));
        }
        if let Some(d) = dir {
            r = r.query(&[("directory", d.to_string_lossy().as_ref())]);
        }
        r
    }

    async fn send(
        &self,
        what: &str,
        r: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, AgentError> {
        let resp = r
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| AgentError::Unreachable(format!("{what}: {}", short_err(&e))))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| {
                v.pointer("/data/message")
                    .or_else(|| v.get("message"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| body.chars().take(200).collect())
            .replace(['\n', '\r'], " ");
        Err(AgentError::Http {
            what: what.to_string(),
            status: status.as_u16(),
            message,
        })
    }

    async fn json(&self, what: &str, r: reqwest::RequestBuilder) -> Result<Value, AgentError> {
        let resp = self.send(what, r).await?;
        let is_json = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        if !is_json {
            // Unknown routes answer 200 text/html (the web UI).
            return Err(AgentError::Protocol {
                what: what.to_string(),
                message: "not JSON (is this an opencode server?)".to_string(),
            });
        }
        resp.json::<Value>()
            .await
            .map_err(|e| AgentError::Protocol {
                what: what.to_string(),
                message: short_err(&e),
            })
    }

    /// `GET /global/health`; Ok(version) when healthy.
    pub async fn health(&self) -> Result<String, AgentError> {
        let v = self
            .json(
                "health check",
                self.req(reqwest::Method::GET, "/global/health", None),
            )
            .await?;
        if v.get("healthy").and_then(Value::as_bool) != Some(true) {
            return Err(AgentError::Protocol {
                what: "health check".into(),
                message: format!("not healthy: {v}"),
            });
        }
        Ok(v.get("version")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string())
    }

    /// `GET /agent` in `dir`: the agents it offers (also loads the directory's instance).
    pub async fn agents(&self, dir: &Path) -> Result<Value, AgentError> {
        self.json(
            "list agents",
            self.req(reqwest::Method::GET, "/agent", Some(dir)),
        )
        .await
    }

    /// `GET /config/providers` in `dir`: the providers and their models (with limits).
    pub async fn providers(&self, dir: &Path) -> Result<Value, AgentError> {
        self.json(
            "list providers",
            self.req(reqwest::Method::GET, "/config/providers", Some(dir)),
        )
        .await
    }

    /// `POST /session` in `dir`; returns the new session id.
    pub async fn create_session(
        &self,
        dir: &Path,
        agent: Option<&str>,
    ) -> Result<String, AgentError> {
        let mut body = json!({});
        if let Some(a) = agent {
            body["agent"] = json!(a);
        }
        let v = self
            .json(
                "create session",
                self.req(reqwest::Method::POST, "/session", Some(dir))
                    .json(&body),
            )
            .await?;
        v.get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| AgentError::Protocol {
                what: "create session".into(),
                message: "no id".into(),
            })
    }

    /// `POST /session` with a title (opencode then asks no model for one).
    pub async fn create_scratch_session(
        &self,
        dir: &Path,
        title: &str,
    ) -> Result<String, AgentError> {
        let v = self
            .json(
                "create session",
                self.req(reqwest::Method::POST, "/session", Some(dir))
                    .json(&json!({ "title": title })),
            )
            .await?;
        v.get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| AgentError::Protocol {
                what: "create session".into(),
                message: "no id".into(),
            })
    }

    /// `GET /session/{id}`: `None` when the session does not exist.
    pub async fn get_session(&self, id: &str, dir: &Path) -> Result<Option<Value>, AgentError> {
        match self
            .json(
                "get session",
                self.req(reqwest::Method::GET, &format!("/session/{id}"), Some(dir)),
            )
            .await
        {
            Ok(v) if v.get("id").and_then(Value::as_str) == Some(id) => Ok(Some(v)),
            Ok(_) => Ok(None),
            Err(AgentError::Http { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /session/{id}`.
    pub async fn delete_session(&self, id: &str, dir: &Path) -> Result<(), AgentError> {
        self.send(
            "delete session",
            self.req(
                reqwest::Method::DELETE,
                &format!("/session/{id}"),
                Some(dir),
            ),
        )
        .await
        .map(|_| ())
    }

    /// `POST /session/{id}/prompt_async`.
    pub async fn prompt_async(
        &self,
        id: &str,
        dir: &Path,
        parts: Vec<Value>,
        model: Option<&ModelRef>,
        agent: Option<&str>,
    ) -> Result<(), AgentError> {
        let mut body = json!({ "parts": parts });
        if let Some(m) = model {
            body["model"] = json!({"providerID": m.provider, "modelID": m.model});
        }
        if let Some(a) = agent {
            body["agent"] = json!(a);
        }
        self.send(
            "prompt",
            self.req(
                reqwest::Method::POST,
                &format!("/session/{id}/prompt_async"),
                Some(dir),
            )
            .json(&body),
        )
        .await
        .map(|_| ())
    }

    /// `GET /command`: opencode's commands for `dir` (its own and the config's).
    pub async fn commands(&self, dir: &Path) -> Result<Value, AgentError> {
        self.json(
            "list commands",
            self.req(reqwest::Method::GET, "/command", Some(dir)),
        )
        .await
    }

    /// `POST /session/{id}/command`: runs a command with the first text part as its arguments
    /// and the file parts attached. Answers when the turn is over (no short timeout).
    pub async fn command(
        &self,
        id: &str,
        dir: &Path,
        name: &str,
        parts: Vec<Value>,
        model: Option<String>,
        agent: Option<String>,
    ) -> Result<(), AgentError> {
        let arguments = parts
            .first()
            .and_then(|p| p.get("text"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        // Only file parts are accepted here; text context joins the arguments.
        let mut args = arguments;
        let mut files = Vec::new();
        for p in parts.into_iter().skip(1) {
            match p.get("type").and_then(Value::as_str) {
                Some("file") => files.push(p),
                _ => {
                    if let Some(t) = p.get("text").and_then(Value::as_str) {
                        args.push_str("\n\n");
                        args.push_str(t);
                    }
                }
            }
        }
        let mut body = json!({"command": name, "arguments": args, "parts": files});
        if let Some(m) = model {
            body["model"] = json!(m);
        }
        if let Some(a) = agent {
            body["agent"] = json!(a);
        }
        let r = self
            .req(
                reqwest::Method::POST,
                &format!("/session/{id}/command"),
                Some(dir),
            )
            .json(&body)
            .timeout(Duration::from_secs(24 * 3600));
        let resp = r
            .send()
            .await
            .map_err(|e| AgentError::Unreachable(format!("command: {e}")))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let message = resp.text().await.unwrap_or_default();
        Err(AgentError::Http {
            what: "command".into(),
            status: status.as_u16(),
            message: message.chars().take(300).collect(),
        })
    }

    /// `POST /session/{id}/abort`.
    pub async fn abort(&self, id: &str, dir: &Path) -> Result<(), AgentError> {
        self.send(
            "abort",
            self.req(
                reqwest::Method::POST,
                &format!("/session/{id}/abort"),
                Some(dir),
            ),
        )
        .await
        .map(|_| ())
    }

    /// `POST /session/{id}/revert`: the session forgets message `message` and every later one
    /// (they stay listed, hidden behind `session.revert`, until the next prompt removes them or
    /// `unrevert` brings them back). opencode also puts back the files its own snapshots saw.
    pub async fn revert(&self, id: &str, dir: &Path, message: &str) -> Result<(), AgentError> {
        self.json(
            "revert",
            self.req(
                reqwest::Method::POST,
                &format!("/session/{id}/revert"),
                Some(dir),
            )
            .json(&json!({ "messageID": message })),
        )
        .await
        .map(|_| ())
    }

    /// `POST /session/{id}/unrevert`: every reverted message comes back.
    pub async fn unrevert(&self, id: &str, dir: &Path) -> Result<(), AgentError> {
        self.json(
            "unrevert",
            self.req(
                reqwest::Method::POST,
                &format!("/session/{id}/unrevert"),
                Some(dir),
            ),
        )
        .await
        .map(|_| ())
    }

    /// `POST /session/{id}/fork`: a new session (same directory) with the messages before
    /// `before` (all with `None`); returns its id.
    pub async fn fork(
        &self,
        id: &str,
        dir: &Path,
        before: Option<&str>,
    ) -> Result<String, AgentError> {
        let body = match before {
            Some(m) => json!({ "messageID": m }),
            None => json!({}),
        };
        let v = self
            .json(
                "fork",
                self.req(
                    reqwest::Method::POST,
                    &format!("/session/{id}/fork"),
                    Some(dir),
                )
                .json(&body),
            )
            .await?;
        v.get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| AgentError::Protocol {
                what: "fork".into(),
                message: "no id".into(),
            })
    }

    /// `GET /session/{id}/message`: `[{info, parts}]`, oldest first.
    pub async fn messages(&self, id: &str, dir: &Path) -> Result<Value, AgentError> {
        self.json(
            "messages",
            self.req(
                reqwest::Method::GET,
                &format!("/session/{id}/message"),
                Some(dir),
            ),
        )
        .await
    }

    /// The newest `limit` messages of the session (oldest first), as `GET ?limit=` gives them.
    pub async fn last_messages(
        &self,
        id: &str,
        dir: &Path,
        limit: usize,
    ) -> Result<Value, AgentError> {
        let r = self
            .req(
                reqwest::Method::GET,
                &format!("/session/{id}/message"),
                Some(dir),
            )
            .query(&[("limit", limit.to_string())]);
        self.json("messages", r).await
    }

    /// `GET /session/status`: true when the session is busy (or retrying).
    pub async fn is_busy(&self, id: &str, dir: &Path) -> Result<bool, AgentError> {
        Ok(self.status_of(id, dir).await?.is_some_and(|s| s != "idle"))
    }

    /// `GET /session/status`: the session's status type (`busy`, `retry`), `None` when idle.
    pub async fn status_of(&self, id: &str, dir: &Path) -> Result<Option<String>, AgentError> {
        let v = self
            .json(
                "status",
                self.req(reqwest::Method::GET, "/session/status", Some(dir)),
            )
            .await?;
        Ok(v.get(id)
            .and_then(|s| s.get("type"))
            .and_then(Value::as_str)
            .map(str::to_string))
    }

    /// `GET /permission` for `dir`.
    pub async fn permissions(&self, dir: &Path) -> Result<Vec<Value>, AgentError> {
        let v = self
            .json(
                "permissions",
                self.req(reqwest::Method::GET, "/permission", Some(dir)),
            )
            .await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// `POST /permission/{id}/reply`.
    pub async fn reply_permission(
        &self,
        id: &str,
        dir: &Path,
        reply: &str,
    ) -> Result<(), AgentError> {
        self.send(
            "permission reply",
            self.req(
                reqwest::Method::POST,
                &format!("/permission/{id}/reply"),
                Some(dir),
            )
            .json(&json!({ "reply": reply })),
        )
        .await
        .map(|_| ())
    }

    /// `GET /event` for `dir`: the raw SSE byte stream (no timeout).
    pub async fn events(
        &self,
        dir: &Path,
    ) -> Result<
        impl Stream<Item = Result<Bytes, reqwest::Error>> + Send + Unpin + 'static,
        AgentError,
    > {
        let resp = self
            .req(reqwest::Method::GET, "/event", Some(dir))
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| AgentError::Unreachable(format!("event stream: {}", short_err(&e))))?;
        if !resp.status().is_success() {
            return Err(AgentError::Http {
                what: "event stream".into(),
                status: resp.status().as_u16(),
                message: String::new(),
            });
        }
        Ok(resp.bytes_stream())
    }
}

/// One line from a reqwest error, with its cause.
fn short_err(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s = format!("{s}: {c}");
        src = c.source();
    }
    s.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ref_parse() {
        assert_eq!(
            ModelRef::parse("fake/fake-model"),
            Some(ModelRef {
                provider: "fake".into(),
                model: "fake-model".into()
            })
        );
        assert_eq!(
            ModelRef::parse("openrouter/meta/llama").map(|m| m.model),
            Some("meta/llama".into())
        );
        assert_eq!(ModelRef::parse("nomodel"), None);
        assert_eq!(ModelRef::parse("/x"), None);
    }
}
