//! The cancellation signal shared by a run (or a schedule) and whoever may
//! cancel it.

use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;
use tokio::time::Instant;

/// A one-way signal: once cancelled, it stays cancelled.
///
/// The flag is what decides; the notification only wakes tasks that are
/// waiting (on a rate-limit pause or the schedule's next run), so a cancel
/// that lands between a check and a wait is never lost.
#[derive(Debug, Default)]
pub(super) struct CancelToken {
    cancelled: AtomicBool,
    notify: Notify,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// Cancels, waking every task waiting on [`cancelled`](Self::cancelled).
    pub(super) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// Whether [`cancel`](Self::cancel) has been called.
    pub(super) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Completes once the token is cancelled.
    pub(super) async fn cancelled(&self) {
        loop {
            let notified = self.notify.notified();
            let mut notified = std::pin::pin!(notified);
            // Registering before checking the flag means a cancel that
            // happens after the check still wakes this waiter.
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// Waits until `deadline` or until cancelled, whichever comes first;
    /// returns `false` when it was cancelled.
    pub(super) async fn sleep_until(&self, deadline: Instant) -> bool {
        if self.is_cancelled() {
            return false;
        }
        let sleep = std::pin::pin!(tokio::time::sleep_until(deadline));
        let cancelled = std::pin::pin!(self.cancelled());
        match futures::future::select(sleep, cancelled).await {
            futures::future::Either::Left(_) => !self.is_cancelled(),
            futures::future::Either::Right(_) => false,
        }
    }

    /// Runs `future` unless the token is cancelled first; `None` when it
    /// was.
    pub(super) async fn or_cancelled<F: Future>(&self, future: F) -> Option<F::Output> {
        if self.is_cancelled() {
            return None;
        }
        let future = std::pin::pin!(future);
        let cancelled = std::pin::pin!(self.cancelled());
        match futures::future::select(future, cancelled).await {
            futures::future::Either::Left((output, _)) => Some(output),
            futures::future::Either::Right(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn cancel_interrupts_a_sleep() {
        let token = Arc::new(CancelToken::new());
        let canceller = Arc::clone(&token);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            canceller.cancel();
        });
        let start = Instant::now();
        assert!(!token.sleep_until(start + Duration::from_secs(3600)).await);
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        assert!(token.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn an_uncancelled_sleep_runs_to_its_deadline() {
        let token = CancelToken::new();
        let start = Instant::now();
        assert!(token.sleep_until(start + Duration::from_secs(5)).await);
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_cancelled_token_skips_the_future() {
        let token = CancelToken::new();
        assert_eq!(token.or_cancelled(async { 7 }).await, Some(7));
        token.cancel();
        assert_eq!(token.or_cancelled(async { 7 }).await, None);
        token.cancelled().await;
    }
}
