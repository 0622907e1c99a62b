//! A fresh PostgreSQL database per test, on the server named by `M365MAIL_TEST_POSTGRES`
//! (`cargo xtask ci` starts a throw-away one and sets it). Without the variable a test that
//! needs the database says that it was skipped, and under `CI=true` it fails instead: CI never
//! passes by skipping.

use tokio_postgres::NoTls;

/// The environment variable naming the test server (a URL to a database the tests may create
/// other databases from).
pub const ENV: &str = "M365MAIL_TEST_POSTGRES";

/// A database created for one test, dropped when this is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// A new, empty database named after `prefix` and a unique suffix; `None` (after saying so
    /// on stderr) when no server is configured. Panics under `CI=true` without one.
    pub async fn create(prefix: &str) -> Option<TestDatabase> {
        let Ok(admin_url) = std::env::var(ENV) else {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "{ENV} is not set under CI=true: the PostgreSQL tests must run (cargo xtask ci \
                 starts a server)"
            );
            eprintln!(
                "skipped: no PostgreSQL (set {ENV}=postgres://..., or run `cargo xtask ci`, which \
                 starts one)"
            );
            return None;
        };
        let name = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let client = connect(&admin_url).await;
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("CREATE DATABASE");
        let url = with_database(&admin_url, &name);
        Some(TestDatabase {
            admin_url,
            name,
            url,
        })
    }

    /// The URL of the new database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL of the server's admin database (to create, drop or inspect others).
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A plain connection to the database (to look at its tables directly).
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }

    /// The one integer `sql` selects (a count, say).
    pub async fn query_i64(&self, sql: &str) -> i64 {
        let client = connect(&self.url).await;
        let row = client.query_one(sql, &[]).await.expect(sql);
        row.get(0)
    }

    /// Runs `sql` (statements separated by `;`) on the database.
    pub async fn execute(&self, sql: &str) {
        connect(&self.url)
            .await
            .batch_execute(sql)
            .await
            .expect(sql);
    }

    /// Closes every connection to the database from the server's side, as a restart or a
    /// failover would, waiting (up to 5 s each) until they are gone; returns how many.
    pub async fn terminate_connections(&self) -> usize {
        let client = connect(&self.admin_url).await;
        client
            .query(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&self.name],
            )
            .await
            .expect("pg_terminate_backend")
            .len()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Dropped from async tests too: a thread of its own with a runtime of its own.
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok((client, conn)) = tokio_postgres::connect(&admin, NoTls).await {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test PostgreSQL ({ENV}): {e}"));
    tokio::spawn(conn);
    client
}

/// `url` with its database (the path) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5432/postgres", "t1"),
            "postgres://u@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u@h:1?sslmode=disable", "t2"),
            "postgres://u@h:1/t2?sslmode=disable"
        );
    }
}
