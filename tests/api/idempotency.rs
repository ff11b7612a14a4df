//! Safe retries: `Idempotency-Key` on createPatient, createDoctor,
//! assignDoctor and their REST POSTs, on one replica and across two.

use serde_json::{Value, json};

use crate::common::{Gql, Rest, TestApp};

const CREATE_PATIENT: &str =
    "mutation($i: CreatePatientInput!) { createPatient(input: $i) { id name createdBy { id } } }";
const CREATE_DOCTOR: &str = "mutation($i: CreateDoctorInput!) { createDoctor(input: $i) { id name licenseNumber } }";
const ASSIGN: &str = "mutation($i: AssignDoctorInput!) { assignDoctor(input: $i) { id patient { id } doctor { id } } }";

impl TestApp {
    /// A GraphQL request as `token` with these `Idempotency-Key` values.
    async fn gql_keyed(&self, token: &str, keys: &[&str], query: &str, variables: Value) -> Gql {
        let mut req = self
            .client
            .post(self.url("/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }));
        for key in keys {
            req = req.header("idempotency-key", *key);
        }
        let resp = req.send().await.unwrap();
        Gql {
            status: resp.status().as_u16(),
            body: resp.json().await.unwrap(),
        }
    }

    async fn post_keyed(&self, token: &str, keys: &[&str], path: &str, body: Value) -> Rest {
        let mut req = self.client.post(self.url(path)).bearer_auth(token).json(&body);
        for key in keys {
            req = req.header("idempotency-key", *key);
        }
        TestApp::rest_answer(req).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_sent_again_with_its_key_answers_with_the_first_record() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let input = json!({ "i": { "name": "Pat Keyed" } });
    let first = app.gql_keyed(&ann.token, &["k-1"], CREATE_PATIENT, input.clone()).await;
    let again = app
        .gql_keyed(&ann.token, &["\"k-1\""], CREATE_PATIENT, input.clone())
        .await;
    assert_eq!(first.assert_ok(), again.assert_ok(), "the quoted form is the same key");
    let id = first.data()["createPatient"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.count("SELECT count(*) FROM patients WHERE name = 'Pat Keyed'")
            .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_events WHERE action = 'PATIENT_CREATED' AND entity_id = '{id}'"
        ))
        .await,
        1,
        "one create, one event"
    );
    // The answer to the retry serves the record again: a read, audited.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_events WHERE action = 'PATIENT_READ' AND entity_id = '{id}'"
        ))
        .await,
        1
    );

    // The same key with another input is a conflict and writes nothing.
    let other = app
        .gql_keyed(
            &ann.token,
            &["k-1"],
            CREATE_PATIENT,
            json!({ "i": { "name": "Someone Else" } }),
        )
        .await;
    other.assert_code("CONFLICT");
    assert_eq!(other.field(), Some("Idempotency-Key"));
    assert_eq!(
        app.count("SELECT count(*) FROM patients WHERE name = 'Someone Else'")
            .await,
        0
    );
    // So is the same key on another operation.
    let doctor = app
        .gql_keyed(
            &ann.token,
            &["k-1"],
            CREATE_DOCTOR,
            json!({ "i": { "name": "Dr K", "specialization": "X" } }),
        )
        .await;
    doctor.assert_code("CONFLICT");

    // A key is the user's own: another user's same key is another request.
    let bob = app.signup("bob").await;
    let bobs = app.gql_keyed(&bob.token, &["k-1"], CREATE_PATIENT, input.clone()).await;
    assert_ne!(
        bobs.assert_ok()["createPatient"]["id"],
        first.data()["createPatient"]["id"]
    );
    assert_eq!(
        app.count("SELECT count(*) FROM patients WHERE name = 'Pat Keyed'")
            .await,
        2
    );

    // Without a key, each request creates.
    app.create_patient(&ann.token, "Unkeyed").await;
    app.create_patient(&ann.token, "Unkeyed").await;
    assert_eq!(
        app.count("SELECT count(*) FROM patients WHERE name = 'Unkeyed'").await,
        2
    );

    // A hostile key is only a key.
    let hostile = "'; DROP TABLE patients; --";
    for _ in 0..2 {
        app.gql_keyed(
            &ann.token,
            &[hostile],
            CREATE_PATIENT,
            json!({ "i": { "name": "Hostile" } }),
        )
        .await
        .assert_ok();
    }
    assert_eq!(
        app.count("SELECT count(*) FROM patients WHERE name = 'Hostile'").await,
        1
    );

    // Once deleted, the record cannot be answered with again.
    app.gql_as(
        &ann.token,
        "mutation($id: ID!) { deletePatient(id: $id) }",
        json!({ "id": id }),
    )
    .await
    .assert_ok();
    let gone = app.gql_keyed(&ann.token, &["k-1"], CREATE_PATIENT, input).await;
    gone.assert_code("CONFLICT");
    assert_eq!(
        app.count("SELECT count(*) FROM patients WHERE name = 'Pat Keyed'")
            .await,
        1
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctors_and_assignments_are_made_once_per_key_in_both_transports() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    // A licence number is unique: a retry must not trip over its own doctor.
    let input = json!({ "i": { "name": "Dr Once", "specialization": "Neurology", "licenseNumber": "LIC-77" } });
    let first = app.gql_keyed(&ann.token, &["doc"], CREATE_DOCTOR, input.clone()).await;
    let again = app.gql_keyed(&ann.token, &["doc"], CREATE_DOCTOR, input).await;
    assert_eq!(first.assert_ok(), again.assert_ok());
    let doctor = first.data()["createDoctor"]["id"].as_str().unwrap().to_owned();
    let patient = app.create_patient(&ann.token, "Pat").await;
    let pair = json!({ "i": { "patientId": patient, "doctorId": doctor } });
    let first = app.gql_keyed(&ann.token, &["pair"], ASSIGN, pair.clone()).await;
    let again = app.gql_keyed(&ann.token, &["pair"], ASSIGN, pair).await;
    assert_eq!(first.assert_ok(), again.assert_ok(), "not 'already assigned'");
    // Without the key, the second assignment is the conflict it always was.
    app.assign(&ann.token, &patient, &doctor).await.assert_code("CONFLICT");

    // REST: 201 both times, the same record and Location.
    let body = json!({ "name": "Rest Pat" });
    let first = app
        .post_keyed(&ann.token, &["rest-p"], "/api/patients", body.clone())
        .await;
    let again = app.post_keyed(&ann.token, &["rest-p"], "/api/patients", body).await;
    assert_eq!((first.status, again.status), (201, 201), "{}", again.body);
    assert_eq!(first.id(), again.id());
    assert_eq!(first.header("location"), again.header("location"));
    let body = json!({ "name": "Dr Rest", "specialization": "Oncology", "licenseNumber": "LIC-78" });
    let first = app
        .post_keyed(&ann.token, &["rest-d"], "/api/doctors", body.clone())
        .await;
    let again = app.post_keyed(&ann.token, &["rest-d"], "/api/doctors", body).await;
    assert_eq!((first.status, again.status), (201, 201), "{}", again.body);
    assert_eq!(first.id(), again.id());
    let rest_patient = app.create_patient(&ann.token, "Rest Pat 2").await;
    let body = json!({ "patientId": rest_patient, "doctorId": first.id() });
    let first = app
        .post_keyed(&ann.token, &["rest-m"], "/api/mappings", body.clone())
        .await;
    let again = app.post_keyed(&ann.token, &["rest-m"], "/api/mappings", body).await;
    assert_eq!((first.status, again.status), (201, 201), "{}", again.body);
    assert_eq!(first.id(), again.id());
    let changed = app
        .post_keyed(
            &ann.token,
            &["rest-m"],
            "/api/mappings",
            json!({ "patientId": patient, "doctorId": doctor }),
        )
        .await;
    changed.assert_error(409, "CONFLICT", Some("Idempotency-Key"));
    assert_eq!(app.count("SELECT count(*) FROM mappings").await, 2);
    assert_eq!(app.count("SELECT count(*) FROM doctors").await, 2);

    // A request that failed leaves its key unused: a licence number taken,
    // then the same key with a free one creates.
    let taken = app
        .post_keyed(
            &ann.token,
            &["retry-me"],
            "/api/doctors",
            json!({ "name": "Dr Dup", "specialization": "X", "licenseNumber": "LIC-77" }),
        )
        .await;
    taken.assert_error(409, "CONFLICT", Some("licenseNumber"));
    let fixed = app
        .post_keyed(
            &ann.token,
            &["retry-me"],
            "/api/doctors",
            json!({ "name": "Dr Dup", "specialization": "X", "licenseNumber": "LIC-79" }),
        )
        .await;
    assert_eq!(fixed.status, 201, "{}", fixed.body);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_sent_at_once_and_to_two_replicas_make_one_record() {
    let app = TestApp::spawn().await;
    let replica = TestApp::spawn_on(&app.db_url, |_| {}).await;
    let ann = app.signup("ann").await;
    let input = json!({ "i": { "name": "Raced" } });
    let mut answers = Vec::new();
    for round in 0..3 {
        let key = format!("race-{round}");
        let keys = [key.as_str()];
        let sends = (0..8).map(|n| {
            let target = if n % 2 == 0 { &app } else { &replica };
            target.gql_keyed(&ann.token, &keys, CREATE_PATIENT, input.clone())
        });
        let round: Vec<Gql> = futures_util::future::join_all(sends).await;
        let ids: std::collections::HashSet<String> = round
            .iter()
            .map(|a| a.assert_ok()["createPatient"]["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), 1, "one record per key: {ids:?}");
        answers.extend(ids);
    }
    assert_eq!(app.count("SELECT count(*) FROM patients WHERE name = 'Raced'").await, 3);
    // A key older than 24 hours is forgotten: the same request creates again.
    app.count("WITH d AS (UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'race-0' RETURNING 1) SELECT count(*) FROM d")
        .await;
    let later = replica.gql_keyed(&ann.token, &["race-0"], CREATE_PATIENT, input).await;
    assert!(!answers.contains(&later.assert_ok()["createPatient"]["id"].as_str().unwrap().to_owned()));
    assert_eq!(app.count("SELECT count(*) FROM patients WHERE name = 'Raced'").await, 4);
    replica.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_key_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let long = "k".repeat(256);
    let bad: Vec<Vec<&str>> = vec![
        vec![""],
        vec!["\"\""],
        vec!["\"unclosed"],
        vec!["quote\"inside"],
        vec![long.as_str()],
        vec!["one", "two"],
    ];
    for keys in &bad {
        let gql = app
            .gql_keyed(&ann.token, keys, CREATE_PATIENT, json!({ "i": { "name": "Bad Key" } }))
            .await;
        assert_eq!(gql.status, 400, "{keys:?}: {}", gql.body);
        gql.assert_code("BAD_USER_INPUT");
        assert_eq!(gql.field(), Some("Idempotency-Key"), "{keys:?}");
        let rest = app
            .post_keyed(&ann.token, keys, "/api/patients", json!({ "name": "Bad Key" }))
            .await;
        rest.assert_error(400, "BAD_USER_INPUT", Some("Idempotency-Key"));
    }
    // Bytes beyond ASCII.
    let resp = app
        .client
        .post(app.url("/api/patients"))
        .bearer_auth(&ann.token)
        .header(
            "idempotency-key",
            reqwest::header::HeaderValue::from_bytes(b"cl\xe9").unwrap(),
        )
        .json(&json!({ "name": "Bad Key" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // One key, two creates: refused before anything runs, in one operation
    // and across a batch.
    let two = app
        .gql_keyed(
            &ann.token,
            &["two"],
            "mutation { a: createPatient(input: { name: \"Bad Key\" }) { id } b: createPatient(input: { name: \"Bad Key\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(two.status, 400, "{}", two.body);
    assert_eq!(two.field(), Some("Idempotency-Key"));
    let batch = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&ann.token)
        .header("idempotency-key", "batch")
        .json(&json!([
            { "query": "mutation { createPatient(input: { name: \"Bad Key\" }) { id } }" },
            { "query": "mutation { createDoctor(input: { name: \"Bad Key\", specialization: \"X\" }) { id } }" },
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(batch.status(), 400);
    assert_eq!(
        app.count("SELECT count(*) FROM patients WHERE name = 'Bad Key'").await,
        0
    );
    assert_eq!(
        app.count("SELECT count(*) FROM doctors WHERE name = 'Bad Key'").await,
        0
    );
    assert_eq!(app.count("SELECT count(*) FROM idempotency_keys").await, 0);

    // A key on a request that creates nothing is ignored: a query, an update.
    app.gql_keyed(&ann.token, &["q"], "{ me { id } }", json!({}))
        .await
        .assert_ok();
    // Bad input under a good key is refused and leaves the key unused.
    let refused = app
        .gql_keyed(&ann.token, &["good"], CREATE_PATIENT, json!({ "i": { "name": "   " } }))
        .await;
    refused.assert_code("BAD_USER_INPUT");
    assert_eq!(app.count("SELECT count(*) FROM idempotency_keys").await, 0);
    app.stop().await;
}
