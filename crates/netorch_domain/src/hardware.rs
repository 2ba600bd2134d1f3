//! The seams between netorch and the hardware it manages.
//!
//! The workers never talk to devices themselves: they ask a [`Provisioner`] how a node's
//! current phase stands and a [`TelemetrySource`] for a node's readings. netorch ships a
//! deterministic simulation of both (`netorch_simulator`); a program that embeds netorch can
//! plug in real ones (an Ansible run, a NETCONF session, an SNMP poll) without touching the
//! workers.
//!
//! Both traits are polled, never awaited: each lifecycle tick asks again, so an implementation
//! starts its work on the first call and reports progress on later ones, and a worker that
//! restarts simply asks again.

use crate::{Metrics, Node, Timestamp};

/// The two phases a node goes through before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Allocating the hardware (`PROVISIONING`).
    Provisioning,
    /// Applying the configuration (`CONFIGURING`).
    Configuring,
    /// Releasing the device after a scale-down (`DECOMMISSIONING`); when it is over, however
    /// it ended, the node is removed.
    Decommissioning,
}

/// Where a phase stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhaseStatus {
    /// Still under way: ask again on a later tick.
    InProgress,
    /// Finished well: the node moves on.
    Succeeded,
    /// Finished well, and the node is now at this address: a provisioner that learns the
    /// address only when provisioning ends (a program's result) says so this way.
    SucceededAt(String),
    /// Finished badly: the node goes to `FAILED` with this reason.
    Failed(String),
    /// Stopped at the phase's deadline (`phase_timeout_seconds`): the node fails as timed out,
    /// as when the lifecycle finds the phase still in progress past it.
    TimedOut,
}

/// Takes nodes through provisioning and configuration.
pub trait Provisioner: Send + Sync {
    /// The IP address a node gets when its provisioning starts, `None` when it learns it only
    /// when provisioning ends ([`PhaseStatus::SucceededAt`]), or why it cannot get one (the
    /// node then fails). Must be unique across every node the database holds.
    fn assign_address(&self, node: &Node) -> Result<Option<String>, String>;

    /// How the node's current `phase` stands at `now`; the phase began at
    /// `node.state_changed_at`.
    fn phase_status(&self, node: &Node, phase: Phase, now: Timestamp) -> PhaseStatus;

    /// How long after entering `phase` the node is certainly not done yet: the lifecycle
    /// worker does not ask about the node again before then, which keeps its ticks in
    /// proportion to the nodes that move rather than to all those in flight. The default,
    /// zero, has the node asked about on every tick.
    fn earliest_completion(&self, node: &Node, phase: Phase) -> chrono::TimeDelta {
        let _ = (node, phase);
        chrono::TimeDelta::zero()
    }
}

/// Reads a running node's metrics.
pub trait TelemetrySource: Send + Sync {
    /// The node's readings for the collection slot that starts at `slot_start`, or `None` when
    /// the node did not answer (no sample is stored).
    fn read(&self, node: &Node, slot_start: Timestamp) -> Option<Metrics>;
}
