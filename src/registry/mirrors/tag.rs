//! How a tag is resolved through a mirror list: at Docker Hub with a
//! `HEAD` when it answers (Docker Hub does not count a `HEAD` against its
//! pull limit), the mirrors then serving that digest; otherwise at the
//! first mirror that answers, with the next mirror asked for its digest
//! too, and a warning naming both when they disagree. Which host resolved
//! the tag to which digest is noted for the user. With one host the tag
//! is fetched there as it is. Each `HEAD` is tried once while another host
//! remains (a 5xx goes to the next host at once). Nothing here is trusted
//! beyond the digest: the manifest's bytes are hashed by the caller.

use crate::error::Result;
use crate::image::digest::Digest;
use crate::registry::mirrors::{fails_over, Hosts};

impl Hosts {
    /// The manifest tag `tag` of `name` names, resolved as this module
    /// says.
    pub fn tag(&self, name: &str, tag: &str) -> Result<(Vec<u8>, Option<String>)> {
        if !self.mirrored() {
            return self.first().manifest(tag);
        }
        let order = self.order();
        let origin = order.iter().copied().find(|&i| self.members[i].origin);
        if let Some(o) = origin {
            match self.registry(o).manifest_digest(tag) {
                Ok(Some(d)) => {
                    self.succeeded(o);
                    self.note(format!("{name}: Docker Hub resolves the tag to {d}"));
                    return self.manifest(&d.to_string());
                }
                Ok(None) => log::info!("docker.io: no digest for {name} from a HEAD"),
                Err(e) => {
                    log::info!("docker.io cannot resolve {name}: {e}");
                    self.failed(o, &e, false);
                }
            }
        }
        let mut last = None;
        for (k, &i) in order.iter().enumerate() {
            let got = self.registry(i).manifest(tag);
            let (bytes, ct) = match got {
                Ok(v) => v,
                Err(e) if fails_over(&e) => {
                    self.failed(i, &e, false);
                    last = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.succeeded(i);
            let digest = Digest::of(&bytes);
            let by = &self.members[i];
            self.note(format!(
                "{name}: {} resolves the tag to {digest}",
                by.label()
            ));
            let next = order.get(k + 1).filter(|&&j| !self.members[j].origin);
            if let Some(&j) = next {
                let other = &self.members[j];
                if let Ok(Some(d)) = self.registry(j).manifest_digest(tag) {
                    if d != digest {
                        log::warn!(
                            "the mirrors disagree on {name}: {} says {digest}, {} says {d}; using {}'s (pull {name}@sha256:... to choose)",
                            by.label(),
                            other.label(),
                            by.label()
                        );
                    }
                }
            }
            return Ok((bytes, ct));
        }
        Err(self.exhausted(&format!("resolving {name}"), last))
    }

    fn note(&self, s: String) {
        log::debug!("{s}");
        self.notes.lock().unwrap_or_else(|p| p.into_inner()).push(s);
    }
}
