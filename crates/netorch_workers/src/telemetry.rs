//! The telemetry tick.

use crate::WorkerError;
use chrono::TimeDelta;
use netorch_domain::{NewSample, NodeId, TelemetrySource, Timestamp};
use netorch_storage::telemetry::PageOutcome;
use netorch_storage::{Database, DbConnection, nodes, telemetry};

/// Running nodes read, sampled and stored at a time: small enough that reading the next page
/// overlaps storing this one for most of a tick, large enough that the per-page commit is
/// noise (10,000 was slower on PostgreSQL, 50,000 overlapped less).
const NODES_PER_PAGE: i64 = 25_000;

/// What one telemetry tick did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelemetryTick {
    /// The collection slot the samples are stamped with.
    pub slot: Timestamp,
    /// Running nodes read.
    pub nodes: usize,
    /// Samples stored (fewer than `nodes` when another worker wrote the slot first).
    pub written: usize,
}

/// The start of the collection slot `now` falls in: slots are `interval` long and aligned to
/// the Unix epoch, so every worker computes the same slot for the same moment.
pub fn slot_start(now: Timestamp, interval: TimeDelta) -> Timestamp {
    let length = interval.num_microseconds().unwrap_or(i64::MAX).max(1);
    let micros = now.timestamp_micros();
    chrono::DateTime::from_timestamp_micros(micros - micros.rem_euclid(length)).unwrap_or(now)
}

/// One pass of the telemetry worker at `now`: one sample per running node, stamped at the
/// start of the current slot, read from `source`. A node already sampled in this slot (by this
/// or another worker) keeps its sample. Workers sharing a database split the slot's pages
/// between them ([`telemetry::insert_slot_page`]): a page another worker stores, or has
/// stored, is skipped, and a page it was storing is looked at again at the end of the tick.
///
/// The fleet is read a page at a time on one connection while the previous page is stored on
/// another (SQLite's WAL and PostgreSQL both let a reader run beside a writer), which hides
/// most of the reading.
///
/// What it needs from the pool: one connection, waited for up to the pool's timeout (else
/// [`WorkerError::NoConnection`]), and a second only if one is free at once; without it (a pool
/// of one, or a caller holding connections of the same pool) the pages are read and stored in
/// turn on the first. So a caller may hold a connection of the pool while it ticks, as long as
/// one more is left.
pub fn telemetry_tick(
    db: &Database,
    source: &dyn TelemetrySource,
    interval: TimeDelta,
    now: Timestamp,
) -> Result<TelemetryTick, WorkerError> {
    let slot = slot_start(now, interval);
    let mut writer = db.get().map_err(|source| WorkerError::NoConnection {
        tick: "telemetry_tick",
        source,
    })?;
    let reader_conn = if db.max_connections() < 2 {
        None
    } else {
        db.try_get()
    };
    let Some(mut reader_conn) = reader_conn else {
        let mut tick = TelemetryTick {
            slot,
            nodes: 0,
            written: 0,
        };
        let mut after = None;
        while let Some(page) = read_page(&mut writer, source, slot, after)? {
            tick.nodes += page.nodes;
            tick.written += store_page_now(&mut writer, &page.samples)?;
            after = page.last.filter(|_| page.nodes == NODES_PER_PAGE as usize);
            if after.is_none() {
                break;
            }
        }
        return Ok(tick);
    };
    let (pages, received) = std::sync::mpsc::sync_channel::<Page>(1);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || -> Result<usize, WorkerError> {
            let conn = &mut reader_conn;
            let mut nodes = 0;
            let mut after = None;
            while let Some(page) = read_page(conn, source, slot, after)? {
                nodes += page.nodes;
                after = page.last.filter(|_| page.nodes == NODES_PER_PAGE as usize);
                // A closed channel means the writer failed; its error is the one reported.
                if pages.send(page).is_err() || after.is_none() {
                    break;
                }
            }
            Ok(nodes)
        });
        let mut written = 0;
        let mut failure = None;
        // Pages another worker was storing as we came to them: looked at again at the end.
        let mut busy = Vec::new();
        for page in &received {
            match telemetry::insert_slot_page(&mut writer, &page.samples) {
                Ok(PageOutcome::Stored(stored)) => written += stored,
                Ok(PageOutcome::AlreadyStored) => {}
                Ok(PageOutcome::Busy) => busy.push(page),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        drop(received);
        // By now the other worker has most likely stored them; if it failed they are still to
        // store.
        if failure.is_none() {
            for page in busy {
                match store_page_now(&mut writer, &page.samples) {
                    Ok(stored) => written += stored,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        let nodes = reader
            .join()
            .map_err(|_| WorkerError::Task("the telemetry reader panicked".into()))??;
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(TelemetryTick {
                slot,
                nodes,
                written,
            }),
        }
    })
}

/// Stores a page of the slot unless another worker has: if one is storing it right now, waits
/// for it ([`telemetry::insert_batch`] then skips what it stored). How many samples were new.
fn store_page_now(
    conn: &mut DbConnection,
    samples: &[NewSample],
) -> Result<usize, netorch_storage::StorageError> {
    match telemetry::insert_slot_page(conn, samples)? {
        PageOutcome::Stored(stored) => Ok(stored),
        PageOutcome::AlreadyStored => Ok(0),
        PageOutcome::Busy => telemetry::insert_batch(conn, samples),
    }
}

/// One page of running nodes, sampled.
struct Page {
    samples: Vec<NewSample>,
    nodes: usize,
    last: Option<NodeId>,
}

/// Reads the running nodes after `after` (one page) and their readings for `slot`; `None`
/// when there are no more.
fn read_page(
    conn: &mut DbConnection,
    source: &dyn TelemetrySource,
    slot: Timestamp,
    after: Option<NodeId>,
) -> Result<Option<Page>, WorkerError> {
    let page = nodes::running_page(conn, after, NODES_PER_PAGE)?;
    if page.is_empty() {
        return Ok(None);
    }
    let samples = page
        .iter()
        .filter_map(|node| {
            source.read(node, slot).map(|metrics| NewSample {
                node_id: node.id,
                deployment_id: node.deployment_id,
                timestamp: slot,
                metrics,
            })
        })
        .collect();
    Ok(Some(Page {
        samples,
        nodes: page.len(),
        last: page.last().map(|n| n.id),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_aligned_to_the_epoch() {
        let at = |micros| chrono::DateTime::from_timestamp_micros(micros).expect("valid");
        let five = TimeDelta::seconds(5);
        assert_eq!(
            slot_start(at(1_800_000_004_999_999), five),
            at(1_800_000_000_000_000)
        );
        assert_eq!(
            slot_start(at(1_800_000_005_000_000), five),
            at(1_800_000_005_000_000)
        );
        let half = TimeDelta::milliseconds(500);
        assert_eq!(
            slot_start(at(1_800_000_000_700_000), half),
            at(1_800_000_000_500_000)
        );
    }
}
