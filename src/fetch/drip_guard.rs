//! The low-speed guard of a segment: a segment whose bytes arrive at
//! under [`MIN_RATE`] on average, over its attempts that brought any, once
//! they have run for twice the read timeout, is given up. A slow drip
//! would otherwise keep a pull alive forever, each cut connection
//! counting as progress for the retry policy.
//!
//! An attempt's time is measured from its start to its last byte: the
//! silence after it, ended by the read timeout, is not a drip but a
//! failure, which the retry policy counts and bounds, and an attempt that
//! brought less than [`MIN_RATE`] over its whole time ([`Pace::end`]
//! says so) is no progress for it. So two answers that send a few bytes
//! and then nothing are two failures, as two silent answers are, and a
//! server that sends a byte a connection is given up after `--retries` of
//! them. This module only measures; `segment.rs` feeds it and acts on its
//! verdict.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The slowest average a segment may keep (bytes per second), over the
/// attempts that brought bytes, once they have run for twice the read
/// timeout.
pub const MIN_RATE: u64 = 1024;

/// The low-speed guard of one segment: the bytes its attempts received
/// and the time each took up to its last byte.
pub(crate) struct Pace {
    window: Duration,
    /// The time and bytes of the earlier attempts.
    past: Cell<(Duration, u64)>,
    /// When the current attempt began, its bytes so far, and when the
    /// last of them arrived.
    current: Cell<(Instant, u64, Instant)>,
}

impl Pace {
    pub(crate) fn new(window: Duration) -> Pace {
        Pace {
            window,
            past: Cell::new((Duration::ZERO, 0)),
            current: Cell::new((Instant::now(), 0, Instant::now())),
        }
    }

    /// An attempt begins.
    pub(crate) fn begin(&self) {
        let now = Instant::now();
        self.current.set((now, 0, now));
    }

    /// `n` bytes arrived.
    pub(crate) fn add(&self, n: u64) {
        let (at, got, _) = self.current.get();
        self.current.set((at, got + n, Instant::now()));
    }

    /// The attempt ended: its time up to its last byte counts. Returns
    /// whether it was progress: at least [`MIN_RATE`] over its whole time
    /// (a short attempt that brought anything is).
    pub(crate) fn end(&self) -> bool {
        let (at, got, _) = self.current.get();
        let whole = at.elapsed();
        self.past.set(self.totals());
        self.begin();
        got > 0 && got >= MIN_RATE.saturating_mul(whole.as_secs())
    }

    fn totals(&self) -> (Duration, u64) {
        let (took, got) = self.past.get();
        let (at, now, last) = self.current.get();
        (took + last.duration_since(at), got + now)
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
    fn silences_do_not_count_and_are_no_progress() {
        let pace = Pace::new(Duration::ZERO);
        pace.begin();
        std::thread::sleep(Duration::from_millis(1100));
        assert!(pace.check().is_ok(), "no bytes, no time counted");
        assert!(!pace.end(), "nothing is no progress");
        pace.begin();
        pace.add(59);
        std::thread::sleep(Duration::from_millis(1100));
        assert!(pace.check().is_ok(), "the silence after the bytes");
        assert!(!pace.end(), "59 bytes in 1 s is no progress");
        pace.begin();
        pace.add(10);
        assert!(pace.end(), "bytes at once are");
        pace.begin();
        std::thread::sleep(Duration::from_millis(1100));
        pace.add(10);
        let why = pace.check().unwrap_err();
        assert!(why.contains("only 79 bytes arrived in 1 s"), "{why}");
        pace.end();
        pace.begin();
        pace.add(4096);
        assert!(pace.check().is_ok(), "4175 bytes in about 1 s");
    }
}
