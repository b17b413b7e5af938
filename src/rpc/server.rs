//! The msgpack-RPC endpoint on stdio: decodes calls, answers `hello`/`ping` itself and hands
//! everything else to the app loop. Each call is guarded: a bad input answers an error, never
//! ends the process.

use async_trait::async_trait;
use nvim_rs::compat::tokio::Compat;
use nvim_rs::{Handler, Neovim, Value};
use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::convert::{from_json, to_json, to_value};
use super::{ErrorCode, HelloReply, Notify, Request, RpcError};
use crate::error::AppError;
use crate::ui::{Batch, Frontend};

/// The Neovim handle of a process started by Neovim (`jobstart({rpc=true})`).
pub type Nvim = Neovim<Compat<tokio::fs::File>>;

/// What the RPC layer hands to the app loop.
#[derive(Debug)]
pub enum Inbound {
    // Boxed: notifications carry the configuration, much larger than a request.
    Notify(Box<Notify>),
    Request(Request, oneshot::Sender<Result<Json, RpcError>>),
}

#[derive(Clone)]
struct RpcHandler {
    tx: mpsc::UnboundedSender<Inbound>,
}

#[async_trait]
impl Handler for RpcHandler {
    type Writer = Compat<tokio::fs::File>;

    async fn handle_request(
        &self,
        name: String,
        args: Vec<Value>,
        _nvim: Neovim<Self::Writer>,
    ) -> Result<Value, Value> {
        let args: Vec<_> = args.iter().map(to_json).collect();
        let reply = match Request::decode(&name, &args) {
            Ok(Request::Hello(args)) => hello(args.protocol),
            Ok(Request::Ping) => Ok(Json::String("pong".into())),
            Ok(req) => self.ask_app(req).await,
            Err(e) => Err(e),
        };
        match reply {
            Ok(v) => Ok(from_json(&v)),
            Err(e) => {
                tracing::warn!(method = %name, code = ?e.code, "request failed: {e}");
                Err(error_value(&e))
            }
        }
    }

    async fn handle_notify(&self, name: String, args: Vec<Value>, _nvim: Neovim<Self::Writer>) {
        // Notifications block the reader until this returns: decode and hand off, nothing more.
        let args: Vec<_> = args.iter().map(to_json).collect();
        match Notify::decode(&name, &args) {
            Ok(n) => {
                let _ = self.tx.send(Inbound::Notify(Box::new(n)));
            }
            Err(e) => tracing::warn!(method = %name, "notification dropped: {e}"),
        }
    }
}

impl RpcHandler {
    async fn ask_app(&self, req: Request) -> Result<Json, RpcError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Inbound::Request(req, tx))
            .map_err(|_| RpcError::new(ErrorCode::Internal, "backend is shutting down"))?;
        rx.await
            .map_err(|_| RpcError::new(ErrorCode::Internal, "backend dropped the request"))?
    }
}

fn hello(protocol: Option<u32>) -> Result<Json, RpcError> {
    if let Some(p) = protocol {
        if p != crate::PROTOCOL_VERSION {
            tracing::warn!(lua = p, rust = crate::PROTOCOL_VERSION, "protocol mismatch");
        }
    }
    serde_json::to_value(HelloReply::current())
        .map_err(|e| RpcError::new(ErrorCode::Internal, e.to_string()))
}

/// Neovim accepts `[0 (exception), message]` and shows the message; the code goes to the log.
fn error_value(e: &RpcError) -> Value {
    Value::Array(vec![Value::from(0), Value::from(e.message.as_str())])
}

/// Connects to Neovim on stdin/stdout. Returns the handle for calls into Neovim and the task
/// that reads the channel; that task ending means Neovim closed the channel.
pub async fn serve_stdio(
    tx: mpsc::UnboundedSender<Inbound>,
) -> Result<(Nvim, JoinHandle<Result<(), AppError>>), AppError> {
    let handler = RpcHandler { tx };
    let (nvim, io) = nvim_rs::create::tokio::new_parent(handler)
        .await
        .map_err(|e| AppError::Channel(e.to_string()))?;
    tracing::info!(pid = std::process::id(), "serving Neovim on stdio");
    let done = tokio::spawn(async move {
        match io.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if e.is_channel_closed() || e.is_reader_error() => {
                tracing::info!("channel closed: {e}");
                Ok(())
            }
            Ok(Err(e)) => Err(AppError::Channel(e.to_string())),
            Err(join) => Err(AppError::Channel(join.to_string())),
        }
    });
    Ok((nvim, done))
}

/// Render batches into Neovim: one `exec_lua` with typed arguments per batch, never Lua source
/// built from data.
pub struct NvimFrontend {
    nvim: Nvim,
}

impl NvimFrontend {
    pub fn new(nvim: Nvim) -> Self {
        NvimFrontend { nvim }
    }
}

#[async_trait]
impl Frontend for NvimFrontend {
    async fn apply(&self, batch: Batch) -> Result<(), String> {
        let t = std::time::Instant::now();
        let arg = to_value(&batch)?;
        let encoded = t.elapsed();
        let r = self
            .nvim
            .exec_lua(super::RENDER_ENTRY, vec![arg])
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        // A frame that long is worth knowing about (a restored transcript, a huge paste).
        if t.elapsed() >= std::time::Duration::from_millis(30) {
            tracing::info!(
                encode_ms = encoded.as_millis() as u64,
                total_ms = t.elapsed().as_millis() as u64,
                "slow render batch"
            );
        }
        r
    }

    async fn buffer_text(&self, path: &std::path::Path) -> Option<String> {
        let arg = rmpv::Value::from(path.to_string_lossy().as_ref());
        // Neovim answers from memory; a busy editor must not hold the agent for long.
        let r = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            self.nvim.exec_lua(super::BUFFER_TEXT_ENTRY, vec![arg]),
        )
        .await;
        match r {
            Ok(Ok(rmpv::Value::String(s))) => s.into_str(),
            Ok(Ok(_)) => None,
            Ok(Err(e)) => {
                tracing::warn!("buffer text of {}: {e}", path.display());
                None
            }
            Err(_) => {
                tracing::warn!(
                    "buffer text of {}: Neovim did not answer in 2 s",
                    path.display()
                );
                None
            }
        }
    }
}
