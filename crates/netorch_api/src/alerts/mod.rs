//! Alerts and silences: their operations, inputs ([`input`]), outputs ([`output`]) and parts
//! of the document; and a deployment's `alert_rules` ([`rules`]). The alerts loop of the
//! workers raises and resolves alerts (`netorch_service::alerts`); here people read them,
//! acknowledge them and silence them.

pub mod input;
pub mod output;
mod receivers;
pub mod rules;
mod silences;

use crate::ApiState;
use crate::http::auth::Actor;
use crate::http::blocking::{with_db, with_write};
use crate::http::error::{ApiError, ErrorDetail};
use crate::http::operation::{Access, Operation, Resource, Verb};
use actix_web::{HttpResponse, web};
use chrono::Utc;
use input::{AlertComment, AlertPath, ListAlerts, ListDeploymentAlerts};
use netorch_domain::Action;
use netorch_service::alerts;
use output::{AlertList, AlertOut};
use utoipa::OpenApi;

pub(crate) use receivers::RESOURCE as RECEIVERS;
pub(crate) use silences::RESOURCE as SILENCES;

/// The alerts' operations and their part of the document.
pub(crate) const RESOURCE: Resource = Resource::new(
    &[
        Operation::get("/alerts", Access::Needs(Action::Read), |r| {
            r.to(list_alerts)
        }),
        Operation::get(
            "/deployments/{deployment_id}/alerts",
            Access::Needs(Action::Read),
            |r| r.to(list_deployment_alerts),
        ),
        Operation::get("/alerts/{alert}", Access::Needs(Action::Read), |r| {
            r.to(get_alert)
        }),
        Operation::write(
            Verb::Post,
            "/alerts/{alert}/ack",
            Action::Respond,
            "written",
            |r| r.to(acknowledge),
        ),
        Operation::write(
            Verb::Post,
            "/alerts/{alert}/unack",
            Action::Respond,
            "written",
            |r| r.to(unacknowledge),
        ),
    ],
    Doc::openapi,
);

#[derive(OpenApi)]
#[openapi(paths(
    list_alerts,
    list_deployment_alerts,
    get_alert,
    acknowledge,
    unacknowledge
))]
struct Doc;

/// A page of alerts as the listing answers it.
/// (`of_deployment`: the listing of a deployment's path, 404 once it is gone; the fleet
/// listing's `deployment_id` reads the history of a deleted one too.)
async fn page(
    state: &ApiState,
    query: ListAlerts,
    of_deployment: bool,
) -> Result<HttpResponse, ApiError> {
    let ListAlerts {
        filter,
        before,
        limit,
    } = query;
    let found = with_db(state, move |conn| {
        if of_deployment && let Some(deployment) = filter.deployment {
            Ok(alerts::list_of(conn, deployment, &filter, before, limit)?)
        } else {
            Ok(alerts::list(conn, &filter, before, limit)?)
        }
    })
    .await?;
    let next_before =
        crate::http::paging::next_before(found.len(), limit, found.last().map(|a| a.id.get()));
    let external = state.external_url.clone();
    Ok(HttpResponse::Ok().json(AlertList {
        alerts: found
            .into_iter()
            .map(|a| AlertOut::new(a, &external))
            .collect(),
        next_before,
    }))
}

/// List alerts
///
/// Every deployment's alerts, newest first, paged with `before`: pending, firing and
/// resolved ones (the history is kept `--keep-alerts-days`), filtered by state, severity,
/// deployment (a deleted one's history too), acknowledgement and silence. A key limited to deployments reads them per
/// deployment (`GET /deployments/{deployment_id}/alerts`).
#[utoipa::path(
    get, path = "/alerts", tag = "alerts",
    params(ListAlerts),
    responses(
        (status = 200, body = AlertList),
    )
)]
pub async fn list_alerts(
    state: web::Data<ApiState>,
    crate::http::input::Valid(query): crate::http::input::Valid<ListAlerts>,
) -> Result<HttpResponse, ApiError> {
    page(&state, query, false).await
}

/// List a deployment's alerts
///
/// As `GET /alerts`, for one deployment.
#[utoipa::path(
    get, path = "/deployments/{deployment_id}/alerts", tag = "alerts",
    params(ListDeploymentAlerts),
    responses(
        (status = 200, body = AlertList),
        (status = 404, description = "No such deployment", body = ErrorDetail),
    )
)]
pub async fn list_deployment_alerts(
    state: web::Data<ApiState>,
    crate::http::input::Valid(ListDeploymentAlerts(query)): crate::http::input::Valid<
        ListDeploymentAlerts,
    >,
) -> Result<HttpResponse, ApiError> {
    page(&state, query, true).await
}

/// Get an alert
///
/// By id, or by fingerprint: the latest alert of that condition (the open one if it fires).
#[utoipa::path(
    get, path = "/alerts/{alert}", tag = "alerts",
    params(AlertPath),
    responses(
        (status = 200, body = AlertOut),
        (status = 404, description = "No such alert", body = ErrorDetail),
    )
)]
pub async fn get_alert(
    state: web::Data<ApiState>,
    crate::http::input::Valid(AlertPath(alert)): crate::http::input::Valid<AlertPath>,
) -> Result<HttpResponse, ApiError> {
    let found = with_db(&state, move |conn| Ok(alerts::get(conn, &alert)?)).await?;
    Ok(HttpResponse::Ok().json(AlertOut::new(found, &state.external_url)))
}

async fn set_acknowledged(
    state: &ApiState,
    actor: Actor,
    AlertComment { alert, comment }: AlertComment,
    acknowledged: bool,
) -> Result<HttpResponse, ApiError> {
    let changed = with_write(state, move |conn| {
        Ok(alerts::acknowledge(
            conn,
            &alert,
            acknowledged,
            &actor.0,
            &comment,
            Utc::now(),
        )?)
    })
    .await?;
    log::info!(
        "alert {} ({}) {} by an operator",
        changed.id,
        changed.fingerprint,
        if acknowledged {
            "acknowledged"
        } else {
            "unacknowledged"
        }
    );
    Ok(HttpResponse::Ok().json(AlertOut::new(changed, &state.external_url)))
}

/// Acknowledge a firing alert
///
/// Records who (the key's name), when and why; the alert stays acknowledged until it
/// resolves (a new firing after that is a new alert). Acknowledging one acknowledged already
/// keeps the first acknowledgement. A pending or resolved alert answers 409.
#[utoipa::path(
    post, path = "/alerts/{alert}/ack", tag = "alerts",
    params(AlertComment),
    request_body = AlertComment,
    responses(
        (status = 200, description = "The alert, acknowledged", body = AlertOut),
        (status = 404, description = "No such alert", body = ErrorDetail),
        (status = 409, description = "The alert is not firing", body = ErrorDetail),
    )
)]
pub async fn acknowledge(
    state: web::Data<ApiState>,
    actor: Actor,
    crate::http::input::Valid(body): crate::http::input::Valid<AlertComment>,
) -> Result<HttpResponse, ApiError> {
    set_acknowledged(&state, actor, body, true).await
}

/// Take an acknowledgement back
///
/// The alert is unacknowledged again (nothing changes for one that was not). A resolved
/// alert answers 409: its history stays as it ended.
#[utoipa::path(
    post, path = "/alerts/{alert}/unack", tag = "alerts",
    params(AlertComment),
    request_body = AlertComment,
    responses(
        (status = 200, description = "The alert, unacknowledged", body = AlertOut),
        (status = 404, description = "No such alert", body = ErrorDetail),
        (status = 409, description = "The alert has resolved", body = ErrorDetail),
    )
)]
pub async fn unacknowledge(
    state: web::Data<ApiState>,
    actor: Actor,
    crate::http::input::Valid(body): crate::http::input::Valid<AlertComment>,
) -> Result<HttpResponse, ApiError> {
    set_acknowledged(&state, actor, body, false).await
}
