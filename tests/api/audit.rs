//! The audit trail: one event per audited action, none for a refused one,
//! read by admins only, and append-only even for SQL.

use serde_json::{Value, json};

use crate::common::{LOGIN, PASSWORD, TestApp, cluster};

const EVENTS: &str = "query($actor: ID, $entity: ID, $action: AuditAction, $first: Int) { auditEvents(actorId: $actor, entityId: $entity, action: $action, first: $first) { totalCount nodes { id at action entityType entityId entityIds requestId actor { id email } } } }";

/// Sends `query` as `token` with an `X-Request-Id`, and returns the body.
async fn with_request_id(app: &TestApp, token: Option<&str>, request_id: &str, query: &str, vars: Value) -> Value {
    let mut req = app
        .client
        .post(app.url("/graphql"))
        .header("x-request-id", request_id)
        .json(&json!({ "query": query, "variables": vars }));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_audited_action_leaves_exactly_one_event() {
    let app = TestApp::spawn().await;
    let root = app.admin("root").await;
    let register = json!({ "input": { "name": "Ann", "email": "ann@example.org", "password": PASSWORD } });
    let body = with_request_id(&app, None, "req-register", crate::common::REGISTER, register).await;
    let ann_id = body["data"]["register"]["user"]["id"].as_str().unwrap().to_owned();
    let body = with_request_id(
        &app,
        None,
        "req-login",
        LOGIN,
        json!({ "input": { "email": "ann@example.org", "password": PASSWORD } }),
    )
    .await;
    let token = body["data"]["login"]["accessToken"].as_str().unwrap().to_owned();
    with_request_id(
        &app,
        None,
        "req-login-bad",
        LOGIN,
        json!({ "input": { "email": "ann@example.org", "password": "wrong-password" } }),
    )
    .await;
    with_request_id(
        &app,
        None,
        "req-login-unknown",
        LOGIN,
        json!({ "input": { "email": "nobody@example.org", "password": "wrong-password" } }),
    )
    .await;
    let t = Some(token.as_str());
    let body = with_request_id(
        &app,
        t,
        "req-p-create",
        "mutation { createPatient(input: {name: \"Pat\"}) { id } }",
        json!({}),
    )
    .await;
    let patient = body["data"]["createPatient"]["id"].as_str().unwrap().to_owned();
    with_request_id(
        &app,
        t,
        "req-p-read",
        "query($id: ID!) { patient(id: $id) { id } }",
        json!({ "id": patient }),
    )
    .await;
    // A list read is one PATIENTS_READ naming what it served.
    with_request_id(&app, t, "req-p-list", "{ patients { nodes { id } } }", json!({})).await;
    with_request_id(
        &app,
        t,
        "req-p-update",
        "mutation($id: ID!) { updatePatient(id: $id, input: {name: \"Pat 2\"}) { id } }",
        json!({ "id": patient }),
    )
    .await;
    let body = with_request_id(
        &app,
        t,
        "req-d-create",
        "mutation { createDoctor(input: {name: \"Dr\", specialization: \"GP\"}) { id } }",
        json!({}),
    )
    .await;
    let doctor = body["data"]["createDoctor"]["id"].as_str().unwrap().to_owned();
    with_request_id(
        &app,
        t,
        "req-d-update",
        "mutation($id: ID!) { updateDoctor(id: $id, input: {name: \"Dr 2\"}) { id } }",
        json!({ "id": doctor }),
    )
    .await;
    let body = with_request_id(
        &app,
        t,
        "req-m-create",
        "mutation($p: ID!, $d: ID!) { assignDoctor(input: {patientId: $p, doctorId: $d}) { id } }",
        json!({ "p": patient, "d": doctor }),
    )
    .await;
    let mapping = body["data"]["assignDoctor"]["id"].as_str().unwrap().to_owned();
    with_request_id(
        &app,
        t,
        "req-m-delete",
        "mutation($id: ID!) { removeMapping(id: $id) }",
        json!({ "id": mapping }),
    )
    .await;
    with_request_id(
        &app,
        t,
        "req-p-delete",
        "mutation($id: ID!) { deletePatient(id: $id) }",
        json!({ "id": patient }),
    )
    .await;
    with_request_id(
        &app,
        t,
        "req-d-delete",
        "mutation($id: ID!) { deleteDoctor(id: $id) }",
        json!({ "id": doctor }),
    )
    .await;

    let expected = [
        (
            "req-register",
            "REGISTER",
            "USER",
            Some(ann_id.as_str()),
            Some(ann_id.as_str()),
            vec![ann_id.as_str()],
        ),
        (
            "req-login",
            "LOGIN_SUCCEEDED",
            "USER",
            Some(ann_id.as_str()),
            Some(ann_id.as_str()),
            vec![ann_id.as_str()],
        ),
        (
            "req-login-bad",
            "LOGIN_FAILED",
            "USER",
            Some(ann_id.as_str()),
            Some(ann_id.as_str()),
            vec![ann_id.as_str()],
        ),
        ("req-login-unknown", "LOGIN_FAILED", "USER", None, None, vec![]),
        (
            "req-p-create",
            "PATIENT_CREATED",
            "PATIENT",
            Some(ann_id.as_str()),
            Some(patient.as_str()),
            vec![patient.as_str()],
        ),
        (
            "req-p-read",
            "PATIENT_READ",
            "PATIENT",
            Some(ann_id.as_str()),
            Some(patient.as_str()),
            vec![patient.as_str()],
        ),
        (
            "req-p-list",
            "PATIENTS_READ",
            "PATIENT",
            Some(ann_id.as_str()),
            None,
            vec![patient.as_str()],
        ),
        (
            "req-p-update",
            "PATIENT_UPDATED",
            "PATIENT",
            Some(ann_id.as_str()),
            Some(patient.as_str()),
            vec![patient.as_str()],
        ),
        (
            "req-d-create",
            "DOCTOR_CREATED",
            "DOCTOR",
            Some(ann_id.as_str()),
            Some(doctor.as_str()),
            vec![doctor.as_str()],
        ),
        (
            "req-d-update",
            "DOCTOR_UPDATED",
            "DOCTOR",
            Some(ann_id.as_str()),
            Some(doctor.as_str()),
            vec![doctor.as_str()],
        ),
        (
            "req-m-create",
            "MAPPING_CREATED",
            "MAPPING",
            Some(ann_id.as_str()),
            Some(mapping.as_str()),
            vec![mapping.as_str(), patient.as_str(), doctor.as_str()],
        ),
        (
            "req-m-delete",
            "MAPPING_DELETED",
            "MAPPING",
            Some(ann_id.as_str()),
            Some(mapping.as_str()),
            vec![mapping.as_str(), patient.as_str(), doctor.as_str()],
        ),
        (
            "req-p-delete",
            "PATIENT_DELETED",
            "PATIENT",
            Some(ann_id.as_str()),
            Some(patient.as_str()),
            vec![patient.as_str()],
        ),
        (
            "req-d-delete",
            "DOCTOR_DELETED",
            "DOCTOR",
            Some(ann_id.as_str()),
            Some(doctor.as_str()),
            vec![doctor.as_str()],
        ),
    ];
    let resp = app.gql_as(&root.token, EVENTS, json!({ "first": 100 })).await;
    let nodes = resp.assert_ok()["auditEvents"]["nodes"].as_array().unwrap().clone();
    // The admin's own login is there too; everything else is one event per request.
    let ours: Vec<&Value> = nodes
        .iter()
        .filter(|n| n["requestId"].as_str().is_some_and(|r| r.starts_with("req-")))
        .collect();
    assert_eq!(ours.len(), expected.len(), "{nodes:#?}");
    // Newest first.
    let ids: Vec<i64> = nodes
        .iter()
        .map(|n| n["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]));
    for (request, action, entity_type, actor, entity, entity_ids) in expected {
        let matching: Vec<&&Value> = ours.iter().filter(|n| n["requestId"] == request).collect();
        assert_eq!(matching.len(), 1, "{request}");
        let e = matching[0];
        assert_eq!(e["action"], action, "{request}");
        assert_eq!(e["entityType"], entity_type, "{request}");
        assert_eq!(e["actor"]["id"].as_str(), actor, "{request}");
        assert_eq!(e["entityId"].as_str(), entity, "{request}");
        assert_eq!(e["entityIds"], json!(entity_ids), "{request}");
    }
    // Filters.
    let by_action = app
        .gql_as(&root.token, EVENTS, json!({ "action": "LOGIN_FAILED" }))
        .await;
    assert_eq!(by_action.assert_ok()["auditEvents"]["totalCount"], 2);
    // Every event that concerns the record, its assignment's included.
    for (entity, count) in [(&patient, 7), (&doctor, 5), (&mapping, 2)] {
        let by_entity = app.gql_as(&root.token, EVENTS, json!({ "entity": entity })).await;
        assert_eq!(by_entity.assert_ok()["auditEvents"]["totalCount"], count, "{entity}");
    }
    let by_actor = app.gql_as(&root.token, EVENTS, json!({ "actor": root.id })).await;
    assert_eq!(by_actor.assert_ok()["auditEvents"]["totalCount"], 1);
    let bad = app.gql_as(&root.token, EVENTS, json!({ "actor": "nope" })).await;
    assert_eq!(bad.field(), Some("actorId"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_changes_leave_no_event() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.signup("alice").await, app.signup("bob").await);
    let patient = app.create_patient(&alice.token, "Pat").await;
    let doctor = app.create_doctor(&alice.token, "Dr", "GP").await;
    let before = app.count("SELECT count(*) FROM audit_events").await;
    // Each refused change is an error with its code; a refused read is a
    // null patient and no error. None of them is audited.
    let attempts = [
        (
            "mutation($id: ID!) { updatePatient(id: $id, input: {name: \"X\"}) { id } }",
            json!({ "id": patient }),
            &bob.token,
            Some("NOT_FOUND"),
        ),
        (
            "mutation($id: ID!) { deletePatient(id: $id) }",
            json!({ "id": patient }),
            &bob.token,
            Some("NOT_FOUND"),
        ),
        (
            "query($id: ID!) { patient(id: $id) { id } }",
            json!({ "id": patient }),
            &bob.token,
            None,
        ),
        (
            "mutation($id: ID!) { updateDoctor(id: $id, input: {name: \"X\"}) { id } }",
            json!({ "id": doctor }),
            &bob.token,
            Some("FORBIDDEN"),
        ),
        (
            "mutation($id: ID!) { deleteDoctor(id: $id) }",
            json!({ "id": doctor }),
            &bob.token,
            Some("FORBIDDEN"),
        ),
        (
            "mutation($id: ID!) { updatePatient(id: $id, input: {name: \"\"}) { id } }",
            json!({ "id": patient }),
            &alice.token,
            Some("BAD_USER_INPUT"),
        ),
        (
            "mutation { createPatient(input: {name: \"\"}) { id } }",
            json!({}),
            &alice.token,
            Some("BAD_USER_INPUT"),
        ),
        (
            "mutation { createDoctor(input: {name: \"Dr\", specialization: \"\"}) { id } }",
            json!({}),
            &alice.token,
            Some("BAD_USER_INPUT"),
        ),
    ];
    for (query, vars, token, expected) in attempts {
        let resp = app.gql_as(token, query, vars).await;
        match expected {
            Some(code) => resp.assert_code(code),
            None => assert!(resp.assert_ok()["patient"].is_null(), "{query}: {}", resp.body),
        }
    }
    app.assign(&alice.token, &patient, &doctor).await.assert_ok();
    app.assign(&alice.token, &patient, &doctor)
        .await
        .assert_code("CONFLICT");
    let after = app.count("SELECT count(*) FROM audit_events").await;
    // Only the one successful assignment, and the read of its patient
    // (`assign` selects `patient { id }`): the conflict served nothing.
    assert_eq!(after, before + 2);
    let reads = app
        .count("SELECT count(*) FROM audit_events WHERE action = 'PATIENTS_READ'")
        .await;
    assert_eq!(reads, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_read_the_trail() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let resp = app.gql_as(&ann.token, EVENTS, json!({})).await;
    resp.assert_code("FORBIDDEN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trail_refuses_updates_and_deletes_even_in_sql() {
    let app = TestApp::spawn().await;
    app.signup("ann").await;
    let client = cluster::connect(&app.db_url).await.unwrap();
    for sql in [
        "UPDATE audit_events SET action = 'LOGIN_FAILED'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ] {
        let err = client.batch_execute(sql).await.expect_err(sql);
        assert!(
            err.to_string().contains("append-only") || format!("{err:?}").contains("append-only"),
            "{sql}: {err:?}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM audit_events").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cascaded_removal_names_the_assignments_patient_and_doctor() {
    let app = TestApp::spawn().await;
    let root = app.admin("root").await;
    let ann = app.signup("ann").await;
    for delete in ["deletePatient", "deleteDoctor"] {
        let patient = app.create_patient(&ann.token, "Pat").await;
        let doctor = app.create_doctor(&ann.token, "Dr", "GP").await;
        let mapping = app.assign(&ann.token, &patient, &doctor).await;
        let mapping = mapping.assert_ok()["assignDoctor"]["id"].as_str().unwrap().to_owned();
        let target = if delete == "deletePatient" { &patient } else { &doctor };
        app.gql_as(
            &ann.token,
            &format!("mutation($id: ID!) {{ {delete}(id: $id) }}"),
            json!({ "id": target }),
        )
        .await
        .assert_ok();
        let resp = app
            .gql_as(
                &root.token,
                EVENTS,
                json!({ "entity": mapping, "action": "MAPPING_DELETED" }),
            )
            .await;
        let nodes = &resp.assert_ok()["auditEvents"]["nodes"];
        assert_eq!(nodes.as_array().unwrap().len(), 1, "{delete}: {nodes}");
        assert_eq!(nodes[0]["entityIds"], json!([mapping, patient, doctor]), "{delete}");
    }
}
