//! The tamper-evident audit trail: committed events are sealed into a chain
//! of blocks by one replica at a time, late commits in a later block, and
//! `healthcare-api audit verify` finds what a database superuser changed,
//! deleted, forged, removed or reordered with the triggers off.

use std::{process::Output, time::Duration};

use serde_json::json;

use crate::common::{AUDIT_SEAL_KEY, JWT_SECRET, MFA_ENCRYPTION_KEY, TestApp, cluster};

const SEAL: &str = "{ auditSeal { sealedEvents pendingEvents headBlock headHash sealedAt } }";

/// The sealer's advisory lock (src/db/seal.rs).
const SEAL_LOCK: i64 = 0x6865_616c_7468_7365;

/// An app that seals often, on a database the test keeps.
async fn sealing_app(db: &cluster::TestDb) -> TestApp {
    TestApp::spawn_on(&db.url, |s| {
        s.insert("AUDIT_SEAL_INTERVAL".into(), "150ms".into());
    })
    .await
}

/// `healthcare-api audit ...` on the database, with the test's secrets.
fn audit_command(db_url: &str, key: &str, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_healthcare-api"))
        .env_clear()
        .env("DATABASE_URL", db_url)
        .env("JWT_SECRET", JWT_SECRET)
        .env("AUDIT_SEAL_KEY", key)
        .env("MFA_ENCRYPTION_KEY", MFA_ENCRYPTION_KEY)
        .env("RUST_LOG", "warn")
        .arg("audit")
        .args(args)
        .output()
        .expect("run the binary")
}

/// Runs `audit verify` and returns its exit code and its one line.
fn verify(db_url: &str, args: &[&str]) -> (i32, String) {
    let out = audit_command(db_url, AUDIT_SEAL_KEY, &[&["verify"], args].concat());
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
}

/// Waits until every committed event is sealed.
async fn until_sealed(db_url: &str) {
    let client = cluster::connect(db_url).await.unwrap();
    for _ in 0..200 {
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM audit_events), \
                 (SELECT coalesce(max(sealed_total), 0) FROM audit_blocks)",
                &[],
            )
            .await
            .unwrap();
        let (events, sealed): (i64, i64) = (row.get(0), row.get(1));
        if events == sealed {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the events were not sealed in 10 s");
}

/// A database with a few blocks of history, its app stopped.
async fn sealed_history() -> cluster::TestDb {
    let db = cluster::cluster().database(true).await;
    let app = sealing_app(&db).await;
    for wave in 0..3 {
        let user = app.signup(&format!("user{wave}")).await;
        let patient = app.create_patient(&user.token, "Pat").await;
        app.gql_as(
            &user.token,
            "query($id: ID!) { patient(id: $id) { id } }",
            json!({ "id": patient }),
        )
        .await
        .assert_ok();
        app.gql_as(&user.token, "{ patients { nodes { id } } }", json!({}))
            .await
            .assert_ok();
        until_sealed(&db.url).await;
    }
    app.stop().await;
    db
}

/// The superuser's session with triggers off, as a tamperer would have it.
async fn tamperer(db_url: &str) -> tokio_postgres::Client {
    let client = cluster::connect(db_url).await.unwrap();
    client
        .batch_execute("SET session_replication_role = replica")
        .await
        .unwrap();
    client
}

/// An event and the block that seals it: the `n`th event of block `block`.
async fn sealed_event(client: &tokio_postgres::Client, block: i64, n: usize) -> i64 {
    let row = client
        .query_one("SELECT event_ids FROM audit_blocks WHERE number = $1", &[&block])
        .await
        .unwrap();
    row.get::<_, Vec<i64>>(0)[n]
}

async fn blocks(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM audit_blocks", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_sealed_and_the_untouched_chain_verifies() {
    let db = cluster::cluster().database(true).await;
    let app = sealing_app(&db).await;
    let root = app.admin("root").await;
    let ann = app.signup("ann").await;
    let patient = app.create_patient(&ann.token, "Pat").await;
    app.gql_as(&ann.token, "{ patients { nodes { id } } }", json!({}))
        .await
        .assert_ok();
    app.rest("GET", &format!("/api/patients/{patient}"), Some(&ann.token), None)
        .await;
    until_sealed(&db.url).await;

    // Admins see the seal; nobody else does.
    let seal = app.gql_as(&root.token, SEAL, json!({})).await;
    let seal = seal.assert_ok()["auditSeal"].clone();
    let events = app.count("SELECT count(*) FROM audit_events").await;
    assert_eq!(seal["sealedEvents"].as_i64(), Some(events), "{seal}");
    assert_eq!(seal["pendingEvents"], 0, "{seal}");
    assert!(seal["headBlock"].as_i64().unwrap() >= 1, "{seal}");
    assert_eq!(seal["headHash"].as_str().unwrap().len(), 64, "{seal}");
    assert!(seal["sealedAt"].is_string(), "{seal}");
    app.gql_as(&ann.token, SEAL, json!({})).await.assert_code("FORBIDDEN");
    app.gql(SEAL, json!({})).await.assert_code("UNAUTHENTICATED");

    // Each event in exactly one block.
    let client = cluster::connect(&db.url).await.unwrap();
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT id) FROM (SELECT unnest(event_ids) AS id FROM audit_blocks) s",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (events, events));

    // `audit head` prints what auditSeal shows (once no new event came in).
    let head = app.gql_as(&root.token, SEAL, json!({})).await;
    let head = head.assert_ok()["auditSeal"].clone();
    let out = audit_command(&db.url, AUDIT_SEAL_KEY, &["head"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{} {}", head["headBlock"], head["headHash"].as_str().unwrap())
    );

    let (code, line) = verify(&db.url, &[]);
    assert_eq!(code, 0, "{line}");
    assert!(line.starts_with("audit trail intact"), "{line}");
    let (code, line) = verify(&db.url, &["--head", head["headHash"].as_str().unwrap()]);
    assert_eq!(code, 0, "{line}");

    // Another key does not verify the chain.
    let out = audit_command(&db.url, "another-key-another-key-another-key-0", &["verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("broken at block 1"),
        "{out:?}"
    );
    // A malformed --head is refused before anything is read.
    let (code, line) = verify(&db.url, &["--head", "not-a-hash"]);
    assert_eq!(code, 2, "{line}");
    assert!(line.contains("64 hexadecimal digits"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_event_is_named() {
    let db = sealed_history().await;
    let client = tamperer(&db.url).await;
    let event = sealed_event(&client, 2, 0).await;
    client
        .execute(
            "UPDATE audit_events SET action = 'PATIENT_UPDATED' WHERE id = $1",
            &[&event],
        )
        .await
        .unwrap();
    let (code, line) = verify(&db.url, &[]);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains(&format!("broken at block 2, event {event}: the event was changed")),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_event_is_named() {
    let db = sealed_history().await;
    let client = tamperer(&db.url).await;
    let event = sealed_event(&client, 1, 0).await;
    client
        .execute("DELETE FROM audit_events WHERE id = $1", &[&event])
        .await
        .unwrap();
    let (code, line) = verify(&db.url, &[]);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains(&format!("broken at block 1, event {event}: the event was deleted")),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_forged_into_sealed_history_is_found_sealed_or_not() {
    let db = sealed_history().await;
    let client = tamperer(&db.url).await;
    // An event dated an hour before the first seal, with an id below every
    // real one.
    let forged: i64 = client
        .query_one(
            "INSERT INTO audit_events (id, at, actor_id, action, entity_type, entity_id, entity_ids) \
             OVERRIDING SYSTEM VALUE \
             SELECT 0, \
                    (SELECT sealed_at FROM audit_blocks WHERE number = 1) - interval '1 hour', \
                    NULL, 'PATIENT_READ', 'PATIENT', NULL, '{}' \
             RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let (code, line) = verify(&db.url, &[]);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains(&format!("broken at block 1, event {forged}: an event dated"))
            && line.contains("added afterwards"),
        "{line}"
    );

    // A server seals it like any committed event; it still shows.
    let before = blocks(&client).await;
    let app = sealing_app(&db).await;
    until_sealed(&db.url).await;
    app.stop().await;
    let after = blocks(&client).await;
    assert!(after > before);
    let (code, line) = verify(&db.url, &[]);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains(&format!("broken at block {after}, event {forged}: an event dated"))
            && line.contains("added afterwards"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_newest_block_is_caught_with_the_recorded_head() {
    let db = sealed_history().await;
    let out = audit_command(&db.url, AUDIT_SEAL_KEY, &["head"]);
    let head = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let (number, hash) = head.split_once(' ').unwrap();
    let client = tamperer(&db.url).await;
    client
        .execute(
            "DELETE FROM audit_blocks WHERE number = $1",
            &[&number.parse::<i64>().unwrap()],
        )
        .await
        .unwrap();
    // Without the recorded head, a shorter chain is still a chain.
    let (code, line) = verify(&db.url, &[]);
    assert_eq!(code, 0, "{line}");
    let (code, line) = verify(&db.url, &["--head", hash]);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains(&format!("broken at block {number}")) && line.contains("is no longer in the chain"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_blocks_are_caught() {
    let db = sealed_history().await;
    let client = tamperer(&db.url).await;
    client
        .batch_execute(
            "UPDATE audit_blocks SET number = 1000000 WHERE number = 1; \
             UPDATE audit_blocks SET number = 1 WHERE number = 2; \
             UPDATE audit_blocks SET number = 2 WHERE number = 1000000;",
        )
        .await
        .unwrap();
    let (code, line) = verify(&db.url, &[]);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains("broken at block 1: the block's seal does not match"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_seal_each_event_exactly_once() {
    let db = cluster::cluster().database(true).await;
    let (one, two) = (sealing_app(&db).await, sealing_app(&db).await);
    let ann = one.signup("ann").await;
    let bob = two.signup("bob").await;
    // Writes through both replicas for a while, across many seals.
    let started = std::time::Instant::now();
    let mut rounds = 0;
    while started.elapsed() < Duration::from_secs(2) && rounds < 200 {
        let (a, b) = tokio::join!(one.create_patient(&ann.token, "A"), two.create_patient(&bob.token, "B"));
        assert!(!a.is_empty() && !b.is_empty());
        rounds += 1;
    }
    until_sealed(&db.url).await;
    let client = cluster::connect(&db.url).await.unwrap();
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM audit_events), \
                    (SELECT count(*) FROM (SELECT unnest(event_ids) FROM audit_blocks) s), \
                    (SELECT count(DISTINCT id) FROM (SELECT unnest(event_ids) AS id FROM audit_blocks) s), \
                    (SELECT count(*) FROM audit_blocks)",
            &[],
        )
        .await
        .unwrap();
    let (events, listed, distinct, blocks): (i64, i64, i64, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!((listed, distinct), (events, events));
    assert!(blocks > 2, "{blocks} blocks for {rounds} rounds");
    one.stop().await;
    two.stop().await;
    let (code, line) = verify(&db.url, &[]);
    assert_eq!(code, 0, "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_commit_is_sealed_in_a_later_block_and_metrics_show_the_wait() {
    let db = cluster::cluster().database(true).await;
    let app = sealing_app(&db).await;
    let insert = "INSERT INTO audit_events (actor_id, action, entity_type, entity_id, entity_ids) \
                  VALUES (NULL, 'LOGIN_FAILED', 'USER', NULL, '{}') RETURNING id";
    // A rolled-back event leaves a gap in the ids, which is no problem.
    let rolled_back = cluster::connect(&db.url).await.unwrap();
    rolled_back.batch_execute("BEGIN").await.unwrap();
    rolled_back.query_one(insert, &[]).await.unwrap();
    rolled_back.batch_execute("ROLLBACK").await.unwrap();
    // A transaction that writes its event first and commits last.
    let slow = cluster::connect(&db.url).await.unwrap();
    slow.batch_execute("BEGIN").await.unwrap();
    let late: i64 = slow.query_one(insert, &[]).await.unwrap().get(0);
    let ann = app.signup("ann").await;
    app.create_patient(&ann.token, "Pat").await;
    let client = cluster::connect(&db.url).await.unwrap();
    let newest: i64 = client
        .query_one("SELECT max(id) FROM audit_events", &[])
        .await
        .unwrap()
        .get(0);
    assert!(newest > late);
    let block_of = async |id: i64| -> Option<i64> {
        client
            .query_opt("SELECT number FROM audit_blocks WHERE $1 = ANY(event_ids)", &[&id])
            .await
            .unwrap()
            .map(|r| r.get(0))
    };
    let mut later_block = None;
    for _ in 0..200 {
        later_block = block_of(newest).await;
        if later_block.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let later_block = later_block.expect("the later event is sealed");
    assert_eq!(block_of(late).await, None);

    // While a sealer is kept from sealing, /metrics shows what waits.
    let holder = cluster::connect(&db.url).await.unwrap();
    holder
        .execute("SELECT pg_advisory_lock($1)", &[&SEAL_LOCK])
        .await
        .unwrap();
    slow.batch_execute("COMMIT").await.unwrap();
    let mut waiting = String::new();
    for _ in 0..200 {
        let body = app.metrics().await;
        if body.contains("audit_unsealed_events 1") {
            waiting = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let age: f64 = waiting
        .lines()
        .find_map(|l| l.strip_prefix("audit_oldest_unsealed_event_age_seconds "))
        .expect("the age is reported")
        .parse()
        .unwrap();
    assert!(age > 0.0, "{waiting}");
    assert_eq!(block_of(late).await, None, "no seal while another holds the lock");
    holder
        .execute("SELECT pg_advisory_unlock($1)", &[&SEAL_LOCK])
        .await
        .unwrap();

    until_sealed(&db.url).await;
    let late_block = block_of(late).await.expect("the late event is sealed");
    assert!(late_block > later_block, "{late_block} after {later_block}");
    app.stop().await;
    let (code, line) = verify(&db.url, &[]);
    assert_eq!(code, 0, "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_sealed_in_blocks_of_at_most_ten_thousand_events() {
    let db = cluster::cluster().database(true).await;
    let client = cluster::connect(&db.url).await.unwrap();
    // An event whose transaction commits while the backlog is being sealed,
    // with an id below all of it.
    let slow = cluster::connect(&db.url).await.unwrap();
    slow.batch_execute("BEGIN").await.unwrap();
    let late: i64 = slow
        .query_one(
            "INSERT INTO audit_events (action, entity_type, entity_id, entity_ids) \
             VALUES ('LOGIN_FAILED', 'USER', NULL, '{}') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // Events written while no server ran.
    client
        .batch_execute(
            "INSERT INTO audit_events (action, entity_type, entity_id, entity_ids) \
             SELECT 'PATIENT_READ', 'PATIENT', p, ARRAY[p] \
             FROM (SELECT gen_random_uuid() AS p FROM generate_series(1, 60000)) s",
        )
        .await
        .unwrap();
    let app = sealing_app(&db).await;
    for _ in 0..200 {
        let blocks = blocks(&client).await;
        if blocks > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    slow.batch_execute("COMMIT").await.unwrap();
    until_sealed(&db.url).await;
    app.stop().await;
    let row = client
        .query_one(
            "SELECT max(cardinality(event_ids)), count(*), \
                    (SELECT count(DISTINCT id) FROM (SELECT unnest(event_ids) AS id FROM audit_blocks) s), \
                    bool_or($1 = ANY(event_ids)) \
             FROM audit_blocks",
            &[&late],
        )
        .await
        .unwrap();
    let (largest, blocks, distinct, late_sealed): (i32, i64, i64, bool) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(largest, 10_000);
    assert!(blocks >= 7, "{blocks}");
    assert_eq!(distinct, 60_001);
    // It waited for the block that ends the backlog.
    assert!(late_sealed);
    let (code, line) = verify(&db.url, &[]);
    assert_eq!(code, 0, "{line}");
    assert!(line.contains("seal 60001 event(s)"), "{line}");
}
