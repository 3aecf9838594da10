//! Fetching blobs into the store: in parallel on a dedicated pool of the
//! user's thread count, streamed to a temporary file while being hashed,
//! bounded by the descriptor's size, retried with backoff, continued with a
//! `Range` request after a broken connection, and moved into the store only
//! once size and SHA-256 match.
//!
//! A `206` is accepted only with a `Content-Range` that starts where the
//! file ends and covers the rest of the blob; a `200` to a `Range` request
//! restarts the blob from zero. The first fatal error stops the other
//! downloads. This module does not split one blob into several ranges, and
//! its partial files do not outlive the run (they are removed on failure).

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::cache::Store;
use crate::digest::{Digest, Verifier};
use crate::error::{Error, Result};
use crate::manifest::Descriptor;
use crate::progress::Progress;
use crate::registry::Registry;
use crate::retry::{self, Policy};

/// The size of the read buffer of one download.
const BUF_SIZE: usize = 256 << 10;

/// Everything a batch of downloads shares.
pub struct Downloader<'a> {
    /// Where blobs come from.
    pub registry: &'a Registry,
    /// Where verified blobs go.
    pub store: &'a Store,
    /// What the user sees.
    pub progress: &'a Progress,
    /// When to retry.
    pub policy: Policy,
    /// How many blobs are fetched at once.
    pub threads: usize,
}

impl Downloader<'_> {
    /// Makes sure every blob of `blobs` is in the store, verified (the
    /// caller announces the count to the progress display). Blobs
    /// already there are not fetched again; duplicates are fetched once;
    /// the largest start first.
    pub fn fetch_all(&self, blobs: &[Descriptor]) -> Result<()> {
        let mut todo: Vec<&Descriptor> = Vec::new();
        for d in blobs {
            if !todo.iter().any(|t| t.digest == d.digest) {
                todo.push(d);
            }
        }
        todo.retain(|d| {
            let held = self.store.has(&d.digest, d.size);
            if held {
                self.progress.cached(&d.digest, d.size);
            }
            !held
        });
        if todo.is_empty() {
            return Ok(());
        }
        todo.sort_by_key(|d| std::cmp::Reverse(d.size));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads.clamp(1, todo.len()))
            .thread_name(|i| format!("pulltar-download-{i}"))
            .build()
            .map_err(|e| Error::Usage(format!("cannot start download threads: {e}")))?;
        let abort = AtomicBool::new(false);
        let results: Vec<Result<()>> = pool.install(|| {
            todo.par_iter()
                .with_max_len(1)
                .map(|d| {
                    if abort.load(Ordering::Relaxed) {
                        return Err(Error::Aborted);
                    }
                    let r = self.fetch_one(d, &abort);
                    if r.is_err() {
                        abort.store(true, Ordering::Relaxed);
                    }
                    r
                })
                .collect()
        });
        let mut first_aborted = None;
        for r in results {
            match r {
                Err(Error::Aborted) => first_aborted = Some(Error::Aborted),
                Err(e) => return Err(e),
                Ok(()) => {}
            }
        }
        first_aborted.map_or(Ok(()), Err)
    }

    /// Fetches one blob into the store.
    pub fn fetch_one(&self, desc: &Descriptor, abort: &AtomicBool) -> Result<()> {
        let started = Instant::now();
        let temp = TempFile(self.store.temp_path(&desc.digest));
        let mut file = File::create(&temp.0)
            .map_err(|e| Error::io("create the temporary file", &temp.0, e))?;
        let mut verifier = Verifier::new();
        let mut failures = 0u32;
        loop {
            let before = verifier.len();
            match self.transfer(desc, &mut file, &temp.0, &mut verifier, abort) {
                Ok(()) => break,
                Err(e) if e.is_retryable() => {
                    failures = if verifier.len() > before {
                        1
                    } else {
                        failures + 1
                    };
                    let Some(wait) =
                        self.policy
                            .next_delay(failures, e.retry_after(), retry::jitter())
                    else {
                        return Err(e);
                    };
                    self.progress.retrying(&desc.digest, &short_cause(&e), wait);
                    sleep_unless_aborted(wait, abort)?;
                }
                Err(e) => return Err(e),
            }
        }
        verifier
            .check(&desc.digest, desc.size)
            .map_err(|detail| Error::Verify {
                digest: desc.digest.to_string(),
                detail,
            })?;
        file.sync_data()
            .map_err(|e| Error::io("write", &temp.0, e))?;
        drop(file);
        // After the rename the guard finds nothing left to remove.
        self.store.commit(&temp.0, &desc.digest)?;
        self.progress
            .downloaded(&desc.digest, desc.size, started.elapsed());
        Ok(())
    }

    /// One request: from the bytes already in `file` to the end, or until
    /// the connection breaks.
    fn transfer(
        &self,
        desc: &Descriptor,
        file: &mut File,
        path: &Path,
        verifier: &mut Verifier,
        abort: &AtomicBool,
    ) -> Result<()> {
        let offset = verifier.len();
        let digest = &desc.digest;
        if offset == desc.size && offset > 0 {
            return Ok(());
        }
        let mut resp = self.registry.open_blob(digest, offset)?;
        let status = resp.status().as_u16();
        let length = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        match status {
            200 => {
                if offset > 0 {
                    log::info!(
                        "blob {}: the server ignored the Range request; starting it again",
                        digest.short()
                    );
                    file.set_len(0)
                        .and_then(|_| file.seek(SeekFrom::Start(0)).map(|_| ()))
                        .map_err(|e| Error::io("truncate", path, e))?;
                    *verifier = Verifier::new();
                }
                if let Some(len) = length.filter(|&l| l != desc.size) {
                    return Err(verify_error(
                        digest,
                        format!(
                            "the registry announced {len} bytes, the manifest says {}",
                            desc.size
                        ),
                    ));
                }
            }
            206 if offset > 0 => {
                let range = resp
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                check_content_range(range, offset, desc.size)
                    .map_err(|detail| verify_error(digest, detail))?;
            }
            _ => return Err(self.registry.blob_error(digest, &mut resp)),
        }
        let mut reader = resp.into_body().into_reader();
        let mut buf = vec![0u8; BUF_SIZE];
        loop {
            if abort.load(Ordering::Relaxed) {
                return Err(Error::Aborted);
            }
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(broken(
                        digest,
                        &self.registry.blob_url(digest),
                        verifier.len(),
                        desc.size,
                        &e.to_string(),
                    ))
                }
            };
            if verifier.len() + n as u64 > desc.size {
                return Err(verify_error(
                    digest,
                    format!(
                        "the registry sent more than the {} bytes the manifest declares",
                        desc.size
                    ),
                ));
            }
            file.write_all(&buf[..n])
                .map_err(|e| Error::io("write", path, e))?;
            verifier.update(&buf[..n]);
            self.progress.add_bytes(n as u64);
        }
        if verifier.len() < desc.size {
            return Err(broken(
                digest,
                &self.registry.blob_url(digest),
                verifier.len(),
                desc.size,
                "the connection closed early",
            ));
        }
        Ok(())
    }
}

/// Removes the temporary file when a download fails.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn verify_error(digest: &Digest, detail: String) -> Error {
    Error::Verify {
        digest: digest.to_string(),
        detail,
    }
}

fn broken(digest: &Digest, url: &str, got: u64, size: u64, cause: &str) -> Error {
    Error::Network {
        what: format!("downloading blob {digest}"),
        url: format!("GET {}", crate::error::redact_url(url)),
        cause: format!("{cause} after {got} of {size} bytes"),
        transient: true,
    }
}

fn short_cause(e: &Error) -> String {
    match e {
        Error::Network { cause, .. } => cause.clone(),
        Error::Http { status, .. } => format!("HTTP {status}"),
        other => other.to_string(),
    }
}

fn sleep_unless_aborted(wait: Duration, abort: &AtomicBool) -> Result<()> {
    let until = Instant::now() + wait;
    loop {
        if abort.load(Ordering::Relaxed) {
            return Err(Error::Aborted);
        }
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        std::thread::sleep((until - now).min(Duration::from_millis(100)));
    }
}

/// Checks a `Content-Range: bytes FIRST-LAST/TOTAL` answer to a request
/// from `offset`: it must start at `offset`, end at the blob's last byte,
/// and state the blob's size (or `*`).
pub fn check_content_range(
    header: &str,
    offset: u64,
    size: u64,
) -> std::result::Result<(), String> {
    let bad = || {
        format!(
            "the registry answered a request from byte {offset} with Content-Range {:?} (expected bytes {offset}-{}/{size})",
            crate::error::excerpt(header.as_bytes(), 80),
            size.saturating_sub(1)
        )
    };
    let spec = header.trim().strip_prefix("bytes ").ok_or_else(bad)?;
    let (range, total) = spec.split_once('/').ok_or_else(bad)?;
    let (first, last) = range.split_once('-').ok_or_else(bad)?;
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (first, last) = (num(first).ok_or_else(bad)?, num(last).ok_or_else(bad)?);
    if first != offset || last.checked_add(1) != Some(size) {
        return Err(bad());
    }
    if total != "*" && num(total) != Some(size) {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_ok() {
        assert!(check_content_range("bytes 10-99/100", 10, 100).is_ok());
        assert!(check_content_range("bytes 10-99/*", 10, 100).is_ok());
    }

    #[test]
    fn content_range_bad() {
        for bad in [
            "",
            "bytes 0-99/100",
            "bytes 10-98/100",
            "bytes 10-99/101",
            "bytes 10-99",
            "items 10-99/100",
            "bytes -99/100",
            "bytes 10-/100",
            "bytes +10-99/100",
            "bytes 10-18446744073709551615/100",
        ] {
            assert!(check_content_range(bad, 10, 100).is_err(), "{bad:?}");
        }
    }
}
