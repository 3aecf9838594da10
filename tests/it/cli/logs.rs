//! `--log-file`: the debug log goes to the file (requests with method,
//! redacted URL and status, token fetches) while the terminal shows only
//! what it would without it, and no secret or token reaches the file.
//! And the hints an error carries: a 404 lists the repository's tags, a
//! 429 gives the rate limit and when to try again.

use crate::support::auth_registries::TokenRegistry;
use crate::support::fault_case::Case;
use crate::support::faultproxy::{Fault, Rule};
use crate::support::token_server::{PASSWORD, USER};
use crate::support::user_env::Client;
use crate::support::util::Output;

#[test]
fn log_file_holds_the_debug_log_and_no_secret() {
    let t = TokenRegistry::start("private/app");
    let c = Client::new();
    let log = c.work.join("pull.log");
    let stdin = format!("{PASSWORD}\n");
    let args = [
        "-u",
        USER,
        "--password-stdin",
        "--log-file",
        log.to_str().unwrap(),
    ];
    let (res, out) = c.pull(&t.reference(), &args, &[], Some(stdin.as_bytes()));
    assert_eq!(res.code, 0, "{res}");
    assert!(out.is_file());
    let text = std::fs::read_to_string(&log).expect("the log file was written");
    for want in [
        "DEBUG pulltar::registry::transport: GET http://",
        "/v2/private/app/manifests/v1 -> 200",
        "/blobs/sha256:",
        "fetching a token from",
    ] {
        assert!(text.contains(want), "{want:?} not in the log file:\n{text}");
    }
    assert!(
        text.lines()
            .all(|l| l.len() > 24 && l.as_bytes()[10] == b'T'),
        "every line starts with a timestamp:\n{text}"
    );
    // The terminal shows no debug line, and the file nothing secret.
    assert!(
        !res.stderr.contains("DEBUG") && !res.stderr.contains("GET "),
        "{res}"
    );
    t.assert_nothing_leaked(&res);
    t.assert_nothing_leaked(&Output {
        code: 0,
        stdout: String::new(),
        stderr: text,
    });
}

#[test]
fn log_file_that_cannot_be_opened_is_an_error() {
    let c = Client::new();
    let bad = c.work.join("no/such/dir/pull.log");
    let (res, _) = c.pull(
        "127.0.0.1:1/x:y",
        &["--log-file", bad.to_str().unwrap()],
        &[],
        None,
    );
    assert_eq!(res.code, 1, "{res}");
    assert!(res.stderr.contains("cannot open the log file"), "{res}");
}

#[test]
fn a_missing_tag_lists_the_tags_there_are() {
    let case = Case::small();
    let wrong = format!("{}/team/app:v9", case.px.host());
    let res = crate::support::util::pulltar_in(case.work.path(), &[&wrong, "--no-cache"]);
    assert_eq!(res.code, 1, "{res}");
    assert!(res.stderr.contains("answered HTTP 404"), "{res}");
    assert!(
        res.stderr.contains("hint: ") && res.stderr.contains("/team/app has these tags: v1"),
        "{res}"
    );
    let repo = format!("{}/team/nothing:v1", case.px.host());
    let res = crate::support::util::pulltar_in(case.work.path(), &[&repo, "--no-cache"]);
    assert_eq!(res.code, 1, "{res}");
    assert!(
        res.stderr
            .contains("the repository team/nothing does not exist"),
        "{res}"
    );
}

#[test]
fn rate_limiting_says_when_to_try_again() {
    let case = Case::small();
    let headers = vec![
        ("Retry-After".to_string(), "7".to_string()),
        ("RateLimit-Limit".to_string(), "100;w=21600".to_string()),
        ("RateLimit-Remaining".to_string(), "0;w=21600".to_string()),
        ("RateLimit-Reset".to_string(), "3600".to_string()),
    ];
    case.px
        .add(Rule::new("/manifests/v1", Fault::Status(429, headers)));
    let res = case.pull(&["--retries", "0"]);
    assert_eq!(res.code, 1, "{res}");
    for want in [
        "answered HTTP 429",
        "rate limit: limit 100;w=21600, remaining 0;w=21600, resets in 3600 s, at ",
        "hint: the registry is rate limiting: it asks to wait 7 s (until ",
        " UTC)",
    ] {
        assert!(res.stderr.contains(want), "{want:?} missing:\n{res}");
    }
}
