//! Request ids: the one a client sends in `X-Request-Id` when it is safe to log, or a new one.
//!
//! [`crate::observe`] sets the request's id for the whole of its handling (a task-local, so
//! the error bodies built deep in a handler can carry it without every function passing it
//! on), echoes it in the response and the access log line. This module is a leaf of the
//! crate, like `error`, which reads [`current`].

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The header that carries the id, both ways.
pub const HEADER: &str = "x-request-id";

/// The longest id accepted from a client; a longer one is replaced by a new id.
pub const MAX_LEN: usize = 128;

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request being handled on this task, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Runs `f` as part of the handling of the request with `id`.
pub fn sync_scope<T>(id: String, f: impl FnOnce() -> T) -> T {
    CURRENT.sync_scope(id, f)
}

/// Runs `future` as the handling of the request with `id`.
pub async fn scope<F: std::future::Future>(id: String, future: F) -> F::Output {
    CURRENT.scope(id, future).await
}

/// The client's id when it is 1 to [`MAX_LEN`] characters of letters, digits and `-_.:/+=@`
/// (what tracing systems use, and nothing that can break a log line or a header); otherwise
/// a new one.
pub fn accept_or_generate(sent: Option<&str>) -> String {
    match sent {
        Some(id) if is_safe(id) => id.to_owned(),
        _ => generate(),
    }
}

fn is_safe(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b))
}

/// A new id: 64 random bits drawn once per process, then a counter (`3f09c2d4a1b7e855-0000002a`),
/// unique across processes and restarts without a system call per request.
pub fn generate() -> String {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 8];
        // Without OS randomness, the time still makes the prefix differ between runs.
        if getrandom::fill(&mut bytes).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            bytes = (nanos as u64).to_le_bytes();
        }
        u64::from_le_bytes(bytes)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix:016x}-{n:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_ids_are_kept_and_others_replaced() {
        for kept in ["abc", "trace-01:span/7", &"a".repeat(MAX_LEN)] {
            assert_eq!(accept_or_generate(Some(kept)), kept);
        }
        for replaced in [
            "",
            "has space",
            "new\nline",
            "quote\"",
            &"a".repeat(MAX_LEN + 1),
        ] {
            let id = accept_or_generate(Some(replaced));
            assert_ne!(id, replaced);
            assert!(is_safe(&id), "{id}");
        }
    }

    #[test]
    fn generated_ids_differ_and_are_safe() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(is_safe(&a) && a.len() == 25, "{a}");
    }
}
