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
    let filter = EnvFilter::try_from_env("BOO_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
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
