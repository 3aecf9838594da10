//! A push round: the archive a round pulled (and checked) is pushed with
//! `pulltar push` through the fault proxy into the real registry as
//! `soak/pK:v1`, with faults on the push's own requests: 5xx and 429
//! (with and without `Retry-After`), hang-ups and resets in the middle of
//! a body, on the blob and manifest `HEAD`s, the `POST` that opens an
//! upload, the `PATCH` chunks (a 413 on the first whole blob sends the
//! rest in chunks) and the `PUT`s; sometimes SIGKILL or SIGINT at a random
//! moment. Then the same push again without faults. Whether a round
//! pushes, and its plan, are drawn in `push_plan.rs`.
//!
//! Invariants, counted apart in the summary:
//! - `pushed`: exit 0 ⇒ the push names the archive's manifest digest and
//!   the tag resolves to it;
//! - `tags`: after each push the tag, if there is one, names no missing
//!   blob or child manifest (asked of the registry itself: the manifest by
//!   tag, then `HEAD` of everything it references);
//! - `push-rerun`: the push without faults then exits 0, and the tag is
//!   the archive's manifest;
//! - `push-benign`: a plan of at most two faults, without a signal, never
//!   fails;
//! - `hung`, as for a pull.

use super::check;
use super::push_plan::Plan;
use super::round::{send, tail, wait_bounded, Outcome};
use super::world::World;
use crate::support::util::PULLTAR;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// Pushes round `k`'s `archive` (which holds the manifest `digest`) as
/// the plan says, then again without faults, checking the invariants;
/// the logs go into `dir`.
pub fn run(
    world: &World,
    k: u64,
    plan: &Plan,
    archive: &Path,
    digest: &str,
    dir: &Path,
) -> Outcome {
    let t0 = Instant::now();
    let repo = format!("soak/p{k}");
    let dest = format!("{}/{repo}:v1", world.px.host());
    let mut line = format!("round {k} push: {}", plan.describe());
    world.px.clear();
    for rule in plan.rules(&repo) {
        world.px.add(rule);
    }
    let mut failures = Vec::new();
    let mut errors = String::new();
    let mut codes = Vec::new();
    for faulty in [true, false] {
        let pass = if faulty { "push" } else { "push-rerun" };
        let out = dir.join(format!("{pass}.stdout"));
        let log = dir.join(format!("{pass}.stderr"));
        let mut child = spawn(world, plan, archive, &dest, &out, &log);
        let started = Instant::now();
        if let (true, Some((sig, ms))) = (faulty, plan.signal) {
            let at = std::time::Duration::from_millis(ms);
            while started.elapsed() < at && !matches!(child.try_wait(), Ok(Some(_))) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            send(&mut child, sig);
        }
        let (code, hung) = wait_bounded(&mut child, started);
        world.px.clear();
        let stdout = std::fs::read_to_string(&out).unwrap_or_default();
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        codes.push(match (code, hung) {
            (_, true) => format!("{pass} hung (killed)"),
            (Some(c), _) => format!("{pass} exit {c}"),
            (None, _) => format!("{pass} killed"),
        });
        if faulty {
            // The faults that fired (not the slow uplink, not the 413).
            let fired = world.px.requests_to(&format!("/v2/{repo}/"));
            let fired = fired
                .iter()
                .filter(|r| r.fault.is_some_and(|f| f != "slow-upload") && r.status != 413);
            *codes.last_mut().unwrap() += &format!(" ({} fired)", fired.count());
        }
        if super::stopping() {
            line += " => stopped";
            return Outcome {
                line,
                errors,
                failures: Vec::new(),
            };
        }
        let why = || format!("{}\n{}", codes.last().unwrap(), tail(&stderr, 12));
        if hung {
            failures.push(("hung", why()));
        }
        if code.is_some_and(|c| c != 0) {
            let error = stderr.lines().find(|l| l.starts_with("pulltar:"));
            errors += &format!("\n    {pass}: {}", error.unwrap_or("no error line"));
        }
        let tag = check::tag_whole(&world.reg, &repo);
        if let Err(d) = &tag {
            failures.push(("tags", format!("after the {pass}: {d}")));
        }
        if code == Some(0) {
            let said = stdout.lines().find_map(|l| l.split_once('@')).map(|x| x.1);
            let found = tag.as_ref().ok().cloned().flatten();
            if said != Some(digest) || found.as_deref() != Some(digest) {
                let name = if faulty { "pushed" } else { "push-rerun" };
                let got = format!("printed {said:?}, the tag is {found:?}");
                failures.push((name, format!("wanted {digest}: {got}")));
            }
        } else if !faulty {
            failures.push(("push-rerun", why()));
        } else if plan.benign() && !hung {
            failures.push(("push-benign", why()));
        }
    }
    line += &format!(" => {} ({} s)", codes.join(", "), t0.elapsed().as_secs());
    Outcome {
        line,
        errors,
        failures,
    }
}

fn spawn(world: &World, plan: &Plan, archive: &Path, dest: &str, out: &Path, log: &Path) -> Child {
    let mut cmd = Command::new(PULLTAR);
    cmd.arg("push").args(["-t", &plan.threads.to_string()]);
    if let Some(c) = plan.chunks {
        cmd.args(["--chunk-size", &format!("{}K", c >> 10)]);
    }
    cmd.arg(archive).arg(dest);
    cmd.current_dir(world.dir.path())
        .env_remove("RUST_LOG")
        .env("TMPDIR", world.tmp())
        .env("PULLTAR_PROGRESS", "plain");
    if plan.fixed_delay {
        cmd.env("PULLTAR_RETRY_DELAY_MS", "50");
    }
    cmd.arg("--log-file").arg(log.with_extension("log"));
    let stdout = std::fs::File::create(out).expect("create the push's stdout");
    let stderr = std::fs::File::create(log).expect("create the push's log");
    cmd.stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("start pulltar push")
}
