//! One round's plan, drawn from the round's own generator: the pull's
//! knobs (threads, cache, chunk size, backoff, read timeout), the host's
//! pacing and rations, a signal at a random moment, and the faults of
//! each target (blob or manifest). Pure: no process, no network. The plan
//! also says whether it is *benign*, one the issue promises never fails:
//! per target at most two faults without progress, at most two cuts after
//! some bytes, at most one corrupt response, any number of ignored
//! Ranges; no signal; rations no stricter than a public mirror's.

use crate::support::faultproxy::{Fault, Ration, Rule};
use crate::support::util::Rng;
use std::fmt::Write as _;
use std::time::Duration;

/// Draws from a generator.
pub trait Draw {
    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64;
    /// True `percent` times out of 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    /// A number in `lo..=hi`.
    fn within(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

impl Draw for Rng {
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// One element of `items`, drawn.
pub fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[rng.below(items.len() as u64) as usize]
}

/// The image a round pulls.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// One large layer (uncompressed tar).
    Big,
    /// Many small layers, some gzip, some plain tar.
    Many,
    /// A multi-platform index; one of its platforms is pulled.
    Index,
}

/// A signal sent to the pull.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Signal {
    Kill,
    Term,
    Int,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Kill => "KILL",
            Signal::Term => "TERM",
            Signal::Int => "INT",
        }
    }
}

/// One fault of a target, as the plan describes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Spec {
    /// The body cut after this many bytes.
    Cut(u64),
    /// Silent after this many bytes for this many seconds, then closed.
    Stall(u64, u64),
    /// This status at once, with `Retry-After` seconds or without.
    Status(u16, Option<u64>),
    /// No answer at all.
    Hangup,
    /// The byte at this offset of the body inverted.
    Flip(u64),
    /// Every ranged request answered 200 with the whole body.
    NoRange,
}

/// How a fault counts in the benign budget.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Class {
    NoProgress,
    Progress,
    Corrupt,
    NoRange,
}

impl Spec {
    /// Its class on a target fetched in segments (`streamed`) or as one
    /// document (a manifest: a cut brings nothing that is kept).
    pub fn class(self, streamed: bool) -> Class {
        match self {
            Spec::Cut(n) | Spec::Stall(n, _) if streamed && n > 0 => Class::Progress,
            Spec::Cut(_) | Spec::Stall(..) | Spec::Status(..) | Spec::Hangup => Class::NoProgress,
            Spec::Flip(_) => Class::Corrupt,
            Spec::NoRange => Class::NoRange,
        }
    }

    fn fault(self) -> Fault {
        match self {
            Spec::Cut(n) => Fault::CutAfter(n),
            Spec::Stall(n, s) => Fault::StallAfter(n, Duration::from_secs(s)),
            Spec::Status(code, after) => {
                let headers = after.map(|s| ("Retry-After".to_string(), s.to_string()));
                Fault::Status(code, headers.into_iter().collect())
            }
            Spec::Hangup => Fault::Hangup,
            Spec::Flip(n) => Fault::FlipByte(n),
            Spec::NoRange => Fault::IgnoreRange,
        }
    }

    fn short(self) -> String {
        match self {
            Spec::Cut(n) => format!("cut@{n}"),
            Spec::Stall(n, s) => format!("stall@{n}/{s}s"),
            Spec::Status(c, Some(s)) => format!("{c}+RA{s}"),
            Spec::Status(c, None) => c.to_string(),
            Spec::Hangup => "hangup".into(),
            Spec::Flip(n) => format!("flip@{n}"),
            Spec::NoRange => "norange".into(),
        }
    }
}

/// Something the pull fetches: a blob (config or layer) or a manifest.
#[derive(Clone, Debug)]
pub struct Target {
    /// For the round's line: `layer2`, `config`, `index`, `child`…
    pub label: String,
    /// What the proxy matches in the request path.
    pub path: String,
    pub size: u64,
    /// Fetched by the download machinery (blobs), not as one document.
    pub streamed: bool,
    /// Fetched by digest (so a corrupt copy can be told from the real one).
    pub by_digest: bool,
    /// Its faults, each with how many times it may fire.
    pub faults: Vec<(Spec, u32)>,
}

impl Target {
    pub fn new(label: &str, path: String, size: u64, streamed: bool, by_digest: bool) -> Target {
        let label = label.to_string();
        let faults = Vec::new();
        Target {
            label,
            path,
            size,
            streamed,
            by_digest,
            faults,
        }
    }

    /// How many faults of `class` may fire.
    fn count(&self, class: Class) -> u32 {
        let of = |(s, n): &(Spec, u32)| (s.class(self.streamed) == class).then_some(*n);
        self.faults.iter().filter_map(of).sum()
    }

    /// Within the budget the issue promises to survive.
    pub fn benign(&self) -> bool {
        self.count(Class::NoProgress) <= 2
            && self.count(Class::Progress) <= 2
            && self.count(Class::Corrupt) <= 1
    }

    /// The proxy rules, `NoRange` first (a server that ignores Range does
    /// so for every ranged request; the other faults then meet the whole
    /// GETs).
    pub fn rules(&self) -> Vec<Rule> {
        let mut rules = Vec::new();
        for (spec, times) in &self.faults {
            let rule = Rule::new(&self.path, spec.fault());
            match spec {
                Spec::NoRange => rules.insert(0, rule.ranged()),
                _ => rules.push(rule.times(*times)),
            }
        }
        rules
    }

    /// Draws this target's faults: with probability `percent`, 1–4 of
    /// them; a blob of `chunk` bytes or more per segment gets its offsets
    /// below `chunk` so they can fire on any segment.
    pub fn draw(&mut self, rng: &mut Rng, chunk: u64, percent: u64) {
        let n = if rng.chance(percent) {
            pick(rng, &[1, 1, 1, 1, 1, 1, 2, 2, 3, 4])
        } else {
            0
        };
        let span = self.size.min(chunk).max(1);
        for _ in 0..n {
            let at = if rng.chance(30) { 0 } else { rng.below(span) };
            let spec = match rng.below(100) {
                0..=17 => Spec::Cut(at),
                18..=25 => Spec::Stall(at, pick(rng, &[1, 3])),
                26..=43 => Spec::Status(429, rng.chance(50).then(|| rng.within(1, 2))),
                44..=57 => {
                    let code = pick(rng, &[500, 502, 503, 504]);
                    Spec::Status(code, rng.chance(30).then_some(1))
                }
                58..=67 => Spec::Hangup,
                // A manifest by tag cannot be checked by any client: no
                // corrupt copy of it.
                68..=84 if self.by_digest => Spec::Flip(rng.below(self.size.min(chunk))),
                85..=99 if self.streamed => Spec::NoRange,
                _ => Spec::Status(503, None),
            };
            let times = pick(rng, &[1, 1, 1, 2]);
            self.faults.push((spec, times));
        }
    }

    /// `label[cut@10x2,429]`, or nothing without faults.
    pub fn describe(&self) -> Option<String> {
        if self.faults.is_empty() {
            return None;
        }
        let parts: Vec<String> = self
            .faults
            .iter()
            .map(|(s, n)| match (s, n) {
                (Spec::NoRange, _) | (_, 1) => s.short(),
                _ => format!("{}x{n}", s.short()),
            })
            .collect();
        Some(format!("{}[{}]", self.label, parts.join(",")))
    }
}

/// How the pull is run.
#[derive(Clone, Debug)]
pub struct Knobs {
    pub threads: u64,
    /// One of the shared caches, or `--no-cache`.
    pub cache: Option<usize>,
    /// `--chunk-size` in bytes, if given.
    pub chunk: Option<u64>,
    /// `--read-timeout` in seconds, if given.
    pub read_timeout: Option<u64>,
    /// `PULLTAR_RETRY_DELAY_MS=50`, or the real backoff.
    pub fixed_delay: bool,
    /// The proxy's pace per connection, bytes a second (0: none).
    pub rate: u64,
    pub ration: Ration,
    /// A signal, and after how many milliseconds.
    pub signal: Option<(Signal, u64)>,
    /// A second pull of an overlapping image at once, on the same cache.
    pub twin: bool,
    /// The image by its Docker Hub name through a mirror list: the proxy
    /// (with the faults) first, the registry itself second, and
    /// `--mirrors-only` (drawn apart in `round.rs`, so that a seed's other
    /// draws stay as they were).
    pub mirrors: bool,
}

/// The number of shared caches.
pub const CACHES: usize = 3;

impl Knobs {
    pub fn draw(rng: &mut Rng, kind: Kind) -> Knobs {
        let cache = (!rng.chance(25)).then(|| rng.below(CACHES as u64) as usize);
        let chunk = pick(
            rng,
            &[None, None, Some(256 << 10), Some(512 << 10), Some(2 << 20)],
        );
        let ration = if rng.chance(15) {
            Ration {
                conns: rng.chance(60).then(|| pick(rng, &[2, 3, 4, 6])),
                per_minute: rng
                    .chance(50)
                    .then(|| (pick(rng, &[120, 300]), pick(rng, &[10, 20]))),
            }
        } else {
            Ration::default()
        };
        let signal = rng.chance(20).then(|| {
            let s = pick(rng, &[Signal::Kill, Signal::Term, Signal::Int]);
            (s, rng.within(20, 1200))
        });
        Knobs {
            threads: rng.within(1, 20),
            cache,
            chunk,
            read_timeout: rng.chance(50).then(|| pick(rng, &[2, 3])),
            fixed_delay: rng.chance(70),
            rate: pick(rng, &[0, 0, 4 << 20, 8 << 20, 16 << 20]),
            ration,
            signal,
            twin: cache.is_some() && kind != Kind::Index && rng.chance(15),
            mirrors: false,
        }
    }

    /// The segment floor the pull uses.
    pub fn chunk_bytes(&self) -> u64 {
        self.chunk.unwrap_or(1 << 20)
    }

    /// No stricter than a public mirror's rations (two connections; 120
    /// requests a minute with a burst of 10).
    pub fn mild_ration(&self) -> bool {
        self.ration.conns.is_none_or(|c| c >= 2)
            && self
                .ration
                .per_minute
                .is_none_or(|(r, b)| r >= 120 && b >= 10)
    }

    /// The pulltar arguments after the reference and `-o OUT`.
    pub fn args(&self, cache_dir: Option<&std::path::Path>) -> Vec<String> {
        let mut a = vec!["-t".to_string(), self.threads.to_string()];
        match cache_dir {
            Some(dir) => a.extend(["--cache-dir".into(), dir.display().to_string()]),
            None => a.push("--no-cache".into()),
        }
        if let Some(c) = self.chunk {
            a.extend(["--chunk-size".into(), format!("{}K", c >> 10)]);
        }
        if let Some(t) = self.read_timeout {
            a.extend(["--read-timeout".into(), t.to_string()]);
        }
        a
    }

    pub fn describe(&self) -> String {
        let mut s = format!("-t {}", self.threads);
        match self.cache {
            Some(c) => write!(s, " cache c{c}").unwrap(),
            None => s += " --no-cache",
        }
        if let Some(c) = self.chunk {
            write!(s, " chunk {}K", c >> 10).unwrap();
        }
        if let Some(t) = self.read_timeout {
            write!(s, " read-timeout {t}").unwrap();
        }
        s += if self.fixed_delay {
            " delay 50ms"
        } else {
            " real backoff"
        };
        if self.rate > 0 {
            write!(s, " pace {}M/s", self.rate >> 20).unwrap();
        }
        if let Some(c) = self.ration.conns {
            write!(s, " ration {c} conns").unwrap();
        }
        if let Some((r, b)) = self.ration.per_minute {
            write!(s, " ration {r}/min+{b}").unwrap();
        }
        if let Some((sig, ms)) = self.signal {
            write!(s, " SIG{} at {ms}ms", sig.name()).unwrap();
        }
        if self.twin {
            s += " twin";
        }
        if self.mirrors {
            s += " mirrors";
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(streamed: bool, faults: &[(Spec, u32)]) -> Target {
        let mut t = Target::new("t", "p".into(), 1 << 20, streamed, true);
        t.faults = faults.to_vec();
        t
    }

    /// Streamed or not, the faults, whether benign.
    type Case = (bool, &'static [(Spec, u32)], bool);

    #[test]
    fn benign_budget() {
        use Spec::*;
        let cases: [Case; 8] = [
            (true, &[(Status(429, None), 2)], true),
            (true, &[(Status(429, None), 2), (Hangup, 1)], false),
            (true, &[(Cut(10), 2), (Cut(0), 1), (Stall(0, 1), 1)], true),
            (true, &[(Cut(10), 1), (Stall(99, 3), 2)], false),
            // A manifest keeps nothing of a cut: no progress.
            (false, &[(Cut(10), 2), (Status(503, Some(1)), 1)], false),
            (
                true,
                &[(Flip(5), 1), (NoRange, 1), (NoRange, 1), (Cut(0), 2)],
                true,
            ),
            (true, &[(Flip(5), 2)], false),
            (true, &[(Flip(5), 1), (Flip(9), 1)], false),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .filter(|(s, f, want)| target(*s, f).benign() != *want)
            .map(|(s, f, want)| format!("streamed {s}, {f:?}: wanted benign = {want}"))
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    /// The knobs and one target's faults drawn from `seed`.
    fn drawn(seed: u64) -> (String, Option<String>) {
        let mut rng = Rng::seeded(seed);
        let knobs = Knobs::draw(&mut rng, Kind::Big);
        let mut t = Target::new("layer0", "x".into(), 5 << 20, true, true);
        t.draw(&mut rng, knobs.chunk_bytes(), 60);
        (knobs.describe(), t.describe())
    }

    #[test]
    fn a_seed_draws_the_same_plan_and_seeds_draw_every_fault() {
        assert_eq!(drawn(3), drawn(3));
        let all: String = (0..500).map(|s| format!("{:?}", drawn(s))).collect();
        let want = [
            "cut@",
            "stall@",
            "429+RA",
            "429",
            "502",
            "503+RA",
            "hangup",
            "flip@",
            "norange",
            "SIGKILL",
            "SIGTERM",
            "SIGINT",
            "ration",
            "--no-cache",
            "cache c2",
            "twin",
            "-t 20",
            "-t 1 ",
        ];
        let missing: Vec<&str> = want.into_iter().filter(|w| !all.contains(w)).collect();
        assert!(missing.is_empty(), "never drawn in 500 seeds: {missing:?}");
    }

    #[test]
    fn no_corrupt_copy_of_a_manifest_by_tag_and_no_norange_on_a_manifest() {
        for seed in 0..300 {
            let mut rng = Rng::seeded(seed);
            let mut t = Target::new("manifest0", "/r/manifests/v1".into(), 900, false, false);
            t.draw(&mut rng, 1 << 20, 100);
            let bad = t
                .faults
                .iter()
                .find(|(s, _)| matches!(s, Spec::Flip(_) | Spec::NoRange));
            assert!(bad.is_none(), "seed {seed}: {:?}", t.faults);
        }
    }
}
