//! What the user sees while a pull runs: one plain line per event on
//! stderr (a blob found in the cache, downloaded, retried) and a summary at
//! the end, unless `--quiet`.
//!
//! Counters are atomics, so download threads only add numbers; lines are
//! written whole under stderr's lock so they never interleave. This module
//! does no terminal drawing (no bars, no cursor movement) and decides
//! nothing about the pull.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::digest::Digest;

/// Counters and the reporting switch for one pull.
pub struct Progress {
    quiet: bool,
    started: Instant,
    blobs_total: AtomicU64,
    blobs_done: AtomicU64,
    bytes_downloaded: AtomicU64,
    bytes_cached: AtomicU64,
    blobs_cached: AtomicU64,
}

impl Progress {
    /// A reporter; `quiet` silences everything but errors.
    pub fn new(quiet: bool) -> Progress {
        Progress {
            quiet,
            started: Instant::now(),
            blobs_total: AtomicU64::new(0),
            blobs_done: AtomicU64::new(0),
            bytes_downloaded: AtomicU64::new(0),
            bytes_cached: AtomicU64::new(0),
            blobs_cached: AtomicU64::new(0),
        }
    }

    /// Prints one line, unless quiet.
    pub fn say(&self, line: &str) {
        if !self.quiet {
            let stderr = std::io::stderr();
            let mut lock = stderr.lock();
            let _ = writeln!(lock, "{line}");
        }
    }

    /// Announces `n` more blobs to fetch.
    pub fn expect(&self, n: u64) {
        self.blobs_total.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts bytes received from the network.
    pub fn add_bytes(&self, n: u64) {
        self.bytes_downloaded.fetch_add(n, Ordering::Relaxed);
    }

    /// Reports a blob served from the cache.
    pub fn cached(&self, digest: &Digest, size: u64) {
        self.blobs_cached.fetch_add(1, Ordering::Relaxed);
        self.bytes_cached.fetch_add(size, Ordering::Relaxed);
        self.finished(digest, size, "already in the cache");
    }

    /// Reports a blob downloaded and verified.
    pub fn downloaded(&self, digest: &Digest, size: u64, took: Duration) {
        let rate = size as f64 / took.as_secs_f64().max(0.001);
        self.finished(
            digest,
            size,
            &format!("downloaded, verified ({}/s)", human_bytes(rate as u64)),
        );
    }

    fn finished(&self, digest: &Digest, size: u64, how: &str) {
        let done = self.blobs_done.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.blobs_total.load(Ordering::Relaxed);
        self.say(&format!(
            "  [{done}/{total}] {} {:>10}  {how}",
            digest.short(),
            human_bytes(size)
        ));
    }

    /// Bytes received from the network so far.
    pub fn bytes_downloaded(&self) -> u64 {
        self.bytes_downloaded.load(Ordering::Relaxed)
    }

    /// Blobs and bytes served from the cache.
    pub fn cache_hits(&self) -> (u64, u64) {
        (
            self.blobs_cached.load(Ordering::Relaxed),
            self.bytes_cached.load(Ordering::Relaxed),
        )
    }

    /// Time since the pull started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Logs a failed attempt at `what` that will be retried after `wait`.
pub fn retrying(what: &str, why: &str, wait: Duration) {
    let after = if wait < Duration::from_secs(1) {
        format!("{} ms", wait.as_millis())
    } else {
        format!("{:.1} s", wait.as_secs_f64())
    };
    log::warn!("{what}: {why}; retrying in {after}");
}

/// `1536` → `1.5 KB` (powers of 1000, as docker prints sizes).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1500), "1.5 KB");
        assert_eq!(human_bytes(72_800_000), "72.8 MB");
        assert_eq!(human_bytes(9_000_000_000), "9.0 GB");
    }

    #[test]
    fn counters() {
        let p = Progress::new(true);
        p.expect(2);
        p.add_bytes(10);
        p.cached(&Digest::of(b"x"), 5);
        assert_eq!(p.bytes_downloaded(), 10);
        assert_eq!(p.cache_hits(), (1, 5));
    }
}
