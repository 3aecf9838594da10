//! The fault soak (`scripts/soak`, run by `tests/soak.rs`): a plan drawn
//! from a seed for each round (`plan`), the registry, proxy and caches
//! every round shares and each round's images (`world`), one round run
//! and its invariants checked (`round`), the push of a round's archive
//! with its own plan (`push_plan`) and invariants (`push`), the checks
//! themselves (`check`).
//! Also compiled into the integration-test binary, where the pure parts
//! have their unit tests and every part is linted.

pub mod check;
pub mod plan;
pub mod push;
pub mod push_plan;
pub mod round;
pub mod world;

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

/// Whether the soak was asked to stop (SIGINT or SIGTERM): the round in
/// progress ends its pulls and the soak reports what it has.
pub fn stopping() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Asks the soak to stop (from a signal handler: one atomic store).
pub fn stop() {
    STOP.store(true, Ordering::Relaxed);
}
