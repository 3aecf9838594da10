//! Double-click use, on Linux: started with no arguments under a real
//! pseudo-terminal (`script` from bsdutils, as `progress.rs` drives it),
//! pulltar asks for the image, the platform and where to save, then pulls
//! with the progress display; a wrong answer is asked again. It never asks
//! when an argument is given or standard input is not a terminal. (The
//! Windows exe's side, under Wine, is in `cross/windows.rs`.)

use super::progress::play;
use crate::support::images::{push_simple, Flavor};
use crate::support::loaders::check_archive;
use crate::support::registry::Registry;
use crate::support::util::{require_tool, run_with_input, Output, TempDir, PULLTAR};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `pulltar ARGS` under a pty in `cwd`, `answers` typed on its terminal;
/// the cache is `cwd/cache` (through `XDG_CACHE_HOME`). Returns what the
/// terminal showed (in `stdout`).
fn on_a_terminal(cwd: &Path, args: &str, answers: &str) -> Output {
    let script = require_tool("script", "bsdutils");
    let cmd = format!("stty cols 100 rows 40; exec {PULLTAR} {args}");
    let mut c = Command::new(script);
    c.args(["-qfec", &cmd, "/dev/null"])
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .env_remove("DOCKER_CONFIG")
        .env("XDG_CACHE_HOME", cwd.join("cache"))
        .env("TERM", "xterm");
    run_with_input(&mut c, Some(answers.as_bytes()), Duration::from_secs(120))
}

#[test]
fn with_no_arguments_on_a_terminal_it_asks_then_pulls() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let work = TempDir::new("ask");
    let reference = format!("{}/team/app:v1", reg.host());
    // A wrong image first (asked again), then the defaults: this host's
    // platform and the current folder.
    let answers = format!("Not/An/Image:!\n{reference}\n\n\n");
    let res = on_a_terminal(work.path(), "", &answers);
    assert_eq!(res.code, 0, "the asked-for pull failed:\n{res}");
    let (screen, _) = play(res.stdout.as_bytes(), 100);
    let shown = screen.join("\n");
    // The answers were typed ahead, so the terminal echoed them first and
    // the questions that follow share lines.
    let asked = |q: &str| shown.matches(q).count();
    assert_eq!(asked("Image (for example nginx:1.25):"), 2, "{shown}");
    assert_eq!(asked("Platform [linux/amd64]:"), 1, "{shown}");
    let folder = format!("Save in [{}]:", work.path().display());
    assert_eq!(asked(&folder), 1, "{shown}");
    assert!(
        screen.iter().any(|l| l.starts_with("Pulled ")),
        "no progress summary:\n{shown}"
    );
    assert!(!shown.contains("Press Enter"), "{shown}");
    let tar = work.join("team_app_v1.tar");
    check_archive(&tar, &img, &[reference]);
    assert!(work.join("cache/pulltar/blobs/sha256").is_dir(), "{shown}");
}

#[test]
fn answers_choose_the_platform_and_the_file() {
    let reg = Registry::start();
    let index = crate::support::images::push_index(&reg, "team/multi", "v1", Flavor::Oci);
    let work = TempDir::new("askplat");
    std::fs::create_dir(work.join("out")).unwrap();
    let reference = format!("{}/team/multi:v1", reg.host());
    let out = work.join("out/arm.tar");
    let answers = format!("{reference}\narm64\n\"{}\"\n", out.display());
    let res = on_a_terminal(work.path(), "", &answers);
    assert_eq!(res.code, 0, "{res}");
    check_archive(
        &out,
        index.child(&crate::support::images::ARM64),
        &[reference],
    );
}

#[test]
fn it_never_asks_when_given_an_argument_or_without_a_terminal() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let work = TempDir::new("noask");
    let reference = format!("{}/team/app:v1", reg.host());
    // An argument, on a terminal: the pull runs, nothing is asked.
    let res = on_a_terminal(work.path(), &format!("{reference} -o a.tar"), "x\n\n\n");
    assert_eq!(res.code, 0, "{res}");
    assert!(!res.stdout.contains("Image ("), "{res}");
    check_archive(&work.join("a.tar"), &img, std::slice::from_ref(&reference));
    // No argument but a pipe on stdin: the usage error, at once.
    let mut c = Command::new(PULLTAR);
    c.current_dir(work.path()).env_remove("RUST_LOG");
    let res = run_with_input(
        &mut c,
        Some(format!("{reference}\n").as_bytes()),
        Duration::from_secs(20),
    );
    assert_eq!(res.code, 2, "{res}");
    assert!(res.stderr.contains("no image given"), "{res}");
    assert!(
        !res.stderr.contains("Image (") && !res.stdout.contains("Image ("),
        "{res}"
    );
    // The end of input on a terminal, before any answer: a usage error.
    let res = on_a_terminal(work.path(), "", "\u{4}");
    assert_eq!(res.code, 2, "{res}");
    assert!(res.stdout.contains("no answer"), "{res}");
}
