//! What a resource registers: its operations (method, path, who may call it, what it writes,
//! its handler), the files it serves beside them, and its part of the OpenAPI document.
//! [`configure`](crate::configure) mounts the routes, the access check reads who may call
//! each, and the document adds the responses the shared machinery gives, all from here: an
//! operation is declared once, in its resource's module.

use netorch_domain::Action;
use utoipa::openapi::OpenApi as Document;

/// An operation's HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Get,
    Post,
    Patch,
    Delete,
}

impl Verb {
    /// Every verb, in the order an `Allow` header lists them.
    pub(crate) const ALL: [Verb; 4] = [Verb::Get, Verb::Post, Verb::Patch, Verb::Delete];

    /// Its name on the wire.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
        }
    }

    /// actix's method.
    pub(crate) fn method(self) -> actix_web::http::Method {
        use actix_web::http::Method;
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Patch => Method::PATCH,
            Verb::Delete => Method::DELETE,
        }
    }

    /// The document's operation of this verb in `item`.
    pub(crate) fn operation_in(
        self,
        item: &mut utoipa::openapi::PathItem,
    ) -> Option<&mut utoipa::openapi::path::Operation> {
        match self {
            Verb::Get => item.get.as_mut(),
            Verb::Post => item.post.as_mut(),
            Verb::Patch => item.patch.as_mut(),
            Verb::Delete => item.delete.as_mut(),
        }
    }
}

/// Who may call an operation when the server asks for API keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone, without a key: the probes, the API's documentation and the dashboard's pages
    /// (which hold no data: they ask the API with the token the user gives them).
    Open,
    /// Any active key, whatever its role and deployments: who it is, the service's name.
    AnyKey,
    /// A key whose role may take this action (and, for a deployment's path, whose
    /// deployments include it).
    Needs(Action),
    /// A key whose role may take this action, whatever its deployments: the body names a
    /// deployment item by item (the collectors' protocols, a label a point), and the handler
    /// refuses the items of deployments a limited key does not reach.
    NeedsForEachItem(Action),
}

impl Access {
    /// What a method an operation's path does not serve is checked as, before its 405: what
    /// such a method would do.
    pub(crate) fn of_unserved(method: &actix_web::http::Method) -> Access {
        use actix_web::http::Method;
        Access::Needs(if *method == Method::GET || *method == Method::HEAD {
            Action::Read
        } else if *method == Method::DELETE {
            Action::Delete
        } else {
            Action::Change
        })
    }
}

/// What an operation does to the database, for the responses the document adds to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Reads only.
    Reads,
    /// Writes: 507 when the database is out of space, and then "nothing was" this (written,
    /// stored, deleted).
    Writes(&'static str),
}

/// One operation of the API.
pub(crate) struct Operation {
    pub(crate) verb: Verb,
    /// The route's pattern, as the document shows it.
    pub(crate) path: &'static str,
    pub(crate) access: Access,
    pub(crate) effect: Effect,
    /// Attaches the handler: `|route| route.to(handler)`.
    pub(crate) handler: fn(actix_web::Route) -> actix_web::Route,
}

impl Operation {
    /// A `GET` of `path` that `access` allows and that reads only.
    pub(crate) const fn get(
        path: &'static str,
        access: Access,
        handler: fn(actix_web::Route) -> actix_web::Route,
    ) -> Self {
        Operation {
            verb: Verb::Get,
            path,
            access,
            effect: Effect::Reads,
            handler,
        }
    }

    /// A `verb` of `path` that takes `action` and writes (`nothing_was`: what a refused one
    /// did not do).
    pub(crate) const fn write(
        verb: Verb,
        path: &'static str,
        action: Action,
        nothing_was: &'static str,
        handler: fn(actix_web::Route) -> actix_web::Route,
    ) -> Self {
        Operation {
            verb,
            path,
            access: Access::Needs(action),
            effect: Effect::Writes(nothing_was),
            handler,
        }
    }
}

/// Files a resource serves beside its operations (scripts, styles, the dashboard's pages):
/// `GET` only, open, through the host check, and not in the document.
pub(crate) struct Files {
    pub(crate) path: &'static str,
    pub(crate) handler: fn(actix_web::Route) -> actix_web::Route,
}

/// What a resource registers.
pub(crate) struct Resource {
    pub(crate) operations: &'static [Operation],
    pub(crate) files: &'static [Files],
    /// Its part of the document: the `utoipa::path` of each operation, with their schemas.
    pub(crate) document: fn() -> Document,
    /// What it changes in the document for a server's settings (the limits it enforces).
    pub(crate) for_server: fn(&mut Document, &crate::ApiState),
}

impl Resource {
    /// A resource with no files and a document the same for every server.
    pub(crate) const fn new(operations: &'static [Operation], document: fn() -> Document) -> Self {
        Resource {
            operations,
            files: &[],
            document,
            for_server: |_, _| {},
        }
    }
}
