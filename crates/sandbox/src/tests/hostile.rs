//! Hostile input to the sandbox's insides never panics: addresses to route, garbage bearer tokens
//! (moved from `tests/it/hostile.rs`).

use proptest::prelude::*;

use crate::auth::{Resource, authenticate_bearer};

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn routing_never_panics(addr in "[ -~]{0,80}") {
        let seed = crate::Seed::demo();
        let _ = crate::delivery::route(seed.tenant(), &addr, 0);
    }
}

#[tokio::test]
async fn garbage_tokens_are_refused_not_panicked_on() {
    let sb = super::common::start().await;
    let mut runner = proptest::test_runner::TestRunner::default();
    let strat = "[A-Za-z0-9_.=-]{0,300}";
    for _ in 0..200 {
        let t = proptest::strategy::ValueTree::current(
            &proptest::strategy::Strategy::new_tree(&strat, &mut runner).unwrap(),
        );
        assert!(authenticate_bearer(sb.state(), &t, Resource::Graph).is_err());
    }
}
