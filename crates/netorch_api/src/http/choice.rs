//! Closed lists of names (states, event types, methods, ...) as the API reads and documents
//! them, derived from the enums that define them. A leaf module: the input layer, the error
//! bodies and the response shapes all use it.

use netorch_analytics::{Method, MetricKind};
use netorch_domain::alert::{
    AlertState, Comparison, NotificationAction, NotificationState, ReceiverKind, Severity,
    SilenceState, ThresholdScope,
};
use netorch_domain::{
    DeploymentStatus, EventType, NodeState, OperatorAction, Role, TelemetryOrigin, WorkerKind,
};
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};

/// An enum the API exchanges by name.
pub trait Choice: Copy + 'static {
    /// Every value, in the order the document lists them.
    const ALL: &'static [Self];
    /// The value's name in the API.
    fn name(self) -> &'static str;

    /// The value named `text`, if any.
    fn from_name(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.name() == text)
    }

    /// The names, as the schema's `enum` lists them.
    fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|c| c.name()).collect()
    }
}

/// A string schema whose `enum` is `T`'s names.
pub fn schema<T: Choice>(description: &str) -> Schema {
    Object::builder()
        .schema_type(Type::String)
        .enum_values(Some(T::names()))
        .description(Some(description))
        .into()
}

/// The schema of a value that is one of `T`'s names or null.
pub fn nullable_schema<T: Choice>(description: &str) -> Schema {
    let mut names: Vec<serde_json::Value> = T::names().into_iter().map(Into::into).collect();
    names.push(serde_json::Value::Null);
    Object::builder()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .enum_values(Some(names))
        .description(Some(description))
        .into()
}

/// An object with one count per name of `T`, all required: the enum is the list.
pub fn counts_schema<T: Choice>(description: &str) -> Schema {
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(description));
    for name in T::names() {
        object = object
            .property(
                name,
                Object::builder()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            )
            .required(name);
    }
    object.into()
}

/// `true` or `false`, as a query parameter takes a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// `true`.
    True,
    /// `false`.
    False,
}

impl Flag {
    /// Both.
    pub const ALL: [Flag; 2] = [Flag::True, Flag::False];

    /// The name in a query string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Flag::True => "true",
            Flag::False => "false",
        }
    }

    /// As a `bool`.
    pub const fn get(self) -> bool {
        matches!(self, Flag::True)
    }
}

macro_rules! choices {
    ($($ty:ty),* $(,)?) => {$(
        impl Choice for $ty {
            const ALL: &'static [Self] = &<$ty>::ALL;
            fn name(self) -> &'static str {
                self.as_str()
            }
        }
    )*};
}

choices!(
    NodeState,
    DeploymentStatus,
    netorch_domain::DeploymentSort,
    EventType,
    Method,
    MetricKind,
    WorkerKind,
    OperatorAction,
    Role,
    TelemetryOrigin,
    Severity,
    Comparison,
    ThresholdScope,
    AlertState,
    SilenceState,
    ReceiverKind,
    NotificationAction,
    NotificationState,
    Flag,
    netorch_service::series::SeriesStep,
    netorch_domain::Phase,
    netorch_domain::RunOutcome,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_come_from_the_enums() {
        assert_eq!(
            NodeState::names(),
            [
                "PENDING",
                "PROVISIONING",
                "CONFIGURING",
                "RUNNING",
                "FAILED",
                "DECOMMISSIONING"
            ]
        );
        for state in NodeState::ALL {
            assert_eq!(NodeState::from_name(state.name()), Some(state));
        }
        assert_eq!(Method::from_name("zscore"), Some(Method::ZScore));
        assert_eq!(Method::from_name("ZSCORE"), None);
        assert_eq!(EventType::names().len(), EventType::ALL.len());
    }
}
