//! Traces: the real binary exporting over OTLP/HTTP to a real receiver
//! started here, which decodes the protobuf as a collector would. A span per
//! request, per GraphQL operation and per SQL statement, the caller's
//! `traceparent` honoured, the trace id in the logs, and no patient data,
//! variable or bind value in anything exported.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, http::StatusCode, routing::post};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, any_value},
    trace::v1::{Span, span::SpanKind},
};
use prost::Message as _;
use serde_json::{Value, json};

use crate::{
    common::{AUDIT_SEAL_KEY, JWT_SECRET, MFA_ENCRYPTION_KEY, TestApp, cluster::ScratchDir, free_port},
    embedded::{Server, server_command},
};

/// An OTLP/HTTP receiver: keeps every export request's body as it came.
struct Receiver {
    address: SocketAddr,
    bodies: Arc<Mutex<Vec<Bytes>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let bodies: Arc<Mutex<Vec<Bytes>>> = Arc::default();
        let kept = Arc::clone(&bodies);
        let app = Router::new().route(
            "/v1/traces",
            post(move |headers: axum::http::HeaderMap, body: Bytes| {
                let kept = Arc::clone(&kept);
                async move {
                    assert_eq!(headers["content-type"], "application/x-protobuf");
                    kept.lock().unwrap().push(body);
                    // An empty ExportTraceServiceResponse: all accepted.
                    (StatusCode::OK, [("content-type", "application/x-protobuf")], Vec::new())
                }
            }),
        );
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { address, bodies, task }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every span received so far, with its resource's attributes.
    fn spans(&self) -> Vec<(Span, HashMap<String, String>)> {
        let mut spans = Vec::new();
        for body in self.bodies.lock().unwrap().iter() {
            let request = ExportTraceServiceRequest::decode(body.clone()).expect("an OTLP protobuf export");
            for resource_spans in request.resource_spans {
                let resource = resource_spans
                    .resource
                    .map(|r| attributes(&r.attributes))
                    .unwrap_or_default();
                for scope in resource_spans.scope_spans {
                    spans.extend(scope.spans.into_iter().map(|s| (s, resource.clone())));
                }
            }
        }
        spans
    }

    /// Everything received, as text, to search for what must never leave.
    fn raw(&self) -> String {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    /// What `found` finds among the spans received, once it does (within 20 s).
    async fn wait_until<T>(&self, what: &str, found: impl Fn(Vec<Span>) -> Option<T>) -> T {
        let started = Instant::now();
        loop {
            if let Some(result) = found(self.spans().into_iter().map(|(s, _)| s).collect()) {
                return result;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "{what} did not arrive");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The spans of `trace` once `done` holds of them.
    async fn wait_for(&self, trace: &[u8], done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        self.wait_until("the trace's spans", |spans| {
            let of_trace: Vec<Span> = spans.into_iter().filter(|s| s.trace_id == trace).collect();
            done(&of_trace).then_some(of_trace)
        })
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn attributes(list: &[opentelemetry_proto::tonic::common::v1::KeyValue]) -> HashMap<String, String> {
    list.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v: &AnyValue| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                Some(any_value::Value::IntValue(i)) => i.to_string(),
                Some(any_value::Value::BoolValue(b)) => b.to_string(),
                Some(any_value::Value::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

fn attr(span: &Span, key: &str) -> Option<String> {
    attributes(&span.attributes).remove(key)
}

fn children<'a>(spans: &'a [Span], parent: &Span) -> Vec<&'a Span> {
    let mut found: Vec<&Span> = spans.iter().filter(|s| s.parent_span_id == parent.span_id).collect();
    found.sort_by_key(|s| s.start_time_unix_nano);
    found
}

/// The span tree, indented, with each span's length.
fn tree(spans: &[Span], root: &Span, depth: usize, out: &mut String) {
    let micros = root.end_time_unix_nano.saturating_sub(root.start_time_unix_nano) / 1000;
    out.push_str(&format!("{}{} ({micros} µs)\n", "  ".repeat(depth), root.name));
    for child in children(spans, root) {
        tree(spans, child, depth + 1, out);
    }
}

/// The server's threads' names.
fn threads(server: &Server) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{}/task", server.child.id()))
        .unwrap()
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

/// The binary on `url`, its logs (JSON) in `log`, with `extra` settings.
fn traced_server(url: &str, log: &std::path::Path, extra: &[(&str, &str)]) -> Server {
    let log = std::fs::File::create(log).unwrap();
    let mut cmd = server_command();
    cmd.env("DATABASE_URL", url)
        .env("JWT_SECRET", JWT_SECRET)
        .env("AUDIT_SEAL_KEY", AUDIT_SEAL_KEY)
        .env("MFA_ENCRYPTION_KEY", MFA_ENCRYPTION_KEY)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    for (key, value) in extra {
        cmd.env(key, value);
    }
    Server::start(cmd)
}

const CHART: &str = "query PatientChart($n: Int, $s: String) { patients(first: $n, search: $s) { nodes { name createdBy { name } doctors { name } mappings { doctor { name } assignedBy { name } } } } }";

async fn post_as(server: &Server, token: &str, traceparent: Option<&str>, body: Value) -> Value {
    let mut request = reqwest::Client::new()
        .post(server.url("/graphql"))
        .bearer_auth(token)
        .json(&body);
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_read_leaves_a_span_per_request_operation_and_statement() {
    let db = crate::common::cluster::cluster().database(true).await;
    // Patients, doctors and assignments, made through a server of the tests.
    let seeding = TestApp::spawn_on(&db.url, |_| {}).await;
    let ann = seeding.signup("ann").await;
    let mut doctors = Vec::new();
    for i in 0..3 {
        doctors.push(
            seeding
                .create_doctor(&ann.token, &format!("Dr Quennel {i}"), "General")
                .await,
        );
    }
    for i in 0..5 {
        let patient = seeding
            .create_patient(&ann.token, &format!("Zebulon Tracewell {i}"))
            .await;
        for doctor in &doctors {
            seeding.assign(&ann.token, &patient, doctor).await.assert_ok();
        }
    }

    let receiver = Receiver::start().await;
    let scratch = ScratchDir::new("traces");
    let log_path = scratch.path().join("server.log");
    let mut server = traced_server(
        &db.url,
        &log_path,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint().as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            // The sealer at work meanwhile, outside any request.
            ("AUDIT_SEAL_INTERVAL", "100ms"),
        ],
    );
    server.wait_ready().await;
    assert!(
        threads(&server).iter().any(|t| t.starts_with("OpenTelemetry")),
        "the exporter's thread runs: {:?}",
        threads(&server)
    );

    // The caller's trace: the request's span is its child.
    let trace_hex = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_hex}-{caller_span}-01");
    let answer = post_as(
        &server,
        &ann.token,
        Some(&traceparent),
        json!({ "query": CHART, "operationName": "PatientChart", "variables": { "n": 5, "s": "Zebulon" } }),
    )
    .await;
    assert_eq!(
        answer["data"]["patients"]["nodes"].as_array().unwrap().len(),
        5,
        "{answer}"
    );

    let trace = hex::decode(trace_hex).unwrap();
    let spans = receiver
        .wait_for(&trace, |spans| {
            spans.iter().any(|s| s.name == "POST /graphql")
                && spans.iter().any(|s| s.name == "query PatientChart")
                && spans.iter().any(|s| s.name.starts_with("INSERT"))
        })
        .await;
    let request = spans.iter().find(|s| s.name == "POST /graphql").unwrap();
    assert_eq!(hex::encode(&request.parent_span_id), caller_span);
    assert_eq!(request.kind, SpanKind::Server as i32);
    assert_eq!(attr(request, "http.route").as_deref(), Some("/graphql"));
    assert_eq!(attr(request, "http.request.method").as_deref(), Some("POST"));
    assert_eq!(attr(request, "http.response.status_code").as_deref(), Some("200"));

    let operation = spans.iter().find(|s| s.name == "query PatientChart").unwrap();
    assert_eq!(operation.parent_span_id, request.span_id);
    assert_eq!(attr(operation, "graphql.operation.type").as_deref(), Some("query"));
    assert_eq!(
        attr(operation, "graphql.operation.name").as_deref(),
        Some("PatientChart")
    );

    // The read's statements: the page, then one per relation and level,
    // under the operation; the audit event's insert under the request.
    // Connections the pool opened meanwhile have a span of their own, with
    // their set-up statements under it.
    let (connects, statements): (Vec<&Span>, Vec<&Span>) = children(&spans, operation)
        .into_iter()
        .partition(|s| s.name == "connect");
    for connect in connects {
        for setup in children(&spans, connect) {
            assert_eq!(
                attr(setup, "db.operation.name").as_deref(),
                Some("SET"),
                "{}",
                setup.name
            );
        }
    }
    assert!(
        statements.len() >= 5,
        "{:?}",
        statements.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    for statement in &statements {
        assert_eq!(statement.kind, SpanKind::Client as i32);
        assert_eq!(attr(statement, "db.system.name").as_deref(), Some("postgresql"));
        let sql = attr(statement, "db.query.text").unwrap();
        if statement.name.starts_with("SELECT ") {
            assert!(sql.contains("$1"), "placeholders, not values: {sql}");
        }
        assert!(statement.start_time_unix_nano >= operation.start_time_unix_nano);
        assert!(statement.end_time_unix_nano <= operation.end_time_unix_nano);
    }
    assert!(statements.iter().any(|s| s.name == "SELECT patients"));
    assert!(statements.iter().any(|s| s.name == "SELECT doctors"));
    let audit = children(&spans, request)
        .into_iter()
        .find(|s| s.name.starts_with("INSERT"))
        .expect("the PATIENTS_READ event's statement");
    assert_eq!(attr(audit, "db.operation.name").as_deref(), Some("INSERT"));

    let mut shown = String::new();
    tree(&spans, request, 0, &mut shown);
    println!("the spans of the nested read of 5 patients:\n{shown}");

    // A batch: a span for each of its operations, under the request.
    let batch_trace = "5ce0e9a56015fec5aadfa328ae398115";
    let answers = post_as(
        &server,
        &ann.token,
        Some(&format!("00-{batch_trace}-{caller_span}-01")),
        json!([
            { "query": "query Who { me { id } }" },
            { "query": "query Count { patients(first: 1) { totalCount } }" },
        ]),
    )
    .await;
    assert_eq!(answers[1]["data"]["patients"]["totalCount"], 5, "{answers}");
    let batch = receiver
        .wait_for(&hex::decode(batch_trace).unwrap(), |spans| {
            ["POST /graphql", "query Who", "query Count"]
                .iter()
                .all(|name| spans.iter().any(|s| s.name == *name))
        })
        .await;
    let batch_request = batch.iter().find(|s| s.name == "POST /graphql").unwrap();
    for name in ["query Who", "query Count"] {
        let operation = batch.iter().find(|s| s.name == name).unwrap();
        assert_eq!(operation.parent_span_id, batch_request.span_id, "{name}");
    }

    // A request without a caller's trace starts its own, and a create's
    // values stay out of its spans as a read's do.
    let created = post_as(
        &server,
        &ann.token,
        None,
        json!({
            "query": "mutation NewPatient($i: CreatePatientInput!) { createPatient(input: $i) { id } }",
            "variables": { "i": { "name": "Quillon Privatename", "email": "quillon.private@example.org", "medicalHistory": "asthma since 2009" } },
        }),
    )
    .await;
    assert!(created["data"]["createPatient"]["id"].is_string(), "{created}");
    let mutation = receiver
        .wait_until("the create's span", |spans| {
            spans.into_iter().find(|s| s.name == "mutation NewPatient")
        })
        .await;
    assert_ne!(mutation.trace_id, trace);
    let all = receiver.spans();
    let root = all
        .iter()
        .map(|(s, _)| s)
        .find(|s| s.span_id == mutation.parent_span_id)
        .unwrap();
    assert!(root.parent_span_id.is_empty(), "a trace of its own");
    for (span, resource) in &all {
        assert_eq!(resource.get("service.name").map(String::as_str), Some("healthcare-api"));
        // Only requests start traces: not the readiness probes this test
        // polled, nor the audit sealer's statements.
        assert!(
            !span.parent_span_id.is_empty() || span.name == "POST /graphql",
            "a trace of its own: {}",
            span.name
        );
    }

    // Nothing a patient, a user or a request carried left in a span.
    let raw = receiver.raw();
    for secret in [
        "Zebulon",
        "Tracewell",
        "Quennel",
        "Quillon",
        "Privatename",
        "quillon.private",
        "asthma",
        &ann.email,
        &ann.token,
        &ann.id,
    ] {
        assert!(!raw.contains(secret), "an exported span holds {secret}");
    }

    // The logs name the trace of each request.
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit().success());
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logs.lines().any(|line| line.contains("finished processing request")
            && line.contains(&format!("\"trace_id\":\"{trace_hex}\""))),
        "the request's log line names its trace: {logs}"
    );
    drop(seeding);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_nothing_of_tracing_runs_and_a_dead_collector_costs_no_answer() {
    let db = crate::common::cluster::cluster().database(true).await;
    let scratch = ScratchDir::new("untraced");
    let seeding = TestApp::spawn_on(&db.url, |_| {}).await;
    let ann = seeding.signup("ann").await;

    let log_path = scratch.path().join("untraced.log");
    let mut server = traced_server(&db.url, &log_path, &[]);
    server.wait_ready().await;
    let names = threads(&server);
    assert!(!names.iter().any(|t| t.starts_with("OpenTelemetry")), "{names:?}");
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let me = post_as(
        &server,
        &ann.token,
        Some(traceparent),
        json!({ "query": "{ me { id } }" }),
    )
    .await;
    assert_eq!(me["data"]["me"]["id"], ann.id);
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit().success());
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(logs.contains("finished processing request"), "{logs}");
    assert!(!logs.contains("trace_id"), "no trace ids without traces: {logs}");

    // A collector that is not there: every answer as usual, and a prompt stop.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let log_path = scratch.path().join("nowhere.log");
    let mut server = traced_server(
        &db.url,
        &log_path,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", nowhere.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    server.wait_ready().await;
    for _ in 0..5 {
        let me = post_as(&server, &ann.token, None, json!({ "query": "{ me { id } }" })).await;
        assert_eq!(me["data"]["me"]["id"], ann.id);
    }
    let stopping = Instant::now();
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit().success());
    assert!(stopping.elapsed() < Duration::from_secs(15), "{:?}", stopping.elapsed());
    drop(seeding);
}
