//! Users' privacy: a user's email and role are shown to that user and to
//! admins only, null for everyone else, on every path that shows a user;
//! names and ids stay visible.

use serde_json::{Value, json};

use crate::common::{TestApp, TestUser};

const USER: &str = "id name email role";

/// The user a query shows at `pointer` (a JSON pointer into `data`).
async fn shown(app: &TestApp, viewer: &TestUser, query: &str, variables: Value, pointer: &str) -> Value {
    let resp = app.gql_as(&viewer.token, query, variables).await;
    let data = resp.assert_ok();
    data.pointer(pointer)
        .unwrap_or_else(|| panic!("{pointer} in {data}"))
        .clone()
}

fn assert_private(user: &Value, of: &TestUser, name: &str) {
    assert_eq!(user["id"], of.id.as_str(), "{user}");
    assert_eq!(user["name"], name, "names stay visible: {user}");
    assert_eq!(user["email"], Value::Null, "{user}");
    assert_eq!(user["role"], Value::Null, "{user}");
}

fn assert_shown(user: &Value, of: &TestUser, role: &str) {
    assert_eq!(user["id"], of.id.as_str(), "{user}");
    assert_eq!(user["email"], of.email.as_str(), "{user}");
    assert_eq!(user["role"], role, "{user}");
}

#[tokio::test]
async fn another_users_email_and_role_are_null_on_every_path() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    let root = app.admin("root").await;
    let doctor = app.create_doctor(&ann.token, "Dr Ann's", "Cardiology").await;
    let patient = app.create_patient(&ann.token, "Ann's patient").await;
    // The admin assigns Ann's doctor to Ann's patient.
    let mapping = app.assign(&root.token, &patient, &doctor).await;
    let mapping = mapping.assert_ok()["assignDoctor"]["id"].as_str().unwrap().to_owned();

    // Doctor.createdBy, through `doctor` and through the `doctors` list.
    let by_id = format!("query($id: ID!) {{ doctor(id: $id) {{ createdBy {{ {USER} }} }} }}");
    let listed = format!("{{ doctors(first: 50) {{ nodes {{ id createdBy {{ {USER} }} }} }} }}");
    let vars = json!({ "id": doctor });
    assert_private(
        &shown(&app, &bob, &by_id, vars.clone(), "/doctor/createdBy").await,
        &ann,
        "ann",
    );
    assert_shown(
        &shown(&app, &ann, &by_id, vars.clone(), "/doctor/createdBy").await,
        &ann,
        "USER",
    );
    assert_shown(
        &shown(&app, &root, &by_id, vars.clone(), "/doctor/createdBy").await,
        &ann,
        "USER",
    );
    let nodes = shown(&app, &bob, &listed, json!({}), "/doctors/nodes").await;
    let node = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == doctor.as_str())
        .unwrap();
    assert_private(&node["createdBy"], &ann, "ann");

    // Mapping.assignedBy: Ann sees the admin who assigned, without his email
    // or role, through `mapping`, `mappings` and the patient's `mappings`.
    let one = format!("query($id: ID!) {{ mapping(id: $id) {{ assignedBy {{ {USER} }} }} }}");
    let many = format!("{{ mappings(first: 5) {{ nodes {{ assignedBy {{ {USER} }} }} }} }}");
    let nested = format!("query($id: ID!) {{ patient(id: $id) {{ mappings {{ assignedBy {{ {USER} }} }} }} }}");
    let vars = json!({ "id": mapping });
    assert_private(
        &shown(&app, &ann, &one, vars.clone(), "/mapping/assignedBy").await,
        &root,
        "root",
    );
    assert_private(
        &shown(&app, &ann, &many, json!({}), "/mappings/nodes/0/assignedBy").await,
        &root,
        "root",
    );
    let vars_patient = json!({ "id": patient });
    assert_private(
        &shown(
            &app,
            &ann,
            &nested,
            vars_patient.clone(),
            "/patient/mappings/0/assignedBy",
        )
        .await,
        &root,
        "root",
    );
    assert_shown(
        &shown(&app, &root, &one, vars.clone(), "/mapping/assignedBy").await,
        &root,
        "ADMIN",
    );

    // Patient.createdBy: the owner sees themself, an admin sees the owner.
    let created = format!("query($id: ID!) {{ patient(id: $id) {{ createdBy {{ {USER} }} }} }}");
    assert_shown(
        &shown(&app, &ann, &created, vars_patient.clone(), "/patient/createdBy").await,
        &ann,
        "USER",
    );
    assert_shown(
        &shown(&app, &root, &created, vars_patient, "/patient/createdBy").await,
        &ann,
        "USER",
    );

    // AuditEvent.actor (admins only): the admin sees every actor's email.
    let events =
        format!("query($actor: ID) {{ auditEvents(actorId: $actor, first: 1) {{ nodes {{ actor {{ {USER} }} }} }} }}");
    let actor = shown(
        &app,
        &root,
        &events,
        json!({ "actor": ann.id }),
        "/auditEvents/nodes/0/actor",
    )
    .await;
    assert_shown(&actor, &ann, "USER");

    // Oneself: `me`, and the user of a session.
    let me = format!("{{ me {{ {USER} }} }}");
    assert_shown(&shown(&app, &bob, &me, json!({}), "/me").await, &bob, "USER");
    assert_shown(&shown(&app, &root, &me, json!({}), "/me").await, &root, "ADMIN");
}
