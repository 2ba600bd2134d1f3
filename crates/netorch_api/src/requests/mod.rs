//! One type per operation's input: it reads itself from the request ([`FromInput`]) and is
//! what the OpenAPI document shows (`IntoParams`, `ToSchema`), both from the same field
//! specifications, so the document states exactly the limits the server enforces.

use crate::error::{ApiError, FieldError, LocItem};
use crate::input::{
    ChoiceField, Errors, FloatField, FromInput, Input, IntField, KnownFields, NodeRefField,
    StringField, TimeField, forbid_unknown, required, valid,
};
use crate::paging::Paging;
use chrono::{DateTime, Utc};
use netorch_analytics::{AnalysisConfig, Method};
use netorch_domain::{
    DeploymentChanges, DeploymentId, EventId, EventType, Metrics, NewDeployment, NewSample, NodeId,
    NodeRef, NodeState, RolloutPolicy, Timestamp,
};
use netorch_service::series::{SeriesQuery, SeriesStep};
use netorch_storage::events::EventQuery;
use netorch_storage::nodes::NodeFilter;
use netorch_storage::telemetry::TelemetryQuery;
use serde_json::Value;
use std::borrow::Cow;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, ObjectBuilder, Schema, Type,
};
use utoipa::openapi::{RefOr, schema::KnownFormat, schema::SchemaFormat};
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// The deployment's id in every per-deployment path.
pub const DEPLOYMENT_ID: IntField = IntField::new("deployment_id", "Deployment id");
/// The node in a node's path: its numeric `id`, or its name (`node_id` in its JSON).
pub const NODE_ID: NodeRefField = NodeRefField::new(
    "node_id",
    "The node: its numeric `id`, or its name within the deployment (`node-001`, the \
     `node_id` of its JSON)",
);

/// The largest `target_node_count` a server takes unless configured otherwise (the original's).
pub const DEFAULT_MAX_NODES_PER_DEPLOYMENT: u32 = 1000;

/// Implements `IntoParams` from a list of parameters.
macro_rules! params {
    ($ty:ty, $params:expr) => {
        impl IntoParams for $ty {
            fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
                $params
            }
        }
    };
}

/// Implements `ToSchema` under `$name`, with the named schemas it refers to.
macro_rules! named_schema {
    ($ty:ty, $name:literal, $schema:expr $(, refers to $dep:ty)?) => {
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                RefOr::T($schema)
            }
        }
        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
            $(
            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                schemas.push((<$dep as ToSchema>::name().into_owned(), <$dep as PartialSchema>::schema()));
            }
            )?
        }
    };
}

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

/// `GET /deployments`.
#[derive(Debug, Clone, Copy)]
pub struct ListDeployments {
    /// Deployments to skip, newest first.
    pub skip: i64,
    /// At most this many.
    pub limit: i64,
}

impl FromInput for ListDeployments {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        Ok(ListDeployments {
            skip: Paging::skip(input),
            limit: Paging::limit(input),
        })
    }
}

params!(
    ListDeployments,
    vec![
        Paging::SKIP.parameter(ParameterIn::Query),
        Paging::LIMIT.parameter(ParameterIn::Query),
    ]
);

/// The rollout settings of a deployment (docs/API.md, "Rollout control"), as the create body
/// and `PATCH` read them and the document shows them: the same fields, with the same limits.
pub struct RolloutFields;

impl RolloutFields {
    /// `max_in_flight`.
    pub const MAX_IN_FLIGHT: IntField = IntField::new(
        "max_in_flight",
        "At most this many nodes in PROVISIONING or CONFIGURING at once; the rest wait in \
         PENDING (null: no limit)",
    )
    .min(1)
    .max(i32::MAX as i64);
    /// `max_failure_percent`.
    pub const MAX_FAILURE_PERCENT: FloatField = FloatField::non_negative(
        "max_failure_percent",
        "Pause the rollout once more than this percentage of the finished nodes has failed, \
         judged from 10 finished nodes on (or all nodes of a smaller deployment); null: never",
    )
    .max(100.0);
    /// `max_retries`.
    pub const MAX_RETRIES: IntField = IntField::new(
        "max_retries",
        "How many times a FAILED node goes back to PENDING by itself, after 10 s, 20 s, 40 s, \
         ... (at most 10 min); operator retries count against it",
    )
    .min(0)
    .max(100)
    .default(0);
    /// `phase_timeout_seconds`.
    pub const PHASE_TIMEOUT_SECONDS: IntField = IntField::new(
        "phase_timeout_seconds",
        "A node that has not finished PROVISIONING or CONFIGURING after this many seconds \
         fails (null: no limit)",
    )
    .min(1)
    .max(604_800);

    /// Reads those of the fields `object` holds into `changes` (`null` unsets a limit).
    fn read(
        errors: &mut Errors,
        object: &serde_json::Map<String, Value>,
        body: &[LocItem],
        changes: &mut DeploymentChanges,
    ) {
        let mut optional_int = |field: &IntField| -> Option<Option<u32>> {
            match object.get(field.name)? {
                Value::Null => Some(None),
                value => field
                    .read(errors, body, value)
                    .and_then(|v| u32::try_from(v).ok())
                    .map(Some),
            }
        };
        changes.max_in_flight = optional_int(&Self::MAX_IN_FLIGHT);
        changes.phase_timeout_seconds = optional_int(&Self::PHASE_TIMEOUT_SECONDS);
        changes.max_failure_percent = match object.get(Self::MAX_FAILURE_PERCENT.name) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(value) => Self::MAX_FAILURE_PERCENT
                .read(errors, body, value)
                .map(Some),
        };
        changes.max_retries = object.get(Self::MAX_RETRIES.name).and_then(|value| {
            Self::MAX_RETRIES
                .read(errors, body, value)
                .and_then(|v| u32::try_from(v).ok())
        });
    }

    /// The fields' properties, added to a body's schema.
    fn properties(builder: ObjectBuilder) -> ObjectBuilder {
        builder
            .property("max_in_flight", nullable(Self::MAX_IN_FLIGHT.schema()))
            .property(
                "max_failure_percent",
                nullable(Self::MAX_FAILURE_PERCENT.schema()),
            )
            .property("max_retries", Self::MAX_RETRIES.schema())
            .property(
                "phase_timeout_seconds",
                nullable(Self::PHASE_TIMEOUT_SECONDS.schema()),
            )
    }
}

/// `schema` that also admits `null`.
fn nullable(schema: Schema) -> Schema {
    use utoipa::openapi::schema::SchemaType;
    match schema {
        Schema::Object(mut object) => {
            if let SchemaType::Type(kind) = object.schema_type {
                object.schema_type = SchemaType::from_iter([kind, Type::Null]);
            }
            Schema::Object(object)
        }
        other => other,
    }
}

/// Reads the optional fields the create body and `PATCH` share, those `object` holds, into
/// `changes`: the description (`null` for none) and the rollout settings.
fn read_shared_fields(
    errors: &mut Errors,
    object: &serde_json::Map<String, Value>,
    body: &[LocItem],
    changes: &mut DeploymentChanges,
) {
    changes.description = match object.get("description") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => DeploymentCreate::DESCRIPTION
            .read(errors, body, v)
            .map(Some),
    };
    RolloutFields::read(errors, object, body, changes);
}

/// The schemas of those fields, added to a body's.
fn shared_properties(builder: ObjectBuilder) -> ObjectBuilder {
    let description = DeploymentCreate::DESCRIPTION.schema().schema_type(
        utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null]),
    );
    RolloutFields::properties(builder.property("description", description))
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

/// The fields each body takes: those its schema names.
static CREATE_FIELDS: KnownFields =
    KnownFields::of(|| DeploymentCreate::schema_for(DEFAULT_MAX_NODES_PER_DEPLOYMENT));
static PATCH_FIELDS: KnownFields =
    KnownFields::of(|| DeploymentPatch::schema_for(DEFAULT_MAX_NODES_PER_DEPLOYMENT));

/// The body of `POST /deployments`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentCreate(pub NewDeployment);

impl DeploymentCreate {
    /// The deployment's name.
    pub const NAME: StringField = StringField::new(
        "name",
        "1 to 255 characters, none of them a control, bidirectional or invisible character",
        1,
    )
    .max(255)
    .plain();
    /// Its description.
    pub const DESCRIPTION: StringField = StringField::new(
        "description",
        "Free text, at most 4,096 characters (any but NUL; the dashboard shows control, \
         bidirectional and invisible characters as their code points)",
        0,
    )
    .max(Self::DESCRIPTION_MAX_CHARS);
    /// The longest description: a few KiB say what a deployment is for; every answer that
    /// shows the deployment copies it.
    pub const DESCRIPTION_MAX_CHARS: usize = 4096;
    /// How many nodes to create; the maximum is the server's.
    pub const TARGET_NODE_COUNT: IntField = IntField::new(
        "target_node_count",
        "How many nodes to create, all at once, in PENDING (at most the server's \
         --max-nodes-per-deployment)",
    )
    .min(1);

    fn target_node_count(max: u32) -> IntField {
        Self::TARGET_NODE_COUNT.max(i64::from(max))
    }

    /// The body's schema for a server that takes at most `max_nodes` nodes a deployment.
    pub fn schema_for(max_nodes: u32) -> Schema {
        let builder = ObjectBuilder::new()
            .property("name", Self::NAME.schema())
            .required("name")
            .property(
                "target_node_count",
                Self::target_node_count(max_nodes).schema(),
            )
            .required("target_node_count");
        shared_properties(builder)
            .examples([serde_json::json!({
                "name": "edge-east",
                "description": "rack 4",
                "target_node_count": max_nodes.min(40),
            })])
            .into()
    }
}

impl FromInput for DeploymentCreate {
    const READS_BODY: bool = true;

    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let max = input.state().map_or(DEFAULT_MAX_NODES_PER_DEPLOYMENT, |s| {
            s.max_nodes_per_deployment
        });
        let object = input.body_object()?;
        let errors = &mut input.errors;
        let body = [LocItem::from("body")];
        forbid_unknown(errors, &object, &body, &CREATE_FIELDS);
        let name = required(errors, &object, &body, "name")
            .and_then(|v| Self::NAME.read(errors, &body, v));
        let count = required(errors, &object, &body, "target_node_count")
            .and_then(|v| Self::target_node_count(max).read(errors, &body, v));
        let mut shared = DeploymentChanges::default();
        read_shared_fields(errors, &object, &body, &mut shared);
        input.check()?;
        Ok(DeploymentCreate(NewDeployment {
            name: valid(name)?,
            target_node_count: u32::try_from(valid(count)?)
                .map_err(|e| ApiError::Internal(e.to_string()))?,
            rollout: shared.applied_to_policy(RolloutPolicy::default()),
            description: shared.description.flatten(),
        }))
    }
}

named_schema!(
    DeploymentCreate,
    "DeploymentCreate",
    DeploymentCreate::schema_for(DEFAULT_MAX_NODES_PER_DEPLOYMENT)
);

/// `PATCH /deployments/{deployment_id}`: the path and the changes. Every field is optional;
/// an absent field is kept, `null` unsets a limit or the description.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentPatch {
    /// The deployment.
    pub deployment: DeploymentId,
    /// What to change.
    pub changes: DeploymentChanges,
}

impl DeploymentPatch {
    /// The new node count.
    pub const TARGET_NODE_COUNT: IntField = IntField::new(
        "target_node_count",
        "Scale to this many nodes: new ones are added in PENDING, numbered on; the newest \
         are decommissioned (at most the server's --max-nodes-per-deployment)",
    )
    .min(1);

    /// The body's schema for a server that takes at most `max_nodes` nodes a deployment.
    pub fn schema_for(max_nodes: u32) -> Schema {
        let builder = ObjectBuilder::new()
            .property("name", DeploymentCreate::NAME.schema())
            .property(
                "target_node_count",
                Self::TARGET_NODE_COUNT.max(i64::from(max_nodes)).schema(),
            );
        shared_properties(builder)
            .examples([serde_json::json!({"target_node_count": 60, "max_in_flight": 10})])
            .into()
    }
}

impl FromInput for DeploymentPatch {
    const READS_BODY: bool = true;

    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let max = input.state().map_or(DEFAULT_MAX_NODES_PER_DEPLOYMENT, |s| {
            s.max_nodes_per_deployment
        });
        let deployment = input.path_int(&DEPLOYMENT_ID);
        input.check()?;
        let object = input.body_object()?;
        let errors = &mut input.errors;
        let body = [LocItem::from("body")];
        forbid_unknown(errors, &object, &body, &PATCH_FIELDS);
        let mut changes = DeploymentChanges::default();
        let count = match object.get("target_node_count") {
            None => Some(None),
            Some(v) => Self::TARGET_NODE_COUNT
                .max(i64::from(max))
                .read(errors, &body, v)
                .and_then(|v| u32::try_from(v).ok())
                .map(Some),
        };
        let name = match object.get("name") {
            None => Some(None),
            Some(v) => DeploymentCreate::NAME.read(errors, &body, v).map(Some),
        };
        read_shared_fields(errors, &object, &body, &mut changes);
        input.check()?;
        changes.name = valid(name)?;
        changes.target_node_count = valid(count)?;
        Ok(DeploymentPatch {
            deployment: DeploymentId(valid(deployment)?),
            changes,
        })
    }
}

named_schema!(
    DeploymentPatch,
    "DeploymentPatch",
    DeploymentPatch::schema_for(DEFAULT_MAX_NODES_PER_DEPLOYMENT)
);

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

/// `GET /deployments/{deployment_id}/telemetry`.
#[derive(Debug, Clone)]
pub struct ReadTelemetry {
    /// The query, with no node filter yet.
    pub query: TelemetryQuery,
    /// Only this node's samples.
    pub node: Option<NodeRef>,
}

impl ReadTelemetry {
    /// Only this node's samples.
    pub const NODE: NodeRefField = NodeRefField::new(
        "node_id",
        "Only this node's samples (its numeric id or its name)",
    );
    /// Not before.
    pub const START: TimeField = TimeField::new(
        "start_time",
        "Not before this time (inclusive); UTC when it has no offset",
    );
    /// Not after.
    pub const END: TimeField = TimeField::new(
        "end_time",
        "Not after this time (inclusive); UTC when it has no offset",
    );
}

impl FromInput for ReadTelemetry {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let deployment = input.path_int(&DEPLOYMENT_ID);
        let node = input.query_node(&Self::NODE);
        let start = input.query_time(&Self::START);
        let end = input.query_time(&Self::END);
        let limit = Paging::limit(input);
        input.check()?;
        Ok(ReadTelemetry {
            query: TelemetryQuery {
                deployment: DeploymentId(valid(deployment)?),
                node: None,
                start,
                end,
                limit,
            },
            node,
        })
    }
}

params!(
    ReadTelemetry,
    vec![
        DEPLOYMENT_ID.parameter(ParameterIn::Path),
        ReadTelemetry::NODE.parameter(ParameterIn::Query),
        ReadTelemetry::START.parameter(ParameterIn::Query),
        ReadTelemetry::END.parameter(ParameterIn::Query),
        Paging::LIMIT.parameter(ParameterIn::Query),
    ]
);

/// The query of a series, as the API reads and documents it: the fields of
/// [`netorch_service::series::SeriesQuery`].
pub struct SeriesFields;

impl SeriesFields {
    /// From.
    pub const START: TimeField = TimeField::new(
        "start_time",
        "From this time (inclusive) [default: end_time minus 24 hours]; UTC when it has no offset",
    );
    /// Until.
    pub const END: TimeField = TimeField::new(
        "end_time",
        "Until this time (inclusive) [default: now]; UTC when it has no offset",
    );
    /// Step.
    pub const STEP: ChoiceField<SeriesStep> = ChoiceField::new(
        "step",
        "Bucket size: raw (each sample), 1m, 1h, or auto (default): raw up to 1 hour (one node \
         only), 1m up to 1 day, 1h beyond. A step finer than the retention of its tier at \
         start_time is answered from the finest tier still holding it; the response's \
         `resolution` says which",
    );

    fn read(input: &mut Input<'_>) -> SeriesQuery {
        SeriesQuery {
            start: input.query_time(&Self::START),
            end: input.query_time(&Self::END),
            step: input.query_choice(&Self::STEP).unwrap_or_default(),
        }
    }
}

/// `GET /deployments/{deployment_id}/nodes/{node_id}/telemetry/series`.
#[derive(Debug, Clone)]
pub struct NodeSeries {
    /// The node.
    pub path: NodePath,
    /// Range and step.
    pub series: SeriesQuery,
}

impl FromInput for NodeSeries {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let deployment = input.path_int(&DEPLOYMENT_ID);
        let node = input.path_node(&NODE_ID);
        let series = SeriesFields::read(input);
        input.check()?;
        Ok(NodeSeries {
            path: NodePath {
                deployment: DeploymentId(valid(deployment)?),
                node: valid(node)?,
            },
            series,
        })
    }
}

params!(
    NodeSeries,
    vec![
        DEPLOYMENT_ID.parameter(ParameterIn::Path),
        NODE_ID.parameter(ParameterIn::Path),
        SeriesFields::START.parameter(ParameterIn::Query),
        SeriesFields::END.parameter(ParameterIn::Query),
        SeriesFields::STEP.parameter(ParameterIn::Query),
    ]
);

/// `GET /deployments/{deployment_id}/telemetry/series`.
#[derive(Debug, Clone)]
pub struct FleetSeries {
    /// The deployment.
    pub deployment: DeploymentId,
    /// Range and step.
    pub series: SeriesQuery,
}

impl FromInput for FleetSeries {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let deployment = input.path_int(&DEPLOYMENT_ID);
        let series = SeriesFields::read(input);
        input.check()?;
        Ok(FleetSeries {
            deployment: DeploymentId(valid(deployment)?),
            series,
        })
    }
}

params!(
    FleetSeries,
    vec![
        DEPLOYMENT_ID.parameter(ParameterIn::Path),
        SeriesFields::START.parameter(ParameterIn::Query),
        SeriesFields::END.parameter(ParameterIn::Query),
        SeriesFields::STEP.parameter(ParameterIn::Query),
    ]
);

/// `GET /deployments/{deployment_id}/bottlenecks`.
#[derive(Debug, Clone, Copy)]
pub struct BottleneckQuery {
    /// The deployment.
    pub deployment: DeploymentId,
    /// Minutes before now to analyse.
    pub minutes: i64,
    /// The method and threshold.
    pub config: AnalysisConfig,
}

impl BottleneckQuery {
    /// The window.
    pub const WINDOW: IntField = IntField::new(
        "analysis_window_minutes",
        "Minutes of telemetry before now to analyse",
    )
    .min(1)
    .max(60)
    .default(10);
    /// The method.
    pub const METHOD: ChoiceField<Method> =
        ChoiceField::new("method", "How nodes are scored (default robust)");
    /// The threshold.
    pub const THRESHOLD: FloatField = FloatField::positive(
        "threshold",
        "Score at which a node counts (default 3.5 for robust, 2.0 for zscore)",
    );
}

impl FromInput for BottleneckQuery {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let deployment = input.path_int(&DEPLOYMENT_ID);
        let minutes = input.query_int_or_default(&Self::WINDOW);
        let method = input.query_choice(&Self::METHOD).unwrap_or_default();
        let threshold = input.query_float(&Self::THRESHOLD);
        input.check()?;
        // The field accepts exactly the thresholds the analysis does (positive and finite).
        let config = AnalysisConfig::new(method, threshold)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(BottleneckQuery {
            deployment: DeploymentId(valid(deployment)?),
            minutes,
            config,
        })
    }
}

params!(
    BottleneckQuery,
    vec![
        DEPLOYMENT_ID.parameter(ParameterIn::Path),
        BottleneckQuery::WINDOW.parameter(ParameterIn::Query),
        BottleneckQuery::METHOD.parameter(ParameterIn::Query),
        BottleneckQuery::THRESHOLD.parameter(ParameterIn::Query),
    ]
);

/// `GET /deployments/{deployment_id}/events/stream`.
#[derive(Debug, Clone, Copy)]
pub struct StreamEvents {
    /// The deployment.
    pub deployment: DeploymentId,
    /// Only events after this id: the `Last-Event-ID` a reconnecting client sends, else `after`.
    pub after: Option<EventId>,
    /// Without a cursor, start with the last this many events instead of the first.
    pub tail: Option<i64>,
}

impl StreamEvents {
    /// The id of the last event a client received, sent back when it reconnects.
    pub const LAST_EVENT_ID: IntField = IntField::new(
        "Last-Event-ID",
        "Resume after this event id (what EventSource sends when it reconnects); wins over after",
    )
    .min(0);
    /// Where a live view starts.
    pub const TAIL: IntField = IntField::new(
        "tail",
        "Without after or Last-Event-ID: start with the last this many events recorded so far \
         instead of the first (what a live view opens with)",
    )
    .min(1)
    .max(1000);
}

impl FromInput for StreamEvents {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let deployment = input.path_int(&DEPLOYMENT_ID);
        let after = input.query_int(&ReadEvents::AFTER);
        let last_event = input.header_int(&Self::LAST_EVENT_ID);
        let tail = input.query_int(&Self::TAIL);
        input.check()?;
        Ok(StreamEvents {
            deployment: DeploymentId(valid(deployment)?),
            after: last_event.or(after).map(EventId),
            tail,
        })
    }
}

params!(
    StreamEvents,
    vec![
        DEPLOYMENT_ID.parameter(ParameterIn::Path),
        ReadEvents::AFTER.parameter(ParameterIn::Query),
        StreamEvents::TAIL.parameter(ParameterIn::Query),
        StreamEvents::LAST_EVENT_ID.parameter(ParameterIn::Header),
    ]
);

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

// After the macros above: `macro_rules!` are in scope only below their definition.
mod push;

pub use push::PushTelemetry;
