//! Fetching blobs into the store on a dedicated pool of the user's thread
//! count, so that every connection stays busy whether the image has one
//! large layer or sixty small ones.
//!
//! Each thread takes the next task (chosen in [`crate::fetch::schedule`])
//! and runs it: opening a blob's resumable partial file
//! ([`crate::fetch::partial`]); fetching a segment
//! ([`crate::fetch::segment`]), its failed requests retried by the
//! [`Policy`]; or, once every byte is in, hashing the file, checking it
//! against the descriptor and moving it into the store. A blob that fails
//! that check is discarded and fetched afresh, once (one corrupt response
//! must not end a long pull); a second mismatch is final, and its error
//! names what both fetches hashed to. A 200 to a `Range` request makes the
//! blob fall back to one connection from byte 0, once, however many
//! segments notice. A resumed blob the registry disagrees with (a 416, a
//! wrong `Content-Range`) is discarded and fetched afresh, once. What a
//! mirror's failure changes is decided in `failover.rs`. The first fatal
//! error, or an interrupt, stops every thread.
//!
//! Every blob's declared size is checked ([`check_size`]) before anything
//! is fetched.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
pub use crate::fetch::blob_origin::Sources;
pub use crate::fetch::blob_size_limit::{check_size, max_blob_size};
use crate::fetch::partial::Partial;
use crate::fetch::pool;
use crate::fetch::schedule::{Job, Phase, Sched, Segment, Task};
use crate::fetch::segment::{self, Link};
use crate::image::manifest::Descriptor;
use crate::registry::retry::Policy;
use crate::store::cache::Store;
use crate::ui::interrupt;
use crate::ui::progress::Progress;

/// The default smallest segment.
pub const DEFAULT_CHUNK: u64 = 1 << 20;

/// Everything a batch of downloads shares.
pub struct Downloader<'a> {
    /// Where blobs come from.
    pub sources: Sources<'a>,
    /// Where verified blobs go.
    pub store: &'a Store,
    /// What the user sees.
    pub progress: &'a Progress,
    /// When to retry.
    pub policy: Policy,
    /// How many connections are used at once.
    pub threads: usize,
    /// The smallest segment; blobs under twice this are not split.
    pub chunk: u64,
    /// An archive written in place: blobs with a region there are
    /// downloaded into it instead of the store.
    pub in_place: Option<&'a crate::archive::in_place::InPlace>,
}

impl Downloader<'_> {
    /// Makes sure every blob of `blobs` is in the store, verified (the
    /// caller announces the count to the progress display). Blobs already
    /// there are not fetched again; duplicates are fetched once; the
    /// largest start first.
    pub fn fetch_all(&self, blobs: &[Descriptor]) -> Result<()> {
        let max = max_blob_size()?;
        for d in blobs {
            check_size(d, max)?;
        }
        let mut todo: Vec<&Descriptor> = Vec::new();
        for d in blobs {
            if !todo.iter().any(|t| t.digest == d.digest) {
                todo.push(d);
            }
        }
        let mut held = Vec::new();
        let mut wanted = Vec::new();
        for d in todo {
            match self.store.has(&d.digest, d.size)? {
                true => held.push(d),
                false => wanted.push(d),
            }
        }
        let mut todo = wanted;
        for d in held {
            if let Some(archive) = self.in_place {
                archive.fill(self.store, d)?;
            }
            self.progress.cached(&d.digest, d.size);
        }
        if todo.is_empty() {
            return Ok(());
        }
        todo.sort_by_key(|d| std::cmp::Reverse(d.size));
        self.progress.queue(&todo);
        let jobs = todo
            .into_iter()
            .map(|desc| Job {
                desc,
                phase: Phase::Waiting,
                partial: None,
                pending: Vec::new(),
                active: Vec::new(),
                ranged: true,
                resumed: false,
                restarted: false,
                mismatch: None,
                restart_pending: None,
                started: Instant::now(),
                upstream: self.sources.of(&desc.digest),
                pin: None,
                tried: Vec::new(),
                used: Vec::new(),
            })
            .collect();
        let sched = Mutex::new(Sched {
            jobs,
            threads: self.threads.max(1),
            chunk: self.chunk,
            wait: None,
        });
        let wake = Condvar::new();
        pool::run(self.threads, "download", |abort| {
            self.worker(&sched, &wake, abort)
        })
    }

    fn worker(&self, sched: &Mutex<Sched>, wake: &Condvar, abort: &AtomicBool) -> Result<()> {
        loop {
            let task = {
                let mut s = sched.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    if abort.load(Ordering::Relaxed) || interrupt::interrupted() {
                        abort.store(true, Ordering::Relaxed);
                        wake.notify_all();
                        return Ok(());
                    }
                    if let Some(t) = s.next_task() {
                        break t;
                    }
                    if s.jobs.iter().all(|j| matches!(j.phase, Phase::Done)) {
                        return Ok(());
                    }
                    // A request's end wakes the threads; a host's budget
                    // that only needs time says how long.
                    let wait = s.wait.unwrap_or(Duration::MAX);
                    s = wake
                        .wait_timeout(s, wait.min(Duration::from_millis(200)))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            };
            let outcome = match task {
                Task::Open(i) => self.open(sched, i),
                Task::Fetch(i, partial, seg, permit) => {
                    let desc = sched.lock().unwrap_or_else(|p| p.into_inner()).jobs[i].desc;
                    let upstream = self.sources.of(&desc.digest);
                    let link = Link {
                        registry: upstream.registry(seg.host()),
                        progress: self.progress,
                        permit: &permit,
                        tally: &upstream.members()[seg.host()].bytes,
                    };
                    let r = segment::fetch(&link, desc, &partial, &seg, abort);
                    // Released before the job is updated, so that whoever
                    // verifies or restarts the blob holds the only handle.
                    drop(partial);
                    drop(permit);
                    self.segment_done(sched, i, &seg, r)
                }
                Task::Finish(i, partial) => self.finish(sched, i, partial),
            };
            if outcome.is_err() {
                abort.store(true, Ordering::Relaxed);
            }
            wake.notify_all();
            outcome?;
        }
    }

    fn open(&self, sched: &Mutex<Sched>, i: usize) -> Result<()> {
        let desc = sched.lock().unwrap_or_else(|p| p.into_inner()).jobs[i].desc;
        let region = self
            .in_place
            .and_then(|a| a.region(&desc.digest).map(|r| (a, r)));
        let partial = match region {
            // No cache: the region is all there is.
            Some((_, (file, at, path))) if self.store.is_temporary() => {
                Some(Partial::in_region(file, at, path, &desc.digest, desc.size))
            }
            // Into the store and the region at once.
            Some((archive, (file, at, path))) => {
                match Partial::open(self.store, &desc.digest, desc.size)? {
                    Some(mut p) => {
                        p.copy_into(file, at, path)?;
                        Some(p)
                    }
                    None => {
                        archive.fill(self.store, desc)?;
                        None
                    }
                }
            }
            None => Partial::open(self.store, &desc.digest, desc.size)?,
        };
        let mut s = sched.lock().unwrap_or_else(|p| p.into_inner());
        let job = &mut s.jobs[i];
        match partial {
            None => {
                job.phase = Phase::Done;
                drop(s);
                self.progress.cached(&desc.digest, desc.size);
            }
            Some(p) => {
                job.resumed = p.done.covered() > 0;
                if job.resumed {
                    log::info!(
                        "blob {}: resuming with {} of {} bytes already downloaded",
                        desc.digest.short(),
                        p.done.covered(),
                        desc.size
                    );
                }
                self.progress.started(&desc.digest, p.done.covered());
                job.pending = p.done.missing(desc.size);
                job.partial = Some(Arc::new(p));
                job.phase = Phase::Active;
                job.started = Instant::now();
            }
        }
        Ok(())
    }

    fn segment_done(
        &self,
        sched: &Mutex<Sched>,
        i: usize,
        seg: &Arc<Segment>,
        r: Result<segment::Outcome>,
    ) -> Result<()> {
        let mut s = sched.lock().unwrap_or_else(|p| p.into_inner());
        let job = &mut s.jobs[i];
        job.active.retain(|a| !Arc::ptr_eq(a, seg));
        match r {
            Ok(segment::Outcome::Complete) => job.upstream.succeeded(seg.host()),
            Ok(segment::Outcome::NoRanges) if job.ranged => {
                // The first segment to notice that the server ignores
                // Range: the blob falls back, once, to one connection
                // from byte 0 (`Segment::single`), the others stop.
                log::info!(
                    "blob {}: the registry ignores Range requests; fetching it on one connection",
                    job.desc.digest.short()
                );
                job.ranged = false;
                for other in &job.active {
                    other.stop();
                }
                job.pending = vec![(0, job.desc.size)];
                self.progress.restarted(&job.desc.digest);
            }
            // A Range request sent before the fallback: the one connection
            // brings its bytes.
            Ok(segment::Outcome::NoRanges) => {}
            // The host refused it (429): the rest waits for its budget.
            Ok(segment::Outcome::Refused) => {
                let (pos, end) = seg.get();
                job.give_back(pos, end);
            }
            // A resumed blob the registry disagrees with (416, a wrong
            // Content-Range): start it afresh, once, when its other
            // segments have stopped.
            Err(e @ Error::Verify { .. }) if job.resumed && !job.restarted => {
                for other in &job.active {
                    other.stop();
                }
                job.pending.clear();
                job.restart_pending = Some(e);
            }
            // Through a mirror list: another mirror takes the range.
            Err(e) => job.fail_over(seg, e)?,
        }
        if job.active.is_empty() {
            if let Some(why) = job.restart_pending.take() {
                return self.restart(job, &why, None);
            }
        }
        Ok(())
    }

    /// Discards a blob's bytes and fetches it again from zero. Call only
    /// when no segment of it runs; `partial` is the handle if the caller
    /// holds it rather than the job.
    fn restart(&self, job: &mut Job, why: &Error, partial: Option<Arc<Partial>>) -> Result<()> {
        log::warn!(
            "blob {}: {why}; its bytes are discarded and the blob fetched again",
            job.desc.digest.short()
        );
        self.progress.restarted(&job.desc.digest);
        let partial = partial
            .or_else(|| job.partial.take())
            .ok_or(Error::Aborted)?;
        job.partial = None;
        let mut partial = Arc::try_unwrap(partial).map_err(|_| Error::Aborted)?;
        partial.reset()?;
        job.partial = Some(Arc::new(partial));
        job.pending = vec![(0, job.desc.size)];
        job.restarted = true;
        job.resumed = false;
        job.phase = Phase::Active;
        Ok(())
    }

    fn finish(&self, sched: &Mutex<Sched>, i: usize, partial: Arc<Partial>) -> Result<()> {
        let desc = sched.lock().unwrap_or_else(|p| p.into_inner()).jobs[i].desc;
        self.progress.verifying(&desc.digest);
        let verdict = partial.verify();
        let mut s = sched.lock().unwrap_or_else(|p| p.into_inner());
        let job = &mut s.jobs[i];
        match verdict {
            Ok(()) => {
                job.phase = Phase::Done;
                let took = job.started.elapsed();
                drop(s);
                let partial = Arc::try_unwrap(partial).map_err(|_| Error::Aborted)?;
                partial.commit(self.store)?;
                self.progress.downloaded(&desc.digest, desc.size, took);
                Ok(())
            }
            Err(detail) => {
                let e = Error::Verify {
                    digest: desc.digest.to_string(),
                    detail: detail.clone(),
                };
                if job.upstream.mirrored() {
                    // Through a mirror list: fetched whole from one mirror,
                    // then another, until every one has served a wrong copy.
                    return match job.next_whole(&detail) {
                        Ok(_) => self.restart(job, &e, Some(partial)),
                        Err(last) => Err(abandon(job, partial, last)),
                    };
                }
                if !job.restarted {
                    // Bad bytes from the registry (a flaky mirror, a proxy
                    // or CDN edge corrupting one response): keep none of
                    // them, and fetch the blob afresh, once.
                    job.mismatch = Some(detail);
                    return self.restart(job, &e, Some(partial));
                }
                let detail = crate::error::second_mismatch(job.mismatch.take(), detail);
                let e = Error::Verify {
                    digest: desc.digest.to_string(),
                    detail,
                };
                Err(abandon(job, partial, e))
            }
        }
    }
}

/// Gives a blob up for good: its bytes are discarded, and `e` returned.
fn abandon(job: &mut Job, partial: Arc<Partial>, e: Error) -> Error {
    job.phase = Phase::Done;
    if let Ok(p) = Arc::try_unwrap(partial) {
        p.discard();
    }
    e
}
