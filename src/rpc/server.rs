//! The msgpack-RPC endpoint on stdio: decodes calls, answers fast queries, forwards the rest
//! to the app loop. Each call is guarded: one bad input answers an error, never ends the process.

use async_trait::async_trait;
use nvim_rs::compat::tokio::Compat;
use nvim_rs::{Handler, Neovim, Value};
use tokio::sync::mpsc;

use super::convert::{from_json, to_json};
use super::{HelloReply, Notify, Request, RpcError};
use crate::error::AppError;

/// The Neovim handle of a process started by Neovim (`jobstart({rpc=true})`).
pub type Nvim = Neovim<Compat<tokio::fs::File>>;

#[derive(Clone)]
struct RpcHandler {
    notify_tx: mpsc::UnboundedSender<Notify>,
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
        let reply = Request::decode(&name, &args).and_then(answer);
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
                let _ = self.notify_tx.send(n);
            }
            Err(e) => tracing::warn!(method = %name, "notification dropped: {e}"),
        }
    }
}

fn answer(req: Request) -> Result<serde_json::Value, RpcError> {
    match req {
        Request::Hello(args) => {
            if let Some(p) = args.protocol {
                if p != crate::PROTOCOL_VERSION {
                    tracing::warn!(lua = p, rust = crate::PROTOCOL_VERSION, "protocol mismatch");
                }
            }
            Ok(serde_json::to_value(HelloReply::current()).unwrap_or_default())
        }
        Request::Ping => Ok(serde_json::Value::String("pong".into())),
    }
}

/// Neovim accepts `[0 (exception), message]` and shows the message; the code goes to the log.
fn error_value(e: &RpcError) -> Value {
    Value::Array(vec![Value::from(0), Value::from(e.message.as_str())])
}

async fn drain_notifications(mut rx: mpsc::UnboundedReceiver<Notify>) {
    while let Some(n) = rx.recv().await {
        match n {
            Notify::Log { message } => tracing::info!(target: "lua", "{message}"),
        }
    }
}

/// Serves Neovim on stdin/stdout until the channel closes. A closed channel is the normal end.
pub async fn serve_stdio() -> Result<(), AppError> {
    let (notify_tx, notify_rx) = mpsc::unbounded_channel();
    let handler = RpcHandler { notify_tx };
    let (_nvim, io) = nvim_rs::create::tokio::new_parent(handler)
        .await
        .map_err(|e| AppError::Channel(e.to_string()))?;
    tokio::spawn(drain_notifications(notify_rx));
    tracing::info!(pid = std::process::id(), "serving Neovim on stdio");
    match io.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) if e.is_channel_closed() || e.is_reader_error() => {
            tracing::info!("channel closed: {e}");
            Ok(())
        }
        Ok(Err(e)) => Err(AppError::Channel(e.to_string())),
        Err(join) => Err(AppError::Channel(join.to_string())),
    }
}
