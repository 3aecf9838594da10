//! The blobs of a push, on the user's connections: each blob once, in
//! every repository that needs it, largest first, `-t` at a time.
//!
//! For each repository in turn a blob is looked for first (`HEAD`: there,
//! nothing is sent); one that this push has already put into another
//! repository of the registry is mounted from there (`?mount=&from=`), and
//! uploaded on any answer but 201 (in the session a 202 opened); any other
//! is uploaded from its place in the archive ([`crate::upload::blob`]).
//! The first failure stops the other connections after their current blob
//! ([`crate::fetch::pool`]). This module decides only the order and the
//! mount sources; the requests are the registry client's.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::archive::contents::Blob;
use crate::archive::reader::Archive;
use crate::error::{Error, Result};
use crate::fetch::pool;
use crate::registry::client::Registry;
use crate::registry::session::Mount;
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

impl Blobs<'_> {
    /// Puts every blob of `jobs` into its repositories.
    pub fn push_all(&self, mut jobs: Vec<Job>) -> Result<Tally> {
        jobs.sort_by_key(|j| std::cmp::Reverse(j.blob.size));
        let next = AtomicUsize::new(0);
        let chunked = AtomicBool::new(false);
        let tally = Mutex::new(Tally::default());
        let workers = self.threads.min(jobs.len()).max(1);
        pool::run(workers, "upload", |stop| loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) else {
                return Ok(());
            };
            self.push_one(job, &chunked, &tally)?;
        })?;
        Ok(tally.into_inner().unwrap_or_else(|p| p.into_inner()))
    }

    /// Puts one blob into each of its repositories.
    fn push_one(&self, job: &Job, chunked: &AtomicBool, tally: &Mutex<Tally>) -> Result<()> {
        let blob = &job.blob;
        let count = |f: fn(&mut Tally)| f(&mut tally.lock().unwrap_or_else(|p| p.into_inner()));
        // A repository known to hold the blob, to mount it from.
        let mut holder: Option<usize> = None;
        for (k, &repo) in job.repos.iter().enumerate() {
            if interrupt::interrupted() {
                return Err(Error::Interrupted { resumable: true });
            }
            let registry = &self.registries[repo];
            // The display counts the blob once: in its first repository.
            let shown = k == 0;
            if registry.has_blob(&blob.digest)? {
                let how = format!("already in {}", registry.repository());
                log::debug!("blob {} is {how}", blob.digest.short());
                if shown {
                    self.progress.present(&blob.digest, blob.size, &how);
                }
                count(|t| t.present += 1);
                holder = Some(repo);
                continue;
            }
            let mut session = None;
            if let Some(from) = holder {
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
            self.upload(registry, blob, chunked, session, shown)?;
            count(|t| t.uploaded += 1);
            holder = Some(repo);
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
