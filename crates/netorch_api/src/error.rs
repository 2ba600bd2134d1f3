//! The one place errors become HTTP responses.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use netorch_domain::{DomainError, NodeState, OperatorAction};
use netorch_storage::StorageError;
use serde::Serialize;
use serde_json::{Value, json};

/// One invalid input, in FastAPI's shape: `{"type", "loc", "msg", "input"}` (plus `ctx` for
/// limits).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// A machine-readable kind: `missing`, `int_parsing`, `greater_than_equal`, ...
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Where: `["body", "name"]`, `["query", "limit"]`, `["path", "deployment_id"]`, ...
    #[schema(value_type = Vec<Object>)]
    pub loc: Vec<Value>,
    /// A sentence for humans.
    pub msg: String,
    /// The offending value as received.
    #[schema(value_type = Object)]
    pub input: Value,
    /// The limit that was broken, for range and length errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub ctx: Option<Value>,
}

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404 `{"detail": "Deployment not found"}` and the like.
    #[error("{0}")]
    NotFound(&'static str),
    /// 422 with the list of invalid inputs.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// 409: the node's state does not allow the action.
    #[error("{detail}")]
    Conflict {
        /// What was refused and why.
        detail: String,
        /// The node's state.
        current_state: NodeState,
        /// What the state does allow.
        allowed_actions: Vec<OperatorAction>,
    },
    /// 503: the database does not answer.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// 500: a bug, or a database failure that is not the request's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 422 for one field.
    pub fn invalid(error: FieldError) -> Self {
        ApiError::Invalid(vec![error])
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::DeploymentNotFound => ApiError::NotFound("Deployment not found"),
            StorageError::NodeNotFound => ApiError::NotFound("Node not found"),
            StorageError::Domain(DomainError::IllegalTransition {
                from,
                trigger,
                allowed_actions,
            }) => ApiError::Conflict {
                detail: format!(
                    "cannot {trigger} a node in state {from}; allowed actions: {}",
                    if allowed_actions.is_empty() {
                        "none".to_owned()
                    } else {
                        allowed_actions
                            .iter()
                            .map(|a| a.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
                current_state: from,
                allowed_actions,
            },
            StorageError::Pool(e) => ApiError::Unavailable(e.to_string()),
            StorageError::Connection(e) => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            ApiError::NotFound(detail) => json!({ "detail": detail }),
            // Serialized from the struct, so each error keeps FastAPI's key order.
            ApiError::Invalid(errors) => {
                return HttpResponse::build(self.status_code()).json(
                    crate::types::ValidationError {
                        detail: errors.clone(),
                    },
                );
            }
            ApiError::Conflict {
                detail,
                current_state,
                allowed_actions,
            } => json!({
                "detail": detail,
                "current_state": current_state,
                "allowed_actions": allowed_actions.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            }),
            ApiError::Unavailable(detail) => {
                log::warn!("database unavailable: {detail}");
                json!({ "detail": "Database unavailable" })
            }
            ApiError::Internal(detail) => {
                log::error!("internal error: {detail}");
                json!({ "detail": "Internal server error" })
            }
        };
        HttpResponse::build(self.status_code()).json(body)
    }
}
