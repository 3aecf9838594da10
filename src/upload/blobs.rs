//! The blobs of a push, on the user's connections: each blob once, in
//! every repository that needs it, largest first, `-t` at a time.
//!
//! For each repository in turn a blob is looked for first (`HEAD`: there,
//! nothing is sent); one that this push has already put into another
//! repository of the registry is mounted from there (`?mount=&from=`), and
//! uploaded on any answer but 201 (in the session a 202 opened); any other
//! is uploaded from its place in the archive ([`crate::upload::blob`]).
//! That decision is [`step`]'s, which a dry run ([`plan`]) makes from the
//! same `HEAD`s without sending anything. The first failure stops the
//! other connections after their current blob ([`crate::fetch::pool`]).
//! This module decides only the order and the mount sources; the requests
//! are the registry client's.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::archive::contents::Blob;
use crate::archive::reader::Archive;
use crate::error::{Error, Result};
use crate::fetch::pool;
use crate::registry::client::Registry;
use crate::registry::session::Mount;
use crate::ui::counters::human_bytes;
use crate::ui::interrupt;
use crate::ui::progress::Progress;
use crate::upload::blob::Upload;

/// One blob and the repositories (indexes into the clients) that need it.
#[derive(Debug)]
pub struct Job {
    /// The blob.
    pub blob: Blob,
    /// The repositories, in the order they are served.
    pub repos: Vec<usize>,
}

/// What happened to the blobs.
#[derive(Debug, Default)]
pub struct Tally {
    /// Blobs uploaded (in one repository each).
    pub uploaded: usize,
    /// Blobs a repository had already.
    pub present: usize,
    /// Blobs mounted from another repository.
    pub mounted: usize,
}

/// Everything the uploads share.
pub struct Blobs<'a> {
    /// The archive the blobs are read from.
    pub archive: &'a Archive,
    /// One client per repository.
    pub registries: &'a [Registry],
    /// What the user sees.
    pub progress: &'a Progress,
    /// Connections at once.
    pub threads: usize,
    /// The chunk size, once chunks are needed.
    pub chunk: u64,
}

/// What one repository of a push needs for a blob: the decision the push
/// and its dry run share ([`step`]), so the two cannot disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The repository has it (`HEAD` answered 200): nothing is sent.
    Present,
    /// Mounted from this repository of the push, which has it by then
    /// (uploaded after all when the registry does not mount).
    Mount(usize),
    /// Uploaded from the archive.
    Upload,
}

/// The step for `repo`, given whether it has the blob and `holder`, a
/// repository of this push that has it by then (updated).
pub fn step(present: bool, repo: usize, holder: &mut Option<usize>) -> Step {
    match (present, *holder) {
        (false, Some(from)) => Step::Mount(from),
        (present, _) => {
            *holder = Some(repo);
            if present {
                Step::Present
            } else {
                Step::Upload
            }
        }
    }
}

/// Runs `work` on each job (with its index), `threads` at a time.
fn each(
    jobs: &[Job],
    threads: usize,
    work: impl Fn(usize, &Job) -> Result<()> + Sync,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    pool::run(threads.min(jobs.len()).max(1), "upload", |stop| loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        match jobs.get(i) {
            Some(job) if !stop.load(Ordering::Relaxed) => work(i, job)?,
            _ => return Ok(()),
        }
    })
}

/// The steps of each job, in the jobs' order, from `HEAD`s alone (the dry
/// run): nothing is written. A repository without a client (the registry
/// could not be reached) is taken to hold nothing.
pub fn plan(jobs: &[Job], registries: &[Registry], threads: usize) -> Result<Vec<Vec<Step>>> {
    let out = Mutex::new(vec![Vec::new(); jobs.len()]);
    each(jobs, threads, |i, job| {
        let mut holder = None;
        let mut steps = Vec::new();
        for &repo in &job.repos {
            let present = match registries.get(repo) {
                Some(r) => r.has_blob(&job.blob.digest)?,
                None => false,
            };
            steps.push(step(present, repo, &mut holder));
        }
        out.lock().unwrap_or_else(|p| p.into_inner())[i] = steps;
        Ok(())
    })?;
    Ok(out.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// The dry run's line for each blob in each repository (`repos` names
/// them), from its `steps`; with the tally a push would report and the
/// bytes it would send.
pub fn listing(jobs: &[Job], steps: Vec<Vec<Step>>, repos: &[&str]) -> (Vec<String>, Tally, u64) {
    let (mut lines, mut tally, mut bytes) = (Vec::new(), Tally::default(), 0);
    for (job, steps) in jobs.iter().zip(steps) {
        let (blob, size) = (&job.blob.digest, human_bytes(job.blob.size));
        for (&repo, step) in job.repos.iter().zip(steps) {
            let repo = repos[repo];
            lines.push(match step {
                Step::Upload => {
                    (tally.uploaded, bytes) = (tally.uploaded + 1, bytes + job.blob.size);
                    format!("blob {blob} ({size}): would upload to {repo}")
                }
                Step::Mount(from) => {
                    tally.mounted += 1;
                    format!(
                        "blob {blob} ({size}): would mount into {repo} from {}",
                        repos[from]
                    )
                }
                Step::Present => {
                    tally.present += 1;
                    format!("blob {blob} ({size}): already in {repo}")
                }
            });
        }
    }
    (lines, tally, bytes)
}

impl Blobs<'_> {
    /// Puts every blob of `jobs` into its repositories.
    pub fn push_all(&self, mut jobs: Vec<Job>) -> Result<Tally> {
        jobs.sort_by_key(|j| std::cmp::Reverse(j.blob.size));
        let chunked = AtomicBool::new(false);
        let tally = Mutex::new(Tally::default());
        each(&jobs, self.threads, |_, job| {
            self.push_one(job, &chunked, &tally)
        })?;
        Ok(tally.into_inner().unwrap_or_else(|p| p.into_inner()))
    }

    /// Puts one blob into each of its repositories.
    fn push_one(&self, job: &Job, chunked: &AtomicBool, tally: &Mutex<Tally>) -> Result<()> {
        let blob = &job.blob;
        let count = |f: fn(&mut Tally)| f(&mut tally.lock().unwrap_or_else(|p| p.into_inner()));
        let mut holder: Option<usize> = None;
        for (k, &repo) in job.repos.iter().enumerate() {
            if interrupt::interrupted() {
                return Err(Error::Interrupted { resumable: true });
            }
            let registry = &self.registries[repo];
            // The display counts the blob once: in its first repository.
            let shown = k == 0;
            let mut session = None;
            match step(registry.has_blob(&blob.digest)?, repo, &mut holder) {
                Step::Present => {
                    let how = format!("already in {}", registry.repository());
                    log::debug!("blob {} is {how}", blob.digest.short());
                    if shown {
                        self.progress.present(&blob.digest, blob.size, &how);
                    }
                    count(|t| t.present += 1);
                    continue;
                }
                Step::Mount(from) => {
                    let from = self.registries[from].repository();
                    match registry.mount(&blob.digest, from)? {
                        Mount::Done => {
                            log::debug!("blob {} mounted from {from}", blob.digest.short());
                            if shown {
                                let how = format!("mounted from {from}");
                                self.progress.present(&blob.digest, blob.size, &how);
                            }
                            count(|t| t.mounted += 1);
                            continue;
                        }
                        Mount::Upload(s) => session = Some(s),
                        Mount::No => {}
                    }
                }
                Step::Upload => {}
            }
            self.upload(registry, blob, chunked, session, shown)?;
            count(|t| t.uploaded += 1);
        }
        Ok(())
    }

    /// Uploads `blob` into `registry`'s repository, reading it from the
    /// archive.
    fn upload(
        &self,
        registry: &Registry,
        blob: &Blob,
        chunked: &AtomicBool,
        session: Option<crate::registry::session::Session>,
        shown: bool,
    ) -> Result<()> {
        let region = blob.region;
        let archive = self.archive;
        let open = move |offset: u64| -> Result<Box<dyn std::io::Read + Send>> {
            let at = crate::archive::reader::Region {
                offset: region.offset + offset,
                size: region.size.saturating_sub(offset),
            };
            Ok(Box::new(archive.open_region(at)?))
        };
        Upload {
            registry,
            digest: &blob.digest,
            size: blob.size,
            open: &open,
            chunked,
            chunk: self.chunk,
            progress: self.progress,
            shown,
        }
        .run(session)
    }
}

/// The jobs for `needs`: each (blob, repository) pair, gathered by blob in
/// the order first seen.
pub fn jobs<'a>(needs: impl IntoIterator<Item = (&'a Blob, usize)>) -> Vec<Job> {
    let mut out: Vec<Job> = Vec::new();
    for (blob, repo) in needs {
        match out.iter_mut().find(|j| j.blob.digest == blob.digest) {
            Some(j) if !j.repos.contains(&repo) => j.repos.push(repo),
            Some(_) => {}
            None => out.push(Job {
                blob: blob.clone(),
                repos: vec![repo],
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps() {
        // Missing everywhere: uploaded once, then mounted from there.
        let mut holder = None;
        let got: Vec<Step> = [3, 1, 2]
            .iter()
            .map(|&r| step(false, r, &mut holder))
            .collect();
        assert_eq!(got, [Step::Upload, Step::Mount(3), Step::Mount(3)]);
        // Present in the second: the first uploads, the second is skipped.
        let mut holder = None;
        assert_eq!(step(false, 0, &mut holder), Step::Upload);
        assert_eq!(step(true, 1, &mut holder), Step::Present);
        assert_eq!(holder, Some(1));
        // Present first: a later one mounts from it.
        let mut holder = None;
        assert_eq!(step(true, 4, &mut holder), Step::Present);
        assert_eq!(step(false, 5, &mut holder), Step::Mount(4));
    }
}
