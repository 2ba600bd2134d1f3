//! `POST /api/v1/write` (Prometheus remote write 1.0 and 2.0) through the test service: points
//! stored by their labels, a node's metrics assembled across requests, refusals counted in the
//! answer and the metrics, the 2.0 answer's headers, and bodies that are not what they say
//! refused with nothing stored.

use crate::common::*;
use netorch_api::collectors::remote_write::{Sample, v1, v2};
use netorch_domain::Role;
use prost::Message;

fn label(name: &str, value: &str) -> v1::Label {
    v1::Label {
        name: name.into(),
        value: value.into(),
    }
}

/// A series of `metric` for `node` of `deployment`, one sample `seconds_ago`.
fn series(
    metric: &str,
    deployment: &str,
    node: &str,
    seconds_ago: i64,
    value: f64,
) -> v1::TimeSeries {
    v1::TimeSeries {
        labels: vec![
            label("__name__", metric),
            label("deployment", deployment),
            label("node", node),
            label("job", "switches"),
        ],
        samples: vec![Sample {
            value,
            timestamp: start_millis() - seconds_ago * 1000,
        }],
        histograms: Vec::new(),
    }
}

/// The test run's "now" in milliseconds, the same for every series (so a retry is the same
/// reading, as a sender's is).
fn start_millis() -> i64 {
    static START: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *START.get_or_init(|| Utc::now().timestamp_millis())
}

/// The three series of one reading.
fn reading(deployment: &str, node: &str, seconds_ago: i64) -> Vec<v1::TimeSeries> {
    vec![
        series("netorch_latency_ms", deployment, node, seconds_ago, 12.5),
        series(
            "netorch_throughput_gbps",
            deployment,
            node,
            seconds_ago,
            9.5,
        ),
        series("netorch_error_rate", deployment, node, seconds_ago, 0.25),
    ]
}

fn snappy(bytes: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(bytes)
        .expect("compress")
}

fn write_request(body: Vec<u8>, content_type: &str, token: Option<&str>) -> Request {
    let mut req = test::TestRequest::post()
        .uri("/api/v1/write")
        .insert_header(("content-type", content_type))
        .insert_header(("content-encoding", "snappy"))
        .insert_header(("x-prometheus-remote-write-version", "0.1.0"));
    if let Some(token) = token {
        req = req.insert_header(("authorization", format!("Bearer {token}")));
    }
    req.set_payload(body).to_request()
}

fn v1_body(timeseries: Vec<v1::TimeSeries>) -> Vec<u8> {
    snappy(&v1::WriteRequest { timeseries }.encode_to_vec())
}

async fn stored<S, B>(app: &S, deployment: i64) -> Vec<(i64, f64, f64, f64)>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let (status, body) = get(app, &format!("/deployments/{deployment}/telemetry")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut rows: Vec<(i64, f64, f64, f64)> = body["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| {
            (
                s["node_id"].as_i64().expect("node"),
                s["latency_ms"].as_f64().expect("latency"),
                s["throughput_gbps"].as_f64().expect("throughput"),
                s["error_rate"].as_f64().expect("error rate"),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.partial_cmp(b).expect("numbers"));
    rows
}

fn remote_write_stores_what_prometheus_sends(t: &TestDatabase) {
    with_app!(t, |app| {
        let id = create(&app, "dc-east", 3).await;
        let nodes = node_ids(t, id);
        let d = id.to_string();

        // Node 1 by id, node 2 by name; a series of another metric and one of an unknown node.
        let mut timeseries = reading(&d, &nodes[0].get().to_string(), 10);
        timeseries.extend(reading("dc-east", "node-002", 10));
        timeseries.push(series("up", &d, "node-001", 10, 1.0));
        timeseries.push(series("netorch_latency_ms", &d, "node-404", 10, 1.0));
        let req = write_request(v1_body(timeseries), "application/x-protobuf", None);
        let (status, body) = call(&app, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let detail = body["detail"].as_str().expect("detail");
        assert!(
            detail.starts_with("6 of 8 samples accepted; 2 points refused: "),
            "{detail}"
        );
        assert!(detail.contains("1 unknown_metric"), "{detail}");
        assert!(detail.contains("1 unknown_node"), "{detail}");
        let got = stored(&app, id).await;
        assert_eq!(
            got,
            [
                (nodes[0].get(), 12.5, 9.5, 0.25),
                (nodes[1].get(), 12.5, 9.5, 0.25)
            ]
        );

        // Node 3's series in two requests, as Prometheus's shards send them: one sample.
        let mut parts = reading(&d, "node-003", 20);
        let last = parts.pop().expect("error rate");
        let req = write_request(v1_body(parts), "application/x-protobuf", None);
        let (status, body) = call(&app, req).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        assert_eq!(
            stored(&app, id).await.len(),
            2,
            "waiting for its error rate"
        );
        let req = write_request(v1_body(vec![last]), "application/x-protobuf", None);
        assert_eq!(call(&app, req).await.0, StatusCode::NO_CONTENT);
        assert_eq!(stored(&app, id).await.len(), 3);

        // A retry of everything stores nothing twice.
        let mut again = reading(&d, "node-003", 20);
        again.extend(reading("dc-east", "node-002", 10));
        let req = write_request(v1_body(again), "application/x-protobuf", None);
        assert_eq!(call(&app, req).await.0, StatusCode::NO_CONTENT);
        assert_eq!(stored(&app, id).await.len(), 3);

        // 2.0: the labels from the symbols, and the counts in the answer's headers.
        let request = v2::Request {
            symbols: [
                "",
                "__name__",
                "netorch_latency_ms",
                "netorch_throughput_gbps",
                "netorch_error_rate",
                "deployment",
                "dc-east",
                "node",
                "node-001",
            ]
            .map(String::from)
            .to_vec(),
            timeseries: (2..5)
                .map(|metric| v2::TimeSeries {
                    labels_refs: vec![1, metric, 5, 6, 7, 8],
                    samples: vec![Sample {
                        value: 1.5,
                        timestamp: start_millis() - 30_000,
                    }],
                    histograms: Vec::new(),
                })
                .collect(),
        };
        let req = write_request(
            snappy(&request.encode_to_vec()),
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            None,
        );
        let response = test::call_service(&app, req).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(
            header("X-Prometheus-Remote-Write-Samples-Written").as_deref(),
            Some("3")
        );
        assert_eq!(
            header("X-Prometheus-Remote-Write-Histograms-Written").as_deref(),
            Some("0")
        );
        assert_eq!(
            header("X-Prometheus-Remote-Write-Exemplars-Written").as_deref(),
            Some("0")
        );
        assert_eq!(stored(&app, id).await.len(), 4);

        // What is not remote write: 415 or 400, and nothing stored.
        let good = v1_body(reading(&d, "node-001", 40));
        let cases: Vec<(Request, StatusCode)> = vec![
            (
                write_request(good.clone(), "application/json", None),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                write_request(good.clone(), "application/x-protobuf;proto=foo.Bar", None),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                test::TestRequest::post()
                    .uri("/api/v1/write")
                    .insert_header(("content-type", "application/x-protobuf"))
                    .set_payload(good.clone())
                    .to_request(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                write_request(
                    b"\x20\xff\xfe corrupt snappy".to_vec(),
                    "application/x-protobuf",
                    None,
                ),
                StatusCode::BAD_REQUEST,
            ),
            (
                write_request(
                    snappy(
                        &v1::WriteRequest {
                            timeseries: reading(&d, "node-001", 40),
                        }
                        .encode_to_vec()[..20],
                    ),
                    "application/x-protobuf",
                    None,
                ),
                StatusCode::BAD_REQUEST,
            ),
            // A bomb: 40 MiB of zeros in a few kilobytes (the limit is 4 times the 8 MiB body limit).
            (
                write_request(snappy(&vec![0u8; 40 << 20]), "application/x-protobuf", None),
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
        ];
        for (req, expected) in cases {
            let (status, body) = call(&app, req).await;
            assert_eq!(status, expected, "{body}");
            assert!(body["detail"].is_string(), "{body}");
        }
        assert_eq!(stored(&app, id).await.len(), 4);

        // A label value of 1 MB: refused with a reason, the answer short.
        let huge = "x".repeat(1 << 20);
        let req = write_request(
            v1_body(vec![series(
                "netorch_latency_ms",
                &huge,
                "node-001",
                5,
                1.0,
            )]),
            "application/x-protobuf",
            None,
        );
        let (status, body) = call(&app, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let detail = body["detail"].as_str().expect("detail");
        assert!(
            detail.contains("1 unknown_deployment"),
            "{}",
            &detail[..200]
        );
        assert!(detail.len() < 1_000, "{} bytes", detail.len());
        assert_eq!(stored(&app, id).await.len(), 4);

        // Every refusal is counted by protocol and reason.
        let response =
            test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
        let text = String::from_utf8(test::read_body(response).await.to_vec()).expect("utf-8");
        for line in [
            "netorch_ingest_rejected_total{protocol=\"prometheus_remote_write\",reason=\"unknown_metric\"} 1",
            "netorch_ingest_rejected_total{protocol=\"prometheus_remote_write\",reason=\"unknown_node\"} 1",
            "netorch_ingest_rejected_total{protocol=\"prometheus_remote_write\",reason=\"unknown_deployment\"} 1",
            "netorch_telemetry_samples_written_total{source=\"prometheus_remote_write\"} 4",
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
    });
}

fn a_collector_limited_to_a_deployment_writes_there_only(t: &TestDatabase) {
    let now = Utc::now();
    with_state!(
        ApiState::new(t.db.clone(), 1000).with_auth(netorch_api::auth::AuthMode::Keys),
        |app| {
            let mut conn = t.db.get().expect("connection");
            let (admin, _) =
                create_key(&mut conn, "root", Role::Admin, None, None, now).expect("key");
            let make = |name: &str| {
                test::TestRequest::post()
                    .uri("/deployments")
                    .insert_header(("authorization", format!("Bearer {admin}")))
                    .insert_header(("content-type", "application/json"))
                    .set_payload(json!({"name": name, "target_node_count": 1}).to_string())
                    .to_request()
            };
            let (_, mine) = call(&app, make("mine")).await;
            let (_, theirs) = call(&app, make("theirs")).await;
            let mine = DeploymentId(mine["id"].as_i64().expect("id"));
            let (collector, _) =
                create_key(&mut conn, "edge", Role::Collector, None, Some(&[mine]), now)
                    .expect("key");
            let mut timeseries = reading("mine", "node-001", 5);
            timeseries.extend(reading("theirs", "node-001", 5));
            let req = write_request(
                v1_body(timeseries),
                "application/x-protobuf",
                Some(&collector),
            );
            let (status, body) = call(&app, req).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            let detail = body["detail"].as_str().expect("detail");
            assert!(detail.contains("3 forbidden_deployment"), "{detail}");
            let theirs = theirs["id"].as_i64().expect("id");
            let count = |d: i64| {
                netorch_storage::telemetry::count(
                    &mut t.db.get().expect("connection"),
                    DeploymentId(d),
                )
                .expect("count")
            };
            assert_eq!((count(mine.get()), count(theirs)), (1, 0));
            // A viewer may not write at all.
            let (viewer, _) =
                create_key(&mut conn, "eyes", Role::Viewer, None, None, now).expect("key");
            let req = write_request(
                v1_body(reading("mine", "node-001", 4)),
                "application/x-protobuf",
                Some(&viewer),
            );
            assert_eq!(call(&app, req).await.0, StatusCode::FORBIDDEN);
        }
    );
}

fn lines(body: &str, uri: &str, auth: Option<String>, gzip: bool) -> Request {
    let mut req = test::TestRequest::post()
        .uri(uri)
        .insert_header(("content-type", "text/plain; charset=utf-8"));
    if let Some(auth) = auth {
        req = req.insert_header(("authorization", auth));
    }
    let payload = if gzip {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(body.as_bytes()).expect("gzip");
        req = req.insert_header(("content-encoding", "gzip"));
        encoder.finish().expect("gzip")
    } else {
        body.as_bytes().to_vec()
    };
    req.set_payload(payload).to_request()
}

fn line_protocol_stores_what_telegraf_sends(t: &TestDatabase) {
    let now = Utc::now();
    with_state!(
        ApiState::new(t.db.clone(), 1000).with_auth(netorch_api::auth::AuthMode::Keys),
        |app| {
            let mut conn = t.db.get().expect("connection");
            let (token, _) =
                create_key(&mut conn, "telegraf", Role::Collector, None, None, now).expect("key");
            let (admin, _) =
                create_key(&mut conn, "root", Role::Admin, None, None, now).expect("key");
            let req = test::TestRequest::post()
                .uri("/deployments")
                .insert_header(("authorization", format!("Bearer {admin}")))
                .insert_header(("content-type", "application/json"))
                .set_payload(json!({"name": "lp", "target_node_count": 2}).to_string())
                .to_request();
            let (_, created) = call(&app, req).await;
            let id = created["id"].as_i64().expect("id");
            let seconds = now.timestamp() - 30;
            let count = || {
                netorch_storage::telemetry::count(
                    &mut t.db.get().expect("connection"),
                    DeploymentId(id),
                )
                .expect("count")
            };

            // InfluxDB 2: Token, seconds, gzip; a node by name and one by hostname-less id.
            let body = format!(
                "netorch,deployment={id},node=node-001 latency_ms=12.5,throughput_gbps=9.5,error_rate=0.25 {seconds}\n\
                 netorch,deployment=lp,node=node-002 latency_ms=13,throughput_gbps=9i,error_rate=0.5 {seconds}\n"
            );
            let uri = "/api/v2/write?org=ops&bucket=net&precision=s";
            let req = lines(&body, uri, Some(format!("Token {token}")), true);
            let (status, answer) = call(&app, req).await;
            assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
            assert_eq!(count(), 2);

            // InfluxDB 1: the key as the basic auth password, milliseconds; a field of another
            // name and a measurement of another name are refused and counted, the rest stored.
            use base64::Engine;
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("telegraf:{token}"));
            let millis = (seconds + 5) * 1000;
            let body = format!(
                "netorch,deployment={id},node=node-001 latency_ms=1,throughput_gbps=2,error_rate=0,jitter_ms=3 {millis}\n\
                 cpu,host=a usage=5 {millis}\n"
            );
            let req = lines(
                &body,
                "/write?db=net&precision=ms",
                Some(format!("Basic {basic}")),
                false,
            );
            let (status, answer) = call(&app, req).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
            let detail = answer["detail"].as_str().expect("detail");
            assert!(
                detail.starts_with("3 of 5 fields accepted; 2 points refused: 2 unknown_metric"),
                "{detail}"
            );
            assert_eq!(count(), 3);

            // A line that is not line protocol: its number named, nothing of the request stored.
            let body = format!(
                "netorch,deployment={id},node=node-002 latency_ms=1,throughput_gbps=2,error_rate=0 {millis}\n\
                 netorch,deployment={id},node=node-002 latency_ms\n"
            );
            let req = lines(
                &body,
                "/write?precision=ms",
                Some(format!("Token {token}")),
                false,
            );
            let (status, answer) = call(&app, req).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
            let detail = answer["detail"].as_str().expect("detail");
            assert!(
                detail.starts_with("line 2 is not line protocol"),
                "{detail}"
            );
            assert_eq!(count(), 3);

            // A body of two gzip members (concatenated files, or a sender that compresses in
            // chunks): both read.
            let member = |line: String| {
                use std::io::Write;
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(line.as_bytes()).expect("gzip");
                encoder.finish().expect("gzip")
            };
            let body = [
                member(format!("netorch,deployment={id},node=node-001 latency_ms=1,throughput_gbps=1,error_rate=0 {}\n", seconds - 20)),
                member(format!("netorch,deployment={id},node=node-002 latency_ms=1,throughput_gbps=1,error_rate=0 {}\n", seconds - 20)),
            ]
            .concat();
            let req = test::TestRequest::post()
                .uri(uri)
                .insert_header(("authorization", format!("Token {token}")))
                .insert_header(("content-encoding", "gzip"))
                .set_payload(body)
                .to_request();
            assert_eq!(call(&app, req).await.0, StatusCode::NO_CONTENT);
            assert_eq!(count(), 5);

            // InfluxDB 1's `u`/`p` query (the key as the password, percent-encoded as the
            // clients send it): taken on /write only; elsewhere a key in the query is no key.
            let line = format!(
                "netorch,deployment={id},node=node-002 latency_ms=1,throughput_gbps=1,error_rate=0 {}\n",
                seconds - 25
            );
            let req = lines(
                &line,
                &format!(
                    "/write?db=net&u=telegraf&p={token}&precision=s&rp=autogen&consistency=one"
                ),
                None,
                false,
            );
            let (status, answer) = call(&app, req).await;
            assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
            assert_eq!(count(), 6);
            for uri in [
                format!("/api/v2/write?precision=s&p={token}"),
                "/write?precision=s&p=ntk_wrong".to_owned(),
                "/write?precision=s&p=".to_owned(),
            ] {
                let (status, answer) = call(&app, lines(&line, &uri, None, false)).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}: {answer}");
            }
            let req = test::TestRequest::get()
                .uri(&format!("/deployments?p={admin}"))
                .to_request();
            assert_eq!(call(&app, req).await.0, StatusCode::UNAUTHORIZED);

            // A gzip bomb, another encoding, an unknown precision, no key.
            let bomb = "x".repeat(40 << 20);
            for (req, expected) in [
                (
                    lines(&bomb, uri, Some(format!("Token {token}")), true),
                    StatusCode::PAYLOAD_TOO_LARGE,
                ),
                (
                    test::TestRequest::post()
                        .uri(uri)
                        .insert_header(("authorization", format!("Token {token}")))
                        .insert_header(("content-encoding", "br"))
                        .set_payload("x")
                        .to_request(),
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ),
                (
                    lines(
                        "x",
                        "/api/v2/write?precision=weeks",
                        Some(format!("Token {token}")),
                        false,
                    ),
                    StatusCode::BAD_REQUEST,
                ),
                (lines("x", uri, None, false), StatusCode::UNAUTHORIZED),
            ] {
                let (status, answer) = call(&app, req).await;
                assert_eq!(status, expected, "{answer}");
            }
            assert_eq!(count(), 6);
        }
    );
}

fn otlp_request(body: Vec<u8>, content_type: &str) -> Request {
    test::TestRequest::post()
        .uri("/v1/metrics")
        .insert_header(("content-type", content_type))
        .set_payload(body)
        .to_request()
}

fn otlp_stores_gauges_and_answers_partial_success(t: &TestDatabase) {
    use netorch_api::collectors::otlp::messages::{
        ExportMetricsServiceRequest, ExportMetricsServiceResponse, Status,
    };
    with_app!(t, |app| {
        let id = create(&app, "otel", 2).await;
        let nanos = start_millis() * 1_000_000 - 60_000_000_000;
        let gauge = |name: &str, node: &str, value: f64| {
            json!({"name": name, "gauge": {"dataPoints": [{
                "asDouble": value, "timeUnixNano": nanos.to_string(),
                "attributes": [{"key": "node", "value": {"stringValue": node}}]}]}})
        };
        let request = json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "deployment", "value": {"intValue": id.to_string()}}]},
        "scopeMetrics": [{"metrics": [
            gauge("netorch_latency_ms", "node-001", 12.5),
            gauge("netorch_throughput_gbps", "node-001", 9.5),
            gauge("netorch_error_rate", "node-001", 0.25),
            gauge("netorch_latency_ms", "node-404", 1.0),
        ]}]}]});

        // OTLP/JSON: one sample, one point refused, said in partialSuccess.
        let req = otlp_request(request.to_string().into_bytes(), "application/json");
        let (status, body) = call(&app, req).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["partialSuccess"]["rejectedDataPoints"], "1", "{body}");
        let message = body["partialSuccess"]["errorMessage"]
            .as_str()
            .expect("message");
        assert!(
            message.starts_with("3 of 4 data points accepted"),
            "{message}"
        );
        assert_eq!(stored(&app, id).await.len(), 1);

        // The same as protobuf: all of it already stored but the stranger; the answer is
        // protobuf too.
        let decoded: ExportMetricsServiceRequest =
            serde_json::from_value(request).expect("OTLP/JSON");
        let req = otlp_request(decoded.encode_to_vec(), "application/x-protobuf");
        let response = test::call_service(&app, req).await;
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = test::read_body(response).await;
        let answer = ExportMetricsServiceResponse::decode(bytes.as_ref()).expect("response");
        assert_eq!(
            answer
                .partial_success
                .expect("partial")
                .rejected_data_points,
            1
        );
        assert_eq!(stored(&app, id).await.len(), 1);

        // A body that is not a request: 400 with a google.rpc.Status, nothing stored.
        let req = otlp_request(b"\x0a\xff\xff\xff".to_vec(), "application/x-protobuf");
        let response = test::call_service(&app, req).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let bytes = test::read_body(response).await;
        let status = Status::decode(bytes.as_ref()).expect("a Status");
        assert_eq!(status.code, 3);
        assert!(
            status
                .message
                .contains("not an ExportMetricsServiceRequest"),
            "{status:?}"
        );
        let req = otlp_request(b"{\"resourceMetrics\": 7}".to_vec(), "application/json");
        let (status, body) = call(&app, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["code"], 3, "{body}");
        let req = otlp_request(b"x".to_vec(), "text/plain");
        assert_eq!(call(&app, req).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        // An encoding named but empty is no encoding netorch takes (absent is none).
        let req = test::TestRequest::post()
            .uri("/v1/metrics")
            .insert_header(("content-type", "application/x-protobuf"))
            .insert_header(("content-encoding", ""))
            .to_request();
        assert_eq!(call(&app, req).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(stored(&app, id).await.len(), 1);
    });
}

netorch_testkit::backend_tests!(
    otlp_stores_gauges_and_answers_partial_success,
    remote_write_stores_what_prometheus_sends,
    a_collector_limited_to_a_deployment_writes_there_only,
    line_protocol_stores_what_telegraf_sends
);
