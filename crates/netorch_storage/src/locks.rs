//! The lock order and every PostgreSQL advisory-lock key: the one rule every write path follows,
//! in one place. A leaf: it imports nothing of this crate.
//!
//! # The lock order
//!
//! Within a write transaction, locks are taken in this order and never another:
//!
//! 1. **Deployments, by ascending id** (`deployment_rows::lock`): on PostgreSQL first an advisory
//!    lock per deployment ([`DEPLOYMENT_CLASS`], shared by writers and exclusive for a delete,
//!    because its queue is fair), then the row (`FOR KEY SHARE` to add rows, `FOR NO KEY UPDATE`
//!    to change nodes, `FOR UPDATE` to delete). Writes go only to deployments that still exist,
//!    so nothing is written for a deployment after its delete commits.
//! 2. **Nodes**, by the versions the transaction read them with (guarded updates).
//! 3. **The event log** ([`EVENTS`]): events are appended last, so ids commit in the order they
//!    are drawn and a reader paging with `after` never steps past one.
//!
//! Writers that follow it cannot deadlock each other; `write_transaction` reruns the rare
//! deadlock or serialization failure PostgreSQL still reports. Three locks stand outside the
//! order because they are taken alone, in transactions of their own that take nothing else
//! before them: the migration lock ([`MIGRATIONS`]), partition maintenance
//! ([`PARTITION_MAINTENANCE_CLASS`], with a lock timeout) and a telemetry page's claim
//! ([`TELEMETRY_PAGE_CLASS`], tried and never waited on). A deployment's delete also takes the
//! partition maintenance lock, shared, right after its deployment's
//! (`partitions::hold_off_maintenance`); a maintainer waiting for it gives up at its lock
//! timeout, so the two cannot deadlock.
//!
//! # The keys
//!
//! Advisory locks share one key space per database with any other program's. netorch's keys
//! are arbitrary constants spelling "net…" in ASCII, unlikely to meet another program's; the
//! two-key forms take a class here and a number of the thing locked as the second key.
//! SQLite has one write lock per database, which every write transaction already holds
//! (`BEGIN IMMEDIATE`), so none of these is taken there.

/// One key: the migration lock, held while pending migrations run, so that processes starting
/// at once migrate once.
pub const MIGRATIONS: i64 = 0x006e_6574_6f72_6368; // "netorch"

/// One key: the event-append lock, held from an event's id being drawn to its commit.
pub const EVENTS: i64 = 0x006e_6574_6576_656e; // "netevEn"

/// A class (first of two keys): a deployment, the second key its id.
pub const DEPLOYMENT_CLASS: i32 = 0x6e74_6450; // "ntdP"

/// A class: partition maintenance, the second key the schema's hash (tests run a schema each).
pub const PARTITION_MAINTENANCE_CLASS: i32 = 0x6e74_7050; // "ntpP"

/// A class: one page of a collection slot's samples being stored by a telemetry worker, the
/// second key a hash of the slot and the page's first node.
pub const TELEMETRY_PAGE_CLASS: i32 = 0x6e74_7450; // "nttP"

/// The second key of a deployment's lock: its id, folded into the `i32` PostgreSQL takes.
pub fn deployment_key(id: i64) -> i32 {
    // rem_euclid by i32::MAX is in 0..i32::MAX: the conversion cannot fail.
    i32::try_from(id.rem_euclid(i64::from(i32::MAX))).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_and_class_is_distinct() {
        assert_ne!(MIGRATIONS, EVENTS);
        let classes = [
            DEPLOYMENT_CLASS,
            PARTITION_MAINTENANCE_CLASS,
            TELEMETRY_PAGE_CLASS,
        ];
        for (i, a) in classes.iter().enumerate() {
            for b in &classes[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn deployment_keys_are_the_ids_folded_into_i32() {
        assert_eq!(deployment_key(7), 7);
        assert_eq!(deployment_key(i64::from(i32::MAX) + 7), 7);
        assert!(deployment_key(i64::MAX) >= 0);
    }
}
