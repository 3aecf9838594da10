//! Media types read from the network (descriptor `mediaType` fields):
//! checked when a document is parsed, so that no control character, escape
//! sequence or non-ASCII text from a registry reaches a terminal, a log
//! line or the archive's index documents.
//!
//! A media type must be printable ASCII (spaces allowed, as in
//! `; charset=utf-8`), at most 255 characters; its shape is not checked
//! here, since an unknown type is `manifest.rs`'s to judge. The type of a
//! document received is its `Content-Type`, else its own `mediaType`
//! ([`of_document`]). This module only checks and reads; it knows no
//! particular type.

use serde::{Deserialize, Deserializer};

/// The longest media type accepted.
pub const MAX_LEN: usize = 255;

/// Checks `mt`; the error quotes it with control characters escaped.
pub fn check(mt: &str) -> Result<(), String> {
    let bad = |why: &str| {
        let shown: String = mt.chars().take(80).collect();
        Err(format!("media type {shown:?} {why}"))
    };
    if mt.is_empty() {
        return Ok(());
    }
    if mt.len() > MAX_LEN {
        return bad(&format!("is longer than {MAX_LEN} characters"));
    }
    if mt.chars().any(|c| c.is_control() || !c.is_ascii()) {
        return bad("contains control or non-ASCII characters");
    }
    Ok(())
}

/// The media type of a manifest or index received with `content_type`:
/// the header (without parameters), unless it is empty or generic
/// (`application/json`, `text/plain`), else the document's own
/// `mediaType`, else empty; control characters made harmless.
pub fn of_document(bytes: &[u8], content_type: Option<&str>) -> String {
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
        .filter(|c| !c.is_empty() && c != "application/json" && c != "text/plain");
    let own = || {
        serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()?
            .get("mediaType")?
            .as_str()
            .map(str::to_string)
    };
    let t = header.or_else(own).unwrap_or_default();
    crate::error::excerpt(t.as_bytes(), 120)
}

/// Deserialises a `mediaType` field through [`check`].
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    check(&s).map_err(serde::de::Error::custom)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_types() {
        assert_eq!(
            of_document(b"{}", Some("application/vnd.oci.image.index.v1+json; x=y")),
            "application/vnd.oci.image.index.v1+json"
        );
        assert_eq!(
            of_document(br#"{"mediaType":"a/b"}"#, Some("application/json")),
            "a/b"
        );
        assert_eq!(of_document(b"{}", None), "");
    }

    #[test]
    fn real_types_pass() {
        for mt in [
            "",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            "application/vnd.oci.image.manifest.v1+json",
            "application/json; charset=utf-8",
        ] {
            assert!(check(mt).is_ok(), "{mt}");
        }
    }

    #[test]
    fn bad_types_are_named_and_escaped() {
        for (mt, why) in [
            ("application/x\u{1b}[2J", "control"),
            ("application/x\0", "control"),
            ("application/x\n", "control"),
            ("appl\u{e9}/x", "non-ASCII"),
            ("a/b; x=\u{7f}", "control"),
        ] {
            let e = check(mt).unwrap_err();
            assert!(e.contains(why), "{mt:?}: {e}");
            assert!(
                !e.contains('\u{1b}') && !e.contains('\0') && !e.contains('\n'),
                "{e}"
            );
        }
        assert!(check(&format!("a/{}", "b".repeat(300))).is_err());
    }
}
