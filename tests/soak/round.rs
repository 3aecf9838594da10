//! One round: draw the plan, build and push the images, script the proxy,
//! run the pull (or two at once; a quarter of the rounds through a mirror
//! list whose first mirror is the proxy and second the registry itself),
//! maybe signal it, then check the invariants and run the same command
//! again without faults.
//!
//! Invariants, each counted apart in the summary:
//! - `archive`: exit 0 ⇒ the archive holds exactly the registry's image;
//! - `leftover`: exit ≠ 0 ⇒ nothing at `-o`, no temporary file beside it
//!   and no temporary store left in `TMPDIR` (after SIGKILL the process
//!   cannot clean up: then only "nothing at `-o`, or the whole image");
//!   a pull that succeeds leaves no temporary file either;
//! - `rerun`: the same command without faults then succeeds, exactly;
//! - `benign`: a benign plan (see `plan.rs`) never fails;
//! - `cache`: every file of the cache's blob store hashes to its name;
//! - `hung`: every pull ends within its bound (then it is killed).
//!
//! A round that pushes (drawn apart, see `push.rs`) then pushes the first
//! pull's archive, once it has passed its checks, and reports it on a
//! line of its own.

use super::check::{self, Verified};
use super::plan::{pick, Draw, Kind, Knobs, Signal};
use super::world::{Built, Pulled, World};
use crate::support::util::{Rng, PULLTAR};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long one pull may take before it counts as hung.
const PULL_BOUND: Duration = Duration::from_secs(180);

/// The invariants, in the order of the summary (the last four are the
/// push rounds', see `push.rs`).
pub const INVARIANTS: [&str; 10] = [
    "archive",
    "leftover",
    "rerun",
    "benign",
    "cache",
    "hung",
    "pushed",
    "tags",
    "push-rerun",
    "push-benign",
];

/// What a round found: its line, the error line of each failed pull,
/// and (invariant, detail) for each failure.
pub struct Outcome {
    pub line: String,
    pub errors: String,
    pub failures: Vec<(&'static str, String)>,
}

/// How one pull ended.
struct Ended {
    /// The exit code; `None` when a signal ended it.
    code: Option<i32>,
    hung: bool,
    stderr: String,
}

/// Runs round `k` of the soak seeded `seed`: its pulls, then, if the round
/// pushes, the push of the first pull's archive (a second outcome).
pub fn run(world: &World, seed: u64, k: u64, verified: &mut Verified) -> Vec<Outcome> {
    let t0 = Instant::now();
    let push_plan = super::push_plan::Plan::draw(seed, k, world.push_429);
    let mut rng = Rng::seeded(seed ^ k.wrapping_mul(0xD1B5_4A32_D192_ED03));
    let kind = pick(&mut rng, &[Kind::Big, Kind::Many, Kind::Many, Kind::Index]);
    let mut knobs = Knobs::draw(&mut rng, kind);
    // A quarter of the rounds pull through a mirror list; drawn from a
    // generator of its own, so that the rest of a seed's plan is unchanged.
    knobs.mirrors = Rng::seeded(seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 16).chance(25);
    let mut built = world.build(&mut rng, k, kind, knobs.twin);
    // How often a target has faults: a clean round, a light or a harsh one.
    let percent = pick(&mut rng, &[0, 10, 10, 20, 20, 40, 60]);
    for t in built.targets.iter_mut() {
        t.draw(&mut rng, knobs.chunk_bytes(), percent);
    }
    let benign =
        knobs.signal.is_none() && knobs.mild_ration() && built.targets.iter().all(|t| t.benign());
    let faults: Vec<String> = built.targets.iter().filter_map(|t| t.describe()).collect();
    let mut line = format!(
        "round {k}: {}; {}; faults: {}{}",
        built.describe,
        knobs.describe(),
        if faults.is_empty() {
            "none".to_string()
        } else {
            faults.join(" ")
        },
        if benign { " (benign)" } else { "" }
    );
    let dir = world.dir.join(&format!("rounds/r{k}"));
    std::fs::create_dir_all(&dir).unwrap();
    let from = world.px.log_len();
    world.px.clear();
    for t in &built.targets {
        for rule in t.rules() {
            world.px.add(rule);
        }
    }
    world.px.set_rate(knobs.rate);
    world.px.set_ration(knobs.ration);
    let cache = knobs.cache.map(|c| world.cache(c));
    let outs: Vec<PathBuf> = (0..built.pulls.len())
        .map(|i| dir.join(format!("image{i}.tar")))
        .collect();
    let ended = pull_all(world, &built, &knobs, cache.as_deref(), &outs, &dir, true);
    world.px.clear();
    if super::stopping() {
        world.forget(&built);
        let _ = std::fs::remove_dir_all(&dir);
        let (errors, failures) = (String::new(), Vec::new());
        line += " => stopped";
        return vec![Outcome {
            line,
            errors,
            failures,
        }];
    }
    let mut failures = Vec::new();
    let killed = matches!(knobs.signal, Some((Signal::Kill, _)));
    let codes: Vec<String> = ended.iter().map(code_text).collect();
    line += &format!(" => {}", codes.join(", "));
    let mut errors = String::new();
    for e in ended.iter().filter(|e| e.code.is_some_and(|c| c != 0)) {
        let error = e.stderr.lines().find(|l| l.starts_with("pulltar:"));
        errors += &format!("\n    {}", shorten(error.unwrap_or("no error line"), 240));
    }
    for ((e, pull), out) in ended.iter().zip(&built.pulls).zip(&outs) {
        let why = || format!("{}\n{}", code_text(e), tail(&e.stderr, 12));
        if e.hung {
            failures.push(("hung", why()));
        }
        match e.code {
            Some(0) => {
                if let Err(d) = check::archive(out, &pull.img, &pull.name(knobs.mirrors)) {
                    failures.push(("archive", d));
                }
                let left = check::temp_beside(out);
                if !left.is_empty() {
                    failures.push(("leftover", format!("a pull that succeeded left {left:?}")));
                }
            }
            // After SIGKILL (the plan's, or ours for a hung pull): nothing
            // at -o, or the whole image (the kill came after the rename).
            None if killed || e.hung => {
                if out.exists() {
                    if let Err(d) = check::archive(out, &pull.img, &pull.name(knobs.mirrors)) {
                        failures.push(("leftover", format!("after SIGKILL: {d}")));
                    }
                }
            }
            _ => {
                if let Err(d) = check::leftovers(out) {
                    failures.push(("leftover", d));
                }
            }
        }
        if benign && !e.hung && e.code != Some(0) {
            failures.push(("benign", why()));
        }
    }
    let tmp_left = crate::support::util::list_dir(&world.tmp());
    let any_hung = ended.iter().any(|e| e.hung);
    if !killed && !any_hung && !tmp_left.is_empty() {
        failures.push(("leftover", format!("in TMPDIR: {tmp_left:?}")));
    }
    // What a kill could not clean up goes before the rerun.
    for out in &outs {
        for f in check::temp_beside(out) {
            let _ = std::fs::remove_file(f);
        }
    }
    for name in tmp_left {
        let _ = std::fs::remove_dir_all(world.tmp().join(name));
    }
    if let Some(c) = &cache {
        if let Err(d) = check::cache_store(c, verified) {
            failures.push(("cache", d));
        }
    }
    let again = pull_all(world, &built, &knobs, cache.as_deref(), &outs, &dir, false);
    let mut pushable = false;
    for ((e, pull), out) in again.iter().zip(&built.pulls).zip(&outs) {
        let result = match e.code {
            Some(0) => check::archive(out, &pull.img, &pull.name(knobs.mirrors)),
            _ => Err(format!("{}\n{}", code_text(e), tail(&e.stderr, 12))),
        };
        pushable |= out == &outs[0] && result.is_ok();
        if let Err(d) = result {
            failures.push(("rerun", d));
        }
        let left = check::temp_beside(out);
        if !left.is_empty() {
            failures.push(("leftover", format!("the rerun left {left:?}")));
        }
    }
    let tmp_left = crate::support::util::list_dir(&world.tmp());
    if !tmp_left.is_empty() && again.iter().all(|e| !e.hung) {
        failures.push((
            "leftover",
            format!("the rerun left in TMPDIR: {tmp_left:?}"),
        ));
    }
    for name in tmp_left {
        let _ = std::fs::remove_dir_all(world.tmp().join(name));
    }
    if let Some(c) = &cache {
        if let Err(d) = check::cache_store(c, verified) {
            failures.push(("cache", d));
        }
    }
    let pushed = match push_plan {
        Some(plan) if pushable && !super::stopping() => {
            let digest = &built.pulls[0].img.manifest_digest;
            Some(super::push::run(world, k, &plan, &outs[0], digest, &dir))
        }
        Some(_) => Some(Outcome {
            line: format!("round {k} push: skipped (no archive to push)"),
            errors: String::new(),
            failures: Vec::new(),
        }),
        None => None,
    };
    let push_failed = pushed.as_ref().is_some_and(|p| !p.failures.is_empty());
    if failures.is_empty() && !push_failed {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        let dump = world.px.dump_since(from);
        let _ = std::fs::write(dir.join("proxy.log"), dump);
        for out in &outs {
            let _ = std::fs::remove_file(out);
        }
    }
    world.forget(&built);
    line += &format!(" ({} s)", t0.elapsed().as_secs());
    let trimmed = world.trim_caches();
    if !trimmed.is_empty() {
        verified.retain(|p, _| trimmed.iter().all(|c| !p.starts_with(world.cache(*c))));
    }
    let mut outcomes = vec![Outcome {
        line,
        errors,
        failures,
    }];
    outcomes.extend(pushed);
    outcomes
}

fn code_text(e: &Ended) -> String {
    match (e.code, e.hung) {
        (_, true) => "hung (killed)".into(),
        (Some(c), _) => format!("exit {c}"),
        (None, _) => "killed".into(),
    }
}

/// `line` cut in the middle to at most about `max` characters (the cause
/// is at its end).
fn shorten(line: &str, max: usize) -> String {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= max {
        return line.to_string();
    }
    let head: String = chars[..max / 3].iter().collect();
    let tail: String = chars[chars.len() - 2 * max / 3..].iter().collect();
    format!("{head} … {tail}")
}

/// The last `n` lines of `text`, indented.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(n);
    lines[from..]
        .iter()
        .map(|l| format!("      {l}\n"))
        .collect()
}

/// Starts every pull of the round at once (with the plan's signal to the
/// first, when `faulty`) and waits for them, each bounded.
fn pull_all(
    world: &World,
    built: &Built,
    knobs: &Knobs,
    cache: Option<&Path>,
    outs: &[PathBuf],
    dir: &Path,
    faulty: bool,
) -> Vec<Ended> {
    let pass = if faulty { "run" } else { "rerun" };
    let mut children: Vec<(Child, PathBuf)> = built
        .pulls
        .iter()
        .zip(outs)
        .enumerate()
        .map(|(i, (p, out))| {
            let log = dir.join(format!("{pass}{i}.stderr"));
            (spawn(world, p, knobs, cache, out, &log), log)
        })
        .collect();
    let started = Instant::now();
    if let (true, Some((sig, ms))) = (faulty, knobs.signal) {
        let at = Duration::from_millis(ms);
        while started.elapsed() < at && !exited(&mut children[0].0) && !super::stopping() {
            std::thread::sleep(Duration::from_millis(5));
        }
        send(&mut children[0].0, sig);
    }
    children
        .into_iter()
        .map(|(mut child, log)| {
            let (code, hung) = wait_bounded(&mut child, started);
            Ended {
                code,
                hung,
                stderr: std::fs::read_to_string(&log).unwrap_or_default(),
            }
        })
        .collect()
}

/// Waits for `child`, started at `started`, within [`PULL_BOUND`] (then
/// kills it: hung) or until the soak stops: its exit code (`None` after a
/// signal), and whether it hung.
pub fn wait_bounded(child: &mut Child, started: Instant) -> (Option<i32>, bool) {
    let mut hung = false;
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        if started.elapsed() > PULL_BOUND || super::stopping() {
            hung = !super::stopping();
            // Our own child, by its PID.
            let _ = child.kill();
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status.and_then(|s| s.code()), hung)
}

fn exited(child: &mut Child) -> bool {
    matches!(child.try_wait(), Ok(Some(_)))
}

/// Sends `sig` to our own child, by its PID.
pub fn send(child: &mut Child, sig: Signal) {
    if exited(child) {
        return;
    }
    match sig {
        Signal::Kill => {
            let _ = child.kill();
        }
        Signal::Term | Signal::Int => {
            let _ = Command::new("kill")
                .arg(format!("-{}", sig.name()))
                .arg(child.id().to_string())
                .stdin(Stdio::null())
                .status();
        }
    }
}

fn spawn(
    world: &World,
    pull: &Pulled,
    knobs: &Knobs,
    cache: Option<&Path>,
    out: &Path,
    log: &Path,
) -> Child {
    let mut cmd = Command::new(PULLTAR);
    cmd.arg(pull.name(knobs.mirrors)).arg("-o").arg(out);
    cmd.args(knobs.args(cache));
    if knobs.mirrors {
        let list = format!("{},{}", world.px.host(), world.reg.host());
        cmd.args(["-r", &list, "--mirrors-only"]);
    }
    if let Some(p) = pull.platform {
        cmd.args(["--platform", p]);
    }
    cmd.current_dir(world.dir.path())
        .env_remove("RUST_LOG")
        .env("TMPDIR", world.tmp())
        .env("PULLTAR_PROGRESS", "plain");
    if knobs.fixed_delay {
        cmd.env("PULLTAR_RETRY_DELAY_MS", "50");
    }
    cmd.arg("--log-file").arg(log.with_extension("log"));
    let err = std::fs::File::create(log).expect("create the pull's log");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("start pulltar")
}
