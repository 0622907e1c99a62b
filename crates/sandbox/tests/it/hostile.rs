//! Hostile input never panics: arbitrary MIME, addresses, seeds, tokens and forms.

use proptest::prelude::*;
use sandbox::store::MessageProps;

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn mime_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = MessageProps::from_mime(&bytes);
    }

    #[test]
    fn header_like_mime_never_panics(s in "([A-Za-z-]{0,12}:[ -~]{0,40}\r?\n[ \t]?){0,12}\r?\n[ -~]{0,200}") {
        if let Ok(p) = MessageProps::from_mime(s.as_bytes()) {
            prop_assert!(p.body_preview.chars().count() <= 255);
        }
    }

    #[test]
    fn seed_parsing_never_panics(s in "[ -~\n]{0,400}") {
        let _ = sandbox::Seed::from_toml_str(&s);
        let _ = sandbox::Seed::from_json_str(&s);
    }

    #[test]
    fn permission_parsing_never_panics(s in "[ -~]{0,80}") {
        let _ = sandbox::tenant::Permission::parse(&s);
    }
}
