//! The counters of the progress display, which download threads update
//! and the drawing thread reads: each blob's [`Slot`] (state, bytes,
//! segments, times) and the pull's totals in [`Shared`], with what is on
//! the screen; and the units sizes and times are shown in.
//!
//! Nothing here draws or prints: `progress_tty.rs` draws, `progress.rs`
//! takes the events. Download threads only touch atomics here (a slot is
//! found by digest under a read lock held for the lookup, never across
//! I/O), and never allocate per chunk.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use crate::image::digest::Digest;

/// Where a blob is, as shown on its line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Waiting for a download thread.
    Queued = 0,
    /// Bytes are arriving (or, in a push, leaving).
    Downloading = 1,
    /// Every byte is in; it is being hashed.
    Verifying = 2,
    /// Downloaded and verified.
    Done = 3,
    /// Found in the cache (or, in a push, in the registry already).
    Cached = 4,
    /// A request failed and will be tried again.
    Retrying = 5,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            1 => State::Downloading,
            2 => State::Verifying,
            3 => State::Done,
            4 => State::Cached,
            5 => State::Retrying,
            _ => State::Queued,
        }
    }
}

/// One blob's counters.
#[derive(Debug)]
pub struct Slot {
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    pub(crate) state: AtomicU8,
    pub(crate) bytes: AtomicU64,
    pub(crate) segments: AtomicU32,
    /// Milliseconds after the pull started when bytes began / ended.
    pub(crate) began_ms: AtomicU64,
    pub(crate) ended_ms: AtomicU64,
    /// Why it is retrying (written only on a retry).
    pub(crate) reason: Mutex<String>,
}

impl Slot {
    pub(crate) fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Relaxed))
    }

    pub(crate) fn set(&self, s: State) {
        self.state.store(s as u8, Ordering::Relaxed);
    }
}

/// How output is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Quiet,
    Plain,
    Tty,
}

/// The state shared with the drawing thread.
pub(crate) struct Shared {
    pub(crate) mode: Mode,
    /// Blobs go up (a push), not down: the words the lines use.
    pub(crate) pushing: bool,
    pub(crate) started: Instant,
    pub(crate) blobs_total: AtomicU64,
    pub(crate) blobs_done: AtomicU64,
    pub(crate) bytes_downloaded: AtomicU64,
    /// Milliseconds after the start when the last byte arrived.
    pub(crate) last_byte_ms: AtomicU64,
    pub(crate) slots: RwLock<Vec<Arc<Slot>>>,
    /// Through mirror lists: each host's name and the blob bytes it has
    /// brought, for its speed.
    pub(crate) hosts: RwLock<Vec<(String, Arc<AtomicU64>)>>,
    pub(crate) stop: AtomicBool,
    /// How many bar lines are on the screen below the last printed line.
    pub(crate) screen: Mutex<Screen>,
}

impl Shared {
    pub(crate) fn ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub(crate) fn slot(&self, digest: &Digest) -> Option<Arc<Slot>> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots.iter().find(|s| &s.digest == digest).cloned()
    }

    pub(crate) fn with_slot(&self, digest: &Digest, f: impl FnOnce(&Slot)) {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = slots.iter().find(|s| &s.digest == digest) {
            f(s);
        }
    }

    pub(crate) fn slot_or_new(&self, digest: &Digest, size: u64) -> Arc<Slot> {
        if let Some(s) = self.slot(digest) {
            return s;
        }
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let slot = Arc::new(Slot {
            digest: digest.clone(),
            size,
            state: AtomicU8::new(State::Queued as u8),
            bytes: AtomicU64::new(0),
            segments: AtomicU32::new(0),
            began_ms: AtomicU64::new(0),
            ended_ms: AtomicU64::new(0),
            reason: Mutex::new(String::new()),
        });
        slots.push(slot.clone());
        slot
    }
}

/// The active display, for routing log records above its bars.
pub(crate) static ACTIVE: Mutex<Option<Arc<Shared>>> = Mutex::new(None);

/// What is on the screen below the last printed line.
#[derive(Debug, Default)]
pub(crate) struct Screen {
    /// How many lines the last frame drew.
    pub(crate) lines: usize,
    /// Recent (milliseconds, bytes downloaded) samples, for the speed.
    pub(crate) samples: VecDeque<(u64, u64)>,
    /// Recent (milliseconds, bytes from each host) samples, for the
    /// mirrors' speeds.
    pub(crate) host_samples: VecDeque<(u64, Vec<u64>)>,
}

impl Screen {
    /// Moves the cursor to the top of the bars and clears them.
    pub(crate) fn clear_sequence(&mut self) -> Vec<u8> {
        let n = std::mem::take(&mut self.lines);
        if n == 0 {
            Vec::new()
        } else {
            format!("\r\x1b[{n}A\x1b[J").into_bytes()
        }
    }

    /// Leaves what is drawn where it is: the next frame starts below it.
    pub(crate) fn forget(&mut self) {
        self.lines = 0;
    }

    /// Moves the cursor to the top of the bars without clearing them.
    pub(crate) fn up_sequence(&mut self) -> String {
        let n = std::mem::take(&mut self.lines);
        if n == 0 {
            String::new()
        } else {
            format!("\r\x1b[{n}A")
        }
    }
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

/// `65` → `1m05s`.
pub(crate) fn duration(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
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
    fn durations() {
        assert_eq!(duration(5), "5s");
        assert_eq!(duration(65), "1m05s");
        assert_eq!(duration(7260), "2h01m");
    }
}
