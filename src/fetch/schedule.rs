//! Which piece of work a download thread takes next, and the bookkeeping
//! the choice is made from: each blob's `Job` (its `Phase`, the byte
//! ranges not yet started, the [`Segment`]s running, each a range whose
//! end can move down when another thread takes over its tail), all of
//! them in a `Sched`.
//!
//! A waiting blob is opened first, and a blob whose bytes are all in is
//! verified next. Otherwise a blob of at least twice the chunk size is cut
//! into `Range` segments, a blob nobody works on yet coming before more
//! segments of another; a thread with nothing left to start takes over the
//! end of the running segment that will end last. How large a new segment
//! is, and how much of a running one is taken over, is computed in
//! [`segment_size`]. A request needs its host's leave
//! ([`crate::registry::permits`]): a host that rations (it answered 429)
//! gets its largest blob first, and no running segment split. Smaller
//! blobs go on one connection each, and so does a blob whose registry
//! ignores `Range`, once the segments it stopped have ended. Through a
//! mirror list each segment goes to the usable mirror with the fewest
//! segments running whose budget has room, so a blob's segments, and
//! different blobs, come from every mirror at once, and a faster mirror,
//! done sooner, takes more of them; a blob fetched whole again after a
//! digest mismatch is pinned to one mirror.
//!
//! This module only chooses: it makes no request and touches no file;
//! `download.rs` runs the tasks and moves the jobs through their phases,
//! and `segment.rs` fetches a segment's bytes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::fetch::partial::Partial;
use crate::fetch::segment_size::{self, Cut, HostNow, Running};
use crate::image::manifest::Descriptor;
use crate::registry::mirrors::Hosts;
use crate::registry::permits::{Budget, Permit};

/// A byte range `[pos, end)` still to fetch; `pos` only grows, `end` only
/// shrinks.
#[derive(Debug)]
pub struct Segment {
    range: Mutex<(u64, u64)>,
    single: bool,
    /// Which host of the blob's upstream it is fetched from.
    host: usize,
}

impl Segment {
    /// A segment for `[start, end)`.
    pub fn new(start: u64, end: u64) -> Segment {
        Segment {
            range: Mutex::new((start, end)),
            single: false,
            host: 0,
        }
    }

    /// This segment, fetched from host `host` of its upstream.
    pub fn on(mut self, host: usize) -> Segment {
        self.host = host;
        self
    }

    /// Which host of its upstream it is fetched from.
    pub fn host(&self) -> usize {
        self.host
    }

    /// The one connection of a blob whose registry ignores `Range`, for
    /// `[start, end)`: when a resumed request is answered with the whole
    /// blob, the bytes before `start` are read and dropped.
    pub fn single(start: u64, end: u64) -> Segment {
        Segment {
            range: Mutex::new((start, end)),
            single: true,
            host: 0,
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

    /// Gives away the last `n` bytes of what is left, if that much is
    /// left: returns their `[start, end)`.
    pub fn split_off(&self, n: u64) -> Option<(u64, u64)> {
        let mut r = self.range.lock().unwrap_or_else(|p| p.into_inner());
        if n == 0 || n > r.1.saturating_sub(r.0) {
            return None;
        }
        let old_end = r.1;
        r.1 -= n;
        Some((r.1, old_end))
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
    /// The hosts it may come from (one registry, or a mirror list).
    pub(crate) upstream: &'d Hosts,
    /// The one host it is fetched whole from, after a copy spread over
    /// several failed its digest.
    pub(crate) pin: Option<usize>,
    /// The hosts whose whole copy failed its digest.
    pub(crate) tried: Vec<usize>,
    /// The hosts segments of this fetch of it came from.
    pub(crate) used: Vec<usize>,
}

impl Job<'_> {
    /// The hosts its next segment may come from: its pin while that host
    /// is in the pull, else every usable host.
    pub(crate) fn hosts(&self) -> Vec<usize> {
        match self.pin {
            Some(p) if self.upstream.order().contains(&p) => vec![p],
            _ => self.upstream.usable(),
        }
    }

    /// What host `k` allows.
    pub(crate) fn budget(&self, k: usize) -> &Arc<Budget> {
        self.upstream.registry(k).budget()
    }

    /// Whether none of its hosts rations, so running segments may be
    /// split.
    fn may_split(&self) -> bool {
        self.hosts().iter().all(|&k| self.budget(k).may_split())
    }

    /// Puts `[start, end)` back among the ranges to start (a refused
    /// request's), merged with its neighbours.
    pub(crate) fn give_back(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        self.pending.push((start, end));
        self.pending.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.pending.len());
        for (a, b) in self.pending.drain(..) {
            match merged.last_mut() {
                Some(last) if last.1 >= a => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        self.pending = merged;
    }
}

/// A piece of work for a download thread, by job index.
pub(crate) enum Task {
    Open(usize),
    Fetch(usize, Arc<Partial>, Arc<Segment>, Permit),
    Finish(usize, Arc<Partial>),
}

/// The jobs of a batch.
pub(crate) struct Sched<'d> {
    pub(crate) jobs: Vec<Job<'d>>,
    /// How many connections are used at once.
    pub(crate) threads: usize,
    /// The smallest segment; blobs under twice this are not split.
    pub(crate) chunk: u64,
    /// When the last look found work a host's budget held back: how soon
    /// that host allows a request (else a request's end frees one).
    pub(crate) wait: Option<Duration>,
}

impl Sched<'_> {
    /// The next piece of work, if any: open a blob, fetch a new or stolen
    /// segment, or verify a blob whose bytes are all in.
    pub(crate) fn next_task(&mut self) -> Option<Task> {
        let (threads, chunk) = (self.threads, self.chunk);
        self.wait = None;
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
        // A blob nobody works on yet comes before more segments of another;
        // but on a host that rations, the largest blob's segments first
        // (every request counts there: a small blob keeps a connection
        // busy for less time).
        let idle_first = s.jobs.iter().position(|j| {
            matches!(j.phase, Phase::Active)
                && !j.pending.is_empty()
                && j.active.is_empty()
                && j.may_split()
        });
        let order = idle_first.into_iter().chain(0..s.jobs.len());
        for i in order {
            let job = &s.jobs[i];
            if !matches!(job.phase, Phase::Active) || job.pending.is_empty() {
                continue;
            }
            // A registry that ignores Range: one connection for the blob,
            // started once the segments it stopped have ended, so that no
            // Range request reaches the registry after it.
            if !job.ranged && !job.active.is_empty() {
                continue;
            }
            let Some((k, permit)) = s.acquire(i) else {
                s.held_back(i);
                continue;
            };
            let cut = s.cut(i, k, threads, chunk);
            let job = &mut s.jobs[i];
            if !job.used.contains(&k) {
                job.used.push(k);
            }
            let at = cut.pick(&job.pending);
            let (a, b) = job.pending[at];
            let end = a + cut.piece((a, b));
            if end == b {
                job.pending.remove(at);
            } else {
                job.pending[at].0 = end;
            }
            let seg = Arc::new(if job.ranged {
                Segment::new(a, end).on(k)
            } else {
                Segment::single(a, end).on(k)
            });
            job.active.push(seg.clone());
            return Some(Task::Fetch(i, job.partial.clone()?, seg, permit));
        }
        // Nothing new to start: take over the end of the running segment
        // that ends last, on a host that is not rationing (segment_size.rs).
        let rate = |job: &Job, k: usize| job.budget(k).gauge().per_request;
        let mut best: Option<(usize, usize, Running, f64)> = None;
        for (i, job) in s.jobs.iter().enumerate() {
            if !matches!(job.phase, Phase::Active) || !job.ranged || !job.may_split() {
                continue;
            }
            let rates: Vec<_> = job.hosts().iter().map(|&h| rate(job, h)).collect();
            let fastest = rates.iter().flatten().copied().reduce(f64::max);
            for (k, seg) in job.active.iter().enumerate() {
                let run = Running {
                    left: seg.remaining(),
                    rate: rate(job, seg.host()),
                };
                let eta = run.eta(fastest);
                if run.left > 0 && best.is_none_or(|b| eta > b.3) {
                    best = Some((i, k, run, eta));
                }
            }
        }
        let (i, k, run, _) = best?;
        let Some((host, permit)) = s.acquire(i) else {
            s.held_back(i);
            return None;
        };
        let job = &mut s.jobs[i];
        let same = job.active[k].host() == host;
        let give = segment_size::takeover(run, rate(job, host), same, chunk)?;
        let (mid, end) = job.active[k].split_off(give)?;
        if !job.used.contains(&host) {
            job.used.push(host);
        }
        let seg = Arc::new(Segment::new(mid, end).on(host));
        job.active.push(seg.clone());
        Some(Task::Fetch(i, job.partial.clone()?, seg, permit))
    }

    /// A permit for job `i`'s next request, from the host of its
    /// upstream with the fewest segments running (so a blob's segments
    /// spread over every mirror), and that host.
    fn acquire(&self, i: usize) -> Option<(usize, Permit)> {
        let job = &self.jobs[i];
        let mut hosts = job.hosts();
        hosts.sort_by_cached_key(|&k| self.running(job.budget(k)).count());
        hosts
            .into_iter()
            .find_map(|k| job.budget(k).try_acquire().map(|p| (k, p)))
    }

    /// The segments running on the host of budget `host`, from any job.
    fn running<'s>(&'s self, host: &'s Arc<Budget>) -> impl Iterator<Item = &'s Segment> + 's {
        let jobs = self
            .jobs
            .iter()
            .filter(|j| matches!(j.phase, Phase::Active));
        jobs.flat_map(move |j| {
            let on = j.active.iter();
            on.filter(move |a| Arc::ptr_eq(j.budget(a.host()), host))
                .map(|a| a.as_ref())
        })
    }

    /// How job `i`'s next segment, on host `k`, is cut (see `segment_size.rs`),
    /// from the bytes of the host no segment has yet (each job's share of
    /// its bytes, when it has several hosts) and those still to come on
    /// the host's running segments.
    fn cut(&self, i: usize, k: usize, threads: usize, chunk: u64) -> Cut {
        let job = &self.jobs[i];
        let host = job.budget(k);
        let unassigned: u64 = self
            .jobs
            .iter()
            .filter(|j| matches!(j.phase, Phase::Active))
            .filter_map(|j| {
                let hosts = j.hosts();
                let on = hosts.iter().any(|&h| Arc::ptr_eq(j.budget(h), host));
                let pending: u64 = j.pending.iter().map(|(a, b)| b - a).sum();
                on.then(|| pending / hosts.len().max(1) as u64)
            })
            .sum();
        let running = || self.running(host).map(|a| a.remaining());
        let (left, longest) = (running().sum(), running().max().unwrap_or(0));
        let splittable = job.ranged && job.desc.size >= 2 * chunk;
        let host_now = HostNow {
            gauge: host.gauge(),
            rationing: !host.may_split(),
        };
        segment_size::cut(
            &host_now,
            threads,
            chunk,
            splittable,
            (unassigned, left, longest),
        )
    }

    /// Job `i` has work its host's budget holds back: notes how soon the
    /// host allows a request.
    fn held_back(&mut self, i: usize) {
        let job = &self.jobs[i];
        let soonest = job
            .hosts()
            .iter()
            .filter_map(|&k| job.budget(k).ready_in())
            .min();
        if let Some(wait) = soonest {
            self.wait = Some(self.wait.map_or(wait, |w| w.min(wait)));
        }
    }
}
