//! Every patient served is accounted for: one `PATIENTS_READ` event per
//! GraphQL operation (and per REST call) that served patients through a list
//! or a nested field, naming each served patient once, written before the
//! response leaves; if it cannot be written, no patient data leaves.

use serde_json::{Value, json};

use crate::common::{TestApp, TestUser, cluster};

/// The `PATIENTS_READ` events so far: each one's actor and its patients, sorted.
async fn reads(app: &TestApp) -> Vec<(String, Vec<String>)> {
    let client = cluster::connect(&app.db_url).await.unwrap();
    client
        .query(
            "SELECT actor_id::text, entity_ids::text[] FROM audit_events
             WHERE action = 'PATIENTS_READ' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| {
            let mut ids: Vec<String> = row.get(1);
            ids.sort();
            (row.get(0), ids)
        })
        .collect()
}

/// The events the request `send` leaves.
async fn new_reads<F: Future<Output = ()>>(app: &TestApp, send: F) -> Vec<(String, Vec<String>)> {
    let before = reads(app).await.len();
    send.await;
    reads(app).await.split_off(before)
}

/// POSTs a batch of operations as `user`: the status and the body.
async fn batch_as(app: &TestApp, user: &TestUser, batch: &Value) -> (u16, Value) {
    let resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&user.token)
        .json(batch)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|id| (*id).clone()).collect();
    ids.sort();
    ids.dedup();
    ids
}

struct World {
    ann: TestUser,
    bob: TestUser,
    /// Ann's two patients, both assigned to `doctor`; Bob's one, too.
    mine: Vec<String>,
    his: String,
    doctor: String,
    mapping: String,
}

async fn world(app: &TestApp) -> World {
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    let doctor = app.create_doctor(&ann.token, "Dr Shared", "GP").await;
    let mut mine = Vec::new();
    let mut mapping = String::new();
    for name in ["One", "Two"] {
        let patient = app.create_patient(&ann.token, name).await;
        let assigned = app
            .gql_as(
                &ann.token,
                "mutation($i: AssignDoctorInput!) { assignDoctor(input: $i) { id } }",
                json!({ "i": { "patientId": patient, "doctorId": doctor } }),
            )
            .await;
        mapping = assigned.assert_ok()["assignDoctor"]["id"].as_str().unwrap().to_owned();
        mine.push(patient);
    }
    let his = app.create_patient(&bob.token, "His").await;
    app.gql_as(
        &bob.token,
        "mutation($i: AssignDoctorInput!) { assignDoctor(input: $i) { id } }",
        json!({ "i": { "patientId": his, "doctorId": doctor } }),
    )
    .await
    .assert_ok();
    World {
        ann,
        bob,
        mine,
        his,
        doctor,
        mapping,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_path_that_serves_patients_leaves_one_event_naming_them() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let mine = sorted(&w.mine.iter().collect::<Vec<_>>());
    let one = |id: &String| vec![id.clone()];
    let paths: Vec<(&str, Value, &TestUser, Vec<String>)> = vec![
        ("{ patients { nodes { id name } } }", json!({}), &w.ann, mine.clone()),
        (
            "query($d: ID!) { doctor(id: $d) { patients { id name } } }",
            json!({ "d": w.doctor }),
            &w.ann,
            mine.clone(),
        ),
        (
            "{ doctors { nodes { patients { id } } } }",
            json!({}),
            &w.bob,
            one(&w.his),
        ),
        (
            "query($m: ID!) { mapping(id: $m) { patient { id } } }",
            json!({ "m": w.mapping }),
            &w.ann,
            one(w.mine.last().unwrap()),
        ),
        (
            "{ mappings { nodes { patient { name } } } }",
            json!({}),
            &w.ann,
            mine.clone(),
        ),
        (
            "query($d: ID!) { doctor(id: $d) { mappings { patient { id } } } }",
            json!({ "d": w.doctor }),
            &w.bob,
            one(&w.his),
        ),
        // Served twice in one operation: named once.
        (
            "{ patients { nodes { id doctors { patients { id } } } } mappings { nodes { patient { id } } } }",
            json!({}),
            &w.ann,
            mine.clone(),
        ),
    ];
    for (query, vars, user, served) in paths {
        let events = new_reads(&app, async {
            app.gql_as(&user.token, query, vars).await.assert_ok();
        })
        .await;
        assert_eq!(events, vec![(user.id.clone(), served)], "{query}");
    }

    // REST: the list of patients.
    let events = new_reads(&app, async {
        let resp = app.rest("GET", "/api/patients", Some(&w.ann.token), None).await;
        assert_eq!(resp.status, 200);
    })
    .await;
    assert_eq!(events, vec![(w.ann.id.clone(), mine.clone())]);

    // A batch: one event per operation that served patients.
    let events = new_reads(&app, async {
        let batch = json!([
            { "query": "{ patients { nodes { id } } }" },
            { "query": "{ doctors { nodes { name } } }" },
            { "query": "{ mappings { nodes { patient { id } } } }" },
        ]);
        assert_eq!(batch_as(&app, &w.ann, &batch).await.0, 200);
    })
    .await;
    assert_eq!(
        events,
        vec![(w.ann.id.clone(), mine.clone()), (w.ann.id.clone(), mine.clone())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_serves_no_patient_writes_no_list_event() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    for query in [
        "{ me { id } }",
        "{ doctors { nodes { name createdBy { name } } } }",
        "{ patients(search: \"nobody has this name\") { nodes { id } } }",
        "{ mappings { nodes { id doctor { name } } } }",
    ] {
        let events = new_reads(&app, async {
            app.gql_as(&w.ann.token, query, json!({})).await.assert_ok();
        })
        .await;
        assert!(events.is_empty(), "{query}: {events:?}");
    }
    // The point read keeps its own PATIENT_READ and adds no list event.
    let before = app
        .count("SELECT count(*) FROM audit_events WHERE action = 'PATIENT_READ'")
        .await;
    let events = new_reads(&app, async {
        app.gql_as(
            &w.ann.token,
            "query($id: ID!) { patient(id: $id) { id } }",
            json!({ "id": w.mine[0] }),
        )
        .await
        .assert_ok();
    })
    .await;
    assert!(events.is_empty(), "{events:?}");
    let after = app
        .count("SELECT count(*) FROM audit_events WHERE action = 'PATIENT_READ'")
        .await;
    assert_eq!(after, before + 1);
    // Another user's patient is neither served nor named.
    let events = new_reads(&app, async {
        let resp = app
            .gql_as(&w.bob.token, "{ patients { nodes { id } } }", json!({}))
            .await;
        assert_eq!(resp.assert_ok()["patients"]["nodes"].as_array().unwrap().len(), 1);
    })
    .await;
    assert_eq!(events, vec![(w.bob.id.clone(), vec![w.his.clone()])]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_event_cannot_be_written_no_patient_data_leaves() {
    let app = TestApp::spawn().await;
    let w = world(&app).await;
    let client = cluster::connect(&app.db_url).await.unwrap();
    client
        .batch_execute("ALTER TABLE audit_events ADD CONSTRAINT no_more_events CHECK (false) NOT VALID")
        .await
        .unwrap();

    for (query, vars) in [
        ("{ patients { nodes { id name } } }", json!({})),
        (
            "query($id: ID!) { patient(id: $id) { id name } }",
            json!({ "id": w.mine[0] }),
        ),
        (
            "query($d: ID!) { doctor(id: $d) { name patients { id name } } }",
            json!({ "d": w.doctor }),
        ),
    ] {
        let resp = app.gql_as(&w.ann.token, query, vars).await;
        resp.assert_code("INTERNAL_SERVER_ERROR");
        let body = resp.body.to_string();
        assert!(resp.body["data"].is_null(), "{query}: {body}");
        assert!(!body.contains(&w.mine[0]), "{query}: {body}");
    }

    // In a batch, only the operation that served patients is refused.
    let batch = json!([
        { "query": "{ patients { nodes { id name } } }" },
        { "query": "{ doctors { nodes { name } } }" },
    ]);
    let (_, body) = batch_as(&app, &w.ann, &batch).await;
    assert!(body[0]["data"].is_null(), "{body}");
    assert_eq!(body[0]["errors"][0]["extensions"]["code"], "INTERNAL_SERVER_ERROR");
    assert_eq!(body[1]["data"]["doctors"]["nodes"][0]["name"], "Dr Shared");

    // REST: an error, and no patient in the body.
    let resp = app.rest("GET", "/api/patients", Some(&w.ann.token), None).await;
    assert!(resp.status >= 500, "{}", resp.status);
    assert!(!resp.body.to_string().contains(&w.mine[0]), "{}", resp.body);
    // And nothing was recorded.
    client
        .batch_execute("ALTER TABLE audit_events DROP CONSTRAINT no_more_events")
        .await
        .unwrap();
    assert!(reads(&app).await.is_empty());
}
