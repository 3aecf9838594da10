//! Property tests over the parsers that read what users type and what
//! registries send: references, digests, WWW-Authenticate challenges,
//! manifests and indexes, Content-Range, media types. Each property runs a
//! bounded number of cases (well under a minute in all): no input panics,
//! and what is built from valid parts parses back to those parts (and a
//! reference's default file name is one Windows accepts). The
//! unbounded search is `fuzz/` (cargo fuzz).

use crate::support::wine::valid_on_ntfs;
use proptest::prelude::*;
use pulltar::fetch::segment::check_content_range;
use pulltar::image::digest::Digest;
use pulltar::image::manifest::{self, Manifest};
use pulltar::image::reference::Reference;
use pulltar::registry::auth::parse_challenges;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn hex64() -> impl Strategy<Value = String> {
    "[0-9a-f]{64}"
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn reference_never_panics(s in "\\PC{0,300}") {
        if let Ok(r) = Reference::parse(&s) {
            let name = r.default_file_name();
            prop_assert!(valid_on_ntfs(&name), "{} from {:?}", name, s);
            if let Some(d) = r.digest() {
                prop_assert_eq!(d.hex().len(), 64);
            }
        }
    }

    #[test]
    fn reference_parts_round_trip(
        registry in prop::option::of("[a-z0-9]{1,10}\\.[a-z]{2,5}(:[1-9][0-9]{0,3})?"),
        path in "[a-z0-9]{1,10}(/[a-z0-9]{1,10}([._-][a-z0-9]{1,5})?){0,3}",
        tag in prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}"),
        digest in prop::option::of(hex64()),
    ) {
        let mut s = registry.clone().map(|r| format!("{r}/")).unwrap_or_default() + &path;
        if let Some(t) = &tag { s += &format!(":{t}"); }
        if let Some(d) = &digest { s += &format!("@sha256:{d}"); }
        let r = Reference::parse(&s).map_err(|e| TestCaseError::fail(format!("{s}: {e}")))?;
        prop_assert_eq!(r.original(), s.as_str());
        prop_assert!(valid_on_ntfs(&r.default_file_name()), "{}", r.default_file_name());
        match &registry {
            Some(reg) => {
                prop_assert_eq!(r.registry(), reg.as_str());
                prop_assert_eq!(r.repository(), path.as_str());
            }
            None => prop_assert!(r.repository().ends_with(&path)),
        }
        prop_assert_eq!(r.digest().map(|d| d.hex().to_string()), digest.clone());
        if digest.is_none() {
            prop_assert_eq!(r.tag(), Some(tag.as_deref().unwrap_or("latest")));
        }
        let back = Reference::parse(&r.repo_tag().unwrap_or_else(|| r.familiar_name())).unwrap();
        prop_assert_eq!(back.repository(), r.repository());
    }

    #[test]
    fn digest_round_trip_and_junk(h in hex64(), junk in "\\PC{0,100}") {
        let d = Digest::parse(&format!("sha256:{h}")).unwrap();
        prop_assert_eq!(d.to_string(), format!("sha256:{h}"));
        if let Ok(d) = Digest::parse(&junk) {
            prop_assert!(d.hex().bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
        let upper = format!("sha256:{}", h.to_uppercase());
        prop_assert_eq!(Digest::parse(&upper).is_ok(), h.to_uppercase() == h);
    }

    #[test]
    fn challenges_never_panic(s in "\\PC{0,300}") {
        for c in parse_challenges(&s) {
            prop_assert!(!c.scheme.is_empty());
            let _ = pulltar::registry::auth::token_url(&c, &["repository:a:pull".to_string()]);
        }
    }

    #[test]
    fn challenge_params_round_trip(realm in "\\PC{0,60}", service in "\\PC{0,30}") {
        let quote = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
        let header = format!(r#"Bearer realm="{}",service="{}""#, quote(&realm), quote(&service));
        let cs = parse_challenges(&header);
        prop_assert_eq!(cs.len(), 1);
        prop_assert_eq!(cs[0].scheme.as_str(), "bearer");
        prop_assert_eq!(cs[0].param("realm"), Some(realm.as_str()));
        prop_assert_eq!(cs[0].param("service"), Some(service.as_str()));
    }

    #[test]
    fn manifest_junk_never_panics(body in prop::collection::vec(any::<u8>(), 0..400), ct in prop::option::of("\\PC{0,40}")) {
        let _ = manifest::parse(&body, ct.as_deref(), "m");
    }

    #[test]
    fn manifest_fields_round_trip(
        sizes in prop::collection::vec(0u64..(1 << 50), 1..8),
        h in hex64(),
        oci in any::<bool>(),
    ) {
        let mt = if oci { manifest::OCI_MANIFEST } else { manifest::DOCKER_MANIFEST };
        let layers: Vec<String> = sizes.iter().map(|s| format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{h}","size":{s}}}"#)).collect();
        let body = format!(r#"{{"schemaVersion":2,"mediaType":"{mt}","config":{{"mediaType":"a/b","digest":"sha256:{h}","size":3}},"layers":[{}]}}"#, layers.join(","));
        let Manifest::Image(m) = manifest::parse(body.as_bytes(), Some(mt), "m").unwrap() else {
            return Err(TestCaseError::fail("not an image"));
        };
        prop_assert_eq!(m.layers.iter().map(|l| l.size).collect::<Vec<_>>(), sizes);
        prop_assert_eq!(m.config.digest.hex(), h.as_str());
    }

    #[test]
    fn media_types_with_control_characters_are_refused(
        pre in "[a-z/.+-]{0,20}", c in prop::char::range('\0', '\u{1f}'), post in "[a-z]{0,5}"
    ) {
        let mt = format!("{pre}{c}{post}");
        prop_assert!(pulltar::image::media_type::check(&mt).is_err());
        let json = serde_json::json!({"mediaType": mt, "digest": format!("sha256:{}", "0".repeat(64)), "size": 1});
        prop_assert!(serde_json::from_value::<manifest::Descriptor>(json).is_err());
    }

    #[test]
    fn content_range_exact_only(start in 0u64..u64::MAX / 2, len in 1u64..(1 << 40), extra in 0u64..1000, junk in "\\PC{0,60}") {
        let end = start + len;
        let size = end + extra;
        let exact = format!("bytes {start}-{}/{size}", end - 1);
        prop_assert!(check_content_range(&exact, start, end, size).is_ok());
        let star = format!("bytes {start}-{}/*", end - 1);
        prop_assert!(check_content_range(&star, start, end, size).is_ok());
        let shifted = format!("bytes {}-{}/{size}", start + 1, end);
        prop_assert!(check_content_range(&shifted, start, end, size).is_err());
        let short = format!("bytes {start}-{}/{size}", end.saturating_sub(2));
        prop_assert_eq!(check_content_range(&short, start, end, size).is_ok(), false);
        if check_content_range(&junk, start, end, size).is_ok() {
            let prefix = format!("bytes {start}-");
            prop_assert!(junk.trim().starts_with(&prefix));
        }
    }
}
