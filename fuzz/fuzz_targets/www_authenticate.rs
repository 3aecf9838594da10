//! Any WWW-Authenticate header: parsing never panics, every challenge has
//! a lower-case scheme, and the token URL built from a Bearer challenge
//! is an http(s) URL without spaces or control characters.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pulltar::registry::client::auth::{parse_challenges, token_url};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for c in parse_challenges(s) {
        assert!(!c.scheme.is_empty());
        assert_eq!(c.scheme, c.scheme.to_ascii_lowercase());
        if let Ok(url) = token_url(&c, "repository:a/b:pull") {
            assert!(url.starts_with("https://") || url.starts_with("http://"));
        }
    }
});
