//! The budget of each host a process talks to: how many connections and
//! how many request starts the host allows, learned from its 429 answers
//! ([`crate::registry::allowance`] holds the rules), and the permits the
//! requests to the host take from it: every request of every registry
//! client that reaches the host, pull or push, through its one request way
//! (`client/request.rs`), a blob segment holding one across its requests.
//! Token requests, to the token service, take none.
//!
//! A 429 ("too many requests") means "slower, to this host", not a failed
//! attempt: the budget shrinks (fewer connections, or starts spaced wider)
//! and the refused work waits for it, while the host keeps answering
//! other requests or sending bytes. While requests succeed the budget
//! grows back slowly, up to the ceiling (`-t`). Only a host that refuses
//! every request for the retry policy's patience fails the pull, with an
//! error that says so; its `Retry-After` holds every request to it.
//!
//! Budgets are kept per host (scheme, name and port) in [`Budgets`], one
//! map per pull shared by all its registry clients, so that a pull from
//! several hosts (a mirror list, say) keeps one for each. This module
//! decides nothing about what to fetch: the download schedule asks it for
//! permits, for what the host allows ([`Gauge`], from which
//! `fetch/share.rs` sizes a new segment) and whether running segments may
//! be split; the registry client asks it before each other request.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::registry::allowance::{Allowance, Ask};
use crate::ui::interrupt;

/// The budget of each host a pull talks to.
#[derive(Clone, Default)]
pub struct Budgets {
    hosts: Arc<Mutex<HashMap<String, Arc<Budget>>>>,
    /// The hosts of mirror lists that did not answer, with why: not asked
    /// again in the same pull (a Docker Hub out of reach would cost every
    /// image its connect timeout).
    silent: Arc<Mutex<HashMap<String, String>>>,
}

impl fmt::Debug for Budgets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.hosts.lock().map(|h| h.len()).unwrap_or(0);
        write!(f, "Budgets({n} hosts)")
    }
}

impl Budgets {
    /// The budget of `host` (`scheme://name:port`), at most `ceiling`
    /// connections; made on first use.
    pub fn of(&self, host: &str, ceiling: usize) -> Arc<Budget> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        let budget = hosts.entry(host.to_string());
        budget
            .or_insert_with(|| Arc::new(Budget::new(host, ceiling)))
            .clone()
    }

    /// Why `host` (as a mirror list names it) did not answer earlier in
    /// this pull, if it did not.
    pub fn silent(&self, host: &str) -> Option<String> {
        let silent = self.silent.lock().unwrap_or_else(|p| p.into_inner());
        silent.get(host).cloned()
    }

    /// Notes that `host` did not answer, and why.
    pub fn set_silent(&self, host: &str, why: String) {
        let mut silent = self.silent.lock().unwrap_or_else(|p| p.into_inner());
        silent.insert(host.to_string(), why);
    }
}

/// What one host allows, and what is in progress there.
pub struct Budget {
    host: String,
    allowance: Mutex<Allowance>,
    /// Notified when a request ends or is answered.
    changed: Condvar,
    /// Whether the user was told the host rations.
    warned: AtomicBool,
}

impl Budget {
    fn new(host: &str, ceiling: usize) -> Budget {
        Budget {
            host: host.to_string(),
            allowance: Mutex::new(Allowance::new(ceiling)),
            changed: Condvar::new(),
            warned: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Allowance> {
        self.allowance.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the host allows now, for sizing requests to it.
    pub fn gauge(&self) -> Gauge {
        self.lock().gauge(Instant::now())
    }

    /// Whether running segments may be split for more connections: not
    /// while the host rations.
    pub fn may_split(&self) -> bool {
        !self.lock().wary(Instant::now())
    }

    /// A permit for one request now, if the budget allows one.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        let mut r = self.lock();
        let now = Instant::now();
        if r.blocked(now).is_some() {
            return None;
        }
        let spacing = r.start(now);
        Some(Permit {
            budget: self.clone(),
            ask: Cell::new(Ask::Asking),
            spacing: Cell::new(spacing),
        })
    }

    /// How long until [`Budget::try_acquire`] may succeed; `None` when it
    /// waits for a request to end.
    pub fn ready_in(&self) -> Option<Duration> {
        self.lock().blocked(Instant::now())?
    }

    /// Waits for a permit. Each wait is short (a signal or `abort` ends
    /// it); the budget's pauses are bounded, and every permit is given back
    /// when its request ends.
    pub fn acquire(self: &Arc<Self>, abort: Option<&AtomicBool>) -> Result<Permit> {
        loop {
            if abort.is_some_and(|a| a.load(Ordering::Relaxed)) {
                return Err(Error::Aborted);
            }
            if interrupt::interrupted() {
                return Err(Error::Interrupted { resumable: true });
            }
            if let Some(p) = self.try_acquire() {
                return Ok(p);
            }
            let r = self.lock();
            let wait = r.blocked(Instant::now()).flatten();
            let wait = wait.unwrap_or(Duration::MAX).min(Duration::from_millis(50));
            drop(self.changed.wait_timeout(r, wait));
        }
    }
}

/// What a host allows now, for sizing requests to it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gauge {
    /// Connections allowed now.
    pub conns: usize,
    /// Requests being served now.
    pub serving: usize,
    /// What one request brings a second (bytes), once measured.
    pub per_request: Option<f64>,
    /// When the host rations requests: the spacing it keeps to.
    pub spacing: Option<Duration>,
}

/// Leave for one request (and its retries) to a host, given back on drop.
pub struct Permit {
    budget: Arc<Budget>,
    ask: Cell<Ask>,
    /// How long after the request before its own request started.
    spacing: Cell<Option<Duration>>,
}

impl Permit {
    fn step(&self, r: &mut Allowance, to: Ask, now: Instant) {
        r.step(self.ask.replace(to), to, now);
        self.budget.changed.notify_all();
    }

    /// The host answered with `status` (not 429).
    pub fn answered(&self, status: u16) {
        let mut r = self.budget.lock();
        let now = Instant::now();
        let served = (200..300).contains(&status);
        self.step(&mut r, if served { Ask::Served } else { Ask::Done }, now);
        r.answered(served, now);
    }

    /// `bytes` of the answer arrived.
    pub fn alive(&self, bytes: u64) {
        self.budget.lock().received(bytes, Instant::now());
    }

    /// The request ended without an answer (a network error).
    pub fn settle(&self) {
        if self.ask.get() == Ask::Asking {
            let mut r = self.budget.lock();
            self.step(&mut r, Ask::Done, Instant::now());
        }
    }

    /// The host answered 429: the budget shrinks, and the work waits for
    /// it. An error text when the host has refused every request for
    /// `patience`.
    pub fn refused(
        &self,
        retry_after: Option<Duration>,
        patience: Duration,
    ) -> std::result::Result<(), String> {
        let b = &self.budget;
        let mut r = b.lock();
        let now = Instant::now();
        self.step(&mut r, Ask::Refused, now);
        let before = (r.conns(), r.gap());
        r.refused(retry_after, self.spacing.get(), now);
        if !b.warned.swap(true, Ordering::Relaxed) {
            log::warn!(
                "{} answered 429 (too many requests): slowing down to what it allows",
                b.host
            );
        }
        let ms = |d: Duration| d.as_millis();
        log::debug!(
            "{}: 429 {} ms after the request before; at most {} connections{}, {} ms apart (at least {})",
            b.host,
            self.spacing.get().map_or(0, ms),
            r.conns(),
            if (r.conns(), r.gap()) != before { " now" } else { "" },
            ms(r.gap()),
            ms(r.floor(now))
        );
        match r.refusing_for(now) {
            Some(took) if took >= patience => Err(format!(
                "{} refused {} requests in a row over {} s (answered 429, too many requests), with {} connection(s) at most; try again later, or with fewer threads (-t)",
                b.host,
                r.streak,
                took.as_secs(),
                r.conns()
            )),
            _ => Ok(()),
        }
    }

    /// Before another request on this permit (a retry): waits for the
    /// host's spacing and pauses.
    pub fn again(&self, abort: Option<&AtomicBool>) -> Result<()> {
        loop {
            let mut r = self.budget.lock();
            let now = Instant::now();
            match r.next_start().filter(|&at| at > now) {
                None => {
                    self.spacing.set(r.again(now));
                    self.step(&mut r, Ask::Asking, now);
                    return Ok(());
                }
                Some(at) => {
                    drop(r);
                    interrupt::sleep((at - now).min(Duration::from_millis(200)), abort)?;
                }
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut r = self.budget.lock();
        r.end(self.ask.get(), Instant::now());
        self.budget.changed.notify_all();
    }
}
