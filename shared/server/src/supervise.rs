//! Keeping a long-lived session (a RabbitMQ consumer or publisher) alive:
//! run it, and when it ends with an error, wait with exponential backoff and
//! run it again, until shutdown. `connected` tells health checks whether a
//! session is up.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Shutdown;

/// Runs `session` until it returns `Ok` (its own clean shutdown) or
/// `shutdown` fires, restarting it after errors with backoff from 0.5 s to
/// 15 s (reset after a session that lived a minute).
pub async fn reconnecting<F, Fut>(
    what: &'static str,
    shutdown: Shutdown,
    connected: Arc<AtomicBool>,
    mut session: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    const FIRST: Duration = Duration::from_millis(500);
    let mut backoff = FIRST;
    while !shutdown.is_triggered() {
        let started = Instant::now();
        match session().await {
            Ok(()) => break,
            Err(e) => {
                connected.store(false, Ordering::SeqCst);
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = FIRST;
                }
                tracing::warn!(what, error = %format!("{e:#}"), retry_in_ms = backoff.as_millis() as u64, "session ended; reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.wait() => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(15));
            }
        }
    }
    connected.store(false, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test(start_paused = true)]
    async fn restarts_after_errors_until_a_clean_end() {
        let runs = Arc::new(AtomicUsize::new(0));
        let connected = Arc::new(AtomicBool::new(true));
        let counter = Arc::clone(&runs);
        reconnecting("test", Shutdown::new(), connected.clone(), move || {
            let counter = Arc::clone(&counter);
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) < 3 {
                    anyhow::bail!("broker gone")
                }
                Ok(())
            }
        })
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), 4);
        assert!(!connected.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_the_retries() {
        let shutdown = Shutdown::new();
        let trigger = shutdown.clone();
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&runs);
        reconnecting(
            "test",
            shutdown,
            Arc::new(AtomicBool::new(false)),
            move || {
                let counter = Arc::clone(&counter);
                let trigger = trigger.clone();
                async move {
                    if counter.fetch_add(1, Ordering::SeqCst) == 1 {
                        trigger.trigger();
                    }
                    anyhow::bail!("always failing")
                }
            },
        )
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}
