//! The second factor: enrolling an authenticator app, logging in with its
//! codes (one step of skew, no replay) or a recovery code (once), MFA over
//! REST, turning it off, and bad codes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use totp_rs::Totp;

use crate::common::{LOGIN, ME, PASSWORD, TestApp, TestUser};

const BEGIN: &str = "mutation { beginTotpEnrollment { secret otpauthUri qrCodeSvg } }";
const CONFIRM: &str = "mutation($code: String!) { confirmTotp(code: $code) }";
const DISABLE: &str = "mutation($p: String!, $code: String!) { disableTotp(password: $p, code: $code) }";
const MFA: &str = "{ me { mfaEnabled } }";
const STEP: u64 = 30;

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Waits until at least `needed` seconds are left in the current 30-second
/// step, so that a test's steps do not roll over under it; the step.
async fn fresh_step(needed: u64) -> u64 {
    loop {
        let now = unix_now();
        if STEP - now % STEP >= needed {
            return now / STEP;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The user's authenticator app: what an app makes of the enrollment's URI.
struct App(Totp);

impl App {
    fn from(enrollment: &Value) -> Self {
        let uri = enrollment["otpauthUri"].as_str().unwrap();
        let totp = Totp::from_url(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
        assert_eq!(totp.secret().to_base32(), enrollment["secret"].as_str().unwrap());
        Self(totp)
    }

    /// The code of a step.
    fn code(&self, step: u64) -> String {
        self.0.generate(step * STEP).to_string()
    }
}

/// Enrolls an app for the user and turns MFA on with the code of
/// `confirm_step`; the app and the recovery codes.
async fn turn_on(app: &TestApp, user: &TestUser, confirm_step: u64) -> (App, Vec<String>) {
    let enrollment = app.gql_as(&user.token, BEGIN, json!({})).await;
    let authenticator = App::from(&enrollment.assert_ok()["beginTotpEnrollment"]);
    let confirmed = app
        .gql_as(
            &user.token,
            CONFIRM,
            json!({ "code": authenticator.code(confirm_step) }),
        )
        .await;
    let codes = confirmed.assert_ok()["confirmTotp"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (authenticator, codes)
}

async fn login_with(app: &TestApp, user: &TestUser, password: &str, code: Option<&str>) -> crate::common::Gql {
    let mut input = json!({ "email": user.email, "password": password });
    if let Some(code) = code {
        input["totpCode"] = code.into();
    }
    app.gql(LOGIN, json!({ "input": input })).await
}

async fn mfa_enabled(app: &TestApp, token: &str) -> Value {
    app.gql_as(token, MFA, json!({})).await.assert_ok()["me"]["mfaEnabled"].clone()
}

async fn audit_count(app: &TestApp, action: &str, user: &TestUser) -> i64 {
    app.count(&format!(
        "SELECT count(*) FROM audit_events WHERE action = '{action}' AND entity_id = '{}'",
        user.id
    ))
    .await
}

async fn failures(app: &TestApp, user: &TestUser) -> i64 {
    app.count(&format!(
        "SELECT count(*) FROM login_failures WHERE email_key = '{}'",
        user.email
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolling_turns_mfa_on_and_login_then_needs_a_code_once() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    assert_eq!(mfa_enabled(&app, &ann.token).await, false);

    // The enrollment: a secret, its URI and a QR code of it.
    let step = fresh_step(20).await;
    let enrollment = app.gql_as(&ann.token, BEGIN, json!({})).await;
    let enrollment = enrollment.assert_ok()["beginTotpEnrollment"].clone();
    let uri = enrollment["otpauthUri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Healthcare%20API:ann%40example.org?"),
        "{uri}"
    );
    assert!(uri.contains("issuer=Healthcare%20API"), "{uri}");
    let svg = enrollment["qrCodeSvg"].as_str().unwrap();
    assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
    let authenticator = App::from(&enrollment);
    // Kept encrypted: the secret's bytes are not in the database.
    let secret = authenticator.0.secret().as_ref().to_vec();
    let db = crate::common::cluster::connect(&app.db_url).await.unwrap();
    let sealed: Vec<u8> = db
        .query_one("SELECT sealed_secret FROM totp_secrets", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_slice()));

    // Not on until confirmed: a login needs no code yet.
    assert_eq!(mfa_enabled(&app, &ann.token).await, false);
    login_with(&app, &ann, PASSWORD, None).await.assert_ok();
    let wrong = app
        .gql_as(&ann.token, CONFIRM, json!({ "code": authenticator.code(step + 5) }))
        .await;
    wrong.assert_code("BAD_USER_INPUT");
    assert_eq!(wrong.field(), Some("code"));
    let confirmed = app
        .gql_as(&ann.token, CONFIRM, json!({ "code": authenticator.code(step) }))
        .await;
    let codes = confirmed.assert_ok()["confirmTotp"].as_array().unwrap().clone();
    assert_eq!(codes.len(), 10);
    let unique: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(unique.len(), 10);
    assert!(codes.iter().all(|c| c.as_str().unwrap().len() == 19), "{codes:?}");
    assert_eq!(mfa_enabled(&app, &ann.token).await, true);
    assert_eq!(audit_count(&app, "MFA_ENABLED", &ann).await, 1);
    // Kept only as hashes.
    for code in &codes {
        let plain = code.as_str().unwrap().replace('-', "");
        let found = app
            .count(&format!(
                "SELECT count(*) FROM recovery_codes WHERE encode(code_hash, 'escape') LIKE '%{plain}%'"
            ))
            .await;
        assert_eq!(found, 0);
    }
    // A second enrollment while MFA is on would replace the app unseen.
    app.gql_as(&ann.token, BEGIN, json!({})).await.assert_code("CONFLICT");

    // A login now needs a code; a blank one is none. A wrong password is
    // still just wrong: MFA_REQUIRED says the password was right.
    for code in [None, Some(""), Some("  ")] {
        let needed = login_with(&app, &ann, PASSWORD, code).await;
        needed.assert_code("MFA_REQUIRED");
        assert_eq!(needed.field(), Some("totpCode"));
    }
    login_with(&app, &ann, "not the password", None)
        .await
        .assert_code("UNAUTHENTICATED");

    // The code that turned MFA on was used: replayed, it is refused.
    let before = failures(&app, &ann).await;
    login_with(&app, &ann, PASSWORD, Some(&authenticator.code(step)))
        .await
        .assert_code("UNAUTHENTICATED");
    assert_eq!(failures(&app, &ann).await, before + 1, "a wrong code is a failed login");
    // The next step's code (a clock one step ahead) is accepted, once; then
    // no older code is.
    let next = authenticator.code(step + 1);
    let login = login_with(&app, &ann, PASSWORD, Some(&format!("{} {}", &next[..3], &next[3..]))).await;
    let token = login.assert_ok()["login"]["accessToken"].as_str().unwrap().to_owned();
    app.gql_as(&token, ME, json!({})).await.assert_ok();
    login_with(&app, &ann, PASSWORD, Some(&next))
        .await
        .assert_code("UNAUTHENTICATED");
    login_with(&app, &ann, PASSWORD, Some(&authenticator.code(step)))
        .await
        .assert_code("UNAUTHENTICATED");
    assert_eq!(failures(&app, &ann).await, before + 3);
    assert_eq!(audit_count(&app, "LOGIN_FAILED", &ann).await, before + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_one_step_either_side_are_accepted_and_two_steps_away_are_not() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let step = fresh_step(15).await;
    // Confirmed with the previous step's code: a clock one step behind.
    let (authenticator, _) = turn_on(&app, &ann, step - 1).await;
    let in_window = [step - 1, step, step + 1].map(|s| authenticator.code(s));
    for far in [step - 2, step + 2, step + 3] {
        let code = authenticator.code(far);
        if in_window.contains(&code) {
            continue; // one chance in a million
        }
        login_with(&app, &ann, PASSWORD, Some(&code))
            .await
            .assert_code("UNAUTHENTICATED");
    }
    login_with(&app, &ann, PASSWORD, Some(&authenticator.code(step)))
        .await
        .assert_ok();
    login_with(&app, &ann, PASSWORD, Some(&authenticator.code(step + 1)))
        .await
        .assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_typed_as_its_step_ends_is_accepted_in_the_next() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let step = fresh_step(3).await;
    // Turned on with the step before, so that this step's code is unused.
    let (authenticator, _) = turn_on(&app, &ann, step - 1).await;
    // The user reads the code in the last second of a step and sends it
    // when the next step has begun.
    let edge = loop {
        let now = unix_now();
        if now % STEP == STEP - 1 && now / STEP >= step {
            break now / STEP;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let code = authenticator.code(edge);
    while unix_now() / STEP == edge {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    login_with(&app, &ann, PASSWORD, Some(&code)).await.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_code_sent_twice_at_once_signs_in_once() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let step = fresh_step(15).await;
    let (authenticator, _) = turn_on(&app, &ann, step).await;
    let code = authenticator.code(step + 1);
    let (a, b) = tokio::join!(
        login_with(&app, &ann, PASSWORD, Some(&code)),
        login_with(&app, &ann, PASSWORD, Some(&code))
    );
    let ok = [&a, &b].iter().filter(|g| g.body.get("errors").is_none()).count();
    assert_eq!(ok, 1, "{} {}", a.body, b.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_code_signs_in_once() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let (_, codes) = turn_on(&app, &ann, fresh_step(5).await).await;
    login_with(&app, &ann, PASSWORD, Some(&codes[0])).await.assert_ok();
    login_with(&app, &ann, PASSWORD, Some(&codes[0]))
        .await
        .assert_code("UNAUTHENTICATED");
    // Typed without dashes, in capitals: the same code.
    let typed = codes[1].replace('-', "").to_uppercase();
    login_with(&app, &ann, PASSWORD, Some(&typed)).await.assert_ok();
    // Another user's code is not ann's.
    let bob = app.signup("bob").await;
    let (_, bobs) = turn_on(&app, &bob, fresh_step(5).await).await;
    login_with(&app, &ann, PASSWORD, Some(&bobs[0]))
        .await
        .assert_code("UNAUTHENTICATED");
    login_with(&app, &bob, PASSWORD, Some(&bobs[0])).await.assert_ok();
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM recovery_codes WHERE user_id = '{}' AND used_at IS NULL",
            ann.id
        ))
        .await,
        8
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_login_takes_the_second_factor() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let step = fresh_step(10).await;
    let (authenticator, codes) = turn_on(&app, &ann, step).await;
    let login = |body: Value| {
        let app = &app;
        async move { app.rest("POST", "/api/auth/login", None, Some(body)).await }
    };
    let needed = login(json!({ "email": ann.email, "password": PASSWORD })).await;
    needed.assert_error(401, "MFA_REQUIRED", Some("totpCode"));
    assert_eq!(needed.header("www-authenticate"), Some("Bearer"));
    let wrong = login(json!({ "email": ann.email, "password": PASSWORD, "totpCode": authenticator.code(step) })).await;
    wrong.assert_error(401, "UNAUTHENTICATED", None);
    for (bad, field) in [
        (json!("12ab56"), "totpCode"),
        (json!("1".repeat(65)), "totpCode"),
        (json!(123456), "totpCode"),
        (json!(["123456"]), "totpCode"),
    ] {
        let answer = login(json!({ "email": ann.email, "password": PASSWORD, "totpCode": bad })).await;
        answer.assert_error(400, "BAD_USER_INPUT", Some(field));
    }
    let ok = login(json!({ "email": ann.email, "password": PASSWORD, "totpCode": authenticator.code(step + 1) })).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body["accessToken"].is_string());
    let ok = login(json!({ "email": ann.email, "password": PASSWORD, "totpCode": codes[3] })).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_needs_the_password_and_a_code() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    // Off already: nothing to turn off.
    let off = app
        .gql_as(&ann.token, DISABLE, json!({ "p": PASSWORD, "code": "123456" }))
        .await;
    assert_eq!(off.assert_ok()["disableTotp"], false);
    let step = fresh_step(10).await;
    let (authenticator, codes) = turn_on(&app, &ann, step).await;

    let wrong_password = app
        .gql_as(
            &ann.token,
            DISABLE,
            json!({ "p": "not the password", "code": authenticator.code(step + 1) }),
        )
        .await;
    wrong_password.assert_code("BAD_USER_INPUT");
    assert_eq!(wrong_password.field(), Some("password"));
    let wrong_code = app
        .gql_as(
            &ann.token,
            DISABLE,
            json!({ "p": PASSWORD, "code": authenticator.code(step) }),
        )
        .await;
    wrong_code.assert_code("BAD_USER_INPUT");
    assert_eq!(wrong_code.field(), Some("code"));
    assert_eq!(failures(&app, &ann).await, 2, "each counts as a failed login");
    assert_eq!(mfa_enabled(&app, &ann.token).await, true);

    let disabled = app
        .gql_as(&ann.token, DISABLE, json!({ "p": PASSWORD, "code": codes[9] }))
        .await;
    assert_eq!(disabled.assert_ok()["disableTotp"], true);
    assert_eq!(mfa_enabled(&app, &ann.token).await, false);
    assert_eq!(audit_count(&app, "MFA_DISABLED", &ann).await, 1);
    for table in ["totp_secrets", "recovery_codes"] {
        assert_eq!(app.count(&format!("SELECT count(*) FROM {table}")).await, 0, "{table}");
    }
    // The password alone signs in again; the old codes mean nothing.
    login_with(&app, &ann, PASSWORD, None).await.assert_ok();
    login_with(&app, &ann, PASSWORD, Some(&codes[0])).await.assert_ok();
    // And it can be turned on again, with a new secret.
    let (again, _) = turn_on(&app, &ann, fresh_step(5).await).await;
    assert_ne!(again.0.secret().to_base32(), authenticator.0.secret().to_base32());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_are_throttled_like_wrong_passwords() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let step = fresh_step(10).await;
    let (authenticator, _) = turn_on(&app, &ann, step).await;
    for wrong in ["000000", "111111", "222222", "333333", "444444"] {
        if wrong == authenticator.code(step + 1) {
            continue;
        }
        login_with(&app, &ann, PASSWORD, Some(wrong))
            .await
            .assert_code("UNAUTHENTICATED");
    }
    login_with(&app, &ann, PASSWORD, Some(&authenticator.code(step + 1)))
        .await
        .assert_code("TOO_MANY_REQUESTS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_codes_get_a_clear_error_and_change_nothing() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let long = "7".repeat(65);
    let hostile = [
        "",
        "   ",
        "12345",
        "1234567",
        "12345a",
        "١٢٣٤٥٦",
        "123456\u{0}",
        "' OR 1=1 --",
        "<script>alert(1)</script>",
        long.as_str(),
    ];
    // Confirming with nothing enrolled, then with bad codes.
    let nothing = app.gql_as(&ann.token, CONFIRM, json!({ "code": "123456" })).await;
    nothing.assert_code("BAD_USER_INPUT");
    assert_eq!(nothing.field(), Some("code"));
    let enrollment = app.gql_as(&ann.token, BEGIN, json!({})).await;
    let authenticator = App::from(&enrollment.assert_ok()["beginTotpEnrollment"]);
    for bad in hostile {
        let answer = app.gql_as(&ann.token, CONFIRM, json!({ "code": bad })).await;
        answer.assert_code("BAD_USER_INPUT");
        assert_eq!(answer.field(), Some("code"), "{bad:?}");
    }
    // A recovery code cannot confirm an app.
    let recovery = app
        .gql_as(&ann.token, CONFIRM, json!({ "code": "abcd-efgh-ijkl-mnop" }))
        .await;
    recovery.assert_code("BAD_USER_INPUT");
    // Missing and mistyped arguments.
    for (query, variables) in [
        ("mutation { confirmTotp }", json!({})),
        ("mutation($c: String) { confirmTotp(code: $c) }", json!({ "c": null })),
        ("mutation { confirmTotp(code: 123456) }", json!({})),
        ("mutation { disableTotp(code: \"123456\") }", json!({})),
        ("mutation { disableTotp(password: \"x\") }", json!({})),
    ] {
        let answer = app.gql_as(&ann.token, query, variables).await;
        assert!(answer.code().is_some(), "{query}: {}", answer.body);
        assert!(
            answer.data().is_null() || answer.body.get("data").is_none(),
            "{}",
            answer.body
        );
    }
    assert_eq!(mfa_enabled(&app, &ann.token).await, false);
    assert_eq!(app.count("SELECT count(*) FROM recovery_codes").await, 0);

    // Bad codes at login and at disableTotp: refused before any check, and
    // not counted as failures.
    let step = fresh_step(5).await;
    app.gql_as(&ann.token, CONFIRM, json!({ "code": authenticator.code(step) }))
        .await
        .assert_ok();
    for bad in hostile.iter().filter(|b| !b.trim().is_empty()) {
        let answer = login_with(&app, &ann, PASSWORD, Some(bad)).await;
        answer.assert_code("BAD_USER_INPUT");
        assert_eq!(answer.field(), Some("totpCode"), "{bad:?}");
        let answer = app
            .gql_as(&ann.token, DISABLE, json!({ "p": PASSWORD, "code": bad }))
            .await;
        answer.assert_code("BAD_USER_INPUT");
        assert_eq!(answer.field(), Some("code"), "{bad:?}");
    }
    assert_eq!(failures(&app, &ann).await, 0);
    assert_eq!(mfa_enabled(&app, &ann.token).await, true);
    // Anonymous callers cannot enroll or turn anything off.
    for (query, variables) in [
        (BEGIN, json!({})),
        (CONFIRM, json!({ "code": "123456" })),
        (DISABLE, json!({ "p": PASSWORD, "code": "123456" })),
    ] {
        app.gql(query, variables).await.assert_code("UNAUTHENTICATED");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_status_is_private_to_the_user_and_admins() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    let admin = app.admin("root").await;
    turn_on(&app, &ann, fresh_step(5).await).await;
    app.create_doctor(&ann.token, "Dr. Who", "Cardiology").await;
    let query = "{ doctors(first: 5) { nodes { createdBy { name mfaEnabled email } } } }";
    let seen_by = |token: String| {
        let app = &app;
        async move {
            let answer = app.gql_as(&token, query, json!({})).await;
            answer.assert_ok()["doctors"]["nodes"][0]["createdBy"].clone()
        }
    };
    let by_bob = seen_by(bob.token.clone()).await;
    assert_eq!(by_bob["name"], "ann");
    assert!(by_bob["mfaEnabled"].is_null() && by_bob["email"].is_null(), "{by_bob}");
    assert_eq!(seen_by(ann.token.clone()).await["mfaEnabled"], true);
    assert_eq!(seen_by(admin.token.clone()).await["mfaEnabled"], true);
    let listed = app
        .gql_as(
            &admin.token,
            "{ users(search: \"ann\") { nodes { mfaEnabled } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed.assert_ok()["users"]["nodes"][0]["mfaEnabled"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_totp_mutations_count_against_the_client_limit() {
    let app = TestApp::spawn_with(|s| {
        s.insert("AUTH_RATE_LIMIT".into(), "3/min".into());
    })
    .await;
    let client = TestApp::client_from("127.0.0.2");
    // Registered from 127.0.0.1: its own allowance.
    let ann = app.signup("ann").await;
    for _ in 0..2 {
        app.gql_on(&client, Some(&ann.token), BEGIN, json!({}))
            .await
            .assert_ok();
    }
    app.gql_on(&client, Some(&ann.token), CONFIRM, json!({ "code": "000000" }))
        .await
        .assert_code("BAD_USER_INPUT");
    for (query, variables) in [
        (BEGIN, json!({})),
        (CONFIRM, json!({ "code": "000000" })),
        (DISABLE, json!({ "p": PASSWORD, "code": "000000" })),
    ] {
        app.gql_on(&client, Some(&ann.token), query, variables)
            .await
            .assert_code("TOO_MANY_REQUESTS");
    }
}
