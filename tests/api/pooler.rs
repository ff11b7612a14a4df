//! Through a transaction-mode pooler: Debian's PgBouncer with
//! `pool_mode = transaction` in front of a throwaway cluster, the server with
//! `DATABASE_POOLER=transaction` and `DATABASE_DIRECT_URL` for what needs a
//! session of its own.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use healthcare_api::db::embedded::{self, EmbeddedPostgres, Options};
use serde_json::json;

use crate::common::{TestApp, cluster::ScratchDir, free_port};

const PGBOUNCER: &str = "/usr/sbin/pgbouncer";

/// PgBouncer in transaction mode on a loopback port, in front of the
/// cluster whose Unix socket is in `socket_dir`.
struct Bouncer {
    child: Child,
    port: u16,
    _dir: ScratchDir,
}

impl Bouncer {
    fn start(socket_dir: &Path, dbname: &str) -> Self {
        assert!(
            Path::new(PGBOUNCER).exists(),
            "these tests need PgBouncer (Debian: apt-get install pgbouncer); .ci/run installs it"
        );
        let dir = ScratchDir::new("pgbouncer");
        let port = free_port();
        std::fs::write(dir.path().join("users.txt"), "\"postgres\" \"\"\n").unwrap();
        std::fs::write(
            dir.path().join("pgbouncer.ini"),
            format!(
                "[databases]\n\
                 {dbname} = host={socket} port=5432 dbname={dbname} user=postgres\n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {port}\n\
                 unix_socket_dir =\n\
                 auth_type = trust\n\
                 auth_file = {dir}/users.txt\n\
                 pool_mode = transaction\n\
                 default_pool_size = 4\n\
                 max_client_conn = 500\n\
                 ignore_startup_parameters = extra_float_digits,options\n\
                 logfile = {dir}/pgbouncer.log\n",
                socket = socket_dir.display(),
                dir = dir.path().display(),
            ),
        )
        .unwrap();
        for file in ["users.txt", "pgbouncer.ini"] {
            embedded::give_to_cluster_user(&dir.path().join(file)).unwrap();
        }
        let ini = dir.path().join("pgbouncer.ini");
        // PgBouncer refuses to run as root: as the cluster's user then.
        let mut command = if is_root() {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=postgres", "--regid=postgres", "--clear-groups", PGBOUNCER]);
            c
        } else {
            Command::new(PGBOUNCER)
        };
        let child = command
            .arg(&ini)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer starts");
        let bouncer = Self { child, port, _dir: dir };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return bouncer;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("pgbouncer did not listen on {port}");
    }

    fn url(&self, dbname: &str) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname={dbname}", self.port)
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_domain_works_through_pgbouncer_in_transaction_mode() {
    let dir = ScratchDir::new("pooled");
    let pg_dir = dir.path().join("pg");
    let mut pg = EmbeddedPostgres::start(Options::throwaway(&pg_dir)).await.unwrap();
    pg.ensure_database("app").await.unwrap();
    let bouncer = Bouncer::start(&pg_dir, "app");
    let direct = pg.url("app");
    let app = TestApp::spawn_on(&bouncer.url("app"), |s| {
        s.insert("DATABASE_POOLER".into(), "transaction".into());
        s.insert("DATABASE_DIRECT_URL".into(), direct.clone());
        s.insert("DATABASE_POOL_SIZE".into(), "8".into());
    })
    .await;

    // Many users at once, so that the pooler hands each of the server's
    // connections to ever other PostgreSQL sessions (4 of them for 8).
    let names: Vec<String> = (0..6).map(|n| format!("u{n}")).collect();
    let users = futures_util::future::join_all(names.iter().map(|n| app.signup(n))).await;
    let rounds = users.iter().map(|user| async {
        let patient = app.create_patient(&user.token, "Pooled").await;
        let doctor = app.create_doctor(&user.token, "Dr Pooled", "Cardiology").await;
        app.assign(&user.token, &patient, &doctor).await.assert_ok();
        let keyed = app
            .client
            .post(app.url("/api/patients"))
            .bearer_auth(&user.token)
            .header("idempotency-key", "pooled")
            .json(&json!({ "name": "Keyed" }));
        let first = TestApp::rest_answer(keyed.try_clone().unwrap()).await;
        let again = TestApp::rest_answer(keyed).await;
        assert_eq!((first.status, again.status), (201, 201), "{}", again.body);
        assert_eq!(first.id(), again.id());
        for _ in 0..3 {
            app.gql_as(
                &user.token,
                "query($id: ID!) { patient(id: $id) { id name doctors { name } } patients(first: 5) { nodes { name createdBy { name } mappings { doctor { name } } } } me { id } }",
                json!({ "id": patient }),
            )
            .await
            .assert_ok();
            let rest = app.rest("GET", &format!("/api/patients/{patient}"), Some(&user.token), None).await;
            assert_eq!(rest.status, 200, "{}", rest.body);
        }
        app.gql_as(
            &user.token,
            "mutation($id: ID!) { updatePatient(id: $id, input: { name: \"Renamed\" }) { name } }",
            json!({ "id": patient }),
        )
        .await
        .assert_ok();
        patient
    });
    let patients = futures_util::future::join_all(rounds).await;
    assert_eq!(patients.len(), 6);
    let db = crate::common::cluster::connect(&direct).await.unwrap();
    let count = |sql: &'static str| {
        let db = &db;
        async move { db.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(count("SELECT count(*) FROM patients WHERE name = 'Renamed'").await, 6);
    assert_eq!(count("SELECT count(*) FROM patients WHERE name = 'Keyed'").await, 6);
    // Each user: three patient(id), three GET /api/patients/:id, and the
    // keyed create's replay.
    assert_eq!(
        count("SELECT count(*) FROM audit_events WHERE action = 'PATIENT_READ'").await,
        6 * 7
    );
    // No prepared statement outlives its transaction on the shared sessions.
    let pooled = crate::common::cluster::connect(&bouncer.url("app")).await.unwrap();
    for _ in 0..8 {
        let left: i64 = pooled
            .simple_query("SELECT count(*) FROM pg_prepared_statements")
            .await
            .unwrap()
            .into_iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(|v| v.parse().unwrap()),
                _ => None,
            })
            .unwrap();
        assert_eq!(left, 0, "a prepared statement was left on a pooled session");
    }
    app.stop().await;
    drop(bouncer);
    pg.stop().await.unwrap();
}

#[test]
fn the_pooler_setting_needs_a_direct_url() {
    let lookup = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| (*v).to_owned())
    };
    let err = healthcare_api::config::Config::from_lookup(lookup(&[
        ("DATABASE_URL", "postgres://app@127.0.0.1:6543/app"),
        ("JWT_SECRET", crate::common::JWT_SECRET),
        ("AUDIT_SEAL_KEY", crate::common::AUDIT_SEAL_KEY),
        ("MFA_ENCRYPTION_KEY", crate::common::MFA_ENCRYPTION_KEY),
        ("DATABASE_POOLER", "transaction"),
    ]))
    .expect_err("refused");
    assert_eq!(err.setting, "DATABASE_DIRECT_URL");
    let err =
        healthcare_api::config::Config::from_lookup(lookup(&[("DATABASE_POOLER", "statement")])).expect_err("refused");
    assert_eq!(err.setting, "DATABASE_POOLER");
}
