//! How large a piece of a blob a new request carries. On a host that
//! rations nothing, the bytes not yet started are divided among the
//! connections (never less than the chunk size), and idle connections
//! later split running segments. On a host that rations (it answered 429,
//! see [`crate::registry::permits`]) no running segment is split, so a
//! piece must end about when the others do: fewer, larger requests, but
//! none so large that, started early, it ends last.
//!
//! With one more request starting every spacing the host keeps to (a
//! second, on a host that has only rationed connections), each bringing
//! what one request brings a second until all is in, a new request's share
//! is what it brings by then; a host that rations connections gets no more
//! than every byte still to come spread over the connections it allows
//! and one more (the allowance may grow). A range is then cut in equal
//! pieces of at most the share on a host that rations connections (no
//! crumb, and no long piece left for last); on one that rations requests,
//! where every request counts, a rest under half a share goes with the
//! piece, and what ends before the longest running segment does goes in
//! one piece (more would make more requests, and no earlier end). The
//! range whose piece comes nearest the share goes first: the refused
//! pieces of a first wave come back scattered, and each is best started
//! when the shares have shrunk to its size.
//!
//! When nothing is left to start, an idle connection takes over the end of
//! the running segment that will end last ([`takeover`]): half of it on
//! the same host, and across the hosts of a mirror list each host's part
//! in proportion to what one of its requests brings a second, so that both
//! end together and a slow mirror never holds the tail.
//!
//! This module only computes; `schedule.rs` applies the cut.

use std::time::Duration;

use crate::registry::permits::Gauge;

/// The spacing assumed on a host that has only rationed connections.
const ASSUMED_SPACING: Duration = Duration::from_secs(1);

/// What a job's host allows now.
pub(crate) struct HostNow {
    pub(crate) gauge: Gauge,
    /// Whether it rations (or did lately).
    pub(crate) rationing: bool,
}

/// How a job's next segment is cut from a pending range.
#[derive(Debug)]
pub(crate) struct Cut {
    share: u64,
    chunk: u64,
    /// Whether the blob may be cut at all (it honours Range and is at
    /// least two chunks long).
    splittable: bool,
    limit: Limit,
}

/// What the job's host rations.
#[derive(Debug, PartialEq)]
enum Limit {
    None,
    Conns,
    /// Requests: the most bytes a running segment of the host has left,
    /// and the bytes no segment has yet.
    Requests {
        longest: u64,
        unassigned: u64,
    },
}

/// The cut for a job of `host`, with `threads` connections and segments
/// of at least `chunk` bytes; `bytes` are those of the host no segment has
/// yet, those running segments still bring, and the most one of them does.
pub(crate) fn cut(
    host: &HostNow,
    threads: usize,
    chunk: u64,
    splittable: bool,
    (unassigned, running, longest): (u64, u64, u64),
) -> Cut {
    let g = &host.gauge;
    let (share, limit) = if !host.rationing {
        let conns = g.conns.min(threads).max(1) as u64;
        (unassigned / conns, Limit::None)
    } else if g.spacing.is_some() {
        let share = sized(g, unassigned, running);
        (
            share,
            Limit::Requests {
                longest,
                unassigned,
            },
        )
    } else {
        (sized(g, unassigned, running), Limit::Conns)
    };
    Cut {
        share: share.max(chunk),
        chunk,
        splittable,
        limit,
    }
}

/// The share of a new request to a rationing host.
fn sized(g: &Gauge, unassigned: u64, running: u64) -> u64 {
    let all = unassigned + running;
    let by_conns = all / (g.conns as u64 + 1);
    let Some(per_request) = g.per_request else {
        return match g.spacing {
            None => by_conns,
            Some(_) => all / (g.serving as u64 + 1),
        };
    };
    // Requests k = 0, 1, … start at k * gap and end together at t:
    // unassigned = per_request * sum (t - k * gap), for k * gap < t.
    let gap = g.spacing.unwrap_or(ASSUMED_SPACING).as_secs_f64();
    let u = unassigned as f64 / per_request;
    let mut t = u;
    for k in 0..10_000u32 {
        let k = f64::from(k);
        t = (u + gap * k * (k + 1.0) / 2.0) / (k + 1.0);
        if t < gap * (k + 1.0) {
            break;
        }
    }
    let share = (per_request * t) as u64;
    if g.spacing.is_none() {
        share.min(by_conns)
    } else {
        share
    }
}

impl Cut {
    /// Which of `pending` to cut from: the first, or on a rationing host
    /// the range whose piece comes nearest the share.
    pub(crate) fn pick(&self, pending: &[(u64, u64)]) -> usize {
        if self.limit == Limit::None {
            return 0;
        }
        let fit = |k: &usize| {
            let len = self.piece(pending[*k]);
            (len.abs_diff(self.share), std::cmp::Reverse(len))
        };
        (0..pending.len()).min_by_key(fit).unwrap_or(0)
    }

    /// The length of the segment cut from the start of `[a, b)`.
    pub(crate) fn piece(&self, (a, b): (u64, u64)) -> u64 {
        let (len, share) = (b - a, self.share);
        if !self.splittable {
            return len;
        }
        match self.limit {
            Limit::None if len >= share + self.chunk => share,
            Limit::None => len,
            Limit::Conns => {
                let pieces = len.div_ceil(share);
                len.div_ceil(pieces).clamp(self.chunk.min(len), len)
            }
            Limit::Requests {
                longest,
                unassigned,
            } => {
                if unassigned <= longest || len < share + share / 2 {
                    len
                } else {
                    share
                }
            }
        }
    }
}

/// The smallest piece an idle connection takes over from another host's
/// segment (below a chunk: a slow mirror's tail is worth a short request).
const MIN_TAKEOVER: u64 = 64 << 10;

/// A running segment, as a takeover sees it: the bytes it has left and
/// what one request brings a second on its host, once measured.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Running {
    pub(crate) left: u64,
    pub(crate) rate: Option<f64>,
}

impl Running {
    /// How long it has to go (its bytes when no rate is known, to compare
    /// with others of its kind).
    pub(crate) fn eta(&self, fastest: Option<f64>) -> f64 {
        self.left as f64 / self.rate.or(fastest).unwrap_or(1.0)
    }
}

/// How many bytes, from the end of `seg`, a new request on a host whose
/// requests bring `rate` a second takes over (`same`: on the segment's own
/// host), if any: half on the same host or when a rate is unknown (only
/// with two chunks left); else the share that makes both end together,
/// when it is at least [`MIN_TAKEOVER`] and would take the segment's host
/// half a second or more.
pub(crate) fn takeover(seg: Running, rate: Option<f64>, same: bool, chunk: u64) -> Option<u64> {
    let half = (seg.left >= 2 * chunk).then_some(seg.left - seg.left / 2);
    let (Some(old), Some(new), false) = (seg.rate, rate, same) else {
        return half;
    };
    let give = (seg.left as f64 * new / (old + new)) as u64;
    let worth = give >= MIN_TAKEOVER && give as f64 / old >= 0.5;
    (worth || half.is_some()).then_some(give.max(MIN_TAKEOVER.min(seg.left)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn host(conns: usize, per_request: Option<f64>, spacing: Option<u64>) -> HostNow {
        HostNow {
            gauge: Gauge {
                conns,
                serving: conns,
                per_request,
                spacing: spacing.map(Duration::from_millis),
            },
            rationing: true,
        }
    }

    #[test]
    fn a_host_rationing_nothing_divides_among_the_connections() {
        let free = HostNow {
            rationing: false,
            ..host(20, None, None)
        };
        let cut = cut(&free, 8, MIB, true, (80 * MIB, 0, 0));
        assert_eq!(cut.share, 10 * MIB);
        assert_eq!(cut.piece((0, 80 * MIB)), 10 * MIB);
        assert_eq!(cut.piece((0, 10 * MIB + 1)), 10 * MIB + 1, "no crumb");
        assert_eq!(cut.pick(&[(0, MIB), (5 * MIB, 20 * MIB)]), 0);
    }

    #[test]
    fn a_host_rationing_connections_gets_equal_pieces_over_one_more() {
        let before_rate = cut(
            &host(4, None, None),
            20,
            MIB,
            true,
            (240 * MIB, 40 * MIB, 10 * MIB),
        );
        assert_eq!(before_rate.share, 56 * MIB, "280 MiB over 4 + 1");
        let cut = cut(
            &host(4, Some(2.0 * MIB as f64), None),
            20,
            MIB,
            true,
            (240 * MIB, 40 * MIB, 10 * MIB),
        );
        // A request a second, 2 MiB/s each: 240 MiB take 16 requests, the
        // first carrying 30 MiB.
        assert_eq!(cut.share, 30 * MIB);
        assert_eq!(
            cut.piece((0, 70 * MIB)),
            (70 * MIB).div_ceil(3),
            "equal pieces"
        );
        assert_eq!(cut.piece((0, MIB / 2)), MIB / 2);
        assert_eq!(cut.pick(&[(0, 12 * MIB), (20 * MIB, 90 * MIB)]), 1);
    }

    #[test]
    fn a_host_rationing_requests_gets_few_large_pieces() {
        let g = host(10, Some(2.0 * MIB as f64), Some(1000));
        let cut = cut(&g, 20, MIB, true, (240 * MIB, 40 * MIB, 10 * MIB));
        assert_eq!(cut.share, 30 * MIB);
        assert_eq!(
            cut.piece((0, 44 * MIB)),
            44 * MIB,
            "a rest under half a share goes too"
        );
        assert_eq!(cut.piece((0, 46 * MIB)), 30 * MIB);
        // Less than the longest running segment brings: all in one.
        let tail = super::cut(&g, 20, MIB, true, (9 * MIB, 40 * MIB, 10 * MIB));
        assert_eq!(tail.piece((0, 9 * MIB)), 9 * MIB);
        // Starts further apart: larger shares.
        let slow = super::cut(
            &host(10, Some(2.0 * MIB as f64), Some(3000)),
            20,
            MIB,
            true,
            (240 * MIB, 0, 0),
        );
        assert!(slow.share > cut.share, "{slow:?}");
    }

    #[test]
    fn a_blob_that_cannot_be_cut_goes_whole() {
        let cut = cut(&host(4, None, Some(1000)), 20, MIB, false, (80 * MIB, 0, 0));
        assert_eq!(cut.piece((0, 80 * MIB)), 80 * MIB);
    }

    #[test]
    fn takeover_shares_by_speed_across_hosts() {
        const M: u64 = 1 << 20;
        let slow = |left| Running {
            left,
            rate: Some(256.0 * 1024.0),
        };
        // The same host, or a rate unknown: half, with two chunks left.
        assert_eq!(takeover(slow(4 * M), Some(1e6), true, M), Some(2 * M));
        assert_eq!(takeover(slow(M), Some(1e6), true, M), None);
        let unknown = Running {
            left: 4 * M,
            rate: None,
        };
        assert_eq!(takeover(unknown, Some(1e6), false, M), Some(2 * M));
        // A host sixteen times as fast takes 16/17 of a slow mirror's
        // tail, even under two chunks: both end together.
        let fast = Some(4.0 * 1024.0 * 1024.0);
        assert_eq!(takeover(slow(M + M / 2), fast, false, M), Some(1_480_342));
        // Nothing worth a request: the slow host ends it within half a
        // second anyway.
        assert_eq!(takeover(slow(100 << 10), fast, false, M), None);
        // A slower host than the segment's takes the smaller part.
        let back = Running {
            left: 17 * M,
            rate: fast,
        };
        assert_eq!(takeover(back, Some(256.0 * 1024.0), false, M), Some(M));
        // Eta: by rate, and by bytes when none is known.
        assert!(slow(2 * M).eta(fast) > back.eta(fast));
        assert_eq!(unknown.eta(None), (4 * M) as f64);
    }
}
