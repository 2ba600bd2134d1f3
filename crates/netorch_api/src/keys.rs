//! Who the caller is: `/whoami`, the key's name, role and what it may do.

use crate::ApiState;
use crate::http::auth::Actor;
use crate::http::choice;
use crate::http::operation::{Access, Operation, Resource};
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::OpenApi;
use utoipa::ToSchema;

/// The caller's operation and its part of the document.
pub(crate) const RESOURCE: Resource = Resource::new(
    &[Operation::get("/whoami", Access::AnyKey, |r| r.to(whoami))],
    Doc::openapi,
);

#[derive(OpenApi)]
#[openapi(paths(whoami))]
struct Doc;

/// Who the caller is and what they may do: what a client such as the dashboard shows or hides
/// its actions by.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallerOut {
    /// The API key's name, or `anonymous` with auth off.
    pub actor: String,
    /// The key's role (`admin` with auth off: anyone may do anything).
    #[schema(schema_with = role_schema)]
    pub role: &'static str,
    /// Whether the server asks for keys (false: auth is off).
    pub keys_required: bool,
    /// What the role may do.
    pub may: PermissionsOut,
    /// The ids of the deployments the key is limited to (`keys create --deployment`); null:
    /// every deployment. A limited key reaches only requests about those deployments (and
    /// this one).
    pub deployments: Option<Vec<i64>>,
}

/// What a role may do, one flag per kind of request.
#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionsOut {
    /// Every `GET`.
    pub read: bool,
    /// `POST /deployments/{id}/telemetry`.
    pub push_telemetry: bool,
    /// Create, change, pause, resume and retry.
    pub change: bool,
    /// `DELETE /deployments/{id}`.
    pub delete: bool,
    /// Acknowledge alerts and make or expire silences.
    pub respond: bool,
    /// Manage alert receivers and retry failed notifications.
    pub manage_receivers: bool,
}

impl CallerOut {
    /// `actor` with `role`, limited to `deployments` if given, on a server that asks for keys
    /// or not.
    pub fn new(
        actor: String,
        role: netorch_domain::Role,
        deployments: Option<&[netorch_domain::DeploymentId]>,
        keys_required: bool,
    ) -> Self {
        use netorch_domain::Action;
        CallerOut {
            actor,
            role: role.as_str(),
            keys_required,
            deployments: deployments.map(|ids| ids.iter().map(|id| id.get()).collect()),
            may: PermissionsOut {
                read: role.may(Action::Read),
                push_telemetry: role.may(Action::PushTelemetry),
                change: role.may(Action::Change),
                delete: role.may(Action::Delete),
                respond: role.may(Action::Respond),
                manage_receivers: role.may(Action::ManageReceivers),
            },
        }
    }
}

fn role_schema() -> utoipa::openapi::schema::Schema {
    choice::schema::<netorch_domain::Role>("The caller's role")
}

/// Who am I
///
/// The caller's key name and role, what the role may do, and the deployments the key is
/// limited to (with auth off: `anonymous`, `admin`, everything). Any active key may ask,
/// whatever its role.
#[utoipa::path(get, path = "/whoami", tag = "service", responses((status = 200, body = CallerOut)))]
pub async fn whoami(
    state: web::Data<ApiState>,
    actor: Actor,
    req: actix_web::HttpRequest,
) -> HttpResponse {
    use actix_web::HttpMessage;
    // The access check put the role and scope there; where it did not run, auth is off.
    let extensions = req.extensions();
    let role = extensions
        .get::<netorch_domain::Role>()
        .copied()
        .unwrap_or(netorch_domain::Role::Admin);
    let scope = extensions
        .get::<crate::auth::Scope>()
        .and_then(|scope| scope.0.as_deref());
    HttpResponse::Ok().json(CallerOut::new(
        actor.0,
        role,
        scope,
        state.auth() == crate::auth::AuthMode::Keys,
    ))
}
