//! The REST compatibility API: the seed-era client flow, every error code,
//! privacy by every path with two users, admins, paging through `Link`, the
//! OpenAPI document against the routes, and `Cache-Control`.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::common::{PASSWORD, Rest, TestApp, TestUser};

const NO_ID: &str = "00000000-0000-4000-8000-000000000000";

async fn signup(app: &TestApp, name: &str) -> TestUser {
    app.signup(name).await
}

async fn post(app: &TestApp, path: &str, user: &TestUser, body: Value) -> Rest {
    app.rest("POST", path, Some(&user.token), Some(body)).await
}

async fn get(app: &TestApp, path: &str, user: &TestUser) -> Rest {
    app.rest("GET", path, Some(&user.token), None).await
}

async fn put(app: &TestApp, path: &str, user: &TestUser, body: Value) -> Rest {
    app.rest("PUT", path, Some(&user.token), Some(body)).await
}

async fn delete(app: &TestApp, path: &str, user: &TestUser) -> Rest {
    app.rest("DELETE", path, Some(&user.token), None).await
}

async fn new_patient(app: &TestApp, user: &TestUser, name: &str) -> String {
    let r = post(app, "/api/patients", user, json!({ "name": name })).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.id()
}

async fn new_doctor(app: &TestApp, user: &TestUser, name: &str) -> String {
    let r = post(
        app,
        "/api/doctors",
        user,
        json!({ "name": name, "specialization": "Cardiology" }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.id()
}

async fn new_mapping(app: &TestApp, user: &TestUser, patient: &str, doctor: &str) -> String {
    let r = post(
        app,
        "/api/mappings",
        user,
        json!({ "patientId": patient, "doctorId": doctor }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.id()
}

#[tokio::test]
async fn the_seed_era_client_flow_works_unchanged() {
    let app = TestApp::spawn().await;

    let reg = app
        .rest(
            "POST",
            "/api/auth/register",
            None,
            Some(json!({ "name": "Ann", "email": "Ann@Example.org", "password": PASSWORD })),
        )
        .await;
    assert_eq!(reg.status, 201, "{}", reg.body);
    assert_eq!(reg.body["token"], reg.body["accessToken"]);
    assert_eq!(reg.body["tokenType"], "Bearer");
    assert_eq!(reg.body["user"]["email"], "Ann@Example.org");
    assert_eq!(reg.body["user"]["role"], "USER");
    assert!(reg.body["expiresIn"].as_i64().unwrap() > 0);

    let login = app
        .rest(
            "POST",
            "/api/auth/login",
            None,
            Some(json!({ "email": "ann@example.org", "password": PASSWORD })),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.body);
    let token = login.body["token"].as_str().unwrap().to_owned();
    let user = TestUser {
        id: login.body["user"]["id"].as_str().unwrap().to_owned(),
        email: "ann@example.org".into(),
        token,
        refresh: login.body["refreshToken"].as_str().unwrap().to_owned(),
    };

    // Patients.
    let created = post(
        &app,
        "/api/patients",
        &user,
        json!({ "name": " Pat Example ", "dateOfBirth": "1980-02-03", "gender": "FEMALE",
                "email": "pat@example.org", "phone": "+1 555 0100", "address": "1 Main St",
                "medicalHistory": "asthma" }),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.id();
    assert_eq!(created.header("location"), Some(format!("/api/patients/{id}").as_str()));
    assert_eq!(created.body["name"], "Pat Example");
    assert_eq!(created.body["dateOfBirth"], "1980-02-03");
    assert_eq!(created.body["gender"], "FEMALE");
    assert_eq!(created.body["createdBy"], user.id.as_str());
    assert!(created.body["createdAt"].as_str().unwrap().ends_with('Z'));
    let keys: BTreeSet<&str> = created.body.as_object().unwrap().keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = [
        "id",
        "name",
        "dateOfBirth",
        "gender",
        "email",
        "phone",
        "address",
        "medicalHistory",
        "createdBy",
        "createdAt",
        "updatedAt",
    ]
    .into();
    assert_eq!(keys, expected);

    let shown = get(&app, &format!("/api/patients/{id}"), &user).await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body, created.body);

    let listed = get(&app, "/api/patients", &user).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body, json!([created.body]));
    assert_eq!(listed.header("link"), None);

    // PUT: absent keeps, null clears, a value sets.
    let updated = put(
        &app,
        &format!("/api/patients/{id}"),
        &user,
        json!({ "phone": null, "address": "2 High St" }),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["phone"], Value::Null);
    assert_eq!(updated.body["address"], "2 High St");
    assert_eq!(updated.body["email"], "pat@example.org");
    assert_eq!(updated.body["name"], "Pat Example");
    let empty = put(&app, &format!("/api/patients/{id}"), &user, json!({})).await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.body["address"], "2 High St");

    // Doctors.
    let doctor = post(
        &app,
        "/api/doctors",
        &user,
        json!({ "name": "Dr Who", "specialization": "Cardiology", "licenseNumber": "L-1" }),
    )
    .await;
    assert_eq!(doctor.status, 201, "{}", doctor.body);
    let doctor_id = doctor.id();
    assert_eq!(get(&app, "/api/doctors", &user).await.body[0]["id"], doctor_id.as_str());
    assert_eq!(
        get(&app, &format!("/api/doctors/{doctor_id}"), &user).await.body,
        doctor.body
    );
    let renamed = put(
        &app,
        &format!("/api/doctors/{doctor_id}"),
        &user,
        json!({ "name": "Dr Who II", "licenseNumber": null }),
    )
    .await;
    assert_eq!(renamed.status, 200);
    assert_eq!(renamed.body["name"], "Dr Who II");
    assert_eq!(renamed.body["licenseNumber"], Value::Null);
    assert_eq!(renamed.body["specialization"], "Cardiology");

    // Mappings.
    let mapping = post(
        &app,
        "/api/mappings",
        &user,
        json!({ "patientId": id, "doctorId": doctor_id }),
    )
    .await;
    assert_eq!(mapping.status, 201, "{}", mapping.body);
    assert_eq!(mapping.body["patientId"], id.as_str());
    assert_eq!(mapping.body["doctorId"], doctor_id.as_str());
    assert_eq!(mapping.body["assignedBy"], user.id.as_str());
    let mapping_id = mapping.id();
    assert_eq!(get(&app, "/api/mappings", &user).await.body, json!([mapping.body]));
    let doctors = get(&app, &format!("/api/mappings/{id}"), &user).await;
    assert_eq!(doctors.status, 200);
    assert_eq!(doctors.body, json!([renamed.body]));

    let removed = delete(&app, &format!("/api/mappings/{mapping_id}"), &user).await;
    assert_eq!(removed.status, 204);
    assert_eq!(removed.body, Value::Null);
    assert_eq!(get(&app, &format!("/api/mappings/{id}"), &user).await.body, json!([]));
    assert_eq!(
        delete(&app, &format!("/api/doctors/{doctor_id}"), &user).await.status,
        204
    );
    assert_eq!(delete(&app, &format!("/api/patients/{id}"), &user).await.status, 204);
    get(&app, &format!("/api/patients/{id}"), &user)
        .await
        .assert_error(404, "NOT_FOUND", None);

    // Refresh rotates; logout retires.
    let refreshed = app
        .rest(
            "POST",
            "/api/auth/refresh",
            None,
            Some(json!({ "refreshToken": user.refresh })),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let next = refreshed.body["refreshToken"].as_str().unwrap().to_owned();
    let out = app
        .rest("POST", "/api/auth/logout", None, Some(json!({ "refreshToken": next })))
        .await;
    assert_eq!(out.status, 204);
    app.rest("POST", "/api/auth/refresh", None, Some(json!({ "refreshToken": next })))
        .await
        .assert_error(401, "UNAUTHENTICATED", None);
}

/// Every documented operation, with a placeholder id.
async fn operations(app: &TestApp) -> Vec<(String, String)> {
    let doc = app.rest("GET", "/api/openapi.json", None, None).await.body;
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.push((method.to_uppercase(), path.replace("{id}", NO_ID)));
        }
    }
    out
}

#[tokio::test]
async fn every_protected_route_wants_a_valid_token() {
    let app = TestApp::spawn().await;
    let ops = operations(&app).await;
    let mut protected = 0;
    for (method, path) in ops {
        if path.starts_with("/api/auth/") {
            continue;
        }
        protected += 1;
        for token in [None, Some("garbage"), Some("eyJhbGciOiJub25lIn0.e30.")] {
            let r = app.rest(&method, &path, token, Some(json!({}))).await;
            r.assert_error(401, "UNAUTHENTICATED", None);
            assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{method} {path}");
        }
    }
    assert_eq!(protected, 14);
}

#[tokio::test]
async fn bodies_that_are_not_json_or_too_big_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let ann = signup(&app, "ann").await;
    let before = app.count("SELECT count(*) FROM patients").await;
    let send = |content_type: &'static str, body: Vec<u8>| {
        app.client
            .post(app.url("/api/patients"))
            .bearer_auth(&ann.token)
            .header("content-type", content_type)
            .body(body)
    };
    TestApp::rest_answer(send("text/plain", br#"{"name":"A"}"#.to_vec()))
        .await
        .assert_error(415, "BAD_USER_INPUT", Some("Content-Type"));
    TestApp::rest_answer(send("application/json", b"{\"name\": ".to_vec()))
        .await
        .assert_error(400, "BAD_USER_INPUT", Some("body"));
    TestApp::rest_answer(send("application/json", b"[1, 2]".to_vec()))
        .await
        .assert_error(400, "BAD_USER_INPUT", Some("body"));
    TestApp::rest_answer(send("application/json", b"{\"name\": \"A\"} trailing".to_vec()))
        .await
        .assert_error(400, "BAD_USER_INPUT", Some("body"));
    let huge = format!("{{\"name\": \"A\", \"address\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    TestApp::rest_answer(send("application/json", huge.into_bytes()))
        .await
        .assert_error(413, "BAD_USER_INPUT", None);
    assert_eq!(app.count("SELECT count(*) FROM patients").await, before);
}

#[tokio::test]
async fn each_field_gets_a_clear_error_naming_it() {
    let app = TestApp::spawn().await;
    let ann = signup(&app, "ann").await;
    let patient = new_patient(&app, &ann, "Pat").await;
    let doctor = new_doctor(&app, &ann, "Dr A").await;
    let cases: Vec<(&str, String, Value, &str)> = vec![
        ("POST", "/api/patients".into(), json!({}), "name"),
        ("POST", "/api/patients".into(), json!({ "name": 5 }), "name"),
        ("POST", "/api/patients".into(), json!({ "name": "   " }), "name"),
        (
            "POST",
            "/api/patients".into(),
            json!({ "name": "a".repeat(201) }),
            "name",
        ),
        ("POST", "/api/patients".into(), json!({ "name": "A\u{7}" }), "name"),
        (
            "POST",
            "/api/patients".into(),
            json!({ "name": "A", "dateOfBirth": "1990-02-30" }),
            "dateOfBirth",
        ),
        (
            "POST",
            "/api/patients".into(),
            json!({ "name": "A", "dateOfBirth": "2999-01-01" }),
            "dateOfBirth",
        ),
        (
            "POST",
            "/api/patients".into(),
            json!({ "name": "A", "dateOfBirth": 19900101 }),
            "dateOfBirth",
        ),
        (
            "POST",
            "/api/patients".into(),
            json!({ "name": "A", "gender": "ROBOT" }),
            "gender",
        ),
        (
            "POST",
            "/api/patients".into(),
            json!({ "name": "A", "email": "not-an-email" }),
            "email",
        ),
        (
            "POST",
            "/api/patients".into(),
            json!({ "name": "A", "phone": "call me" }),
            "phone",
        ),
        (
            "POST",
            "/api/patients".into(),
            json!({ "name": "A", "address": "a".repeat(1001) }),
            "address",
        ),
        (
            "POST",
            "/api/patients".into(),
            json!({ "name": "A", "medicalHistory": "x\u{0}y" }),
            "medicalHistory",
        ),
        (
            "POST",
            "/api/patients".into(),
            json!({ "name": "A", "createdBy": "me" }),
            "body",
        ),
        (
            "PUT",
            format!("/api/patients/{patient}"),
            json!({ "name": null }),
            "name",
        ),
        (
            "PUT",
            format!("/api/patients/{patient}"),
            json!({ "gender": null }),
            "gender",
        ),
        (
            "PUT",
            format!("/api/patients/{patient}"),
            json!({ "email": "@" }),
            "email",
        ),
        ("PUT", "/api/patients/not-an-id".into(), json!({}), "id"),
        ("POST", "/api/doctors".into(), json!({ "name": "A" }), "specialization"),
        (
            "POST",
            "/api/doctors".into(),
            json!({ "name": "A", "specialization": "B", "licenseNumber": "ü" }),
            "licenseNumber",
        ),
        (
            "PUT",
            format!("/api/doctors/{doctor}"),
            json!({ "specialization": null }),
            "specialization",
        ),
        (
            "POST",
            "/api/mappings".into(),
            json!({ "patientId": "x", "doctorId": doctor }),
            "patientId",
        ),
        (
            "POST",
            "/api/mappings".into(),
            json!({ "patientId": patient, "doctorId": "'; DROP TABLE doctors; --" }),
            "doctorId",
        ),
        (
            "POST",
            "/api/mappings".into(),
            json!({ "patientId": patient }),
            "doctorId",
        ),
        ("GET", "/api/patients/123".into(), Value::Null, "id"),
        ("GET", format!("/api/patients/{}", "9".repeat(5000)), Value::Null, "id"),
        ("DELETE", "/api/doctors/%00".into(), Value::Null, "id"),
        ("GET", "/api/mappings/zzz".into(), Value::Null, "id"),
        ("GET", "/api/patients?limit=0".into(), Value::Null, "limit"),
        ("GET", "/api/patients?limit=101".into(), Value::Null, "limit"),
        ("GET", "/api/patients?limit=ten".into(), Value::Null, "limit"),
        ("GET", "/api/doctors?after=garbage".into(), Value::Null, "after"),
        ("GET", "/api/mappings?after=tx.0".into(), Value::Null, "after"),
        (
            "GET",
            format!("/api/patients?search={}", "a".repeat(201)),
            Value::Null,
            "search",
        ),
    ];
    let before = app.count("SELECT count(*) FROM audit_events").await;
    for (method, path, body, field) in cases {
        let body = (!body.is_null()).then_some(body);
        let r = app.rest(method, &path, Some(&ann.token), body).await;
        assert_eq!(r.status, 400, "{method} {path}: {}", r.body);
        r.assert_error(400, "BAD_USER_INPUT", Some(field));
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(!message.contains("DROP") && !message.contains("createdBy"), "{message}");
    }
    assert_eq!(app.count("SELECT count(*) FROM audit_events").await, before);
    assert_eq!(app.count("SELECT count(*) FROM patients").await, 1);
    let unchanged = get(&app, &format!("/api/patients/{patient}"), &ann).await;
    assert_eq!(unchanged.body["name"], "Pat");
}

#[tokio::test]
async fn conflicts_forbidden_changes_and_throttling_have_their_codes() {
    let app = TestApp::spawn().await;
    let ann = signup(&app, "ann").await;
    let bob = signup(&app, "bob").await;

    app.rest(
        "POST",
        "/api/auth/register",
        None,
        Some(json!({ "name": "Ann", "email": "ANN@example.org", "password": PASSWORD })),
    )
    .await
    .assert_error(409, "CONFLICT", Some("email"));

    let doctor = post(
        &app,
        "/api/doctors",
        &ann,
        json!({ "name": "Dr A", "specialization": "X", "licenseNumber": "L-7" }),
    )
    .await
    .id();
    post(
        &app,
        "/api/doctors",
        &bob,
        json!({ "name": "Dr B", "specialization": "X", "licenseNumber": "L-7" }),
    )
    .await
    .assert_error(409, "CONFLICT", Some("licenseNumber"));

    // Only the creator (or an admin) changes a doctor; everyone reads it.
    put(&app, &format!("/api/doctors/{doctor}"), &bob, json!({ "name": "Mine" }))
        .await
        .assert_error(403, "FORBIDDEN", None);
    delete(&app, &format!("/api/doctors/{doctor}"), &bob)
        .await
        .assert_error(403, "FORBIDDEN", None);
    assert_eq!(get(&app, &format!("/api/doctors/{doctor}"), &bob).await.status, 200);
    get(&app, &format!("/api/doctors/{NO_ID}"), &bob)
        .await
        .assert_error(404, "NOT_FOUND", None);

    let patient = new_patient(&app, &ann, "Pat").await;
    new_mapping(&app, &ann, &patient, &doctor).await;
    post(
        &app,
        "/api/mappings",
        &ann,
        json!({ "patientId": patient, "doctorId": doctor }),
    )
    .await
    .assert_error(409, "CONFLICT", None);
    post(
        &app,
        "/api/mappings",
        &ann,
        json!({ "patientId": patient, "doctorId": NO_ID }),
    )
    .await
    .assert_error(404, "NOT_FOUND", None);

    let wrong = json!({ "email": ann.email, "password": "wrong password" });
    for _ in 0..5 {
        let r = app.rest("POST", "/api/auth/login", None, Some(wrong.clone())).await;
        r.assert_error(401, "UNAUTHENTICATED", None);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    let throttled = app
        .rest(
            "POST",
            "/api/auth/login",
            None,
            Some(json!({ "email": ann.email, "password": PASSWORD })),
        )
        .await;
    throttled.assert_error(429, "TOO_MANY_REQUESTS", None);
    assert!(throttled.header("retry-after").is_some());
}

#[tokio::test]
async fn another_users_patient_looks_missing_on_every_path() {
    let app = TestApp::spawn().await;
    let ann = signup(&app, "ann").await;
    let bob = signup(&app, "bob").await;
    let patient = new_patient(&app, &ann, "Ann's Patient").await;
    let doctor = new_doctor(&app, &ann, "Dr Shared").await;
    let mapping = new_mapping(&app, &ann, &patient, &doctor).await;
    let before = app.count("SELECT count(*) FROM audit_events").await;

    let p = format!("/api/patients/{patient}");
    get(&app, &p, &bob).await.assert_error(404, "NOT_FOUND", None);
    put(&app, &p, &bob, json!({ "name": "Stolen" }))
        .await
        .assert_error(404, "NOT_FOUND", None);
    delete(&app, &p, &bob).await.assert_error(404, "NOT_FOUND", None);
    assert_eq!(get(&app, "/api/patients", &bob).await.body, json!([]));
    assert_eq!(get(&app, "/api/patients?search=Ann", &bob).await.body, json!([]));
    post(
        &app,
        "/api/mappings",
        &bob,
        json!({ "patientId": patient, "doctorId": doctor }),
    )
    .await
    .assert_error(404, "NOT_FOUND", None);
    assert_eq!(get(&app, "/api/mappings", &bob).await.body, json!([]));
    get(&app, &format!("/api/mappings/{patient}"), &bob)
        .await
        .assert_error(404, "NOT_FOUND", None);
    delete(&app, &format!("/api/mappings/{mapping}"), &bob)
        .await
        .assert_error(404, "NOT_FOUND", None);
    // A missing record answers the same.
    let missing = get(&app, &format!("/api/patients/{NO_ID}"), &bob).await;
    let hidden = get(&app, &p, &bob).await;
    assert_eq!(missing.body, hidden.body);

    // Nothing changed and nothing of Ann's was audited for Bob.
    assert_eq!(app.count("SELECT count(*) FROM audit_events").await, before);
    let still = get(&app, &p, &ann).await;
    assert_eq!(still.body["name"], "Ann's Patient");
    assert_eq!(
        get(&app, &format!("/api/mappings/{patient}"), &ann).await.body[0]["id"],
        doctor.as_str()
    );
}

#[tokio::test]
async fn admins_see_and_change_everything() {
    let app = TestApp::spawn().await;
    let ann = signup(&app, "ann").await;
    let root = app.admin("root").await;
    let patient = new_patient(&app, &ann, "Pat").await;
    let doctor = new_doctor(&app, &ann, "Dr A").await;
    assert_eq!(get(&app, &format!("/api/patients/{patient}"), &root).await.status, 200);
    assert_eq!(get(&app, "/api/patients", &root).await.body[0]["id"], patient.as_str());
    let mapping = new_mapping(&app, &root, &patient, &doctor).await;
    assert_eq!(get(&app, "/api/mappings", &root).await.body[0]["id"], mapping.as_str());
    let renamed = put(
        &app,
        &format!("/api/doctors/{doctor}"),
        &root,
        json!({ "name": "Dr Z" }),
    )
    .await;
    assert_eq!(renamed.status, 200);
    assert_eq!(
        put(
            &app,
            &format!("/api/patients/{patient}"),
            &root,
            json!({ "gender": "MALE" })
        )
        .await
        .body["gender"],
        "MALE"
    );
    assert_eq!(
        delete(&app, &format!("/api/patients/{patient}"), &root).await.status,
        204
    );
    assert_eq!(get(&app, "/api/mappings", &ann).await.body, json!([]));
}

/// Follows `Link: <...>; rel="next"` from `first`, adding a patient before
/// each next page, and returns the names seen.
async fn follow_links(app: &TestApp, user: &TestUser, first: &str) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    let mut next = Some(first.to_owned());
    let mut pages = 0;
    while let Some(path) = next {
        let page = get(app, &path, user).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(page.header("cache-control"), Some("no-store"));
        pages += 1;
        names.extend(
            page.body
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_owned()),
        );
        next = page.header("link").map(|link| {
            let (url, rel) = link.split_once("; ").unwrap();
            assert_eq!(rel, "rel=\"next\"");
            url.trim_start_matches('<').trim_end_matches('>').to_owned()
        });
        new_patient(app, user, &format!("Late {pages}")).await;
    }
    (names, pages)
}

#[tokio::test]
async fn pages_follow_the_link_header_with_inserts_between_pages() {
    let app = TestApp::spawn().await;
    let ann = signup(&app, "ann").await;
    for i in 0..25 {
        new_patient(&app, &ann, &format!("Patient {i:02}")).await;
    }
    let (names, pages) = follow_links(&app, &ann, "/api/patients?limit=10").await;
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).rev().map(|i| format!("Patient {i:02}")).collect();
    assert_eq!(names, expected, "newest first, each once, none of the late ones");

    // The default page is 50; search is carried into the next link.
    assert_eq!(
        get(&app, "/api/patients", &ann).await.body.as_array().unwrap().len(),
        28
    );
    let first = get(&app, "/api/patients?limit=2&search=patient%201", &ann).await;
    let link = first.header("link").unwrap();
    assert!(
        link.contains("search=patient+1") || link.contains("search=patient%201"),
        "{link}"
    );
    let (found, _) = follow_links(&app, &ann, "/api/patients?limit=4&search=Patient%201").await;
    assert_eq!(found.len(), 10);
    assert!(found.iter().all(|n| n.starts_with("Patient 1")));

    // Doctors by name, mappings newest first.
    for name in ["Dr C", "Dr A", "Dr B"] {
        new_doctor(&app, &ann, name).await;
    }
    let doctors = get(&app, "/api/doctors?limit=2", &ann).await;
    assert_eq!(doctors.body[0]["name"], "Dr A");
    let next = doctors.header("link").unwrap().to_owned();
    let url = next.split_once(';').unwrap().0.trim_matches(|c| c == '<' || c == '>');
    let rest = get(&app, url, &ann).await;
    assert_eq!(rest.body.as_array().unwrap().len(), 1);
    assert_eq!(rest.body[0]["name"], "Dr C");
    assert_eq!(rest.header("link"), None);
    let search = get(&app, "/api/doctors?search=dr%20b", &ann).await;
    assert_eq!(search.body.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn mapping_pages_follow_the_link_header() {
    let app = TestApp::spawn().await;
    let ann = signup(&app, "ann").await;
    let doctor = new_doctor(&app, &ann, "Dr A").await;
    let mut made = Vec::new();
    for i in 0..5 {
        let patient = new_patient(&app, &ann, &format!("P{i}")).await;
        made.push(new_mapping(&app, &ann, &patient, &doctor).await);
    }
    let mut seen = Vec::new();
    let mut next = Some("/api/mappings?limit=2".to_owned());
    while let Some(path) = next {
        let page = get(&app, &path, &ann).await;
        seen.extend(
            page.body
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_owned()),
        );
        next = page.header("link").map(|l| {
            l.split_once(';')
                .unwrap()
                .0
                .trim_matches(|c| c == '<' || c == '>')
                .to_owned()
        });
    }
    made.reverse();
    assert_eq!(seen, made);
}

#[tokio::test]
async fn reading_a_patient_is_audited_with_the_request_id() {
    let app = TestApp::spawn().await;
    let ann = signup(&app, "ann").await;
    let patient = new_patient(&app, &ann, "Pat").await;
    let req = app
        .client
        .get(app.url(&format!("/api/patients/{patient}")))
        .bearer_auth(&ann.token)
        .header("x-request-id", "rest-read-1");
    let r = TestApp::rest_answer(req).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-request-id"), Some("rest-read-1"));
    let sql = format!(
        "SELECT count(*) FROM audit_events WHERE action = 'PATIENT_READ' AND entity_id = '{patient}' \
         AND request_id = 'rest-read-1'"
    );
    assert_eq!(app.count(&sql).await, 1);
    // Lists are not reads of single records.
    get(&app, "/api/patients", &ann).await;
    let reads = format!("SELECT count(*) FROM audit_events WHERE action = 'PATIENT_READ' AND entity_id = '{patient}'");
    assert_eq!(app.count(&reads).await, 1);
}

#[tokio::test]
async fn the_openapi_document_names_every_route_and_nothing_else() {
    let app = TestApp::spawn().await;
    let doc = app.rest("GET", "/api/openapi.json", None, None).await;
    assert_eq!(doc.status, 200);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(
        doc.body["components"]["securitySchemes"]["bearer"],
        json!({ "type": "http", "scheme": "bearer", "bearerFormat": "JWT" })
    );

    // The contract's table, exactly.
    let mut served: Vec<(String, String)> = Vec::new();
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            served.push((method.to_uppercase(), path.clone()));
            let statuses: BTreeSet<&str> = operation["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            for common in ["400", "500", "503"] {
                assert!(statuses.contains(common), "{method} {path} lacks {common}");
            }
            if operation.get("requestBody").is_some() {
                assert!(statuses.contains("413") && statuses.contains("415"), "{method} {path}");
            }
            if !path.starts_with("/api/auth/") {
                assert!(statuses.contains("401"), "{method} {path}");
                assert_eq!(operation["security"], json!([{ "bearer": [] }]));
            }
            if path.contains("{id}") {
                assert!(statuses.contains("404"), "{method} {path}");
            }
        }
    }
    served.sort();
    let mut contract: Vec<(String, String)> = [
        ("POST", "/api/auth/register"),
        ("POST", "/api/auth/login"),
        ("POST", "/api/auth/refresh"),
        ("POST", "/api/auth/logout"),
        ("POST", "/api/patients"),
        ("GET", "/api/patients"),
        ("GET", "/api/patients/{id}"),
        ("PUT", "/api/patients/{id}"),
        ("DELETE", "/api/patients/{id}"),
        ("POST", "/api/doctors"),
        ("GET", "/api/doctors"),
        ("GET", "/api/doctors/{id}"),
        ("PUT", "/api/doctors/{id}"),
        ("DELETE", "/api/doctors/{id}"),
        ("POST", "/api/mappings"),
        ("GET", "/api/mappings"),
        ("GET", "/api/mappings/{id}"),
        ("DELETE", "/api/mappings/{id}"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect();
    contract.sort();
    assert_eq!(served, contract);

    // Every documented operation is served (a token-less call meets the
    // handler's check, not the "no such path" fallback), and every other
    // method on a documented path is 405.
    let documented: BTreeSet<(String, String)> = served.iter().cloned().collect();
    let paths: BTreeSet<&String> = served.iter().map(|(_, p)| p).collect();
    for path in paths {
        let concrete = path.replace("{id}", NO_ID);
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            let r = app.rest(method, &concrete, None, Some(json!({}))).await;
            if documented.contains(&(method.to_owned(), path.clone())) {
                assert!(
                    [400, 401].contains(&r.status) && r.body["error"]["message"] != "no such path",
                    "{method} {path}: {} {}",
                    r.status,
                    r.body
                );
            } else {
                assert_eq!(r.status, 405, "{method} {path} is served but not documented");
            }
        }
    }
    // Paths outside the document are not served.
    app.rest("GET", "/api/users", None, None)
        .await
        .assert_error(404, "NOT_FOUND", None);
}

#[tokio::test]
async fn the_browsable_docs_are_served_from_the_binary() {
    let app = TestApp::spawn().await;
    let page = app.client.get(app.url("/api/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    for line in html.lines().filter(|l| l.contains("src=") || l.contains("href=")) {
        assert!(!line.contains("http://") && !line.contains("https://"), "{line}");
    }
    let config = app
        .client
        .get(app.url("/api/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(config.status(), 200);
    assert!(config.text().await.unwrap().contains("/api/openapi.json"));
    let bundle = app
        .client
        .get(app.url("/api/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status(), 200);
    assert!(bundle.bytes().await.unwrap().len() > 100_000);
}

#[tokio::test]
async fn responses_with_patient_data_are_never_cached() {
    let app = TestApp::spawn().await;
    let ann = signup(&app, "ann").await;
    let patient = new_patient(&app, &ann, "Pat").await;
    for r in [
        get(&app, &format!("/api/patients/{patient}"), &ann).await,
        get(&app, "/api/patients", &ann).await,
        get(&app, &format!("/api/mappings/{patient}"), &ann).await,
        app.rest("GET", "/api/patients", None, None).await,
    ] {
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    let query = "query($id: ID!) { patient(id: $id) { name } }";
    let gql = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&ann.token)
        .json(&json!({ "query": query, "variables": { "id": patient } }))
        .send()
        .await
        .unwrap();
    assert_eq!(gql.headers()["cache-control"], "no-store");
    let via_get = app
        .client
        .get(app.url("/graphql"))
        .bearer_auth(&ann.token)
        .query(&[("query", "{ patients { nodes { name } } }")])
        .send()
        .await
        .unwrap();
    assert_eq!(via_get.headers()["cache-control"], "no-store");
    // GraphiQL's own scripts may be cached: they hold no data.
    let asset = app.client.get(app.url("/graphql/assets/init.js")).send().await.unwrap();
    assert_eq!(asset.headers()["cache-control"], "public, max-age=3600");
}
