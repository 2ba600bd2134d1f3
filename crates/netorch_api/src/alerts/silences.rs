//! Silences: matchers on alert labels that hold matching alerts back from delivery for a time.

use super::input::{ListSilences, SilenceCreate, SilencePath};
use super::output::{SilenceList, SilenceOut};
use crate::ApiState;
use crate::http::auth::Actor;
use crate::http::blocking::{with_db, with_write};
use crate::http::error::{ApiError, ErrorDetail};
use crate::http::input::Valid;
use crate::http::operation::{Access, Operation, Resource, Verb};
use actix_web::{HttpResponse, web};
use chrono::Utc;
use netorch_domain::Action;
use netorch_service::alerts;
use utoipa::OpenApi;

/// The silences' operations and their part of the document.
pub(crate) const RESOURCE: Resource = Resource::new(
    &[
        Operation::get("/silences", Access::Needs(Action::Read), |r| {
            r.to(list_silences)
        }),
        Operation::write(Verb::Post, "/silences", Action::Respond, "written", |r| {
            r.to(create_silence)
        }),
        Operation::get("/silences/{silence_id}", Access::Needs(Action::Read), |r| {
            r.to(get_silence)
        }),
        Operation::write(
            Verb::Delete,
            "/silences/{silence_id}",
            Action::Respond,
            "written",
            |r| r.to(expire_silence),
        ),
    ],
    Doc::openapi,
);

#[derive(OpenApi)]
#[openapi(paths(list_silences, create_silence, get_silence, expire_silence))]
struct Doc;

/// List silences
///
/// Newest first, paged with `before`; expired ones stay listed (as long as alert history).
#[utoipa::path(
    get, path = "/silences", tag = "alerts",
    params(ListSilences),
    responses((status = 200, body = SilenceList))
)]
pub async fn list_silences(
    state: web::Data<ApiState>,
    Valid(query): Valid<ListSilences>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let found = with_db(&state, move |conn| {
        Ok(alerts::list_silences(
            conn,
            query.state,
            query.before,
            query.limit,
            now,
        )?)
    })
    .await?;
    let next_before = crate::http::paging::next_before(
        found.len(),
        query.limit,
        found.last().map(|s| s.id.get()),
    );
    Ok(HttpResponse::Ok().json(SilenceList {
        silences: found.into_iter().map(|s| SilenceOut::new(s, now)).collect(),
        next_before,
    }))
}

/// Silence alerts
///
/// Alerts whose labels satisfy every matcher, from `starts_at` (default now) to `ends_at`,
/// still show (marked `silenced`) but are not delivered. The creator is the caller's key.
/// The alerts it matches are marked at once.
#[utoipa::path(
    post, path = "/silences", tag = "alerts",
    request_body = SilenceCreate,
    responses(
        (status = 201, description = "The silence", body = SilenceOut),
    )
)]
pub async fn create_silence(
    state: web::Data<ApiState>,
    actor: Actor,
    Valid(body): Valid<SilenceCreate>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let new = body.at(&actor.0, now)?;
    let made = with_write(&state, move |conn| {
        Ok(alerts::create_silence(conn, &new, now)?)
    })
    .await?;
    log::info!("silence {} created", made.id);
    Ok(HttpResponse::Created().json(SilenceOut::new(made, now)))
}

/// Get a silence
///
/// With its state now: pending, active or expired.
#[utoipa::path(
    get, path = "/silences/{silence_id}", tag = "alerts",
    params(SilencePath),
    responses(
        (status = 200, body = SilenceOut),
        (status = 404, description = "No such silence", body = ErrorDetail),
    )
)]
pub async fn get_silence(
    state: web::Data<ApiState>,
    Valid(SilencePath(id)): Valid<SilencePath>,
) -> Result<HttpResponse, ApiError> {
    let found = with_db(&state, move |conn| Ok(alerts::get_silence(conn, id)?)).await?;
    Ok(HttpResponse::Ok().json(SilenceOut::new(found, Utc::now())))
}

/// Expire a silence
///
/// Ends it now (one that has not started ends before it starts); it stays listed, expired.
/// Expiring an expired silence changes nothing.
#[utoipa::path(
    delete, path = "/silences/{silence_id}", tag = "alerts",
    params(SilencePath),
    responses(
        (status = 200, description = "The silence, expired", body = SilenceOut),
        (status = 404, description = "No such silence", body = ErrorDetail),
    )
)]
pub async fn expire_silence(
    state: web::Data<ApiState>,
    actor: Actor,
    Valid(SilencePath(id)): Valid<SilencePath>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let expired = with_write(&state, move |conn| {
        Ok(alerts::expire_silence(conn, id, &actor.0, now)?)
    })
    .await?;
    log::info!("silence {id} expired");
    Ok(HttpResponse::Ok().json(SilenceOut::new(expired, now)))
}
