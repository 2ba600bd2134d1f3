//! The alerts' and silences' inputs: the listings' filters and cursors, the alert named in a
//! path, the acknowledgement's comment, and the silence to make.

use crate::http::choice::Flag;
use crate::http::error::{ApiError, FieldError, LocItem};
use crate::http::input::paths::DEPLOYMENT_ID;
use crate::http::input::{
    ChoiceField, FromInput, Input, IntField, KnownFields, StringField, TimeField, forbid_unknown,
    required, valid,
};
use crate::http::paging::Paging;
use crate::http::shapes::{named_schema, params};
use netorch_domain::alert::{
    AlertState, MAX_MATCHER_REGEX_BYTES, Matcher, NewSilence, Severity, SilenceState,
};
use netorch_domain::{AlertId, DeploymentId, SilenceId};
use netorch_service::alerts::{AlertFilter, AlertRef};
use serde_json::Value;
use std::borrow::Cow;
use utoipa::openapi::RefOr;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{AdditionalProperties, ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// The filters and cursor every alert listing reads.
pub struct AlertFilters;

impl AlertFilters {
    /// The state.
    pub const STATE: ChoiceField<AlertState> =
        ChoiceField::new("state", "Only alerts in this state");
    /// The severity.
    pub const SEVERITY: ChoiceField<Severity> =
        ChoiceField::new("severity", "Only alerts of this severity");
    /// Acknowledged or not.
    pub const ACKNOWLEDGED: ChoiceField<Flag> = ChoiceField::new(
        "acknowledged",
        "Only acknowledged alerts (`true`) or only the others (`false`)",
    );
    /// Silenced or not.
    pub const SILENCED: ChoiceField<Flag> = ChoiceField::new(
        "silenced",
        "Only alerts an active silence matches (`true`) or only the others (`false`)",
    );
    /// The cursor.
    pub const BEFORE: IntField = IntField::new(
        "before",
        "Only alerts with a smaller id (the previous page's next_before)",
    )
    .min(1);
    /// The deployment, in the fleet-wide listing.
    pub const DEPLOYMENT: IntField =
        IntField::new("deployment_id", "Only this deployment's alerts").min(1);

    fn read(
        input: &mut Input<'_>,
        deployment: Option<DeploymentId>,
    ) -> (AlertFilter, Option<AlertId>, i64) {
        let filter = AlertFilter {
            deployment,
            state: input.query_choice(&Self::STATE),
            severity: input.query_choice(&Self::SEVERITY),
            acknowledged: input.query_choice(&Self::ACKNOWLEDGED).map(Flag::get),
            silenced: input.query_choice(&Self::SILENCED).map(Flag::get),
            ..AlertFilter::default()
        };
        let before = input.query_int(&Self::BEFORE).map(AlertId);
        (filter, before, Paging::limit(input))
    }

    fn parameters() -> Vec<Parameter> {
        vec![
            Self::STATE.parameter(ParameterIn::Query),
            Self::SEVERITY.parameter(ParameterIn::Query),
            Self::ACKNOWLEDGED.parameter(ParameterIn::Query),
            Self::SILENCED.parameter(ParameterIn::Query),
            Self::BEFORE.parameter(ParameterIn::Query),
            Paging::LIMIT.parameter(ParameterIn::Query),
        ]
    }
}

/// `GET /alerts`.
#[derive(Debug, Clone)]
pub struct ListAlerts {
    /// Which alerts.
    pub filter: AlertFilter,
    /// The cursor.
    pub before: Option<AlertId>,
    /// At most this many.
    pub limit: i64,
}

impl FromInput for ListAlerts {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let deployment = input.query_int(&AlertFilters::DEPLOYMENT).map(DeploymentId);
        let (filter, before, limit) = AlertFilters::read(input, deployment);
        input.check()?;
        Ok(ListAlerts {
            filter,
            before,
            limit,
        })
    }
}

params!(ListAlerts, {
    let mut list = vec![AlertFilters::DEPLOYMENT.parameter(ParameterIn::Query)];
    list.extend(AlertFilters::parameters());
    list
});

/// `GET /deployments/{deployment_id}/alerts`.
#[derive(Debug, Clone)]
pub struct ListDeploymentAlerts(pub ListAlerts);

impl FromInput for ListDeploymentAlerts {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let deployment = input.path_int(&DEPLOYMENT_ID).map(DeploymentId);
        let (filter, before, limit) = AlertFilters::read(input, deployment);
        input.check()?;
        valid(filter.deployment)?;
        Ok(ListDeploymentAlerts(ListAlerts {
            filter,
            before,
            limit,
        }))
    }
}

params!(ListDeploymentAlerts, {
    let mut list = vec![DEPLOYMENT_ID.parameter(ParameterIn::Path)];
    list.extend(AlertFilters::parameters());
    list
});

/// The alert in a path: its id or its fingerprint.
pub const ALERT: StringField = StringField::new(
    "alert",
    "The alert: its numeric id (at most 15 digits), or its fingerprint (16 hex digits: the \
     latest alert of that condition)",
    1,
)
.max(20);

/// The pattern of [`ALERT`].
const ALERT_PATTERN: &str = "^([1-9][0-9]{0,14}|[0-9a-fA-F]{16})$";

/// Reads the alert named in the path.
fn read_alert(input: &mut Input<'_>) -> Option<AlertRef> {
    let text = input.path_string(&ALERT)?;
    // As the pattern says: an id of at most 15 digits, no leading zero, or 16 hex digits.
    let digits =
        text.len() <= 15 && !text.starts_with('0') && text.bytes().all(|b| b.is_ascii_digit());
    let parsed = AlertRef::parse(&text).filter(|_| digits || text.len() == 16);
    if parsed.is_none() {
        input.errors.push(
            "string_pattern_mismatch",
            vec![LocItem::from("path"), LocItem::from(ALERT.name)],
            "String should be an alert id (a positive integer) or a fingerprint (16 hex digits)",
            Value::from(text),
            Some(serde_json::json!({ "pattern": ALERT_PATTERN })),
        );
    }
    parsed
}

fn alert_parameter() -> Parameter {
    let schema: Schema = ALERT.schema().pattern(Some(ALERT_PATTERN)).into();
    utoipa::openapi::path::ParameterBuilder::new()
        .name(ALERT.name)
        .parameter_in(ParameterIn::Path)
        .required(utoipa::openapi::Required::True)
        .description(Some(ALERT.description))
        .schema(Some(schema))
        .build()
}

/// `GET /alerts/{alert}`.
#[derive(Debug, Clone)]
pub struct AlertPath(pub AlertRef);

impl FromInput for AlertPath {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let alert = read_alert(input);
        input.check()?;
        Ok(AlertPath(valid(alert)?))
    }
}

params!(AlertPath, vec![alert_parameter()]);

/// `POST /alerts/{alert}/ack` and `/unack`: the alert and why.
#[derive(Debug, Clone)]
pub struct AlertComment {
    /// The alert.
    pub alert: AlertRef,
    /// Why, in the operator's words.
    pub comment: String,
}

impl AlertComment {
    /// The comment.
    pub const COMMENT: StringField = StringField::new(
        "comment",
        "Why: what is being done about it, or why the acknowledgement is taken back",
        1,
    )
    .max(1024);
}

static COMMENT_FIELDS: KnownFields = KnownFields::of(AlertComment::body_schema);

impl AlertComment {
    fn body_schema() -> Schema {
        ObjectBuilder::new()
            .property("comment", Self::COMMENT.schema())
            .required("comment")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .examples([serde_json::json!({"comment": "rack 4 power work, on it"})])
            .into()
    }
}

impl FromInput for AlertComment {
    const READS_BODY: bool = true;

    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let alert = read_alert(input);
        input.check()?;
        let object = input.body_object()?;
        let errors = &mut input.errors;
        let body = [LocItem::from("body")];
        forbid_unknown(errors, &object, &body, &COMMENT_FIELDS);
        let comment = required(errors, &object, &body, "comment")
            .and_then(|v| Self::COMMENT.read(errors, &body, v));
        input.check()?;
        Ok(AlertComment {
            alert: valid(alert)?,
            comment: valid(comment)?,
        })
    }
}

params!(AlertComment, vec![alert_parameter()]);
named_schema!(AlertComment, "AlertComment", AlertComment::body_schema());

/// `GET /silences`.
#[derive(Debug, Clone, Copy)]
pub struct ListSilences {
    /// Only in this state.
    pub state: Option<SilenceState>,
    /// The cursor.
    pub before: Option<SilenceId>,
    /// At most this many.
    pub limit: i64,
}

impl ListSilences {
    /// The state.
    pub const STATE: ChoiceField<SilenceState> =
        ChoiceField::new("state", "Only silences in this state now");
    /// The cursor.
    pub const BEFORE: IntField = IntField::new(
        "before",
        "Only silences with a smaller id (the previous page's next_before)",
    )
    .min(1);
}

impl FromInput for ListSilences {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let state = input.query_choice(&Self::STATE);
        let before = input.query_int(&Self::BEFORE).map(SilenceId);
        let limit = Paging::limit(input);
        input.check()?;
        Ok(ListSilences {
            state,
            before,
            limit,
        })
    }
}

params!(
    ListSilences,
    vec![
        ListSilences::STATE.parameter(ParameterIn::Query),
        ListSilences::BEFORE.parameter(ParameterIn::Query),
        Paging::LIMIT.parameter(ParameterIn::Query),
    ]
);

/// The silence in a path.
pub const SILENCE_ID: IntField = IntField::new("silence_id", "Silence id").min(1);

/// `GET` and `DELETE /silences/{silence_id}`.
#[derive(Debug, Clone, Copy)]
pub struct SilencePath(pub SilenceId);

impl FromInput for SilencePath {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let id = input.path_int(&SILENCE_ID);
        input.check()?;
        Ok(SilencePath(SilenceId(valid(id)?)))
    }
}

params!(SilencePath, vec![SILENCE_ID.parameter(ParameterIn::Path)]);

/// The body of `POST /silences` (the creator is the caller's key).
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceCreate {
    /// The matchers.
    pub matchers: Vec<Matcher>,
    /// From when; now when absent.
    pub starts_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Until when.
    pub ends_at: chrono::DateTime<chrono::Utc>,
    /// Why.
    pub comment: String,
}

impl SilenceCreate {
    /// The most matchers a silence has.
    pub const MAX_MATCHERS: usize = 20;
    /// A matcher's label name.
    pub const LABEL: StringField = StringField::new(
        "name",
        "The label: alertname, deployment (an id), node (a name), rule or severity",
        1,
    )
    .max(64);
    /// A matcher's value.
    pub const VALUE: StringField = StringField::new(
        "value",
        "The value, or a regular expression (RE2 syntax, anchored at both ends)",
        0,
    )
    .max(MAX_MATCHER_REGEX_BYTES);
    /// From when.
    pub const STARTS_AT: TimeField = TimeField::new("starts_at", "From when (default: now)");
    /// Until when.
    pub const ENDS_AT: TimeField =
        TimeField::new("ends_at", "Until when: after starts_at and after now");
    /// Why.
    pub const COMMENT: StringField =
        StringField::new("comment", "Why alerts are silenced", 1).max(1024);

    fn matcher_schema() -> Schema {
        let flag = |description: &'static str| {
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .description(Some(description))
        };
        ObjectBuilder::new()
            .property("name", Self::LABEL.schema())
            .required("name")
            .property("value", Self::VALUE.schema())
            .required("value")
            .property(
                "is_regex",
                flag("Whether value is a regular expression (default false)"),
            )
            .property(
                "is_equal",
                flag("Whether the label must match (default true) or must not"),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .into()
    }

    fn body_schema() -> Schema {
        ObjectBuilder::new()
            .property(
                "matchers",
                ArrayBuilder::new()
                    .items(RefOr::T(Self::matcher_schema()))
                    .min_items(Some(1))
                    .max_items(Some(Self::MAX_MATCHERS))
                    .description(Some("All must match for an alert to be silenced")),
            )
            .required("matchers")
            .property("starts_at", Self::STARTS_AT.body_schema())
            .property("ends_at", Self::ENDS_AT.body_schema())
            .required("ends_at")
            .property("comment", Self::COMMENT.schema())
            .required("comment")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .examples([serde_json::json!({
                "matchers": [
                    {"name": "deployment", "value": "4"},
                    {"name": "node", "value": "node-0(0[1-9]|10)", "is_regex": true}
                ],
                "ends_at": "2026-12-07T06:00:00Z",
                "comment": "rack 4 power work",
            })])
            .into()
    }

    /// The silence to make, by `created_by`, checked at `now` (a matcher that does not compile,
    /// or an end not after the start and now, is a 422 naming the field).
    pub fn at(
        self,
        created_by: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<NewSilence, ApiError> {
        let new = NewSilence {
            matchers: self.matchers,
            starts_at: self.starts_at.unwrap_or(now),
            ends_at: self.ends_at,
            created_by: created_by.to_owned(),
            comment: self.comment,
        };
        for (index, matcher) in new.matchers.iter().enumerate() {
            if let Err(e) = matcher.compile() {
                return Err(ApiError::invalid(FieldError::new(
                    "value_error",
                    [
                        LocItem::from("body"),
                        LocItem::from("matchers"),
                        LocItem::Index(index),
                        LocItem::from("value"),
                    ],
                    format!("Value error, {e}"),
                    matcher.value.clone(),
                )));
            }
        }
        new.check(now).map_err(|e| {
            ApiError::invalid(FieldError::new(
                "value_error",
                [LocItem::from("body"), LocItem::from("ends_at")],
                format!("Value error, {e}"),
                new.ends_at.to_rfc3339(),
            ))
        })?;
        Ok(new)
    }
}

static SILENCE_FIELDS: KnownFields = KnownFields::of(SilenceCreate::body_schema);
static MATCHER_FIELDS: KnownFields = KnownFields::of(SilenceCreate::matcher_schema);

impl FromInput for SilenceCreate {
    const READS_BODY: bool = true;

    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let object = input.body_object()?;
        let errors = &mut input.errors;
        let body = [LocItem::from("body")];
        forbid_unknown(errors, &object, &body, &SILENCE_FIELDS);
        let matchers = required(errors, &object, &body, "matchers").and_then(|value| {
            let mut loc = body.to_vec();
            loc.push(LocItem::from("matchers"));
            let Value::Array(items) = value else {
                errors.push(
                    "list_type",
                    loc,
                    "Input should be a valid list",
                    value.clone(),
                    None,
                );
                return None;
            };
            if items.is_empty() || items.len() > Self::MAX_MATCHERS {
                errors.push(
                    if items.is_empty() {
                        "too_short"
                    } else {
                        "too_long"
                    },
                    loc,
                    format!("List should have from 1 to {} items", Self::MAX_MATCHERS),
                    value.clone(),
                    Some(serde_json::json!({"min_length": 1, "max_length": Self::MAX_MATCHERS})),
                );
                return None;
            }
            let read: Vec<Option<Matcher>> = items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    let mut at = loc.clone();
                    at.push(LocItem::Index(index));
                    let Value::Object(map) = item else {
                        errors.push(
                            "model_attributes_type",
                            at,
                            "Input should be a valid dictionary or object to extract fields from",
                            item.clone(),
                            None,
                        );
                        return None;
                    };
                    forbid_unknown(errors, map, &at, &MATCHER_FIELDS);
                    let name = required(errors, map, &at, "name")
                        .and_then(|v| Self::LABEL.read(errors, &at, v));
                    let value = required(errors, map, &at, "value")
                        .and_then(|v| Self::VALUE.read(errors, &at, v));
                    let mut flag = |field: &'static str, default: bool| match map.get(field) {
                        None => Some(default),
                        Some(Value::Bool(b)) => Some(*b),
                        Some(other) => {
                            let mut place = at.clone();
                            place.push(LocItem::Name(Cow::Borrowed(field)));
                            errors.push(
                                "bool_type",
                                place,
                                "Input should be a valid boolean",
                                other.clone(),
                                None,
                            );
                            None
                        }
                    };
                    let is_regex = flag("is_regex", false);
                    let is_equal = flag("is_equal", true);
                    Some(Matcher {
                        name: name?,
                        value: value?,
                        is_regex: is_regex?,
                        is_equal: is_equal?,
                    })
                })
                .collect();
            read.into_iter().collect::<Option<Vec<_>>>()
        });
        let starts_at = object
            .get(Self::STARTS_AT.name)
            .map(|v| Self::STARTS_AT.read(errors, &body, v));
        let ends_at = required(errors, &object, &body, "ends_at")
            .and_then(|v| Self::ENDS_AT.read(errors, &body, v));
        let comment = required(errors, &object, &body, "comment")
            .and_then(|v| Self::COMMENT.read(errors, &body, v));
        input.check()?;
        Ok(SilenceCreate {
            matchers: valid(matchers)?,
            starts_at: starts_at.map(valid).transpose()?,
            ends_at: valid(ends_at)?,
            comment: valid(comment)?,
        })
    }
}

named_schema!(SilenceCreate, "SilenceCreate", SilenceCreate::body_schema());
