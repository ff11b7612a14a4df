//! The production profile (`GRAPHIQL=false`, `GRAPHQL_INTROSPECTION=false`,
//! `GRAPHQL_MAX_ALIASES=30`), checked the way graphql-cop checks a server:
//! introspection, GraphiQL, field suggestions, alias overloading, batches
//! and mutations over GET.

use serde_json::{Value, json};

use crate::common::TestApp;

async fn production() -> TestApp {
    TestApp::spawn_with(|s| {
        s.insert("GRAPHIQL".into(), "false".into());
        s.insert("GRAPHQL_INTROSPECTION".into(), "false".into());
        s.insert("GRAPHQL_MAX_ALIASES".into(), "30".into());
    })
    .await
}

/// `{ a0: __typename a1: __typename ... }` with `n` aliases.
fn aliased(n: usize) -> String {
    let fields: Vec<String> = (0..n).map(|i| format!("a{i}: __typename")).collect();
    format!("{{ {} }}", fields.join(" "))
}

fn messages(body: &Value) -> String {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_is_refused_in_every_form() {
    let app = production().await;
    let user = app.signup("ann").await;
    for query in [
        "{ __schema { queryType { name } } }",
        "{ __type(name: \"Patient\") { fields { name } } }",
        // graphql-cop's circular introspection query.
        "query { __schema { types { fields { type { fields { type { fields { type { name } } } } } } } } }",
        "query { ...F } fragment F on Query { __schema { types { name } } }",
        "{ patients { nodes { id } } __schema { types { name } } }",
    ] {
        for token in [None, Some(user.token.as_str())] {
            let answer = app.gql_with(token, query, json!({})).await;
            answer.assert_code("BAD_USER_INPUT");
            assert!(answer.body.get("data").is_none(), "{query}: {}", answer.body);
            assert!(
                !answer.body.to_string().contains("Patient\","),
                "{query}: {}",
                answer.body
            );
        }
    }
    // __typename is not introspection: clients' caches ask for it.
    let answer = app.gql("{ __typename }", json!({})).await;
    assert_eq!(answer.assert_ok()["__typename"], "Query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn there_is_no_graphiql_page() {
    let app = production().await;
    let browser = reqwest::Client::new()
        .get(app.url("/graphql"))
        .header(
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .send()
        .await
        .unwrap();
    let status = browser.status().as_u16();
    let content_type = browser.headers()["content-type"].to_str().unwrap().to_owned();
    let body = browser.text().await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(content_type.starts_with("application/json"), "{content_type}");
    assert!(!body.to_lowercase().contains("graphiql"), "{body}");
    for asset in ["graphiql.min.js", "graphiql.min.css", "init.js"] {
        let resp = reqwest::get(app.url(&format!("/graphql/assets/{asset}")))
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{asset}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_error_suggests_a_name() {
    let typos = [
        "{ patientz { nodes { id } } }",
        "{ me { nmae } }",
        "{ me { nam } }",
        "{ patients(frist: 5) { nodes { id } } }",
        "{ patients(orderBy: { field: NAM, direction: ASC }) { nodes { id } } }",
        "mutation { createPatient(input: { nme: \"x\", gender: FEMALE }) { id } }",
        "mutation { createPatient(input: { name: \"x\", gender: FEMAL }) { id } }",
        "{ me { ... on Usr { id } } }",
    ];
    let app = production().await;
    let user = app.signup("ann").await;
    for query in typos {
        let answer = app.gql_as(&user.token, query, json!({})).await;
        assert!(answer.body["errors"].is_array(), "{query}: {}", answer.body);
        let said = messages(&answer.body);
        assert!(!said.contains("Did you mean"), "{query}: {said}");
    }
    // The default profile suggests: the check above can fail.
    let default = TestApp::spawn().await;
    let user = default.signup("bob").await;
    let answer = default
        .gql_as(&user.token, "{ patientz { nodes { id } } }", json!({}))
        .await;
    assert!(messages(&answer.body).contains("Did you mean"), "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_past_the_limit_are_refused() {
    let app = production().await;
    app.gql(&aliased(30), json!({})).await.assert_ok();
    let refused = app.gql(&aliased(31), json!({})).await;
    refused.assert_code("BAD_USER_INPUT");
    assert_eq!(refused.field(), Some("query"));
    assert!(refused.body.get("data").is_none(), "{}", refused.body);
    // Through a fragment spread twice: 2 × 16.
    let fields: Vec<String> = (0..16).map(|i| format!("f{i}: __typename")).collect();
    let spread = format!(
        "{{ ...F ... on Query {{ ...F }} }} fragment F on Query {{ {} }}",
        fields.join(" ")
    );
    app.gql(&spread, json!({})).await.assert_code("BAD_USER_INPUT");
    // A batch holding such an operation is refused whole.
    let batch = json!([{ "query": "{ __typename }" }, { "query": aliased(31) }]);
    let (status, body) = app.post_raw("application/json", batch.to_string()).await;
    assert_eq!(status, 400, "{body}");
    // The default limit is 100.
    let default = TestApp::spawn().await;
    default.gql(&aliased(100), json!({})).await.assert_ok();
    default
        .gql(&aliased(101), json!({}))
        .await
        .assert_code("BAD_USER_INPUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_past_the_limit_and_mutations_over_get_are_refused() {
    let app = production().await;
    let batch: Vec<Value> = (0..11).map(|_| json!({ "query": "{ __typename }" })).collect();
    let (status, body) = app.post_raw("application/json", Value::from(batch).to_string()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.get("data").is_none());
    let batch: Vec<Value> = (0..10).map(|_| json!({ "query": "{ __typename }" })).collect();
    let (status, _) = app.post_raw("application/json", Value::from(batch).to_string()).await;
    assert_eq!(status, 200);

    let get = reqwest::get(app.url("/graphql?query=mutation%20%7B%20logoutEverywhere%20%7D"))
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 405);
    assert_eq!(get.headers()["allow"], "GET, POST");
}
