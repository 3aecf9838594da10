//! The low-speed guard of a segment: a segment whose bytes arrive at
//! under [`MIN_RATE`] on average, over its attempts that brought any, once
//! they have run for twice the read timeout, is given up. A slow drip
//! would otherwise keep a pull alive forever, each cut connection
//! counting as progress for the retry policy.
//!
//! An attempt that brought nothing (a silent answer cut by the read
//! timeout, a refused request) is not measured here: it is a failure
//! without progress, which the retry policy counts and bounds. This module
//! only measures; `segment.rs` feeds it and acts on its verdict.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The slowest average a segment may keep (bytes per second), over the
/// attempts that brought bytes, once they have run for twice the read
/// timeout.
pub const MIN_RATE: u64 = 1024;

/// The low-speed guard of one segment: the bytes its attempts received
/// and the time they took. An attempt that brought nothing (a silent
/// answer, cut by the read timeout) is not a drip: it is a failure without
/// progress, which the retry policy counts and bounds; counting its time
/// here would turn two such faults into a failure.
pub(crate) struct Pace {
    window: Duration,
    /// The time and bytes of the earlier attempts that brought bytes.
    past: Cell<(Duration, u64)>,
    /// When the current attempt began, and its bytes so far.
    current: Cell<(Instant, u64)>,
}

impl Pace {
    pub(crate) fn new(window: Duration) -> Pace {
        Pace {
            window,
            past: Cell::new((Duration::ZERO, 0)),
            current: Cell::new((Instant::now(), 0)),
        }
    }

    /// An attempt begins.
    pub(crate) fn begin(&self) {
        self.current.set((Instant::now(), 0));
    }

    /// `n` bytes arrived.
    pub(crate) fn add(&self, n: u64) {
        let (at, got) = self.current.get();
        self.current.set((at, got + n));
    }

    /// The attempt ended: its time counts if it brought bytes.
    pub(crate) fn end(&self) {
        let (took, got) = self.totals();
        self.past.set((took, got));
        self.current.set((Instant::now(), 0));
    }

    fn totals(&self) -> (Duration, u64) {
        let (took, got) = self.past.get();
        match self.current.get() {
            (_, 0) => (took, got),
            (at, now) => (took + at.elapsed(), got + now),
        }
    }

    /// An error text if the segment is too slow.
    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        let (took, got) = self.totals();
        if took < self.window || got >= MIN_RATE.saturating_mul(took.as_secs()) {
            return Ok(());
        }
        Err(format!(
            "only {got} bytes arrived in {} s, under the {} KiB/s a download needs (the registry or the link is dripping); run the same command again to resume",
            took.as_secs(),
            MIN_RATE >> 10
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_attempts_do_not_count() {
        let pace = Pace::new(Duration::ZERO);
        pace.begin();
        std::thread::sleep(Duration::from_millis(1100));
        assert!(pace.check().is_ok(), "no bytes, no time counted");
        pace.end();
        pace.begin();
        pace.add(10);
        std::thread::sleep(Duration::from_millis(1100));
        let why = pace.check().unwrap_err();
        assert!(why.contains("only 10 bytes arrived in 1 s"), "{why}");
        pace.end();
        pace.begin();
        pace.add(4096);
        assert!(pace.check().is_ok(), "4106 bytes in about 1 s");
    }
}
