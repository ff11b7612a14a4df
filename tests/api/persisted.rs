//! Documents sent by their hash: Apollo's automatic persisted queries over
//! POST and GET, and trusted documents (`TRUSTED_DOCUMENTS`), where only the
//! manifest's documents run.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{TestApp, cluster::ScratchDir};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const PATIENTS: &str = "query Patients { patients(first: 5) { nodes { id name } } }";
const CREATE: &str = "mutation Create($name: String!) { createPatient(input: { name: $name, gender: FEMALE }) { id } }";

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn apq(query: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256(query) } })
}

async fn post(app: &TestApp, token: &str, accept: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .json(&body);
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn get(app: &TestApp, token: &str, params: &[(&str, String)]) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(app.url("/graphql"))
        .query(params)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn not_found(status: u16, body: &Value, expected_status: u16) {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND",
        "{body}"
    );
    assert!(body.get("data").is_none(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apq_runs_a_document_by_its_hash_once_it_was_sent() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    app.create_patient(&ann.token, "Pat One").await;

    // Unknown hash: the client is told to send the document.
    let (status, body) = post(&app, &ann.token, None, json!({ "extensions": apq(PATIENTS) })).await;
    not_found(status, &body, 200);
    let (status, body) = post(
        &app,
        &ann.token,
        Some(GRAPHQL_RESPONSE),
        json!({ "extensions": apq(PATIENTS) }),
    )
    .await;
    not_found(status, &body, 400);
    // A hash that is not the document's is refused and keeps nothing.
    let wrong = json!({ "query": PATIENTS, "extensions": apq("{ me { id } }") });
    let (status, body) = post(&app, &ann.token, None, wrong).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["field"],
        "extensions.persistedQuery.sha256Hash"
    );
    // The document with its hash runs and is kept; then the hash alone runs.
    let (status, body) = post(
        &app,
        &ann.token,
        None,
        json!({ "query": PATIENTS, "extensions": apq(PATIENTS) }),
    )
    .await;
    assert_eq!(
        (status, &body["data"]["patients"]["nodes"][0]["name"]),
        (200, &json!("Pat One"))
    );
    let (status, body) = post(&app, &ann.token, None, json!({ "extensions": apq(PATIENTS) })).await;
    assert_eq!(
        (status, &body["data"]["patients"]["nodes"][0]["name"]),
        (200, &json!("Pat One"))
    );
    // By GET, as Apollo's link sends hashed queries.
    let (status, body) = get(
        &app,
        &ann.token,
        &[
            ("operationName", "Patients".into()),
            ("extensions", apq(PATIENTS).to_string()),
        ],
    )
    .await;
    assert_eq!(
        (status, &body["data"]["patients"]["nodes"][0]["name"]),
        (200, &json!("Pat One"))
    );
    // Each user still sees only their own patients through a shared hash.
    let bob = app.signup("bob").await;
    let (_, body) = post(&app, &bob.token, None, json!({ "extensions": apq(PATIENTS) })).await;
    assert_eq!(body["data"]["patients"]["nodes"], json!([]), "{body}");

    // A mutation by hash: over POST, not over GET.
    let create = json!({ "query": CREATE, "variables": { "name": "Pat Two" }, "extensions": apq(CREATE) });
    post(&app, &ann.token, None, create).await;
    let (status, _) = get(
        &app,
        &ann.token,
        &[
            ("variables", json!({ "name": "Pat Three" }).to_string()),
            ("extensions", apq(CREATE).to_string()),
        ],
    )
    .await;
    assert_eq!(status, 405);
    assert_eq!(
        app.count("SELECT count(*) FROM patients WHERE name = 'Pat Three'")
            .await,
        0
    );

    // Malformed persisted-query extensions name what is wrong.
    for (extensions, field) in [
        (
            json!({ "persistedQuery": { "version": 2, "sha256Hash": sha256(PATIENTS) } }),
            "extensions.persistedQuery",
        ),
        (
            json!({ "persistedQuery": { "version": 1, "sha256Hash": "abc" } }),
            "extensions.persistedQuery.sha256Hash",
        ),
        (json!({ "persistedQuery": "x" }), "extensions.persistedQuery"),
    ] {
        let (status, body) = post(&app, &ann.token, None, json!({ "extensions": extensions })).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    let (status, body) = post(&app, &ann.token, None, json!({ "documentId": "sha256:xyz" })).await;
    assert_eq!(
        (status, &body["errors"][0]["extensions"]["field"]),
        (400, &json!("documentId"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_documents_run_and_nothing_else_does() {
    let (app, _manifest) = TestApp::spawn_trusted(&[PATIENTS, CREATE]).await;
    // Registered over REST: GraphQL runs only the manifest's documents.
    let ann = app.rest_signup("ann").await;

    // By documentId (prefixed or bare), by APQ hash, or as listed text.
    let create = |name: &str, how: &str| {
        let variables = json!({ "name": name });
        match how {
            "documentId" => json!({ "documentId": format!("sha256:{}", sha256(CREATE)), "variables": variables }),
            "bare" => json!({ "documentId": sha256(CREATE), "variables": variables }),
            "apq" => json!({ "extensions": apq(CREATE), "variables": variables }),
            _ => json!({ "query": CREATE, "variables": variables }),
        }
    };
    for (n, how) in ["documentId", "bare", "apq", "text"].into_iter().enumerate() {
        let (status, body) = post(&app, &ann, None, create(&format!("Pat {n}"), how)).await;
        assert_eq!(status, 200, "{how}: {body}");
        assert!(body["data"]["createPatient"]["id"].is_string(), "{how}: {body}");
    }
    let (status, body) = get(&app, &ann, &[("documentId", format!("sha256:{}", sha256(PATIENTS)))]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["patients"]["nodes"].as_array().unwrap().len(), 4);

    // Anything else executes nothing, however it is sent.
    let other = "mutation { createPatient(input: { name: \"Intruder\", gender: MALE }) { id } }";
    for body in [
        json!({ "query": other }),
        json!({ "query": other, "extensions": apq(other) }),
        json!({ "extensions": apq(other) }),
        json!({ "documentId": sha256(other) }),
        json!({ "query": "{ __typename }" }),
    ] {
        let (status, answer) = post(&app, &ann, Some(GRAPHQL_RESPONSE), body.clone()).await;
        not_found(status, &answer, 400);
        let (status, answer) = post(&app, &ann, None, body).await;
        not_found(status, &answer, 200);
    }
    // A listed hash runs its listed document, whatever text comes with it.
    let (status, body) = post(
        &app,
        &ann,
        None,
        json!({ "query": other, "documentId": sha256(PATIENTS) }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["patients"]["nodes"].is_array(), "{body}");
    assert_eq!(
        app.count("SELECT count(*) FROM patients WHERE name = 'Intruder'").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_manifest_stops_start_up() {
    let scratch = ScratchDir::new("manifest");
    let db = crate::common::cluster::cluster().database(true).await;
    for (name, contents) in [
        ("not-json.json", "{ not json".to_owned()),
        ("array.json", "[]".to_owned()),
        ("empty.json", "{}".to_owned()),
        ("wrong-hash.json", json!({ sha256("{ a }"): "{ b }" }).to_string()),
    ] {
        let path = scratch.path().join(name);
        std::fs::write(&path, contents).unwrap();
        let path = path.display().to_string();
        let started = TestApp::try_spawn_on(&db.url, move |s| {
            s.insert("TRUSTED_DOCUMENTS".into(), path);
        })
        .await;
        let err = started.err().expect("refused");
        assert!(err.to_string().contains("TRUSTED_DOCUMENTS"), "{name}: {err}");
    }
    let missing = scratch.path().join("missing.json").display().to_string();
    let started = TestApp::try_spawn_on(&db.url, move |s| {
        s.insert("TRUSTED_DOCUMENTS".into(), missing);
    })
    .await;
    assert!(started.is_err());
}
