//! The words of the progress display that are not drawn: the final
//! summary of a pull (image, platform, digest, size, time, average speed,
//! output, and the cache line `Cache: 5/6 layers, 72.8 MB saved`) and
//! the retry message (which also marks the blob as retrying on the
//! display).
//!
//! It prints through [`Progress`], so quiet mode and the terminal display
//! are respected; it decides nothing about the pull.

use std::path::Path;
use std::time::Duration;

use crate::image::digest::Digest;
use crate::image::manifest::Descriptor;
use crate::ui::counters::{human_bytes, State, ACTIVE};
use crate::ui::escape::printable;
use crate::ui::progress::Progress;

/// What the final summary line reports.
pub struct Summary<'a> {
    /// The references as typed (comma-separated for several images).
    pub image: &'a str,
    /// The platforms pulled (`linux/amd64, linux/arm64`).
    pub platforms: &'a str,
    /// The manifest digest (of a single image).
    pub digest: Option<&'a Digest>,
    /// The archive's size.
    pub archive_size: u64,
    /// Where it went; `None` for standard output.
    pub output: Option<&'a Path>,
    /// The images' layers as pulled, for the cache line.
    pub layers: &'a [Descriptor],
    /// Through mirror lists: the blob bytes each host brought.
    pub sources: &'a [(String, u64)],
}

impl Progress {
    /// Of `layers`, how many (and how many bytes) came from the cache.
    pub fn cached_among(&self, layers: &[Descriptor]) -> (usize, u64) {
        let mut seen: Vec<&Digest> = Vec::new();
        let (mut n, mut bytes) = (0, 0);
        for l in layers {
            if seen.contains(&&l.digest) {
                continue;
            }
            seen.push(&l.digest);
            if self
                .shared
                .slot(&l.digest)
                .is_some_and(|s| s.state() == State::Cached)
            {
                n += 1;
                bytes += l.size;
            }
        }
        (n, bytes)
    }

    /// Stops the display and prints the final summary lines.
    pub fn summary(&self, s: &Summary) {
        self.finish();
        for line in summary_lines(s, self) {
            self.say(&line);
        }
    }
}

fn summary_lines(s: &Summary, p: &Progress) -> Vec<String> {
    let secs = p.elapsed().as_secs_f64();
    let downloaded = p.bytes_downloaded();
    let to = match s.output {
        Some(path) => path.display().to_string(),
        None => "standard output".to_string(),
    };
    let (hits, saved) = p.cached_among(s.layers);
    let mut unique: Vec<&Digest> = s.layers.iter().map(|l| &l.digest).collect();
    unique.sort();
    unique.dedup();
    let mut lines = vec![
        format!(
            "Pulled {} ({}){}: {} in {:.1} s, {} downloaded ({}/s) -> {}",
            s.image,
            s.platforms,
            s.digest.map(|d| format!(" {d}")).unwrap_or_default(),
            human_bytes(s.archive_size),
            secs,
            human_bytes(downloaded),
            human_bytes((downloaded as f64 / secs.max(0.001)) as u64),
            to
        ),
        format!(
            "Cache: {hits}/{} layers, {} saved",
            unique.len(),
            human_bytes(saved)
        ),
    ];
    if !s.sources.is_empty() {
        let each: Vec<String> = s
            .sources
            .iter()
            .map(|(name, n)| format!("{name} {}", human_bytes(*n)))
            .collect();
        lines.push(format!("From: {}", each.join(", ")));
    }
    lines
}

/// Logs a failed attempt at `what` that will be retried after `wait`, and
/// marks the blob it names (`blob <short digest>`) as retrying.
pub fn retrying(what: &str, why: &str, wait: Duration) {
    let after = if wait < Duration::from_secs(1) {
        format!("{} ms", wait.as_millis())
    } else {
        format!("{:.1} s", wait.as_secs_f64())
    };
    let active = ACTIVE.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let (Some(shared), Some(short)) = (active, what.strip_prefix("blob ")) {
        let slots = shared.slots.read().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = slots.iter().find(|s| s.digest.short() == short) {
            *s.reason.lock().unwrap_or_else(|p| p.into_inner()) =
                format!("{}, in {after}", printable(why));
            s.set(State::Retrying);
        }
    }
    log::warn!("{what}: {why}; retrying in {after}");
}
