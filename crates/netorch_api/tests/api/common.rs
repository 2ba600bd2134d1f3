//! What every area's tests share: the app on a scratch database, requests, and seeding.

pub use actix_web::body::MessageBody;
pub use actix_web::dev::{Service, ServiceResponse};
pub use actix_web::http::StatusCode;
pub use actix_web::{App, test, web};
pub use chrono::{Duration, Utc};
pub use netorch_api::ApiState;
pub use netorch_domain::{
    DeploymentId, Metrics, NewSample, NodeId, NodeState, NodeTrigger, Timestamp, WorkerKind,
};
pub use netorch_simulator::{degraded, metrics_at};
pub use netorch_storage::nodes::{NodeChange, NodeFilter};
pub use netorch_storage::{heartbeats, nodes, telemetry};
pub use netorch_testkit::TestDatabase;
pub use serde_json::{Value, json};

pub type Request = actix_http::Request;

/// Makes a key `name` with `role` as `netorch-server keys create` does (through the service
/// layer), valid for `lifetime` from `now` and limited to `deployments` if given: its token
/// and the key as stored.
pub fn create_key(
    conn: &mut netorch_storage::DbConnection,
    name: &str,
    role: netorch_domain::Role,
    lifetime: Option<Duration>,
    deployments: Option<&[DeploymentId]>,
    now: Timestamp,
) -> Result<(String, netorch_domain::ApiKey), netorch_service::ServiceError> {
    let request = netorch_service::keys::KeyRequest {
        lifetime,
        deployments,
        ..netorch_service::keys::KeyRequest::new(name, role)
    };
    let created = netorch_service::keys::create(conn, &request, now)?;
    Ok((created.token, created.key))
}

/// Builds the app on `$state` (an [`ApiState`]) and runs `$body` with it bound to `$app`, on an
/// actix runtime.
#[macro_export]
macro_rules! with_state {
    ($state:expr, |$app:ident| $body:block) => {{
        let state = web::Data::new($state);
        actix_web::rt::System::new().block_on(async move {
            let $app = test::init_service(
                App::new()
                    .app_data(state)
                    .configure(netorch_api::configure)
                    .default_service(web::to(netorch_api::not_found)),
            )
            .await;
            $body
        })
    }};
}

/// Builds the app on `t` (deployments of at most `max` nodes) and runs `$body` with it bound
/// to `$app`, on an actix runtime.
#[macro_export]
macro_rules! with_app {
    ($t:expr, $max:expr, |$app:ident| $body:block) => {
        with_state!(ApiState::new($t.db.clone(), $max), |$app| $body)
    };
    ($t:expr, |$app:ident| $body:block) => {
        with_app!($t, 1000, |$app| $body)
    };
}

pub async fn call<S, B>(app: &S, req: Request) -> (StatusCode, Value)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let response = test::call_service(app, req).await;
    let status = response.status();
    let bytes = test::read_body(response).await;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, body)
}

pub async fn get<S, B>(app: &S, uri: &str) -> (StatusCode, Value)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    call(app, test::TestRequest::get().uri(uri).to_request()).await
}

pub async fn post<S, B>(app: &S, uri: &str, body: &str) -> (StatusCode, Value)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let req = test::TestRequest::post()
        .uri(uri)
        .insert_header(("content-type", "application/json"))
        .set_payload(body.to_owned())
        .to_request();
    call(app, req).await
}

pub async fn delete<S, B>(app: &S, uri: &str) -> (StatusCode, Value)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    call(app, test::TestRequest::delete().uri(uri).to_request()).await
}

pub async fn create<S, B>(app: &S, name: &str, nodes: u32) -> i64
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let (status, body) = post(
        app,
        "/deployments",
        &json!({"name": name, "target_node_count": nodes}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_i64().expect("id")
}

/// The contract's timestamp format: UTC, no offset, microseconds.
pub fn is_timestamp(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    s.len() == 26
        && chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.6f").is_ok()
        && !s.ends_with('Z')
}

/// The `(type, loc)` pairs of a 422 body.
pub fn errors(body: &Value) -> Vec<(String, Value)> {
    body["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("not a 422 body: {body}"))
        .iter()
        .map(|e| {
            assert!(e["msg"].is_string(), "{e}");
            assert!(e.get("input").is_some(), "{e}");
            (
                e["type"].as_str().unwrap_or_default().to_owned(),
                e["loc"].clone(),
            )
        })
        .collect()
}

pub fn node_ids(t: &TestDatabase, deployment: i64) -> Vec<NodeId> {
    let mut conn = t.db.get().expect("connection");
    nodes::list(&mut conn, DeploymentId(deployment), &NodeFilter::default())
        .expect("nodes")
        .nodes
        .iter()
        .map(|n| n.id)
        .collect()
}

/// Moves a node to FAILED through the state machine.
pub fn fail_node(t: &TestDatabase, deployment: i64, node: NodeId) {
    let mut conn = t.db.get().expect("connection");
    let mut current = nodes::get(&mut conn, DeploymentId(deployment), node).expect("node");
    for trigger in [
        NodeTrigger::StartProvisioning,
        NodeTrigger::ProvisioningFailed,
    ] {
        let change = NodeChange {
            ip_address: None,
            failure_reason: Some("cable cut".into()),
            actor: None,
        };
        current = nodes::transition(&mut conn, &current, trigger, &change, Utc::now())
            .expect("transition")
            .expect("no race");
    }
}

pub fn run_node(t: &TestDatabase, deployment: i64, node: NodeId) {
    let mut conn = t.db.get().expect("connection");
    let mut current = nodes::get(&mut conn, DeploymentId(deployment), node).expect("node");
    for trigger in [
        NodeTrigger::StartProvisioning,
        NodeTrigger::ProvisioningSucceeded,
        NodeTrigger::ConfigurationSucceeded,
    ] {
        current = nodes::transition(
            &mut conn,
            &current,
            trigger,
            &NodeChange::default(),
            Utc::now(),
        )
        .expect("transition")
        .expect("no race");
    }
}

/// Stores `minutes` of simulated telemetry (5 s slots) for the deployment's nodes, ending now.
pub fn seed_telemetry(t: &TestDatabase, deployment: i64, minutes: i64) {
    let now = Utc::now();
    let mut samples = Vec::new();
    for slot in 0..(minutes * 12) {
        let at: Timestamp = now - Duration::seconds(5 * slot + 1);
        for node in node_ids(t, deployment) {
            samples.push(NewSample {
                node_id: node,
                deployment_id: DeploymentId(deployment),
                timestamp: at,
                metrics: metrics_at(node, at),
            });
        }
    }
    let mut conn = t.db.get().expect("connection");
    telemetry::insert_batch(&mut conn, &samples).expect("seed");
}
