//! The HTTP surface: health, metrics, request ids, CORS, GraphiQL, GET
//! queries, and the limits and error codes for bad requests.

use serde_json::{Value, json};

use crate::common::{ME, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let app = TestApp::spawn().await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    let ann = app.signup("ann").await;
    app.gql_as(&ann.token, ME, json!({})).await.assert_ok();
    app.gql(ME, json!({})).await.assert_code("UNAUTHENTICATED");
    let text = app.metrics().await;
    for needle in [
        "graphql_requests_total{operation=\"query\"} 2",
        "graphql_requests_total{operation=\"mutation\"} 1",
        "graphql_request_duration_seconds_bucket{",
        "db_pool_max_connections 4",
        "db_pool_connections_in_use",
        "db_pool_waiting",
        "http_responses_total{route=\"/graphql\",status=\"2xx\"}",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/graphql", "/nowhere", "/metrics"] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        let id = resp.headers().get("x-request-id").expect(path).to_str().unwrap();
        assert_eq!(id.len(), 36, "{path}: {id}");
    }
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "client-id-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "client-id-1");
    // A hostile id is replaced, not echoed.
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "<script>alert(1)</script>")
        .send()
        .await
        .unwrap();
    assert_ne!(resp.headers()["x-request-id"], "<script>alert(1)</script>");
    let big = "x".repeat(2 << 20);
    let resp = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert!(resp.headers().contains_key("x-request-id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_the_configured_origins() {
    let app = TestApp::spawn_with(|s| {
        s.insert("CORS_ALLOWED_ORIGINS".into(), "https://app.example.org".into());
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
            .send()
    };
    let allowed = preflight("https://app.example.org").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.org"
    );
    // Every header the API reads may be sent from a browser: retries' keys
    // and the W3C trace context among them.
    let allowed_headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for header in [
        "authorization",
        "content-type",
        "accept",
        "x-request-id",
        "idempotency-key",
        "traceparent",
        "tracestate",
    ] {
        assert!(allowed_headers.contains(header), "{header} in {allowed_headers}");
    }
    let refused = preflight("https://evil.example.com").await.unwrap();
    assert!(refused.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_is_served_from_the_binary() {
    let app = TestApp::spawn().await;
    let page = app
        .client
        .get(app.url("/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("graphiql"));
    let scripts: Vec<&str> = html
        .split("src=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    assert!(!scripts.is_empty());
    for src in scripts {
        assert!(src.starts_with("/graphql/assets/"), "external script {src}");
        let asset = app.client.get(app.url(src)).send().await.unwrap();
        assert_eq!(asset.status(), 200, "{src}");
        assert!(asset.bytes().await.unwrap().len() > 100);
    }
    let missing = app
        .client
        .get(app.url("/graphql/assets/../../etc/passwd"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_runs_queries_but_not_mutations() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let resp = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", ME)])
        .bearer_auth(&ann.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["me"]["id"], ann.id.as_str());

    let mutation = format!("mutation {{ logout(refreshToken: \"{}\") }}", ann.refresh);
    let resp = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", mutation.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    // The refresh token is still live: the mutation did not run.
    assert_eq!(
        app.gql(crate::common::LOGOUT, json!({ "t": ann.refresh }))
            .await
            .assert_ok()["logout"],
        true
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_client_errors() {
    let app = TestApp::spawn().await;
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("application/json", b"{not json".to_vec(), 400),
        ("application/json", b"".to_vec(), 400),
        ("application/json", b"[]".to_vec(), 400),
        ("application/json", b"42".to_vec(), 400),
        ("application/json", br#"{"query": 42}"#.to_vec(), 400),
        ("application/json", vec![0xff, 0xfe, 0x00], 400),
        ("text/plain", br#"{"query": "{ me { id } }"}"#.to_vec(), 415),
        (
            "application/x-www-form-urlencoded",
            b"query=%7Bme%7Bid%7D%7D".to_vec(),
            415,
        ),
    ];
    for (content_type, body, status) in cases {
        let (got, json) = app.post_raw(content_type, body.clone()).await;
        assert_eq!(got, status, "{content_type} {:?}", String::from_utf8_lossy(&body));
        assert_eq!(json["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{json}");
    }
    for query in [
        "",
        "{",
        "{ nope }",
        "{ me { nope } }",
        "query { me(extra: 1) { id } }",
        "subscription { x }",
    ] {
        let resp = app.gql(query, json!({})).await;
        assert_eq!(resp.status, 200);
        resp.assert_code("BAD_USER_INPUT");
    }
    // Variables of the wrong type name the argument.
    let resp = app
        .gql("mutation($t: String!) { logout(refreshToken: $t) }", json!({ "t": 5 }))
        .await;
    resp.assert_code("BAD_USER_INPUT");
    assert!(resp.field().is_some(), "{}", resp.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depth_complexity_and_batch_limits() {
    // Aliases are limited too (100 by default): allowed here, to reach
    // the complexity limit with them.
    let app = TestApp::spawn_with(|s| {
        s.insert("GRAPHQL_MAX_ALIASES".into(), "5000".into());
    })
    .await;
    // Depth: a data query 13 levels deep.
    let mut inner = String::from("id");
    for level in (3..=12).rev() {
        inner = format!("{} {{ {inner} }}", if level % 2 == 1 { "doctors" } else { "patients" });
    }
    let too_deep = format!("{{ patients {{ nodes {{ {inner} }} }} }}");
    let resp = app.gql(&too_deep, json!({})).await;
    resp.assert_code("BAD_USER_INPUT");
    assert!(
        resp.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("deep"),
        "{}",
        resp.body
    );
    // Introspection may nest deeper (the standard introspection query needs
    // about 15 levels), but not without bound: 33 levels is refused.
    let mut deep = String::from("name");
    for _ in 0..29 {
        deep = format!("ofType {{ {deep} }}");
    }
    let too_deep = format!("{{ __schema {{ types {{ fields {{ type {{ {deep} }} }} }} }} }}");
    app.gql(&too_deep, json!({})).await.assert_code("BAD_USER_INPUT");

    // Complexity: 1,001 aliases of `me { id }` are 2,002 fields.
    let wide: String = (0..1001).map(|i| format!("a{i}: me {{ id }} ")).collect();
    let resp = app.gql(&format!("{{ {wide} }}"), json!({})).await;
    resp.assert_code("BAD_USER_INPUT");
    assert!(
        resp.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("complex")
    );

    // Batches: 10 run, 11 are refused whole.
    let ten: Vec<Value> = (0..10).map(|_| json!({ "query": "{ __typename }" })).collect();
    let resp = app.client.post(app.url("/graphql")).json(&ten).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body.as_array().map(Vec::len), Some(10));
    let eleven: Vec<Value> = (0..11).map(|_| json!({ "query": "{ __typename }" })).collect();
    let resp = app.client.post(app.url("/graphql")).json(&eleven).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_413_and_write_nothing() {
    const LIMIT: usize = 64 * 1024;
    let app = TestApp::spawn_with(|s| {
        s.insert("MAX_BODY_BYTES".into(), LIMIT.to_string());
    })
    .await;
    // A registration one byte over the limit (padded with white space). The
    // server reads the body up to the byte that crosses the limit, so each
    // request sends no more than that: the client then reads the answer
    // whole (what a server does not read of a request may reset the
    // connection, and the answer with it).
    let json = json!({
        "query": crate::common::REGISTER,
        "variables": { "input": { "name": "Ann", "email": "a@example.org", "password": "correct horse" } }
    })
    .to_string();
    let mut body = json.into_bytes();
    body.resize(LIMIT + 1, b' ');
    for (path, chunked) in [("/graphql", false), ("/graphql", true), ("/api/auth/register", false)] {
        let (status, answer) = raw_request(&app, &post(path, &body, chunked)).await;
        assert_eq!(status, 413, "{path}, chunked: {chunked}");
        let code = if path == "/graphql" {
            &answer["errors"][0]["extensions"]["code"]
        } else {
            &answer["error"]["code"]
        };
        assert_eq!(code, "BAD_USER_INPUT", "{path}, chunked: {chunked}");
    }
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
}

/// A JSON POST of `body` to `path`, with a Content-Length or (without one)
/// as a single chunk, left open.
fn post(path: &str, body: &[u8], chunked: bool) -> Vec<u8> {
    let framing = if chunked {
        format!("transfer-encoding: chunked\r\n\r\n{:x}\r\n", body.len())
    } else {
        format!("content-length: {}\r\n\r\n", body.len())
    };
    let mut request =
        format!("POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{framing}").into_bytes();
    request.extend(body);
    request
}

/// Sends `request` as it is and reads the answer's status and JSON body.
async fn raw_request(app: &TestApp, request: &[u8]) -> (u16, Value) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    socket.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let complete = |answer: &[u8]| {
        let text = String::from_utf8_lossy(answer);
        let (head, body) = text.split_once("\r\n\r\n")?;
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().to_owned())
            })?
            .parse()
            .ok()?;
        (body.len() >= length).then(|| (head.to_owned(), body[..length].to_owned()))
    };
    loop {
        if let Some((head, body)) = complete(&answer) {
            let status = head.get(9..12).and_then(|c| c.parse().ok()).expect("a status");
            return (status, serde_json::from_str(&body).expect("a JSON body"));
        }
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), socket.read(&mut buffer)).await;
        match read.expect("an answer in time").expect("the answer") {
            0 => panic!(
                "the connection ended before the answer: {:?}",
                String::from_utf8_lossy(&answer)
            ),
            n => answer.extend_from_slice(&buffer[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_answers_the_standard_query_and_can_be_turned_off() {
    const STANDARD: &str = include_str!("introspection_query.graphql");
    let on = TestApp::spawn().await;
    on.gql("{ __schema { queryType { name } } }", json!({}))
        .await
        .assert_ok();
    // The query GraphiQL and graphql-codegen send nests deeper than data
    // queries may, and is answered in full.
    let resp = on.gql(STANDARD, json!({})).await;
    resp.assert_ok();
    let schema = &resp.body["data"]["__schema"];
    assert_eq!(schema["subscriptionType"]["name"], "Subscription");
    let types: Vec<&str> = schema["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for name in ["Patient", "Doctor", "Mapping", "MappingEvent", "UpdatePatientInput"] {
        assert!(types.contains(&name), "{name} missing from {types:?}");
    }
    // Only documents that introspect and nothing else get the deeper limit:
    // a data field beside `__schema` puts the whole document under the
    // ordinary one.
    let mixed = STANDARD.replacen("__schema {", "me { id } __schema {", 1);
    let resp = on.gql(&mixed, json!({})).await;
    resp.assert_code("BAD_USER_INPUT");
    assert!(
        resp.body["errors"][0]["message"].as_str().unwrap().contains("deep"),
        "{}",
        resp.body
    );
    let off = TestApp::spawn_with(|s| {
        s.insert("GRAPHQL_INTROSPECTION".into(), "false".into());
    })
    .await;
    off.gql("{ __schema { queryType { name } } }", json!({}))
        .await
        .assert_code("BAD_USER_INPUT");
    off.gql(STANDARD, json!({})).await.assert_code("BAD_USER_INPUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_are_404_json() {
    let app = TestApp::spawn().await;
    let resp = app.client.get(app.url("/nowhere")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NOT_FOUND");
}

/// Holds a lock that makes every registration wait (an insert into `users`)
/// until the returned transaction ends, and a second client to watch with.
async fn hold_registrations(db_url: &str) -> (tokio_postgres::Client, tokio_postgres::Client) {
    let holder = crate::common::cluster::connect(db_url).await.unwrap();
    holder
        .batch_execute("BEGIN; LOCK TABLE users IN SHARE MODE")
        .await
        .unwrap();
    let watcher = crate::common::cluster::connect(db_url).await.unwrap();
    (holder, watcher)
}

/// Waits (10 s at most) until some, or no, session of the app's database
/// matches `condition` (over `pg_stat_activity`); whether it came to pass.
async fn until_sessions(watcher: &tokio_postgres::Client, condition: &str, some: bool) -> bool {
    let sql = format!("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND {condition}");
    for _ in 0..400 {
        let matching: i64 = watcher.query_one(&sql, &[]).await.unwrap().get(0);
        if (matching > 0) == some {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    false
}

/// Waits until one of the server's statements is waiting for that lock: a
/// request is then certainly in flight.
async fn until_a_request_waits(watcher: &tokio_postgres::Client) {
    assert!(
        until_sessions(watcher, "wait_event_type = 'Lock'", true).await,
        "no request reached the database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_requests_time_out() {
    let app = TestApp::spawn_with(|s| {
        s.insert("REQUEST_TIMEOUT".into(), "1".into());
    })
    .await;
    let (holder, watcher) = hold_registrations(&app.db_url).await;
    let body = json!({ "query": crate::common::REGISTER, "variables": { "input": {
        "name": "Ann", "email": "ann@example.org", "password": "correct horse" } } });
    let resp = app.client.post(app.url("/graphql")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("x-request-id"));
    // Readable by either transport's clients.
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["errors"][0]["extensions"]["code"], "INTERNAL_SERVER_ERROR");
    let rest = app
        .rest(
            "POST",
            "/api/auth/register",
            None,
            Some(json!({ "name": "Bo", "email": "bo@example.org", "password": "correct horse" })),
        )
        .await;
    assert_eq!(rest.status, 503);
    assert_eq!(rest.body["error"]["code"], "INTERNAL_SERVER_ERROR");
    // The abandoned requests wrote nothing, even once the lock is gone and
    // their statements have run to their end.
    holder.batch_execute("ROLLBACK").await.unwrap();
    until_sessions(
        &watcher,
        "pid <> pg_backend_pid() AND backend_type = 'client backend' AND state <> 'idle'",
        false,
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_requests_finish() {
    // The database outlives the app, which stops while the test still reads it.
    let db = crate::common::cluster::cluster().database(true).await;
    let app = TestApp::spawn_on(&db.url, |_| {}).await;
    let (holder, watcher) = hold_registrations(&app.db_url).await;
    let client = app.client.clone();
    let url = app.url("/graphql");
    let body = json!({ "query": crate::common::REGISTER, "variables": { "input": {
        "name": "Ann", "email": "ann@example.org", "password": "correct horse" } } });
    let in_flight = tokio::spawn(async move { client.post(url).json(&body).send().await });
    until_a_request_waits(&watcher).await;
    // Shut down while the request waits; it may finish once the lock goes.
    let port = app.port;
    let stopping = tokio::spawn(app.stop());
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(!in_flight.is_finished(), "answered before the lock was released");
    holder.batch_execute("ROLLBACK").await.unwrap();
    let resp = in_flight.await.unwrap().expect("the in-flight request was answered");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(body["errors"].is_null(), "{body}");
    let users: i64 = watcher
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 1);
    stopping.await.unwrap();
}

/// Past `MAX_CONCURRENT_REQUESTS`, an API request is refused at once with a
/// retryable 503 rather than queued; health checks stay outside the limit;
/// the requests already running finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_limit_are_refused_at_once() {
    let app = TestApp::spawn_with(|s| {
        s.insert("MAX_CONCURRENT_REQUESTS".into(), "2".into());
    })
    .await;
    let ann = app.signup("ann").await;
    let patient = app.create_patient(&ann.token, "Pat").await;
    // Two updates wait on a row lock held here, filling the limit.
    let db = crate::common::cluster::connect(&app.db_url).await.unwrap();
    db.batch_execute("BEGIN").await.unwrap();
    db.execute("SELECT 1 FROM patients FOR UPDATE", &[]).await.unwrap();
    let waiting: Vec<_> = (0..2)
        .map(|n| {
            let (client, url, token, patient) = (
                app.client.clone(),
                app.address.clone(),
                ann.token.clone(),
                patient.clone(),
            );
            tokio::spawn(async move {
                client
                    .put(format!("{url}/api/patients/{patient}"))
                    .bearer_auth(token)
                    .json(&json!({ "name": format!("Waited {n}") }))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut busy = None;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let started = std::time::Instant::now();
        let resp = app.gql_as(&ann.token, ME, json!({})).await;
        if resp.status == 503 {
            busy = Some((started.elapsed(), resp));
            break;
        }
    }
    let (took, resp) = busy.expect("a third request was refused");
    assert!(
        took < std::time::Duration::from_millis(500),
        "refused at once, not queued: {took:?}"
    );
    assert_eq!(resp.body["errors"][0]["extensions"]["retryable"], true, "{}", resp.body);
    assert_eq!(resp.body["errors"][0]["extensions"]["code"], "INTERNAL_SERVER_ERROR");
    let rest = app
        .rest("GET", &format!("/api/patients/{patient}"), Some(&ann.token), None)
        .await;
    rest.assert_error(503, "INTERNAL_SERVER_ERROR", None);
    assert_eq!(rest.header("retry-after"), Some("1"));
    for path in ["/healthz", "/readyz", "/metrics"] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path} is outside the limit");
    }
    db.batch_execute("COMMIT").await.unwrap();
    for request in waiting {
        assert_eq!(request.await.unwrap(), 200, "the requests in flight finish");
    }
    app.gql_as(&ann.token, ME, json!({})).await.assert_ok();
    app.stop().await;
}
