//! Per-client limits on account attempts (`AUTH_RATE_LIMIT`,
//! `TRUSTED_PROXY_HOPS`), with real client addresses: 127.0.0.2 and
//! 127.0.0.3 are two clients of the same loopback server.

use serde_json::json;

use crate::common::{LOGIN, PASSWORD, REFRESH, REGISTER, Rest, TestApp};

const FIRST: &str = "127.0.0.2";
const SECOND: &str = "127.0.0.3";

async fn limited_app(rate: &str, hops: &str) -> TestApp {
    let (rate, hops) = (rate.to_owned(), hops.to_owned());
    TestApp::spawn_with(move |s| {
        s.insert("AUTH_RATE_LIMIT".into(), rate);
        s.insert("TRUSTED_PROXY_HOPS".into(), hops);
    })
    .await
}

/// A REST login from `client`, with an `X-Forwarded-For` if given.
async fn rest_login(app: &TestApp, client: &reqwest::Client, email: &str, forwarded: Option<&str>) -> Rest {
    let mut req = client
        .post(app.url("/api/auth/login"))
        .json(&json!({ "email": email, "password": PASSWORD }));
    if let Some(forwarded) = forwarded {
        req = req.header("x-forwarded-for", forwarded);
    }
    TestApp::rest_answer(req).await
}

fn assert_limited(rest: &Rest) {
    rest.assert_error(429, "TOO_MANY_REQUESTS", None);
    let wait: u64 = rest
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_is_limited_and_another_is_not() {
    let app = limited_app("4/min", "0").await;
    let ann = app.signup("ann").await; // from 127.0.0.1: its own allowance
    let first = TestApp::client_from(FIRST);
    let second = TestApp::client_from(SECOND);

    // GraphQL and REST draw on one allowance: register, login, refresh.
    let registered = app
        .gql_on(
            &first,
            None,
            REGISTER,
            json!({ "input": { "name": "Bo", "email": "bo@example.org", "password": PASSWORD } }),
        )
        .await;
    let refresh = registered.assert_ok()["register"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(rest_login(&app, &first, "ann@example.org", None).await.status, 200);
    app.gql_on(&first, None, REFRESH, json!({ "t": refresh }))
        .await
        .assert_ok();
    let wrong = app
        .gql_on(
            &first,
            None,
            LOGIN,
            json!({ "input": { "email": "ann@example.org", "password": "not it at all" } }),
        )
        .await;
    wrong.assert_code("UNAUTHENTICATED");

    // The fifth attempt, in either transport, is refused before it runs.
    assert_limited(&rest_login(&app, &first, "ann@example.org", None).await);
    let refused = app
        .gql_on(
            &first,
            None,
            REGISTER,
            json!({ "input": { "name": "Cy", "email": "cy@example.org", "password": PASSWORD } }),
        )
        .await;
    refused.assert_code("TOO_MANY_REQUESTS");
    let retry_after = refused.body["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .expect("retryAfter");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE email = 'cy@example.org'")
            .await,
        0
    );

    // The other address, and the token already issued, are untouched.
    assert_eq!(rest_login(&app, &second, "ann@example.org", None).await.status, 200);
    app.gql_as(&ann.token, "{ me { id } }", json!({})).await.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_forwarded_for_does_not_escape_the_limit() {
    let app = limited_app("2/min", "0").await;
    app.signup("ann").await;
    let first = TestApp::client_from(FIRST);
    for (i, forged) in [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "203.0.113.9, 198.51.100.4",
    ]
    .into_iter()
    .enumerate()
    {
        let answer = rest_login(&app, &first, "ann@example.org", Some(forged)).await;
        if i < 2 {
            assert_eq!(answer.status, 200, "{forged}");
        } else {
            assert_limited(&answer);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_one_trusted_proxy_its_forwarded_for_names_the_client() {
    let app = limited_app("2/min", "1").await;
    app.signup("ann").await;
    // 127.0.0.2 plays the proxy: each client address it names has its own
    // allowance, and only the entry the proxy appended (the last) counts.
    let proxy = TestApp::client_from(FIRST);
    for _ in 0..2 {
        let answer = rest_login(&app, &proxy, "ann@example.org", Some("198.51.100.1")).await;
        assert_eq!(answer.status, 200);
    }
    assert_limited(&rest_login(&app, &proxy, "ann@example.org", Some("198.51.100.1")).await);
    // What the client wrote in front of the proxy's entry changes nothing.
    let forged = rest_login(&app, &proxy, "ann@example.org", Some("203.0.113.9, 198.51.100.1")).await;
    assert_limited(&forged);
    // Another client through the same proxy has its own allowance.
    let other = rest_login(&app, &proxy, "ann@example.org", Some("198.51.100.2")).await;
    assert_eq!(other.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_limit_settings_stop_start_up() {
    let db = crate::common::cluster::cluster().database(true).await;
    for (rate, hops) in [
        ("20", "0"),
        ("0/min", "0"),
        ("20/fortnight", "0"),
        ("20/min", "-1"),
        ("20/min", "x"),
    ] {
        let (rate_s, hops_s) = (rate.to_owned(), hops.to_owned());
        let err = TestApp::try_spawn_on(&db.url, move |s| {
            s.insert("AUTH_RATE_LIMIT".into(), rate_s);
            s.insert("TRUSTED_PROXY_HOPS".into(), hops_s);
        })
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        let setting = if hops == "0" {
            "AUTH_RATE_LIMIT"
        } else {
            "TRUSTED_PROXY_HOPS"
        };
        assert!(err.contains(setting), "{rate} {hops}: {err}");
    }
}
