//! Where alerts are told: receivers (admins manage them; their secrets are never shown), and
//! the notifications of the outbox (read by anyone who reads; an admin retries a failed one).

use crate::ApiState;
use crate::http::blocking::{with_db, with_write};
use crate::http::choice;
use crate::http::error::{ApiError, ErrorDetail, FieldError, LocItem};
use crate::http::input::{
    ChoiceField, FromInput, Input, IntField, KnownFields, StringField, Valid, forbid_unknown,
    required, valid,
};
use crate::http::operation::{Access, Operation, Resource, Verb};
use crate::http::paging::Paging;
use crate::http::shapes::{named_schema, params, timestamp};
use actix_web::{HttpResponse, web};
use chrono::Utc;
use netorch_domain::alert::{
    NewReceiver, Notification, NotificationState, PAGERDUTY_EVENTS_URL, Receiver, ReceiverKind,
};
use netorch_domain::{Action, NotificationId, ReceiverId};
use netorch_service::alerts;
use serde::Serialize;
use std::borrow::Cow;
use utoipa::openapi::RefOr;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema};
use utoipa::{IntoParams, OpenApi, PartialSchema, ToSchema};

/// The receivers' and notifications' operations and their part of the document.
pub(crate) const RESOURCE: Resource = Resource::new(
    &[
        Operation::get("/receivers", Access::Needs(Action::ManageReceivers), |r| {
            r.to(list_receivers)
        }),
        Operation::write(
            Verb::Post,
            "/receivers",
            Action::ManageReceivers,
            "written",
            |r| r.to(create_receiver),
        ),
        Operation::get(
            "/receivers/{receiver_id}",
            Access::Needs(Action::ManageReceivers),
            |r| r.to(get_receiver),
        ),
        Operation::write(
            Verb::Delete,
            "/receivers/{receiver_id}",
            Action::ManageReceivers,
            "deleted",
            |r| r.to(delete_receiver),
        ),
        Operation::get("/notifications", Access::Needs(Action::Read), |r| {
            r.to(list_notifications)
        }),
        Operation::write(
            Verb::Post,
            "/notifications/{notification_id}/retry",
            Action::ManageReceivers,
            "written",
            |r| r.to(retry_notification),
        ),
    ],
    Doc::openapi,
);

#[derive(OpenApi)]
#[openapi(paths(
    list_receivers,
    create_receiver,
    get_receiver,
    delete_receiver,
    list_notifications,
    retry_notification
))]
struct Doc;

fn receiver_kind_schema() -> Schema {
    choice::schema::<ReceiverKind>("`alertmanager`, `webhook` or `pagerduty`")
}

fn notification_state_schema() -> Schema {
    choice::schema::<NotificationState>("`pending`, `delivered` or `failed`")
}

fn notification_action_schema() -> Schema {
    choice::schema::<netorch_domain::alert::NotificationAction>(
        "`firing`, `resolved` or `acknowledged` (PagerDuty only)",
    )
}

/// A receiver, its secret never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiverOut {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// What it is.
    #[schema(schema_with = receiver_kind_schema)]
    pub kind: &'static str,
    /// Alertmanager's base URL, the webhook's URL, or PagerDuty's events endpoint.
    pub url: String,
    /// Whether it has a secret (the webhook's signing key, PagerDuty's routing key); the
    /// secret itself is write-only.
    pub has_secret: bool,
    /// When it was made.
    pub created_at: String,
}

impl From<Receiver> for ReceiverOut {
    fn from(r: Receiver) -> Self {
        ReceiverOut {
            id: r.id.get(),
            name: r.name,
            kind: r.kind.as_str(),
            url: r.url,
            has_secret: r.secret.is_some(),
            created_at: timestamp(r.created_at),
        }
    }
}

/// Every receiver.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiverList {
    /// By id.
    pub receivers: Vec<ReceiverOut>,
}

/// A notification of the outbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationOut {
    /// Id, in the order of the changes.
    pub id: i64,
    /// The receiver.
    pub receiver_id: i64,
    /// The alert.
    pub alert_id: i64,
    /// The alert's fingerprint (PagerDuty's `dedup_key`).
    pub fingerprint: String,
    /// What it tells.
    #[schema(schema_with = notification_action_schema)]
    pub action: &'static str,
    /// Where it is.
    #[schema(schema_with = notification_state_schema)]
    pub state: &'static str,
    /// Attempts so far.
    pub attempts: u32,
    /// When it is tried next (pending ones).
    pub next_attempt_at: String,
    /// What the last attempt met.
    pub last_error: Option<String>,
    /// When it was queued (the change, or an admin's retry).
    pub created_at: String,
    /// When the receiver took it.
    pub delivered_at: Option<String>,
}

impl From<Notification> for NotificationOut {
    fn from(n: Notification) -> Self {
        NotificationOut {
            id: n.id.get(),
            receiver_id: n.receiver_id.get(),
            alert_id: n.alert_id.get(),
            fingerprint: n.fingerprint,
            action: n.action.as_str(),
            state: n.state.as_str(),
            attempts: n.attempts,
            next_attempt_at: timestamp(n.next_attempt_at),
            last_error: n.last_error,
            created_at: timestamp(n.created_at),
            delivered_at: n.delivered_at.map(timestamp),
        }
    }
}

/// A page of notifications.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationList {
    /// Newest first.
    pub notifications: Vec<NotificationOut>,
    /// Pass as `before` for the next page; null when this page was the last.
    pub next_before: Option<i64>,
}

/// The body of `POST /receivers`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverCreate(pub NewReceiver);

impl ReceiverCreate {
    /// The name.
    pub const NAME: StringField =
        StringField::new("name", "Unique: letters, digits, `.`, `_`, `-`", 1)
            .max(netorch_domain::alert::RECEIVER_NAME_MAX);
    /// The pattern of a name.
    pub const NAME_PATTERN: &'static str = "^[A-Za-z0-9._-]+$";
    /// The kind.
    pub const KIND: ChoiceField<ReceiverKind> = ChoiceField::new(
        "kind",
        "`alertmanager` (POST {url}/api/v2/alerts), `webhook` (POST {url}, Alertmanager's \
         webhook payload, signed) or `pagerduty` (Events API v2)",
    );
    /// The URL.
    pub const URL: StringField = StringField::new(
        "url",
        "http:// or https://: Alertmanager's base URL, the webhook's URL, or PagerDuty's \
         events endpoint (default https://events.pagerduty.com/v2/enqueue for pagerduty)",
        1,
    )
    .max(2048);
    /// The secret.
    pub const SECRET: StringField = StringField::new(
        "secret",
        "Write-only: the webhook's signing key, PagerDuty's routing key (both required)",
        1,
    )
    .max(512);

    fn body_schema() -> Schema {
        ObjectBuilder::new()
            .property(
                "name",
                Self::NAME.schema().pattern(Some(Self::NAME_PATTERN)),
            )
            .required("name")
            .property("kind", Self::KIND.schema())
            .required("kind")
            .property(
                "url",
                Self::URL
                    .schema()
                    .pattern(Some(netorch_domain::alert::HTTP_URL_PATTERN)),
            )
            .property("secret", Self::SECRET.schema())
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .examples([serde_json::json!({
                "name": "ops-webhook", "kind": "webhook",
                "url": "https://hooks.example.com/netorch", "secret": "s3cr3t"
            })])
            .into()
    }
}

static RECEIVER_FIELDS: KnownFields = KnownFields::of(ReceiverCreate::body_schema);

impl FromInput for ReceiverCreate {
    const READS_BODY: bool = true;

    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let object = input.body_object()?;
        let errors = &mut input.errors;
        let body = [LocItem::from("body")];
        forbid_unknown(errors, &object, &body, &RECEIVER_FIELDS);
        let name = required(errors, &object, &body, "name")
            .and_then(|v| Self::NAME.read(errors, &body, v));
        let kind = required(errors, &object, &body, "kind")
            .and_then(|v| Self::KIND.read_value(errors, &body, v));
        let url = object.get("url").map(|v| Self::URL.read(errors, &body, v));
        let secret = object
            .get("secret")
            .map(|v| Self::SECRET.read(errors, &body, v));
        input.check()?;
        let (name, kind) = (valid(name)?, valid(kind)?);
        if let Err(why) = netorch_domain::alert::check_receiver_name(&name) {
            return Err(invalid("name", &why, &name));
        }
        let url = match (url, kind) {
            (Some(url), _) => valid(url)?,
            (None, ReceiverKind::PagerDuty) => PAGERDUTY_EVENTS_URL.to_owned(),
            (None, _) => {
                return Err(ApiError::invalid(FieldError::new(
                    "missing",
                    [LocItem::from("body"), LocItem::from("url")],
                    "Field required",
                    serde_json::Value::Object(object.clone()),
                )));
            }
        };
        let new = NewReceiver {
            name,
            kind,
            url,
            secret: secret.map(valid).transpose()?,
        };
        if let Err(e) = new.check() {
            let field = if netorch_domain::alert::check_http_url(&new.url).is_ok() {
                "secret"
            } else {
                "url"
            };
            return Err(invalid(field, &e.to_string(), ""));
        }
        Ok(ReceiverCreate(new))
    }
}

fn invalid(field: &'static str, why: &str, input: &str) -> ApiError {
    ApiError::invalid(FieldError::new(
        "value_error",
        [LocItem::from("body"), LocItem::Name(Cow::Borrowed(field))],
        format!("Value error, {why}"),
        input,
    ))
}

named_schema!(
    ReceiverCreate,
    "ReceiverCreate",
    ReceiverCreate::body_schema()
);

/// The receiver in a path.
pub const RECEIVER_ID: IntField = IntField::new("receiver_id", "Receiver id").min(1);

/// `GET` and `DELETE /receivers/{receiver_id}`.
#[derive(Debug, Clone, Copy)]
pub struct ReceiverPath(pub ReceiverId);

impl FromInput for ReceiverPath {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let id = input.path_int(&RECEIVER_ID);
        input.check()?;
        Ok(ReceiverPath(ReceiverId(valid(id)?)))
    }
}

params!(ReceiverPath, vec![RECEIVER_ID.parameter(ParameterIn::Path)]);

/// The notification in a path.
pub const NOTIFICATION_ID: IntField = IntField::new("notification_id", "Notification id").min(1);

/// `POST /notifications/{notification_id}/retry`.
#[derive(Debug, Clone, Copy)]
pub struct NotificationPath(pub NotificationId);

impl FromInput for NotificationPath {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let id = input.path_int(&NOTIFICATION_ID);
        input.check()?;
        Ok(NotificationPath(NotificationId(valid(id)?)))
    }
}

params!(
    NotificationPath,
    vec![NOTIFICATION_ID.parameter(ParameterIn::Path)]
);

/// `GET /notifications`.
#[derive(Debug, Clone, Copy)]
pub struct ListNotifications {
    /// Only in this state.
    pub state: Option<NotificationState>,
    /// The cursor.
    pub before: Option<NotificationId>,
    /// At most this many.
    pub limit: i64,
}

impl ListNotifications {
    /// The state.
    pub const STATE: ChoiceField<NotificationState> =
        ChoiceField::new("state", "Only notifications in this state");
    /// The cursor.
    pub const BEFORE: IntField = IntField::new(
        "before",
        "Only notifications with a smaller id (the previous page's next_before)",
    )
    .min(1);
}

impl FromInput for ListNotifications {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let state = input.query_choice(&Self::STATE);
        let before = input.query_int(&Self::BEFORE).map(NotificationId);
        let limit = Paging::limit(input);
        input.check()?;
        Ok(ListNotifications {
            state,
            before,
            limit,
        })
    }
}

params!(
    ListNotifications,
    vec![
        ListNotifications::STATE.parameter(ParameterIn::Query),
        ListNotifications::BEFORE.parameter(ParameterIn::Query),
        Paging::LIMIT.parameter(ParameterIn::Query),
    ]
);

/// List receivers
///
/// Every receiver, by id; secrets are never shown (`has_secret`). Admins only.
#[utoipa::path(
    get, path = "/receivers", tag = "alerts",
    responses((status = 200, body = ReceiverList))
)]
pub async fn list_receivers(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let all = with_db(&state, |conn| Ok(alerts::list_receivers(conn)?)).await?;
    Ok(HttpResponse::Ok().json(ReceiverList {
        receivers: all.into_iter().map(ReceiverOut::from).collect(),
    }))
}

/// Add a receiver
///
/// Every server and worker sends to it from then on: alerts that fire (and their resolves, and
/// for PagerDuty their acknowledgements) while it exists. Admins only.
#[utoipa::path(
    post, path = "/receivers", tag = "alerts",
    request_body = ReceiverCreate,
    responses(
        (status = 201, description = "The receiver", body = ReceiverOut),
        (status = 409, description = "A receiver of that name exists", body = ErrorDetail),
    )
)]
pub async fn create_receiver(
    state: web::Data<ApiState>,
    Valid(ReceiverCreate(new)): Valid<ReceiverCreate>,
) -> Result<HttpResponse, ApiError> {
    let made = with_write(&state, move |conn| {
        Ok(alerts::create_receiver(conn, &new, Utc::now())?)
    })
    .await?;
    // The name and kind only: never the secret, nor the URL (it may hold a token).
    log::info!("receiver {} ({}) added", made.name, made.kind.as_str());
    Ok(HttpResponse::Created().json(ReceiverOut::from(made)))
}

/// Get a receiver
///
/// Its secret is never shown. Admins only.
#[utoipa::path(
    get, path = "/receivers/{receiver_id}", tag = "alerts",
    params(ReceiverPath),
    responses(
        (status = 200, body = ReceiverOut),
        (status = 404, description = "No such receiver", body = ErrorDetail),
    )
)]
pub async fn get_receiver(
    state: web::Data<ApiState>,
    Valid(ReceiverPath(id)): Valid<ReceiverPath>,
) -> Result<HttpResponse, ApiError> {
    let found = with_db(&state, move |conn| Ok(alerts::get_receiver(conn, id)?)).await?;
    Ok(HttpResponse::Ok().json(ReceiverOut::from(found)))
}

/// Delete a receiver
///
/// With its notifications, delivered or not. Admins only.
#[utoipa::path(
    delete, path = "/receivers/{receiver_id}", tag = "alerts",
    params(ReceiverPath),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such receiver", body = ErrorDetail),
    )
)]
pub async fn delete_receiver(
    state: web::Data<ApiState>,
    Valid(ReceiverPath(id)): Valid<ReceiverPath>,
) -> Result<HttpResponse, ApiError> {
    with_write(&state, move |conn| Ok(alerts::delete_receiver(conn, id)?)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List notifications
///
/// The outbox, newest first, paged with `before`: what was told to which receiver, with its
/// attempts and last error; `state=failed` shows what never arrived.
#[utoipa::path(
    get, path = "/notifications", tag = "alerts",
    params(ListNotifications),
    responses((status = 200, body = NotificationList))
)]
pub async fn list_notifications(
    state: web::Data<ApiState>,
    Valid(query): Valid<ListNotifications>,
) -> Result<HttpResponse, ApiError> {
    let found = with_db(&state, move |conn| {
        Ok(alerts::list_notifications(
            conn,
            query.state,
            query.before,
            query.limit,
        )?)
    })
    .await?;
    let next_before = crate::http::paging::next_before(
        found.len(),
        query.limit,
        found.last().map(|n| n.id.get()),
    );
    Ok(HttpResponse::Ok().json(NotificationList {
        notifications: found.into_iter().map(NotificationOut::from).collect(),
        next_before,
    }))
}

/// Retry a failed notification
///
/// Pending again from now, with its attempts counted anew and a new maximum age; one that is
/// not failed is left as it is. Admins only.
#[utoipa::path(
    post, path = "/notifications/{notification_id}/retry", tag = "alerts",
    params(NotificationPath),
    responses(
        (status = 200, description = "The notification", body = NotificationOut),
        (status = 404, description = "No such notification", body = ErrorDetail),
    )
)]
pub async fn retry_notification(
    state: web::Data<ApiState>,
    Valid(NotificationPath(id)): Valid<NotificationPath>,
) -> Result<HttpResponse, ApiError> {
    let again = with_write(&state, move |conn| {
        Ok(alerts::retry_notification(conn, id, Utc::now())?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(NotificationOut::from(again)))
}
