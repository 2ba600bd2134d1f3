//! The path parameters every per-deployment operation shares: the deployment, and the node
//! by id or name.

use crate::http::error::ApiError;
use crate::http::input::{FromInput, Input, IntField, NodeRefField, valid};
use crate::http::shapes::params;
use netorch_domain::{DeploymentId, NodeRef};
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterIn};

/// The deployment's id in every per-deployment path.
pub const DEPLOYMENT_ID: IntField = IntField::new("deployment_id", "Deployment id");

/// The node in a node's path: its numeric `id`, or its name (`node_id` in its JSON).
pub const NODE_ID: NodeRefField = NodeRefField::new(
    "node_id",
    "The node: its numeric `id`, or its name within the deployment (`node-001`, the \
     `node_id` of its JSON)",
);

/// The path of one deployment: `GET` and `DELETE /deployments/{deployment_id}`.
#[derive(Debug, Clone, Copy)]
pub struct DeploymentPath {
    /// The deployment.
    pub deployment: DeploymentId,
}

impl FromInput for DeploymentPath {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let deployment = input.path_int(&DEPLOYMENT_ID);
        input.check()?;
        Ok(DeploymentPath {
            deployment: DeploymentId(valid(deployment)?),
        })
    }
}

params!(
    DeploymentPath,
    vec![DEPLOYMENT_ID.parameter(ParameterIn::Path)]
);

/// The path of one node: `GET .../nodes/{node_id}` and `POST .../nodes/{node_id}/retry`.
#[derive(Debug, Clone)]
pub struct NodePath {
    /// The deployment.
    pub deployment: DeploymentId,
    /// The node, by id or name.
    pub node: NodeRef,
}

impl FromInput for NodePath {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let deployment = input.path_int(&DEPLOYMENT_ID);
        let node = input.path_node(&NODE_ID);
        input.check()?;
        Ok(NodePath {
            deployment: DeploymentId(valid(deployment)?),
            node: valid(node)?,
        })
    }
}

params!(
    NodePath,
    vec![
        DEPLOYMENT_ID.parameter(ParameterIn::Path),
        NODE_ID.parameter(ParameterIn::Path),
    ]
);
