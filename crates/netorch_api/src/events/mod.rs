//! The audit log: its pages here, its live stream in `stream`.

pub(crate) mod stream;

use crate::ApiState;
use crate::http::blocking::with_db;
use crate::http::choice;
use crate::http::error::ApiError;
use crate::http::input::paths::DEPLOYMENT_ID;
use crate::http::input::{
    ChoiceField, FromInput, Input, IntField, NodeRefField, StringField, Valid, valid,
};
use crate::http::operation::{Access, Operation, Resource};
use crate::http::paging::{Paging, page_len};
use crate::http::shapes::{params, timestamp};
use actix_web::{HttpResponse, web};
use netorch_domain::Action;
use netorch_domain::{DeploymentId, Event, EventId, EventType, NodeRef};
use netorch_service::events::{self, EventQuery};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::OpenApi;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::{IntoParams, ToSchema};

/// The audit log's operations and their part of the document.
pub(crate) const RESOURCE: Resource = Resource::new(
    &[
        Operation::get(
            "/deployments/{deployment_id}/events",
            Access::Needs(Action::Read),
            |r| r.to(list_events),
        ),
        Operation::get(
            "/deployments/{deployment_id}/events/stream",
            Access::Needs(Action::Read),
            |r| r.to(stream::stream_events),
        ),
    ],
    Doc::openapi,
);

#[derive(OpenApi)]
#[openapi(paths(list_events, stream::stream_events))]
struct Doc;

/// `GET /deployments/{deployment_id}/events`.
#[derive(Debug, Clone)]
pub struct ReadEvents {
    /// The deployment (also in `query`).
    pub deployment: DeploymentId,
    /// The query, with no node filter yet.
    pub query: EventQuery,
    /// Only this node's events.
    pub node: Option<NodeRef>,
}

impl ReadEvents {
    /// The cursor.
    pub const AFTER: IntField = IntField::new(
        "after",
        "Only events after this id (the previous page's next_after)",
    )
    .min(0);
    /// The event type.
    pub const EVENT_TYPE: ChoiceField<EventType> =
        ChoiceField::new("event_type", "Only events of this type");
    /// The node.
    pub const NODE: NodeRefField = NodeRefField::new(
        "node_id",
        "Only this node's events (its numeric id or its name)",
    );
    /// Who caused them.
    pub const ACTOR: StringField = StringField::new(
        "actor",
        "Only events caused through the API by this actor: an API key's name, or anonymous \
         for requests made with auth off",
        1,
    )
    .max(64);
}

impl FromInput for ReadEvents {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let deployment = input.path_int(&DEPLOYMENT_ID);
        let after = input.query_int(&Self::AFTER).map(EventId);
        let limit = Paging::limit(input);
        let event_type = input.query_choice(&Self::EVENT_TYPE);
        let node = input.query_node(&Self::NODE);
        let actor = input.query_string(&Self::ACTOR);
        input.check()?;
        let deployment = DeploymentId(valid(deployment)?);
        Ok(ReadEvents {
            deployment,
            query: EventQuery {
                deployment: Some(deployment),
                after,
                event_type,
                node: None,
                actor,
                limit,
            },
            node,
        })
    }
}

params!(
    ReadEvents,
    vec![
        DEPLOYMENT_ID.parameter(ParameterIn::Path),
        ReadEvents::AFTER.parameter(ParameterIn::Query),
        Paging::LIMIT.parameter(ParameterIn::Query),
        ReadEvents::EVENT_TYPE.parameter(ParameterIn::Query),
        ReadEvents::NODE.parameter(ParameterIn::Query),
        ReadEvents::ACTOR.parameter(ParameterIn::Query),
    ]
);

/// An audit event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    /// Id, increasing in order of occurrence.
    pub id: i64,
    /// The deployment.
    pub deployment_id: Option<i64>,
    /// The node, for node events.
    pub node_id: Option<i64>,
    /// What happened.
    #[schema(schema_with = event_type_schema)]
    pub event_type: &'static str,
    /// A sentence for humans.
    pub message: String,
    /// Details (`from_state`, `to_state`, `attempt`, ...).
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// When it happened.
    pub created_at: String,
}

impl From<Event> for EventOut {
    fn from(e: Event) -> Self {
        EventOut {
            id: e.id.get(),
            deployment_id: e.deployment_id.map(|d| d.get()),
            node_id: e.node_id.map(|n| n.get()),
            event_type: e.event_type.as_str(),
            message: e.message,
            metadata: e.metadata,
            created_at: timestamp(e.created_at),
        }
    }
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    /// Events in order of occurrence.
    pub events: Vec<EventOut>,
    /// Pass as `after` for the next page; null when this page was the last. A page ends at
    /// `limit` events or at 1 MiB of JSON, whichever comes first.
    pub next_after: Option<i64>,
}

fn event_type_schema() -> utoipa::openapi::schema::Schema {
    choice::schema::<netorch_domain::EventType>("What happened")
}

/// Read the audit log
///
/// The deployment's events in order of occurrence, paged with `after`. The events of a deleted
/// deployment stay readable here (its `DEPLOYMENT_DELETED` event last): the audit log outlives
/// what it records, so this path answers 200, never 404.
#[utoipa::path(
    get, path = "/deployments/{deployment_id}/events", tag = "events",
    params(ReadEvents),
    responses(
        (status = 200, description = "A page of events; empty for an id that never existed", body = EventList),
    )
)]
pub async fn list_events(
    state: web::Data<ApiState>,
    Valid(ReadEvents {
        deployment,
        query,
        node,
    }): Valid<ReadEvents>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit;
    let page = with_db(&state, move |conn| {
        // A name is looked up among the deployment's nodes; once it is deleted, only ids find
        // its nodes' events.
        Ok(events::list(conn, deployment, query, node.as_ref())?)
    })
    .await?;
    let read = page.len();
    let mut events: Vec<EventOut> = page.into_iter().map(EventOut::from).collect();
    events.truncate(page_len(&events));
    // More may follow when the page came full, or was cut short by its size.
    let next_after = (read as i64 == limit || events.len() < read)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    Ok(HttpResponse::Ok().json(EventList { events, next_after }))
}
