//! Any manifest body with any Content-Type: parsing never panics, and
//! every descriptor of a document that parses has a valid digest.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pulltar::image::manifest::{parse, Manifest};

fuzz_target!(|data: &[u8]| {
    let (ct, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (std::str::from_utf8(&data[..i]).ok(), &data[i + 1..]),
        None => (None, data),
    };
    match parse(body, ct, "fuzz") {
        Ok(Manifest::Image(m)) => {
            for d in std::iter::once(&m.config).chain(&m.layers) {
                assert_eq!(d.digest.hex().len(), 64);
                assert!(!d.media_type.chars().any(char::is_control));
            }
        }
        Ok(Manifest::Index(i)) => {
            for d in &i.manifests {
                assert_eq!(d.digest.hex().len(), 64);
                let _ = (d.platform_as_listed(), d.entry_platform(), d.is_attestation());
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
