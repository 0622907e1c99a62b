//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub const DEMO_APP: &str = "00000000-0000-0000-0000-00000000d3e0";
pub const DEMO_SECRET: &str = "demo-secret-do-not-use-in-production";
pub const TENANT: &str = "contoso.example";

pub async fn start() -> sandbox::Sandbox {
    sandbox::Sandbox::builder()
        .start()
        .await
        .expect("sandbox starts")
}
