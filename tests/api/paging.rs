//! Keyset paging: no row lost or repeated, in every order, with inserts
//! between pages; page info and cursors.

use std::collections::HashSet;

use serde_json::json;

use crate::common::TestApp;

const LIST: &str = "query($first: Int, $after: String, $order: PatientOrder) { patients(first: $first, after: $after, orderBy: $order) { edges { cursor node { id name } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_ten_through_twenty_five_rows_in_every_order_with_inserts() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let mut originals = HashSet::new();
    // Every patient's id, in the order they were created.
    let mut created: Vec<String> = Vec::new();
    for i in 0..25 {
        // Duplicate names test the id tie-breaker.
        let id = app.create_patient(&ann.token, &format!("Patient {:02}", i % 20)).await;
        originals.insert(id.clone());
        created.push(id);
    }
    let mut inserted = 0;
    for field in ["NAME", "CREATED_AT"] {
        for direction in ["ASC", "DESC"] {
            let order = json!({ "field": field, "direction": direction });
            let mut seen: Vec<String> = Vec::new();
            let mut names: Vec<String> = Vec::new();
            let mut after: Option<String> = None;
            let mut pages = 0;
            loop {
                let resp = app
                    .gql_as(&ann.token, LIST, json!({ "first": 10, "after": after, "order": order }))
                    .await;
                let conn = resp.assert_ok()["patients"].clone();
                let edges = conn["edges"].as_array().unwrap();
                assert_eq!(conn["pageInfo"]["hasPreviousPage"], after.is_some());
                if let Some(first) = edges.first() {
                    assert_eq!(conn["pageInfo"]["startCursor"], first["cursor"]);
                    assert_eq!(conn["pageInfo"]["endCursor"], edges.last().unwrap()["cursor"]);
                }
                seen.extend(edges.iter().map(|e| e["node"]["id"].as_str().unwrap().to_owned()));
                names.extend(edges.iter().map(|e| e["node"]["name"].as_str().unwrap().to_owned()));
                pages += 1;
                // Someone adds patients while we page: at both ends of the order.
                created.push(app.create_patient(&ann.token, "Aaron Early").await);
                created.push(app.create_patient(&ann.token, "Zed Late").await);
                inserted += 2;
                if conn["pageInfo"]["hasNextPage"] == false {
                    break;
                }
                after = conn["pageInfo"]["endCursor"].as_str().map(str::to_owned);
                assert!(pages < 20, "paging does not end");
            }
            let unique: HashSet<&String> = seen.iter().collect();
            assert_eq!(unique.len(), seen.len(), "{field} {direction}: a row came twice");
            for id in &originals {
                assert!(unique.contains(id), "{field} {direction}: a row was lost");
            }
            // The pages, one after another, are in the order asked for
            // (ids break ties; the test cluster compares text bytewise).
            let keys: Vec<(String, usize)> = names
                .into_iter()
                .zip(&seen)
                .map(|(name, id)| (name, created.iter().position(|c| c == id).unwrap()))
                .collect();
            for pair in keys.windows(2) {
                let ((name_a, at_a), (name_b, at_b)) = (&pair[0], &pair[1]);
                let (id_a, id_b) = (&created[*at_a], &created[*at_b]);
                let in_order = match (field, direction) {
                    ("NAME", "ASC") => (name_a, id_a) < (name_b, id_b),
                    ("NAME", _) => (name_a, id_a) > (name_b, id_b),
                    (_, "ASC") => at_a < at_b,
                    _ => at_a > at_b,
                };
                assert!(in_order, "{field} {direction}: {:?} before {:?}", pair[0], pair[1]);
            }
        }
    }
    assert_eq!(app.count("SELECT count(*) FROM patients").await, 25 + inserted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_list_has_no_cursors() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let resp = app.gql_as(&ann.token, LIST, json!({})).await;
    let info = &resp.assert_ok()["patients"]["pageInfo"];
    assert_eq!(info["hasNextPage"], false);
    assert!(info["startCursor"].is_null() && info["endCursor"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mappings_and_audit_events_page_too() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let root = app.admin("root").await;
    let doctor = app.create_doctor(&ann.token, "Dr D", "General").await;
    for i in 0..7 {
        let p = app.create_patient(&ann.token, &format!("P{i}")).await;
        app.assign(&ann.token, &p, &doctor).await.assert_ok();
    }
    for (query, field, token, total) in [
        (
            "query($a: String) { mappings(first: 3, after: $a) { totalCount edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }",
            "mappings",
            &ann.token,
            7,
        ),
        (
            "query($a: String) { auditEvents(first: 3, after: $a, action: PATIENT_CREATED) { totalCount edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }",
            "auditEvents",
            &root.token,
            7,
        ),
    ] {
        let mut seen = HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let resp = app.gql_as(token, query, json!({ "a": after })).await;
            let conn = resp.assert_ok()[field].clone();
            assert_eq!(conn["totalCount"], total);
            for e in conn["edges"].as_array().unwrap() {
                assert!(seen.insert(e["node"]["id"].as_str().unwrap().to_owned()));
            }
            if conn["pageInfo"]["hasNextPage"] == false {
                break;
            }
            after = conn["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        }
        assert_eq!(seen.len(), total, "{field}");
    }
}
