//! Which piece of work a download thread takes next, and the bookkeeping
//! the choice is made from: each blob's `Job` (its `Phase`, the byte
//! ranges not yet started, the [`Segment`]s running, each a range whose
//! end can move down when another thread takes over its tail), all of
//! them in a `Sched`.
//!
//! A waiting blob is opened first, and a blob whose bytes are all in is
//! verified next. Otherwise a blob of at least twice the chunk size is cut
//! into `Range` segments: each new segment takes a share of the work left
//! (all of it divided by the thread count, never less than the chunk size),
//! a blob nobody works on yet coming before more segments of another; and
//! a thread with nothing left to start takes over the second half of the
//! largest segment still running. Smaller blobs go on one connection each,
//! and so does a blob whose registry ignores `Range`: one connection at a
//! time, however many of its segments noticed.
//!
//! This module only chooses: it makes no request and touches no file;
//! `download.rs` runs the tasks and moves the jobs through their phases,
//! and `segment.rs` fetches a segment's bytes.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::error::Error;
use crate::fetch::partial::Partial;
use crate::image::manifest::Descriptor;

/// A byte range `[pos, end)` still to fetch; `pos` only grows, `end` only
/// shrinks.
#[derive(Debug)]
pub struct Segment {
    range: Mutex<(u64, u64)>,
    single: bool,
}

impl Segment {
    /// A segment for `[start, end)`.
    pub fn new(start: u64, end: u64) -> Segment {
        Segment {
            range: Mutex::new((start, end)),
            single: false,
        }
    }

    /// The one connection of a blob whose registry ignores `Range`, for
    /// `[start, end)`: when a resumed request is answered with the whole
    /// blob, the bytes before `start` are read and dropped.
    pub fn single(start: u64, end: u64) -> Segment {
        Segment {
            range: Mutex::new((start, end)),
            single: true,
        }
    }

    /// Whether this is the one connection of a blob whose registry
    /// ignores `Range`.
    pub fn is_single(&self) -> bool {
        self.single
    }

    pub(crate) fn get(&self) -> (u64, u64) {
        *self.range.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes not yet reserved.
    pub fn remaining(&self) -> u64 {
        let (pos, end) = self.get();
        end.saturating_sub(pos)
    }

    /// Gives away the second half of what is left, if at least `2 * min`
    /// is left: returns that half's `[start, end)`.
    pub fn split(&self, min: u64) -> Option<(u64, u64)> {
        let mut r = self.range.lock().unwrap_or_else(|p| p.into_inner());
        let left = r.1.saturating_sub(r.0);
        if left < 2 * min {
            return None;
        }
        let mid = r.0 + left / 2;
        let old_end = r.1;
        r.1 = mid;
        Some((mid, old_end))
    }

    /// Ends the segment where it is.
    pub fn stop(&self) {
        let mut r = self.range.lock().unwrap_or_else(|p| p.into_inner());
        r.1 = r.1.min(r.0);
    }

    /// Reserves up to `n` bytes at the current position: returns their
    /// offset and how many may be written.
    pub(crate) fn reserve(&self, n: u64) -> (u64, u64) {
        let mut r = self.range.lock().unwrap_or_else(|p| p.into_inner());
        let allowed = n.min(r.1.saturating_sub(r.0));
        let at = r.0;
        r.0 += allowed;
        (at, allowed)
    }
}

/// Where a blob is in its download.
pub(crate) enum Phase {
    Waiting,
    Opening,
    Active,
    Finishing,
    Done,
}

/// One blob of the batch.
pub(crate) struct Job<'d> {
    /// The blob.
    pub(crate) desc: &'d Descriptor,
    pub(crate) phase: Phase,
    /// Its partial file, while no task has taken it to verify it.
    pub(crate) partial: Option<Arc<Partial>>,
    /// Byte ranges `[start, end)` no segment has been given yet.
    pub(crate) pending: Vec<(u64, u64)>,
    /// The segments running.
    pub(crate) active: Vec<Arc<Segment>>,
    /// Whether the registry honours `Range` for it (false after a 200 to a
    /// `Range` request).
    pub(crate) ranged: bool,
    /// Whether its partial file held bytes from an earlier run.
    pub(crate) resumed: bool,
    /// Whether it has already been discarded and started afresh.
    pub(crate) restarted: bool,
    /// How its first fetch failed verification, once it is fetched again.
    pub(crate) mismatch: Option<String>,
    /// Why it must start afresh, once its running segments have stopped.
    pub(crate) restart_pending: Option<Error>,
    /// When its download began.
    pub(crate) started: Instant,
}

/// A piece of work for a download thread, by job index.
pub(crate) enum Task {
    Open(usize),
    Fetch(usize, Arc<Partial>, Arc<Segment>),
    Finish(usize, Arc<Partial>),
}

/// The jobs of a batch, and the first fatal error.
pub(crate) struct Sched<'d> {
    pub(crate) jobs: Vec<Job<'d>>,
    pub(crate) error: Option<Error>,
    /// How many connections are used at once.
    pub(crate) threads: usize,
    /// The smallest segment; blobs under twice this are not split.
    pub(crate) chunk: u64,
}

impl Sched<'_> {
    /// The next piece of work, if any: open a blob, fetch a new or stolen
    /// segment, or verify a blob whose bytes are all in.
    pub(crate) fn next_task(&mut self) -> Option<Task> {
        let (threads, chunk) = (self.threads, self.chunk);
        let s = self;
        if let Some(i) = s
            .jobs
            .iter()
            .position(|j| matches!(j.phase, Phase::Waiting))
        {
            s.jobs[i].phase = Phase::Opening;
            return Some(Task::Open(i));
        }
        for (i, job) in s.jobs.iter_mut().enumerate() {
            if matches!(job.phase, Phase::Active) && job.pending.is_empty() && job.active.is_empty()
            {
                job.phase = Phase::Finishing;
                let partial = job.partial.take()?;
                return Some(Task::Finish(i, partial));
            }
        }
        let unassigned: u64 = s
            .jobs
            .iter()
            .filter(|j| matches!(j.phase, Phase::Active))
            .flat_map(|j| j.pending.iter().map(|(a, b)| b - a))
            .sum();
        let share = (unassigned / threads.max(1) as u64).max(chunk);
        // A blob nobody works on yet comes before more segments of another.
        let idle_first = s.jobs.iter().position(|j| {
            matches!(j.phase, Phase::Active) && !j.pending.is_empty() && j.active.is_empty()
        });
        let order = idle_first.into_iter().chain(0..s.jobs.len());
        for i in order {
            let job = &mut s.jobs[i];
            if !matches!(job.phase, Phase::Active) || job.pending.is_empty() {
                continue;
            }
            // A registry that ignores Range: one connection for the blob.
            if !job.ranged && job.active.iter().any(|a| a.is_single()) {
                continue;
            }
            let splittable = job.ranged && job.desc.size >= 2 * chunk;
            let (a, b) = job.pending[0];
            let end = if splittable && b - a >= share + chunk {
                a + share
            } else {
                b
            };
            if end == b {
                job.pending.remove(0);
            } else {
                job.pending[0].0 = end;
            }
            let seg = Arc::new(if job.ranged {
                Segment::new(a, end)
            } else {
                Segment::single(a, end)
            });
            job.active.push(seg.clone());
            return Some(Task::Fetch(i, job.partial.clone()?, seg));
        }
        // Nothing new to start: take over half of the largest running
        // segment.
        let (mut best, mut best_left) = (None, 2 * chunk - 1);
        for (i, job) in s.jobs.iter().enumerate() {
            if !matches!(job.phase, Phase::Active) || !job.ranged {
                continue;
            }
            for (k, seg) in job.active.iter().enumerate() {
                let left = seg.remaining();
                if left > best_left {
                    (best, best_left) = (Some((i, k)), left);
                }
            }
        }
        let (i, k) = best?;
        let job = &mut s.jobs[i];
        let (mid, end) = job.active[k].split(chunk)?;
        let seg = Arc::new(Segment::new(mid, end));
        job.active.push(seg.clone());
        Some(Task::Fetch(i, job.partial.clone()?, seg))
    }
}
