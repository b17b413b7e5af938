//! Store writes off the loop. A write can wait seconds behind another editor's write lock (or
//! SQLite's busy timeout); awaited in a handler it would stop every chat's drawing and saving
//! meanwhile. Jobs run one at a time, in the order they were queued, on a task of their own;
//! one whose result the loop needs sends it back as an event.

use futures::future::BoxFuture;
use tokio::sync::mpsc;

#[derive(Default)]
pub struct StoreJobs {
    tx: Option<mpsc::UnboundedSender<BoxFuture<'static, ()>>>,
}

impl StoreJobs {
    /// Queues `job` after every job queued before it.
    pub fn run(&mut self, job: impl std::future::Future<Output = ()> + Send + 'static) {
        let tx = self.tx.get_or_insert_with(|| {
            // Started on first use: `App::new` may run outside a runtime (unit tests).
            let (tx, mut rx) = mpsc::unbounded_channel::<BoxFuture<'static, ()>>();
            tokio::spawn(async move {
                while let Some(job) = rx.recv().await {
                    job.await;
                }
            });
            tx
        });
        if tx.send(Box::pin(job)).is_err() {
            tracing::warn!("store job dropped: the job task has ended");
        }
    }

    /// Waits until every job queued so far is done (at most `limit`): at exit, before the
    /// store is flushed and closed.
    pub async fn settle(&mut self, limit: std::time::Duration) {
        if self.tx.is_none() {
            return;
        }
        let (done, rx) = tokio::sync::oneshot::channel();
        self.run(async move {
            let _ = done.send(());
        });
        if tokio::time::timeout(limit, rx).await.is_err() {
            tracing::warn!(?limit, "store jobs still running at exit");
        }
    }
}
