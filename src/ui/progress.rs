//! What the user sees while a pull (or a push) runs, on stderr, in one of
//! three modes:
//! on a terminal, one line per blob (short digest, size, bar, percent,
//! speed, state) and a total line, redrawn in place by one drawing thread
//! (`progress_tty.rs`); elsewhere (CI, a file), one plain line per event
//! and a summary line every 10 s; with `--quiet`, nothing but errors. A
//! final summary ([`Progress::summary`]) names the image, platform,
//! digest, size, time, speed, output and cache hits.
//!
//! Download threads only update the [`counters`](crate::ui::counters); all
//! drawing happens on the drawing thread or under the screen lock. While a
//! display is active, log records are printed through [`write_log`], above
//! the bars, so the two never interleave. This module decides nothing about the pull.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::image::digest::Digest;
use crate::image::manifest::Descriptor;
use crate::ui::counters::{human_bytes, Mode, Screen, Shared, Slot, State, ACTIVE};
use crate::ui::escape::printable;
use crate::ui::progress_tty as tty;

/// Writes a formatted log record to stderr: above the bars when a display
/// is active, else directly.
pub fn write_log(text: &[u8]) {
    let active = ACTIVE.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match active {
        Some(shared) => tty::print(&shared, text),
        None => {
            let _ = std::io::stderr().lock().write_all(text);
        }
    }
}

/// Counters and the reporting switch for one pull.
pub struct Progress {
    pub(crate) shared: Arc<Shared>,
    drawer: Mutex<Option<JoinHandle<()>>>,
}

impl Progress {
    /// A reporter; `quiet` silences everything but errors. On a terminal
    /// stderr the bars are drawn (unless `PULLTAR_PROGRESS=plain`), once
    /// escape sequences are turned on there (a Windows console that cannot
    /// gets plain lines).
    pub fn new(quiet: bool) -> Progress {
        Progress::with_mode(Progress::mode(quiet), false)
    }

    /// A reporter for a push: the same display, in a push's words.
    pub fn for_push(quiet: bool) -> Progress {
        Progress::with_mode(Progress::mode(quiet), true)
    }

    fn mode(quiet: bool) -> Mode {
        let plain = std::env::var("PULLTAR_PROGRESS").is_ok_and(|v| v == "plain");
        if quiet {
            Mode::Quiet
        } else if !plain && tty::stderr_is_terminal() && crate::sys::enable_escape_sequences() {
            Mode::Tty
        } else {
            Mode::Plain
        }
    }

    pub(crate) fn with_mode(mode: Mode, pushing: bool) -> Progress {
        let shared = Arc::new(Shared {
            mode,
            pushing,
            started: Instant::now(),
            blobs_total: AtomicU64::new(0),
            blobs_done: AtomicU64::new(0),
            bytes_downloaded: AtomicU64::new(0),
            last_byte_ms: AtomicU64::new(0),
            slots: RwLock::new(Vec::new()),
            hosts: RwLock::new(Vec::new()),
            stop: AtomicBool::new(false),
            screen: Mutex::new(Screen::default()),
        });
        let drawer = match mode {
            Mode::Quiet => None,
            Mode::Plain | Mode::Tty => {
                let s = shared.clone();
                std::thread::Builder::new()
                    .name("pulltar-progress".into())
                    .spawn(move || tty::draw_loop(&s))
                    .ok()
            }
        };
        if mode == Mode::Tty {
            *ACTIVE.lock().unwrap_or_else(|p| p.into_inner()) = Some(shared.clone());
        }
        Progress {
            shared,
            drawer: Mutex::new(drawer),
        }
    }

    /// Shows the hosts of a mirror list, each with the counter of the
    /// blob bytes it brings, so the display gives their speeds.
    pub fn hosts(&self, hosts: Vec<(String, Arc<AtomicU64>)>) {
        let mut all = self.shared.hosts.write().unwrap_or_else(|p| p.into_inner());
        for (name, bytes) in hosts {
            if !all.iter().any(|(_, b)| Arc::ptr_eq(b, &bytes)) {
                all.push((name, bytes));
            }
        }
    }

    /// Prints one line, unless quiet.
    pub fn say(&self, line: &str) {
        if self.shared.mode != Mode::Quiet {
            let mut text = printable(line).into_bytes();
            text.push(b'\n');
            tty::print(&self.shared, &text);
        }
    }

    /// Announces `n` more blobs to fetch.
    pub fn expect(&self, n: u64) {
        self.shared.blobs_total.fetch_add(n, Ordering::Relaxed);
    }

    /// Lists blobs about to be downloaded (shown as queued).
    pub fn queue(&self, blobs: &[&Descriptor]) {
        for d in blobs {
            self.shared.slot_or_new(&d.digest, d.size);
        }
    }

    /// A blob's download begins, with `resumed` bytes already on disk.
    pub fn started(&self, digest: &Digest, resumed: u64) {
        let ms = self.shared.ms();
        self.shared.with_slot(digest, |s| {
            s.bytes.store(resumed, Ordering::Relaxed);
            s.began_ms.store(ms, Ordering::Relaxed);
            s.set(State::Downloading);
        });
    }

    /// A segment of `digest` starts; it ends when the guard is dropped.
    pub fn segment(&self, digest: &Digest) -> SegmentGuard {
        let slot = self.shared.slot(digest);
        if let Some(s) = &slot {
            s.segments.fetch_add(1, Ordering::Relaxed);
        }
        SegmentGuard(slot)
    }

    /// Counts bytes received from the network.
    pub fn add_bytes(&self, n: u64) {
        self.shared.bytes_downloaded.fetch_add(n, Ordering::Relaxed);
        let now = self.shared.ms();
        self.shared.last_byte_ms.fetch_max(now, Ordering::Relaxed);
    }

    /// The archive is in place: logs (at debug level) how long after the
    /// last byte arrived, and what share of the pull that was.
    pub fn archive_written(&self) {
        if self.bytes_downloaded() == 0 {
            return;
        }
        let now = self.shared.ms();
        let last = self.shared.last_byte_ms.load(Ordering::Relaxed);
        let after = now.saturating_sub(last);
        log::debug!(
            "the archive was in place {after} ms after the last byte arrived ({:.1} % of the pull's {now} ms)",
            after as f64 * 100.0 / now.max(1) as f64
        );
    }

    /// Counts bytes received for the blob `digest`.
    pub fn add_blob_bytes(&self, digest: &Digest, n: u64) {
        self.add_bytes(n);
        self.shared.with_slot(digest, |s| {
            s.bytes.fetch_add(n, Ordering::Relaxed);
            let _ = s.state.compare_exchange(
                State::Retrying as u8,
                State::Downloading as u8,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        });
    }

    /// The blob `digest` is fetched again from byte 0: its bar starts over
    /// (the bytes already received stay counted as downloaded).
    pub fn restarted(&self, digest: &Digest) {
        self.shared
            .with_slot(digest, |s| s.bytes.store(0, Ordering::Relaxed));
    }

    /// Every byte of `digest` is in; it is being hashed.
    pub fn verifying(&self, digest: &Digest) {
        self.shared.with_slot(digest, |s| s.set(State::Verifying));
    }

    /// Reports a blob served from the cache.
    pub fn cached(&self, digest: &Digest, size: u64) {
        self.present(digest, size, "already in the cache");
    }

    /// Reports a blob downloaded and verified.
    pub fn downloaded(&self, digest: &Digest, size: u64, took: Duration) {
        self.done(digest, size, took, "downloaded, verified");
    }

    /// Reports a blob uploaded (a push), which the registry then said it
    /// stored under its digest.
    pub fn uploaded(&self, digest: &Digest, size: u64, took: Duration) {
        self.done(digest, size, took, "uploaded, stored as its digest");
    }

    /// A blob's transfer ended: `what` happened, at what rate.
    fn done(&self, digest: &Digest, size: u64, took: Duration, what: &str) {
        let ms = self.shared.ms();
        self.shared.with_slot(digest, |s| {
            s.ended_ms.store(ms, Ordering::Relaxed);
            s.bytes.store(size, Ordering::Relaxed);
            s.set(State::Done);
        });
        let rate = size as f64 / took.as_secs_f64().max(0.001);
        let what = format!("{what} ({}/s)", human_bytes(rate as u64));
        self.finished(digest, size, &what);
    }

    /// Reports a blob that needs no transfer: `how` says why ("already in
    /// the cache", or for a push "already in team/app", "mounted from
    /// team/a").
    pub fn present(&self, digest: &Digest, size: u64, how: &str) {
        let slot = self.shared.slot_or_new(digest, size);
        slot.set(State::Cached);
        slot.bytes.store(size, Ordering::Relaxed);
        self.finished(digest, size, how);
    }

    fn finished(&self, digest: &Digest, size: u64, how: &str) {
        let done = self.shared.blobs_done.fetch_add(1, Ordering::Relaxed) + 1;
        if self.shared.mode == Mode::Plain {
            let total = self.shared.blobs_total.load(Ordering::Relaxed);
            self.say(&format!(
                "  [{done}/{total}] {} {:>10}  {how}",
                digest.short(),
                human_bytes(size)
            ));
        }
    }

    /// Bytes received from the network (or, in a push, sent) so far.
    pub fn bytes_downloaded(&self) -> u64 {
        self.shared.bytes_downloaded.load(Ordering::Relaxed)
    }

    /// Time since the pull started.
    pub fn elapsed(&self) -> Duration {
        self.shared.started.elapsed()
    }

    /// Stops the display, leaving its last frame on the screen.
    pub fn finish(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let handle = self.drawer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
        let mut active = ACTIVE.lock().unwrap_or_else(|p| p.into_inner());
        if active
            .as_ref()
            .is_some_and(|a| Arc::ptr_eq(a, &self.shared))
        {
            *active = None;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Ends a segment's count when dropped.
pub struct SegmentGuard(Option<Arc<Slot>>);

impl Drop for SegmentGuard {
    fn drop(&mut self) {
        if let Some(s) = &self.0 {
            s.segments.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters() {
        let p = Progress::new(true);
        p.expect(2);
        p.add_bytes(10);
        p.cached(&Digest::of(b"x"), 5);
        assert_eq!(p.bytes_downloaded(), 10);
        let s = p.shared.slot(&Digest::of(b"x")).unwrap();
        assert_eq!(
            (s.state(), s.bytes.load(Ordering::Relaxed)),
            (State::Cached, 5)
        );
    }

    #[test]
    fn blob_states() {
        let p = Progress::with_mode(Mode::Quiet, false);
        let d = Descriptor {
            media_type: String::new(),
            digest: Digest::of(b"a"),
            size: 100,
            platform: None,
            annotations: Default::default(),
        };
        p.queue(&[&d]);
        p.started(&d.digest, 10);
        {
            let _g = p.segment(&d.digest);
            p.add_blob_bytes(&d.digest, 40);
            let s = p.shared.slot(&d.digest).unwrap();
            assert_eq!(s.segments.load(Ordering::Relaxed), 1);
            assert_eq!(s.bytes.load(Ordering::Relaxed), 50);
            assert_eq!(s.state(), State::Downloading);
        }
        p.verifying(&d.digest);
        p.downloaded(&d.digest, 100, Duration::from_millis(10));
        let s = p.shared.slot(&d.digest).unwrap();
        assert_eq!(s.segments.load(Ordering::Relaxed), 0);
        assert_eq!(s.state(), State::Done);
        assert_eq!(p.cached_among(std::slice::from_ref(&d)), (0, 0));
        p.cached(&Digest::of(b"b"), 7);
        let e = Descriptor {
            digest: Digest::of(b"b"),
            size: 7,
            ..d.clone()
        };
        assert_eq!(p.cached_among(&[d, e.clone(), e]), (1, 7));
    }
}
