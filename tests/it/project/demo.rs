//! `scripts/demo` runs green: it starts its own registry, pushes the
//! sample image it builds, pulls it twice with this binary (the second
//! time from the cache) and loads it; and it leaves no registry running.

use crate::support::util::{require_tool, run, PULLTAR};
use std::process::Command;
use std::time::Duration;

#[test]
fn the_demo_script_runs() {
    require_tool("docker-registry", "docker-registry");
    require_tool("skopeo", "skopeo");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo");
    let mut cmd = Command::new("bash");
    cmd.arg(script)
        .env("PULLTAR", PULLTAR)
        .env_remove("RUST_LOG");
    let res = run(&mut cmd, Duration::from_secs(300));
    assert_eq!(res.code, 0, "scripts/demo failed:\n{res}");
    let out = &res.stdout;
    for want in [
        "Media type:  application/vnd.oci.image.manifest.v1+json",
        "Layers:      3",
        "Cache: 0/3 layers, 0 B saved",
        "Cache: 3/3 layers, ",
        "demo done: pulled 127.0.0.1:",
    ] {
        assert!(
            out.contains(want) || res.stderr.contains(want),
            "{want:?} missing:\n{res}"
        );
    }
    let pid = out
        .lines()
        .find_map(|l| l.split("(pid ").nth(1))
        .and_then(|p| p.trim_end_matches(')').parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no registry pid printed:\n{res}"));
    let alive = std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.contains("docker-registry"));
    assert!(!alive, "the demo left its registry (pid {pid}) running");
}
