//! Every row of the API contract through actix's test service, on SQLite and PostgreSQL, one
//! module per area of the API (one test binary, so it links once).

#[macro_use]
mod common;
mod access;
mod alerts;
mod analytics;
mod collectors;
mod deployments;
mod events;
mod limits;
mod nodes;
mod observability;
mod provisioners;
mod remediation;
mod rollout;
mod security;
mod series;
mod service;
mod telemetry;
mod validation;
