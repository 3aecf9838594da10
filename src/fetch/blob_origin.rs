//! Where each blob of a pull is fetched from: the repository of the first
//! image that lists it, so that a layer shared by images of two
//! repositories (or two registries) is fetched once, by the one download
//! pool. This module only maps digests to the hosts a blob may come from
//! (one registry, or a mirror list: [`Hosts`]).

use std::collections::HashMap;

use crate::image::digest::Digest;
use crate::registry::mirrors::Hosts;

/// Where each blob is fetched from: the repository of the first image
/// that lists it (a layer shared by images of two repositories is fetched
/// once).
#[derive(Clone)]
pub struct Sources<'a> {
    default: &'a Hosts,
    by_digest: HashMap<Digest, &'a Hosts>,
}

impl<'a> Sources<'a> {
    /// Every blob from `default`, until [`Sources::add`] says otherwise.
    pub fn new(default: &'a Hosts) -> Sources<'a> {
        Sources {
            default,
            by_digest: Default::default(),
        }
    }

    /// Fetch `digest` from `registry`, unless it already has a source.
    pub fn add(&mut self, digest: &Digest, registry: &'a Hosts) {
        self.by_digest.entry(digest.clone()).or_insert(registry);
    }

    /// Where `digest` is fetched from.
    pub fn of(&self, digest: &Digest) -> &'a Hosts {
        self.by_digest.get(digest).copied().unwrap_or(self.default)
    }
}
