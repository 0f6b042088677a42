//! Awaiting several futures at once, for commands sent to several cluster
//! nodes.
//!
//! The crate does not depend on `futures`, and spawning a task per node
//! would let the work outlive a caller that gave up; polling the futures
//! in place keeps them inside the caller's future.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

/// Runs every future to completion concurrently; the outputs are in the
/// order of `futures`.
pub(super) async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut running: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = running.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (future, slot) in running.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(output) => *slot = Some(output),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    type Boxed = Pin<Box<dyn Future<Output = u8> + Send>>;

    #[tokio::test]
    async fn outputs_keep_their_order_and_run_together() {
        // The first future can only finish after the second has run, so
        // awaiting them one after the other would never end.
        let (tx, rx) = oneshot::channel::<u8>();
        let first: Boxed = Box::pin(async move { rx.await.expect("sent") });
        let second: Boxed = Box::pin(async move {
            tx.send(7).expect("receiver alive");
            1
        });
        assert_eq!(join_all(vec![first, second]).await, vec![7, 1]);
        assert!(join_all(Vec::<Boxed>::new()).await.is_empty());
    }
}
