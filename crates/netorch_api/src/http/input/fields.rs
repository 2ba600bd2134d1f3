//! Field specifications: a field's name, meaning and limits, written once, used both to read
//! the field from a request (the way the original's pydantic models did, reporting every
//! invalid field in FastAPI's shape) and to describe it in the OpenAPI document. A limit
//! cannot be enforced without being documented, or documented without being enforced.

use super::numbers::IntField;
use crate::http::choice::{self, Choice};
use crate::http::error::{FieldError, LocItem};
use netorch_domain::{NodeId, NodeRef};
use serde_json::{Value, json};
use std::marker::PhantomData;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{RefOr, Required};

/// The invalid fields found so far while a request is read.
#[derive(Debug, Default)]
pub struct Errors(pub(crate) Vec<FieldError>);

impl Errors {
    /// Records one invalid field.
    pub fn push(
        &mut self,
        kind: &'static str,
        loc: Vec<LocItem>,
        msg: impl Into<String>,
        input: Value,
        ctx: Option<Value>,
    ) {
        self.0.push(FieldError {
            kind,
            loc,
            msg: msg.into(),
            input,
            ctx,
        });
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `prefix` followed by `name`: the `loc` of a field.
pub(crate) fn at(prefix: &[LocItem], name: &'static str) -> Vec<LocItem> {
    let mut loc = prefix.to_vec();
    loc.push(LocItem::from(name));
    loc
}

/// A parameter of `place` (path or query) described by `schema`.
pub(crate) fn parameter(
    name: &'static str,
    place: ParameterIn,
    description: &str,
    schema: Schema,
) -> Parameter {
    let required = if place == ParameterIn::Path {
        Required::True
    } else {
        Required::False
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(place)
        .required(required)
        .description(Some(description))
        .schema(Some(RefOr::T(schema)))
        .build()
}

/// A node, by its numeric id or by its name within the deployment (`node-001`): the `node_id`
/// of a node's JSON is its name, so a client that follows it must get the node.
#[derive(Debug, Clone, Copy)]
pub struct NodeRefField {
    /// The field's name.
    pub name: &'static str,
    /// What it means.
    pub description: &'static str,
}

/// The pattern of a node's name, as the document states it.
pub const NODE_NAME_PATTERN: &str = "^node-[0-9]+$";

impl NodeRefField {
    /// A node reference field.
    pub const fn new(name: &'static str, description: &'static str) -> Self {
        NodeRefField { name, description }
    }

    /// Reads the field at `prefix` + name from `text`.
    pub fn read(&self, errors: &mut Errors, prefix: &[LocItem], text: &str) -> Option<NodeRef> {
        let trimmed = text.trim();
        if NodeRef::is_name(trimmed) {
            return Some(NodeRef::Name(trimmed.to_owned()));
        }
        IntField::new(self.name, self.description)
            .read(errors, prefix, &Value::from(text))
            .map(|id| NodeRef::Id(NodeId(id)))
    }

    /// Reads the field at `prefix` + name from a JSON value: a node's name as a string, or
    /// its numeric id as a number or a numeric string.
    pub fn read_value(
        &self,
        errors: &mut Errors,
        prefix: &[LocItem],
        value: &Value,
    ) -> Option<NodeRef> {
        match value {
            Value::String(text) => self.read(errors, prefix, text),
            other => IntField::new(self.name, self.description)
                .read(errors, prefix, other)
                .map(|id| NodeRef::Id(NodeId(id))),
        }
    }

    /// The field's schema: an int64 id or a node name.
    pub fn schema(&self) -> Schema {
        AnyOfBuilder::new()
            .item(IntField::new(self.name, "The node's numeric id").schema())
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(NODE_NAME_PATTERN))
                    .description(Some("The node's name within its deployment (`node-001`)")),
            )
            .description(Some(self.description))
            .into()
    }

    /// The field as a path or query parameter.
    pub fn parameter(&self, place: ParameterIn) -> Parameter {
        parameter(self.name, place, self.description, self.schema())
    }
}

/// One of the names of a [`Choice`] enum.
#[derive(Debug, Clone, Copy)]
pub struct ChoiceField<T> {
    /// The field's name.
    pub name: &'static str,
    /// What it means.
    pub description: &'static str,
    choices: PhantomData<T>,
}

impl<T: Choice> ChoiceField<T> {
    /// A field taking one of `T`'s names.
    pub const fn new(name: &'static str, description: &'static str) -> Self {
        ChoiceField {
            name,
            description,
            choices: PhantomData,
        }
    }

    /// Reads the field at `prefix` + name from `text`.
    pub fn read(&self, errors: &mut Errors, prefix: &[LocItem], text: &str) -> Option<T> {
        if let Some(choice) = T::from_name(text) {
            return Some(choice);
        }
        self.refuse(errors, prefix, Value::from(text));
        None
    }

    /// Reads the field at `prefix` + name from a body's `value`: one of the names, as a
    /// string (anything else is the same `enum` error, as pydantic says it).
    pub fn read_value(&self, errors: &mut Errors, prefix: &[LocItem], value: &Value) -> Option<T> {
        match value {
            Value::String(text) => self.read(errors, prefix, text),
            other => {
                self.refuse(errors, prefix, other.clone());
                None
            }
        }
    }

    fn refuse(&self, errors: &mut Errors, prefix: &[LocItem], input: Value) {
        let names: Vec<String> = T::names().iter().map(|n| format!("'{n}'")).collect();
        let expected = match names.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        errors.push(
            "enum",
            at(prefix, self.name),
            format!("Input should be {expected}"),
            input,
            Some(json!({ "expected": expected })),
        );
    }

    /// The field's schema: a string enum of `T`'s names.
    pub fn schema(&self) -> Schema {
        choice::schema::<T>(self.description)
    }

    /// The field as a query parameter.
    pub fn parameter(&self, place: ParameterIn) -> Parameter {
        parameter(self.name, place, self.description, self.schema())
    }
}

/// What the fields' tests share.
#[cfg(test)]
pub(super) mod testing {
    use super::{Errors, LocItem};

    /// The `loc` prefix of a body field.
    pub(in crate::http::input) fn body() -> Vec<LocItem> {
        vec![LocItem::from("body")]
    }

    /// The kinds of the errors recorded, in order.
    pub(in crate::http::input) fn kinds(errors: &Errors) -> Vec<&'static str> {
        errors.0.iter().map(|e| e.kind).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::kinds;
    use super::*;
    use netorch_domain::NodeState;

    #[test]
    fn nodes_are_named_by_id_or_by_name() {
        let node = NodeRefField::new("node_id", "node");
        let mut errors = Errors::default();
        assert_eq!(
            node.read(&mut errors, &[], "42"),
            Some(NodeRef::Id(NodeId(42)))
        );
        assert_eq!(
            node.read(&mut errors, &[], "node-007"),
            Some(NodeRef::Name("node-007".into()))
        );
        assert!(errors.is_empty());
        assert_eq!(node.read(&mut errors, &[], "switch-1"), None);
        assert_eq!(kinds(&errors), ["int_parsing"]);
        let schema = serde_json::to_value(node.schema()).expect("json");
        assert_eq!(schema["anyOf"][1]["pattern"], json!(NODE_NAME_PATTERN));
    }

    #[test]
    fn choices_name_every_allowed_value() {
        let state = ChoiceField::<NodeState>::new("state", "state");
        let mut errors = Errors::default();
        assert_eq!(
            state.read(&mut errors, &[], "RUNNING"),
            Some(NodeState::Running)
        );
        assert_eq!(state.read(&mut errors, &[], "running"), None);
        assert_eq!(
            errors.0[0].msg,
            "Input should be 'PENDING', 'PROVISIONING', 'CONFIGURING', 'RUNNING', 'FAILED' or \
             'DECOMMISSIONING'"
        );
        let schema = serde_json::to_value(state.schema()).expect("json");
        assert_eq!(schema["enum"].as_array().map(Vec::len), Some(6));
    }
}
