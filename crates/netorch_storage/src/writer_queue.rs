//! The queue that SQLite write transactions of one process take turns in, first come, first
//! served.
//!
//! SQLite has one writer at a time, and a writer that finds the lock taken waits in SQLite's busy
//! handler, which sleeps and polls (1, 2, 5, ... up to 100 ms between tries). That is not a queue:
//! under steady write load a writer can lose every poll to writers that came after it, and one
//! did, in CI, waiting out the whole 10 s busy timeout behind push and lifecycle writers that
//! kept taking the lock (`database is locked`). It also wastes the lock: after a commit, nobody
//! may be polling for up to 100 ms. Inside one process, writers therefore queue here before
//! `BEGIN IMMEDIATE` and are handed the turn in arrival order the moment the previous one ends.
//! Writers of other processes (a second server, `netorch-worker`) still meet in SQLite's busy
//! handler; each process sends one writer at a time there.
//!
//! The queue is one per process, not per database file: a connection does not know its file,
//! and a process of netorch opens one database (test binaries open several; their writes then
//! take turns across databases, which costs them only parallelism SQLite's single writer mostly
//! denies anyway).
//!
//! A writer that has waited [`PATIENCE`] goes on without its turn, so a transaction that never
//! ends (or one that, inside, waits for another write on a second connection) delays others by
//! at most that long, after which they meet SQLite's busy timeout as before; the queue can make
//! waits shorter and fairer, never a deadlock.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long a writer waits for its turn before it goes on without it: SQLite's busy timeout.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// A first-come, first-served lock.
#[derive(Debug, Default)]
pub(crate) struct WriterQueue {
    state: Mutex<QueueState>,
    turn_changed: Condvar,
}

#[derive(Debug, Default)]
struct QueueState {
    /// A writer holds the turn.
    taken: bool,
    /// Tickets of the waiting writers, oldest first.
    waiting: VecDeque<u64>,
    next_ticket: u64,
}

/// The turn, held until dropped. `None` inside: the writer went on without it.
#[derive(Debug)]
pub(crate) struct Turn<'a>(Option<&'a WriterQueue>);

impl WriterQueue {
    /// An empty queue.
    pub(crate) const fn new() -> Self {
        WriterQueue {
            state: Mutex::new(QueueState {
                taken: false,
                waiting: VecDeque::new(),
                next_ticket: 0,
            }),
            turn_changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // The state is a flag and a list of numbers, consistent after every statement: a
        // writer that panicked while holding the mutex leaves nothing half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until every writer that came earlier has had its turn, at most `patience`.
    pub(crate) fn wait_turn(&self, patience: Duration) -> Turn<'_> {
        let mut state = self.lock();
        if !state.taken && state.waiting.is_empty() {
            state.taken = true;
            return Turn(Some(self));
        }
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.waiting.push_back(ticket);
        let deadline = Instant::now() + patience;
        loop {
            if !state.taken && state.waiting.front() == Some(&ticket) {
                state.waiting.pop_front();
                state.taken = true;
                return Turn(Some(self));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                state.waiting.retain(|t| *t != ticket);
                // This writer may have been first in line: let the next one look.
                self.turn_changed.notify_all();
                log::warn!("a write waited {patience:?} for its turn; going on without it");
                return Turn(None);
            }
            state = self
                .turn_changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// How many writers have had to wait for their turn (every ticket given out).
    pub(crate) fn waits(&self) -> u64 {
        self.lock().next_ticket
    }

    fn end_turn(&self) {
        self.lock().taken = false;
        self.turn_changed.notify_all();
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if let Some(queue) = self.0 {
            queue.end_turn();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::mpsc;

    /// Waits until `count` writers have stood in line (some may have left it since).
    fn until_waiting(queue: &WriterQueue, count: u64) {
        while queue.lock().next_ticket < count {
            std::thread::yield_now();
        }
    }

    #[test]
    fn writers_get_their_turn_in_the_order_they_came() {
        let queue = Arc::new(WriterQueue::new());
        let first = queue.wait_turn(PATIENCE);
        let (order_tx, order_rx) = mpsc::channel();
        let mut writers = Vec::new();
        for writer in 0..6u64 {
            let shared = Arc::clone(&queue);
            let order_tx = order_tx.clone();
            writers.push(std::thread::spawn(move || {
                let _turn = shared.wait_turn(PATIENCE);
                order_tx.send(writer).expect("receiver alive");
            }));
            // The next writer comes only once this one stands in line.
            until_waiting(&queue, writer + 1);
        }
        drop(first);
        for writer in writers {
            writer.join().expect("writer finished");
        }
        let order: Vec<u64> = order_rx.try_iter().collect();
        assert_eq!(order, vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_writer_goes_on_without_its_turn_after_its_patience_and_leaves_the_line() {
        let queue = WriterQueue::new();
        let held = queue.wait_turn(PATIENCE);
        let started = Instant::now();
        let late = queue.wait_turn(Duration::from_millis(50));
        assert!(late.0.is_none());
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(queue.lock().waiting.is_empty());
        drop(late);
        // Going without the turn ended nothing: the holder still has it.
        assert!(queue.lock().taken);
        drop(held);
        assert!(!queue.lock().taken);
        assert!(queue.wait_turn(PATIENCE).0.is_some());
    }

    #[test]
    fn a_writer_that_gave_up_at_the_front_does_not_block_the_next() {
        let queue = Arc::new(WriterQueue::new());
        let held = queue.wait_turn(PATIENCE);
        let impatient = {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || queue.wait_turn(Duration::from_millis(30)).0.is_some())
        };
        until_waiting(&queue, 1);
        let patient = {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || queue.wait_turn(PATIENCE).0.is_some())
        };
        until_waiting(&queue, 2);
        assert!(!impatient.join().expect("finished"), "gave up while held");
        drop(held);
        assert!(patient.join().expect("finished"), "got the turn");
    }
}
