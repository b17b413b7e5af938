//! The end of a permission reply: delivered, or failed and still pending.

use super::App;

const ERROR: u8 = 4;

impl App {
    pub(super) fn permission_reply_done(&mut self, id: String, result: Result<(), String>) {
        let Some(p) = self.agents.permission_reply_done(&id, &result) else {
            return;
        };
        let e = result.err().unwrap_or_default();
        tracing::warn!(id, chat = p.chat, "permission reply failed: {e}");
        // The turn still waits for this answer: say how to give it again.
        self.ui.notify(
            format!(
                "boo: permission reply failed ({e}); the request for {} is still pending: answer it with :Boo permissions",
                p.title
            ),
            ERROR,
        );
    }
}
