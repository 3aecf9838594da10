//! The requests of a push, one at a time: whether the registry has a blob
//! (`HEAD`), a cross-repository mount (`POST ?mount=&from=`: 201 mounted,
//! 202 an upload session instead, anything else no), an upload session
//! (`POST`, its `Location` and any `OCI-Chunk-Min-Length`) and its steps
//! (`PUT ?digest=` with the whole blob or none, `PATCH` a chunk with its
//! `Content-Range`, `GET` where it stands, `DELETE` to abandon it), and
//! manifests (`HEAD` for the digest a tag has, `PUT`).
//!
//! Every answer that names a digest (`Docker-Content-Digest` on a blob
//! found, mounted or stored, and on a manifest stored) must name ours, else
//! it is an error naming both. Every request goes the client's one way
//! (`client/request.rs`: the host's budget, 429s waited out); the HEAD,
//! POST and manifest requests are retried by its policy, the steps of an
//! upload tried once (how an upload goes on after a failure is
//! `upload/blob.rs`'s). Locations are used as the registry gives them
//! (absolute or relative, their query kept), never logged with it.

use ureq::http::Response;
use ureq::Body;

use crate::error::{Error, Result};
use crate::image::digest::Digest;
use crate::image::manifest::ACCEPT;
use crate::image::upstream::Document;
use crate::registry::client::request::{BodyMaker, Call, Sending};
use crate::registry::client::Registry;
use crate::registry::http_error::{drain, header, http_error_of, small_body_deadline};

/// An upload session the registry opened.
#[derive(Clone, Debug)]
pub struct Session {
    /// Where its next request goes (absolute).
    pub location: String,
    /// The smallest chunk it takes (`OCI-Chunk-Min-Length`), else 0.
    pub min_chunk: u64,
}

/// What a mount request got.
#[derive(Debug)]
pub enum Mount {
    /// The blob is now in the repository.
    Done,
    /// No mount, but an upload session to use.
    Upload(Session),
    /// No mount: upload it.
    No,
}

/// `url` with `key=value` added to its query.
pub fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

impl Registry {
    /// Sends `call` with no body, tried as `retried` says.
    fn ask<T>(
        &self,
        call: &Call,
        retried: bool,
        mut answer: impl FnMut(Response<Body>) -> Result<T>,
    ) -> Result<T> {
        self.request(call.what, retried, |permit| {
            answer(self.send(call, permit, &mut || Ok(Sending::Nothing))?)
        })
    }

    fn blobs_url(&self) -> String {
        format!("{}/v2/{}/blobs", self.base(), self.repository())
    }

    fn manifest_url(&self, reference: &str) -> String {
        format!(
            "{}/v2/{}/manifests/{reference}",
            self.base(),
            self.repository()
        )
    }

    /// The `Docker-Content-Digest` of an answer is `ours`, or absent.
    fn check_digest(&self, resp: &Response<Body>, ours: &Digest, what: &str) -> Result<()> {
        let Some(theirs) = header(resp, "docker-content-digest") else {
            return Ok(());
        };
        if theirs == ours.to_string() {
            return Ok(());
        }
        Err(Error::Manifest {
            what: what.to_string(),
            reason: format!(
                "the registry answered with the digest {:?} (Docker-Content-Digest), not {ours}: it holds other bytes than pulltar sent",
                crate::error::excerpt(theirs.as_bytes(), 80)
            ),
        })
    }

    /// Whether the repository has the blob `digest` (`HEAD`).
    pub fn has_blob(&self, digest: &Digest) -> Result<bool> {
        let url = format!("{}/{digest}", self.blobs_url());
        let what = format!("looking for blob {digest} in {}", self.repository());
        self.ask(
            &Call::new("HEAD", &url, &what),
            true,
            |mut resp| match resp.status().as_u16() {
                200 => self.check_digest(&resp, digest, &what).map(|_| true),
                404 => Ok(false),
                s => Err(http_error_of("HEAD", &what, &url, s, &mut resp)),
            },
        )
    }

    /// Opens an upload session (`POST`).
    pub fn start_upload(&self, what: &str) -> Result<Session> {
        let url = format!("{}/uploads/", self.blobs_url());
        self.ask(
            &Call::new("POST", &url, what),
            true,
            |mut resp| match resp.status().as_u16() {
                202 => self.session_of(&resp, what, &url),
                s => Err(http_error_of("POST", what, &url, s, &mut resp)),
            },
        )
    }

    /// The session an answer opened.
    fn session_of(&self, resp: &Response<Body>, what: &str, url: &str) -> Result<Session> {
        let location = header(resp, "location").ok_or_else(|| Error::Manifest {
            what: what.to_string(),
            reason: format!(
                "POST {} opened an upload without saying where (no Location)",
                crate::error::redact_url(url)
            ),
        })?;
        let min_chunk = header(resp, "oci-chunk-min-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok(Session {
            location: self.resolve(location),
            min_chunk,
        })
    }

    /// Mounts the blob `digest` from the repository `from` of the same
    /// registry. Any failure is a [`Mount::No`]: the blob is uploaded.
    pub fn mount(&self, digest: &Digest, from: &str) -> Result<Mount> {
        let url = format!("{}/uploads/?mount={digest}&from={from}", self.blobs_url());
        let what = format!(
            "mounting blob {digest} from {from} into {}",
            self.repository()
        );
        let mut call = Call::new("POST", &url, &what);
        call.extra_scope = Some(format!("repository:{from}:pull"));
        let mut resp = match self.ask(&call, false, Ok) {
            Ok(r) => r,
            Err(e) => {
                log::debug!("{what}: {e}; uploading it instead");
                return Ok(Mount::No);
            }
        };
        match resp.status().as_u16() {
            201 => {
                self.check_digest(&resp, digest, &what)?;
                Ok(Mount::Done)
            }
            202 => Ok(self
                .session_of(&resp, &what, &url)
                .map_or(Mount::No, Mount::Upload)),
            s => {
                log::debug!("{what}: HTTP {s}; uploading it instead");
                drain(&mut resp);
                Ok(Mount::No)
            }
        }
    }

    /// Ends the upload of `digest` (`PUT ?digest=`) with the last bytes
    /// `body` makes (the whole blob, or none after the chunks).
    pub fn finish_upload(
        &self,
        session: &Session,
        digest: &Digest,
        what: &str,
        body: &mut BodyMaker,
    ) -> Result<()> {
        let url = with_query(&session.location, "digest", &digest.to_string());
        let mut call = Call::new("PUT", &url, what);
        call.headers = vec![("Content-Type", "application/octet-stream".into())];
        call.answer_within = Some(small_body_deadline(self.read_timeout));
        let mut resp = self.request(what, false, |permit| self.send(&call, permit, body))?;
        match resp.status().as_u16() {
            201 => self.check_digest(&resp, digest, what),
            s => Err(http_error_of("PUT", what, &url, s, &mut resp)),
        }
    }

    /// Sends the `len` bytes from `start` of the upload (`PATCH`), and
    /// moves `session` to the next location. Returns where the registry
    /// says the upload now ends.
    pub fn upload_chunk(
        &self,
        session: &mut Session,
        start: u64,
        len: u64,
        what: &str,
        body: &mut BodyMaker,
    ) -> Result<u64> {
        let url = session.location.clone();
        let mut call = Call::new("PATCH", &url, what);
        call.headers = vec![
            ("Content-Type", "application/octet-stream".into()),
            ("Content-Range", format!("{start}-{}", start + len - 1)),
        ];
        let mut resp = self.request(what, false, |permit| self.send(&call, permit, body))?;
        match resp.status().as_u16() {
            202 => {
                if let Some(next) = header(&resp, "location") {
                    session.location = self.resolve(next);
                }
                Ok(range_end(header(&resp, "range")).unwrap_or(start + len))
            }
            s => Err(http_error_of("PATCH", what, &url, s, &mut resp)),
        }
    }

    /// Where the upload stands (`GET` its location): how many bytes the
    /// registry holds (and the location to go on at, if it gives a new
    /// one), or `None` when the session is gone or unusable.
    pub fn upload_offset(&self, session: &mut Session, what: &str) -> Option<u64> {
        let url = session.location.clone();
        let mut resp = self.ask(&Call::new("GET", &url, what), false, Ok).ok()?;
        let status = resp.status().as_u16();
        let end = range_end(header(&resp, "range"));
        let next = header(&resp, "location").map(|l| self.resolve(l));
        drain(&mut resp);
        match status {
            204 | 200 => {
                if let Some(next) = next {
                    session.location = next;
                }
                Some(end.unwrap_or(0))
            }
            s => {
                log::debug!("{what}: the upload session answered HTTP {s}; starting again");
                None
            }
        }
    }

    /// Abandons an upload session (`DELETE`), at best.
    pub fn cancel_upload(&self, session: &Session, what: &str) {
        let call = Call::new("DELETE", &session.location, what);
        if let Ok(mut resp) = self.ask(&call, false, Ok) {
            drain(&mut resp);
        }
    }

    /// The digest of the manifest `reference` (a tag or digest) names in
    /// the repository, if any (`HEAD`).
    pub fn manifest_digest(&self, reference: &str) -> Result<Option<Digest>> {
        let url = self.manifest_url(reference);
        let what = format!("looking for {}:{reference}", self.repository());
        let mut call = Call::new("HEAD", &url, &what);
        call.headers = vec![("Accept", ACCEPT.to_string())];
        self.ask(&call, true, |mut resp| match resp.status().as_u16() {
            200 => Ok(header(&resp, "docker-content-digest").and_then(|d| Digest::parse(d).ok())),
            404 => Ok(None),
            s => Err(http_error_of("HEAD", &what, &url, s, &mut resp)),
        })
    }

    /// Stores `doc` as the manifest `reference` (a tag or its digest).
    pub fn put_manifest(&self, reference: &str, doc: &Document) -> Result<()> {
        let url = self.manifest_url(reference);
        let what = format!("pushing the manifest {}:{reference}", self.repository());
        let mut call = Call::new("PUT", &url, &what);
        call.headers = vec![("Content-Type", doc.media_type.clone())];
        self.request(&what, true, |permit| {
            let mut resp = self.send(&call, permit, &mut || Ok(Sending::Bytes(&doc.bytes)))?;
            match resp.status().as_u16() {
                201 | 200 => self.check_digest(&resp, &doc.digest, &what),
                s => Err(http_error_of("PUT", &what, &url, s, &mut resp)),
            }
        })
    }
}

/// The end of a `Range: 0-<last>` answer, as a byte count (`0-0` may mean
/// nothing or one byte; it is taken as nothing, the safe side).
fn range_end(range: Option<&str>) -> Option<u64> {
    let r = range?.trim();
    let r = r.strip_prefix("bytes=").unwrap_or(r);
    let (first, last) = r.split_once('-')?;
    let last: u64 = last.trim().parse().ok()?;
    (first.trim() == "0").then_some(if last == 0 { 0 } else { last + 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(range_end(Some("0-1048575")), Some(1 << 20));
        assert_eq!(range_end(Some("bytes=0-9")), Some(10));
        assert_eq!(range_end(Some("0-0")), Some(0));
        for bad in [None, Some(""), Some("5-9"), Some("0-x"), Some("0")] {
            assert_eq!(range_end(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn queries() {
        assert_eq!(
            with_query("http://r/u/1", "digest", "d"),
            "http://r/u/1?digest=d"
        );
        assert_eq!(
            with_query("http://r/u/1?_state=x", "digest", "d"),
            "http://r/u/1?_state=x&digest=d"
        );
    }
}
