//! `Patient.accessLog`: every event that concerns a patient, newest first,
//! keyset-paged, to whoever may see the patient, with the usual privacy of
//! the actors.

use serde_json::{Value, json};

use crate::common::{TestApp, cluster};

const LOG: &str = "query($id: ID!, $first: Int, $after: String) { patient(id: $id) { accessLog(first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { id action actor { id email role } entityIds } } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_lists_every_event_of_the_patient_newest_first_page_by_page() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let root = app.admin("root").await;
    let patient = app.create_patient(&ann.token, "Pat").await;
    let other = app.create_patient(&ann.token, "Other").await;
    let doctor = app.create_doctor(&ann.token, "Dr", "GP").await;
    app.gql_as(
        &ann.token,
        "mutation($id: ID!) { updatePatient(id: $id, input: {name: \"Pat 2\"}) { id } }",
        json!({ "id": patient }),
    )
    .await
    .assert_ok();
    app.assign(&ann.token, &patient, &doctor).await.assert_ok();
    app.gql_as(&ann.token, "{ patients { nodes { id } } }", json!({}))
        .await
        .assert_ok();
    // The admin reads it: the owner sees who, but not the admin's email or role.
    app.gql_as(
        &root.token,
        "query($id: ID!) { patient(id: $id) { id } }",
        json!({ "id": patient }),
    )
    .await
    .assert_ok();

    // Page by page, two at a time.
    let mut seen: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    let mut total = None;
    for _ in 0..10 {
        let resp = app
            .gql_as(&ann.token, LOG, json!({ "id": patient, "first": 2, "after": after }))
            .await;
        let log = resp.assert_ok()["patient"]["accessLog"].clone();
        total.get_or_insert(log["totalCount"].as_i64().unwrap());
        seen.extend(log["nodes"].as_array().unwrap().iter().cloned());
        if log["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = log["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    // The first page began with the read that asked for it.
    assert_eq!(seen[0]["action"], "PATIENT_READ");
    assert_eq!(seen[0]["actor"]["email"], ann.email.as_str());
    let ids: Vec<i64> = seen
        .iter()
        .map(|n| n["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    // Exactly the events that concern the patient, up to that first read.
    let client = cluster::connect(&app.db_url).await.unwrap();
    let expected: Vec<i64> = client
        .query(
            "SELECT id FROM audit_events WHERE entity_ids @> ARRAY[$1::text::uuid] AND id <= $2 ORDER BY id DESC",
            &[&patient, &ids[0]],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, expected);
    assert_eq!(total, Some(expected.len() as i64));
    let actions: Vec<&str> = seen.iter().map(|n| n["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "PATIENT_READ",
            "PATIENT_READ",
            "PATIENTS_READ",
            // `assign` selects the assignment's patient: a read of it.
            "PATIENTS_READ",
            "MAPPING_CREATED",
            "PATIENT_UPDATED",
            "PATIENT_CREATED"
        ]
    );
    let admins_read = &seen[1];
    assert_eq!(admins_read["actor"]["id"], root.id.as_str());
    assert_eq!(admins_read["actor"]["email"], Value::Null);
    assert_eq!(admins_read["actor"]["role"], Value::Null);
    // The list read names both patients; the other patient's log has it too.
    assert_eq!(seen[2]["entityIds"].as_array().unwrap().len(), 2);
    assert_eq!(seen[3]["entityIds"], json!([patient]));
    let resp = app.gql_as(&ann.token, LOG, json!({ "id": other, "first": 10 })).await;
    let other_log: Vec<&str> = resp.assert_ok()["patient"]["accessLog"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["action"].as_str().unwrap())
        .collect();
    assert_eq!(other_log, ["PATIENT_READ", "PATIENTS_READ", "PATIENT_CREATED"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_those_who_may_see_the_patient_reach_its_log() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    let root = app.admin("root").await;
    let patient = app.create_patient(&ann.token, "Pat").await;
    let doctor = app.create_doctor(&ann.token, "Dr", "GP").await;
    app.assign(&ann.token, &patient, &doctor).await.assert_ok();
    let resp = app.gql_as(&bob.token, LOG, json!({ "id": patient })).await;
    assert!(resp.assert_ok()["patient"].is_null());
    // Through the shared doctor, Bob reaches none of Ann's patients.
    let through_doctor = "query($d: ID!) { doctor(id: $d) { patients { accessLog { nodes { id } } } } }";
    let resp = app.gql_as(&bob.token, through_doctor, json!({ "d": doctor })).await;
    assert_eq!(resp.assert_ok()["doctor"]["patients"], json!([]));
    // An admin reaches it, with every actor's email.
    let resp = app.gql_as(&root.token, LOG, json!({ "id": patient })).await;
    let nodes = resp.assert_ok()["patient"]["accessLog"]["nodes"].clone();
    assert_eq!(nodes[0]["actor"]["id"], root.id.as_str());
    let created = nodes.as_array().unwrap().last().unwrap();
    assert_eq!(created["action"], "PATIENT_CREATED");
    assert_eq!(created["actor"]["email"], ann.email.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_paging_arguments_are_refused() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let patient = app.create_patient(&ann.token, "Pat").await;
    for (vars, field) in [
        (json!({ "id": patient, "first": 0 }), "first"),
        (json!({ "id": patient, "first": 101 }), "first"),
        (json!({ "id": patient, "first": -5 }), "first"),
        (json!({ "id": patient, "after": "not a cursor" }), "after"),
        (json!({ "id": patient, "after": "x".repeat(10_000) }), "after"),
    ] {
        let resp = app.gql_as(&ann.token, LOG, vars.clone()).await;
        resp.assert_code("BAD_USER_INPUT");
        assert_eq!(resp.field(), Some(field), "{vars}");
    }
}
