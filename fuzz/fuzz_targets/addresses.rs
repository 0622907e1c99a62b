//! Addresses from header values: single addresses, address lists (display names, RFC 2047
//! encoded words, groups, quoted local parts, IDN domains) and sub-address splitting.
#![no_main]

use addressing::{EmailAddress, Separator, SubAddress, parse_address_list};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(a) = EmailAddress::parse(s) {
        // A parsed address prints and re-parses to the same address.
        let printed = a.to_string();
        match EmailAddress::parse(&printed) {
            Ok(b) => assert_eq!(a, b, "re-parse of {printed:?} differs"),
            Err(e) => panic!("{printed:?} (printed from {s:?}) does not re-parse: {e}"),
        }
        for sep in ['+', '-', '_', '.'] {
            if let Ok(sep) = Separator::new(sep) {
                let sub = SubAddress::of(&a, sep);
                let _ = sub.compose(sep);
            }
        }
    }
    if let Ok(list) = parse_address_list(s) {
        let _ = format!("{list:?}");
    }
    for sep in ['+', '-', '=', '#'] {
        if let Ok(sep) = Separator::new(sep) {
            let sub = SubAddress::split(s, sep);
            // Composing the parts gives back the local part.
            assert_eq!(sub.compose(sep), s, "split/compose of {s:?}");
        }
    }
});
