//! What a blob's download does when one host of a mirror list fails it:
//! a failed segment (no answer, a stall, 5xx, 401/403/404, a wrong
//! `Content-Range`) goes back to the ranges still to start, for another
//! mirror, and the host is told off ([`Hosts::failed`], which drops it
//! after failing again and again); a blob whose bytes fail their digest is
//! fetched whole again from one mirror, then another, and when every copy
//! was wrong the error names the mirrors tried.
//!
//! With a single host (any registry without `-r`) nothing here applies:
//! errors end the download as before. This module only updates a job's
//! bookkeeping; `download.rs` runs the requests and restarts the blob.

use crate::error::{Error, Result};
use crate::fetch::schedule::{Job, Segment};
use crate::registry::mirrors::fails_over;

impl Job<'_> {
    /// Segment `seg` failed with `e`: gives its range back for another
    /// host when there is one (`Ok`), else the error to end the pull
    /// with, naming every host for a mirror list.
    pub(crate) fn fail_over(&mut self, seg: &Segment, e: Error) -> Result<()> {
        let up = self.upstream;
        if !up.mirrored() || !fails_over(&e) {
            return Err(e);
        }
        let k = seg.host();
        if !up.other_than(k) {
            let what = format!("downloading blob {}", self.desc.digest);
            return Err(up.exhausted(&what, Some(e)));
        }
        up.failed(k, &e, false);
        log::debug!(
            "blob {}: {} failed ({}); its range goes to another host",
            self.desc.digest.short(),
            up.members()[k].label(),
            e.short_cause()
        );
        let (pos, end) = seg.get();
        self.give_back(pos, end);
        Ok(())
    }

    /// The blob's bytes failed their digest (`detail`) on a mirror list:
    /// the host that served it alone is dropped, and the next host to
    /// fetch it whole from is returned, or the error naming every host
    /// tried.
    pub(crate) fn next_whole(&mut self, detail: &str) -> Result<usize> {
        let up = self.upstream;
        let used = std::mem::take(&mut self.used);
        let bad = Error::Verify {
            digest: self.desc.digest.to_string(),
            detail: detail.to_string(),
        };
        if let [one] = used[..] {
            up.failed(one, &bad, true);
        }
        for k in self
            .pin
            .into_iter()
            .chain(used.iter().copied().filter(|_| used.len() == 1))
        {
            if !self.tried.contains(&k) {
                self.tried.push(k);
            }
        }
        let next = up.order().into_iter().find(|k| !self.tried.contains(k));
        match next {
            Some(k) => {
                log::warn!(
                    "blob {}: {detail} (its bytes came from {}); fetching it whole from {}",
                    self.desc.digest.short(),
                    names(self, &used),
                    up.members()[k].label()
                );
                self.pin = Some(k);
                Ok(k)
            }
            None => {
                let tried = names(self, &self.tried.clone());
                Err(Error::Verify {
                    digest: self.desc.digest.to_string(),
                    detail: format!(
                        "{detail}; fetched whole again from {tried}: every copy was wrong"
                    ),
                })
            }
        }
    }
}

/// The labels of hosts `of`, joined.
fn names(job: &Job, of: &[usize]) -> String {
    let m = job.upstream.members();
    let labels: Vec<String> = of.iter().map(|&k| m[k].label()).collect();
    if labels.is_empty() {
        "no host".into()
    } else {
        labels.join(", ")
    }
}
