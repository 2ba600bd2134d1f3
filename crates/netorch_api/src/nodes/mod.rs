//! A deployment's nodes: the listing (with its cache), one node by id or name, and the retry of
//! a failed one.

pub(crate) mod listing_cache;

use crate::ApiState;
use crate::http::auth::Actor;
use crate::http::blocking::{with_db, with_write};
use crate::http::choice;
use crate::http::error::{ApiError, ConflictDetail, ErrorDetail};
use crate::http::input::paths::{DEPLOYMENT_ID, NodePath};
use crate::http::input::{ChoiceField, FromInput, Input, Valid, valid};
use crate::http::paging::Paging;
use crate::http::shapes::{params, timestamp};
use actix_web::{HttpResponse, web};
use chrono::Utc;
use netorch_domain::{DeploymentId, Node, NodeState};
use netorch_service::nodes::{self, NodeFilter, NodePage};
use serde::Serialize;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::{IntoParams, ToSchema};

use crate::http::operation::{Access, Operation, Resource, Verb};
use listing_cache::ListingKey;
use netorch_domain::Action;
use utoipa::OpenApi;

/// The nodes' operations and their part of the document.
pub(crate) const RESOURCE: Resource = Resource::new(
    &[
        Operation::get(
            "/deployments/{deployment_id}/nodes",
            Access::Needs(Action::Read),
            |r| r.to(list_nodes),
        ),
        Operation::get(
            "/deployments/{deployment_id}/nodes/{node_id}",
            Access::Needs(Action::Read),
            |r| r.to(get_node),
        ),
        Operation::write(
            Verb::Post,
            "/deployments/{deployment_id}/nodes/{node_id}/retry",
            Action::Change,
            "written",
            |r| r.to(retry_node),
        ),
    ],
    Doc::openapi,
);

#[derive(OpenApi)]
#[openapi(paths(list_nodes, get_node, retry_node))]
struct Doc;

/// `GET /deployments/{deployment_id}/nodes`.
#[derive(Debug, Clone)]
pub struct ListNodes {
    /// The deployment.
    pub deployment: DeploymentId,
    /// Which nodes.
    pub filter: NodeFilter,
}

impl ListNodes {
    /// Only nodes in this state.
    pub const STATE: ChoiceField<NodeState> = ChoiceField::new("state", "Only nodes in this state");
}

impl FromInput for ListNodes {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let deployment = input.path_int(&DEPLOYMENT_ID);
        let filter = NodeFilter {
            state: input.query_choice(&Self::STATE),
            skip: Paging::skip(input),
            limit: input.query_int(&Paging::LIMIT_OR_ALL),
        };
        input.check()?;
        Ok(ListNodes {
            deployment: DeploymentId(valid(deployment)?),
            filter,
        })
    }
}

params!(
    ListNodes,
    vec![
        DEPLOYMENT_ID.parameter(ParameterIn::Path),
        ListNodes::STATE.parameter(ParameterIn::Query),
        Paging::SKIP.parameter(ParameterIn::Query),
        Paging::LIMIT_OR_ALL.parameter(ParameterIn::Query),
    ]
);

fn node_state_schema() -> utoipa::openapi::schema::Schema {
    choice::schema::<netorch_domain::NodeState>("The node's lifecycle state")
}

/// A node.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeOut {
    /// Numeric id.
    pub id: i64,
    /// Its deployment.
    pub deployment_id: i64,
    /// Its name within the deployment: `node-001`, ...
    pub node_id: String,
    /// The node's lifecycle state.
    #[schema(schema_with = node_state_schema)]
    pub state: &'static str,
    /// `switch-{deployment}-{NNN}`.
    pub hostname: Option<String>,
    /// Assigned when provisioning starts.
    pub ip_address: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// When it entered its state.
    pub state_changed_at: String,
    /// Retries so far (0 at first).
    pub attempt: u32,
    /// Why it failed; null unless `FAILED`.
    pub failure_reason: Option<String>,
    /// When a `FAILED` node is retried by itself (`max_retries`); null otherwise.
    pub retry_at: Option<String>,
    /// How many times self-healing has re-provisioned it.
    pub remediations: u32,
    /// When self-healing last re-provisioned it; null if never.
    pub remediated_at: Option<String>,
}

impl From<Node> for NodeOut {
    fn from(n: Node) -> Self {
        NodeOut {
            id: n.id.get(),
            deployment_id: n.deployment_id.get(),
            node_id: n.name,
            state: n.state.as_str(),
            hostname: n.hostname,
            ip_address: n.ip_address,
            created_at: timestamp(n.created_at),
            updated_at: timestamp(n.updated_at),
            state_changed_at: timestamp(n.state_changed_at),
            attempt: n.attempt,
            failure_reason: n.failure_reason,
            retry_at: n.retry_at.map(timestamp),
            remediations: n.remediations,
            remediated_at: n.remediated_at.map(timestamp),
        }
    }
}

/// A page of nodes.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeList {
    /// The nodes, ascending id.
    pub nodes: Vec<NodeOut>,
    /// How many nodes match the filter over all pages.
    pub total: i64,
}

impl From<NodePage> for NodeList {
    fn from(page: NodePage) -> Self {
        NodeList {
            nodes: page.nodes.into_iter().map(NodeOut::from).collect(),
            total: page.total,
        }
    }
}

/// List a deployment's nodes
///
/// In ascending id order; all of them unless filtered by `state` or paged.
#[utoipa::path(
    get, path = "/deployments/{deployment_id}/nodes", tag = "nodes",
    params(ListNodes),
    responses(
        (status = 200, body = NodeList),
        (status = 404, description = "No such deployment", body = ErrorDetail),
    )
)]
pub async fn list_nodes(
    state: web::Data<ApiState>,
    Valid(ListNodes { deployment, filter }): Valid<ListNodes>,
) -> Result<HttpResponse, ApiError> {
    let listings = state.listings.clone();
    let body = with_db(&state, move |conn| {
        // The bytes built for the same node version are still the answer (listing_cache.rs).
        let key = ListingKey::new(deployment, &filter);
        let version = nodes::version(conn, deployment)?;
        if let Some(body) = listings.get(&key, version) {
            return Ok(body);
        }
        let page = nodes::list(conn, deployment, &filter)?;
        // Serialized on the blocking thread, next to the query, rather than on the async
        // worker that answers every other request.
        let body = web::Bytes::from(
            serde_json::to_vec(&NodeList::from(page))
                .map_err(|e| ApiError::Internal(e.to_string()))?,
        );
        // Kept only if no node changed while it was read: then it is the listing at `version`.
        if nodes::version(conn, deployment)? == version {
            listings.put(key, version, body.clone());
        }
        Ok(body)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// Get a node
///
/// By its numeric id or by its name within the deployment.
#[utoipa::path(
    get, path = "/deployments/{deployment_id}/nodes/{node_id}", tag = "nodes",
    params(NodePath),
    responses(
        (status = 200, body = NodeOut),
        (status = 404, description = "No such deployment or node", body = ErrorDetail),
    )
)]
pub async fn get_node(
    state: web::Data<ApiState>,
    Valid(NodePath { deployment, node }): Valid<NodePath>,
) -> Result<HttpResponse, ApiError> {
    let node = with_db(&state, move |conn| Ok(nodes::get(conn, deployment, &node)?)).await?;
    Ok(HttpResponse::Ok().json(NodeOut::from(node)))
}

/// Retry a failed node
///
/// Sends a `FAILED` node back to `PENDING` for another attempt (`attempt` goes up by one);
/// any other state answers 409 with the actions it allows.
#[utoipa::path(
    post, path = "/deployments/{deployment_id}/nodes/{node_id}/retry", tag = "nodes",
    params(NodePath),
    responses(
        (status = 200, description = "The node, back in PENDING", body = NodeOut),
        (status = 404, description = "No such deployment or node", body = ErrorDetail),
        (status = 409, description = "The node's state does not allow a retry", body = ConflictDetail),
    )
)]
pub async fn retry_node(
    state: web::Data<ApiState>,
    actor: Actor,
    Valid(NodePath { deployment, node }): Valid<NodePath>,
) -> Result<HttpResponse, ApiError> {
    let node = with_write(&state, move |conn| {
        Ok(nodes::retry(
            conn,
            deployment,
            &node,
            Some(&actor.0),
            Utc::now(),
        )?)
    })
    .await?;
    log::info!(
        "node {} of deployment {deployment} retried (attempt {})",
        node.id,
        node.attempt
    );
    Ok(HttpResponse::Ok().json(NodeOut::from(node)))
}
