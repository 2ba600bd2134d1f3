//! The simulated hardware of netorch, reproducing the original service's numbers exactly.
//!
//! Every function is pure: the same node, attempt and time give the same answer, on any machine
//! and in any process, which is what lets several workers share a database without
//! coordinating (whoever writes a transition or a sample writes the same one). [`SimulatedHardware`]
//! puts the functions behind the domain's [`Provisioner`] and [`TelemetrySource`] traits.
//!
//! The rules (API contract, "The simulated hardware"), at time scale 1:
//! - `PROVISIONING` lasts `3 + id % 5` seconds, `CONFIGURING` `5 + id % 7` seconds,
//!   `DECOMMISSIONING` 2 seconds (netorch's addition);
//! - configuration fails when `(id + deployment_id + attempt) % 20 == 0`;
//! - the address of node `id` is `10.0.0.0 + id`, unique while ids fit in `10.0.0.0/8`;
//! - telemetry follows [`metrics_at`]; nodes with `id % 10` of 8 or 9 are [`degraded`];
//! - netorch's addition, for self-healing: re-provisioning clears a degraded node's fault. A
//!   degraded node remediated at least once reports as a healthy one ([`node_metrics_at`]);
//!   a node never remediated keeps the formula above, so the original's numbers never move;
//! - off by default, for testing phase timeouts: with [`SimulatedHardware::with_hang_every`]
//!   `n`, nodes whose id is a multiple of `n` never finish `CONFIGURING` on their first attempt
//!   ([`hangs`]).
//!
//! No I/O, no clock: time is always a parameter.

use chrono::TimeDelta;
use chrono::{DateTime, Utc};
use netorch_domain::{
    DeploymentId, Metrics, Node, NodeId, Phase, PhaseStatus, Provisioner, TelemetrySource,
};
use std::net::Ipv4Addr;

/// How long releasing a node takes at time scale 1 (the original had no scaling; this is
/// netorch's own rule, and releasing never fails).
pub const DECOMMISSIONING_DURATION: TimeDelta = TimeDelta::seconds(2);

/// How long `phase` takes for node `id` at time scale 1.
pub fn phase_duration(id: NodeId, phase: Phase) -> TimeDelta {
    // The same remainders as of the id itself: 35 is a multiple of 5 and of 7.
    let id = (id.get().unsigned_abs() % 35) as i64;
    match phase {
        Phase::Provisioning => TimeDelta::seconds(3 + id % 5),
        Phase::Configuring => TimeDelta::seconds(5 + id % 7),
        Phase::Decommissioning => DECOMMISSIONING_DURATION,
    }
}

/// Whether configuration fails for this node on this attempt (0 for the first).
pub fn configuration_fails(id: NodeId, deployment: DeploymentId, attempt: u32) -> bool {
    (i128::from(id.get()) + i128::from(deployment.get()) + i128::from(attempt)) % 20 == 0
}

/// Whether node `id` hangs in `CONFIGURING` on this attempt when the hardware hangs every
/// `every`-th node: its id is a multiple of `every` and it is the node's first attempt, so a
/// retry gets through. `every` 0 hangs nothing.
pub fn hangs(id: NodeId, attempt: u32, every: u64) -> bool {
    every != 0 && attempt == 0 && id.get().unsigned_abs().is_multiple_of(every)
}

/// The reason recorded when [`configuration_fails`].
pub const CONFIGURATION_FAILURE_REASON: &str = "simulated configuration failure";

/// The address of node `id`: `10.0.0.0 + id`, so ids 1 to 16,777,214 get `10.0.0.1` to
/// `10.255.255.254`, all distinct. `None` past that: the simulated address space is exhausted.
pub fn ip_address(id: NodeId) -> Option<Ipv4Addr> {
    const NETWORK: u32 = 10 << 24;
    const HOSTS: i64 = (1 << 24) - 2;
    let id = id.get();
    (1..=HOSTS)
        .contains(&id)
        .then(|| Ipv4Addr::from(NETWORK + id as u32))
}

/// The ground truth the analytics must find: nodes with `id % 10` of 8 or 9 are built worse.
pub fn degraded(id: NodeId) -> bool {
    id.get().rem_euclid(10) >= 8
}

/// The metrics a node's profile has before the time-varying wave: `f = id % 10`.
pub fn base_metrics(id: NodeId) -> Metrics {
    profile_metrics(id.get().rem_euclid(10))
}

/// The metrics of profile `f` (0 to 9) before the wave.
fn profile_metrics(f: i64) -> Metrics {
    let f = f as f64;
    if f <= 7.0 {
        Metrics {
            latency_ms: 10.0 + 2.0 * f,
            throughput_gbps: 9.5 - 0.1 * f,
            error_rate: 0.1 + 0.02 * f,
        }
    } else {
        Metrics {
            latency_ms: 50.0 + (f - 7.0) * 20.0,
            throughput_gbps: 8.0 - (f - 7.0) * 1.5,
            error_rate: 0.5 + (f - 7.0) * 0.3,
        }
    }
}

/// Node `id`'s readings at `at`: the base profile modulated by `v = 0.3 sin(t + id)` with
/// `t = unix_seconds / 100`, clamped to plausible ranges and rounded to 2 decimals as the
/// original service did (Python's `round`, half to even on the exact binary value).
///
/// `unix_seconds` is the exact time, fraction included, as Python's `time.time()` gives it:
/// at time scales above 1 the collection slots start at fractions of a second.
pub fn metrics_at(id: NodeId, at: DateTime<Utc>) -> Metrics {
    wave(base_metrics(id), id, at)
}

/// Node `id`'s readings at `at` after `remediations` re-provisionings: [`metrics_at`], except
/// that a [`degraded`] node remediated at least once has had its fault cleared and reports as
/// the healthy profile `id % 10 - 8` (0 or 1), with its own wave. Deterministic, and the same
/// as [`metrics_at`] for every node never remediated.
pub fn node_metrics_at(id: NodeId, remediations: u32, at: DateTime<Utc>) -> Metrics {
    if remediations > 0 && degraded(id) {
        wave(profile_metrics(id.get().rem_euclid(10) - 8), id, at)
    } else {
        metrics_at(id, at)
    }
}

/// `base` modulated by node `id`'s wave at `at`, clamped and rounded.
fn wave(base: Metrics, id: NodeId, at: DateTime<Utc>) -> Metrics {
    // Microseconds divided once: the division is correctly rounded, so this is the double
    // nearest the exact time, the same value Python computes for `micros / 1_000_000`.
    let unix_seconds = at.timestamp_micros() as f64 / 1e6;
    let t = unix_seconds / 100.0;
    let v = (t + id.get() as f64).sin() * 0.3;
    Metrics {
        latency_ms: round2((base.latency_ms * (1.0 + 0.2 * v)).clamp(1.0, 200.0)),
        throughput_gbps: round2((base.throughput_gbps * (1.0 + 0.1 * v)).clamp(1.0, 10.0)),
        error_rate: round2((base.error_rate + 0.1 * v).clamp(0.0, 5.0)),
    }
}

/// Rounds to 2 decimals exactly as Python's `round(x, 2)`: to the nearest of the two
/// neighbouring 2-decimal numbers as judged on the exact binary value of `x`.
///
/// `(x * 100).round() / 100` agrees except when `x * 100` lands within rounding error of a
/// half; those rare cases are settled by Rust's exact decimal formatting, which is what Python
/// does for every value.
pub fn round2(x: f64) -> f64 {
    let scaled = x * 100.0;
    let fraction = scaled - scaled.trunc();
    if (fraction.abs() - 0.5).abs() > 1e-6 {
        return scaled.round() / 100.0;
    }
    // Formatting prints the exact binary value rounded to 2 decimals; parsing it back gives
    // the nearest double, as Python's float(repr(...)) would.
    format!("{x:.2}").parse().unwrap_or(scaled.round() / 100.0)
}

/// The simulated hardware behind the domain's traits, at a time scale (2 makes every phase
/// take half as long).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimulatedHardware {
    time_scale: f64,
    hang_every: u64,
}

impl SimulatedHardware {
    /// Hardware whose phases run `time_scale` times faster than the original's (1 = real
    /// time). Non-finite or non-positive scales are taken as 1.
    pub fn new(time_scale: f64) -> Self {
        let time_scale = if time_scale.is_finite() && time_scale > 0.0 {
            time_scale
        } else {
            1.0
        };
        SimulatedHardware {
            time_scale,
            hang_every: 0,
        }
    }

    /// The same hardware, on which every node whose id is a multiple of `every` hangs in
    /// `CONFIGURING` on its first attempt ([`hangs`]); 0 (the default) hangs none.
    pub fn with_hang_every(self, every: u64) -> Self {
        SimulatedHardware {
            hang_every: every,
            ..self
        }
    }

    /// Every how many nodes one hangs (0: none).
    pub fn hang_every(&self) -> u64 {
        self.hang_every
    }

    /// The time scale in force.
    pub fn time_scale(&self) -> f64 {
        self.time_scale
    }

    /// How long `phase` takes for node `id` at this time scale.
    pub fn scaled_phase_duration(&self, id: NodeId, phase: Phase) -> TimeDelta {
        // A phase duration is a few whole seconds: never negative, so `to_std` cannot fail.
        let unscaled = phase_duration(id, phase).to_std().unwrap_or_default();
        TimeDelta::from_std(unscaled.div_f64(self.time_scale)).unwrap_or(TimeDelta::MAX)
    }
}

impl Default for SimulatedHardware {
    fn default() -> Self {
        SimulatedHardware::new(1.0)
    }
}

impl Provisioner for SimulatedHardware {
    fn assign_address(&self, node: &Node) -> Result<Option<String>, String> {
        ip_address(node.id)
            .map(|ip| Some(ip.to_string()))
            .ok_or_else(|| format!("no simulated address left for node id {}", node.id))
    }

    fn phase_status(&self, node: &Node, phase: Phase, now: DateTime<Utc>) -> PhaseStatus {
        let elapsed = now.signed_duration_since(node.state_changed_at);
        let needed = self.scaled_phase_duration(node.id, phase);
        if elapsed < needed
            || (phase == Phase::Configuring && hangs(node.id, node.attempt, self.hang_every))
        {
            PhaseStatus::InProgress
        } else if phase == Phase::Configuring
            && configuration_fails(node.id, node.deployment_id, node.attempt)
        {
            PhaseStatus::Failed(CONFIGURATION_FAILURE_REASON.to_owned())
        } else {
            PhaseStatus::Succeeded
        }
    }

    fn earliest_completion(&self, node: &Node, phase: Phase) -> TimeDelta {
        // The simulation knows exactly when each phase ends.
        self.scaled_phase_duration(node.id, phase)
    }
}

impl TelemetrySource for SimulatedHardware {
    fn read(&self, node: &Node, slot_start: DateTime<Utc>) -> Option<Metrics> {
        Some(node_metrics_at(node.id, node.remediations, slot_start))
    }
}

#[cfg(test)]
mod tests;
