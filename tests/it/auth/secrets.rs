//! No secret anywhere: a pull from a token-auth registry with a password
//! on stdin, `--debug`, `RUST_LOG=trace` and `--log-file`, into a cache,
//! must leave the password, its Basic form and the bearer tokens out of
//! stdout, stderr, the log file, every file of the cache (blobs, partial
//! blobs, journals, locks) and the archive; the log file is owner-only.

use crate::support::auth_registries::TokenRegistry;
use crate::support::token_server::{PASSWORD, USER};
use crate::support::user_env::userpass;
use crate::support::util::{run_with_input, TempDir, PULLTAR};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn no_secret_in_output_log_cache_or_archive() {
    let t = TokenRegistry::start("private/app");
    let work = TempDir::new("secrets");
    let mut cmd = Command::new(PULLTAR);
    cmd.args([&t.reference(), "-o", "out.tar", "--cache-dir", "cache"])
        .args([
            "-u",
            USER,
            "--password-stdin",
            "--debug",
            "--log-file",
            "pull.log",
        ])
        .current_dir(work.path())
        .env("RUST_LOG", "trace")
        .env_remove("DOCKER_CONFIG")
        .env("HOME", work.path());
    let stdin = format!("{PASSWORD}\n");
    let res = run_with_input(&mut cmd, Some(stdin.as_bytes()), Duration::from_secs(120));
    assert_eq!(res.code, 0, "{res}");
    t.assert_nothing_leaked(&res);
    let log = work.join("pull.log");
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the log file is owner-only");
    assert!(
        std::fs::read_to_string(&log).unwrap().contains("GET "),
        "the log file holds the debug log"
    );
    let mut secrets = vec![PASSWORD.to_string(), userpass(USER, PASSWORD)];
    for token in t.tokens.issued.lock().unwrap().iter() {
        secrets.push(token.rsplit('.').next().unwrap()[..40].to_string());
    }
    assert!(secrets.len() > 2, "a token was issued");
    let files = files_under(work.path());
    assert!(files.len() >= 5, "{files:?}");
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        for s in &secrets {
            assert!(
                !contains(&bytes, s),
                "{} holds the secret {s:?}",
                f.display()
            );
        }
    }
}
