//! The alerts loop's progress per deployment: which slot (an interval of the loop, aligned
//! to the epoch like the telemetry slots) each deployment was last evaluated for, and which
//! worker holds the lease to evaluate it now. A worker claims a deployment ([`claim`]), reads
//! and decides outside any transaction, then applies its decision with [`finish`] in the
//! transaction that writes it: so with any number of workers a slot is applied once, and a
//! worker that dies mid-evaluation only delays the deployment until its lease ends.

use crate::schema::{alert_evaluations, deployments};
use crate::time::to_micros;
use crate::{DbConnection, Result};
use diesel::prelude::*;
use netorch_domain::{DeploymentId, Timestamp};

#[derive(Insertable)]
#[diesel(table_name = alert_evaluations)]
struct NewEvaluationRow {
    deployment_id: i64,
    evaluated_slot: i64,
}

/// The deployments to evaluate for `slot`: those with running nodes or unresolved alerts, not
/// yet evaluated for it; ascending id.
pub fn due(conn: &mut DbConnection, slot: Timestamp) -> Result<Vec<DeploymentId>> {
    let slot = to_micros(slot);
    let mut ids: Vec<i64> = deployments::table
        .left_join(
            alert_evaluations::table.on(alert_evaluations::deployment_id.eq(deployments::id)),
        )
        .filter(
            alert_evaluations::evaluated_slot
                .is_null()
                .or(alert_evaluations::evaluated_slot.lt(slot)),
        )
        .filter(deployments::running_nodes.gt(0))
        .select(deployments::id)
        .load(conn)?;
    for open in super::deployments_with_open(conn)? {
        ids.push(open.get());
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids.into_iter().map(DeploymentId).collect())
}

/// Claims the deployment's evaluation for `slot` as `owner` until `lease_until`: true unless
/// the slot is evaluated already or another worker's lease on it has not ended at `now`.
pub fn claim(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    slot: Timestamp,
    owner: &str,
    lease_until: Timestamp,
    now: Timestamp,
) -> Result<bool> {
    let row = NewEvaluationRow {
        deployment_id: deployment.get(),
        evaluated_slot: i64::MIN,
    };
    on_backend!(conn, |inner| {
        diesel::insert_into(alert_evaluations::table)
            .values(&row)
            .on_conflict_do_nothing()
            .execute(inner)?
    });
    use alert_evaluations::dsl as e;
    let claimed = diesel::update(
        alert_evaluations::table
            .find(deployment.get())
            .filter(e::evaluated_slot.lt(to_micros(slot)))
            .filter(
                e::lease_until
                    .is_null()
                    .or(e::lease_until.lt(to_micros(now))),
            ),
    )
    .set((
        e::lease_owner.eq(Some(owner)),
        e::lease_until.eq(Some(to_micros(lease_until))),
    ))
    .execute(conn)?;
    Ok(claimed == 1)
}

/// Records the deployment as evaluated for `slot` and ends the lease (the caller's
/// transaction, which writes the evaluation's outcome): false, and the caller must write
/// nothing, when the slot was recorded already.
pub fn finish(conn: &mut DbConnection, deployment: DeploymentId, slot: Timestamp) -> Result<bool> {
    use alert_evaluations::dsl as e;
    let done = diesel::update(
        alert_evaluations::table
            .find(deployment.get())
            .filter(e::evaluated_slot.lt(to_micros(slot))),
    )
    .set((
        e::evaluated_slot.eq(to_micros(slot)),
        e::lease_owner.eq(None::<String>),
        e::lease_until.eq(None::<i64>),
    ))
    .execute(conn)?;
    Ok(done == 1)
}
