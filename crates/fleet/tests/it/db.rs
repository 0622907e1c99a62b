//! A fresh database per test, made through the admin URL in `M365MAIL_TEST_POSTGRES` and
//! dropped afterwards, so that tests run in parallel without seeing each other's rows.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_postgres::NoTls;

pub(crate) const ENV: &str = "M365MAIL_TEST_POSTGRES";

/// A database of its own for one test; dropped (forcibly) when this is.
pub(crate) struct TestDb {
    admin: String,
    pub(crate) name: String,
    /// The URL of this database.
    pub(crate) url: String,
}

/// The admin URL, or `None` after printing why the test is skipped. Under `CI=true` a missing
/// PostgreSQL fails the test instead: CI must run these.
pub(crate) fn admin_url() -> Option<String> {
    match std::env::var(ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let msg = "skipped: no PostgreSQL (set M365MAIL_TEST_POSTGRES, or run `cargo xtask \
                       ci` which starts one)";
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but {ENV} is not set: the PostgreSQL tests must run in CI ({msg})"
            );
            println!("{msg}");
            None
        }
    }
}

/// `url` pointing at database `name` instead (URL or key-value form).
pub(crate) fn with_database(url: &str, name: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let query = tail.find('?').map(|i| &tail[i..]).unwrap_or("");
        format!("{scheme}://{authority}/{name}{query}")
    } else {
        format!("{url} dbname={name}")
    }
}

impl TestDb {
    /// A new, empty database, or `None` if the tests are skipped here.
    pub(crate) async fn new() -> Option<TestDb> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let admin = admin_url()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "fleet_test_{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let client = connect(&admin).await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let url = with_database(&admin, &name);
        Some(TestDb { admin, name, url })
    }

    /// A plain connection to this test's database (for looking at the tables directly).
    pub(crate) async fn sql(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }

    /// Ends every other session on this test's database (what a restart of the server or a
    /// network cut does to a pool's connections), waiting until they are gone.
    pub(crate) async fn terminate_sessions(&self) -> i64 {
        let admin = connect(&self.admin).await;
        let rows = admin
            .query(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&self.name],
            )
            .await
            .unwrap();
        rows.len() as i64
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside the test's runtime: drop the database from a thread of its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let client = connect(&admin).await;
                let _ = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            });
        })
        .join();
        if done.is_err() {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

pub(crate) async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A fresh database, or return from the test (skipped) when there is no PostgreSQL.
#[macro_export]
macro_rules! db_or_skip {
    () => {
        match $crate::db::TestDb::new().await {
            Some(db) => db,
            None => return,
        }
    };
}
