//! Sessions (a sign-in and its chain of refresh tokens) and the refusal of
//! access tokens issued before a revocation, on every replica.

use std::time::{Duration, Instant};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::common::{LOGIN, LOGOUT, ME, PASSWORD, REFRESH, TestApp};

/// The claims of an access token, read without checking it.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("JSON")
}

/// Waits up to `limit` for `token` to be refused on `app`; how long it took.
async fn refused_within(app: &TestApp, token: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let answer = app.gql_as(token, ME, json!({})).await;
        if answer.code() == Some("UNAUTHENTICATED") {
            return started.elapsed();
        }
        answer.assert_ok();
        assert!(
            started.elapsed() < limit,
            "the token was still accepted after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A login from a client whose User-Agent is "Clinic Phone/2.1": its `login` answer.
async fn login_from_phone(app: &TestApp, email: &str) -> Value {
    let phone = reqwest::Client::builder()
        .user_agent("Clinic Phone/2.1")
        .build()
        .unwrap();
    let login = app
        .gql_on(
            &phone,
            None,
            LOGIN,
            json!({ "input": { "email": email, "password": PASSWORD } }),
        )
        .await;
    login.assert_ok()["login"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sign_in_is_a_session_with_its_user_agent() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let login = login_from_phone(&app, &ann.email).await;
    let (register_sid, login_sid) = (
        claims(&ann.token)["sid"].clone(),
        claims(login["accessToken"].as_str().unwrap())["sid"].clone(),
    );
    assert!(register_sid.is_string() && login_sid.is_string() && register_sid != login_sid);
    assert_eq!(claims(&ann.token)["ver"], 0);
    let agent = |sid: &Value| {
        format!(
            "SELECT count(*) FROM sessions WHERE id = '{}' AND user_agent = 'Clinic Phone/2.1'",
            sid.as_str().unwrap()
        )
    };
    assert_eq!(app.count(&agent(&login_sid)).await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE ended_at IS NULL").await,
        2
    );

    // A refresh carries the session on (same id, later use); logout ends it.
    let refreshed = app.gql(REFRESH, json!({ "t": login["refreshToken"] })).await;
    let refreshed = refreshed.assert_ok()["refreshToken"].clone();
    assert_eq!(claims(refreshed["accessToken"].as_str().unwrap())["sid"], login_sid);
    let used = format!(
        "SELECT count(*) FROM sessions WHERE id = '{}' AND last_used_at > created_at",
        login_sid.as_str().unwrap()
    );
    assert_eq!(app.count(&used).await, 1);
    app.gql(LOGOUT, json!({ "t": refreshed["refreshToken"] }))
        .await
        .assert_ok();
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE ended_at IS NULL").await,
        1
    );

    // Presenting a retired refresh token ends every session of the user.
    app.gql(REFRESH, json!({ "t": ann.refresh })).await.assert_ok();
    app.gql(REFRESH, json!({ "t": ann.refresh }))
        .await
        .assert_code("UNAUTHENTICATED");
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE ended_at IS NULL").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raised_token_version_refuses_older_tokens_on_every_replica() {
    let app = TestApp::spawn().await;
    let replica = TestApp::spawn_on(&app.db_url, |_| {}).await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    replica.gql_as(&ann.token, ME, json!({})).await.assert_ok();
    // What a password change or logging out everywhere does to the user.
    let db = crate::common::cluster::connect(&app.db_url).await.unwrap();
    db.execute(
        "UPDATE users SET token_version = token_version + 1, tokens_revoked_at = now() WHERE id = $1::text::uuid",
        &[&ann.id],
    )
    .await
    .unwrap();
    for on in [&app, &replica] {
        let took = refused_within(on, &ann.token, Duration::from_secs(10)).await;
        println!("refused after {took:?}");
    }
    // Bob's token is untouched; Ann's new tokens carry the new version.
    replica.gql_as(&bob.token, ME, json!({})).await.assert_ok();
    let again = app.login(&ann.email, PASSWORD).await;
    let token = again.assert_ok()["login"]["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(claims(&token)["ver"], 1);
    replica.gql_as(&token, ME, json!({})).await.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_user_cannot_sign_in_refresh_or_use_a_token() {
    let app = TestApp::spawn().await;
    let replica = TestApp::spawn_on(&app.db_url, |_| {}).await;
    let ann = app.signup("ann").await;
    let db = crate::common::cluster::connect(&app.db_url).await.unwrap();
    db.execute(
        "UPDATE users SET disabled_at = now(), token_version = token_version + 1, tokens_revoked_at = now() \
         WHERE id = $1::text::uuid",
        &[&ann.id],
    )
    .await
    .unwrap();
    refused_within(&replica, &ann.token, Duration::from_secs(10)).await;
    let login = app.login(&ann.email, PASSWORD).await;
    login.assert_code("UNAUTHENTICATED");
    assert!(
        login.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("disabled")
    );
    app.gql(REFRESH, json!({ "t": ann.refresh }))
        .await
        .assert_code("UNAUTHENTICATED");
    // A wrong password says nothing about the account.
    let wrong = app.login(&ann.email, "not the password at all").await;
    assert!(
        !wrong.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("disabled")
    );
    // Enabled again (also published to every replica), the user signs in.
    db.execute(
        "UPDATE users SET disabled_at = NULL, tokens_revoked_at = now() WHERE id = $1::text::uuid",
        &[&ann.id],
    )
    .await
    .unwrap();
    let login = app.login(&ann.email, PASSWORD).await;
    let token = login.assert_ok()["login"]["accessToken"].as_str().unwrap().to_owned();
    let started = Instant::now();
    while replica.gql_as(&token, ME, json!({})).await.code().is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still refused on the replica"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const SESSIONS: &str = "{ sessions { id createdAt lastUsedAt userAgent current } }";
const CHANGE: &str = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { accessToken refreshToken user { id } } }";
const NEW_PASSWORD: &str = "a brand new passphrase";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_listed_and_revoked_one_by_one() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    let second = login_from_phone(&app, &ann.email).await;

    let listed = app.gql_as(&ann.token, SESSIONS, json!({})).await;
    let sessions = listed.assert_ok()["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2);
    // Newest first; the asking token's session is the current one.
    assert_eq!(sessions[0]["userAgent"], "Clinic Phone/2.1");
    assert_eq!(sessions[0]["current"], false);
    assert_eq!(sessions[1]["current"], true);
    assert_eq!(sessions[1]["id"], claims(&ann.token)["sid"]);

    // Bob cannot end Ann's session: it is like one that does not exist.
    let phone_session = sessions[0]["id"].as_str().unwrap().to_owned();
    const REVOKE: &str = "mutation($id: ID!) { revokeSession(id: $id) }";
    let theirs = app.gql_as(&bob.token, REVOKE, json!({ "id": phone_session })).await;
    assert_eq!(theirs.assert_ok()["revokeSession"], false);
    // Ann can: its refresh token stops working, the other session lives on.
    let mine = app.gql_as(&ann.token, REVOKE, json!({ "id": phone_session })).await;
    assert_eq!(mine.assert_ok()["revokeSession"], true);
    let again = app.gql_as(&ann.token, REVOKE, json!({ "id": phone_session })).await;
    assert_eq!(again.assert_ok()["revokeSession"], false);
    app.gql(REFRESH, json!({ "t": second["refreshToken"] }))
        .await
        .assert_code("UNAUTHENTICATED");
    let listed = app.gql_as(&ann.token, SESSIONS, json!({})).await;
    assert_eq!(listed.assert_ok()["sessions"].as_array().unwrap().len(), 1);
    let events = "SELECT count(*) FROM audit_events WHERE action = 'SESSION_REVOKED'";
    assert_eq!(app.count(events).await, 1);
    // Bad ids change nothing.
    for bad in ["", "nope", "'; DROP TABLE sessions; --", &"9".repeat(5000)] {
        let answer = app.gql_as(&ann.token, REVOKE, json!({ "id": bad })).await;
        answer.assert_code("BAD_USER_INPUT");
    }
    // Without a token, nothing.
    app.gql(SESSIONS, json!({})).await.assert_code("UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_everywhere_ends_every_session_and_token_on_every_replica() {
    let app = TestApp::spawn().await;
    let replica = TestApp::spawn_on(&app.db_url, |_| {}).await;
    let ann = app.signup("ann").await;
    let other = app.login(&ann.email, PASSWORD).await;
    let other = other.assert_ok()["login"].clone();
    let done = app.gql_as(&ann.token, "mutation { logoutEverywhere }", json!({})).await;
    assert_eq!(done.assert_ok()["logoutEverywhere"], true);
    // At once here, within 10 s on the other replica, for both sessions' tokens.
    app.gql_as(&ann.token, ME, json!({}))
        .await
        .assert_code("UNAUTHENTICATED");
    refused_within(
        &replica,
        other["accessToken"].as_str().unwrap(),
        Duration::from_secs(10),
    )
    .await;
    refused_within(&replica, &ann.token, Duration::from_secs(10)).await;
    for refresh in [ann.refresh.as_str(), other["refreshToken"].as_str().unwrap()] {
        replica
            .gql(REFRESH, json!({ "t": refresh }))
            .await
            .assert_code("UNAUTHENTICATED");
    }
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE ended_at IS NULL").await,
        0
    );
    // Signing in again works, on either replica.
    let back = replica.login(&ann.email, PASSWORD).await;
    let token = back.assert_ok()["login"]["accessToken"].as_str().unwrap().to_owned();
    app.gql_as(&token, ME, json!({})).await.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password_keeps_this_session_and_ends_the_others() {
    let app = TestApp::spawn().await;
    let replica = TestApp::spawn_on(&app.db_url, |_| {}).await;
    let ann = app.signup("ann").await;
    let other = app.login(&ann.email, PASSWORD).await;
    let other = other.assert_ok()["login"].clone();

    // Bad input, each on its field, changes nothing.
    let cases = [
        ("not my password", NEW_PASSWORD, "currentPassword"),
        ("", NEW_PASSWORD, "currentPassword"),
        (PASSWORD, "short", "newPassword"),
        (PASSWORD, "password1", "newPassword"),
        (PASSWORD, &*"x".repeat(73), "newPassword"),
        (PASSWORD, "nul\u{0}in the middle", "newPassword"),
        (PASSWORD, PASSWORD, "newPassword"),
    ];
    for (current, new, field) in cases {
        let answer = app.gql_as(&ann.token, CHANGE, json!({ "c": current, "n": new })).await;
        answer.assert_code("BAD_USER_INPUT");
        assert_eq!(answer.field(), Some(field), "{current:?} {new:?}");
    }
    app.gql_as(&ann.token, ME, json!({})).await.assert_ok();
    app.gql(CHANGE, json!({ "c": PASSWORD, "n": NEW_PASSWORD }))
        .await
        .assert_code("UNAUTHENTICATED");

    let changed = app
        .gql_as(&ann.token, CHANGE, json!({ "c": PASSWORD, "n": NEW_PASSWORD }))
        .await;
    let fresh = changed.assert_ok()["changePassword"].clone();
    let fresh_token = fresh["accessToken"].as_str().unwrap();
    // The fresh pair belongs to this client's session, under the new version.
    assert_eq!(claims(fresh_token)["sid"], claims(&ann.token)["sid"]);
    assert_eq!(claims(fresh_token)["ver"], 1);
    replica.gql_as(fresh_token, ME, json!({})).await.assert_ok();
    // Every older access token is refused, on both replicas.
    app.gql_as(&ann.token, ME, json!({}))
        .await
        .assert_code("UNAUTHENTICATED");
    refused_within(
        &replica,
        other["accessToken"].as_str().unwrap(),
        Duration::from_secs(10),
    )
    .await;
    // The other session is over; this one's older refresh token too.
    app.gql(REFRESH, json!({ "t": other["refreshToken"] }))
        .await
        .assert_code("UNAUTHENTICATED");
    let listed = app.gql_as(fresh_token, SESSIONS, json!({})).await;
    let sessions = listed.assert_ok()["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["current"], true);
    // The old password is refused, the new one works.
    app.login(&ann.email, PASSWORD).await.assert_code("UNAUTHENTICATED");
    app.login(&ann.email, NEW_PASSWORD).await.assert_ok();
    let events = "SELECT count(*) FROM audit_events WHERE action = 'PASSWORD_CHANGED'";
    assert_eq!(app.count(events).await, 1);
}

const USERS: &str = "query($first: Int, $after: String, $search: String) { users(first: $first, after: $after, search: $search) { totalCount nodes { id name email role disabled } pageInfo { hasNextPage endCursor } } }";
const DISABLE: &str =
    "mutation($id: ID!, $d: Boolean!) { setUserDisabled(id: $id, disabled: $d) { id email disabled } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_list_users_and_disable_them_on_every_replica() {
    let app = TestApp::spawn().await;
    let replica = TestApp::spawn_on(&app.db_url, |_| {}).await;
    let admin = app.admin("root").await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;

    // Only admins.
    app.gql_as(&ann.token, USERS, json!({})).await.assert_code("FORBIDDEN");
    let refused = app
        .gql_as(&ann.token, DISABLE, json!({ "id": bob.id, "d": true }))
        .await;
    refused.assert_code("FORBIDDEN");
    // Paged by name, with search over name and email.
    let page = app.gql_as(&admin.token, USERS, json!({ "first": 2 })).await;
    let page = page.assert_ok()["users"].clone();
    assert_eq!(page["totalCount"], 3);
    assert_eq!(page["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(page["nodes"][0]["name"], "ann");
    assert_eq!(page["nodes"][0]["email"], "ann@example.org");
    assert_eq!(page["nodes"][0]["disabled"], false);
    let rest = app
        .gql_as(
            &admin.token,
            USERS,
            json!({ "first": 2, "after": page["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(rest.assert_ok()["users"]["nodes"].as_array().unwrap().len(), 1);
    let found = app.gql_as(&admin.token, USERS, json!({ "search": "BOB@EX" })).await;
    assert_eq!(found.assert_ok()["users"]["nodes"][0]["id"], bob.id.as_str());
    for (variables, field) in [
        (json!({ "first": 0 }), "first"),
        (json!({ "first": 101 }), "first"),
        (json!({ "after": "garbage" }), "after"),
        (json!({ "search": "x".repeat(201) }), "search"),
    ] {
        let answer = app.gql_as(&admin.token, USERS, variables).await;
        answer.assert_code("BAD_USER_INPUT");
        assert_eq!(answer.field(), Some(field));
    }

    // Others never see whether a user is disabled.
    let theirs = app.gql_as(&ann.token, "{ me { disabled } }", json!({})).await;
    assert_eq!(theirs.assert_ok()["me"]["disabled"], false);

    // An admin cannot disable themself; a missing user is NOT_FOUND.
    let own = app
        .gql_as(&admin.token, DISABLE, json!({ "id": admin.id, "d": true }))
        .await;
    own.assert_code("BAD_USER_INPUT");
    let missing = app
        .gql_as(
            &admin.token,
            DISABLE,
            json!({ "id": uuid::Uuid::new_v4().to_string(), "d": true }),
        )
        .await;
    missing.assert_code("NOT_FOUND");

    let disabled = app
        .gql_as(&admin.token, DISABLE, json!({ "id": ann.id, "d": true }))
        .await;
    assert_eq!(disabled.assert_ok()["setUserDisabled"]["disabled"], true);
    app.gql_as(&ann.token, ME, json!({}))
        .await
        .assert_code("UNAUTHENTICATED");
    refused_within(&replica, &ann.token, Duration::from_secs(10)).await;
    replica.login(&ann.email, PASSWORD).await.assert_code("UNAUTHENTICATED");
    replica
        .gql(REFRESH, json!({ "t": ann.refresh }))
        .await
        .assert_code("UNAUTHENTICATED");
    // Bob is untouched.
    replica.gql_as(&bob.token, ME, json!({})).await.assert_ok();

    let enabled = app
        .gql_as(&admin.token, DISABLE, json!({ "id": ann.id, "d": false }))
        .await;
    assert_eq!(enabled.assert_ok()["setUserDisabled"]["disabled"], false);
    let back = replica.login(&ann.email, PASSWORD).await;
    let token = back.assert_ok()["login"]["accessToken"].as_str().unwrap().to_owned();
    let started = Instant::now();
    while app.gql_as(&token, ME, json!({})).await.code().is_some() {
        assert!(started.elapsed() < Duration::from_secs(10), "still refused");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for action in ["USER_DISABLED", "USER_ENABLED"] {
        let sql = format!(
            "SELECT count(*) FROM audit_events WHERE action = '{action}' AND actor_id = '{}'",
            admin.id
        );
        assert_eq!(app.count(&sql).await, 1, "{action}");
    }
}
