//! The unit tests of `allowance.rs`.

use super::*;

const MS: Duration = Duration::from_millis(1);

/// `n` requests started at `now`.
fn started(r: &mut Allowance, n: usize, now: Instant) {
    for _ in 0..n {
        r.start(now);
    }
}

fn refuse(r: &mut Allowance, now: Instant) {
    r.step(Ask::Asking, Ask::Refused, now);
    r.refused(None, Some(MS), now);
    r.end(Ask::Refused, now);
}

fn serve(r: &mut Allowance, now: Instant) {
    r.step(Ask::Asking, Ask::Served, now);
    r.answered(true, now);
}

#[test]
fn a_wave_of_refusals_leaves_the_connections_served() {
    let t = Instant::now();
    let mut r = Allowance::new(20);
    started(&mut r, 20, t);
    // The refusals come before the answers, as nginx sends them.
    for _ in 0..16 {
        refuse(&mut r, t + MS);
    }
    for _ in 0..4 {
        serve(&mut r, t + 2 * MS);
    }
    assert_eq!((r.conns(), r.gap()), (4, Duration::ZERO));
    assert_eq!(r.blocked(t + 3 * MS), Some(None), "all four in use");
    assert!(r.wary(t + 3 * MS));
}

#[test]
fn a_calm_second_brings_one_more_connection_and_a_refusal_takes_it_back() {
    let t = Instant::now();
    let mut r = Allowance::new(20);
    started(&mut r, 5, t);
    refuse(&mut r, t);
    for _ in 0..4 {
        serve(&mut r, t);
    }
    assert_eq!(r.conns(), 4);
    r.received(1 << 20, t + 500 * MS);
    assert_eq!(r.conns(), 4, "not calm yet");
    r.received(1 << 20, t + 1001 * MS);
    assert_eq!(r.conns(), 5);
    let later = t + 2000 * MS;
    r.start(later);
    refuse(&mut r, later);
    assert_eq!((r.conns(), r.gap()), (4, Duration::ZERO));
}

#[test]
fn a_refusal_with_fewer_in_progress_spaces_the_requests() {
    let t = Instant::now();
    let mut r = Allowance::new(20);
    started(&mut r, 10, t);
    for _ in 0..10 {
        serve(&mut r, t);
    }
    for _ in 0..6 {
        r.end(Ask::Served, t + 1000 * MS);
    }
    let at = t + 1100 * MS;
    r.start(at);
    r.step(Ask::Asking, Ask::Refused, at);
    r.refused(None, Some(900 * MS), at);
    r.end(Ask::Refused, at);
    assert_eq!(r.conns(), 20, "connections are not what it rations");
    assert_eq!(
        r.gap(),
        1125 * MS,
        "a quarter more than the spacing refused"
    );
    assert!(r.blocked(at + 1000 * MS).is_some());
    assert_eq!(r.blocked(at + 1125 * MS), None);
    // Served requests bring the spacing down to its floor, not below;
    // ten of them bring the floor down a twentieth.
    let mut now = at;
    for k in 1..10 {
        now += r.gap();
        r.start(now);
        serve(&mut r, now);
        assert!(r.gap() >= 1100 * MS, "{k}: {:?}", r.gap());
    }
    now += r.gap();
    r.start(now);
    serve(&mut r, now);
    // 1125 ms, faded 0.2 % a second for 11 s, less a twentieth.
    assert!((1040 * MS..1050 * MS).contains(&r.gap()), "{:?}", r.gap());
}

#[test]
fn a_host_refusing_everything_is_asked_again_ever_later() {
    let t = Instant::now();
    let mut r = Allowance::new(4);
    let mut now = t;
    let mut waits = Vec::new();
    for _ in 0..7 {
        r.start(now);
        refuse(&mut r, now);
        let at = r.next_start().unwrap();
        waits.push((at - now).as_millis());
        now = at;
    }
    assert_eq!(waits, [250, 500, 1000, 2000, 4000, 8000, 8000]);
    assert_eq!(r.refusing_for(now), Some(23_750 * MS));
    r.start(now);
    serve(&mut r, now);
    assert_eq!(r.refusing_for(now), None, "it answered");
}

#[test]
fn retry_after_holds_every_request() {
    let t = Instant::now();
    let mut r = Allowance::new(8);
    r.start(t);
    r.step(Ask::Asking, Ask::Refused, t);
    r.refused(Some(Duration::from_secs(2)), None, t);
    r.end(Ask::Refused, t);
    assert_eq!(r.blocked(t + 1999 * MS), Some(Some(MS)));
    assert_eq!(r.blocked(t + 2000 * MS), None);
}

#[test]
fn one_request_at_a_time_waits_for_its_answer_while_rationed() {
    let t = Instant::now();
    let mut r = Allowance::new(8);
    assert_eq!(r.blocked(t), None);
    started(&mut r, 3, t);
    assert_eq!(r.blocked(t), None, "nothing rationed: no waiting");
    serve(&mut r, t);
    serve(&mut r, t);
    refuse(&mut r, t);
    r.end(Ask::Served, t);
    r.end(Ask::Served, t);
    assert_eq!(r.conns(), 2);
    let later = t + Duration::from_secs(1);
    r.start(later);
    assert_eq!(r.blocked(later), Some(Some(20 * MS)));
    serve(&mut r, later);
    assert_eq!(r.blocked(later), None);
}
