//! Any string given as IMAGE: parsing never panics, and a reference that
//! parses keeps its invariants (the familiar name with the tag and digest
//! parses to the same parts; a digest's hex is 64 lowercase hex digits;
//! the default file name has no `/`). The canonical form itself
//! (`docker.io/library/…`) may be longer than the 255 characters a typed
//! name may have, so it is not required to parse again (found by this
//! target).
#![no_main]
use libfuzzer_sys::fuzz_target;
use pulltar::image::reference::Reference;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(r) = Reference::parse(s) else {
        return;
    };
    let name = r.default_file_name();
    assert!(!name.contains('/') && !name.contains('\0'), "{name:?}");
    assert!(!name.starts_with('.'), "{name:?}");
    if let Some(d) = r.digest() {
        assert_eq!(d.hex().len(), 64);
    }
    let _ = (r.scope(), r.manifest_key(), r.familiar_name(), r.repo_tag());
    let name = r.familiar_name();
    let familiar = match (r.tag(), r.digest()) {
        (Some(t), Some(d)) => format!("{name}:{t}@{d}"),
        (Some(t), None) => format!("{name}:{t}"),
        (None, Some(d)) => format!("{name}@{d}"),
        (None, None) => name,
    };
    let again = Reference::parse(&familiar).expect("the familiar form parses");
    assert_eq!(again.registry(), r.registry());
    assert_eq!(again.repository(), r.repository());
    assert_eq!(again.digest(), r.digest());
});
