//! State transitions, guarded by the row's version: planned from a node as it was read,
//! applied only if the row still has that version, one at a time or in bulk.

use super::*;

/// What a transition sets besides the state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeChange {
    /// A new IP address (kept as it is when `None`).
    pub ip_address: Option<String>,
    /// Why the node failed (cleared by any transition into a state other than `FAILED`).
    pub failure_reason: Option<String>,
    /// Who asked for the change through the API (its event's `actor`); `None` for the
    /// workers' own.
    pub actor: Option<String>,
}

/// A transition decided on a node as it was read: applied only if the node's row still has
/// the version it was read with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionPlan {
    node: NodeId,
    /// The node's name, which its event's message and metadata give.
    name: String,
    deployment: DeploymentId,
    version: i64,
    from: NodeState,
    to: NodeState,
    trigger: NodeTrigger,
    attempt: u32,
    ip_address: Option<String>,
    failure_reason: Option<String>,
    check_after: Option<Timestamp>,
    /// The node was waiting for an automatic retry (it leaves the deployment's count of them).
    was_retrying: bool,
    /// The policy limit the transition applied: the phase timeout in seconds for
    /// `PhaseTimedOut`, `max_retries` for `AutoRetry` (for their events).
    limit: u32,
    /// Who asked for it through the API.
    actor: Option<String>,
}

impl TransitionPlan {
    /// Plans `trigger` on `node`; refuses what the state machine does not allow.
    pub fn new(node: &Node, trigger: NodeTrigger, change: NodeChange) -> Result<Self, DomainError> {
        let to = node.state.apply(trigger)?;
        Ok(TransitionPlan {
            node: node.id,
            name: node.name.clone(),
            deployment: node.deployment_id,
            version: node.version,
            from: node.state,
            to,
            trigger,
            attempt: if matches!(
                trigger,
                NodeTrigger::Retry | NodeTrigger::AutoRetry | NodeTrigger::Remediate
            ) {
                node.attempt + 1
            } else {
                node.attempt
            },
            ip_address: change.ip_address,
            actor: change.actor,
            failure_reason: if to == NodeState::Failed {
                change.failure_reason
            } else {
                None
            },
            check_after: None,
            was_retrying: node.state == NodeState::Failed && node.retry_at.is_some(),
            limit: 0,
        })
    }

    /// When the lifecycle worker should next look at the node: for a node in a phase, when it
    /// can first be over (by default: at once); for a node that fails, when it is retried
    /// automatically (by default: never). Ignored for `PENDING` and `RUNNING`.
    pub fn with_check_after(mut self, at: Timestamp) -> Self {
        self.check_after = Some(at);
        self
    }

    /// Records the policy limit the transition applies, for its event: the phase timeout in
    /// seconds of a `PhaseTimedOut`, the `max_retries` of an `AutoRetry`.
    pub fn with_limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// Whether the transition schedules an automatic retry.
    fn schedules_retry(&self) -> bool {
        self.to == NodeState::Failed && self.check_after.is_some()
    }

    /// The node it moves.
    pub fn node_id(&self) -> NodeId {
        self.node
    }

    /// What moves the node.
    pub fn trigger(&self) -> NodeTrigger {
        self.trigger
    }

    /// The state it moves the node to.
    pub fn to(&self) -> NodeState {
        self.to
    }

    /// The node's deployment.
    pub fn deployment(&self) -> DeploymentId {
        self.deployment
    }

    /// Why the node fails, for a transition to `FAILED`.
    pub fn failure_reason(&self) -> Option<&str> {
        self.failure_reason.as_deref()
    }

    /// The audit event that records it.
    fn event(&self, now: Timestamp) -> NewEvent {
        // A retry or a timeout is one event that says both why and what changed.
        let event = match self.trigger {
            NodeTrigger::Retry => {
                NewEvent::node_retry(self.deployment, self.node, &self.name, self.attempt, now)
                    .with_metadata("from_state", self.from.as_str())
                    .with_metadata("to_state", self.to.as_str())
            }
            NodeTrigger::AutoRetry => NewEvent::node_auto_retried(
                self.deployment,
                self.node,
                &self.name,
                self.attempt,
                self.limit,
                now,
            )
            .with_metadata("from_state", self.from.as_str())
            .with_metadata("to_state", self.to.as_str()),
            NodeTrigger::PhaseTimedOut => NewEvent::node_timed_out(
                self.deployment,
                self.node,
                &self.name,
                self.from,
                self.limit,
                self.attempt,
                now,
            ),
            _ => NewEvent::state_change(
                self.deployment,
                self.node,
                &self.name,
                self.from,
                self.to,
                self.attempt,
                now,
            ),
        };
        let event = match &self.failure_reason {
            Some(reason) => event.with_metadata("failure_reason", reason.as_str()),
            None => event,
        };
        let event = event.by(self.actor.as_deref());
        match self.check_after {
            Some(at) if self.schedules_retry() => {
                // As the API writes times: UTC, microseconds, no offset.
                event.with_metadata("retry_at", at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
            }
            _ => event,
        }
    }
}

/// One planned transition as the SQLite statements bind it. `SETS_ADDRESS` picks the statement
/// that also writes `ip_address`: SQLite rewrites every index on a column the statement
/// assigns, even to the same value, so the address (and its unique index) is only assigned by
/// the transitions that bring one.
struct TransitionRow<'a, const SETS_ADDRESS: bool> {
    id: i64,
    version: i64,
    state: &'static str,
    ip_address: Option<&'a str>,
    failure_reason: Option<&'a str>,
    attempt: i32,
    changed_at: i64,
    check_after: Option<i64>,
}

/// The statement-cache key of each of the two statements.
struct SqliteApplyTransitions<const SETS_ADDRESS: bool>;

impl<const SETS_ADDRESS: bool> SqliteRows for TransitionRow<'_, SETS_ADDRESS> {
    const HEAD: &'static str = "WITH v(id, version, state, ip_address, failure_reason, attempt, \
        changed_at, check_after) AS (VALUES ";
    const TAIL: &'static str = if SETS_ADDRESS {
        ") UPDATE nodes SET state = v.state, ip_address = v.ip_address, \
        failure_reason = v.failure_reason, attempt = v.attempt, version = nodes.version + 1, \
        updated_at = v.changed_at, state_changed_at = v.changed_at, check_after = v.check_after \
        FROM v WHERE nodes.id = v.id AND nodes.version = v.version RETURNING nodes.id"
    } else {
        ") UPDATE nodes SET state = v.state, \
        failure_reason = v.failure_reason, attempt = v.attempt, version = nodes.version + 1, \
        updated_at = v.changed_at, state_changed_at = v.changed_at, check_after = v.check_after \
        FROM v WHERE nodes.id = v.id AND nodes.version = v.version RETURNING nodes.id"
    };
    const CHUNK: usize = 2_000;
    type CacheKey = SqliteApplyTransitions<SETS_ADDRESS>;
    type Returning = BigInt;

    fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        bind_values!(out;
            BigInt => &self.id,
            BigInt => &self.version,
            Text => &self.state,
            Nullable<Text> => &self.ip_address,
            Nullable<Text> => &self.failure_reason,
            Integer => &self.attempt,
            BigInt => &self.changed_at,
            Nullable<BigInt> => &self.check_after,
        )
    }
}

impl<'a, const SETS_ADDRESS: bool> TransitionRow<'a, SETS_ADDRESS> {
    fn new(plan: &'a TransitionPlan, now: Timestamp) -> Self {
        TransitionRow {
            id: plan.node.get(),
            version: plan.version,
            state: plan.to.as_str(),
            ip_address: plan.ip_address.as_deref(),
            failure_reason: plan.failure_reason.as_deref(),
            attempt: plan.attempt as i32,
            changed_at: to_micros(now),
            check_after: plan.stored_check_after(now),
        }
    }
}

impl TransitionPlan {
    /// The `check_after` column the transition writes.
    fn stored_check_after(&self, now: Timestamp) -> Option<i64> {
        match self.to {
            NodeState::Provisioning | NodeState::Configuring | NodeState::Decommissioning => {
                Some(to_micros(self.check_after.unwrap_or(now)))
            }
            NodeState::Failed => self.check_after.map(to_micros),
            NodeState::Pending | NodeState::Running => None,
        }
    }
}

#[cfg(feature = "postgres")]
#[derive(QueryableByName)]
struct AppliedId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Applies planned transitions, each only if its node's row still has the version it was
/// planned on, and writes one audit event per applied transition, in one transaction.
/// Returns the nodes moved; a missing node was changed by someone else first (re-read it and
/// decide again) or, on PostgreSQL, is being changed by another worker right now (its row is
/// locked: skipped rather than waited for).
///
/// Set-based: one `UPDATE ... FROM` per chunk of 2,000 on SQLite, one per call on PostgreSQL
/// (with `FOR UPDATE SKIP LOCKED`), and the events in bulk.
pub fn apply_transitions(
    conn: &mut DbConnection,
    plans: &[TransitionPlan],
    now: Timestamp,
) -> Result<Vec<NodeId>> {
    if plans.is_empty() {
        return Ok(Vec::new());
    }
    #[cfg(feature = "postgres")]
    let at = to_micros(now);
    let mut deployments: Vec<DeploymentId> = plans.iter().map(|p| p.deployment).collect();
    deployments.sort_unstable();
    deployments.dedup();
    write_transaction(conn, |conn| {
        // Deployments first, in id order, as every write path (deployment_rows::lock): a tick and
        // a delete of one of its deployments cannot deadlock, and a deleted one is skipped.
        let live = deployment_rows::lock(
            conn,
            &deployments,
            deployment_rows::DeploymentLock::ChangeNodes,
        )?;
        let kept: Vec<TransitionPlan>;
        let plans: &[TransitionPlan] = if live.len() == deployments.len() {
            plans
        } else {
            kept = plans
                .iter()
                .filter(|p| live.contains(&p.deployment))
                .cloned()
                .collect();
            &kept
        };
        let applied: Vec<i64> = match conn {
            #[cfg(feature = "sqlite")]
            DbConnection::Sqlite(inner) => {
                let (with_address, without): (Vec<&TransitionPlan>, Vec<&TransitionPlan>) =
                    plans.iter().partition(|plan| plan.ip_address.is_some());
                let with_address: Vec<TransitionRow<'_, true>> = with_address
                    .into_iter()
                    .map(|p| TransitionRow::new(p, now))
                    .collect();
                let without: Vec<TransitionRow<'_, false>> = without
                    .into_iter()
                    .map(|p| TransitionRow::new(p, now))
                    .collect();
                let mut applied: Vec<i64> = sqlite_bulk::load(inner, &with_address)?;
                applied.extend(sqlite_bulk::load::<_, i64>(inner, &without)?);
                applied
            }
            #[cfg(feature = "postgres")]
            DbConnection::Postgresql(inner) => {
                let ids: Vec<i64> = plans.iter().map(|p| p.node.get()).collect();
                let versions: Vec<i64> = plans.iter().map(|p| p.version).collect();
                let states: Vec<&str> = plans.iter().map(|p| p.to.as_str()).collect();
                let addresses: Vec<Option<&str>> =
                    plans.iter().map(|p| p.ip_address.as_deref()).collect();
                let reasons: Vec<Option<&str>> =
                    plans.iter().map(|p| p.failure_reason.as_deref()).collect();
                let attempts: Vec<i32> = plans.iter().map(|p| p.attempt as i32).collect();
                let check_after: Vec<Option<i64>> =
                    plans.iter().map(|p| p.stored_check_after(now)).collect();
                diesel::sql_query(
                    "WITH v AS (SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $8) \
                       AS v(id, version, state, ip_address, failure_reason, attempt, \
                       check_after)), \
                     claimed AS (SELECT nodes.id FROM nodes JOIN v \
                       ON nodes.id = v.id AND nodes.version = v.version \
                       FOR UPDATE OF nodes SKIP LOCKED) \
                     UPDATE nodes SET state = v.state, \
                       ip_address = COALESCE(v.ip_address, nodes.ip_address), \
                       failure_reason = v.failure_reason, attempt = v.attempt, \
                       version = nodes.version + 1, updated_at = $7, state_changed_at = $7, \
                       check_after = v.check_after \
                     FROM v, claimed \
                     WHERE nodes.id = v.id AND claimed.id = v.id AND nodes.version = v.version \
                     RETURNING nodes.id",
                )
                .bind::<Array<BigInt>, _>(&ids)
                .bind::<Array<BigInt>, _>(&versions)
                .bind::<Array<Text>, _>(&states)
                .bind::<Array<Nullable<Text>>, _>(&addresses)
                .bind::<Array<Nullable<Text>>, _>(&reasons)
                .bind::<Array<Integer>, _>(&attempts)
                .bind::<BigInt, _>(at)
                .bind::<Array<Nullable<BigInt>>, _>(&check_after)
                .load::<AppliedId>(inner)?
                .into_iter()
                .map(|row| row.id)
                .collect()
            }
        };
        let applied: HashSet<i64> = applied.into_iter().collect();
        // Keep each deployment's per-state counters in step, one update per changed counter,
        // in key order so that concurrent ticks lock deployment rows in the same order.
        let mut deltas: BTreeMap<(DeploymentId, NodeState), i64> = BTreeMap::new();
        for plan in plans
            .iter()
            .filter(|plan| applied.contains(&plan.node.get()))
        {
            *deltas.entry((plan.deployment, plan.from)).or_default() -= 1;
            *deltas.entry((plan.deployment, plan.to)).or_default() += 1;
        }
        let mut retrying: BTreeMap<DeploymentId, i64> = BTreeMap::new();
        let mut failing: Vec<DeploymentId> = Vec::new();
        for plan in plans
            .iter()
            .filter(|plan| applied.contains(&plan.node.get()))
        {
            let delta = i64::from(plan.schedules_retry()) - i64::from(plan.was_retrying);
            *retrying.entry(plan.deployment).or_default() += delta;
            if plan.to == NodeState::Failed {
                failing.push(plan.deployment);
            }
        }
        for ((deployment, state), delta) in deltas {
            if delta != 0 {
                deployment_rows::adjust_state_count(conn, deployment, state, delta)?;
            }
        }
        for (deployment, delta) in retrying {
            if delta != 0 {
                deployment_rows::adjust_retrying_count(conn, deployment, delta)?;
            }
        }
        failing.sort_unstable();
        failing.dedup();
        deployments::pause_if_failing(conn, &failing, now)?;
        let events: Vec<NewEvent> = plans
            .iter()
            .filter(|plan| applied.contains(&plan.node.get()))
            .map(|plan| plan.event(now))
            .collect();
        event_log::insert_many(conn, &events)?;
        Ok(plans
            .iter()
            .filter(|plan| applied.contains(&plan.node.get()))
            .map(|plan| plan.node)
            .collect())
    })
}

/// Applies `trigger` to `node` as it was read, if nobody changed it since: a guarded
/// `UPDATE ... WHERE id = ? AND version = ?` and its audit event, in one transaction.
///
/// Returns the updated node, or `None` when the row's version moved on (another worker or an
/// operator got there first; re-read and decide again). An illegal trigger for the node's state
/// is [`StorageError::Domain`] and changes nothing.
pub fn transition(
    conn: &mut DbConnection,
    node: &Node,
    trigger: NodeTrigger,
    change: &NodeChange,
    now: Timestamp,
) -> Result<Option<Node>> {
    let plan = TransitionPlan::new(node, trigger, change.clone())?;
    if apply_transitions(conn, std::slice::from_ref(&plan), now)?.is_empty() {
        return Ok(None);
    }
    let retry_at = plan.schedules_retry().then_some(plan.check_after).flatten();
    Ok(Some(Node {
        state: plan.to,
        attempt: plan.attempt,
        ip_address: plan.ip_address.or_else(|| node.ip_address.clone()),
        failure_reason: plan.failure_reason,
        version: node.version + 1,
        updated_at: now,
        state_changed_at: now,
        retry_at,
        ..node.clone()
    }))
}

/// An operator's retry of a failed node: `FAILED` → `PENDING`, attempt + 1, one `NODE_RETRY`
/// event. Any other state is [`StorageError::Domain`] with the allowed actions.
pub fn retry(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    node: NodeId,
    actor: Option<&str>,
    now: Timestamp,
) -> Result<Node> {
    let change = NodeChange {
        actor: actor.map(str::to_owned),
        ..NodeChange::default()
    };
    // Read and write in one write transaction: on SQLite nobody can move the node in between;
    // on PostgreSQL a concurrent change makes the guarded update miss, and we read again.
    write_transaction(conn, |conn| {
        loop {
            let current = get(conn, deployment, node)?;
            if let Some(updated) = transition(conn, &current, NodeTrigger::Retry, &change, now)? {
                return Ok(updated);
            }
        }
    })
}
