//! File logging (stdout is the RPC channel) and the panic hook that writes to it.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Arc;

use tracing_subscriber::EnvFilter;

use crate::error::AppError;

/// Logs to `path` (appending). The filter comes from `BOO_LOG` (e.g. `debug`), default `info`.
pub fn init(path: &Path) -> Result<(), AppError> {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| AppError::Log {
            path: path.display().to_string(),
            source,
        })?;
    let mut filter = EnvFilter::try_from_env("BOO_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // The RPC library logs every message at debug, `configure` with its passwords and keys
    // among them: never below warn, whatever BOO_LOG says.
    if let Ok(d) = "nvim_rs=warn".parse() {
        filter = filter.add_directive(d);
    }
    // A second init (tests in one process) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Arc::new(file))
        .try_init();
    install_panic_hook();
    Ok(())
}

/// Logs every panic with its location before the default hook runs, so a crash of the channel
/// always leaves a reason in the log.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("<unnamed>");
        tracing::error!(target: "panic", thread = name, "panic: {info}");
        default(info);
    }));
}

/// `text` with the credentials of every URL in it (`scheme://user:password@host`) replaced by
/// `***`, for the log and for messages (an HTTP client's error names the URL it tried).
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace; credentials before '@'.
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == ')')
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// Where the log goes when Lua names no file: per user (`$XDG_STATE_HOME`, `~/.local/state`,
/// `$XDG_RUNTIME_DIR`), never a shared `/tmp` name another user could create first.
pub fn default_log_path() -> Option<std::path::PathBuf> {
    crate::config::user_state_dir().map(|d| d.join("boo.log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_are_redacted() {
        assert_eq!(
            redact_urls("error for url (http://me:s3cret@h:1/v1/models) and https://tok@x/y"),
            "error for url (http://***@h:1/v1/models) and https://***@x/y"
        );
        assert_eq!(
            redact_urls("http://127.0.0.1:8080/v1"),
            "http://127.0.0.1:8080/v1"
        );
        assert_eq!(redact_urls("no url, a@b"), "no url, a@b");
    }
}
