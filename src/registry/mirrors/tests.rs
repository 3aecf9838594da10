//! The unit tests of `mirrors.rs`.

use super::*;

fn http(status: u16) -> Error {
    Error::Http {
        what: "fetching blob x".into(),
        url: "GET https://m/v2/x/blobs/y".into(),
        status,
        excerpt: String::new(),
        retry_after: None,
    }
}

#[test]
fn a_hosts_own_failures_go_to_the_next_host() {
    for status in [401, 403, 404, 429, 500, 503] {
        assert!(fails_over(&http(status)), "{status}");
    }
    let hinted = http(404).with_hint("check the name");
    assert!(fails_over(&hinted));
    let verify = Error::Verify {
        digest: "sha256:x".into(),
        detail: "hashes to y".into(),
    };
    assert!(fails_over(&verify));
    for own in [
        Error::Interrupted { resumable: true },
        Error::Aborted,
        Error::Usage("bad".into()),
        Error::io("write", "/tmp/x", std::io::Error::other("disk full")),
    ] {
        assert!(!fails_over(&own), "{own}");
    }
}

#[test]
fn every_host_is_named_with_why_it_failed() {
    let up = Hosts {
        members: vec![
            member("m1.example".into(), None, false),
            member("m2.example:5000".into(), None, false),
            member("registry-1.docker.io".into(), None, true),
        ],
        notes: Mutex::default(),
    };
    *up.members[0].why.lock().unwrap() = Some("HTTP 404".into());
    *up.members[1].why.lock().unwrap() = Some("connection refused".into());
    assert!(up.order().is_empty() && up.usable().is_empty());
    let e = up
        .exhausted("contacting the mirrors for nginx", None)
        .to_string();
    for s in [
        "mirror m1.example: HTTP 404",
        "mirror m2.example:5000: connection refused",
        "Docker Hub (registry-1.docker.io): not tried",
    ] {
        assert!(e.contains(s), "{s} missing from {e}");
    }
    let e = up.exhausted("x", Some(http(503))).to_string();
    assert!(e.contains("HTTP 503") || e.contains("503"), "{e}");
    assert!(e.contains("every host failed"), "{e}");
}
