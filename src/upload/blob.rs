//! Uploading one blob ([`Upload::run`]): in one `PUT` of the whole blob
//! by default; in `PATCH` chunks of `--chunk-size` (at least the
//! registry's `OCI-Chunk-Min-Length`) once a registry or a proxy answered a
//! whole blob with 413, for the rest of the push; then the closing `PUT
//! ?digest=`.
//!
//! Every byte is read from the blob's source through its hash, and the
//! last one goes out only once the whole blob has hashed to its digest, so
//! a damaged archive never completes an upload. A failed request (a reset,
//! a stall, 5xx, 416, an expired session) is followed by a `GET` on the
//! upload: the upload goes on from the offset the registry reports (the
//! bytes before it hashed again from the source), or starts again in a new
//! session (also after a 416 at the very offset the registry reports, as
//! ECR answers a restart in the same session); the pull's retry loop
//! (`registry/retry.rs`) spaces and bounds the attempts, counting only
//! attempts that moved nothing. A 401, and a 429, are the client's to
//! handle (renewed, waited out). Ctrl-C stops between reads. An upload
//! given up is abandoned (`DELETE`).

use std::cell::Cell;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::image::digest::{Digest, Verifier};
use crate::registry::client::request::Sending;
use crate::registry::client::Registry;
use crate::registry::retry;
use crate::registry::session::Session;
use crate::ui::interrupt;
use crate::ui::progress::Progress;

/// Opens a blob's bytes from an offset to its end.
pub type Opener<'a> = dyn Fn(u64) -> Result<Box<dyn Read + Send + 'a>> + Sync + 'a;

/// One blob to upload into one repository.
pub struct Upload<'a> {
    /// The repository's client.
    pub registry: &'a Registry,
    /// The blob's digest.
    pub digest: &'a Digest,
    /// Its size.
    pub size: u64,
    /// Its bytes.
    pub open: &'a Opener<'a>,
    /// Set once a whole blob was refused with 413: from then on, every
    /// upload of the push goes in chunks.
    pub chunked: &'a AtomicBool,
    /// The chunk size (`--chunk-size`).
    pub chunk: u64,
    /// What the user sees.
    pub progress: &'a Progress,
    /// Whether the display shows this upload (a blob uploaded into a
    /// second repository is counted once).
    pub shown: bool,
}

/// How far the upload got: the bytes the registry holds, and their hash.
#[derive(Default)]
struct Position {
    offset: u64,
    hasher: Verifier,
}

impl Upload<'_> {
    /// Uploads the blob, in `session` (a mount's 202) or a new one.
    pub fn run(&self, session: Option<Session>) -> Result<()> {
        let what = format!("blob {}", self.digest.short());
        let started = Instant::now();
        let mut session = match session {
            Some(s) => s,
            None => self.registry.start_upload(&what)?,
        };
        let verdict: Mutex<Option<String>> = Mutex::new(None);
        let mut pos = Position::default();
        let mut in_chunks = self.chunked.load(Ordering::Relaxed);
        // The status of the last failure, if one is to be recovered from.
        let mut failed: Option<Option<u16>> = None;
        let moved = Cell::new(false);
        self.show_from(0);
        let policy = self.registry.policy();
        let retryable = |e: &Error| matches!(e.status(), Some(404 | 416)) || e.is_retryable();
        let done = retry::run(
            policy,
            &what,
            None,
            retryable,
            || moved.take(),
            || {
                if let Some(status) = failed.take() {
                    self.recover(status, &mut session, &mut pos, &what)?;
                    in_chunks |= pos.offset > 0;
                }
                loop {
                    let whole = pos.offset == 0 && !in_chunks;
                    let step = if whole {
                        self.whole(&session, &what, &verdict).map(|_| true)
                    } else if pos.offset < self.size {
                        let chunk = self.next_chunk(&mut session, &mut pos, &what, &verdict);
                        chunk.map(|_| false)
                    } else {
                        let nothing = &mut || Ok(Sending::Nothing);
                        let finish =
                            self.registry
                                .finish_upload(&session, self.digest, &what, nothing);
                        finish.map(|_| true)
                    };
                    let err = match step {
                        Ok(true) => return Ok(()),
                        Ok(false) => {
                            moved.set(true);
                            continue;
                        }
                        Err(e) => e,
                    };
                    if interrupt::interrupted() {
                        return Err(Error::Interrupted { resumable: true });
                    }
                    if let Some(detail) = verdict.lock().unwrap_or_else(|p| p.into_inner()).take() {
                        return Err(Error::Verify {
                            digest: self.digest.to_string(),
                            detail: format!(
                                "its bytes in the archive {detail}; nothing of it was stored"
                            ),
                        }
                        .with_hint("the archive is damaged: make it again (pull the image anew)"));
                    }
                    match err.status() {
                        Some(413) if whole => {
                            log::info!(
                            "the registry (or a proxy) refused a {}-byte body (HTTP 413): uploading in chunks of {} bytes from now on",
                            self.size,
                            self.chunk_len(&session)
                        );
                            self.chunked.store(true, Ordering::Relaxed);
                            in_chunks = true;
                        }
                        Some(413) => return Err(self.too_big(err, &session)),
                        status => {
                            failed = Some(status);
                            return Err(err);
                        }
                    }
                }
            },
        );
        match done {
            Ok(()) => {
                if self.shown {
                    let took = started.elapsed();
                    self.progress.uploaded(self.digest, self.size, took);
                }
                Ok(())
            }
            Err(e @ Error::Interrupted { .. }) => Err(e),
            Err(e) => {
                self.registry.cancel_upload(&session, &what);
                Err(e)
            }
        }
    }

    /// After a failed step (of HTTP `status`, if any): where the upload stands, from the
    /// registry (the bytes before it hashed again from the source), or a
    /// new session from zero.
    fn recover(
        &self,
        status: Option<u16>,
        session: &mut Session,
        pos: &mut Position,
        what: &str,
    ) -> Result<()> {
        // A 416 where the registry says the upload stands: the session
        // is confused (some registries refuse a restart in it); a new one.
        let confused = status == Some(416);
        match self.registry.upload_offset(session, what) {
            Some(n) if n <= self.size && !(confused && n == pos.offset) => {
                if n != pos.offset {
                    log::debug!("{what}: the registry holds {n} bytes; going on from there");
                    *pos = self.position_at(n)?;
                }
            }
            _ => {
                *session = self.registry.start_upload(what)?;
                *pos = Position::default();
            }
        }
        self.show_from(pos.offset);
        Ok(())
    }

    /// The display: the upload (re)starts at `offset`.
    fn show_from(&self, offset: u64) {
        if self.shown {
            self.progress.started(self.digest, offset);
        }
    }

    /// The whole blob in one `PUT`.
    fn whole(&self, session: &Session, what: &str, verdict: &Mutex<Option<String>>) -> Result<()> {
        let state = Arc::new(Mutex::new(Verifier::new()));
        let mut body = || {
            // Sent again after a 401: the hash starts again too.
            *state.lock().unwrap_or_else(|p| p.into_inner()) = Verifier::new();
            self.body(0, self.size, &state, verdict)
        };
        self.registry
            .finish_upload(session, self.digest, what, &mut body)
    }

    /// The next chunk in a `PATCH`; `pos` moves to where the registry
    /// says the upload ends.
    fn next_chunk(
        &self,
        session: &mut Session,
        pos: &mut Position,
        what: &str,
        verdict: &Mutex<Option<String>>,
    ) -> Result<()> {
        let len = self.chunk_len(session).min(self.size - pos.offset);
        let state = Arc::new(Mutex::new(pos.hasher.clone()));
        let mut body = || {
            *state.lock().unwrap_or_else(|p| p.into_inner()) = pos.hasher.clone();
            self.body(pos.offset, len, &state, verdict)
        };
        let end = self
            .registry
            .upload_chunk(session, pos.offset, len, what, &mut body)?;
        if end == pos.offset + len {
            let hasher = state.lock().unwrap_or_else(|p| p.into_inner()).clone();
            *pos = Position {
                offset: end,
                hasher,
            };
        } else if end <= self.size {
            log::debug!(
                "{what}: the registry took the chunk up to {end}, not {}",
                pos.offset + len
            );
            *pos = self.position_at(end)?;
        } else {
            return Err(Error::Manifest {
                what: what.to_string(),
                reason: format!(
                    "the registry says the upload holds {end} bytes, more than the blob's {}",
                    self.size
                ),
            });
        }
        Ok(())
    }

    /// The chunk size in `session`: `--chunk-size`, or the registry's
    /// minimum if larger.
    fn chunk_len(&self, session: &Session) -> u64 {
        self.chunk.max(session.min_chunk).max(1)
    }

    /// A request body of the `len` bytes from `offset`, read through the
    /// blob's hash (`state`, at `offset`).
    fn body<'s>(
        &'s self,
        offset: u64,
        len: u64,
        state: &Arc<Mutex<Verifier>>,
        verdict: &'s Mutex<Option<String>>,
    ) -> Result<Sending<'s>> {
        let inner = (self.open)(offset)?;
        let end = (offset + len == self.size).then(|| (self.digest.clone(), self.size));
        let reader = Hashing {
            inner,
            left: len,
            state: Arc::clone(state),
            end,
            verdict,
            progress: self.progress,
            digest: self.digest.clone(),
        };
        Ok(Sending::Reader(Box::new(reader), len))
    }

    /// The position `n` bytes in, its hash made from the source.
    fn position_at(&self, n: u64) -> Result<Position> {
        let mut reader = (self.open)(0)?.take(n);
        let mut hasher = Verifier::new();
        let mut buf = vec![0u8; 256 << 10];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => hasher.update(&buf[..k]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::Manifest {
                        what: format!("blob {}", self.digest),
                        reason: format!("reading it from the archive failed: {e}"),
                    })
                }
            }
        }
        Ok(Position { offset: n, hasher })
    }

    /// The error for a chunk the registry (or a proxy) still refuses.
    fn too_big(&self, err: Error, session: &Session) -> Error {
        let len = self.chunk_len(session);
        let floor = if session.min_chunk > self.chunk {
            format!(
                "; the registry asks for chunks of at least {} bytes (OCI-Chunk-Min-Length), so the two cannot be met: push through another route",
                session.min_chunk
            )
        } else {
            String::new()
        };
        err.with_hint(format!(
            "the registry, or a proxy in front of it, refuses request bodies of {len} bytes (HTTP 413), even in chunks: pass a smaller --chunk-size (64K at least){floor}"
        ))
    }
}

/// A blob's bytes on their way into a request, through the blob's hash;
/// the body that ends the blob fails before its last bytes go if the hash
/// is not the digest.
struct Hashing<'a> {
    inner: Box<dyn Read + Send + 'a>,
    left: u64,
    state: Arc<Mutex<Verifier>>,
    end: Option<(Digest, u64)>,
    verdict: &'a Mutex<Option<String>>,
    progress: &'a Progress,
    digest: Digest,
}

impl Read for Hashing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if interrupt::interrupted() {
            return Err(io::Error::other("interrupted"));
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends before the blob does",
            ));
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.update(&buf[..n]);
        self.left -= n as u64;
        if let (0, Some((digest, size))) = (self.left, &self.end) {
            if let Err(detail) = state.clone().check(digest, *size) {
                *self.verdict.lock().unwrap_or_else(|p| p.into_inner()) = Some(detail.clone());
                return Err(io::Error::other(detail));
            }
        }
        self.progress.add_blob_bytes(&self.digest, n as u64);
        Ok(n)
    }
}
