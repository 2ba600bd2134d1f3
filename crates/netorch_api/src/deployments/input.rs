//! The deployments' inputs: the listing's paging, and the create and `PATCH` bodies with the
//! rollout settings they share.

use crate::http::error::{ApiError, LocItem};
use crate::http::input::paths::DEPLOYMENT_ID;

use crate::http::input::{
    ChoiceField, Errors, FloatField, FromInput, Input, IntField, KnownFields, StringField, at,
    forbid_unknown, required, valid,
};
use crate::http::paging::Paging;
use crate::http::shapes::{named_schema, params};
use netorch_domain::provisioning::BUILTIN_PROFILE;
use netorch_domain::{
    DeploymentChanges, DeploymentId, DeploymentListing, DeploymentSort, DeploymentStatus,
    NewDeployment, Provisioning, RolloutPolicy, TelemetryOrigin,
};
use serde_json::Value;
use std::borrow::Cow;
use utoipa::openapi::RefOr;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// The largest `target_node_count` a server takes unless configured otherwise (the original's).
pub const DEFAULT_MAX_NODES_PER_DEPLOYMENT: u32 = 1000;

/// `GET /deployments`: a page of the deployments a listing holds.
#[derive(Debug, Clone)]
pub struct ListDeployments {
    /// Deployments to skip, in the listing's order.
    pub skip: i64,
    /// At most this many.
    pub limit: i64,
    /// Which deployments, in what order.
    pub listing: DeploymentListing,
}

impl ListDeployments {
    /// `name`: a search.
    pub const NAME: StringField = StringField::new(
        "name",
        "Only deployments whose name contains this text, in either case (ASCII letters on \
         SQLite, every letter on PostgreSQL)",
        1,
    )
    .max(255);
    /// `status`.
    pub const STATUS: ChoiceField<DeploymentStatus> =
        ChoiceField::new("status", "Only deployments with this status");
    /// `sort`.
    pub const SORT: ChoiceField<DeploymentSort> = ChoiceField::new(
        "sort",
        "Their order: newest first (the default), oldest first, by name, or most failed nodes \
         first (ties newest first)",
    );
}

impl FromInput for ListDeployments {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let skip = Paging::skip(input);
        let limit = Paging::limit(input);
        let name_contains = input.query_string(&Self::NAME);
        let status = input.query_choice(&Self::STATUS);
        let sort = input.query_choice(&Self::SORT).unwrap_or_default();
        input.check()?;
        Ok(ListDeployments {
            skip,
            limit,
            listing: DeploymentListing {
                name_contains,
                status,
                sort,
            },
        })
    }
}

params!(
    ListDeployments,
    vec![
        Paging::SKIP.parameter(ParameterIn::Query),
        Paging::LIMIT.parameter(ParameterIn::Query),
        ListDeployments::NAME.parameter(ParameterIn::Query),
        ListDeployments::STATUS.parameter(ParameterIn::Query),
        ListDeployments::SORT.parameter(ParameterIn::Query),
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
    changes.alert_rules = object
        .get("alert_rules")
        .and_then(|value| crate::alerts::rules::read(errors, body, value));
    changes.remediation = object
        .get("remediation")
        .and_then(|value| super::remediation::read(errors, body, value));
}

/// The schemas of those fields, added to a body's.
fn shared_properties(builder: ObjectBuilder) -> ObjectBuilder {
    let description = DeploymentCreate::DESCRIPTION.schema().schema_type(
        utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null]),
    );
    RolloutFields::properties(builder.property("description", description))
        .property("alert_rules", crate::alerts::rules::schema())
        .property("remediation", super::remediation::schema())
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

/// The fields each body takes: those its schema names.
static CREATE_FIELDS: KnownFields = KnownFields::of(|| {
    DeploymentCreate::schema_for(
        DEFAULT_MAX_NODES_PER_DEPLOYMENT,
        &[BUILTIN_PROFILE.to_owned()],
    )
});

static PATCH_FIELDS: KnownFields =
    KnownFields::of(|| DeploymentPatch::schema_for(DEFAULT_MAX_NODES_PER_DEPLOYMENT));

/// The body of `POST /deployments`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentCreate(pub NewDeployment);

impl DeploymentCreate {
    /// Where its telemetry comes from.
    pub const TELEMETRY_ORIGIN: ChoiceField<TelemetryOrigin> = ChoiceField::new(
        "telemetry_origin",
        "Where its telemetry comes from, chosen once: `simulated` (the default), sampled by the \
         telemetry workers from their source, or `pushed`, only what collectors push (the \
         workers write nothing for it)",
    );
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

    /// The largest `parameters`, as JSON: settings for a program, not data.
    pub const PARAMETERS_MAX_BYTES: usize = 16 * 1024;

    /// The `provisioner` property: one of the server's profiles.
    fn provisioner_schema(profiles: &[String]) -> Schema {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "The provisioner profile that drives its nodes, chosen once: `simulator` (the \
                 default), the workers' built-in one, or a profile of the servers' and workers' \
                 --provisioners file (docs/PROVISIONERS.md)",
            ))
            .enum_values(Some(profiles.iter().cloned()))
            .default(Some(Value::from(BUILTIN_PROFILE)))
            .into()
    }

    /// The `parameters` property.
    fn parameters_schema() -> Schema {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "Free-form settings handed to every run of the provisioner's program (a JSON \
                 object of at most 16 KiB; the simulator ignores them)",
            ))
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .into()
    }

    /// Reads `provisioner` and `parameters`.
    fn read_provisioning(
        errors: &mut Errors,
        object: &serde_json::Map<String, Value>,
        body: &[LocItem],
        profiles: &[String],
    ) -> Option<Provisioning> {
        let mut provisioning = Provisioning::default();
        let mut ok = true;
        if let Some(value) = object.get("provisioner") {
            match value {
                Value::String(name) if profiles.contains(name) => {
                    provisioning.profile = name.clone()
                }
                Value::String(_) => {
                    ok = false;
                    errors.push(
                        "enum",
                        at(body, "provisioner"),
                        format!(
                            "Input should be a provisioner profile this server knows: {}",
                            profiles.join(", ")
                        ),
                        value.clone(),
                        Some(serde_json::json!({ "expected": profiles })),
                    );
                }
                _ => {
                    ok = false;
                    errors.push(
                        "string_type",
                        at(body, "provisioner"),
                        "Input should be a valid string",
                        value.clone(),
                        None,
                    );
                }
            }
        }
        match object.get("parameters") {
            None => {}
            Some(Value::Object(map)) => {
                let size = Value::Object(map.clone()).to_string().len();
                if size > Self::PARAMETERS_MAX_BYTES {
                    ok = false;
                    errors.push(
                        "too_long",
                        at(body, "parameters"),
                        format!(
                            "Parameters should be at most {} bytes of JSON, got {size}",
                            Self::PARAMETERS_MAX_BYTES
                        ),
                        Value::Null,
                        Some(serde_json::json!({ "max_length": Self::PARAMETERS_MAX_BYTES })),
                    );
                } else {
                    provisioning.parameters = map.clone();
                }
            }
            Some(value) => {
                ok = false;
                errors.push(
                    "dict_type",
                    at(body, "parameters"),
                    "Input should be a valid dictionary",
                    value.clone(),
                    None,
                );
            }
        }
        ok.then_some(provisioning)
    }

    /// The body's schema for a server that takes at most `max_nodes` nodes a deployment and
    /// knows the provisioner `profiles`.
    pub fn schema_for(max_nodes: u32, profiles: &[String]) -> Schema {
        let builder = ObjectBuilder::new()
            .property("name", Self::NAME.schema())
            .required("name")
            .property(
                "target_node_count",
                Self::target_node_count(max_nodes).schema(),
            )
            .required("target_node_count")
            .property("telemetry_origin", Self::TELEMETRY_ORIGIN.schema())
            .property("provisioner", Self::provisioner_schema(profiles))
            .property("parameters", Self::parameters_schema());
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
        let profiles: Vec<String> = input.state().map_or_else(
            || vec![BUILTIN_PROFILE.to_owned()],
            |s| s.provisioner_profiles().to_vec(),
        );
        let object = input.body_object()?;
        let errors = &mut input.errors;
        let body = [LocItem::from("body")];
        forbid_unknown(errors, &object, &body, &CREATE_FIELDS);
        let provisioning = Self::read_provisioning(errors, &object, &body, &profiles);
        let name = required(errors, &object, &body, "name")
            .and_then(|v| Self::NAME.read(errors, &body, v));
        let count = required(errors, &object, &body, "target_node_count")
            .and_then(|v| Self::target_node_count(max).read(errors, &body, v));
        let telemetry = object
            .get(Self::TELEMETRY_ORIGIN.name)
            .map(|v| Self::TELEMETRY_ORIGIN.read_value(errors, &body, v));
        let mut shared = DeploymentChanges::default();
        read_shared_fields(errors, &object, &body, &mut shared);
        input.check()?;
        Ok(DeploymentCreate(NewDeployment {
            name: valid(name)?,
            target_node_count: u32::try_from(valid(count)?)
                .map_err(|e| ApiError::Internal(e.to_string()))?,
            rollout: shared.applied_to_policy(RolloutPolicy::default()),
            description: shared.description.flatten(),
            telemetry: telemetry.map(valid).transpose()?.unwrap_or_default(),
            alert_rules: shared.alert_rules.unwrap_or_default(),
            provisioning: valid(provisioning)?,
            remediation: shared.remediation.flatten(),
        }))
    }
}

named_schema!(
    DeploymentCreate,
    "DeploymentCreate",
    DeploymentCreate::schema_for(
        DEFAULT_MAX_NODES_PER_DEPLOYMENT,
        &[BUILTIN_PROFILE.to_owned()]
    )
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
