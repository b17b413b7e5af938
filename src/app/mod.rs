//! The one task that owns the state and loops over a closed `enum Event`.
//! (Grows with the store, backend and UI issues; today it only serves the RPC channel.)

use crate::error::AppError;

/// Runs the process until Neovim closes the channel.
pub async fn run() -> Result<(), AppError> {
    crate::rpc::serve_stdio().await
}
