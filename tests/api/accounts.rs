//! Accounts: registration, login, throttling, refresh rotation, logout, and
//! the token checks that guard everything else.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::common::{JWT_SECRET, LOGOUT, ME, PASSWORD, REFRESH, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_then_me() {
    let app = TestApp::spawn().await;
    let resp = app.register("  Ann Example ", "Ann@Example.org", PASSWORD).await;
    let data = &resp.assert_ok()["register"];
    assert_eq!(data["tokenType"], "Bearer");
    assert_eq!(data["expiresIn"], 900);
    assert_eq!(data["user"]["name"], "Ann Example");
    assert_eq!(data["user"]["email"], "Ann@Example.org");
    assert_eq!(data["user"]["role"], "USER");
    let created_at = data["user"]["createdAt"].as_str().unwrap();
    assert!(created_at.ends_with('Z'), "{created_at}");

    let token = data["accessToken"].as_str().unwrap();
    let me = app.gql_as(token, ME, json!({})).await;
    assert_eq!(me.assert_ok()["me"]["id"], data["user"]["id"]);
    assert_eq!(me.data()["me"]["email"], "Ann@Example.org");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_are_unique_in_any_letter_case() {
    let app = TestApp::spawn().await;
    app.register("Ann", "ann@example.org", PASSWORD).await.assert_ok();
    let again = app.register("Other Ann", "ANN@EXAMPLE.ORG", PASSWORD).await;
    again.assert_code("CONFLICT");
    assert_eq!(again.field(), Some("email"));
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
    // And login finds the account whatever the case.
    app.login("aNn@ExAmPlE.oRg", PASSWORD).await.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_bounds() {
    let app = TestApp::spawn().await;
    let cases = [
        ("1234567", false),
        ("1234567x", true),
        ("12345678", false), // long enough, but among the most common
        (&*"a".repeat(72), true),
        (&*"a".repeat(73), false),
        (&*"é".repeat(8), true),    // 8 characters, 16 bytes
        (&*"é".repeat(36), true),   // 72 bytes
        (&*"é".repeat(37), false),  // 74 bytes
        (&*"😀".repeat(18), true),  // 72 bytes of 4-byte characters
        (&*"😀".repeat(19), false), // 76 bytes
        ("pass\u{0}word", false),
    ];
    for (i, (password, ok)) in cases.iter().enumerate() {
        let email = format!("user{i}@example.org");
        let resp = app.register("User", &email, password).await;
        if *ok {
            resp.assert_ok();
            app.login(&email, password).await.assert_ok();
        } else {
            resp.assert_code("BAD_USER_INPUT");
            assert_eq!(resp.field(), Some("password"), "{password:?}");
        }
    }
    let accepted = cases.iter().filter(|(_, ok)| *ok).count() as i64;
    assert_eq!(app.count("SELECT count(*) FROM users").await, accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_registrations_are_refused_and_write_nothing() {
    let app = TestApp::spawn().await;
    let long = "x".repeat(100_000);
    let cases: Vec<(String, String, String, &str)> = vec![
        ("".into(), "a@example.org".into(), PASSWORD.into(), "name"),
        ("   ".into(), "a@example.org".into(), PASSWORD.into(), "name"),
        ("x".repeat(201), "a@example.org".into(), PASSWORD.into(), "name"),
        (long.clone(), "a@example.org".into(), PASSWORD.into(), "name"),
        ("Ann\u{0}".into(), "a@example.org".into(), PASSWORD.into(), "name"),
        ("Ann".into(), "not-an-email".into(), PASSWORD.into(), "email"),
        ("Ann".into(), "a@b".into(), PASSWORD.into(), "email"),
        ("Ann".into(), format!("{long}@example.org"), PASSWORD.into(), "email"),
        (
            "Ann".into(),
            "'; DROP TABLE users; --@x.org".into(),
            PASSWORD.into(),
            "email",
        ),
        ("Ann".into(), "a@example.org".into(), long.clone(), "password"),
    ];
    for (name, email, password, field) in cases {
        let resp = app.register(&name, &email, &password).await;
        resp.assert_code("BAD_USER_INPUT");
        assert_eq!(resp.field(), Some(field), "{}", resp.body);
        let message = resp.body["errors"][0]["message"].as_str().unwrap();
        assert!(message.len() < 200, "the message echoes input: {message}");
    }
    // Missing, mistyped and unknown fields never reach the service.
    for input in [
        json!({ "name": "Ann", "email": "a@example.org" }),
        json!({ "name": "Ann", "email": "a@example.org", "password": 12345678 }),
        json!({ "name": "Ann", "email": "a@example.org", "password": PASSWORD, "role": "ADMIN" }),
        json!(null),
        json!("Ann"),
    ] {
        let resp = app.gql(crate::common::REGISTER, json!({ "input": input })).await;
        resp.assert_code("BAD_USER_INPUT");
    }
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_email_look_the_same() {
    let app = TestApp::spawn().await;
    app.signup("ann").await;
    let wrong = app.login("ann@example.org", "not the password").await;
    let unknown = app.login("nobody@example.org", "not the password").await;
    wrong.assert_code("UNAUTHENTICATED");
    unknown.assert_code("UNAUTHENTICATED");
    assert_eq!(wrong.body["errors"][0]["message"], unknown.body["errors"][0]["message"]);
    let over_long = app.login("ann@example.org", &"a".repeat(100)).await;
    over_long.assert_code("UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_failures_throttle_that_email_on_every_replica() {
    let app = TestApp::spawn().await;
    let replica = TestApp::spawn_on(&app.db_url, |_| {}).await;
    app.signup("ann").await;
    app.signup("bob").await;
    for i in 0..5 {
        let on = if i % 2 == 0 { &app } else { &replica };
        on.login("ANN@example.org", "wrong password")
            .await
            .assert_code("UNAUTHENTICATED");
    }
    // The right password no longer helps, on either replica, in any case.
    app.login("ann@example.org", PASSWORD)
        .await
        .assert_code("TOO_MANY_REQUESTS");
    replica
        .login("Ann@Example.org", PASSWORD)
        .await
        .assert_code("TOO_MANY_REQUESTS");
    // Other emails are not affected.
    app.login("bob@example.org", PASSWORD).await.assert_ok();
    // Once the window has passed, the account opens again.
    let client = crate::common::cluster::connect(&app.db_url).await.unwrap();
    client
        .execute("UPDATE login_failures SET at = at - interval '16 minutes'", &[])
        .await
        .unwrap();
    app.login("ann@example.org", PASSWORD).await.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;

    let first = app.gql(REFRESH, json!({ "t": ann.refresh })).await;
    let rotated = first.assert_ok()["refreshToken"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(rotated, ann.refresh);
    let access = first.data()["refreshToken"]["accessToken"].as_str().unwrap().to_owned();
    app.gql_as(&access, ME, json!({})).await.assert_ok();

    // Presenting the retired token again fails, and revokes the live one too.
    app.gql(REFRESH, json!({ "t": ann.refresh }))
        .await
        .assert_code("UNAUTHENTICATED");
    app.gql(REFRESH, json!({ "t": rotated }))
        .await
        .assert_code("UNAUTHENTICATED");
    // A fresh login still works.
    app.login(&ann.email, PASSWORD).await.assert_ok();
    // Only hashes are stored.
    let client = crate::common::cluster::connect(&app.db_url).await.unwrap();
    let rows = client
        .query("SELECT token_hash FROM refresh_tokens", &[])
        .await
        .unwrap();
    for row in rows {
        let hash: Vec<u8> = row.get(0);
        assert_eq!(hash.len(), 32);
        assert_ne!(URL_SAFE_NO_PAD.encode(&hash), ann.refresh);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_with_one_token_succeed_once() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let attempts = (0..6).map(|_| app.gql(REFRESH, json!({ "t": ann.refresh })));
    let results = futures_util::future::join_all(attempts).await;
    let ok = results.iter().filter(|r| r.body.get("errors").is_none()).count();
    assert_eq!(ok, 1, "{results:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_refresh_tokens_are_unauthenticated() {
    let app = TestApp::spawn().await;
    for token in ["", "garbage", &"A".repeat(43), &"x".repeat(10_000), "' OR 1=1 --"] {
        app.gql(REFRESH, json!({ "t": token }))
            .await
            .assert_code("UNAUTHENTICATED");
        let out = app.gql(LOGOUT, json!({ "t": token })).await;
        assert_eq!(out.assert_ok()["logout"], false);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_refresh_token() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    assert_eq!(
        app.gql(LOGOUT, json!({ "t": ann.refresh })).await.assert_ok()["logout"],
        true
    );
    assert_eq!(
        app.gql(LOGOUT, json!({ "t": ann.refresh })).await.assert_ok()["logout"],
        false
    );
    app.gql(REFRESH, json!({ "t": ann.refresh }))
        .await
        .assert_code("UNAUTHENTICATED");
}

fn sign(claims: &serde_json::Value, secret: &str, alg: Algorithm) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_or_stale_tokens_are_unauthenticated() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| {
        json!({ "sub": ann.id, "role": "ADMIN", "iat": now, "exp": exp,
                "iss": "healthcare-api", "aud": "healthcare-api" })
    };
    // The harness's own signature works, so the refusals below are about the token.
    app.gql_as(&sign(&claims(now + 60), JWT_SECRET, Algorithm::HS256), ME, json!({}))
        .await
        .assert_ok();

    let mut forged = vec![
        (
            "wrong key",
            sign(
                &claims(now + 60),
                "another-secret-another-secret-another",
                Algorithm::HS256,
            ),
        ),
        ("HS512", sign(&claims(now + 60), JWT_SECRET, Algorithm::HS512)),
        ("expired", sign(&claims(now - 120), JWT_SECRET, Algorithm::HS256)),
        ("garbage", "garbage".to_owned()),
        ("empty", String::new()),
        ("tampered", {
            let good = sign(&claims(now + 60), JWT_SECRET, Algorithm::HS256);
            let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
            parts[1] = URL_SAFE_NO_PAD.encode(claims(now + 3600).to_string());
            parts.join(".")
        }),
        ("alg none", {
            let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
            format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims(now + 60).to_string()))
        }),
    ];
    for (key, value) in [("aud", "other"), ("iss", "other")] {
        let mut c = claims(now + 60);
        c[key] = value.into();
        forged.push((key, sign(&c, JWT_SECRET, Algorithm::HS256)));
    }
    for missing in ["exp", "aud", "iss", "sub"] {
        let mut c = claims(now + 60);
        c.as_object_mut().unwrap().remove(missing);
        forged.push((missing, sign(&c, JWT_SECRET, Algorithm::HS256)));
    }
    for (what, token) in forged {
        let resp = app.gql_as(&token, ME, json!({})).await;
        assert_eq!(resp.code(), Some("UNAUTHENTICATED"), "{what}: {}", resp.body);
    }
    // No token at all.
    app.gql(ME, json!({})).await.assert_code("UNAUTHENTICATED");
    // Another scheme.
    let resp = app
        .client
        .post(app.url("/graphql"))
        .header("authorization", format!("Basic {}", ann.token))
        .json(&json!({ "query": ME }))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_operations_ignore_a_bad_token() {
    let app = TestApp::spawn().await;
    app.signup("ann").await;
    let resp = app
        .gql_as(
            "not-a-token",
            crate::common::LOGIN,
            json!({ "input": { "email": "ann@example.org", "password": PASSWORD } }),
        )
        .await;
    resp.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_users_token_is_refused() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let client = crate::common::cluster::connect(&app.db_url).await.unwrap();
    client.execute("DELETE FROM users", &[]).await.unwrap();
    app.gql_as(&ann.token, ME, json!({}))
        .await
        .assert_code("UNAUTHENTICATED");
}
