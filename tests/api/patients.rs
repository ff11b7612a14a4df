//! Patients: CRUD, update semantics, bad input, and privacy by every path.

use serde_json::{Value, json};

use crate::common::{PATIENT_FIELDS, TestApp};

fn create_query() -> String {
    format!("mutation($i: CreatePatientInput!) {{ createPatient(input: $i) {{ {PATIENT_FIELDS} }} }}")
}
fn update_query() -> String {
    format!(
        "mutation($id: ID!, $i: UpdatePatientInput!) {{ updatePatient(id: $id, input: $i) {{ {PATIENT_FIELDS} }} }}"
    )
}
fn get_query() -> String {
    format!("query($id: ID!) {{ patient(id: $id) {{ {PATIENT_FIELDS} }} }}")
}
const LIST: &str = "query($first: Int, $after: String, $search: String, $order: PatientOrder) { patients(first: $first, after: $after, search: $search, orderBy: $order) { totalCount edges { cursor node { id name } } nodes { id } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }";
const DELETE: &str = "mutation($id: ID!) { deletePatient(id: $id) }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_read_update_delete() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let full = json!({
        "name": "  Pat Example ", "dateOfBirth": "1980-02-29", "gender": "FEMALE",
        "email": "pat@example.org", "phone": "+1 (555) 010-2000", "address": "1 Main St",
        "medicalHistory": "Allergic to penicillin.",
    });
    let created = app.gql_as(&ann.token, &create_query(), json!({ "i": full })).await;
    let p = created.assert_ok()["createPatient"].clone();
    assert_eq!(p["name"], "Pat Example");
    assert_eq!(p["dateOfBirth"], "1980-02-29");
    assert_eq!(p["gender"], "FEMALE");
    assert_eq!(p["createdBy"]["id"], ann.id.as_str());
    let id = p["id"].as_str().unwrap().to_owned();

    let read = app.gql_as(&ann.token, &get_query(), json!({ "id": id })).await;
    assert_eq!(read.assert_ok()["patient"], p);

    // Defaults: gender UNKNOWN, optional fields null.
    let minimal = app
        .gql_as(&ann.token, &create_query(), json!({ "i": { "name": "Min" } }))
        .await;
    let m = &minimal.assert_ok()["createPatient"];
    assert_eq!(m["gender"], "UNKNOWN");
    assert!(m["email"].is_null() && m["dateOfBirth"].is_null());

    // Absent fields stay; null clears; values set.
    let upd = app
        .gql_as(
            &ann.token,
            &update_query(),
            json!({ "id": id, "i": { "phone": null, "address": "2 Side St" } }),
        )
        .await;
    let u = &upd.assert_ok()["updatePatient"];
    assert!(u["phone"].is_null());
    assert_eq!(u["address"], "2 Side St");
    assert_eq!(u["name"], "Pat Example");
    assert_eq!(u["email"], "pat@example.org");
    assert_eq!(u["medicalHistory"], "Allergic to penicillin.");
    assert!(u["updatedAt"].as_str().unwrap() >= p["updatedAt"].as_str().unwrap());

    let gone = app.gql_as(&ann.token, DELETE, json!({ "id": id })).await;
    assert_eq!(gone.assert_ok()["deletePatient"], id.as_str());
    let read = app.gql_as(&ann.token, &get_query(), json!({ "id": id })).await;
    assert!(read.assert_ok()["patient"].is_null());
    app.gql_as(&ann.token, DELETE, json!({ "id": id }))
        .await
        .assert_code("NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_fields_cannot_be_cleared() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let id = app.create_patient(&ann.token, "Pat").await;
    for field in ["name", "gender"] {
        let resp = app
            .gql_as(&ann.token, &update_query(), json!({ "id": id, "i": { field: null } }))
            .await;
        resp.assert_code("BAD_USER_INPUT");
        assert_eq!(resp.field(), Some(field));
    }
    let read = app.gql_as(&ann.token, &get_query(), json!({ "id": id })).await;
    assert_eq!(read.assert_ok()["patient"]["name"], "Pat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_patient_input_is_refused_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Duration::days(1)).to_string();
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "name": "" }), "name"),
        (json!({ "name": "   " }), "name"),
        (json!({ "name": "x".repeat(201) }), "name"),
        (json!({ "name": "Pat\u{0}" }), "name"),
        (json!({ "name": "Pat", "dateOfBirth": tomorrow }), "dateOfBirth"),
        (json!({ "name": "Pat", "dateOfBirth": "2020-13-01" }), "dateOfBirth"),
        (json!({ "name": "Pat", "dateOfBirth": "2020-1-1" }), "dateOfBirth"),
        (json!({ "name": "Pat", "dateOfBirth": "yesterday" }), "dateOfBirth"),
        (json!({ "name": "Pat", "dateOfBirth": 20200101 }), "dateOfBirth"),
        (json!({ "name": "Pat", "gender": "ALIEN" }), "gender"),
        (json!({ "name": "Pat", "email": "not-an-email" }), "email"),
        (json!({ "name": "Pat", "phone": "call me" }), "phone"),
        (json!({ "name": "Pat", "phone": "1".repeat(33) }), "phone"),
        (json!({ "name": "Pat", "address": "a".repeat(1001) }), "address"),
        (
            json!({ "name": "Pat", "medicalHistory": "a".repeat(20_001) }),
            "medicalHistory",
        ),
        (json!({ "name": "Pat", "medicalHistory": "a\u{0}b" }), "medicalHistory"),
        (json!({ "name": "Pat", "unknown": 1 }), "unknown"),
        (json!({ "dateOfBirth": "2000-01-01" }), "name"),
    ];
    let mut wrong = Vec::new();
    for (input, field) in cases {
        let resp = app.gql_as(&ann.token, &create_query(), json!({ "i": input })).await;
        resp.assert_code("BAD_USER_INPUT");
        let named = resp.field().unwrap_or_default().to_owned();
        if !named.contains(field) {
            wrong.push(format!(
                "expected field {field}, got {named:?}: {}",
                resp.body["errors"][0]["message"]
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // The largest allowed history is accepted.
    let big = app
        .gql_as(
            &ann.token,
            &create_query(),
            json!({ "i": { "name": "Big", "medicalHistory": "é".repeat(20_000) } }),
        )
        .await;
    big.assert_ok();
    assert_eq!(app.count("SELECT count(*) FROM patients").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'PATIENT_CREATED'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_ids_are_bad_input_and_missing_ones_look_missing() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    for bad in ["garbage", "1", "", "' OR 1=1 --"] {
        let resp = app.gql_as(&ann.token, &get_query(), json!({ "id": bad })).await;
        resp.assert_code("BAD_USER_INPUT");
        assert_eq!(resp.field(), Some("id"));
        app.gql_as(&ann.token, DELETE, json!({ "id": bad }))
            .await
            .assert_code("BAD_USER_INPUT");
    }
    let missing = uuid::Uuid::new_v4().to_string();
    let resp = app.gql_as(&ann.token, &get_query(), json!({ "id": missing })).await;
    assert!(resp.assert_ok()["patient"].is_null());
    app.gql_as(
        &ann.token,
        &update_query(),
        json!({ "id": missing, "i": { "name": "X" } }),
    )
    .await
    .assert_code("NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_needs_a_token() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let id = app.create_patient(&ann.token, "Pat").await;
    let doctor = app.create_doctor(&ann.token, "Dr Who", "Time").await;
    let mapping = app.assign(&ann.token, &id, &doctor).await.assert_ok()["assignDoctor"]["id"].clone();
    let calls: Vec<(String, Value)> = vec![
        (get_query(), json!({ "id": id })),
        (LIST.to_owned(), json!({})),
        (
            "query($id: ID!) { doctor(id: $id) { id } }".into(),
            json!({ "id": doctor }),
        ),
        ("{ doctors { totalCount } }".into(), json!({})),
        (
            "query($id: ID!) { mapping(id: $id) { id } }".into(),
            json!({ "id": mapping }),
        ),
        ("{ mappings { totalCount } }".into(), json!({})),
        ("{ auditEvents { totalCount } }".into(), json!({})),
        (create_query(), json!({ "i": { "name": "X" } })),
        (update_query(), json!({ "id": id, "i": { "name": "X" } })),
        (DELETE.into(), json!({ "id": id })),
        (
            "mutation { createDoctor(input: {name: \"A\", specialization: \"B\"}) { id } }".into(),
            json!({}),
        ),
        (
            "mutation($id: ID!) { updateDoctor(id: $id, input: {name: \"A\"}) { id } }".into(),
            json!({ "id": doctor }),
        ),
        (
            "mutation($id: ID!) { deleteDoctor(id: $id) }".into(),
            json!({ "id": doctor }),
        ),
        (
            "mutation($p: ID!, $d: ID!) { assignDoctor(input: {patientId: $p, doctorId: $d}) { id } }".into(),
            json!({ "p": id, "d": doctor }),
        ),
        (
            "mutation($id: ID!) { removeMapping(id: $id) }".into(),
            json!({ "id": mapping }),
        ),
    ];
    for (query, vars) in calls {
        let resp = app.gql(&query, vars).await;
        assert_eq!(resp.code(), Some("UNAUTHENTICATED"), "{query}: {}", resp.body);
    }
    // Nothing changed.
    let read = app.gql_as(&ann.token, &get_query(), json!({ "id": id })).await;
    assert_eq!(read.assert_ok()["patient"]["name"], "Pat");
    assert_eq!(app.count("SELECT count(*) FROM doctors").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM mappings").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_elses_patient_looks_missing_by_every_path() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.signup("alice").await, app.signup("bob").await);
    let secret = app.create_patient(&alice.token, "Alice Patient").await;
    let bobs = app.create_patient(&bob.token, "Bob Patient").await;
    // A doctor everyone can see, assigned to both users' patients.
    let doctor = app.create_doctor(&bob.token, "Dr Shared", "General").await;
    let alice_mapping = app.assign(&alice.token, &secret, &doctor).await.assert_ok()["assignDoctor"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.assign(&bob.token, &bobs, &doctor).await.assert_ok();

    // Direct lookup.
    let resp = app.gql_as(&bob.token, &get_query(), json!({ "id": secret })).await;
    assert!(resp.assert_ok()["patient"].is_null());
    // Lists and search.
    let list = app.gql_as(&bob.token, LIST, json!({})).await;
    let names: Vec<&str> = list.assert_ok()["patients"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Bob Patient"]);
    assert_eq!(list.data()["patients"]["totalCount"], 1);
    let search = app.gql_as(&bob.token, LIST, json!({ "search": "alice" })).await;
    assert_eq!(search.assert_ok()["patients"]["totalCount"], 0);
    // Nested: the shared doctor's patients and mappings.
    let nested = app
        .gql_as(
            &bob.token,
            "query($id: ID!) { doctor(id: $id) { patients { id name } mappings { id patient { id } } } }",
            json!({ "id": doctor }),
        )
        .await;
    let d = &nested.assert_ok()["doctor"];
    assert_eq!(d["patients"].as_array().unwrap().len(), 1);
    assert_eq!(d["patients"][0]["id"], bobs.as_str());
    assert_eq!(d["mappings"].as_array().unwrap().len(), 1);
    assert_eq!(d["mappings"][0]["patient"]["id"], bobs.as_str());
    let in_list = app
        .gql_as(
            &bob.token,
            "{ doctors { nodes { patients { id } mappings { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        in_list.assert_ok()["doctors"]["nodes"][0]["patients"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Mappings by id, list and filter.
    let m = app
        .gql_as(
            &bob.token,
            "query($id: ID!) { mapping(id: $id) { id } }",
            json!({ "id": alice_mapping }),
        )
        .await;
    assert!(m.assert_ok()["mapping"].is_null());
    let ms = app
        .gql_as(
            &bob.token,
            "query($p: ID) { mappings(patientId: $p) { totalCount nodes { id } } }",
            json!({ "p": secret }),
        )
        .await;
    assert_eq!(ms.assert_ok()["mappings"]["totalCount"], 0);
    let all = app
        .gql_as(
            &bob.token,
            "{ mappings { totalCount nodes { patient { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(all.assert_ok()["mappings"]["totalCount"], 1);
    assert_eq!(all.data()["mappings"]["nodes"][0]["patient"]["id"], bobs.as_str());
    // Every mutation says NOT_FOUND, exactly as for a missing record.
    app.gql_as(
        &bob.token,
        &update_query(),
        json!({ "id": secret, "i": { "name": "Hacked" } }),
    )
    .await
    .assert_code("NOT_FOUND");
    app.gql_as(&bob.token, DELETE, json!({ "id": secret }))
        .await
        .assert_code("NOT_FOUND");
    app.assign(&bob.token, &secret, &doctor).await.assert_code("NOT_FOUND");
    app.gql_as(
        &bob.token,
        "mutation($id: ID!) { removeMapping(id: $id) }",
        json!({ "id": alice_mapping }),
    )
    .await
    .assert_code("NOT_FOUND");
    // Alice's record is untouched, and nothing of bob's attempts was audited.
    let read = app.gql_as(&alice.token, &get_query(), json!({ "id": secret })).await;
    assert_eq!(read.assert_ok()["patient"]["name"], "Alice Patient");
    let bob_events = app
        .count(&format!(
            "SELECT count(*) FROM audit_events WHERE actor_id = '{}' AND entity_id = '{secret}'",
            bob.id
        ))
        .await;
    assert_eq!(bob_events, 0);
    assert_eq!(app.count("SELECT count(*) FROM mappings").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_see_and_change_everything_in_their_own_name() {
    let app = TestApp::spawn().await;
    let alice = app.signup("alice").await;
    let root = app.admin("root").await;
    let id = app.create_patient(&alice.token, "Alice Patient").await;
    let list = app.gql_as(&root.token, LIST, json!({})).await;
    assert_eq!(list.assert_ok()["patients"]["totalCount"], 1);
    let upd = app
        .gql_as(
            &root.token,
            &update_query(),
            json!({ "id": id, "i": { "name": "Renamed" } }),
        )
        .await;
    assert_eq!(upd.assert_ok()["updatePatient"]["name"], "Renamed");
    assert_eq!(upd.data()["updatePatient"]["createdBy"]["id"], alice.id.as_str());
    let actor = app
        .count(&format!(
            "SELECT count(*) FROM audit_events WHERE action = 'PATIENT_UPDATED' AND actor_id = '{}'",
            root.id
        ))
        .await;
    assert_eq!(actor, 1);
    app.gql_as(&root.token, DELETE, json!({ "id": id })).await.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_is_case_insensitive_and_literal() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    for name in ["Maria Lopez", "MARIO Rossi", "Ann 100% Sure", "Ann_Underscore", "Annex"] {
        app.create_patient(&ann.token, name).await;
    }
    let names = |resp: crate::common::Gql| -> Vec<String> {
        let mut v: Vec<String> = resp.assert_ok()["patients"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["name"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(app.gql_as(&ann.token, LIST, json!({ "search": "mari" })).await),
        ["MARIO Rossi", "Maria Lopez"]
    );
    assert_eq!(
        names(app.gql_as(&ann.token, LIST, json!({ "search": "0%" })).await),
        ["Ann 100% Sure"]
    );
    assert_eq!(
        names(app.gql_as(&ann.token, LIST, json!({ "search": "n_u" })).await),
        ["Ann_Underscore"]
    );
    assert_eq!(
        names(app.gql_as(&ann.token, LIST, json!({ "search": "%" })).await),
        ["Ann 100% Sure"]
    );
    assert_eq!(
        names(app.gql_as(&ann.token, LIST, json!({ "search": "_" })).await),
        ["Ann_Underscore"]
    );
    let too_long = app.gql_as(&ann.token, LIST, json!({ "search": "a".repeat(201) })).await;
    too_long.assert_code("BAD_USER_INPUT");
    assert_eq!(too_long.field(), Some("search"));
}

/// (Malformed `first` and `after` values of every list: `arguments.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_of_one_order_is_refused_by_another() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    app.create_patient(&ann.token, "A").await;
    app.create_patient(&ann.token, "B").await;
    // A cursor of one order is refused by another.
    let by_name = app
        .gql_as(
            &ann.token,
            LIST,
            json!({ "first": 1, "order": { "field": "NAME", "direction": "ASC" } }),
        )
        .await;
    let cursor = by_name.assert_ok()["patients"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = app
        .gql_as(&ann.token, LIST, json!({ "first": 1, "after": cursor }))
        .await;
    resp.assert_code("BAD_USER_INPUT");
    assert_eq!(resp.field(), Some("after"));
    let resp = app
        .gql_as(
            &ann.token,
            LIST,
            json!({ "order": { "field": "AGE", "direction": "ASC" } }),
        )
        .await;
    resp.assert_code("BAD_USER_INPUT");
}
