//! When to try a failed request again, and after how long: a pure policy.
//!
//! [`Policy::next_delay`] looks at how many attempts in a row have failed
//! *without progress* and at the server's `Retry-After`, and returns the
//! wait before the next attempt, or `None` to give up. Callers reset the
//! count whenever bytes arrive, so a long pull on a flaky link keeps going
//! while data flows. Which errors are worth retrying is
//! [`crate::error::Error::is_retryable`]. The policy is a pure function;
//! [`run`] is the one loop that applies it, sleeping between attempts (a
//! registry client's requests, `registry/client/request.rs`, and an
//! upload's steps).
//! A 429 is the host's budget's to handle ([`crate::registry::permits`]),
//! within the policy's [`Policy::refusal_patience`].

use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::ui::{interrupt, progress_report};

/// Exponential backoff with jitter, bounded in attempts and delay.
#[derive(Clone, Debug)]
pub struct Policy {
    /// How many consecutive failures without progress are tolerated.
    pub max_failures: u32,
    /// The first delay.
    pub base: Duration,
    /// The longest delay, and the cap on `Retry-After`.
    pub cap: Duration,
    /// The retries a host refusing everything (429) is granted, 12 s
    /// each ([`Policy::refusal_patience`]): `--retries`, kept when a
    /// mirror list tries each request once on each mirror.
    pub refusals: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_failures: 5,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            refusals: 5,
        }
    }
}

impl Policy {
    /// The wait before attempt `failures + 1`, after `failures` (≥ 1)
    /// consecutive failures; `None` when it is time to give up.
    /// `jitter` is any number in `0..1000`, spread over the last quarter of
    /// the delay. `Retry-After` wins, capped; otherwise
    /// `PULLTAR_RETRY_DELAY_MS` fixes the delay, for tests.
    pub fn next_delay(
        &self,
        failures: u32,
        retry_after: Option<Duration>,
        jitter: u64,
    ) -> Option<Duration> {
        if failures == 0 || failures > self.max_failures {
            return None;
        }
        if let Some(wait) = retry_after {
            return Some(wait.min(self.cap));
        }
        if let Some(fixed) = fixed_delay_from_env() {
            return Some(fixed);
        }
        let exp = self
            .base
            .saturating_mul(1u32 << (failures - 1).min(16))
            .min(self.cap);
        let spread = exp / 4;
        let jittered = exp - spread + spread.mul_f64((jitter % 1000) as f64 / 1000.0);
        Some(jittered)
    }
}

impl Policy {
    /// How long a host may refuse every request (429) before the pull
    /// gives up on it: 12 s for each retry allowed (60 s by default, none
    /// with `--retries 0`). Refusals while the host serves other requests
    /// are not failures (see `permits.rs`).
    pub fn refusal_patience(&self) -> Duration {
        Duration::from_secs(12).saturating_mul(self.refusals)
    }

    /// This policy with no retry of a failed request (the next mirror
    /// is asked instead), refusals waited out as before.
    pub fn once(&self) -> Policy {
        Policy {
            max_failures: 0,
            ..self.clone()
        }
    }
}

/// Runs `attempt` until it succeeds, fails for good, or `policy` gives up:
/// the one retry loop. A failure `retryable` accepts
/// ([`Error::is_retryable`] for a plain request) is tried again; then
/// `progressed` says whether the attempt brought anything (which resets
/// the count of failures in a row); the wait is logged under `what` and
/// ends early on a signal or `abort`.
pub fn run<T>(
    policy: &Policy,
    what: &str,
    abort: Option<&AtomicBool>,
    retryable: impl Fn(&Error) -> bool,
    mut progressed: impl FnMut() -> bool,
    mut attempt: impl FnMut() -> Result<T>,
) -> Result<T> {
    let mut failures = 0u32;
    loop {
        match attempt() {
            Err(e) if retryable(&e) => {
                failures = if progressed() { 1 } else { failures + 1 };
                let Some(wait) = policy.next_delay(failures, e.retry_after(), jitter()) else {
                    return Err(e);
                };
                progress_report::retrying(what, &e.short_cause(), wait);
                interrupt::sleep(wait, abort)?;
            }
            other => return other,
        }
    }
}

fn fixed_delay_from_env() -> Option<Duration> {
    std::env::var("PULLTAR_RETRY_DELAY_MS")
        .ok()?
        .parse()
        .ok()
        .map(Duration::from_millis)
}

/// A number in `0..1000` that differs from call to call, for jitter.
pub fn jitter() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    u64::from(nanos) % 1000
}

/// Parses `Retry-After`: a number of seconds or an HTTP date (IMF-fixdate,
/// `Sun, 06 Nov 1994 08:49:37 GMT`), relative to `now`. A date in the past
/// means no wait.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn parse_http_date(s: &str) -> Option<SystemTime> {
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" || !parts[0].ends_with(',') {
        return None;
    }
    let day: u64 = parts[1].parse().ok()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == parts[2])? as u64 + 1;
    let year: u64 = parts[3].parse().ok()?;
    let hms: Vec<u64> = parts[4]
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if hms.len() != 3 || hms[0] > 23 || hms[1] > 59 || hms[2] > 60 || !(1..=31).contains(&day) {
        return None;
    }
    if year < 1970 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2];
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm), for years from 1970.
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_tries_once_and_keeps_the_patience_for_refusals() {
        let p = Policy {
            refusals: 3,
            ..Policy::default()
        };
        let once = p.once();
        assert_eq!(once.next_delay(1, None, 0), None);
        assert_eq!(once.refusal_patience(), Duration::from_secs(36));
        assert_eq!(once.refusal_patience(), p.refusal_patience());
    }

    #[test]
    fn backoff_grows_and_stops() {
        let p = Policy {
            max_failures: 4,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(300),
            refusals: 4,
        };
        if fixed_delay_from_env().is_some() {
            return;
        }
        assert_eq!(p.next_delay(0, None, 0), None);
        assert_eq!(p.next_delay(1, None, 0), Some(Duration::from_millis(75)));
        assert_eq!(p.next_delay(2, None, 0), Some(Duration::from_millis(150)));
        assert_eq!(
            p.next_delay(3, None, 999).unwrap(),
            Duration::from_micros(299_925)
        );
        assert_eq!(p.next_delay(4, None, 0), Some(Duration::from_millis(225)));
        assert_eq!(p.next_delay(5, None, 0), None);
    }

    #[test]
    fn retry_after_is_capped() {
        let p = Policy::default();
        assert_eq!(
            p.next_delay(1, Some(Duration::from_secs(2)), 0),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            p.next_delay(1, Some(Duration::from_secs(999)), 0),
            Some(p.cap)
        );
    }

    #[test]
    fn retry_after_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06 08:49:37
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in [
            "",
            "soon",
            "-1",
            "Sun, 06 Nov 1994 25:00:00 GMT",
            "06 Nov 1994",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 11, 23), 20_780);
    }
}
