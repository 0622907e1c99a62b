//! A fresh database per test (`test_support::postgres`): made through the admin URL in
//! `M365MAIL_TEST_POSTGRES` and dropped afterwards, so that tests run in parallel without
//! seeing each other's rows.

/// A fresh database, or return from the test (skipped, or failing under `CI=true`) when there
/// is no PostgreSQL.
#[macro_export]
macro_rules! db_or_skip {
    () => {
        match test_support::postgres::TestDatabase::create("fleet_test").await {
            Some(db) => db,
            None => return,
        }
    };
}
