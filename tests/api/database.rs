//! The database: reversible migrations, replicas migrating together,
//! readiness that follows the database, and TLS (`sslmode=require`).

use std::time::Duration;

use healthcare_api::db::{
    embedded::{self, EmbeddedPostgres, Options},
    migrate,
};
use serde_json::json;

use crate::common::{ME, TestApp, chmod, cluster::ScratchDir, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_revert_and_apply_again() {
    let db = crate::common::cluster::cluster().database(false).await;
    let url = db.url.clone();
    let applied = migrate::run(&url).await.unwrap();
    assert!(!applied.is_empty());
    assert!(
        migrate::run(&url).await.unwrap().is_empty(),
        "a second run applies nothing"
    );
    assert_eq!(migrate::revert_all(&url).await.unwrap(), applied.len());
    let client = crate::common::cluster::connect(&url).await.unwrap();
    let left: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> '__diesel_schema_migrations'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "down.sql leaves tables behind");
    assert_eq!(migrate::run(&url).await.unwrap().len(), applied.len());
}

/// Reverts the newest migrations, down to and including `version`.
async fn revert_through(url: &str, version: &str) {
    for _ in 0..20 {
        if migrate::revert_newest(url).await.unwrap() == version {
            return;
        }
    }
    panic!("migration {version} was never reverted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_entity_ids_migration_fills_in_the_existing_events() {
    let db = crate::common::cluster::cluster().database(false).await;
    let url = db.url.clone();
    migrate::run(&url).await.unwrap();
    revert_through(&url, "20261201000004").await;
    let client = crate::common::cluster::connect(&url).await.unwrap();
    // Events as the trail held them before: a patient's, a live assignment's,
    // a removed assignment's, and a failed login of an unknown email.
    client
        .batch_execute(
            "INSERT INTO users (id, name, email, email_key, password_hash) VALUES
                ('00000000-0000-0000-0000-0000000000a1', 'Ann', 'ann@example.org', 'ann@example.org', 'x');
             INSERT INTO patients (id, name, gender, created_by) VALUES
                ('00000000-0000-0000-0000-0000000000b1', 'Pat', 'UNKNOWN', '00000000-0000-0000-0000-0000000000a1');
             INSERT INTO doctors (id, name, specialization, created_by) VALUES
                ('00000000-0000-0000-0000-0000000000c1', 'Dr', 'GP', '00000000-0000-0000-0000-0000000000a1');
             INSERT INTO mappings (id, patient_id, doctor_id, assigned_by) VALUES
                ('00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000b1',
                 '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1');
             INSERT INTO audit_events (action, entity_type, entity_id) VALUES
                ('PATIENT_CREATED', 'PATIENT', '00000000-0000-0000-0000-0000000000b1'),
                ('MAPPING_CREATED', 'MAPPING', '00000000-0000-0000-0000-0000000000d1'),
                ('MAPPING_DELETED', 'MAPPING', '00000000-0000-0000-0000-0000000000e1'),
                ('LOGIN_FAILED', 'USER', NULL);",
        )
        .await
        .unwrap();
    migrate::run(&url).await.unwrap();
    let rows = client
        .query("SELECT entity_ids::text[] FROM audit_events ORDER BY id", &[])
        .await
        .unwrap();
    let ids: Vec<Vec<String>> = rows.iter().map(|r| r.get(0)).collect();
    let id = |tail: &str| format!("00000000-0000-0000-0000-0000000000{tail}");
    assert_eq!(
        ids,
        vec![
            vec![id("b1")],
            vec![id("d1"), id("b1"), id("c1")],
            // A removed assignment's pair was never recorded.
            vec![id("e1")],
            vec![],
        ]
    );
    // The trail is append-only again, and every new row must say what it concerns.
    let update = client.execute("UPDATE audit_events SET entity_ids = '{}'", &[]).await;
    assert!(update.is_err());
    let unsaid = client
        .execute(
            "INSERT INTO audit_events (action, entity_type) VALUES ('REGISTER', 'USER')",
            &[],
        )
        .await;
    assert!(unsaid.is_err(), "entity_ids has no default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_from_before_the_seal_are_sealed_by_the_first_block() {
    let db = crate::common::cluster::cluster().database(false).await;
    let url = db.url.clone();
    migrate::run(&url).await.unwrap();
    revert_through(&url, "20261202000005").await;
    let client = crate::common::cluster::connect(&url).await.unwrap();
    client
        .batch_execute(
            "INSERT INTO audit_events (action, entity_type, entity_id, entity_ids) VALUES
                ('LOGIN_FAILED', 'USER', NULL, '{}'),
                ('PATIENT_READ', 'PATIENT', '00000000-0000-0000-0000-0000000000b1',
                 '{00000000-0000-0000-0000-0000000000b1}');",
        )
        .await
        .unwrap();
    let app = TestApp::spawn_on(&url, |s| {
        s.insert("AUDIT_SEAL_INTERVAL".into(), "100ms".into());
    })
    .await;
    let mut first_block: Vec<i64> = Vec::new();
    for _ in 0..100 {
        if let Some(row) = client
            .query_opt("SELECT event_ids FROM audit_blocks WHERE number = 1", &[])
            .await
            .unwrap()
        {
            first_block = row.get(0);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let existing: Vec<i64> = client
        .query("SELECT id FROM audit_events ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(first_block, existing);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_migrate_one_database_at_once() {
    let db = crate::common::cluster::cluster().database(false).await;
    let url = db.url.clone();
    let (a, b) = tokio::join!(TestApp::try_spawn_on(&url, |_| {}), TestApp::try_spawn_on(&url, |_| {}));
    let (a, b) = (a.expect("first replica"), b.expect("second replica"));
    let ann = a.signup("ann").await;
    b.gql_as(&ann.token, ME, json!({})).await.assert_ok();
}

/// A commit that PostgreSQL reports as done although its wait for the
/// synchronous standby was cut short is not durable: a failover to that
/// standby loses it. Here no standby ever confirms (`synchronous_standby_names`
/// names one that does not exist), so each change waits at its `COMMIT` until
/// the test cancels the wait (as a statement timeout would) or ends the
/// backend (as a fast shutdown does). The change is committed on this
/// server, but the client must get a retryable failure, never success.
/// The standby test's backends whose commit waits for the standby, but for
/// the audit sealer's (which holds its advisory lock while it commits).
const REQUEST_COMMITS: &str = "wait_event = 'SyncRep' \
    AND pid NOT IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory')";

/// A request of the standby test.
enum Sent {
    Gql(&'static str, serde_json::Value),
    Anonymous(&'static str, serde_json::Value),
    Rest(&'static str, String, serde_json::Value),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_the_standby_did_not_confirm_is_not_acknowledged() {
    let dir = ScratchDir::new("syncrep");
    let mut pg = EmbeddedPostgres::start(Options::throwaway(dir.path().join("pg")))
        .await
        .unwrap();
    pg.ensure_database("app").await.unwrap();
    let admin = pg.admin_client().await.unwrap();
    // The throwaway cluster commits without waiting, for speed; the app's
    // sessions wait, as on a real primary.
    admin
        .batch_execute("ALTER DATABASE app SET synchronous_commit = 'on'")
        .await
        .unwrap();
    let app = TestApp::spawn_on(&pg.url("app"), |_| {}).await;
    let ann = app.signup("ann").await;
    let patient = app.create_patient(&ann.token, "Pat").await;
    let doctor = app.create_doctor(&ann.token, "Dr Who", "Cardiology").await;
    for statement in [
        "ALTER SYSTEM SET synchronous_standby_names = 'nobody'",
        "SELECT pg_reload_conf()",
    ] {
        admin.batch_execute(statement).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let db = crate::common::cluster::connect(&pg.url("app")).await.unwrap();
    let reads = "SELECT count(*) FROM audit_events WHERE action = 'PATIENT_READ'";
    // Each case: how it is sent, how the wait is cut short, and what it wrote
    // (on this server alone) as a count that must grow by one.
    let cases: Vec<(&str, &str, Sent, String)> = vec![
        (
            "updatePatient, cancelled",
            "pg_cancel_backend",
            Sent::Gql(
                "mutation($id: ID!) { updatePatient(id: $id, input: { name: \"Upd 1\" }) { id name } }",
                json!({ "id": patient }),
            ),
            "SELECT count(*) FROM patients WHERE name = 'Upd 1'".into(),
        ),
        (
            "updatePatient, terminated",
            "pg_terminate_backend",
            Sent::Gql(
                "mutation($id: ID!) { updatePatient(id: $id, input: { name: \"Upd 2\" }) { id name } }",
                json!({ "id": patient }),
            ),
            "SELECT count(*) FROM patients WHERE name = 'Upd 2'".into(),
        ),
        (
            "PUT /api/patients/{id}, cancelled",
            "pg_cancel_backend",
            Sent::Rest("PUT", format!("/api/patients/{patient}"), json!({ "name": "Upd 3" })),
            "SELECT count(*) FROM patients WHERE name = 'Upd 3'".into(),
        ),
        (
            "createPatient, cancelled",
            "pg_cancel_backend",
            Sent::Gql(
                "mutation { createPatient(input: { name: \"New 1\" }) { id name } }",
                json!({}),
            ),
            "SELECT count(*) FROM patients WHERE name = 'New 1'".into(),
        ),
        (
            "POST /api/patients, terminated",
            "pg_terminate_backend",
            Sent::Rest("POST", "/api/patients".into(), json!({ "name": "New 2" })),
            "SELECT count(*) FROM patients WHERE name = 'New 2'".into(),
        ),
        (
            "createDoctor, cancelled",
            "pg_cancel_backend",
            Sent::Gql(
                "mutation { createDoctor(input: { name: \"Dr New\", specialization: \"Oncology\" }) { id } }",
                json!({}),
            ),
            "SELECT count(*) FROM doctors WHERE name = 'Dr New'".into(),
        ),
        (
            "assignDoctor, cancelled",
            "pg_cancel_backend",
            Sent::Gql(
                "mutation($p: ID!, $d: ID!) { assignDoctor(input: { patientId: $p, doctorId: $d }) { id } }",
                json!({ "p": patient, "d": doctor }),
            ),
            "SELECT count(*) FROM mappings".into(),
        ),
        (
            "register, cancelled",
            "pg_cancel_backend",
            Sent::Anonymous(
                crate::common::REGISTER,
                json!({ "input": { "name": "Bo", "email": "bo@example.org", "password": crate::common::PASSWORD } }),
            ),
            "SELECT count(*) FROM users WHERE email = 'bo@example.org'".into(),
        ),
        // A record is served only once its PATIENT_READ event is durable.
        (
            "patient(id), cancelled",
            "pg_cancel_backend",
            Sent::Gql(
                "query($id: ID!) { patient(id: $id) { id name } }",
                json!({ "id": patient }),
            ),
            reads.into(),
        ),
        (
            "GET /api/patients/{id}, terminated",
            "pg_terminate_backend",
            Sent::Rest("GET", format!("/api/patients/{patient}"), serde_json::Value::Null),
            reads.into(),
        ),
        (
            "patients list, cancelled",
            "pg_cancel_backend",
            Sent::Gql("{ patients(first: 5) { edges { node { id name } } } }", json!({})),
            "SELECT count(*) FROM audit_events WHERE action = 'PATIENTS_READ'".into(),
        ),
    ];
    for (how, stop, sent, written) in cases {
        // The last case's backend may still be listed as waiting while it
        // exits: start when no request's commit waits, so that the one cut
        // short is this case's.
        for _ in 0..100 {
            let waiting: i64 = admin
                .query_one(
                    &format!("SELECT count(*) FROM pg_stat_activity WHERE {REQUEST_COMMITS}"),
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if waiting == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let before: i64 = db.query_one(&written, &[]).await.unwrap().get(0);
        let request = {
            let (url, client, token) = (app.address.clone(), app.client.clone(), ann.token.clone());
            tokio::spawn(async move {
                let anonymous = matches!(sent, Sent::Anonymous(..));
                let request = match sent {
                    Sent::Rest(method, path, body) => {
                        let request = client.request(method.parse().unwrap(), format!("{url}{path}"));
                        if body.is_null() { request } else { request.json(&body) }
                    }
                    Sent::Gql(query, variables) | Sent::Anonymous(query, variables) => client
                        .post(format!("{url}/graphql"))
                        .json(&json!({ "query": query, "variables": variables })),
                };
                let request = if anonymous { request } else { request.bearer_auth(token) };
                let resp = request.send().await.unwrap();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                (
                    resp.status().as_u16(),
                    retry_after,
                    resp.json::<serde_json::Value>().await.unwrap(),
                )
            })
        };
        // The commit waits for the standby; cut the wait short.
        let mut cut = false;
        for _ in 0..100 {
            let n: i64 = admin
                .query_one(
                    &format!("SELECT count({stop}(pid)) FROM pg_stat_activity WHERE {REQUEST_COMMITS}"),
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if n > 0 {
                cut = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(cut, "{how}: no commit waited for the standby");
        let (status, retry_after, body) = request.await.unwrap();
        if body.get("errors").is_none() && body.get("error").is_none() {
            panic!("{how}: acknowledged a commit the standby never confirmed: {status} {body}");
        }
        if how.contains(" /api/") {
            assert_eq!(status, 503, "{how}: {body}");
            assert_eq!(retry_after.as_deref(), Some("1"), "{how}");
            assert_eq!(body["error"]["code"], "INTERNAL_SERVER_ERROR", "{how}: {body}");
        } else {
            assert_eq!(body["data"], serde_json::Value::Null, "{how}: {body}");
            assert_eq!(body["errors"][0]["extensions"]["retryable"], true, "{how}: {body}");
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "INTERNAL_SERVER_ERROR",
                "{how}: {body}"
            );
        }
        // Yet the change is there, on this server alone. The server answers
        // as soon as PostgreSQL warns, which can be a moment before the
        // committing backend makes its transaction visible to others.
        let mut after: i64 = 0;
        for _ in 0..100 {
            after = db.query_one(&written, &[]).await.unwrap().get(0);
            if after == before + 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(after, before + 1, "{how}: the commit went through locally");
    }
    // With the standby requirement gone, changes are acknowledged again.
    for statement in [
        "ALTER SYSTEM RESET synchronous_standby_names",
        "SELECT pg_reload_conf()",
    ] {
        admin.batch_execute(statement).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.create_patient(&ann.token, "Confirmed").await;
    app.stop().await;
    pg.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_database() {
    let dir = ScratchDir::new("ready");
    let mut pg = EmbeddedPostgres::start(Options::throwaway(dir.path().join("pg")))
        .await
        .unwrap();
    pg.ensure_database("app").await.unwrap();
    let app = TestApp::spawn_on(&pg.url("app"), |_| {}).await;
    let ready = || async {
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(ready().await, 200);

    pg.stop().await.unwrap();
    assert_eq!(ready().await, 503);
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "liveness does not depend on the database");
    let resp = app
        .gql(
            crate::common::LOGIN,
            json!({ "input": { "email": "a@example.org", "password": "x" } }),
        )
        .await;
    resp.assert_code("INTERNAL_SERVER_ERROR");

    pg.restart().await.unwrap();
    let mut status = 0;
    for _ in 0..50 {
        status = ready().await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "ready again without a restart");
    app.signup("ann").await;
    app.stop().await;
    pg.stop().await.unwrap();
}

/// While the database takes connections but never answers (a hung host),
/// every request fails within `DATABASE_CONNECT_TIMEOUT` with a retryable
/// error, none hangs, and service resumes by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_fail_fast_while_no_database_answers() {
    let dir = ScratchDir::new("outage");
    let pg_dir = dir.path().join("pg");
    let mut pg = EmbeddedPostgres::start(Options::throwaway(&pg_dir)).await.unwrap();
    pg.ensure_database("app").await.unwrap();
    let app = TestApp::spawn_on(&pg.url("app"), |s| {
        s.insert("DATABASE_CONNECT_TIMEOUT".into(), "1s".into());
        s.insert("DATABASE_POOL_SIZE".into(), "4".into());
    })
    .await;
    let ann = app.signup("ann").await;
    let patient = app.create_patient(&ann.token, "Pat").await;

    pg.stop().await.unwrap();
    // Something holds the database's address: it takes connections and says
    // nothing.
    let socket = pg_dir.join(".s.PGSQL.5432");
    let _ = std::fs::remove_file(&socket);
    let silent = tokio::net::UnixListener::bind(&socket).unwrap();
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            held.push(conn);
        }
    });
    let started = std::time::Instant::now();
    let requests = (0..12).map(|n| {
        let (client, url, token, patient) = (
            app.client.clone(),
            app.address.clone(),
            ann.token.clone(),
            patient.clone(),
        );
        async move {
            let sent = std::time::Instant::now();
            let resp = match n % 3 {
                0 => client.get(format!("{url}/api/patients/{patient}")),
                1 => client.post(format!("{url}/graphql")).json(
                    &json!({ "query": "query($id: ID!) { patient(id: $id) { id } }", "variables": { "id": patient } }),
                ),
                _ => client
                    .post(format!("{url}/graphql"))
                    .json(&json!({ "query": "mutation { createPatient(input: { name: \"During\" }) { id } }" })),
            }
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
            let status = resp.status().as_u16();
            let retry_after = resp.headers().get("retry-after").is_some();
            let body: serde_json::Value = resp.json().await.unwrap();
            (n, sent.elapsed(), status, retry_after, body)
        }
    });
    for (n, took, status, retry_after, body) in futures_util::future::join_all(requests).await {
        assert!(took < Duration::from_millis(2000), "request {n} took {took:?}: {body}");
        if n % 3 == 0 {
            assert_eq!((status, retry_after), (503, true), "{body}");
        } else {
            assert_eq!(body["errors"][0]["extensions"]["retryable"], true, "{body}");
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "INTERNAL_SERVER_ERROR",
                "{body}"
            );
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the requests ran side by side"
    );
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);

    held.abort();
    let _ = std::fs::remove_file(&socket);
    pg.restart().await.unwrap();
    let mut resumed = false;
    for _ in 0..50 {
        let read = app
            .gql_as(
                &ann.token,
                "query($id: ID!) { patient(id: $id) { id } }",
                json!({ "id": patient }),
            )
            .await;
        if read.body.get("errors").is_none() {
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(resumed, "service resumed without a restart");
    app.stop().await;
    pg.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_connects_over_tls() {
    let dir = ScratchDir::new("tls");
    let cert_dir = dir.path().join("certs");
    std::fs::create_dir_all(&cert_dir).unwrap();
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(cert_dir.join("server.key"))
        .arg("-out")
        .arg(cert_dir.join("server.crt"))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success());
    for f in ["server.key", "server.crt"] {
        embedded::give_to_cluster_user(&cert_dir.join(f)).unwrap();
        chmod(&cert_dir.join(f), 0o600);
    }
    embedded::give_to_cluster_user(&cert_dir).unwrap();

    let port = free_port();
    let mut opts = Options::throwaway(dir.path().join("pg"));
    opts.tcp_port = Some(port);
    // Only TLS connections are let in over TCP.
    opts.hba =
        Some("local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n".into());
    for (k, v) in [
        ("ssl", "on".to_owned()),
        ("ssl_cert_file", cert_dir.join("server.crt").display().to_string()),
        ("ssl_key_file", cert_dir.join("server.key").display().to_string()),
    ] {
        opts.settings.push((k.into(), v));
    }
    let mut pg = EmbeddedPostgres::start(opts).await.unwrap();
    pg.ensure_database("app").await.unwrap();

    let tls_url = format!("postgres://postgres@127.0.0.1:{port}/app?sslmode=require");
    let app = TestApp::spawn_on(&tls_url, |_| {}).await;
    let ann = app.signup("ann").await;
    app.gql_as(&ann.token, ME, json!({})).await.assert_ok();
    app.stop().await;

    // The same server refuses a connection without TLS, so the one above was encrypted.
    let plain = format!("postgres://postgres@127.0.0.1:{port}/app?sslmode=disable");
    assert!(TestApp::try_spawn_on(&plain, |_| {}).await.is_err());
    pg.stop().await.unwrap();
}
