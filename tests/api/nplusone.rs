//! No N+1: the nested read costs the same number of SQL statements (counted
//! by PostgreSQL's pg_stat_statements) for 5 patients as for 50, on every
//! run.

use serde_json::json;

use crate::common::TestApp;

/// The bench's nested read.
const NESTED: &str = "query($n: Int) { patients(first: $n) { totalCount nodes { createdBy { name } doctors { name createdBy { name } } mappings { doctor { name } assignedBy { name } } } } }";

async fn statements_for(app: &TestApp, token: &str, n: usize) -> i64 {
    // Warm up (prepared statements, pool connections), then measure.
    app.gql_as(token, NESTED, json!({ "n": n })).await.assert_ok();
    let before = app.statements().await;
    let calls_before = app.statement_calls().await;
    let resp = app.gql_as(token, NESTED, json!({ "n": n })).await;
    let after = app.statements().await;
    for (query, calls) in app.statement_calls().await {
        let was = calls_before.iter().find(|(q, _)| *q == query).map_or(0, |(_, c)| *c);
        if calls > was {
            eprintln!("  {}x {}", calls - was, &query[..query.len().min(150)]);
        }
    }
    let nodes = resp.assert_ok()["patients"]["nodes"].as_array().unwrap().clone();
    assert_eq!(nodes.len(), n);
    for node in &nodes {
        assert_eq!(node["doctors"].as_array().unwrap().len(), 3);
        assert_eq!(node["mappings"].as_array().unwrap().len(), 3);
    }
    // The two snapshot queries run in another database, so all of these are the app's.
    after - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_reads_cost_the_same_for_5_or_50_patients() {
    let app = TestApp::spawn().await;
    let (ann, bob) = (app.signup("ann").await, app.signup("bob").await);
    let mut doctors = Vec::new();
    for i in 0..6 {
        // Doctors made by both users, so that creators differ.
        let owner = if i % 2 == 0 { &ann } else { &bob };
        doctors.push(app.create_doctor(&owner.token, &format!("Dr {i}"), "General").await);
    }
    for i in 0..50 {
        let p = app.create_patient(&ann.token, &format!("Patient {i}")).await;
        for d in doctors.iter().skip(i % 3).take(3) {
            app.assign(&ann.token, &p, d).await.assert_ok();
        }
    }
    // Bob's patients exist too but never show up in Ann's read.
    let theirs = app.create_patient(&bob.token, "Bob's").await;
    app.assign(&bob.token, &theirs, &doctors[0]).await.assert_ok();

    // Each size several times, interleaved: the count must not depend on
    // which of a level's queries returns first (issue 11 saw 6, 6, 7).
    let mut counts = Vec::new();
    for _ in 0..4 {
        for n in [5, 50] {
            counts.push((n, statements_for(&app, &ann.token, n).await));
        }
    }
    eprintln!("statements for the nested read (patients, statements): {counts:?}");
    // The page, its count, then per level one statement per relation:
    // users, doctors and mappings of the patients; users and doctors of
    // those; then the read's one `PATIENTS_READ` event.
    for (n, count) in counts {
        assert_eq!(count, 8, "{n} patients");
    }
}

/// Each patient's access log and its size under a list: one statement each
/// for all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_logs_under_a_list_cost_the_same_for_5_or_50_patients() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    for i in 0..50 {
        app.create_patient(&ann.token, &format!("Patient {i}")).await;
    }
    let query = "query($n: Int) { patients(first: $n) { nodes { accessLog(first: 3) { totalCount nodes { action actor { name } } } } } }";
    let mut counts = Vec::new();
    for _ in 0..2 {
        for n in [5, 50] {
            app.gql_as(&ann.token, query, json!({ "n": n })).await.assert_ok();
            let before = app.statements().await;
            let resp = app.gql_as(&ann.token, query, json!({ "n": n })).await;
            let nodes = resp.assert_ok()["patients"]["nodes"].as_array().unwrap().clone();
            assert_eq!(nodes.len(), n);
            for patient in &nodes {
                let log = &patient["accessLog"];
                let shown = log["nodes"].as_array().unwrap().len();
                assert!(
                    shown > 0 && log["totalCount"].as_u64().unwrap() >= shown as u64,
                    "{log}"
                );
            }
            counts.push((n, app.statements().await - before));
        }
    }
    // The page, the logs, their sizes, their actors, and the read's
    // PATIENTS_READ event.
    for (n, count) in counts {
        assert_eq!(count, 5, "{n} patients");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_count_runs_only_when_selected() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    for i in 0..3 {
        app.create_patient(&ann.token, &format!("P{i}")).await;
    }
    let without = "{ patients(first: 2) { nodes { id } } }";
    let with = "{ patients(first: 2) { totalCount nodes { id } } }";
    let mut costs = Vec::new();
    for query in [without, with, without, with] {
        let before = app.statements().await;
        let resp = app.gql_as(&ann.token, query, json!({})).await;
        resp.assert_ok();
        costs.push(app.statements().await - before);
        if query == with {
            assert_eq!(resp.data()["patients"]["totalCount"], 3);
        }
    }
    // Warm (the last two): the page and its audit event, then the page, its
    // count and its audit event.
    assert_eq!(costs[2], 2, "{costs:?}");
    assert_eq!(costs[3], 3, "{costs:?}");
}

/// Statements the app has sent so far, leaving out the foreign-key checks
/// that PostgreSQL runs for an insert (pg_stat_statements counts those too).
async fn sent(app: &TestApp) -> i64 {
    app.statement_calls()
        .await
        .iter()
        .filter(|(query, _)| !query.contains("FOR KEY SHARE OF x"))
        .map(|(_, calls)| calls)
        .sum()
}

/// The point read and the create are one statement each: the row and its
/// audit event together (issue 11 rewrote both; neither may grow).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_point_read_and_the_create_are_one_statement_each() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let create = "mutation($i: CreatePatientInput!) { createPatient(input: $i) { id name } }";
    let read = "query($id: ID!) { patient(id: $id) { id name createdAt } }";
    let mut costs = Vec::new();
    for round in 0..3 {
        let before = sent(&app).await;
        let created = app
            .gql_as(&ann.token, create, json!({ "i": { "name": format!("P{round}") } }))
            .await;
        let id = created.assert_ok()["createPatient"]["id"].as_str().unwrap().to_owned();
        let between = sent(&app).await;
        let resp = app.gql_as(&ann.token, read, json!({ "id": id })).await;
        assert_eq!(resp.assert_ok()["patient"]["id"], id.as_str());
        let after = sent(&app).await;
        costs.push((between - before, after - between));
    }
    assert_eq!(costs, [(1, 1), (1, 1), (1, 1)]);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action IN ('PATIENT_CREATED', 'PATIENT_READ')")
            .await,
        6
    );
}
