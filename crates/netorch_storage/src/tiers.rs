//! The tiers telemetry is stored in (raw samples, one-minute and one-hour rollups) and how
//! long each is kept: what expiry (`retention`), the partitions (`partitions`) and the series'
//! tier choice share. A leaf: it imports no sibling, so the upkeep modules that use it do not
//! import each other in a circle.

use chrono::Duration;
use netorch_domain::{Resolution, Timestamp};

/// How long each tier of telemetry is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw samples.
    pub raw: Duration,
    /// One-minute rollups.
    pub minutes: Duration,
    /// One-hour rollups.
    pub hours: Duration,
    /// The audit log's events, of live and deleted deployments alike.
    pub events: Duration,
}

impl Default for Retention {
    /// 1 day of samples, 7 days of minutes, 400 days of hours: about 4.4 MB per node at the
    /// default 5 s interval (docs/API.md, "Retention"), so 1,000 nodes stay under 5 GB. Events
    /// 400 days: an audit reaches back more than a year.
    fn default() -> Self {
        Retention {
            raw: Duration::days(1),
            minutes: Duration::days(7),
            hours: Duration::days(400),
            events: Duration::days(400),
        }
    }
}

impl Retention {
    /// The shortest raw retention accepted: the bottleneck report reads the partial minutes at
    /// the edges of a window of up to an hour from raw samples.
    pub const MIN_RAW: Duration = Duration::hours(1);

    /// The finest tier still holding data from `since` at `now`: `None` for raw samples.
    pub fn finest_holding(&self, since: Timestamp, now: Timestamp) -> Option<Resolution> {
        // Any two representable times are less than a `Duration` apart: this cannot overflow.
        let age = now.signed_duration_since(since);
        if age <= self.raw {
            None
        } else if age <= self.minutes {
            Some(Resolution::Minute)
        } else {
            Some(Resolution::Hour)
        }
    }
}

/// A tier of stored telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// `telemetry_samples`.
    Raw,
    /// A node rollup table and its fleet table.
    Rollup(Resolution),
}

impl Tier {
    /// Every tier.
    pub const ALL: [Tier; 3] = [
        Tier::Raw,
        Tier::Rollup(Resolution::Minute),
        Tier::Rollup(Resolution::Hour),
    ];

    pub(crate) fn kept(self, retention: &Retention) -> Duration {
        match self {
            Tier::Raw => retention.raw,
            Tier::Rollup(Resolution::Minute) => retention.minutes,
            Tier::Rollup(Resolution::Hour) => retention.hours,
        }
    }

    /// `(table, time column, second key column)`.
    pub(crate) fn tables(self) -> &'static [(&'static str, &'static str, Option<&'static str>)] {
        match self {
            Tier::Raw => &[("telemetry_samples", "sampled_at", Some("node_id"))],
            Tier::Rollup(Resolution::Minute) => &[
                ("telemetry_minutes", "bucket", Some("node_id")),
                ("fleet_telemetry_minutes", "bucket", None),
                ("telemetry_sealed_minutes", "bucket", Some("node_id")),
            ],
            Tier::Rollup(Resolution::Hour) => &[
                ("telemetry_hours", "bucket", Some("node_id")),
                ("fleet_telemetry_hours", "bucket", None),
            ],
        }
    }
}
