//! `scripts/soak`: a randomized fault soak of pulltar against the real
//! registry behind the fault proxy (a test target without the libtest
//! harness, sharing the integration tests' helpers). Each round draws an
//! image, the pull's knobs and a fault plan from the seed, and about one
//! round in three then pushes its archive with a fault plan of its own;
//! the invariants are in `soak/round.rs` and `soak/push.rs`. Run as
//! `cargo test --test soak -- --seed N --rounds R` (or `--only K`, one
//! round of that seed with fresh caches; `--no-push-429` draws a 503
//! wherever a push round would draw a 429); the seed is printed first, so
//! a failure replays with the same plan (the timing of threads and
//! signals is the machine's). One line a round (and one for its push),
//! then one summary line: rounds (and how many pushed), failures per
//! invariant, seconds. Exit 1 if any invariant failed.

// The integration tests' servers and helpers (the soak uses the registry,
// the images, the fault proxy and `util`; the rest compiles unused).
#[allow(dead_code, unused_imports)]
#[path = "it/support/mod.rs"]
mod support;

// Its unit tests run in the `it` binary (there they are linted too).
#[allow(dead_code, unused_imports)]
#[path = "soak/mod.rs"]
mod soak;

use soak::{check, round, stopping, world};
use std::time::Instant;
use support::util;

extern "C" fn on_signal(_: i32) {
    soak::stop();
}

extern "C" {
    fn signal(signum: i32, handler: usize) -> usize;
}

fn usage(why: &str) -> ! {
    eprintln!("soak: {why}\nusage: soak [--seed N] [--rounds R | --only K] [--no-push-429]");
    std::process::exit(2);
}

fn main() {
    let mut seed = None;
    let (mut rounds, mut only, mut push_429) = (30u64, None, true);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> u64 {
            let v = args
                .next()
                .unwrap_or_else(|| usage(&format!("{name} needs a number")));
            v.parse()
                .unwrap_or_else(|_| usage(&format!("{name} {v:?} is not a number")))
        };
        match a.as_str() {
            "--seed" => seed = Some(num("--seed")),
            "--rounds" => rounds = num("--rounds"),
            "--only" => only = Some(num("--only")),
            "--no-push-429" => push_429 = false,
            _ => usage(&format!("unknown argument {a:?}")),
        }
    }
    let seed = seed.unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        t.map(|d| d.as_nanos() as u64 % 1_000_000_000).unwrap_or(1)
    });
    let list: Vec<u64> = match only {
        Some(k) => vec![k],
        None => (1..=rounds).collect(),
    };
    println!("soak: seed {seed}, {} rounds", list.len());
    // SAFETY: signal(2) installs a handler that only stores to an atomic,
    // which is async-signal-safe.
    unsafe {
        signal(2, on_signal as extern "C" fn(i32) as usize);
        signal(15, on_signal as extern "C" fn(i32) as usize);
    }
    let t0 = Instant::now();
    let mut world = world::World::start(&mut util::Rng::seeded(seed));
    world.push_429 = push_429;
    let mut verified = check::Verified::new();
    let mut failed = [0usize; round::INVARIANTS.len()];
    let (mut done, mut pushes) = (0, 0);
    for k in list {
        if stopping() {
            break;
        }
        let outcomes = round::run(&world, seed, k, &mut verified);
        done += 1;
        pushes += outcomes.len() - 1;
        for outcome in &outcomes {
            let mark = if outcome.failures.is_empty() {
                "ok"
            } else {
                "FAIL"
            };
            println!("{} [{mark}]{}", outcome.line, outcome.errors);
            for (inv, detail) in &outcome.failures {
                println!("  FAIL {inv}: {detail}");
                let i = round::INVARIANTS.iter().position(|n| n == inv).unwrap_or(0);
                failed[i] += 1;
            }
        }
        if outcomes.iter().any(|o| !o.failures.is_empty()) {
            println!(
                "  logs: {}",
                world.dir.join(&format!("rounds/r{k}")).display()
            );
        }
    }
    let counts: Vec<String> = round::INVARIANTS
        .iter()
        .zip(failed)
        .map(|(n, c)| format!("{n} {c}"))
        .collect();
    let total: usize = failed.iter().sum();
    println!(
        "soak: seed {seed}, {done} rounds ({pushes} pushing), failures: {}; {} s{}",
        counts.join(", "),
        t0.elapsed().as_secs(),
        if stopping() { " (stopped early)" } else { "" }
    );
    // The registry (its storage) and the proxy go in any case; the failed
    // rounds' logs stay for a look, without the caches and temp files.
    let world::World { reg, px, dir, .. } = world;
    drop(px);
    drop(reg);
    if total > 0 {
        for sub in ["caches", "tmp"] {
            let _ = std::fs::remove_dir_all(dir.join(sub));
        }
        std::env::set_var("PULLTAR_KEEP_TMP", "1");
        println!(
            "soak: logs of the failed rounds kept in {}",
            dir.path().display()
        );
    }
    drop(dir);
    std::process::exit(if total > 0 || stopping() { 1 } else { 0 });
}
