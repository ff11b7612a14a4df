//! Assignments: assign and remove, conflicts, races, and cascades.

use serde_json::json;

use crate::common::TestApp;

const REMOVE: &str = "mutation($id: ID!) { removeMapping(id: $id) }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_list_and_remove() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let patient = app.create_patient(&ann.token, "Pat").await;
    let doctor = app.create_doctor(&ann.token, "Dr D", "General").await;
    let resp = app.assign(&ann.token, &patient, &doctor).await;
    let m = resp.assert_ok()["assignDoctor"].clone();
    assert_eq!(m["patient"]["id"], patient.as_str());
    assert_eq!(m["doctor"]["id"], doctor.as_str());
    assert_eq!(m["assignedBy"]["id"], ann.id.as_str());
    let id = m["id"].as_str().unwrap().to_owned();

    let dup = app.assign(&ann.token, &patient, &doctor).await;
    dup.assert_code("CONFLICT");

    let nested = app
        .gql_as(
            &ann.token,
            "query($id: ID!) { patient(id: $id) { doctors { id } mappings { id doctor { id } } } }",
            json!({ "id": patient }),
        )
        .await;
    let p = &nested.assert_ok()["patient"];
    assert_eq!(p["doctors"][0]["id"], doctor.as_str());
    assert_eq!(p["mappings"][0]["id"], id.as_str());
    let by_doctor = app
        .gql_as(
            &ann.token,
            "query($d: ID) { mappings(doctorId: $d) { totalCount } }",
            json!({ "d": doctor }),
        )
        .await;
    assert_eq!(by_doctor.assert_ok()["mappings"]["totalCount"], 1);

    assert_eq!(
        app.gql_as(&ann.token, REMOVE, json!({ "id": id })).await.assert_ok()["removeMapping"],
        id.as_str()
    );
    app.gql_as(&ann.token, REMOVE, json!({ "id": id }))
        .await
        .assert_code("NOT_FOUND");
    // Once removed, the pair can be assigned again.
    app.assign(&ann.token, &patient, &doctor).await.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_malformed_ends_are_refused() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let patient = app.create_patient(&ann.token, "Pat").await;
    let doctor = app.create_doctor(&ann.token, "Dr D", "General").await;
    let nobody = uuid::Uuid::new_v4().to_string();
    app.assign(&ann.token, &patient, &nobody).await.assert_code("NOT_FOUND");
    app.assign(&ann.token, &nobody, &doctor).await.assert_code("NOT_FOUND");
    let bad = app.assign(&ann.token, &patient, "not-an-id").await;
    bad.assert_code("BAD_USER_INPUT");
    assert_eq!(bad.field(), Some("doctorId"));
    let bad = app.assign(&ann.token, "1", &doctor).await;
    assert_eq!(bad.field(), Some("patientId"));
    assert_eq!(app.count("SELECT count(*) FROM mappings").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'MAPPING_CREATED'")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_identical_assignments_make_one() {
    let app = TestApp::spawn_with(|s| {
        s.insert("DATABASE_POOL_SIZE".into(), "8".into());
    })
    .await;
    let ann = app.signup("ann").await;
    let patient = app.create_patient(&ann.token, "Pat").await;
    let doctor = app.create_doctor(&ann.token, "Dr D", "General").await;
    let attempts = (0..8).map(|_| app.assign(&ann.token, &patient, &doctor));
    let results = futures_util::future::join_all(attempts).await;
    let ok = results.iter().filter(|r| r.body.get("errors").is_none()).count();
    let conflicts = results.iter().filter(|r| r.code() == Some("CONFLICT")).count();
    assert_eq!((ok, conflicts), (1, 7), "{results:?}");
    assert_eq!(app.count("SELECT count(*) FROM mappings").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'MAPPING_CREATED'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_patient_or_doctor_deletes_its_assignments() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let (p1, p2) = (
        app.create_patient(&ann.token, "P1").await,
        app.create_patient(&ann.token, "P2").await,
    );
    let (d1, d2) = (
        app.create_doctor(&ann.token, "D1", "General").await,
        app.create_doctor(&ann.token, "D2", "General").await,
    );
    for (p, d) in [(&p1, &d1), (&p1, &d2), (&p2, &d1)] {
        app.assign(&ann.token, p, d).await.assert_ok();
    }
    app.gql_as(
        &ann.token,
        "mutation($id: ID!) { deletePatient(id: $id) }",
        json!({ "id": p1 }),
    )
    .await
    .assert_ok();
    assert_eq!(app.count("SELECT count(*) FROM mappings").await, 1);
    app.gql_as(
        &ann.token,
        "mutation($id: ID!) { deleteDoctor(id: $id) }",
        json!({ "id": d1 }),
    )
    .await
    .assert_ok();
    assert_eq!(app.count("SELECT count(*) FROM mappings").await, 0);
    // Each removed assignment is on the trail.
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'MAPPING_DELETED'")
            .await,
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_assign_and_remove_on_anyones_patient_in_their_own_name() {
    let app = TestApp::spawn().await;
    let alice = app.signup("alice").await;
    let root = app.admin("root").await;
    let patient = app.create_patient(&alice.token, "Pat").await;
    let doctor = app.create_doctor(&alice.token, "Dr D", "General").await;
    let resp = app.assign(&root.token, &patient, &doctor).await;
    let m = resp.assert_ok()["assignDoctor"].clone();
    assert_eq!(m["assignedBy"]["id"], root.id.as_str());
    let all = app.gql_as(&root.token, "{ mappings { totalCount } }", json!({})).await;
    assert_eq!(all.assert_ok()["mappings"]["totalCount"], 1);
    let id = m["id"].as_str().unwrap();
    app.gql_as(&root.token, REMOVE, json!({ "id": id })).await.assert_ok();
    let by_root = app
        .count(&format!(
            "SELECT count(*) FROM audit_events WHERE actor_id = '{}' AND action IN ('MAPPING_CREATED', 'MAPPING_DELETED')",
            root.id
        ))
        .await;
    assert_eq!(by_root, 2);
}
