//! The doctors directory: everyone reads and adds; only the creator or an
//! admin changes or removes; licence numbers are unique.

use serde_json::json;

use crate::common::TestApp;

const FIELDS: &str = "id name specialization email phone licenseNumber createdAt updatedAt createdBy { id }";
const LIST: &str = "query($search: String, $spec: String, $order: DoctorOrder, $first: Int, $after: String) { doctors(search: $search, specialization: $spec, orderBy: $order, first: $first, after: $after) { totalCount nodes { name specialization } pageInfo { hasNextPage endCursor } } }";

fn create() -> String {
    format!("mutation($i: CreateDoctorInput!) {{ createDoctor(input: $i) {{ {FIELDS} }} }}")
}
fn update() -> String {
    format!("mutation($id: ID!, $i: UpdateDoctorInput!) {{ updateDoctor(id: $id, input: $i) {{ {FIELDS} }} }}")
}
const DELETE: &str = "mutation($id: ID!) { deleteDoctor(id: $id) }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_reads_and_creator_or_admin_writes() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.signup("alice").await, app.signup("bob").await);
    let root = app.admin("root").await;
    let created = app
        .gql_as(
            &alice.token,
            &create(),
            json!({ "i": { "name": "Dr Ada", "specialization": "Cardiology", "email": "ada@clinic.example",
                           "phone": "+44 20 7946 0000", "licenseNumber": "GMC-123" } }),
        )
        .await;
    let d = created.assert_ok()["createDoctor"].clone();
    let id = d["id"].as_str().unwrap().to_owned();
    assert_eq!(d["createdBy"]["id"], alice.id.as_str());

    // Everyone reads it.
    let read = app
        .gql_as(
            &bob.token,
            &format!("query($id: ID!) {{ doctor(id: $id) {{ {FIELDS} }} }}"),
            json!({ "id": id }),
        )
        .await;
    assert_eq!(read.assert_ok()["doctor"], d);

    // Bob may not change or remove it.
    let resp = app
        .gql_as(&bob.token, &update(), json!({ "id": id, "i": { "name": "Dr Bob" } }))
        .await;
    resp.assert_code("FORBIDDEN");
    app.gql_as(&bob.token, DELETE, json!({ "id": id }))
        .await
        .assert_code("FORBIDDEN");

    // The creator can; null clears optional fields, absent keeps them.
    let resp = app
        .gql_as(
            &alice.token,
            &update(),
            json!({ "id": id, "i": { "phone": null, "specialization": "Cardiac Surgery" } }),
        )
        .await;
    let u = &resp.assert_ok()["updateDoctor"];
    assert!(u["phone"].is_null());
    assert_eq!(u["specialization"], "Cardiac Surgery");
    assert_eq!(u["licenseNumber"], "GMC-123");
    for field in ["name", "specialization"] {
        let resp = app
            .gql_as(&alice.token, &update(), json!({ "id": id, "i": { field: null } }))
            .await;
        resp.assert_code("BAD_USER_INPUT");
        assert_eq!(resp.field(), Some(field));
    }
    // An admin can too.
    let resp = app
        .gql_as(
            &root.token,
            &update(),
            json!({ "id": id, "i": { "name": "Dr Ada Lovelace" } }),
        )
        .await;
    assert_eq!(resp.assert_ok()["updateDoctor"]["name"], "Dr Ada Lovelace");
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'DOCTOR_UPDATED'")
            .await,
        2
    );
    app.gql_as(&root.token, DELETE, json!({ "id": id })).await.assert_ok();
    let read = app
        .gql_as(
            &bob.token,
            "query($id: ID!) { doctor(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert!(read.assert_ok()["doctor"].is_null());
    app.gql_as(&alice.token, DELETE, json!({ "id": id }))
        .await
        .assert_code("NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn licence_numbers_are_unique() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let make = |lic: &'static str| {
        app.gql_as(
            &ann.token,
            "mutation($i: CreateDoctorInput!) { createDoctor(input: $i) { id } }",
            json!({ "i": { "name": "Dr X", "specialization": "General", "licenseNumber": lic } }),
        )
    };
    make("LIC-1").await.assert_ok();
    let dup = make("LIC-1").await;
    dup.assert_code("CONFLICT");
    assert_eq!(dup.field(), Some("licenseNumber"));
    let other = make("LIC-2").await;
    let id = other.assert_ok()["createDoctor"]["id"].as_str().unwrap().to_owned();
    let resp = app
        .gql_as(
            &ann.token,
            &update(),
            json!({ "id": id, "i": { "licenseNumber": "LIC-1" } }),
        )
        .await;
    resp.assert_code("CONFLICT");
    // Doctors without one do not collide.
    for _ in 0..2 {
        app.create_doctor(&ann.token, "Dr None", "General").await;
    }
    assert_eq!(app.count("SELECT count(*) FROM doctors").await, 4);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'DOCTOR_CREATED'")
            .await,
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_doctor_input_is_refused() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let cases = [
        (json!({ "name": "", "specialization": "X" }), "name"),
        (json!({ "name": "Dr", "specialization": "" }), "specialization"),
        (
            json!({ "name": "Dr", "specialization": "x".repeat(201) }),
            "specialization",
        ),
        (json!({ "name": "Dr", "specialization": "X", "email": "nope" }), "email"),
        (json!({ "name": "Dr", "specialization": "X", "phone": "abc" }), "phone"),
        (
            json!({ "name": "Dr", "specialization": "X", "licenseNumber": "<script>" }),
            "licenseNumber",
        ),
        (
            json!({ "name": "Dr", "specialization": "X", "licenseNumber": "L".repeat(65) }),
            "licenseNumber",
        ),
        (json!({ "name": "Dr" }), "specialization"),
    ];
    for (input, field) in cases {
        let resp = app.gql_as(&ann.token, &create(), json!({ "i": input })).await;
        resp.assert_code("BAD_USER_INPUT");
        assert!(
            resp.field().unwrap_or_default().contains(field),
            "{field}: {}",
            resp.body
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM doctors").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_specialization_filter() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    for (name, spec) in [
        ("Dr Heart", "Cardiology"),
        ("Dr Skin", "Dermatology"),
        ("Cardio Carl", "General"),
    ] {
        app.create_doctor(&ann.token, name, spec).await;
    }
    let names = |r: &crate::common::Gql| -> Vec<String> {
        r.assert_ok()["doctors"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_owned())
            .collect()
    };
    // Name or specialization, any case; default order is by name.
    let r = app.gql_as(&ann.token, LIST, json!({ "search": "CARDIO" })).await;
    assert_eq!(names(&r), ["Cardio Carl", "Dr Heart"]);
    let r = app.gql_as(&ann.token, LIST, json!({ "spec": "cardiology" })).await;
    assert_eq!(names(&r), ["Dr Heart"]);
    assert_eq!(r.data()["doctors"]["totalCount"], 1);
    let r = app
        .gql_as(
            &ann.token,
            LIST,
            json!({ "order": { "field": "NAME", "direction": "DESC" } }),
        )
        .await;
    assert_eq!(names(&r), ["Dr Skin", "Dr Heart", "Cardio Carl"]);
}
