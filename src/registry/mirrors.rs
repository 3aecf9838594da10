//! Where one repository is read from: its registry, or for a Docker Hub
//! image pulled with `-r`, a list of mirrors with Docker Hub itself last
//! (left out with `--mirrors-only`). An [`Hosts`] holds a registry
//! client per host, each with its own handshake, tokens and budget, and
//! how each host has fared: a request that fails on one (no answer, a
//! stall, 5xx, 401/403/404, a token realm out of reach, content that does
//! not match its digest) goes to the next; a host that fails
//! [`DROP_AFTER`] times in a row, or serves a blob that does not match its
//! digest, is dropped for the rest of the pull, said once. Docker Hub is
//! used only when no mirror is left. How a tag is resolved through the
//! list is `mirrors/tag.rs`'s.
//!
//! With one host (any other registry, or no `-r`), requests go to it as
//! before and its errors come back unchanged. This module does not decide
//! which blob segment goes where (`fetch/schedule.rs` does, from
//! [`Hosts::usable`]), and it writes nothing.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::image::digest::Digest;
use crate::image::reference::Reference;
use crate::registry::client::{self, Access, Options, Registry};

mod tag;

/// Failures in a row after which a mirror is dropped.
pub const DROP_AFTER: u32 = 3;
/// How long connecting to Docker Hub may take behind a mirror list.
pub const ORIGIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One host of an [`Hosts`].
pub struct Host {
    /// Its host: the mirror as given, or Docker Hub's API host.
    pub name: String,
    /// Its client; `None` when it never answered.
    registry: Option<Registry>,
    /// Whether it is Docker Hub itself, behind the mirrors.
    pub origin: bool,
    failures: AtomicU32,
    dropped: AtomicBool,
    /// The blob bytes it has brought.
    pub bytes: Arc<AtomicU64>,
    /// Why it last failed, for an error that names every host.
    why: Mutex<Option<String>>,
}

/// The hosts one repository is read from, in the order they are tried.
pub struct Hosts {
    members: Vec<Host>,
    /// Notes for the user (which host resolved a tag).
    notes: Mutex<Vec<String>>,
}

/// Whether an error is one host's (another host may do better).
pub fn fails_over(e: &Error) -> bool {
    match e {
        Error::Http { .. } | Error::Network { .. } | Error::Verify { .. } | Error::Auth(_) => true,
        Error::Hinted { error, .. } | Error::WithHint { error, .. } => fails_over(error),
        _ => false,
    }
}

impl Hosts {
    /// The hosts for pulling `reference`: for a Docker Hub image with
    /// mirrors, every mirror and Docker Hub (each pinged at once, in
    /// parallel; one that does not answer is left out, said once), else
    /// its registry.
    pub fn connect(reference: &Reference, options: &Options) -> Result<Hosts> {
        if !reference.is_docker_hub() || options.mirrors.is_empty() {
            let registry = Registry::connect_for(reference, options, Access::Pull)?;
            let name = registry.base().to_string();
            return Ok(Hosts {
                members: vec![member(name, Some(registry), false)],
                notes: Mutex::default(),
            });
        }
        let mut hosts: Vec<(String, bool)> =
            options.mirrors.iter().map(|m| (m.clone(), false)).collect();
        if !options.mirrors_only {
            hosts.push((client::docker_hub_host(reference), true));
        }
        // A host that did not answer earlier in this pull is not asked
        // again (it was said then).
        let silent: Vec<Option<String>> = hosts
            .iter()
            .map(|(host, _)| options.budgets.silent(host))
            .collect();
        let connected: Vec<Option<Result<Registry>>> = std::thread::scope(|s| {
            let handles: Vec<_> = hosts
                .iter()
                .zip(&silent)
                .map(|((host, origin), silent)| {
                    silent.is_none().then(|| {
                        s.spawn(move || {
                            let mut options = options.clone();
                            options.once = true;
                            if *origin {
                                options.transport.connect_timeout = ORIGIN_CONNECT_TIMEOUT;
                            }
                            Registry::connect_host(host, reference, &options, Access::Pull)
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.map(|h| h.join().unwrap_or_else(|_| Err(Error::Aborted))))
                .collect()
        });
        let mut members = Vec::new();
        for (((host, origin), r), silent) in hosts.into_iter().zip(connected).zip(silent) {
            let name = host;
            match r {
                Some(Ok(registry)) => members.push(member(name, Some(registry), origin)),
                None => {
                    let m = member(name, None, origin);
                    *m.why.lock().unwrap_or_else(|p| p.into_inner()) = silent;
                    m.dropped.store(true, Ordering::Relaxed);
                    members.push(m);
                }
                Some(Err(e)) => {
                    let m = member(name, None, origin);
                    // Docker Hub out of reach is why many use mirrors.
                    let level = if origin {
                        log::Level::Info
                    } else {
                        log::Level::Warn
                    };
                    log::log!(
                        level,
                        "{} does not answer, left out of this pull: {e}",
                        m.label()
                    );
                    options.budgets.set_silent(&m.name, e.short_cause());
                    *m.why.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.short_cause());
                    m.dropped.store(true, Ordering::Relaxed);
                    members.push(m);
                }
            }
        }
        let up = Hosts {
            members,
            notes: Mutex::default(),
        };
        if up.order().is_empty() {
            return Err(up.exhausted(
                &format!("contacting the mirrors for {}", reference.original()),
                None,
            ));
        }
        up.settle();
        Ok(up)
    }

    /// Whether there are several hosts (a mirror list).
    pub fn mirrored(&self) -> bool {
        self.members.len() > 1
    }

    /// Every host, in order.
    pub fn members(&self) -> &[Host] {
        &self.members
    }

    /// Every host still in the pull, in the order requests try them:
    /// the mirrors not dropped, then Docker Hub.
    pub fn order(&self) -> Vec<usize> {
        let alive = |m: &Host| m.registry.is_some() && !m.dropped.load(Ordering::Relaxed);
        let (mut mirrors, mut origin): (Vec<usize>, Vec<usize>) = (0..self.members.len())
            .filter(|&i| alive(&self.members[i]))
            .partition(|&i| !self.members[i].origin);
        mirrors.append(&mut origin);
        mirrors
    }

    /// The hosts blobs are spread over now: the mirrors not dropped, or
    /// Docker Hub when none is left.
    pub fn usable(&self) -> Vec<usize> {
        let order = self.order();
        let mirrors: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&i| !self.members[i].origin)
            .collect();
        if mirrors.is_empty() {
            order
        } else {
            mirrors
        }
    }

    /// Whether a request that failed on host `i` has another host to go to.
    pub fn other_than(&self, i: usize) -> bool {
        self.order().iter().any(|&j| j != i)
    }

    /// The client of host `i` (one [`Hosts::order`] lists).
    pub fn registry(&self, i: usize) -> &Registry {
        match &self.members[i].registry {
            Some(r) => r,
            None => self.first(),
        }
    }

    /// The first host's client (for what one host must answer).
    pub fn first(&self) -> &Registry {
        let order = self.order();
        let in_order = order.iter().map(|&i| &self.members[i]);
        let mut clients = in_order
            .chain(&self.members)
            .filter_map(|m| m.registry.as_ref());
        // connect() makes an upstream only with a client in it.
        clients.next().expect("an upstream holds a client")
    }

    /// Host `i` answered: its failures in a row start again from zero.
    pub fn succeeded(&self, i: usize) {
        self.members[i].failures.store(0, Ordering::Relaxed);
    }

    /// Host `i` failed with `e`; after [`DROP_AFTER`] in a row (at once
    /// when `bad_content`) it is dropped, unless it is the last one.
    pub fn failed(&self, i: usize, e: &Error, bad_content: bool) {
        let m = &self.members[i];
        *m.why.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.short_cause());
        let n = m.failures.fetch_add(1, Ordering::Relaxed) + 1;
        log::info!("{} failed ({n} in a row): {}", m.label(), e.short_cause());
        if !self.mirrored() || (n < DROP_AFTER && !bad_content) {
            return;
        }
        if self.other_than(i) && !m.dropped.swap(true, Ordering::Relaxed) {
            log::warn!(
                "{} is dropped for the rest of this pull: {}",
                m.label(),
                e.short_cause()
            );
            self.settle();
        }
    }

    /// The last usable host retries its requests by the policy; the
    /// others try each once, the next host being asked instead.
    fn settle(&self) {
        let order = self.order();
        for &i in &order {
            self.registry(i).set_once(order.len() > 1);
        }
    }

    /// The error after every host failed `what` (`last` the last one's),
    /// naming each host and why it failed.
    pub fn exhausted(&self, what: &str, last: Option<Error>) -> Error {
        let each: Vec<String> = self
            .members
            .iter()
            .map(|m| {
                let why = m.why.lock().unwrap_or_else(|p| p.into_inner()).clone();
                format!(
                    "{}: {}",
                    m.label(),
                    why.unwrap_or_else(|| "not tried".into())
                )
            })
            .collect();
        let hint = format!(
            "every host failed ({}); check the -r mirrors, or drop the dead ones",
            each.join("; ")
        );
        match last {
            Some(e) => Error::Hinted {
                error: Box::new(e),
                hint,
            },
            None => Error::Network {
                what: what.to_string(),
                url: self
                    .members
                    .iter()
                    .map(Host::label)
                    .collect::<Vec<_>>()
                    .join(", "),
                cause: each.join("; "),
                transient: false,
            },
        }
    }

    /// Runs `f` on each usable host in turn until one succeeds; an error
    /// that is not a host's own ends it at once.
    pub fn each<T>(&self, what: &str, f: impl Fn(&Registry) -> Result<T>) -> Result<T> {
        if !self.mirrored() {
            return f(self.first());
        }
        let mut last = None;
        for i in self.order() {
            match f(self.registry(i)) {
                Ok(v) => {
                    self.succeeded(i);
                    return Ok(v);
                }
                Err(e) if fails_over(&e) => {
                    let bad = matches!(e, Error::Verify { .. });
                    self.failed(i, &e, bad);
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(self.exhausted(what, last))
    }

    /// Fetches a manifest by tag or digest; one fetched by digest from a
    /// mirror list must hash to it, else the next host is asked.
    pub fn manifest(&self, key: &str) -> Result<(Vec<u8>, Option<String>)> {
        let pinned = Digest::parse(key).ok().filter(|_| self.mirrored());
        self.each(&format!("fetching the manifest {key}"), |r| {
            let (bytes, ct) = r.manifest(key)?;
            match &pinned {
                Some(d) if &Digest::of(&bytes) != d => Err(Error::Verify {
                    digest: d.to_string(),
                    detail: format!(
                        "{} served a manifest that hashes to {}",
                        r.base(),
                        Digest::of(&bytes)
                    ),
                }),
                _ => Ok((bytes, ct)),
            }
        })
    }

    /// Fetches a small blob whole (a config); the caller verifies it.
    pub fn small_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let what = format!("fetching blob {digest}");
        self.each(&what, |r| {
            let bytes = r.small_blob(digest, limit)?;
            if self.mirrored() && &Digest::of(&bytes) != digest {
                return Err(Error::Verify {
                    digest: digest.to_string(),
                    detail: format!(
                        "{} served bytes that hash to {}",
                        r.base(),
                        Digest::of(&bytes)
                    ),
                });
            }
            Ok(bytes)
        })
    }

    /// What the user should be told (which host resolved a tag), once.
    pub fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The hosts blobs may come from, with the counters of the bytes
    /// each brings, for the progress display (none without a mirror
    /// list).
    pub fn counters(&self) -> Vec<(String, Arc<AtomicU64>)> {
        if !self.mirrored() {
            return Vec::new();
        }
        let m = self.members.iter().filter(|m| m.registry.is_some());
        m.map(|m| (m.label(), m.bytes.clone())).collect()
    }

    /// The blob bytes each host brought, by name, for the summary (only
    /// for a mirror list).
    pub fn tally(&self) -> Vec<(String, u64)> {
        if !self.mirrored() {
            return Vec::new();
        }
        let m = self.members.iter();
        m.map(|m| (m.label(), m.bytes.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

impl Host {
    /// How messages name it.
    pub fn label(&self) -> String {
        if self.origin {
            format!("Docker Hub ({})", self.name)
        } else {
            format!("mirror {}", self.name)
        }
    }
}

fn member(name: String, registry: Option<Registry>, origin: bool) -> Host {
    Host {
        name,
        registry,
        origin,
        failures: AtomicU32::new(0),
        dropped: AtomicBool::new(false),
        bytes: Arc::default(),
        why: Mutex::default(),
    }
}

#[cfg(test)]
mod tests;
