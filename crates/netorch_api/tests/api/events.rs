use crate::common::*;

fn events_page_in_order(t: &TestDatabase) {
    with_app!(t, |app| {
        let id = create(&app, "ev", 3).await;
        let nodes = node_ids(t, id);
        run_node(t, id, nodes[0]);
        fail_node(t, id, nodes[1]);
        let uri = format!("/deployments/{id}/events");
        let (status, body) = get(&app, &format!("{uri}?limit=2")).await;
        assert_eq!(status, StatusCode::OK);
        let first = body["events"].as_array().expect("events").clone();
        assert_eq!(first.len(), 2);
        assert_eq!(first[0]["event_type"], "DEPLOYMENT_CREATED");
        assert!(is_timestamp(&first[0]["created_at"]) && first[0]["metadata"].is_object());
        let cursor = body["next_after"].as_i64().expect("more to come");
        let (_, rest) = get(&app, &format!("{uri}?after={cursor}&limit=1000")).await;
        let rest = rest["events"].as_array().expect("events").clone();
        assert_eq!(rest.len(), 4, "3 + 2 transitions, 1 + 1 seen");
        let ids: Vec<i64> = first
            .iter()
            .chain(&rest)
            .map(|e| e["id"].as_i64().expect("id"))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let (_, last) = get(&app, &format!("{uri}?after={}", ids[5])).await;
        assert_eq!(last, json!({"events": [], "next_after": null}));
        let (_, changes) = get(
            &app,
            &format!("{uri}?event_type=STATE_CHANGE&node_id={}", nodes[1]),
        )
        .await;
        let steps: Vec<(&str, &str)> = changes["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| {
                (
                    e["metadata"]["from_state"].as_str().unwrap_or(""),
                    e["metadata"]["to_state"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            steps,
            vec![("PENDING", "PROVISIONING"), ("PROVISIONING", "FAILED")]
        );
    })
}

/// The next chunk of a streamed body as text; `None` when the stream ended. Panics after 10 s.
async fn next_chunk<B: MessageBody>(body: &mut std::pin::Pin<Box<B>>) -> Option<String> {
    let chunk = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        std::future::poll_fn(|cx| body.as_mut().poll_next(cx)),
    )
    .await
    .expect("a chunk within 10 s");
    chunk.map(|bytes| {
        let bytes = bytes.ok().expect("a chunk, not an error");
        String::from_utf8(bytes.to_vec()).expect("text")
    })
}

/// Reads chunks until one contains `needle`; returns everything read.
async fn read_until<B: MessageBody>(body: &mut std::pin::Pin<Box<B>>, needle: &str) -> String {
    let mut text = String::new();
    while !text.contains(needle) {
        text += &next_chunk(body).await.expect("the stream goes on");
    }
    text
}

/// The `(id, event, data)` of each message in `text`.
fn messages(text: &str) -> Vec<(i64, String, Value)> {
    text.split("\n\n")
        .filter(|block| block.starts_with("id: "))
        .map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .expect("field")
                    .to_owned()
            };
            (
                field("id: ").parse().expect("numeric id"),
                field("event: "),
                serde_json::from_str(&field("data: ")).expect("JSON data"),
            )
        })
        .collect()
}

/// The app's state with the event stream polling every 10 ms and the given heartbeat.
fn quick_streams(t: &TestDatabase, heartbeat: std::time::Duration) -> ApiState {
    let timing = netorch_api::EventStreamTiming {
        poll: std::time::Duration::from_millis(10),
        heartbeat,
    };
    ApiState::new(t.db.clone(), 1000).with_event_stream_timing(timing)
}

fn the_event_stream_follows_the_log_and_ends_after_the_delete(t: &TestDatabase) {
    let state = quick_streams(t, std::time::Duration::from_millis(50));
    with_state!(state, |app| {
        let id = create(&app, "live", 2).await;
        let nodes = node_ids(t, id);
        let uri = format!("/deployments/{id}/events/stream");
        let response =
            test::call_service(&app, test::TestRequest::get().uri(&uri).to_request()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        let mut body = Box::pin(response.into_body());
        // The backlog first, with the reconnection delay.
        let opening = read_until(&mut body, "DEPLOYMENT_CREATED").await;
        assert!(opening.starts_with("retry: 2000\n\n"), "{opening}");
        let created = messages(&opening);
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].1, "DEPLOYMENT_CREATED");
        assert_eq!(created[0].2["id"], created[0].0);
        assert_eq!(created[0].2["deployment_id"], id);
        // Then what happens, as it happens: the data is the event as GET .../events shows it.
        fail_node(t, id, nodes[1]);
        let live = messages(&read_until(&mut body, "FAILED").await);
        let (_, listed) = get(&app, &format!("/deployments/{id}/events")).await;
        let listed = listed["events"].as_array().expect("events").clone();
        assert_eq!(listed.len(), 3);
        assert_eq!(live.len(), 2);
        for (message, event) in live.iter().zip(&listed[1..]) {
            assert_eq!(message.0, event["id"]);
            assert_eq!(message.1, event["event_type"]);
            assert_eq!(&message.2, event);
        }
        // Silence gets a heartbeat.
        assert_eq!(
            next_chunk(&mut body).await.as_deref(),
            Some(": keep-alive\n\n")
        );
        // The delete's event is the last; then the stream ends.
        let (status, _) = delete(&app, &format!("/deployments/{id}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let mut rest = String::new();
        while let Some(chunk) = next_chunk(&mut body).await {
            rest += &chunk;
        }
        let rest = messages(&rest);
        assert_eq!(
            rest.last().map(|m| m.1.as_str()),
            Some("DEPLOYMENT_DELETED")
        );
        let last_id = rest.last().map(|m| m.0).expect("an event");

        // A client that reconnects after the first event gets what the audit log still holds
        // after it (it outlives the deployment), and the stream ends.
        let resumed = test::TestRequest::get()
            .uri(&uri)
            .insert_header(("Last-Event-ID", created[0].0.to_string()))
            .to_request();
        let resumed = test::call_service(&app, resumed).await;
        assert_eq!(resumed.status(), StatusCode::OK);
        let resumed = test::read_body(resumed).await;
        let resumed = messages(&String::from_utf8_lossy(&resumed));
        let (_, kept) = get(
            &app,
            &format!("/deployments/{id}/events?after={}", created[0].0),
        )
        .await;
        let kept: Vec<Value> = kept["events"].as_array().expect("events").clone();
        assert!(!kept.is_empty());
        assert_eq!(resumed.len(), kept.len());
        for (message, event) in resumed.iter().zip(&kept) {
            assert_eq!(&message.2, event);
        }
        // The header wins over `after`.
        let header_wins = test::TestRequest::get()
            .uri(&format!("{uri}?after=0"))
            .insert_header(("Last-Event-ID", last_id.to_string()))
            .to_request();
        let (status, body) = call(&app, header_wins).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "nothing after the last: {body}"
        );
        assert_eq!(body["detail"], "Deployment not found");
        // Never existed: 404. A cursor that is not a number: 422 naming the header.
        let (status, _) = get(&app, "/deployments/999999/events/stream").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let bad = test::TestRequest::get()
            .uri(&uri)
            .insert_header(("Last-Event-ID", "soon"))
            .to_request();
        let (status, body) = call(&app, bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["detail"][0]["loc"], json!(["header", "Last-Event-ID"]));
    })
}

fn a_live_view_starts_at_the_tail_of_the_log(t: &TestDatabase) {
    let state = quick_streams(t, std::time::Duration::from_secs(60));
    with_state!(state, |app| {
        let id = create(&app, "tail", 3).await;
        for node in node_ids(t, id) {
            run_node(t, id, node);
        }
        let (_, listed) = get(&app, &format!("/deployments/{id}/events?limit=1000")).await;
        let listed = listed["events"].as_array().expect("events").clone();
        assert_eq!(listed.len(), 10, "created, then three transitions per node");
        let uri = format!("/deployments/{id}/events/stream");
        let response = test::call_service(
            &app,
            test::TestRequest::get()
                .uri(&format!("{uri}?tail=4"))
                .to_request(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = Box::pin(response.into_body());
        let last = listed[9]["id"].as_i64().expect("id");
        let text = read_until(&mut body, &format!("id: {last}\n")).await;
        let ids: Vec<i64> = messages(&text).iter().map(|m| m.0).collect();
        let expected: Vec<i64> = listed[6..]
            .iter()
            .map(|e| e["id"].as_i64().expect("id"))
            .collect();
        assert_eq!(ids, expected, "the last four events, oldest first");
        // A cursor wins over tail; a tail longer than the log is the whole log.
        let first = listed[0]["id"].as_i64().expect("id");
        let request = test::TestRequest::get()
            .uri(&format!("{uri}?tail=1"))
            .insert_header(("Last-Event-ID", listed[8]["id"].to_string()))
            .to_request();
        let response = test::call_service(&app, request).await;
        let mut body = Box::pin(response.into_body());
        let text = read_until(&mut body, &format!("id: {last}\n")).await;
        assert_eq!(messages(&text).len(), 1);
        let response = test::call_service(
            &app,
            test::TestRequest::get()
                .uri(&format!("{uri}?tail=1000"))
                .to_request(),
        )
        .await;
        let mut body = Box::pin(response.into_body());
        let text = read_until(&mut body, &format!("id: {last}\n")).await;
        assert_eq!(messages(&text).first().map(|m| m.0), Some(first));
        for bad in ["0", "1001", "x"] {
            let (status, body) = get(&app, &format!("{uri}?tail={bad}")).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "tail={bad}");
            assert_eq!(body["detail"][0]["loc"], json!(["query", "tail"]));
        }
    })
}

netorch_testkit::backend_tests!(
    events_page_in_order,
    the_event_stream_follows_the_log_and_ends_after_the_delete,
    a_live_view_starts_at_the_tail_of_the_log,
);
