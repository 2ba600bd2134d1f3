//! Bounded concurrency for heavy requests: bottleneck reports, and push bodies.
//!
//! A report of a large deployment reads a million samples and holds per-node aggregates: it
//! takes seconds of CPU, a database connection per time slice, and tens of megabytes. Without a
//! bound, sixteen at once used every pooled connection and a gigabyte of memory, and health
//! checks queued behind them. A push body (the JSON push, the collectors' protocols) is read
//! whole, decoded to up to four times its size and held until the one writer stores it: 64
//! senders of the largest bodies at once held 64 of those. A gate lets so many run, keeps a
//! queue, and answers the rest 503 with `Retry-After`.

use crate::http::error::ApiError;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Admits requests: `running` at once, `queued` more waiting up to `max_wait`, the rest
/// refused.
#[derive(Debug)]
pub(crate) struct Gate {
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
    queued: usize,
    max_wait: Duration,
}

/// A place in the queue, given back however the wait ends (a turn, a timeout, or the request
/// dropped while it waited: a sender that hung up).
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A request's turn; the next one may start when it is dropped.
#[derive(Debug)]
pub(crate) struct Turn {
    _permit: OwnedSemaphorePermit,
}

impl Gate {
    /// A gate for `running` concurrent requests and `queued` waiting ones, each for at most
    /// `max_wait`.
    pub(crate) fn new(running: usize, queued: usize, max_wait: Duration) -> Self {
        Gate {
            running: Arc::new(Semaphore::new(running.max(1))),
            waiting: AtomicUsize::new(0),
            queued,
            max_wait,
        }
    }

    /// Waits for a turn; 503 with `Retry-After` when the queue is full or the wait too long.
    pub(crate) async fn enter(&self) -> Result<Turn, ApiError> {
        if let Ok(permit) = Arc::clone(&self.running).try_acquire_owned() {
            return Ok(Turn { _permit: permit });
        }
        let place = Queued(&self.waiting);
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queued {
            return Err(ApiError::Busy { retry_after: 1 });
        }
        let waited =
            actix_web::rt::time::timeout(self.max_wait, Arc::clone(&self.running).acquire_owned())
                .await;
        drop(place);
        match waited {
            Ok(Ok(permit)) => Ok(Turn { _permit: permit }),
            // Timed out, or the semaphore was closed (never: nothing closes it).
            _ => Err(ApiError::Busy { retry_after: 5 }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn reports_beyond_the_running_and_queued_ones_are_refused() {
        let gate = Gate::new(2, 1, Duration::from_secs(30));
        let first = gate.enter().await.expect("first runs");
        let second = gate.enter().await.expect("second runs");
        // The third waits; the fourth finds the queue full.
        let third = gate.enter();
        let mut third = Box::pin(third);
        assert!(
            futures_poll(&mut third).is_none(),
            "the third waits for a turn"
        );
        match gate.enter().await {
            Err(ApiError::Busy { retry_after }) => assert_eq!(retry_after, 1),
            _ => panic!("the fourth should be refused"),
        }
        drop(first);
        let turn = third.await.expect("the third runs once a turn is free");
        drop((second, turn));
        gate.enter().await.expect("free again");

        // A request dropped while it waits (its sender hung up) gives its place back.
        let (first, second) = (
            gate.enter().await.expect("1"),
            gate.enter().await.expect("2"),
        );
        for _ in 0..3 {
            let mut waiting = Box::pin(gate.enter());
            assert!(futures_poll(&mut waiting).is_none(), "it waits");
            drop(waiting);
        }
        let mut waiting = Box::pin(gate.enter());
        assert!(
            futures_poll(&mut waiting).is_none(),
            "a place is still free"
        );
        drop((first, second));
    }

    /// Polls a future once.
    fn futures_poll<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        match std::pin::Pin::new(f).poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }
}
