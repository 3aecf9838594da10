//! The command line itself: usage errors (exit 2), bad references, help and
//! version, flag aliases, the default output name and `-o DIR`.

use crate::support::images::{push_simple, Flavor};
use crate::support::loaders::check_archive;
use crate::support::registry::Registry;
use crate::support::util::{hex_of, pulltar_in, TempDir};

#[test]
fn bad_reference_is_rejected_with_the_input_quoted() {
    let dir = TempDir::new("badref");
    let cache = dir.join("cache");
    let res = pulltar_in(
        dir.path(),
        &["UPPER/Case:tag", "--cache-dir", cache.to_str().unwrap()],
    );
    assert!(
        res.code == 2 || res.code == 1,
        "exit 2 (or 1) for a bad reference:\n{res}"
    );
    let quoted = ["'UPPER/Case:tag'", "\"UPPER/Case:tag\"", "`UPPER/Case:tag`"];
    assert!(
        quoted.iter().any(|q| res.stderr.contains(q)),
        "stderr should quote the input:\n{res}"
    );
    assert!(
        !dir.list().iter().any(|f| f.ends_with(".tar")),
        "no archive for a bad reference"
    );
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let dir = TempDir::new("flag");
    let res = pulltar_in(
        dir.path(),
        &["--definitely-not-a-flag", "127.0.0.1:1/a/b:c"],
    );
    assert_eq!(res.code, 2, "{res}");
    assert!(
        res.stderr.contains("definitely-not-a-flag"),
        "stderr should name the flag:\n{res}"
    );
}

#[test]
fn missing_image_is_a_usage_error() {
    let dir = TempDir::new("noarg");
    let res = pulltar_in(dir.path(), &[]);
    assert_eq!(res.code, 2, "{res}");
    let res = pulltar_in(
        dir.path(),
        &["--threads", "many", "127.0.0.1:1/a/b:c", "--no-cache"],
    );
    assert_eq!(res.code, 2, "non-numeric --threads:\n{res}");
}

#[test]
fn help_and_version() {
    let dir = TempDir::new("help");
    let res = pulltar_in(dir.path(), &["--help"]);
    assert_eq!(res.code, 0, "{res}");
    for flag in ["--output", "--platform", "--threads", "--cache-dir"] {
        assert!(res.stdout.contains(flag), "help lacks {flag}:\n{res}");
    }
    assert_eq!(pulltar_in(dir.path(), &["-h"]).code, 0);
    let res = pulltar_in(dir.path(), &["-V"]);
    assert_eq!(res.code, 0, "{res}");
    assert!(res.stdout.contains(env!("CARGO_PKG_VERSION")), "{res}");
}

#[test]
fn default_output_name_in_cwd() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v2", Flavor::Docker);
    let cwd = TempDir::new("cwd");
    let cache = TempDir::new("cwd-cache");
    let res = pulltar_in(
        cwd.path(),
        &[
            &format!("{}/team/app:v2", reg.host()),
            "--cache-dir",
            cache.path().to_str().unwrap(),
        ],
    );
    assert_eq!(res.code, 0, "{res}");
    assert_eq!(cwd.list(), vec!["team_app_v2.tar".to_string()]);
    check_archive(
        &cwd.join("team_app_v2.tar"),
        &img,
        &[format!("{}/team/app:v2", reg.host())],
    );
}

#[test]
fn default_output_name_for_a_digest_reference() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v2", Flavor::Docker);
    let cwd = TempDir::new("cwd-dig");
    let cache = TempDir::new("cwd-dig-cache");
    let reference = format!("{}/team/app@{}", reg.host(), img.manifest_digest);
    let res = pulltar_in(
        cwd.path(),
        &[&reference, "--cache-dir", cache.path().to_str().unwrap()],
    );
    assert_eq!(res.code, 0, "{res}");
    let name = format!("team_app_{}.tar", &hex_of(&img.manifest_digest)[..12]);
    assert_eq!(cwd.list(), vec![name.clone()]);
    check_archive(&cwd.join(&name), &img, &[]);
}

#[test]
fn output_into_an_existing_directory() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v2", Flavor::Docker);
    let work = TempDir::new("odir");
    let cache = work.join("cache");
    let reference = format!("{}/team/app:v2", reg.host());
    let tags = [reference.clone()];
    for (sub, arg) in [("a", "a/"), ("b", "b")] {
        std::fs::create_dir(work.join(sub)).unwrap();
        let res = pulltar_in(
            work.path(),
            &[
                &reference,
                "-o",
                arg,
                "--cache-dir",
                cache.to_str().unwrap(),
            ],
        );
        assert_eq!(res.code, 0, "-o {arg}:\n{res}");
        assert_eq!(
            crate::support::util::list_dir(&work.join(sub)),
            vec!["team_app_v2.tar".to_string()],
            "-o {arg}"
        );
        check_archive(&work.join(sub).join("team_app_v2.tar"), &img, &tags);
    }
    // And as an absolute path with a trailing slash, long option spelling.
    std::fs::create_dir(work.join("c")).unwrap();
    let abs = format!("{}/", work.join("c").display());
    let res = pulltar_in(
        work.path(),
        &[
            &reference,
            "--output",
            &abs,
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
    );
    assert_eq!(res.code, 0, "--output {abs}:\n{res}");
    check_archive(&work.join("c/team_app_v2.tar"), &img, &tags);
}

#[test]
fn thread_flag_aliases_are_accepted() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v2", Flavor::Docker);
    let work = TempDir::new("alias");
    let reference = format!("{}/team/app:v2", reg.host());
    let flags: [&[&str]; 5] = [
        &["-t", "1"],
        &["-j", "2"],
        &["--workers", "3"],
        &["--max-concurrent-downloads", "4"],
        &["--threads=2"],
    ];
    for (i, flag) in flags.iter().enumerate() {
        let out = work.join(&format!("{i}.tar"));
        let mut args = vec![
            reference.as_str(),
            "-o",
            out.to_str().unwrap(),
            "--no-cache",
        ];
        args.extend_from_slice(flag);
        let res = pulltar_in(work.path(), &args);
        assert_eq!(res.code, 0, "{flag:?}:\n{res}");
        check_archive(&out, &img, std::slice::from_ref(&reference));
    }
}

#[test]
fn cache_serves_a_blob_the_registry_lost() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v2", Flavor::Docker);
    let work = TempDir::new("cache");
    let reference = format!("{}/team/app:v2", reg.host());
    let cache = work.join("cache");
    let first = work.join("first.tar");
    let res = pulltar_in(
        work.path(),
        &[
            &reference,
            "-o",
            first.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
    );
    assert_eq!(res.code, 0, "{res}");
    for l in &img.layers {
        reg.delete_blob("team/app", &l.digest);
    }
    let second = work.join("second.tar");
    let res = pulltar_in(
        work.path(),
        &[
            &reference,
            "-o",
            second.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
    );
    assert_eq!(
        res.code, 0,
        "layers in --cache-dir should not be fetched again:\n{res}"
    );
    check_archive(&second, &img, std::slice::from_ref(&reference));
}

/// `-o -` onto a terminal (a real pseudo-terminal, made by `script`) is a
/// usage error before anything is fetched: no binary on the screen.
#[test]
fn stdout_onto_a_terminal_is_refused() {
    let script = crate::support::util::require_tool("script", "bsdutils");
    let work = TempDir::new("tty");
    // A loopback reference: even if the check regressed, nothing leaves
    // this machine.
    let cmd = format!(
        "{} 127.0.0.1:9/team/app:v1 -o - --no-cache",
        crate::support::util::PULLTAR
    );
    let out = std::process::Command::new(script)
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(work.path())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("terminal"), "{text}");
    assert!(work.list().is_empty(), "files appeared: {:?}", work.list());
}
