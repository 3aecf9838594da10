//! One segment of one blob: a byte range that a single thread fetches with
//! one request at a time, under the host's permit it holds, writes at its
//! offsets into the partial file, and journals as it goes. Its requests go
//! the registry client's one way (`registry/client/request.rs`: retries,
//! and a 429 that hands the rest of the segment back to the schedule as
//! [`Outcome::Refused`], to wait for the host's budget).
//!
//! A [`Segment`]'s end can move down while it runs (another thread takes
//! over its tail, see `schedule.rs`), so every read is first reserved
//! against the current end under the segment's own small lock, and the
//! write never passes it.
//! Requests always go to the registry's blob URL (a redirect is followed
//! afresh each time, never reused). A 200 to a `Range` request ends the
//! segment (the blob falls back to one connection, see `download.rs`),
//! except on that one connection, which reads past the bytes it already
//! has. This module does not choose segments; `schedule.rs` does.
//!
//! What a registry sends is held to what was asked: a `Content-Length`
//! other than the blob's (or the range's) size is refused before a byte is
//! read, a 206 must carry exactly the requested `Content-Range`, and a
//! body longer than asked for is an error, not truncated silently. A
//! segment that drips is given up ([`crate::fetch::drip_guard`]).

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::{excerpt, Error, Result};
use crate::fetch::drip_guard::Pace;
use crate::fetch::partial::Partial;
use crate::fetch::schedule::Segment;
use crate::image::manifest::Descriptor;
use crate::registry::client::request::How;
use crate::registry::client::Registry;
use crate::registry::http_error;
use crate::registry::permits::Permit;
use crate::ui::interrupt;
use crate::ui::progress::Progress;

/// How much a segment writes between journal records.
const JOURNAL_STEP: u64 = 256 << 10;
/// The read buffer of one request.
const BUF_SIZE: usize = 256 << 10;
/// How a segment ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Its bytes are written (or its tail was handed to another thread).
    Complete,
    /// The server answered a `Range` request with the whole blob.
    NoRanges,
    /// The host refused the request (429); what is left waits for its
    /// budget.
    Refused,
}

/// Where a segment's bytes come from, and whom it tells.
pub struct Link<'a> {
    /// The registry the blob is fetched from.
    pub registry: &'a Registry,
    /// The display its bytes are counted on.
    pub progress: &'a Progress,
    /// The host's leave for the segment's requests.
    pub permit: &'a Permit,
    /// The bytes its host has brought, for the summary and the display.
    pub tally: &'a AtomicU64,
}

/// Fetches `seg` of `desc` into `partial`, retrying failed requests.
pub fn fetch(
    dl: &Link,
    desc: &Descriptor,
    partial: &Partial,
    seg: &Segment,
    abort: &AtomicBool,
) -> Result<Outcome> {
    let what = format!("blob {}", desc.digest.short());
    let pace = Pace::new(dl.registry.read_timeout * 2);
    // Whether the last attempt was progress for the retry policy: bytes,
    // at the guard's rate.
    let productive = std::cell::Cell::new(false);
    let how = How::Held(dl.permit, abort);
    let done = dl.registry.run(
        &what,
        how,
        || productive.get(),
        |permit| {
            pace.begin();
            let r = attempt(dl, desc, partial, seg, abort, &pace, permit);
            let verdict = pace.check();
            productive.set(pace.end());
            match r {
                // A connection cut (by the read timeout, say) after a little
                // data: no retry if the segment crawls.
                Err(Error::Network { .. }) => match verdict {
                    Err(why) => Err(broken(dl, desc, None, &why)),
                    Ok(()) => r,
                },
                other => other,
            }
        },
    )?;
    // The host refused it (429): the rest waits for its budget.
    Ok(done.unwrap_or(Outcome::Refused))
}

fn attempt(
    dl: &Link,
    desc: &Descriptor,
    partial: &Partial,
    seg: &Segment,
    abort: &AtomicBool,
    pace: &Pace,
    permit: &Permit,
) -> Result<Outcome> {
    let (pos, end) = seg.get();
    if pos >= end {
        return Ok(Outcome::Complete);
    }
    let digest = &desc.digest;
    let whole = pos == 0 && end == desc.size;
    let registry = dl.registry;
    let mut resp = registry.open_blob(digest, (!whole).then_some((pos, end)), permit)?;
    let header = |name: &str| http_error::header(&resp, name).map(str::to_string);
    // Bytes of the body before `pos`: a blob's one connection resumed on a
    // registry that ignores Range gets the whole blob again.
    let mut skip = 0;
    match resp.status().as_u16() {
        200 if whole || seg.is_single() => {
            let length = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
            if let Some(len) = length.filter(|&l| l != desc.size) {
                return Err(verify_error(
                    desc,
                    format!(
                        "the registry announced {len} bytes, the manifest says {}",
                        desc.size
                    ),
                ));
            }
            skip = pos;
        }
        200 => return Ok(Outcome::NoRanges),
        // The registry disagrees about what the blob holds: for a resumed
        // blob the download starts again from zero (download.rs).
        416 => {
            return Err(verify_error(
                desc,
                format!(
                "the registry answered 416 (range not satisfiable) to a request for bytes {pos}-{}",
                end - 1
            ),
            ))
        }
        206 if !whole => {
            let range = header("content-range").unwrap_or_default();
            check_content_range(&range, pos, end, desc.size)
                .map_err(|detail| verify_error(desc, detail))?;
            let length = header("content-length").map(|v| v.trim().parse::<u64>());
            if let Some(len) = length.filter(|l| l.as_ref().ok() != Some(&(end - pos))) {
                return Err(verify_error(
                    desc,
                    format!(
                        "the registry announced {} bytes for the {} bytes {pos}-{} it was asked for",
                        len.map_or_else(|_| "a malformed number of".to_string(), |l| l.to_string()),
                        end - pos,
                        end - 1
                    ),
                ));
            }
        }
        _ => return Err(registry.blob_error(digest, &mut resp)),
    }
    let length_known = resp.headers().contains_key("content-length");
    let mut reader = resp.into_body().into_reader();
    let mut buf = vec![0u8; BUF_SIZE];
    let (mut journaled, mut written) = (pos, pos);
    // Every byte the server sent: more than the range asked for is a lie
    // about the blob, not something to cut silently.
    let mut received = 0u64;
    let result = loop {
        if abort.load(Ordering::Relaxed) {
            break Err(Error::Aborted);
        }
        if interrupt::interrupted() {
            break Err(Error::Interrupted { resumable: true });
        }
        let mut n = match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(broken(dl, desc, Some(written), &e.to_string())),
        };
        pace.add(n as u64);
        if skip > 0 {
            let dropped = skip.min(n as u64) as usize;
            buf.copy_within(dropped..n, 0);
            n -= dropped;
            skip -= dropped as u64;
            if n == 0 {
                continue;
            }
        }
        received += n as u64;
        if received > end - pos {
            break Err(verify_error(
                desc,
                format!(
                    "the registry sent more than the {} bytes asked for (bytes {pos}-{})",
                    end - pos,
                    end - 1
                ),
            ));
        }
        let (at, allowed) = seg.reserve(n as u64);
        if allowed > 0 {
            if let Err(e) = partial.write_at(&buf[..allowed as usize], at) {
                break Err(e);
            }
            written = at + allowed;
            dl.progress.add_blob_bytes(&desc.digest, allowed);
            dl.tally.fetch_add(allowed, Ordering::Relaxed);
        }
        if written - journaled >= JOURNAL_STEP {
            partial.record(journaled, written)?;
            permit.alive(written - journaled);
            journaled = written;
        }
        if allowed < n as u64 || seg.remaining() == 0 {
            break Ok(());
        }
        if let Err(why) = pace.check() {
            break Err(broken(dl, desc, None, &why));
        }
    };
    partial.record(journaled, written)?;
    result?;
    // A body without Content-Length ends when the server closes it: one
    // more read shows whether it held more than was asked for (not when
    // another thread took over the tail, which the server does not know).
    if !length_known && written == end && seg.get().1 == end {
        if let Ok(n @ 1..) = reader.read(&mut buf[..1]) {
            return Err(verify_error(
                desc,
                format!(
                    "the registry sent more than the {} bytes asked for (bytes {pos}-{}, {n} more at least)",
                    end - pos,
                    end - 1
                ),
            ));
        }
    }
    if seg.remaining() > 0 {
        return Err(broken(
            dl,
            desc,
            Some(written),
            "the connection closed early",
        ));
    }
    Ok(Outcome::Complete)
}

fn verify_error(desc: &Descriptor, detail: String) -> Error {
    Error::Verify {
        digest: desc.digest.to_string(),
        detail,
    }
}

/// A failed read of the blob: transient (a cut at byte `at`, worth a
/// retry), or not (`at` is `None`: the low-speed guard gave up on it).
fn broken(dl: &Link, desc: &Descriptor, at: Option<u64>, cause: &str) -> Error {
    Error::Network {
        what: format!("downloading blob {}", desc.digest),
        url: format!(
            "GET {}",
            crate::error::redact_url(&dl.registry.blob_url(&desc.digest))
        ),
        cause: match at {
            Some(at) => format!("{cause} at byte {at} of {}", desc.size),
            None => cause.to_string(),
        },
        transient: at.is_some(),
    }
}

/// Checks a `Content-Range: bytes FIRST-LAST/TOTAL` answer to a request for
/// `[start, end)`: it must be exactly that range, of a blob of `size` bytes
/// (or `*`).
pub fn check_content_range(
    header: &str,
    start: u64,
    end: u64,
    size: u64,
) -> std::result::Result<(), String> {
    let bad = || {
        format!(
            "the registry answered a request for bytes {start}-{} with Content-Range {:?} (expected bytes {start}-{}/{size})",
            end.saturating_sub(1),
            excerpt(header.as_bytes(), 80),
            end.saturating_sub(1)
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
    if first != start || last.checked_add(1) != Some(end) {
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
        assert!(check_content_range("bytes 10-99/100", 10, 100, 100).is_ok());
        assert!(check_content_range("bytes 10-49/*", 10, 50, 100).is_ok());
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
            assert!(check_content_range(bad, 10, 100, 100).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reserve_respects_a_moving_end() {
        let s = Segment::new(0, 100);
        assert_eq!(s.reserve(30), (0, 30));
        assert_eq!(s.split_off(35), Some((65, 100)));
        assert_eq!(s.reserve(50), (30, 35));
        assert_eq!(s.remaining(), 0);
        assert_eq!(s.reserve(5), (65, 0));
    }

    #[test]
    fn split_off_gives_no_more_than_is_left() {
        let s = Segment::new(0, 20);
        assert_eq!(s.split_off(21), None);
        assert_eq!(s.split_off(0), None);
        assert_eq!(s.split_off(10), Some((10, 20)));
        s.stop();
        assert_eq!(s.remaining(), 0);
    }
}
