//! Node listings kept serialized while their deployment's nodes do not change.
//!
//! A listing of a deployment's nodes is read far more often than it changes (dashboards poll
//! it; nodes change a few times in their life), and building one is the expensive part of the
//! request: decoding every row, formatting four timestamps a node, serializing tens of kilobytes
//! of JSON. The storage keeps a per-deployment node version that every transaction changing a
//! node raises in the same commit, so a request reads that version (one point query) and serves
//! the bytes it built for the same version and filter. Correct across any number of server
//! processes: each keeps its own cache, and the version lives in the shared database.

use actix_web::web::Bytes;
use netorch_domain::{DeploymentId, NodeState};
use netorch_service::nodes::NodeFilter;
use std::collections::HashMap;
use std::sync::Mutex;

/// Which listing: the deployment and the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ListingKey {
    deployment: DeploymentId,
    state: Option<NodeState>,
    skip: i64,
    limit: Option<i64>,
}

impl ListingKey {
    pub(crate) fn new(deployment: DeploymentId, filter: &NodeFilter) -> Self {
        ListingKey {
            deployment,
            state: filter.state,
            skip: filter.skip,
            limit: filter.limit,
        }
    }
}

struct Entry {
    version: i64,
    body: Bytes,
    last_used: u64,
}

#[derive(Default)]
struct Entries {
    map: HashMap<ListingKey, Entry>,
    bytes: usize,
    clock: u64,
}

/// Serialized listings by key, within a memory budget; the least recently used go first.
pub(crate) struct ListingCache {
    entries: Mutex<Entries>,
    budget: usize,
}

impl std::fmt::Debug for ListingCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListingCache")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl ListingCache {
    /// A cache holding at most `budget` bytes of listings.
    pub(crate) fn new(budget: usize) -> Self {
        ListingCache {
            entries: Mutex::new(Entries::default()),
            budget,
        }
    }

    /// The listing built at `version`, if it is held.
    pub(crate) fn get(&self, key: &ListingKey, version: i64) -> Option<Bytes> {
        // A poisoned lock only means another request panicked mid-update of a cache: serve
        // without it rather than fail.
        let mut entries = self.entries.lock().ok()?;
        entries.clock += 1;
        let now = entries.clock;
        let entry = entries.map.get_mut(key)?;
        if entry.version != version {
            return None;
        }
        entry.last_used = now;
        Some(entry.body.clone())
    }

    /// Keeps `body`, the listing at `version`, replacing an older one; a listing larger than an
    /// eighth of the budget is not kept (it would push out many others).
    pub(crate) fn put(&self, key: ListingKey, version: i64, body: Bytes) {
        if body.len() > self.budget / 8 {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        entries.clock += 1;
        let last_used = entries.clock;
        let size = body.len();
        if let Some(old) = entries.map.insert(
            key,
            Entry {
                version,
                body,
                last_used,
            },
        ) {
            entries.bytes -= old.body.len();
        }
        entries.bytes += size;
        while entries.bytes > self.budget {
            let Some(oldest) = entries
                .map
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(gone) = entries.map.remove(&oldest) {
                entries.bytes -= gone.body.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(deployment: i64) -> ListingKey {
        ListingKey::new(DeploymentId(deployment), &NodeFilter::default())
    }

    #[test]
    fn a_listing_is_served_only_at_its_version() {
        let cache = ListingCache::new(1 << 20);
        cache.put(key(1), 7, Bytes::from_static(b"v7"));
        assert_eq!(cache.get(&key(1), 7), Some(Bytes::from_static(b"v7")));
        assert_eq!(cache.get(&key(1), 8), None, "the nodes changed since");
        assert_eq!(cache.get(&key(2), 7), None);
        let filtered = ListingKey::new(
            DeploymentId(1),
            &NodeFilter {
                state: Some(NodeState::Failed),
                ..NodeFilter::default()
            },
        );
        assert_eq!(
            cache.get(&filtered, 7),
            None,
            "another filter is another listing"
        );
        cache.put(key(1), 8, Bytes::from_static(b"v8"));
        assert_eq!(cache.get(&key(1), 8), Some(Bytes::from_static(b"v8")));
    }

    #[test]
    fn the_budget_evicts_the_least_recently_used() {
        let cache = ListingCache::new(80);
        for deployment in 1..=8 {
            cache.put(key(deployment), 0, Bytes::from(vec![0u8; 10]));
        }
        assert!(cache.get(&key(1), 0).is_some(), "touch 1: now the freshest");
        cache.put(key(9), 0, Bytes::from(vec![0u8; 10]));
        assert!(
            cache.get(&key(2), 0).is_none(),
            "2 was the least recently used"
        );
        assert!(cache.get(&key(1), 0).is_some());
        assert!(cache.get(&key(9), 0).is_some());
        cache.put(key(10), 0, Bytes::from(vec![0u8; 11]));
        assert!(
            cache.get(&key(10), 0).is_none(),
            "over an eighth of the budget"
        );
        let held = cache.entries.lock().map(|e| e.bytes).unwrap_or(usize::MAX);
        assert!(held <= 80, "{held}");
    }
}
