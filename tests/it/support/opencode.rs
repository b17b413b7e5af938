//! Shared helpers of the opencode backend tests: a backend wired to a fake model in an
//! isolated environment, event collection with timeouts, and a transcript built from changes.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use boo_testkit::fake_model::FakeModel;
use boo_testkit::opencode::{OpencodeEnv, SandboxOptions};
use boocoder::agent::opencode::{OpencodeBackend, OpencodeConfig};
use boocoder::agent::{AgentBackend, AgentEvent, SessionBinding, TurnOutcome, TurnRequest};
use boocoder::dispatch::Dispatcher;
use boocoder::model::{ChatId, ItemChange, ItemKind};
use serde_json::Value;
use tokio::sync::mpsc;

pub const T: Duration = Duration::from_secs(60);

pub struct Harness {
    pub model: FakeModel,
    pub env: OpencodeEnv,
    pub backend: OpencodeBackend,
    pub dispatcher: Dispatcher,
    pub events: mpsc::UnboundedReceiver<AgentEvent>,
    pub transcripts: HashMap<ChatId, Transcript>,
    pub log: Vec<AgentEvent>,
}

pub fn config(env: &OpencodeEnv) -> OpencodeConfig {
    OpencodeConfig {
        command: boo_testkit::tools::opencode(),
        env: env.vars().to_vec(),
        cwd: Some(env.project_dir().to_path_buf()),
        ..OpencodeConfig::default()
    }
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with(SandboxOptions::default(), |_| {})
    }

    pub fn with(opts: SandboxOptions, tweak: impl FnOnce(&mut OpencodeConfig)) -> Harness {
        let model = FakeModel::start();
        let env = OpencodeEnv::new(&model, &opts);
        let mut cfg = config(&env);
        tweak(&mut cfg);
        let (btx, brx) = mpsc::unbounded_channel();
        let backend = OpencodeBackend::new(cfg, btx);
        let (otx, orx) = mpsc::unbounded_channel();
        let dyn_backend: Arc<dyn AgentBackend> = Arc::new(backend.clone());
        let dispatcher = Dispatcher::new(dyn_backend, brx, otx, None);
        Harness {
            model,
            env,
            backend,
            dispatcher,
            events: orx,
            transcripts: HashMap::new(),
            log: Vec::new(),
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.env.project_dir().to_path_buf()
    }

    pub fn req(&self, chat: ChatId, dir: &Path, text: &str) -> TurnRequest {
        TurnRequest {
            chat,
            task: 0,
            directory: dir.to_path_buf(),
            text: text.to_string(),
            model: None,
            agent: None,
            binding: None,
            extras: Default::default(),
        }
    }

    fn record(&mut self, ev: &AgentEvent) {
        if let AgentEvent::Item { chat, change } = ev {
            self.transcripts.entry(*chat).or_default().apply(change);
        }
        self.log.push(ev.clone());
    }

    /// The next event (panics after `within`).
    pub async fn next(&mut self, within: Duration) -> AgentEvent {
        let ev = tokio::time::timeout(within, self.events.recv())
            .await
            .unwrap_or_else(|_| panic!("no event within {within:?}; log: {:#?}", self.log))
            .expect("event channel closed");
        self.record(&ev);
        ev
    }

    /// Events until `pred` holds for one (returned).
    pub async fn until(
        &mut self,
        within: Duration,
        mut pred: impl FnMut(&AgentEvent) -> bool,
    ) -> AgentEvent {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let ev = self.next(left).await;
            if pred(&ev) {
                return ev;
            }
        }
    }

    /// Events until the chat's turn is done; its outcome.
    pub async fn done(&mut self, chat: ChatId, within: Duration) -> TurnOutcome {
        match self
            .until(
                within,
                |e| matches!(e, AgentEvent::TurnDone { chat: c, .. } if *c == chat),
            )
            .await
        {
            AgentEvent::TurnDone { outcome, .. } => outcome,
            _ => unreachable!(),
        }
    }

    pub fn transcript(&self, chat: ChatId) -> Transcript {
        self.transcripts.get(&chat).cloned().unwrap_or_default()
    }

    /// The binding reported for the chat (last `SessionBound`).
    pub fn binding(&self, chat: ChatId) -> Option<SessionBinding> {
        self.log.iter().rev().find_map(|e| match e {
            AgentEvent::SessionBound {
                chat: c,
                external_id,
                config_hash,
                ..
            } if *c == chat => Some(SessionBinding {
                external_id: external_id.clone(),
                config_hash: config_hash.clone(),
            }),
            _ => None,
        })
    }

    /// `GET /session/{id}/message` on the backend's server.
    pub async fn rest_messages(&self, session: &str, dir: &Path) -> Value {
        let server = self.backend.server().await.expect("server");
        tokio::time::timeout(T, server.client().messages(session, dir))
            .await
            .expect("messages timeout")
            .expect("messages")
    }
}

/// A chat transcript kept as the app keeps it (`model::transcript::Transcript`), with
/// accessors for the tests.
#[derive(Clone, Debug, Default)]
pub struct Transcript(pub boocoder::model::transcript::Transcript);

impl Transcript {
    pub fn apply(&mut self, change: &ItemChange) {
        if let ItemChange::Append { part_id, .. } = change {
            assert!(
                self.0.find(part_id).is_some(),
                "append to unknown part {part_id}"
            );
        }
        self.0.apply(change.clone());
    }

    pub fn of_kind(&self, kind: ItemKind) -> Vec<(String, String, Value)> {
        self.0
            .items()
            .filter(|i| i.kind == kind)
            .map(|i| {
                let id = i.part_id.clone().unwrap_or_default();
                (id, i.content.clone(), i.meta.clone())
            })
            .collect()
    }

    pub fn texts(&self, kind: ItemKind) -> Vec<String> {
        self.of_kind(kind).into_iter().map(|(_, c, _)| c).collect()
    }

    /// The (part id, kind, text) of every text/reasoning/user part, for comparing with REST.
    pub fn parts(&self) -> Vec<(String, ItemKind, String)> {
        self.0
            .items()
            .filter(|i| {
                matches!(
                    i.kind,
                    ItemKind::Text | ItemKind::Reasoning | ItemKind::User
                )
            })
            .map(|i| {
                (
                    i.part_id.clone().unwrap_or_default(),
                    i.kind,
                    i.content.clone(),
                )
            })
            .collect()
    }
}

/// The text/reasoning/user parts of a REST message list, in order.
pub fn rest_parts(messages: &Value) -> Vec<(String, ItemKind, String)> {
    let mut out = Vec::new();
    for m in messages.as_array().into_iter().flatten() {
        let user = m["info"]["role"] == "user";
        for p in m["parts"].as_array().into_iter().flatten() {
            let kind = match (p["type"].as_str(), user) {
                (Some("text"), true) => ItemKind::User,
                (Some("text"), false) => ItemKind::Text,
                (Some("reasoning"), _) => ItemKind::Reasoning,
                _ => continue,
            };
            if p["synthetic"] == Value::Bool(true) {
                continue;
            }
            out.push((
                p["id"].as_str().unwrap_or_default().to_string(),
                kind,
                p["text"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    out
}

/// Pids of live `opencode` processes whose command line contains `needle`.
pub fn opencode_pids_with(needle: &str) -> Vec<u32> {
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return v;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmdline);
        if !cmd.contains("serve") {
            continue;
        }
        if String::from_utf8_lossy(&environ).contains(needle) {
            // A zombie has an empty cmdline; only live processes get here.
            v.push(pid);
        }
    }
    v
}
