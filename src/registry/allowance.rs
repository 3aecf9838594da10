//! What one host allows, learned from its 429 answers: the connections
//! it serves at once and the spacing of the requests it takes, and what
//! is in progress there. The rules, as pure functions of the counts and
//! the time given to them (each number a named constant below);
//! [`crate::registry::permits`] holds one [`Allowance`] per host behind a
//! lock and hands out the permits.
//!
//! A refusal while about as many of our requests are in progress as the
//! host has served at once (the most lately) means it rations
//! connections: the allowance drops to the requests it is serving. A
//! refusal with clearly fewer in progress means it rations requests: the
//! starts are spaced a quarter wider than the spacing it refused (at least
//! a second), and do not come that close again until that floor has come
//! down (0.2 % a second, and a twentieth every ten requests served). While
//! requests are served the allowance grows back by one connection a calm
//! second, up to the ceiling, and the spacing shrinks back to its floor.
//! Without `Retry-After`, a host that refuses everything is asked again
//! after pauses that double (from 250 ms to 8 s); with it, nothing goes to
//! the host before that time.

use std::time::{Duration, Instant};

use crate::registry::permits::Gauge;

/// How long after the allowance fell or grew before one more connection.
const CALM: Duration = Duration::from_secs(1);
/// The first pause of a host that refuses everything.
const FIRST_WAIT: Duration = Duration::from_millis(250);
/// The least spacing of request starts on a host that rations requests.
const FIRST_GAP: Duration = Duration::from_secs(1);
/// The widest spacing, and the longest pause.
const MAX_WAIT: Duration = Duration::from_secs(8);
/// How long after a refusal the host still counts as rationing.
const WARY: Duration = Duration::from_secs(10);
/// A refused spacing times this is the new floor of the spacing.
const WIDER: f64 = 1.25;
/// What the floor keeps of itself each second (it fades 0.2 % a second).
const FADE_PER_SEC: f64 = 0.998;
/// Every this many requests served, the floor comes down to `EASED` of
/// itself (a twentieth less): the host may take more than it did.
const EASE_EVERY: u32 = 10;
const EASED: f64 = 0.95;
/// Each request served takes this fraction off the spacing, down to its
/// floor; a spacing under `NO_GAP` is none.
const SHRINK: u32 = 8;
const NO_GAP: Duration = Duration::from_millis(10);
/// While the host rations, how often a request waiting for another's
/// answer looks again.
const ASKING_POLL: Duration = Duration::from_millis(20);
/// The most requests served at once counts one less for each of these.
const PEAK_FADES: Duration = Duration::from_secs(30);

/// Where a request is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Ask {
    /// Sent, not answered yet.
    Asking,
    /// Answered 2xx, its body coming.
    Served,
    /// Answered 429.
    Refused,
    /// Answered otherwise, or failed without an answer.
    Done,
}

/// What one host rations, and what is in progress there.
#[derive(Debug)]
pub(crate) struct Allowance {
    /// The most connections (`-t`).
    ceiling: usize,
    /// Connections allowed now.
    conns: usize,
    /// Requests in progress, of which `asking` await their answer,
    /// `refused` were refused and `serving` are being served.
    in_flight: usize,
    asking: usize,
    refused: usize,
    serving: usize,
    /// The most requests served at once, and when (see [`Allowance::peak`]).
    peak: usize,
    peak_at: Option<Instant>,
    /// The least time between request starts, and its floor: a quarter
    /// more than the widest spacing refused, fading from `floor_at`.
    gap: Duration,
    floor: Duration,
    floor_at: Option<Instant>,
    /// Requests served since the floor last moved: every ten, it comes
    /// down a twentieth (the host may take more than it did).
    taken: u32,
    last_start: Option<Instant>,
    /// Bytes received, and the time requests were served (request-
    /// seconds), counted up to `busy_at`; what one request brings a second.
    rx: u64,
    busy: f64,
    busy_at: Option<Instant>,
    per_request: f64,
    /// No request before this: the host's `Retry-After`.
    hold: Option<Instant>,
    /// No request before this: a host refusing everything.
    pause: Option<Instant>,
    /// Refusals since the host last answered otherwise or sent bytes, and
    /// when the first of them came.
    pub(crate) streak: u32,
    refusing_since: Option<Instant>,
    last_refusal: Option<Instant>,
    /// When the allowance last fell, and last grew.
    last_cut: Option<Instant>,
    last_raise: Option<Instant>,
}

impl Allowance {
    /// Nothing rationed yet: `ceiling` connections.
    pub(crate) fn new(ceiling: usize) -> Allowance {
        let ceiling = ceiling.max(1);
        Allowance {
            ceiling,
            conns: ceiling,
            in_flight: 0,
            asking: 0,
            refused: 0,
            serving: 0,
            peak: 0,
            peak_at: None,
            gap: Duration::ZERO,
            floor: Duration::ZERO,
            floor_at: None,
            taken: 0,
            last_start: None,
            rx: 0,
            busy: 0.0,
            busy_at: None,
            per_request: 0.0,
            hold: None,
            pause: None,
            streak: 0,
            refusing_since: None,
            last_refusal: None,
            last_cut: None,
            last_raise: None,
        }
    }

    /// Connections allowed now.
    pub(crate) fn conns(&self) -> usize {
        self.conns
    }

    /// The spacing of request starts now.
    pub(crate) fn gap(&self) -> Duration {
        self.gap
    }

    /// Whether the host rations, or did a short while ago.
    pub(crate) fn wary(&self, now: Instant) -> bool {
        self.conns < self.ceiling
            || !self.gap.is_zero()
            || self.last_refusal.is_some_and(|t| now - t < WARY)
    }

    /// `None` when a request may start now; else how long until one may
    /// (`Some(None)`: until a request ends or is answered). While the
    /// host rations, one new request at a time waits for its answer.
    pub(crate) fn blocked(&self, now: Instant) -> Option<Option<Duration>> {
        if self.in_flight >= self.conns {
            return Some(None);
        }
        if self.asking > 0 && self.wary(now) {
            return Some(Some(ASKING_POLL));
        }
        let at = self.next_start()?;
        (at > now).then(|| Some(at - now))
    }

    /// The earliest time the host's spacing and pauses allow a request.
    pub(crate) fn next_start(&self) -> Option<Instant> {
        let spaced = self.last_start.map(|t| t + self.gap);
        [self.hold, self.pause, spaced].into_iter().flatten().max()
    }

    /// A new request starts: how long after the one before.
    pub(crate) fn start(&mut self, now: Instant) -> Option<Duration> {
        self.in_flight += 1;
        self.enter(Ask::Asking, now);
        self.again(now)
    }

    /// Another request starts on the same permit (a retry): how long
    /// after the one before.
    pub(crate) fn again(&mut self, now: Instant) -> Option<Duration> {
        let spacing = self.last_start.map(|t| now - t);
        self.last_start = Some(now);
        spacing
    }

    /// A request moves from `from` to `to`.
    pub(crate) fn step(&mut self, from: Ask, to: Ask, now: Instant) {
        self.leave(from, now);
        self.enter(to, now);
    }

    /// A request that was at `ask` ends.
    pub(crate) fn end(&mut self, ask: Ask, now: Instant) {
        self.leave(ask, now);
        self.in_flight -= 1;
    }

    fn enter(&mut self, ask: Ask, now: Instant) {
        self.tick(now);
        match ask {
            Ask::Asking => self.asking += 1,
            Ask::Served => self.serving += 1,
            Ask::Refused => self.refused += 1,
            Ask::Done => {}
        }
    }

    fn leave(&mut self, ask: Ask, now: Instant) {
        self.tick(now);
        match ask {
            Ask::Asking => self.asking -= 1,
            Ask::Served => self.serving -= 1,
            Ask::Refused => self.refused -= 1,
            Ask::Done => {}
        }
    }

    /// A request was answered (not 429), `served` when with a 2xx.
    pub(crate) fn answered(&mut self, served: bool, now: Instant) {
        self.heard();
        if served {
            if self.serving >= self.peak(now) {
                (self.peak, self.peak_at) = (self.serving, Some(now));
            }
            if !self.gap.is_zero() {
                self.taken += 1;
                if self.taken >= EASE_EVERY {
                    (self.floor, self.floor_at) = (self.floor(now).mul_f64(EASED), Some(now));
                    self.taken = 0;
                }
            }
            let gap = (self.gap - self.gap / SHRINK).max(self.floor(now));
            self.gap = if gap < NO_GAP { Duration::ZERO } else { gap };
            self.maybe_raise(now);
        }
    }

    /// `bytes` of an answer arrived.
    pub(crate) fn received(&mut self, bytes: u64, now: Instant) {
        self.heard();
        self.tick(now);
        self.rx += bytes;
        if self.busy >= 1.0 {
            self.per_request = self.rx as f64 / self.busy;
        }
        self.maybe_raise(now);
    }

    /// A request (started `spacing` after the one before) was refused:
    /// less of what the host rations; nothing before `retry_after`.
    pub(crate) fn refused(
        &mut self,
        retry_after: Option<Duration>,
        spacing: Option<Duration>,
        now: Instant,
    ) {
        self.streak += 1;
        self.last_refusal = Some(now);
        self.refusing_since.get_or_insert(now);
        // About as many served as the most it served at once (a request
        // that has just ended may still count at the host), or more:
        // connections; clearly fewer: requests.
        let others = self.in_flight - self.refused;
        if others + 1 >= self.peak(now) {
            let allowed = others.max(1);
            if allowed <= self.conns {
                self.conns = allowed;
                self.last_cut = Some(now);
            }
        } else {
            let spacing = spacing.unwrap_or(self.gap).max(self.gap);
            let floor = self.floor(now).max(spacing.mul_f64(WIDER));
            let floor = floor.clamp(FIRST_GAP, MAX_WAIT);
            (self.floor, self.floor_at, self.taken) = (floor, Some(now), 0);
            self.gap = self.gap.max(floor);
        }
        match retry_after {
            Some(wait) => self.hold = self.hold.max(Some(now + wait)),
            None => {
                let doubling = 1u32 << self.streak.clamp(1, 16).saturating_sub(1);
                let pause = FIRST_WAIT.saturating_mul(doubling).min(MAX_WAIT);
                self.pause = Some(now + pause);
            }
        }
    }

    /// How long the host has refused every request, if it does.
    pub(crate) fn refusing_for(&self, now: Instant) -> Option<Duration> {
        self.refusing_since.map(|t| now - t)
    }

    /// What the host allows now, for sizing requests to it.
    pub(crate) fn gauge(&self, now: Instant) -> Gauge {
        Gauge {
            conns: self.conns,
            serving: self.serving,
            per_request: (self.per_request >= 1.0).then_some(self.per_request),
            spacing: (!self.gap.is_zero()).then(|| self.floor(now).max(FIRST_WAIT)),
        }
    }

    /// The floor of the spacing now, faded since it was set.
    pub(crate) fn floor(&self, now: Instant) -> Duration {
        let faded = self.floor_at.map_or(0.0, |t| (now - t).as_secs_f64());
        self.floor.mul_f64(FADE_PER_SEC.powf(faded))
    }

    /// The most requests served at once, less one for each half minute
    /// since.
    fn peak(&self, now: Instant) -> usize {
        let since = self
            .peak_at
            .map_or(0, |t| (now - t).as_secs() / PEAK_FADES.as_secs());
        self.peak.saturating_sub(since as usize)
    }

    /// Counts the time requests were served, up to `now`.
    fn tick(&mut self, now: Instant) {
        if let Some(t) = self.busy_at {
            self.busy += self.serving as f64 * now.saturating_duration_since(t).as_secs_f64();
        }
        self.busy_at = Some(now);
    }

    /// The host answered, or sent bytes: it is not refusing everything.
    fn heard(&mut self) {
        self.streak = 0;
        self.refusing_since = None;
        self.pause = None;
    }

    /// One more connection, with every one in use, a calm second after the
    /// allowance last fell or grew, up to the ceiling.
    fn maybe_raise(&mut self, now: Instant) {
        let calm = |t: Option<Instant>| t.is_none_or(|t| now - t >= CALM);
        if self.conns < self.ceiling
            && self.in_flight >= self.conns
            && calm(self.last_cut)
            && calm(self.last_raise)
        {
            self.conns += 1;
            self.last_raise = Some(now);
        }
    }
}

#[cfg(test)]
mod tests;
