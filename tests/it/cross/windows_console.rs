//! The Windows exe on a console, under Wine: started with no arguments in
//! a console of its own (what a double-click in Explorer gives), it asks
//! for the image, the platform and where to save, shows the progress, and
//! waits for Enter before the window would close, after a success or a
//! failure; without a console (standard input a pipe or nothing) it never
//! asks; and `-o -` onto the console is refused, as onto a terminal.

use crate::support::images::{push_simple, Flavor};
use crate::support::registry::Registry;
use crate::support::targets::loads_everywhere;
use crate::support::util::TempDir;
use crate::support::wine::{win_path, Wine};
use crate::support::wine_procs::Console;

#[test]
fn windows_exe_started_alone_in_a_console_asks_pulls_and_waits_for_enter() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let wine = Wine::new();
    let work = TempDir::new("winask");
    let reference = format!("{}/team/app:v1", reg.host());
    let mut con = Console::start(&wine, work.path(), &[]);
    con.expect("Image (for example nginx:1.25):");
    con.type_line("Not An Image");
    con.expect("invalid image reference");
    con.expect("Image (for example nginx:1.25):");
    con.type_line(&reference);
    con.expect("Platform [linux/amd64]:");
    con.type_line("");
    con.expect(&format!("Save in [{}]:", win_path(work.path())));
    con.type_line("");
    con.expect("Pulled ");
    con.expect("Press Enter to close this window.");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(con.running(), "the window closed without waiting for Enter");
    con.type_line("");
    let res = con.wait();
    assert_eq!(res.code, 0, "{res}");
    // The progress was drawn: the blobs' lines, each done.
    assert!(res.stdout.matches("100%").count() >= 3, "{res}");
    let blobs = wine.local_app_data().join("pulltar/blobs/sha256");
    assert!(blobs.is_dir(), "no cache in %LOCALAPPDATA%\\pulltar");
    assert_eq!(work.list(), ["team_app_v1.tar"]);
    loads_everywhere(&work.join("team_app_v1.tar"), &img, &reference);
}

#[test]
fn windows_exe_started_alone_in_a_console_keeps_an_error_readable() {
    let reg = Registry::start();
    push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let wine = Wine::new();
    let work = TempDir::new("winaskerr");
    let mut con = Console::start(&wine, work.path(), &[]);
    con.expect("Image (for example nginx:1.25):");
    con.type_line(&format!("{}/team/app:missing", reg.host()));
    con.expect("Platform [");
    con.type_line("arm64");
    con.expect("Save in [");
    con.type_line("");
    con.expect("pulltar: error:");
    con.expect("Press Enter to close this window.");
    assert!(con.running(), "the window closed without waiting for Enter");
    con.type_line("");
    let res = con.wait();
    assert_eq!(res.code, 1, "{res}");
    assert!(work.list().is_empty(), "{:?}", work.list());
}

#[test]
fn windows_exe_without_a_console_never_asks() {
    let reg = Registry::start();
    push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let wine = Wine::new();
    let work = TempDir::new("winnoask");
    let reference = format!("{}/team/app:v1", reg.host());
    let line = format!("{reference}\n\n\n\n");
    for input in [None, Some(line.as_bytes())] {
        let start = std::time::Instant::now();
        let res = wine.run(work.path(), &[], input);
        assert_eq!(res.code, 2, "{res}");
        assert!(res.stderr.contains("no image given"), "{res}");
        for never in ["Image (", "Press Enter"] {
            assert!(
                !res.stderr.contains(never) && !res.stdout.contains(never),
                "{never:?} shown without a console:\n{res}"
            );
        }
        assert!(start.elapsed().as_secs() < 60, "{res}");
    }
    assert!(work.list().is_empty(), "{:?}", work.list());
}

#[test]
fn windows_exe_refuses_to_write_the_archive_onto_the_console() {
    let reg = Registry::start();
    push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let wine = Wine::new();
    let work = TempDir::new("winoconsole");
    let reference = format!("{}/team/app:v1", reg.host());
    let mut con = Console::start(&wine, work.path(), &[&reference, "-o", "-"]);
    con.expect("pulltar: error: -o - writes a binary archive to standard output");
    let res = con.wait();
    assert_eq!(res.code, 2, "{res}");
    assert!(!res.stdout.contains("Press Enter"), "{res}");
}
