//! Subscriptions over a real WebSocket: both subprotocols, the token in
//! `connection_init`, privacy at delivery, two servers on one database, a
//! database restart, caps, expiry, and the memory of idle subscriptions.

use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use healthcare_api::db::embedded::{EmbeddedPostgres, Options};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest},
};

use crate::common::{TestApp, TestUser, cluster::ScratchDir};

const TRANSPORT: &str = "graphql-transport-ws";
const LEGACY: &str = "graphql-ws";
const EVENTS: &str = "subscription($p: ID) { mappingEvents(patientId: $p) { kind mappingId patientId doctorId at } }";

struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    protocol: &'static str,
}

impl Ws {
    async fn open(port: u16, protocol: &'static str) -> Self {
        let mut request = format!("ws://127.0.0.1:{port}/graphql/ws")
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().unwrap());
        let (stream, response) = tokio_tungstenite::connect_async(request).await.expect("websocket");
        assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
        Self { stream, protocol }
    }

    /// Opens and acknowledges a connection with `init` as the payload.
    async fn ready(port: u16, protocol: &'static str, token: &str) -> Self {
        let mut ws = Self::open(port, protocol).await;
        ws.send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }))
            .await;
        assert_eq!(ws.recv().await["type"], "connection_ack");
        ws
    }

    async fn send(&mut self, message: Value) {
        self.stream.send(Message::text(message.to_string())).await.unwrap();
    }

    async fn subscribe(&mut self, id: &str, patient: Option<&str>) {
        let kind = if self.protocol == TRANSPORT {
            "subscribe"
        } else {
            "start"
        };
        self.send(json!({ "type": kind, "id": id, "payload": { "query": EVENTS, "variables": { "p": patient } } }))
            .await;
    }

    /// The next message that is not a keep-alive, within 10 s.
    async fn recv(&mut self) -> Value {
        self.recv_within(Duration::from_secs(10))
            .await
            .expect("a message in time")
    }

    async fn recv_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.stream.next()).await.ok()??;
            match message.ok()? {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    if !matches!(value["type"].as_str(), Some("ka" | "ping" | "pong")) {
                        return Some(value);
                    }
                }
                Message::Close(frame) => {
                    let (code, reason) =
                        frame.map_or((0, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                    return Some(json!({ "type": "close", "code": code, "reason": reason }));
                }
                _ => {}
            }
        }
    }

    /// The close code the server ends with, skipping anything else.
    async fn closed_with(&mut self) -> u16 {
        loop {
            let message = self.recv().await;
            if message["type"] == "close" {
                return message["code"].as_u64().unwrap() as u16;
            }
        }
    }

    /// The next event payload of subscription `id`.
    async fn event(&mut self, id: &str) -> Value {
        let message = self.recv().await;
        let kind = if self.protocol == TRANSPORT { "next" } else { "data" };
        assert_eq!(message["type"], kind, "{message}");
        assert_eq!(message["id"], id);
        message["payload"]["data"]["mappingEvents"].clone()
    }
}

async fn setup(app: &TestApp, user: &TestUser, name: &str) -> (String, String) {
    let patient = app.create_patient(&user.token, name).await;
    let doctor = app
        .create_doctor(&user.token, &format!("Dr {name}"), "Cardiology")
        .await;
    (patient, doctor)
}

async fn assign(app: &TestApp, user: &TestUser, patient: &str, doctor: &str) -> String {
    let resp = app.assign(&user.token, patient, doctor).await;
    resp.assert_ok()["assignDoctor"]["id"].as_str().unwrap().to_owned()
}

/// Waits until `n` subscriptions run on `app` (each then hears every event
/// from that moment on).
async fn until_live(app: &TestApp, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.state.notifications.receivers() != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} subscriptions did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn remove(app: &TestApp, user: &TestUser, mapping: &str) {
    app.gql_as(
        &user.token,
        "mutation($id: ID!) { removeMapping(id: $id) }",
        json!({ "id": mapping }),
    )
    .await
    .assert_ok();
}

#[tokio::test]
async fn a_subscriber_sees_its_own_patients_events_and_nobody_elses() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    for protocol in [TRANSPORT, LEGACY] {
        let mut ann_ws = Ws::ready(app.port, protocol, &ann.token).await;
        let mut bob_ws = Ws::ready(app.port, protocol, &bob.token).await;
        ann_ws.subscribe("a", None).await;
        bob_ws.subscribe("b", None).await;
        until_live(&app, 2).await;

        let (patient, doctor) = setup(&app, &ann, &format!("Ann {protocol}")).await;
        let mapping = assign(&app, &ann, &patient, &doctor).await;
        let event = ann_ws.event("a").await;
        assert_eq!(event["kind"], "ASSIGNED");
        assert_eq!(event["mappingId"], mapping.as_str());
        assert_eq!(event["patientId"], patient.as_str());
        assert_eq!(event["doctorId"], doctor.as_str());
        assert!(event["at"].as_str().unwrap().ends_with('Z'));
        let keys: Vec<&String> = event.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 5, "ids only: {event}");
        remove(&app, &ann, &mapping).await;
        assert_eq!(ann_ws.event("a").await["kind"], "REMOVED");

        // Bob's first event is his own: none of Ann's came before it.
        let (his_patient, his_doctor) = setup(&app, &bob, &format!("Bob {protocol}")).await;
        assign(&app, &bob, &his_patient, &his_doctor).await;
        assert_eq!(bob_ws.event("b").await["patientId"], his_patient.as_str());
        assert_eq!(ann_ws.recv_within(Duration::from_millis(300)).await, None);

        // Stopping a subscription stops its events; another one on the
        // same socket still gets them (and so every event of this round
        // has been delivered before the next round subscribes).
        ann_ws.subscribe("c", None).await;
        until_live(&app, 3).await;
        let stop = if protocol == TRANSPORT { "complete" } else { "stop" };
        ann_ws.send(json!({ "type": stop, "id": "a" })).await;
        until_live(&app, 2).await;
        let mapping = assign(&app, &ann, &patient, &his_doctor).await;
        assert_eq!(ann_ws.event("c").await["kind"], "ASSIGNED");
        remove(&app, &ann, &mapping).await;
        assert_eq!(ann_ws.event("c").await["kind"], "REMOVED");
        assert_eq!(
            ann_ws.recv_within(Duration::from_millis(300)).await,
            None,
            "nothing for the stopped one"
        );
    }
}

#[tokio::test]
async fn a_subscription_to_one_patient_gets_only_that_patient() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let (first, doctor) = setup(&app, &ann, "First").await;
    let second = app.create_patient(&ann.token, "Second").await;
    let mut ws = Ws::ready(app.port, TRANSPORT, &ann.token).await;
    ws.subscribe("one", Some(&second)).await;
    until_live(&app, 1).await;
    assign(&app, &ann, &first, &doctor).await;
    assign(&app, &ann, &second, &doctor).await;
    assert_eq!(ws.event("one").await["patientId"], second.as_str());
    // Deleting the patient removes its assignments: each is announced.
    app.gql_as(
        &ann.token,
        "mutation($id: ID!) { deletePatient(id: $id) }",
        json!({ "id": second }),
    )
    .await
    .assert_ok();
    assert_eq!(ws.event("one").await["kind"], "REMOVED");
}

#[tokio::test]
async fn a_message_larger_than_the_read_buffer_is_read_whole() {
    // The socket reads in 4 KiB chunks; a 40 KB subscribe message (a long
    // comment in the document) still arrives whole and works.
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let (patient, doctor) = setup(&app, &ann, "Large").await;
    let mut ws = Ws::ready(app.port, TRANSPORT, &ann.token).await;
    let query = format!("{EVENTS}\n# {}", "x".repeat(40_000));
    ws.send(json!({ "type": "subscribe", "id": "big", "payload": { "query": query, "variables": { "p": patient } } }))
        .await;
    until_live(&app, 1).await;
    let mapping = assign(&app, &ann, &patient, &doctor).await;
    assert_eq!(ws.event("big").await["mappingId"], mapping.as_str());
}

#[tokio::test]
async fn admins_see_every_patients_events() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let root = app.admin("root").await;
    let mut ws = Ws::ready(app.port, TRANSPORT, &root.token).await;
    ws.subscribe("all", None).await;
    until_live(&app, 1).await;
    let (patient, doctor) = setup(&app, &ann, "Ann's").await;
    assign(&app, &ann, &patient, &doctor).await;
    assert_eq!(ws.event("all").await["patientId"], patient.as_str());
}

#[tokio::test]
async fn no_or_a_bad_token_closes_the_socket_with_4401() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    for protocol in [TRANSPORT, LEGACY] {
        for payload in [
            json!({}),
            json!({ "Authorization": "Bearer garbage" }),
            json!({ "authToken": format!("{}x", ann.token) }),
            json!({ "Authorization": format!("Basic {}", ann.token) }),
        ] {
            let mut ws = Ws::open(app.port, protocol).await;
            ws.send(json!({ "type": "connection_init", "payload": payload })).await;
            if protocol == LEGACY {
                assert_eq!(ws.recv().await["type"], "connection_error");
            }
            assert_eq!(ws.closed_with().await, 4401, "{protocol} {payload}");
        }
        // Subscribing before connection_init.
        let mut ws = Ws::open(app.port, protocol).await;
        ws.subscribe("early", None).await;
        assert_eq!(ws.closed_with().await, 4401);
    }
    // Each way of sending a good token works.
    for payload in [
        json!({ "Authorization": format!("Bearer {}", ann.token) }),
        json!({ "authorization": format!("bearer {}", ann.token) }),
        json!({ "authToken": ann.token }),
    ] {
        let mut ws = Ws::open(app.port, TRANSPORT).await;
        ws.send(json!({ "type": "connection_init", "payload": payload })).await;
        assert_eq!(ws.recv().await["type"], "connection_ack");
    }
    // No subprotocol, no WebSocket.
    let plain = app.client.get(app.url("/graphql/ws")).send().await.unwrap();
    assert_eq!(plain.status(), 400);
}

#[tokio::test]
async fn bad_messages_and_bad_arguments_get_errors() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let mut ws = Ws::ready(app.port, TRANSPORT, &ann.token).await;
    ws.send(json!({ "type": "ping" })).await;
    ws.send(json!({ "type": "subscribe", "id": "q", "payload": { "query": "{ me { id } }" } }))
        .await;
    let error = ws.recv().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["payload"][0]["extensions"]["code"], "BAD_USER_INPUT");
    ws.subscribe("bad", Some("not-an-id")).await;
    let error = ws.recv().await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["payload"][0]["extensions"]["field"], "patientId");
    ws.send(json!({ "type": "subscribe", "id": "s", "payload": { "query": "subscription { nope }" } }))
        .await;
    let error = ws.recv().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["payload"][0]["extensions"]["code"], "BAD_USER_INPUT");
    // The same id twice.
    ws.subscribe("dup", None).await;
    ws.subscribe("dup", None).await;
    assert_eq!(ws.closed_with().await, 4409);

    let mut ws = Ws::ready(app.port, TRANSPORT, &ann.token).await;
    ws.stream.send(Message::text("not json")).await.unwrap();
    assert_eq!(ws.closed_with().await, 4400);
    let mut ws = Ws::ready(app.port, TRANSPORT, &ann.token).await;
    ws.send(json!({ "type": "connection_init", "payload": {} })).await;
    assert_eq!(ws.closed_with().await, 4429);
}

#[tokio::test]
async fn an_id_is_free_again_once_its_subscription_is_stopped() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let (patient, doctor) = setup(&app, &ann, "Reused").await;
    for protocol in [TRANSPORT, LEGACY] {
        let mut ws = Ws::ready(app.port, protocol, &ann.token).await;
        let stop = if protocol == TRANSPORT { "complete" } else { "stop" };
        for _ in 0..3 {
            ws.subscribe("same", None).await;
            until_live(&app, 1).await;
            ws.send(json!({ "type": stop, "id": "same" })).await;
            until_live(&app, 0).await;
        }
        ws.subscribe("same", None).await;
        until_live(&app, 1).await;
        // Nothing was said about the stopped ones; the live one gets its events.
        let mapping = assign(&app, &ann, &patient, &doctor).await;
        assert_eq!(ws.event("same").await["mappingId"], mapping.as_str());
        remove(&app, &ann, &mapping).await;
        assert_eq!(ws.event("same").await["kind"], "REMOVED");
        assert_eq!(ws.recv_within(Duration::from_millis(300)).await, None);
        // A stop for an id that runs nothing is ignored.
        ws.send(json!({ "type": stop, "id": "never" })).await;
        ws.stream.close(None).await.unwrap();
        until_live(&app, 0).await;
    }
}

#[tokio::test]
async fn a_connection_without_connection_init_closes_with_4408_after_10_s() {
    let app = TestApp::spawn().await;
    let started = Instant::now();
    let mut ws = Ws::open(app.port, TRANSPORT).await;
    let closed = ws.recv_within(Duration::from_secs(15)).await.expect("a close in time");
    assert_eq!(closed["code"], 4408, "{closed}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(11),
        "{waited:?}"
    );
}

#[tokio::test]
async fn binary_unknown_and_malformed_messages_close_with_4400() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    for protocol in [TRANSPORT, LEGACY] {
        let mut ws = Ws::ready(app.port, protocol, &ann.token).await;
        ws.stream.send(Message::binary(b"{}".to_vec())).await.unwrap();
        assert_eq!(ws.closed_with().await, 4400, "{protocol} binary");
        for message in [
            json!({ "type": "nonsense" }),
            json!({ "id": "1" }),
            json!({ "type": if protocol == TRANSPORT { "start" } else { "subscribe" }, "id": "1", "payload": { "query": EVENTS } }),
            json!({ "type": if protocol == TRANSPORT { "subscribe" } else { "start" }, "payload": { "query": EVENTS } }),
            json!({ "type": if protocol == TRANSPORT { "subscribe" } else { "start" }, "id": "", "payload": { "query": EVENTS } }),
            json!({ "type": if protocol == TRANSPORT { "subscribe" } else { "start" }, "id": "x".repeat(129), "payload": { "query": EVENTS } }),
            json!({ "type": if protocol == TRANSPORT { "subscribe" } else { "start" }, "id": "1", "payload": { "query": 7 } }),
            json!({ "type": if protocol == TRANSPORT { "subscribe" } else { "start" }, "id": "1" }),
        ] {
            let mut ws = Ws::ready(app.port, protocol, &ann.token).await;
            ws.send(message.clone()).await;
            assert_eq!(ws.closed_with().await, 4400, "{protocol} {message}");
        }
    }
    // After all of that, nothing is left running.
    until_live(&app, 0).await;
}

#[tokio::test]
async fn subscriptions_are_capped_per_connection_and_per_server() {
    let app = TestApp::spawn_with(|s| {
        s.insert("MAX_SUBSCRIPTIONS_PER_CONNECTION".into(), "2".into());
        s.insert("MAX_SUBSCRIPTIONS".into(), "3".into());
    })
    .await;
    let ann = app.signup("ann").await;
    let mut one = Ws::ready(app.port, TRANSPORT, &ann.token).await;
    for id in ["1", "2", "3"] {
        one.subscribe(id, None).await;
    }
    let refused = one.recv().await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["id"], "3");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "TOO_MANY_REQUESTS");
    let mut two = Ws::ready(app.port, TRANSPORT, &ann.token).await;
    two.subscribe("4", None).await;
    two.subscribe("5", None).await;
    let refused = two.recv().await;
    assert_eq!(refused["id"], "5", "the server's cap of 3: {refused}");
    // Closing a connection frees its subscriptions.
    until_live(&app, 3).await;
    one.stream.close(None).await.unwrap();
    until_live(&app, 1).await;
    two.subscribe("6", None).await;
    until_live(&app, 2).await;
    assert_eq!(two.recv_within(Duration::from_millis(300)).await, None);
}

#[tokio::test]
async fn an_expired_token_ends_the_connection_at_its_exp() {
    let app = TestApp::spawn_with(|s| {
        s.insert("ACCESS_TOKEN_TTL".into(), "2".into());
    })
    .await;
    let ann = app.signup("ann").await;
    let started = Instant::now();
    let mut ws = Ws::ready(app.port, TRANSPORT, &ann.token).await;
    ws.subscribe("s", None).await;
    assert_eq!(ws.closed_with().await, 4401);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_on_one_server_reaches_subscribers_on_another() {
    let db = crate::common::cluster::cluster().database(true).await;
    let url = db.url.clone();
    let one = TestApp::spawn_on(&url, |_| {}).await;
    let two = TestApp::spawn_on(&url, |_| {}).await;
    let ann = one.signup("ann").await;
    let bob = one.signup("bob").await;
    let mut ann_ws = Ws::ready(two.port, TRANSPORT, &ann.token).await;
    let mut bob_ws = Ws::ready(two.port, LEGACY, &bob.token).await;
    ann_ws.subscribe("a", None).await;
    bob_ws.subscribe("b", None).await;
    until_live(&two, 2).await;
    let (patient, doctor) = setup(&one, &ann, "Pat").await;
    let mapping = assign(&one, &ann, &patient, &doctor).await;
    assert_eq!(ann_ws.event("a").await["mappingId"], mapping.as_str());
    assert_eq!(bob_ws.recv_within(Duration::from_millis(500)).await, None);

    // A change that rolls back is never announced.
    let db = crate::common::cluster::connect(&url).await.unwrap();
    db.batch_execute(&format!(
        "BEGIN; INSERT INTO mappings (patient_id, doctor_id, assigned_by) \
         SELECT '{patient}', id, created_by FROM doctors WHERE id <> '{doctor}' LIMIT 1; \
         DELETE FROM mappings WHERE id = '{mapping}'; ROLLBACK;"
    ))
    .await
    .unwrap();
    remove(&one, &ann, &mapping).await;
    let next = ann_ws.event("a").await;
    assert_eq!(next["kind"], "REMOVED");
    assert_eq!(next["mappingId"], mapping.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_survive_a_database_restart() {
    let dir = ScratchDir::new("listen");
    let mut pg = EmbeddedPostgres::start(Options::throwaway(dir.path().join("pg")))
        .await
        .unwrap();
    pg.ensure_database("app").await.unwrap();
    let app = TestApp::spawn_on(&pg.url("app"), |_| {}).await;
    let ann = app.signup("ann").await;
    let (patient, doctor) = setup(&app, &ann, "Pat").await;
    let mut ws = Ws::ready(app.port, TRANSPORT, &ann.token).await;
    ws.subscribe("s", None).await;
    until_live(&app, 1).await;

    pg.stop().await.unwrap();
    assert_eq!(
        ws.recv_within(Duration::from_millis(500)).await,
        None,
        "nothing false meanwhile"
    );
    pg.restart().await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), app.state.notifications.listening())
        .await
        .expect("the listener reconnects");
    // The pool may hold connections the restart closed: retry the change.
    let mut mapping = None;
    for _ in 0..20 {
        let resp = app.assign(&ann.token, &patient, &doctor).await;
        if let Some(id) = resp.body["data"]["assignDoctor"]["id"].as_str() {
            mapping = Some(id.to_owned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mapping = mapping.expect("the change succeeds after the restart");
    assert_eq!(ws.event("s").await["mappingId"], mapping.as_str());
    drop(app);
    pg.stop().await.unwrap();
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_subscriptions_cost_a_bounded_amount_of_memory() {
    // The real binary, so that its memory is its own.
    let db = crate::common::cluster::cluster().database(true).await;
    let url = db.url.clone();
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_healthcare-api"))
        .env_clear()
        .env("DATABASE_URL", &url)
        .env("JWT_SECRET", crate::common::JWT_SECRET)
        .env("AUDIT_SEAL_KEY", crate::common::AUDIT_SEAL_KEY)
        .env("MFA_ENCRYPTION_KEY", crate::common::MFA_ENCRYPTION_KEY)
        // A port of the system's choosing, found once the server listens.
        .env("PORT", "0")
        .env("BCRYPT_COST", "4")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = server.id().unwrap();
    let client = reqwest::Client::new();
    let mut port = 0;
    for _ in 0..100 {
        if port == 0 {
            port = crate::common::listening_port(pid).unwrap_or(0);
        }
        if port != 0
            && client
                .get(format!("http://127.0.0.1:{port}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let register = json!({ "name": "Ann", "email": "ann@example.org", "password": crate::common::PASSWORD });
    let auth: Value = client
        .post(format!("http://127.0.0.1:{port}/api/auth/register"))
        .json(&register)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = auth["accessToken"].as_str().unwrap().to_owned();
    // Warm up with one connection, then measure.
    let mut warm = Ws::ready(port, TRANSPORT, &token).await;
    warm.subscribe("w", None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(pid);
    let mut sockets = Vec::new();
    for c in 0..20 {
        let mut ws = Ws::ready(port, TRANSPORT, &token).await;
        for s in 0..50 {
            ws.subscribe(&format!("{c}-{s}"), None).await;
        }
        sockets.push(ws);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(pid);
    let per_subscription = after.saturating_sub(before) * 1024 / 1000;
    println!(
        "1,000 idle subscriptions on 20 connections: RSS {} KiB -> {} KiB, about {} bytes each",
        before, after, per_subscription
    );
    let grown = after.saturating_sub(before);
    assert!(grown < 16 * 1024, "1,000 idle subscriptions took {grown} KiB");
    drop(sockets);
    server.kill().await.unwrap();
}

/// (That closing a socket frees its subscriptions is checked with the caps.)
#[tokio::test]
async fn pings_are_answered_with_pongs() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let mut ws = Ws::ready(app.port, TRANSPORT, &ann.token).await;
    ws.send(json!({ "type": "ping" })).await;
    let pong = tokio::time::timeout(Duration::from_secs(5), ws.stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(pong.into_text().unwrap().as_str(), r#"{"type":"pong"}"#);
    ws.stream.close(None).await.unwrap();
}

/// Two hosts in `DATABASE_URL` with `target_session_attrs=read-write`: the
/// first is demoted the way pg_auto_failover drains a primary (read-only,
/// its sessions kept open), the second takes the writes. Pooled
/// connections to the first are dropped, new ones find the second, the
/// listener follows (subscriptions keep delivering), and so does the sealer.
#[tokio::test]
async fn writes_subscriptions_and_the_sealer_follow_a_demoted_primary() {
    let dir = ScratchDir::new("hosts");
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    let mut a = EmbeddedPostgres::start(Options::throwaway(&dir_a)).await.unwrap();
    let mut b = EmbeddedPostgres::start(Options::throwaway(&dir_b)).await.unwrap();
    a.ensure_database("app").await.unwrap();
    b.ensure_database("app").await.unwrap();
    healthcare_api::db::migrate::run(&b.url("app")).await.unwrap();
    let url = format!(
        "host={},{} port=5432 user=postgres dbname=app target_session_attrs=read-write",
        dir_a.display(),
        dir_b.display()
    );
    let app = TestApp::spawn_on(&url, |s| {
        s.insert("AUDIT_SEAL_INTERVAL".into(), "200ms".into());
    })
    .await;
    let ann = app.signup("ann").await;
    // The new primary holds what the old one did (here: the user).
    let on_a = a.admin_client().await.unwrap();
    let a_app = crate::common::cluster::connect(&a.url("app")).await.unwrap();
    let b_app = crate::common::cluster::connect(&b.url("app")).await.unwrap();
    let user = a_app
        .query_one(
            "SELECT id::text, name, email, email_key, password_hash, role, created_at::text FROM users",
            &[],
        )
        .await
        .unwrap();
    b_app
        .execute(
            "INSERT INTO users (id, name, email, email_key, password_hash, role, created_at)
             VALUES ($1::text::uuid, $2, $3, $4, $5, $6, $7::text::timestamptz)",
            &[
                &user.get::<_, String>(0),
                &user.get::<_, String>(1),
                &user.get::<_, String>(2),
                &user.get::<_, String>(3),
                &user.get::<_, String>(4),
                &user.get::<_, String>(5),
                &user.get::<_, String>(6),
            ],
        )
        .await
        .unwrap();
    let mut ws = Ws::ready(app.port, TRANSPORT, &ann.token).await;
    ws.subscribe("s", None).await;
    until_live(&app, 1).await;

    for statement in [
        "ALTER SYSTEM SET default_transaction_read_only = on",
        "SELECT pg_reload_conf()",
    ] {
        on_a.batch_execute(statement).await.unwrap();
    }
    // Writes fail (retryably) until the pool has let go of the old primary.
    let mut created = None;
    for _ in 0..50 {
        let resp = app
            .gql_as(
                &ann.token,
                "mutation { createPatient(input: { name: \"After\" }) { id } }",
                json!({}),
            )
            .await;
        if let Some(id) = resp.body["data"]["createPatient"]["id"].as_str() {
            created = Some(id.to_owned());
            break;
        }
        assert_eq!(resp.body["errors"][0]["extensions"]["retryable"], true, "{}", resp.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let patient = created.expect("writes reach the new primary");
    let on_b_count = |sql: &'static str| {
        let b_app = &b_app;
        async move { b_app.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(
        on_b_count("SELECT count(*) FROM patients WHERE name = 'After'").await,
        1
    );
    // The listener moves too; then an assignment on the new primary reaches
    // the subscriber.
    let deadline = Instant::now() + Duration::from_secs(10);
    while on_b_count("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %'").await == 0 {
        assert!(
            Instant::now() < deadline,
            "the listener did not move to the new primary"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let doctor = app.create_doctor(&ann.token, "Dr After", "Cardiology").await;
    let mapping = assign(&app, &ann, &patient, &doctor).await;
    assert_eq!(ws.event("s").await["mappingId"], mapping.as_str());
    // And the sealer seals what was written there.
    let deadline = Instant::now() + Duration::from_secs(10);
    while on_b_count("SELECT count(*) FROM audit_blocks").await == 0 {
        assert!(Instant::now() < deadline, "the sealer did not move to the new primary");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(app);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_trusted_documents_only_listed_subscriptions_run() {
    use sha2::{Digest, Sha256};
    let (app, _manifest) = TestApp::spawn_trusted(&[EVENTS]).await;
    let hash = hex::encode(Sha256::digest(EVENTS.as_bytes()));
    let token = app.rest_signup("ann").await;
    let mut ws = Ws::ready(app.port, TRANSPORT, &token).await;
    // Not in the manifest: refused, and nothing runs.
    let other = "subscription { mappingEvents { kind } }";
    let other_hash = hex::encode(Sha256::digest(other.as_bytes()));
    for payload in [
        json!({ "query": other }),
        json!({ "query": other, "extensions": { "persistedQuery": { "version": 1, "sha256Hash": other_hash } } }),
    ] {
        ws.send(json!({ "type": "subscribe", "id": "x", "payload": payload }))
            .await;
        let error = ws.recv().await;
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(
            error["payload"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND",
            "{error}"
        );
    }
    assert_eq!(app.state.notifications.receivers(), 0);
    // Listed: by its text, and by its hash alone.
    ws.subscribe("by-text", None).await;
    ws.send(json!({
        "type": "subscribe",
        "id": "by-hash",
        "payload": { "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } },
    }))
    .await;
    until_live(&app, 2).await;
}
