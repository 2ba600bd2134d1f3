//! The HTTP machinery every resource shares: errors and their bodies, reading and checking
//! input, paging, request ids, limits, the host, origin and access checks, the gate in front of
//! reports, database work off the async workers, and the OpenAPI document's assembly.
//!
//! Architecture Invariant: nothing here knows a resource; the resources (`deployments`,
//! `nodes`, …) build on this, never the other way round.

pub mod auth;
pub(crate) mod blocking;
pub(crate) mod choice;
pub(crate) mod document;
pub(crate) mod error;
pub(crate) mod fallback;
pub(crate) mod gate;
pub mod guard;
pub(crate) mod input;
pub mod limits;
pub(crate) mod observe;
pub(crate) mod operation;
pub(crate) mod paging;
pub mod request_id;
pub(crate) mod shapes;
pub(crate) mod wire;
