//! The only module that knows msgpack: method names, decoding into typed `Request`/`Notify`
//! enums, and errors turned into `{code, message}` at the boundary.

pub mod convert;
mod server;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

pub use server::{serve_stdio, Nvim};

/// Error codes Lua can switch on; the message is one line for the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    UnknownMethod,
    BadArguments,
    Internal,
    NotFound,
    Busy,
    Backend,
}

/// An error at the RPC boundary: `{code, message}` for Lua.
#[derive(Clone, Debug, PartialEq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    pub code: ErrorCode,
    pub message: String,
}

impl RpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }
}

/// Arguments of `hello`: what the Lua side expects.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct HelloArgs {
    #[serde(default)]
    pub protocol: Option<u32>,
}

/// Reply of `hello`.
#[derive(Clone, Debug, Serialize)]
pub struct HelloReply {
    pub protocol: u32,
    pub version: &'static str,
    pub revision: &'static str,
    pub commit_time: i64,
    pub pid: u32,
}

impl HelloReply {
    pub fn current() -> Self {
        HelloReply {
            protocol: crate::PROTOCOL_VERSION,
            version: crate::VERSION,
            revision: crate::GIT_REVISION,
            commit_time: crate::GIT_COMMIT_TIME.parse().unwrap_or(0),
            pid: std::process::id(),
        }
    }
}

/// Requests: fast queries the editor waits on (`vim.rpcrequest`).
#[derive(Clone, Debug)]
pub enum Request {
    Hello(HelloArgs),
    Ping,
}

/// Notifications: user intents (`vim.rpcnotify`); their results come back as events.
#[derive(Clone, Debug)]
pub enum Notify {
    /// Lets a test or a user check that notifications flow (logged, then dropped).
    Log { message: String },
}

impl Request {
    pub fn decode(name: &str, args: &[Json]) -> Result<Request, RpcError> {
        match name {
            "hello" => Ok(Request::Hello(first_arg(name, args)?)),
            "ping" => Ok(Request::Ping),
            _ => Err(unknown(name)),
        }
    }
}

impl Notify {
    pub fn decode(name: &str, args: &[Json]) -> Result<Notify, RpcError> {
        #[derive(Default, Deserialize)]
        struct LogArgs {
            message: String,
        }
        match name {
            "log" => {
                let a: LogArgs = first_arg(name, args)?;
                Ok(Notify::Log { message: a.message })
            }
            _ => Err(unknown(name)),
        }
    }
}

fn unknown(name: &str) -> RpcError {
    RpcError::new(
        ErrorCode::UnknownMethod,
        format!("unknown method '{name}' (is the boocoder binary older than the plugin?)"),
    )
}

/// Decodes the first argument (a Lua table, or nothing) into `T`.
fn first_arg<T: DeserializeOwned + Default>(name: &str, args: &[Json]) -> Result<T, RpcError> {
    match args.first() {
        None | Some(Json::Null) => Ok(T::default()),
        // An empty Lua table arrives as an empty array.
        Some(Json::Array(a)) if a.is_empty() => Ok(T::default()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
            RpcError::new(
                ErrorCode::BadArguments,
                format!("bad arguments to '{name}': {e}"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_hello_with_and_without_args() {
        match Request::decode("hello", &[json!({"protocol": 1})]).unwrap() {
            Request::Hello(a) => assert_eq!(a.protocol, Some(1)),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            Request::decode("hello", &[]).unwrap(),
            Request::Hello(_)
        ));
        assert!(matches!(
            Request::decode("hello", &[json!([])]).unwrap(),
            Request::Hello(_)
        ));
    }

    #[test]
    fn unknown_method_and_bad_args_are_typed_errors() {
        let e = Request::decode("nope", &[]).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownMethod);
        let e = Request::decode("hello", &[json!({"protocol": "x"})]).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadArguments);
        assert!(e.message.contains("hello"), "{}", e.message);
    }
}
