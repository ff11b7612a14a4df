//! Every id, page and cursor argument of every field refuses malformed and
//! hostile values with BAD_USER_INPUT naming the argument, and writes nothing.

use serde_json::json;

use crate::common::TestApp;

const BAD_IDS: [&str; 5] = [
    "",
    "garbage",
    "1",
    "'; DROP TABLE patients; --",
    "00000000-0000-0000-0000-00000000000g",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_id_argument_is_checked() {
    let app = TestApp::spawn().await;
    let root = app.admin("root").await;
    let calls = [
        ("query($v: ID!) { patient(id: $v) { id } }", "id"),
        ("query($v: ID!) { doctor(id: $v) { id } }", "id"),
        ("query($v: ID!) { mapping(id: $v) { id } }", "id"),
        ("query($v: ID) { mappings(patientId: $v) { totalCount } }", "patientId"),
        ("query($v: ID) { mappings(doctorId: $v) { totalCount } }", "doctorId"),
        ("query($v: ID) { auditEvents(actorId: $v) { totalCount } }", "actorId"),
        ("query($v: ID) { auditEvents(entityId: $v) { totalCount } }", "entityId"),
        (
            "mutation($v: ID!) { updatePatient(id: $v, input: {name: \"X\"}) { id } }",
            "id",
        ),
        ("mutation($v: ID!) { deletePatient(id: $v) }", "id"),
        (
            "mutation($v: ID!) { updateDoctor(id: $v, input: {name: \"X\"}) { id } }",
            "id",
        ),
        ("mutation($v: ID!) { deleteDoctor(id: $v) }", "id"),
        ("mutation($v: ID!) { removeMapping(id: $v) }", "id"),
        (
            "mutation($v: ID!) { assignDoctor(input: {patientId: $v, doctorId: $v}) { id } }",
            "patientId",
        ),
    ];
    for (query, field) in calls {
        for bad in BAD_IDS {
            let resp = app.gql_as(&root.token, query, json!({ "v": bad })).await;
            assert_eq!(
                resp.code(),
                Some("BAD_USER_INPUT"),
                "{query} with {bad:?}: {}",
                resp.body
            );
            assert_eq!(resp.field(), Some(field), "{query} with {bad:?}");
        }
    }
    // Only the admin's own login is on the trail: nothing else was written.
    assert_eq!(app.count("SELECT count(*) FROM audit_events").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM patients").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_argument_is_checked() {
    let app = TestApp::spawn().await;
    let root = app.admin("root").await;
    for list in ["patients", "doctors", "mappings", "auditEvents"] {
        for first in [0, -5, 101, 1_000_000] {
            let query = format!("query($f: Int) {{ {list}(first: $f) {{ totalCount }} }}");
            let resp = app.gql_as(&root.token, &query, json!({ "f": first })).await;
            assert_eq!(resp.code(), Some("BAD_USER_INPUT"), "{list} first {first}");
            assert_eq!(resp.field(), Some("first"), "{list} first {first}");
        }
        let query = format!("query($f: Int) {{ {list}(first: $f) {{ totalCount }} }}");
        let resp = app.gql_as(&root.token, &query, json!({ "f": "ten" })).await;
        resp.assert_code("BAD_USER_INPUT");
        for after in ["garbage", "", "eyJ9", "dDp4OjE", &"A".repeat(10_000)] {
            let query = format!("query($a: String) {{ {list}(after: $a) {{ totalCount }} }}");
            let resp = app.gql_as(&root.token, &query, json!({ "a": after })).await;
            assert_eq!(resp.code(), Some("BAD_USER_INPUT"), "{list} after {after:?}");
            assert_eq!(resp.field(), Some("after"), "{list} after {after:?}");
        }
    }
    let resp = app
        .gql_as(
            &root.token,
            "query($s: String) { doctors(specialization: $s) { totalCount } }",
            json!({ "s": "x".repeat(201) }),
        )
        .await;
    assert_eq!(resp.field(), Some("specialization"));
    let resp = app
        .gql_as(
            &root.token,
            "{ auditEvents(action: DROP_TABLES) { totalCount } }",
            json!({}),
        )
        .await;
    resp.assert_code("BAD_USER_INPUT");
}
