//! The telemetry tick.

use crate::WorkerError;
use netorch_domain::{NewSample, TelemetrySource, Timestamp};
use netorch_storage::{DbConnection, nodes, telemetry};
use std::time::Duration;

/// Running nodes read and sampled per transaction.
const NODES_PER_PAGE: i64 = 50_000;

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
pub fn slot_start(now: Timestamp, interval: Duration) -> Timestamp {
    let length = i64::try_from(interval.as_micros())
        .unwrap_or(i64::MAX)
        .max(1);
    let micros = now.timestamp_micros();
    chrono::DateTime::from_timestamp_micros(micros - micros.rem_euclid(length)).unwrap_or(now)
}

/// One pass of the telemetry worker at `now`: one sample per running node, stamped at the
/// start of the current slot, read from `source` and stored in batches of 50,000. A node
/// already sampled in this slot (by this or another worker) keeps its sample.
pub fn telemetry_tick(
    conn: &mut DbConnection,
    source: &dyn TelemetrySource,
    interval: Duration,
    now: Timestamp,
) -> Result<TelemetryTick, WorkerError> {
    let slot = slot_start(now, interval);
    let mut tick = TelemetryTick {
        slot,
        nodes: 0,
        written: 0,
    };
    let mut after = None;
    loop {
        let page = nodes::running_page(conn, after, NODES_PER_PAGE)?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        let samples: Vec<NewSample> = page
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
        tick.nodes += page.len();
        tick.written += telemetry::insert_batch(conn, &samples)?;
        if page.len() < NODES_PER_PAGE as usize {
            break;
        }
    }
    Ok(tick)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_aligned_to_the_epoch() {
        let at = |micros| chrono::DateTime::from_timestamp_micros(micros).expect("valid");
        let five = Duration::from_secs(5);
        assert_eq!(
            slot_start(at(1_800_000_004_999_999), five),
            at(1_800_000_000_000_000)
        );
        assert_eq!(
            slot_start(at(1_800_000_005_000_000), five),
            at(1_800_000_005_000_000)
        );
        let half = Duration::from_millis(500);
        assert_eq!(
            slot_start(at(1_800_000_000_700_000), half),
            at(1_800_000_000_500_000)
        );
    }
}
