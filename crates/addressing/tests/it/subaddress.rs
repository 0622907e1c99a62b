use addressing::{Separator, SubAddress};
use proptest::prelude::*;

use crate::addr;

#[test]
fn split_table() {
    let plus = Separator::default();
    let cases = [
        ("support", "support", None),
        ("support+payments", "support", Some("payments")),
        ("support+", "support", Some("")),
        ("support+a+b", "support", Some("a+b")),
        ("+leading", "+leading", None),
        ("a++", "a", Some("+")),
    ];
    for (local, user, detail) in cases {
        let s = SubAddress::split(local, plus);
        assert_eq!((s.user(), s.detail()), (user, detail), "{local:?}");
        assert_eq!(s.compose(plus), local, "{local:?}");
    }
}

#[test]
fn no_detail_differs_from_empty_detail() {
    let sep = Separator::default();
    assert_ne!(SubAddress::split("x", sep), SubAddress::split("x+", sep));
    assert_eq!(SubAddress::new("x", None).compose(sep), "x");
    assert_eq!(SubAddress::new("x", Some("")).compose(sep), "x+");
}

#[test]
fn other_separators() {
    let dash = Separator::new('-').unwrap();
    let s = SubAddress::of(&addr("support-payments+x@contoso.com"), dash);
    assert_eq!((s.user(), s.detail()), ("support", Some("payments+x")));
    assert_eq!(
        s.to_address(dash, "contoso.com").unwrap().to_string(),
        "support-payments+x@contoso.com"
    );
    for bad in ['a', '7', '@', '.', '"', '\\', ' ', '\n', '<', ','] {
        assert!(Separator::new(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn separator_serde() {
    let sep: Separator = serde_json::from_str(r#""=""#).unwrap();
    assert_eq!(sep.as_char(), '=');
    assert!(serde_json::from_str::<Separator>(r#""++""#).is_err());
    assert!(serde_json::from_str::<Separator>(r#""""#).is_err());
    assert!(serde_json::from_str::<Separator>(r#""x""#).is_err());
    assert_eq!(
        serde_json::to_string(&Separator::default()).unwrap(),
        r#""+""#
    );
}

proptest! {
    #[test]
    fn compose_then_split_round_trips(
        user in "[a-z0-9._-]{1,20}",
        detail in proptest::option::of("[a-z0-9+._-]{0,20}"),
        sep in prop::sample::select(vec!['+', '-', '=', '#', '~'])
    ) {
        let sep = Separator::new(sep).unwrap();
        // The user part never holds the separator (that is what the separator means).
        let user = user.replace(sep.as_char(), "_");
        let s = SubAddress::new(&user, detail.as_deref());
        let local = s.compose(sep);
        prop_assert_eq!(SubAddress::split(&local, sep), s);
    }

    #[test]
    fn split_then_compose_round_trips(local in "[a-z0-9+=._-]{1,40}") {
        for sep in ['+', '-', '='] {
            let sep = Separator::new(sep).unwrap();
            let s = SubAddress::split(&local, sep);
            prop_assert_eq!(s.compose(sep), local.clone());
            prop_assert!(!s.user().is_empty());
            // The user never holds the separator unless there was no split.
            if s.detail().is_some() {
                prop_assert!(!s.user().contains(sep.as_char()));
            }
        }
    }
}
