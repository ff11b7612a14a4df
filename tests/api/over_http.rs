//! GraphQL over HTTP by its specification: the media type the client
//! accepts, the status codes of `application/graphql-response+json`, and
//! no `data` entry in the answer to a request error.

use serde_json::{Value, json};

use crate::common::TestApp;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// POSTs `body` with this `Accept` (none when `None`): status, content type
/// and JSON body.
async fn post(app: &TestApp, accept: Option<&str>, body: &Value) -> (u16, String, Value) {
    let mut req = reqwest::Client::new().post(app.url("/graphql")).json(body);
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    answer(req).await
}

async fn answer(req: reqwest::RequestBuilder) -> (u16, String, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, content_type, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_has_the_media_type_the_client_accepts() {
    let app = TestApp::spawn().await;
    let query = json!({ "query": "{ __typename }" });
    for (accept, status, content_type) in [
        (None, 200, "application/json"),
        (Some("*/*"), 200, "application/json"),
        (Some("application/json"), 200, "application/json"),
        (Some(GRAPHQL_RESPONSE), 200, GRAPHQL_RESPONSE),
        // Apollo Client's Accept.
        (
            Some("application/graphql-response+json,application/json;q=0.9"),
            200,
            GRAPHQL_RESPONSE,
        ),
        (Some("application/xml"), 406, "application/json"),
        (Some("text/html"), 406, "application/json"),
    ] {
        let (got, got_type, body) = post(&app, accept, &query).await;
        assert_eq!(got, status, "{accept:?}: {body}");
        assert!(got_type.starts_with(content_type), "{accept:?}: {got_type}");
        if status == 200 {
            assert_eq!(body, json!({ "data": { "__typename": "Query" } }), "{accept:?}");
        } else {
            assert_eq!(body["errors"][0]["extensions"]["field"], "Accept", "{body}");
            assert!(body.get("data").is_none(), "{body}");
        }
    }
    // GET: the same, and GraphiQL only for a browser with no query.
    let get = |accept: &'static str| {
        let url = app.url("/graphql?query=%7B__typename%7D");
        async move { answer(reqwest::Client::new().get(url).header("accept", accept)).await }
    };
    let (status, content_type, _) = get(GRAPHQL_RESPONSE).await;
    assert_eq!((status, content_type.starts_with(GRAPHQL_RESPONSE)), (200, true));
    assert_eq!(get("application/xml").await.0, 406);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_errors_have_no_data_and_their_status_by_media_type() {
    let app = TestApp::spawn().await;
    for (body, what) in [
        (json!({ "query": "{" }), "a document that does not parse"),
        (json!({ "query": "{ nope }" }), "a document that does not validate"),
        (
            json!({ "query": "query($id: ID!) { __typename }", "variables": { "id": null } }),
            "variables that do not coerce",
        ),
        (
            json!({ "query": "query A { __typename } query B { __typename }" }),
            "no operation named",
        ),
    ] {
        for (accept, status) in [
            (None, 200),
            (Some("application/json"), 200),
            (Some(GRAPHQL_RESPONSE), 400),
        ] {
            let (got, _, answer) = post(&app, accept, &body).await;
            assert_eq!(got, status, "{what}, {accept:?}: {answer}");
            assert!(answer.get("data").is_none(), "{what}, {accept:?}: {answer}");
            assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{answer}");
        }
    }
    // A syntax error in the specification's words, with its location.
    let (_, _, answer) = post(&app, None, &json!({ "query": "{ me { id }" })).await;
    let error = &answer["errors"][0];
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("Syntax Error: ") && !message.contains("-->"),
        "{message}"
    );
    assert_eq!(error["locations"][0]["line"], 1, "{answer}");

    // Execution started: a field's error keeps the data entry, and a 200.
    for accept in [None, Some(GRAPHQL_RESPONSE)] {
        let (status, _, answer) = post(&app, accept, &json!({ "query": "{ me { id } }" })).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer.get("data").is_some(), "{answer}");
        assert_eq!(answer["errors"][0]["path"][0], "me", "{answer}");
    }

    // In a batch, each item is shaped on its own; the batch is a 200.
    let batch = json!([{ "query": "{ __typename }" }, { "query": "{" }]);
    let (status, _, answer) = post(&app, Some(GRAPHQL_RESPONSE), &batch).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer[0]["data"]["__typename"], "Query");
    assert!(
        answer[1].get("data").is_none() && answer[1]["errors"].is_array(),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_are_checked_and_null_is_absent() {
    let app = TestApp::spawn().await;
    // null for an optional parameter is the same as leaving it out.
    for parameter in ["variables", "operationName", "extensions"] {
        let body = json!({ "query": "{ __typename }", parameter: null });
        let (status, _, answer) = post(&app, None, &body).await;
        assert_eq!((status, &answer), (200, &json!({ "data": { "__typename": "Query" } })));
    }
    // A missing query, or parameters of the wrong type: 400, naming it.
    for (body, field) in [
        (json!({ "qeury": "{ __typename }" }), "query"),
        (json!({ "query": null }), "query"),
        (json!({ "query": { "obj": "ect" } }), "body"),
        (json!({ "query": "{ __typename }", "variables": "string" }), "body"),
        (json!({ "query": "{ __typename }", "extensions": ["array"] }), "body"),
        (json!({ "query": "{ __typename }", "operationName": 0 }), "body"),
        (json!([{ "query": "{ __typename }" }, { "variables": {} }]), "query"),
    ] {
        for accept in [None, Some(GRAPHQL_RESPONSE)] {
            let (status, _, answer) = post(&app, accept, &body).await;
            assert_eq!(status, 400, "{body}: {answer}");
            assert_eq!(answer["errors"][0]["extensions"]["field"], field, "{body}: {answer}");
            assert!(answer.get("data").is_none(), "{answer}");
        }
    }
    // GET: variables must be a JSON object.
    for (query, field) in [
        ("variables=%7B%7D", "query"),
        ("query=%7B__typename%7D&variables=%5B1%5D", "variables"),
        ("query=%7B__typename%7D&variables=not-json", "variables"),
        ("query=%7B__typename%7D&extensions=1", "extensions"),
    ] {
        let url = app.url(&format!("/graphql?{query}"));
        let (status, _, answer) = answer(reqwest::Client::new().get(url)).await;
        assert_eq!(status, 400, "{query}: {answer}");
        assert_eq!(answer["errors"][0]["extensions"]["field"], field, "{query}: {answer}");
    }
    let url = app.url("/graphql?query=query%20T(%24n%3A%20String!)%20%7B%20__type(name%3A%20%24n)%20%7B%20name%20%7D%20%7D&variables=%7B%22n%22%3A%22Patient%22%7D");
    let (status, _, answer) = answer(reqwest::Client::new().get(url)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["__type"]["name"], "Patient");
}
