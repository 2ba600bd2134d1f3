//! The lifecycle tick.

use crate::WorkerError;
use crate::provisioners::RunResults;
use chrono::Duration;
use netorch_domain::provisioning::BUILTIN_PROFILE;
use netorch_domain::{
    DeploymentId, Node, NodeId, NodeState, NodeStateCounts, NodeTrigger, Phase, PhaseStatus,
    Provisioner, RolloutPolicy, Timestamp,
};
use netorch_storage::nodes::{self, NodeChange, Removal, TransitionPlan};
use netorch_storage::{DbConnection, StorageError, write_transaction};
use netorch_storage::{deployments, runs};
use std::collections::{HashMap, HashSet};

/// The provisioners a lifecycle tick drives nodes with: the worker's built-in one (the
/// `simulator` profile) and the external profiles whose runs it applies. Nodes of deployments
/// naming any other profile are left to workers that have it.
#[derive(Clone, Copy)]
pub struct Provisioners<'a> {
    /// The `simulator` profile's provisioner.
    pub builtin: &'a dyn Provisioner,
    /// The external profiles (`--provisioners`) this worker has.
    pub external: &'a [String],
}

impl<'a> Provisioners<'a> {
    /// The built-in provisioner alone.
    pub fn builtin(provisioner: &'a dyn Provisioner) -> Self {
        Provisioners {
            builtin: provisioner,
            external: &[],
        }
    }

    /// Which provisioner drives the nodes of a deployment using `profile`: the built-in one,
    /// `external` (the runs' results), or none in this worker.
    fn pick<'b>(&self, profile: &str, external: &'b RunResults) -> Option<&'b dyn Provisioner>
    where
        'a: 'b,
    {
        if profile == BUILTIN_PROFILE {
            Some(self.builtin)
        } else if self.external.iter().any(|p| p == profile) {
            Some(external)
        } else {
            None
        }
    }

    fn has(&self, profile: &str) -> bool {
        profile == BUILTIN_PROFILE || self.external.iter().any(|p| p == profile)
    }
}

/// Most nodes one tick reads; the rest wait for the next tick (oldest state change first).
pub const MAX_NODES_PER_TICK: i64 = 200_000;

/// Most nodes one write transaction of a tick reads and moves: at about 10 µs a moved node
/// (docs/PERFORMANCE.md) SQLite's write lock is held some 50 ms at a time, so API writes and
/// telemetry wait at most that long behind a rollout of any size.
pub const LIFECYCLE_BATCH: i64 = 5_000;

/// How much of the fleet one lifecycle tick handles, and in what steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickLimits {
    /// Most nodes read per write transaction.
    pub batch: i64,
    /// Most nodes read per tick.
    pub max_nodes: i64,
    /// A pause after each full batch, before the next: SQLite does not queue writers, a writer
    /// waiting for the lock polls it (every 100 ms once it has waited a while), and a tick that
    /// began its next batch at once would keep it out until the tick ends.
    pub pause: std::time::Duration,
}

/// The default [`TickLimits::pause`].
pub const BATCH_PAUSE: std::time::Duration = std::time::Duration::from_millis(25);

impl Default for TickLimits {
    fn default() -> Self {
        TickLimits {
            batch: LIFECYCLE_BATCH,
            max_nodes: MAX_NODES_PER_TICK,
            pause: BATCH_PAUSE,
        }
    }
}

/// What one lifecycle tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LifecycleTick {
    /// In-flight nodes read.
    pub examined: usize,
    /// Transitions (and removals of released nodes) decided.
    pub planned: usize,
    /// Transitions and removals written (the rest were taken by another worker first).
    pub applied: usize,
    /// The transitions written, counted by the state each node entered.
    pub entered: NodeStateCounts,
    /// Of those, phases that timed out (`phase_timeout_seconds`).
    pub timed_out: usize,
    /// Of those, automatic retries (`max_retries`).
    pub auto_retried: usize,
    /// The tick stopped at its limit of nodes with more due: the rest wait for the next.
    pub cut_short: bool,
}

impl LifecycleTick {
    /// Counts the plans of a batch that were written.
    fn count_applied(&mut self, plans: &[TransitionPlan], applied: &[NodeId]) {
        self.applied += applied.len();
        if plans.is_empty() {
            return;
        }
        let applied: HashSet<NodeId> = applied.iter().copied().collect();
        for plan in plans.iter().filter(|p| applied.contains(&p.node_id())) {
            self.entered.add(plan.to(), 1);
            match plan.trigger() {
                NodeTrigger::PhaseTimedOut => self.timed_out += 1,
                NodeTrigger::AutoRetry => self.auto_retried += 1,
                _ => {}
            }
        }
    }
}

/// What should happen to `node` at `now` under its deployment's `policy`, if anything: the
/// pure decision of the lifecycle.
///
/// - `PENDING` starts provisioning and gets its address (or fails without one); whether it
///   may start yet (`max_in_flight`, a pause) is decided before, by the caller.
/// - `PROVISIONING` and `CONFIGURING` move on when the provisioner says their phase is over,
///   or fail once the phase has taken longer than `phase_timeout_seconds`.
/// - `FAILED` goes back to `PENDING` when its automatic retry is due (the worker only reads
///   failed nodes whose retry is scheduled and due).
///
/// A node that fails gets its automatic retry scheduled, after the policy's backoff, while its
/// `max_retries` budget lasts.
pub fn plan_transition(
    node: &Node,
    provisioner: &dyn Provisioner,
    policy: &RolloutPolicy,
    now: Timestamp,
) -> Option<TransitionPlan> {
    let mut limit = None;
    let (trigger, change) = match node.state {
        NodeState::Pending => match provisioner.assign_address(node) {
            Ok(address) => (
                NodeTrigger::StartProvisioning,
                NodeChange {
                    ip_address: address,
                    failure_reason: None,
                    actor: None,
                },
            ),
            Err(reason) => (NodeTrigger::ProvisioningFailed, failure(reason)),
        },
        NodeState::Provisioning | NodeState::Configuring => {
            let (phase, succeeded, failed) = if node.state == NodeState::Provisioning {
                (
                    Phase::Provisioning,
                    NodeTrigger::ProvisioningSucceeded,
                    NodeTrigger::ProvisioningFailed,
                )
            } else {
                (
                    Phase::Configuring,
                    NodeTrigger::ConfigurationSucceeded,
                    NodeTrigger::ConfigurationFailed,
                )
            };
            let timed_out = |seconds: u32| {
                (
                    NodeTrigger::PhaseTimedOut,
                    failure(format!(
                        "{} timed out after {seconds} s",
                        node.state.as_str().to_lowercase()
                    )),
                )
            };
            match provisioner.phase_status(node, phase, now) {
                PhaseStatus::InProgress => {
                    let seconds = policy.phase_timeout_seconds?;
                    let deadline = node
                        .state_changed_at
                        .checked_add_signed(Duration::seconds(i64::from(seconds)))?;
                    if now < deadline {
                        return None;
                    }
                    limit = Some(seconds);
                    timed_out(seconds)
                }
                // The provisioner stopped the phase at its deadline (an external run killed):
                // timed out, even if the deployment's timeout has changed since.
                PhaseStatus::TimedOut => {
                    let seconds = policy.phase_timeout_seconds.unwrap_or_else(|| {
                        u32::try_from((now - node.state_changed_at).num_seconds().max(0))
                            .unwrap_or(u32::MAX)
                    });
                    limit = Some(seconds);
                    timed_out(seconds)
                }
                PhaseStatus::Succeeded => (succeeded, NodeChange::default()),
                PhaseStatus::SucceededAt(address) => (
                    succeeded,
                    NodeChange {
                        ip_address: Some(address),
                        ..NodeChange::default()
                    },
                ),
                PhaseStatus::Failed(reason) => (failed, failure(reason)),
            }
        }
        NodeState::Failed => {
            limit = Some(policy.max_retries);
            (NodeTrigger::AutoRetry, NodeChange::default())
        }
        // Removal is not a transition: see plan_removal.
        NodeState::Running | NodeState::Decommissioning => return None,
    };
    // Every trigger above is legal from the state it is chosen for; a refusal would mean the
    // row changed under us, and the node is simply looked at again next tick.
    let mut plan = TransitionPlan::new(node, trigger, change).ok()?;
    if let Some(limit) = limit {
        plan = plan.with_limit(limit);
    }
    let after = |wait: Duration| now.checked_add_signed(wait).unwrap_or(now);
    match plan.to() {
        // Come back when the next phase can first be over, or time out, and not before.
        NodeState::Provisioning | NodeState::Configuring => {
            let phase = if plan.to() == NodeState::Provisioning {
                Phase::Provisioning
            } else {
                Phase::Configuring
            };
            let mut wait = provisioner.earliest_completion(node, phase);
            if let Some(timeout) = policy.phase_timeout() {
                wait = wait.min(timeout);
            }
            Some(plan.with_check_after(after(wait)))
        }
        NodeState::Failed => match policy.retry_delay(node.attempt) {
            Some(backoff) => Some(plan.with_check_after(after(backoff))),
            None => Some(plan),
        },
        NodeState::Pending | NodeState::Running | NodeState::Decommissioning => Some(plan),
    }
}

/// Whether a `DECOMMISSIONING` node is released at `now` and can be removed: the pure decision
/// of the last step of its life. However the release ended it is removed (a failure is
/// recorded in its event): the deployment no longer wants the node.
pub fn plan_removal(node: &Node, provisioner: &dyn Provisioner, now: Timestamp) -> Option<Removal> {
    if node.state != NodeState::Decommissioning {
        return None;
    }
    match provisioner.phase_status(node, Phase::Decommissioning, now) {
        PhaseStatus::InProgress => None,
        PhaseStatus::Succeeded | PhaseStatus::SucceededAt(_) => Some(Removal::new(node, None)),
        PhaseStatus::TimedOut => Some(Removal::new(node, Some("release timed out".to_owned()))),
        PhaseStatus::Failed(reason) => Some(Removal::new(node, Some(reason))),
    }
}

/// The change that fails a node for `reason`.
fn failure(reason: String) -> NodeChange {
    NodeChange {
        ip_address: None,
        failure_reason: Some(reason),
        actor: None,
    }
}

/// One pass of the lifecycle worker at `now` with the default [`TickLimits`]:
///
/// 1. reads the nodes that are due (each node in a phase is scheduled for when its phase can
///    first be over or time out, from the provisioner's
///    [`earliest_completion`](Provisioner::earliest_completion); a failed node for its
///    automatic retry), decides each with [`plan_transition`], and applies the decisions in
///    bulk with one audit event each;
/// 2. then starts pending nodes, deployment by deployment, lowest id first, as many as each
///    deployment's rollout allows: all of them without `max_in_flight`, none while it is paused.
///
/// The work is done in batches of [`LIFECYCLE_BATCH`], each its own write transaction, so no
/// transaction of a tick is long whatever the number of nodes. A node moves at most once per
/// tick, as if the tick were one transaction.
///
/// On SQLite each batch is one `BEGIN IMMEDIATE` transaction, so concurrent workers take
/// turns and each sees the other's result. On PostgreSQL the transitions are claimed with
/// `FOR UPDATE SKIP LOCKED` and guarded by the row version, so concurrent workers split the
/// nodes between them, and the start of a deployment's pending nodes holds its row lock, so
/// two workers never start more than its `max_in_flight` between them. Either way a node makes
/// each transition once.
pub fn lifecycle_tick(
    conn: &mut DbConnection,
    provisioner: &dyn Provisioner,
    now: Timestamp,
) -> Result<LifecycleTick, WorkerError> {
    lifecycle_tick_with(conn, provisioner, now, TickLimits::default())
}

/// [`lifecycle_tick`] with chosen limits (a benchmark compares batch sizes with it).
pub fn lifecycle_tick_with(
    conn: &mut DbConnection,
    provisioner: &dyn Provisioner,
    now: Timestamp,
    limits: TickLimits,
) -> Result<LifecycleTick, WorkerError> {
    lifecycle_tick_using(conn, Provisioners::builtin(provisioner), now, limits)
}

/// [`lifecycle_tick_with`] driving each deployment's nodes with the provisioner of its profile
/// among `provisioners` (nodes of a profile this worker lacks are left alone).
pub fn lifecycle_tick_using(
    conn: &mut DbConnection,
    provisioners: Provisioners<'_>,
    now: Timestamp,
    limits: TickLimits,
) -> Result<LifecycleTick, WorkerError> {
    let mut tick = LifecycleTick::default();
    let mut after = None;
    // Nodes moved by this tick's earlier batches: one whose next phase is already due comes
    // round again further on, and waits for the next tick.
    let mut moved: HashSet<NodeId> = HashSet::new();
    let batch = limits.batch.max(1);
    let pause = |tick: &LifecycleTick| {
        if (tick.examined as i64) < limits.max_nodes && !limits.pause.is_zero() {
            std::thread::sleep(limits.pause);
        }
    };
    while (tick.examined as i64) < limits.max_nodes {
        let limit = batch.min(limits.max_nodes - tick.examined as i64);
        let (examined, cursor, plans, removals, applied) =
            write_transaction(conn, |conn| -> Result<_, StorageError> {
                let (candidates, cursor) = nodes::due_for_lifecycle(conn, now, after, limit)?;
                let ids: Vec<DeploymentId> =
                    candidates.iter().map(|node| node.deployment_id).collect();
                let found = deployments::by_ids(conn, &ids)?;
                let profile = |node: &Node| {
                    found
                        .get(&node.deployment_id)
                        .map(|d| d.provisioning.profile.as_str())
                        .unwrap_or(BUILTIN_PROFILE)
                };
                let external: Vec<&Node> = candidates
                    .iter()
                    .filter(|node| {
                        let profile = profile(node);
                        profile != BUILTIN_PROFILE && provisioners.has(profile)
                    })
                    .collect();
                let results = if external.is_empty() {
                    RunResults::default()
                } else {
                    RunResults::new(runs::results(conn, &external)?)
                };
                let plans: Vec<TransitionPlan> = candidates
                    .iter()
                    .filter(|node| !moved.contains(&node.id))
                    .filter_map(|node| {
                        let provisioner = provisioners.pick(profile(node), &results)?;
                        let policy = found
                            .get(&node.deployment_id)
                            .map(|d| d.rollout)
                            .unwrap_or_default();
                        plan_transition(node, provisioner, &policy, now)
                    })
                    .collect();
                let policy = |node: &Node| {
                    found
                        .get(&node.deployment_id)
                        .map(|d| d.rollout)
                        .unwrap_or_default()
                };
                let plans =
                    refuse_taken_addresses(conn, plans, &candidates, &results, &policy, now)?;
                let removals: Vec<Removal> = candidates
                    .iter()
                    .filter_map(|node| {
                        plan_removal(node, provisioners.pick(profile(node), &results)?, now)
                    })
                    .collect();
                let mut applied = nodes::apply_transitions(conn, &plans, now)?;
                applied.extend(nodes::remove_decommissioned(conn, &removals, now)?);
                Ok((candidates.len(), cursor, plans, removals.len(), applied))
            })?;
        log_failures(&plans, &applied);
        tick.examined += examined;
        tick.planned += plans.len() + removals;
        tick.count_applied(&plans, &applied);
        moved.extend(applied);
        match cursor {
            Some(cursor) if examined as i64 == limit => {
                after = Some(cursor);
                tick.cut_short = tick.examined as i64 >= limits.max_nodes;
            }
            _ => break,
        }
        pause(&tick);
    }
    for deployment in deployments::with_nodes_to_start(conn)? {
        loop {
            let budget = limits.max_nodes - tick.examined as i64;
            if budget <= 0 {
                tick.cut_short = true;
                return Ok(tick);
            }
            let want = batch.min(budget);
            let (examined, full, plans, applied) =
                write_transaction(conn, |conn| -> Result<_, StorageError> {
                    start_pending(conn, provisioners, deployment, want, &moved, now)
                })?;
            log_failures(&plans, &applied);
            tick.examined += examined;
            tick.planned += plans.len();
            tick.count_applied(&plans, &applied);
            let none_moved = applied.is_empty();
            moved.extend(applied);
            if !full || none_moved {
                break;
            }
            pause(&tick);
        }
    }
    Ok(tick)
}

/// Starts up to `want` of `deployment`'s pending nodes, as many as its rollout allows now,
/// holding its row so that no other worker starts any at the same time. Returns the nodes
/// read, whether the batch was full (more may start), the plans and the nodes moved.
fn start_pending(
    conn: &mut DbConnection,
    provisioners: Provisioners<'_>,
    deployment: DeploymentId,
    want: i64,
    moved: &HashSet<NodeId>,
    now: Timestamp,
) -> Result<(usize, bool, Vec<TransitionPlan>, Vec<NodeId>), StorageError> {
    let nothing = Ok((0, false, Vec::new(), Vec::new()));
    let (found, counts) = match deployments::lock_for_change(conn, deployment) {
        Ok(found) => found,
        // Deleted since the tick listed it.
        Err(StorageError::DeploymentNotFound) => return nothing,
        Err(e) => return Err(e),
    };
    let results = RunResults::default();
    let Some(provisioner) = provisioners.pick(&found.provisioning.profile, &results) else {
        return nothing;
    };
    if found.paused_at.is_some() {
        return nothing;
    }
    let slots = i64::try_from(found.rollout.start_slots(&counts)).unwrap_or(i64::MAX);
    let limit = slots.min(want);
    if limit <= 0 {
        return nothing;
    }
    let candidates = nodes::pending(conn, deployment, limit)?;
    let plans: Vec<TransitionPlan> = candidates
        .iter()
        .filter(|node| !moved.contains(&node.id))
        .filter_map(|node| plan_transition(node, provisioner, &found.rollout, now))
        .collect();
    let applied = nodes::apply_transitions(conn, &plans, now)?;
    let full = candidates.len() as i64 == limit && limit == want;
    Ok((candidates.len(), full, plans, applied))
}

/// Plans that would give a node the address a program reported when another node has it (or
/// another plan of the batch gives it) fail the node instead, saying so: addresses are unique,
/// and one taken would refuse the whole batch, again on every tick. Only results of external
/// runs are checked; the built-in provisioner's addresses are unique by construction.
fn refuse_taken_addresses(
    conn: &mut DbConnection,
    plans: Vec<TransitionPlan>,
    candidates: &[Node],
    results: &RunResults,
    policy: &dyn Fn(&Node) -> RolloutPolicy,
    now: Timestamp,
) -> Result<Vec<TransitionPlan>, StorageError> {
    let reported: HashMap<NodeId, &str> = results.addresses().collect();
    let planned: Vec<&str> = plans
        .iter()
        .filter_map(|plan| reported.get(&plan.node_id()).copied())
        .collect();
    if planned.is_empty() {
        return Ok(plans);
    }
    let mut holders = nodes::holding_addresses(conn, &planned)?;
    let by_id: HashMap<NodeId, &Node> = candidates.iter().map(|node| (node.id, node)).collect();
    let mut checked = Vec::with_capacity(plans.len());
    for plan in plans {
        let address = reported.get(&plan.node_id()).copied();
        let (Some(address), Some(node)) = (address, by_id.get(&plan.node_id())) else {
            checked.push(plan);
            continue;
        };
        match holders.get(address) {
            Some(other) if *other != plan.node_id() => {
                let reason = format!("the address {address} it reported is node {other}'s");
                let failed =
                    TransitionPlan::new(node, NodeTrigger::ProvisioningFailed, failure(reason));
                // Legal from PROVISIONING, where a reported address is applied; a refusal
                // would mean the row changed, and the node is looked at again next tick.
                if let Ok(failed) = failed {
                    checked.push(match policy(node).retry_delay(node.attempt) {
                        Some(backoff) => {
                            failed.with_check_after(now.checked_add_signed(backoff).unwrap_or(now))
                        }
                        None => failed,
                    });
                }
            }
            _ => {
                holders.insert(address.to_owned(), plan.node_id());
                checked.push(plan);
            }
        }
    }
    Ok(checked)
}

/// Failures are what an operator acts on: one line each (the rest is the debug summary).
fn log_failures(plans: &[TransitionPlan], applied: &[NodeId]) {
    if !log::log_enabled!(log::Level::Info) || !plans.iter().any(|p| p.to() == NodeState::Failed) {
        return;
    }
    let applied: HashSet<_> = applied.iter().copied().collect();
    for plan in plans.iter().filter(|p| p.to() == NodeState::Failed) {
        if applied.contains(&plan.node_id()) {
            log::info!(
                deployment_id = plan.deployment().get(), node_id = plan.node_id().get();
                "node {} of deployment {} failed: {}",
                plan.node_id(),
                plan.deployment(),
                plan.failure_reason().unwrap_or("no reason given")
            );
        }
    }
}
