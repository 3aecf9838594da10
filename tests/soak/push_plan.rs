//! A push round's plan, drawn from a generator of its own (so that a
//! seed's pull rounds draw what they drew before): whether round `k`
//! pushes at all, `-t`, a 413 on the first whole blob (then chunks of
//! `--chunk-size`), a slow uplink, a signal at a random moment, and the
//! faults on the push's requests: which request (`HEAD`, the `POST` that
//! opens an upload, a `PATCH` chunk, a `PUT`, the manifest's `PUT`),
//! what happens to it (5xx or 429, with or without `Retry-After`; a reset
//! in the middle of its body; a hang-up), how many times and after how
//! many requests went through. Pure: no process, no network. A plan is
//! benign with at most two faults in all and no signal.

use super::plan::{pick, Draw, Signal};
use crate::support::faultproxy::{Fault, Rule};
use crate::support::util::Rng;
use std::fmt::Write as _;

/// One round in this many (percent) pushes.
const PERCENT: u64 = 35;

/// The request of a push a fault is put on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// `HEAD` of a blob, or of the manifest by tag.
    Head,
    /// The `POST` that opens an upload.
    Post,
    /// A chunk (only once a 413 sent the push into chunks).
    Patch,
    /// A whole blob, or the `PUT ?digest=` that closes an upload.
    Put,
    /// The manifest's `PUT`.
    Manifest,
}

impl Step {
    fn method(self) -> &'static str {
        match self {
            Step::Head => "HEAD",
            Step::Post => "POST",
            Step::Patch => "PATCH",
            Step::Put | Step::Manifest => "PUT",
        }
    }

    /// What the proxy matches in the path of a push into `repo`.
    fn path(self, repo: &str) -> String {
        match self {
            Step::Head => format!("/v2/{repo}/"),
            Step::Post | Step::Patch | Step::Put => format!("/v2/{repo}/blobs/uploads/"),
            Step::Manifest => format!("/v2/{repo}/manifests/"),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Step::Head => "head",
            Step::Post => "post",
            Step::Patch => "patch",
            Step::Put => "put",
            Step::Manifest => "manifest",
        }
    }
}

/// What the proxy does to the request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Hit {
    /// This status at once, with `Retry-After` seconds or without.
    Status(u16, Option<u64>),
    /// The body relayed up to this byte, then both sides closed.
    Reset(u64),
    /// Closed right after the request head.
    Hangup,
}

impl Hit {
    fn fault(self) -> Fault {
        match self {
            Hit::Status(code, after) => {
                let headers = after.map(|s| ("Retry-After".to_string(), s.to_string()));
                Fault::Status(code, headers.into_iter().collect())
            }
            Hit::Reset(n) => Fault::CutUpload(n),
            Hit::Hangup => Fault::Hangup,
        }
    }

    fn short(self) -> String {
        match self {
            Hit::Status(c, Some(s)) => format!("{c}+RA{s}"),
            Hit::Status(c, None) => c.to_string(),
            Hit::Reset(n) => format!("reset@{n}"),
            Hit::Hangup => "hangup".into(),
        }
    }
}

/// One fault of the plan: where, what, how many times, and after how
/// many matching requests went through untouched.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Planned {
    pub step: Step,
    pub hit: Hit,
    pub times: u32,
    pub after: u32,
}

/// A push round's plan.
#[derive(Clone, Debug)]
pub struct Plan {
    pub threads: u64,
    /// A 413 on the first whole blob, and `--chunk-size` for the chunks.
    pub chunks: Option<u64>,
    pub faults: Vec<Planned>,
    /// A signal, and after how many milliseconds.
    pub signal: Option<(Signal, u64)>,
    /// `PULLTAR_RETRY_DELAY_MS=50`, or the real backoff.
    pub fixed_delay: bool,
    /// A slow uplink: request bodies relayed at this many bytes a second
    /// (where no fault fires), so that a signal finds the push mid-way.
    pub uplink: Option<u64>,
}

impl Plan {
    /// Round `k`'s push plan, if it pushes. With `with_429` false a 429
    /// drawn is a 503 (the same draws: the rest of the plan is unchanged).
    pub fn draw(seed: u64, k: u64, with_429: bool) -> Option<Plan> {
        let mut rng = Rng::seeded(seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 21);
        if !rng.chance(PERCENT) {
            return None;
        }
        let threads = rng.within(1, 12);
        let chunks = rng
            .chance(30)
            .then(|| pick(&mut rng, &[256 << 10, 512 << 10, 1 << 20]));
        let n = pick(&mut rng, &[0, 1, 1, 2, 2, 2, 3, 4]);
        let mut faults = Vec::new();
        for _ in 0..n {
            let step = match rng.below(100) {
                0..=19 => Step::Head,
                20..=39 => Step::Post,
                40..=59 if chunks.is_some() => Step::Patch,
                40..=84 => Step::Put,
                _ => Step::Manifest,
            };
            let hit = match rng.below(100) {
                0..=34 => {
                    let code = pick(&mut rng, &[500, 502, 503, 504]);
                    Hit::Status(code, rng.chance(30).then_some(1))
                }
                35..=59 => Hit::Status(429, rng.chance(50).then(|| rng.within(1, 2))),
                60..=84 if step != Step::Head && step != Step::Post => {
                    let span = if step == Step::Manifest {
                        400
                    } else {
                        512 << 10
                    };
                    Hit::Reset(if rng.chance(20) { 0 } else { rng.below(span) })
                }
                _ => Hit::Hangup,
            };
            let times = pick(&mut rng, &[1, 1, 1, 2]);
            let after = pick(&mut rng, &[0, 0, 0, 1, 2, 4]);
            faults.push(Planned {
                step,
                hit,
                times,
                after,
            });
        }
        let signal = rng.chance(25).then(|| {
            let s = pick(&mut rng, &[Signal::Kill, Signal::Kill, Signal::Int]);
            (s, rng.within(10, 500))
        });
        let fixed_delay = rng.chance(70);
        let uplink = rng
            .chance(50)
            .then(|| pick(&mut rng, &[4 << 20, 8 << 20, 16 << 20]));
        if !with_429 {
            for f in &mut faults {
                if let Hit::Status(429, after) = f.hit {
                    f.hit = Hit::Status(503, after);
                }
            }
        }
        Some(Plan {
            threads,
            chunks,
            faults,
            signal,
            fixed_delay,
            uplink,
        })
    }

    /// At most two faults in all, and no signal.
    pub fn benign(&self) -> bool {
        self.signal.is_none() && self.faults.iter().map(|f| f.times).sum::<u32>() <= 2
    }

    /// The proxy's rules for a push into `repo`.
    pub fn rules(&self, repo: &str) -> Vec<Rule> {
        let mut rules = Vec::new();
        if self.chunks.is_some() {
            let refuse = Fault::Status(413, Vec::new());
            let path = Step::Put.path(repo);
            rules.push(Rule::new(&path, refuse).method("PUT").times(1));
        }
        for f in &self.faults {
            let rule = Rule::new(&f.step.path(repo), f.hit.fault());
            rules.push(rule.method(f.step.method()).after(f.after).times(f.times));
        }
        if let Some(rate) = self.uplink {
            let path = Step::Put.path(repo);
            rules.push(Rule::new(&path, Fault::SlowUpload(rate)));
        }
        rules
    }

    pub fn describe(&self) -> String {
        let mut s = format!("-t {}", self.threads);
        if let Some(c) = self.chunks {
            write!(s, " 413 then chunks of {}K", c >> 10).unwrap();
        }
        s += if self.fixed_delay {
            " delay 50ms"
        } else {
            " real backoff"
        };
        if let Some(rate) = self.uplink {
            write!(s, " uplink {}M/s", rate >> 20).unwrap();
        }
        if let Some((sig, ms)) = self.signal {
            write!(s, " SIG{} at {ms}ms", sig.name()).unwrap();
        }
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|f| {
                let mut one = format!("{}[{}", f.step.label(), f.hit.short());
                if f.times > 1 {
                    write!(one, "x{}", f.times).unwrap();
                }
                if f.after > 0 {
                    write!(one, " after {}", f.after).unwrap();
                }
                one + "]"
            })
            .collect();
        if faults.is_empty() {
            s += "; faults: none";
        } else {
            write!(s, "; faults: {}", faults.join(" ")).unwrap();
        }
        if self.benign() {
            s += " (benign)";
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_rounds_draw_every_fault_and_429_can_be_left_out() {
        let all: String = (0..400)
            .filter_map(|k| Plan::draw(7, k, true))
            .map(|p| p.describe() + "\n")
            .collect();
        let want = [
            "head[",
            "post[",
            "patch[",
            "put[",
            "manifest[",
            "[429]",
            "[429+RA",
            "[50",
            "+RA1",
            "reset@",
            "hangup",
            "SIGKILL",
            "SIGINT",
            "413 then chunks",
            "(benign)",
            " after ",
            "uplink 4M/s",
        ];
        let missing: Vec<&str> = want.into_iter().filter(|w| !all.contains(w)).collect();
        assert!(missing.is_empty(), "never drawn in 400 rounds: {missing:?}");
        // Without 429, the same plans but for the status.
        for k in 0..400 {
            let (a, b) = (Plan::draw(7, k, true), Plan::draw(7, k, false));
            let (a, b) = (a.map(|p| p.describe()), b.map(|p| p.describe()));
            let b429 = b.as_deref().is_some_and(|d| d.contains("[429"));
            assert!(!b429, "round {k}: {b:?}");
            let same = |d: &str| d.replace("[429", "[503");
            assert_eq!(a.as_deref().map(same), b, "round {k}");
        }
        // A round pushes about one time in three.
        let pushes = (0..1000)
            .filter(|k| Plan::draw(3, *k, true).is_some())
            .count();
        assert!((250..450).contains(&pushes), "{pushes} push rounds in 1000");
    }

    #[test]
    fn benign_is_two_faults_and_no_signal() {
        let f = |times| Planned {
            step: Step::Put,
            hit: Hit::Reset(10),
            times,
            after: 0,
        };
        let plan = |faults: Vec<Planned>, signal| Plan {
            threads: 1,
            chunks: None,
            faults,
            signal,
            fixed_delay: true,
            uplink: None,
        };
        assert!(plan(vec![f(1), f(1)], None).benign());
        assert!(plan(vec![f(2)], None).benign());
        assert!(!plan(vec![f(2), f(1)], None).benign());
        assert!(!plan(vec![], Some((Signal::Int, 5))).benign());
    }
}
