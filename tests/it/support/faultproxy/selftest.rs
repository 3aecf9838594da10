//! Self-tests of the fault proxy (`mod.rs`) against the real
//! registry, with ureq and raw sockets: plain relaying, Range, Location
//! rewriting, each scripted fault, one-shot rules, stalls, hang-ups,
//! pacing and uploads cut mid-body. If these pass and a retry/resume test fails, the fault is in
//! pulltar, not in the proxy.

use crate::support::faultproxy::{header, read_head, Fault, FaultProxy, Rule};
use crate::support::images::{push_simple, Flavor, DOCKER_MANIFEST};
use crate::support::registry::{agent, Registry};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Status, headers and body (or the error reading it) of one GET.
type Got = (u16, Vec<(String, String)>, Result<Vec<u8>, String>);

fn get(url: &str, range: Option<&str>) -> Got {
    let mut req = agent().get(url).header("Accept", DOCKER_MANIFEST);
    if let Some(r) = range {
        req = req.header("Range", r);
    }
    let mut resp = req.call().expect("request through the proxy");
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = resp.body_mut().read_to_vec().map_err(|e| e.to_string());
    (resp.status().as_u16(), headers, body)
}

#[test]
fn proxy_relays_ranges_and_rewrites_location() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let px = FaultProxy::start(reg.port);
    let (st, _, body) = get(&px.url("/v2/team/app/manifests/v1"), None);
    assert_eq!((st, body.unwrap()), (200, img.manifest.clone()));
    let blob = &img.layers[0];
    let url = px.url(&format!("/v2/team/app/blobs/{}", blob.digest));
    let (st, h, body) = get(&url, Some("bytes=10-99"));
    assert_eq!(st, 206);
    let want = format!("bytes 10-99/{}", blob.blob.len());
    assert_eq!(header(&h, "content-range"), Some(want.as_str()));
    assert_eq!(body.unwrap(), &blob.blob[10..100]);
    let resp = agent()
        .post(px.url("/v2/team/app/blobs/uploads/"))
        .send(&[][..])
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let loc = resp.headers().get("location").unwrap().to_str().unwrap();
    assert!(
        loc.starts_with(&px.url("/v2/")),
        "Location not rewritten: {loc}"
    );
    let log = px.settled();
    assert_eq!(log.len(), 3, "{}", px.dump());
    assert_eq!(log[1].range.as_deref(), Some("bytes=10-99"));
    assert_eq!((log[1].status, log[1].body_bytes), (206, 90));
    assert!(log.iter().all(|r| r.end.is_some() && r.fault.is_none()));
    let port = px.port();
    drop(px);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still listening after drop"
    );
}

#[test]
fn proxy_faults_fire_as_scripted_and_only_when_they_can() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let px = FaultProxy::start(reg.port);
    let (l0, l1) = (&img.layers[0], &img.layers[1]);
    let u0 = px.url(&format!("/v2/team/app/blobs/{}", l0.digest));
    let u1 = px.url(&format!("/v2/team/app/blobs/{}", l1.digest));
    // A cut past the end of a body cannot fire and is not used up.
    px.add(Rule::new(&img.config_digest, Fault::CutAfter(1 << 30)).times(1));
    px.add(Rule::new(&l0.digest, Fault::CutAfter(1000)).times(1));
    px.add(Rule::new(&l1.digest, Fault::IgnoreRange).ranged());
    px.add(
        Rule::new(
            &l1.digest,
            Fault::Status(429, vec![("Retry-After".into(), "1".into())]),
        )
        .unranged()
        .times(1),
    );
    px.add(Rule::new(&l0.digest, Fault::BadContentRange).ranged());
    let curl = px.url(&format!("/v2/team/app/blobs/{}", img.config_digest));
    assert_eq!(get(&curl, None).2.unwrap(), img.config);
    assert_eq!(px.rules_left()[0], Some(1));
    let (st, _, body) = get(&u0, None);
    assert_eq!(st, 200);
    assert!(
        body.map(|b| b.len() < l0.blob.len()).unwrap_or(true),
        "cut body read whole"
    );
    assert_eq!(
        get(&u0, None).2.unwrap(),
        l0.blob,
        "one-shot cut fired twice"
    );
    let (st, _, body) = get(&u1, Some("bytes=0-9"));
    assert_eq!((st, body.unwrap()), (200, l1.blob.clone()));
    let (st, h, _) = get(&u1, None);
    assert_eq!((st, header(&h, "retry-after")), (429, Some("1")));
    assert_eq!(get(&u1, None).2.unwrap(), l1.blob);
    let (st, h, _) = get(&u0, Some("bytes=100-199"));
    let want = format!("bytes 99-198/{}", l0.blob.len());
    assert_eq!(
        (st, header(&h, "content-range")),
        (206, Some(want.as_str()))
    );
    let faults: Vec<_> = px
        .settled()
        .iter()
        .map(|r| (r.fault, r.status, r.body_bytes))
        .collect();
    let (n0, n1) = (l0.blob.len() as u64, l1.blob.len() as u64);
    assert_eq!(
        faults,
        vec![
            (None, 200, img.config.len() as u64),
            (Some("cut"), 200, 1000),
            (None, 200, n0),
            (Some("ignore-range"), 200, n1),
            (Some("status"), 429, 0),
            (None, 200, n1),
            (Some("bad-content-range"), 206, 100),
        ],
        "{}",
        px.dump()
    );
    assert_eq!(px.body_bytes(&l0.digest), 1000 + n0 + 100);
}

/// Raw GET; returns (bytes after the head, time to EOF).
fn raw_get(px: &FaultProxy, path: &str, hang_up_after: Option<usize>) -> (usize, Duration) {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", px.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (_, mut body) = read_head(&mut s).expect("response head");
    let mut buf = [0u8; 4096];
    while hang_up_after.is_none_or(|n| body.len() < n) {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read: {e}"),
        }
    }
    (body.len(), t0.elapsed())
}

#[test]
fn proxy_stalls_notices_hangups_and_paces() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let px = FaultProxy::start(reg.port);
    let path = format!("/v2/team/app/blobs/{}", img.layers[0].digest);
    px.add(Rule::new(&path, Fault::StallAfter(100, Duration::from_millis(1500))).times(1));
    px.add(Rule::new(&path, Fault::StallAfter(100, Duration::from_secs(30))).times(1));
    let (n, took) = raw_get(&px, &path, None);
    assert_eq!(n, 100);
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(10),
        "{took:?}"
    );
    let (n, _) = raw_get(&px, &path, Some(100));
    assert_eq!(n, 100);
    let gone = crate::support::util::poll(100, Duration::from_millis(50), || {
        let r = px.requests().pop()?;
        (r.end.is_some() && r.client_gone).then_some(r)
    });
    let r = gone.unwrap_or_else(|| panic!("hang-up during a stall not seen:\n{}", px.dump()));
    assert!(
        r.end.unwrap() - r.start < Duration::from_secs(10),
        "{}",
        px.dump()
    );
    px.set_rate(128 * 1024);
    let (n, took) = raw_get(&px, &path, None);
    assert_eq!(n, img.layers[0].blob.len());
    let floor = Duration::from_secs_f64(n as f64 / (128.0 * 1024.0) * 0.9);
    assert!(took >= floor, "{n} bytes at 128 KiB/s took only {took:?}");
}

#[test]
fn proxy_flips_a_byte_sends_whole_bodies_and_hangs_up() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let px = FaultProxy::start(reg.port);
    let blob = &img.layers[0];
    let url = px.url(&format!("/v2/team/app/blobs/{}", blob.digest));
    // Past the end of a 100-byte range: cannot fire there, so not used up.
    px.add(Rule::new(&blob.digest, Fault::FlipByte(5000)).times(1));
    px.add(Rule::new(&blob.digest, Fault::WholeBody).times(2));
    px.add(Rule::new(&blob.digest, Fault::Hangup).times(1));
    let (st, _, body) = get(&url, Some("bytes=0-99"));
    assert_eq!((st, body.unwrap()), (206, blob.blob[..100].to_vec()));
    let (st, _, body) = get(&url, None);
    let mut want = blob.blob.clone();
    want[5000] ^= 0xff;
    assert_eq!(st, 200);
    assert!(body.unwrap() == want, "not exactly byte 5000 inverted");
    for range in [Some("bytes=10-19"), None] {
        let (st, _, body) = get(&url, range);
        assert_eq!(st, 200, "{range:?}");
        assert!(body.unwrap() == blob.blob, "whole body for {range:?}");
    }
    let hung = agent().get(&url).call();
    assert!(hung.is_err(), "an answer after a hang-up: {hung:?}");
    assert_eq!(get(&url, None).2.unwrap(), blob.blob, "rules used up");
    let faults: Vec<_> = px
        .settled()
        .iter()
        .map(|r| (r.fault, r.status, r.range.is_some()))
        .collect();
    assert_eq!(
        faults,
        vec![
            (None, 206, true),
            (Some("flip"), 200, false),
            (Some("whole-body"), 200, true),
            (Some("whole-body"), 200, false),
            (Some("hangup"), 0, false),
            (None, 200, false),
        ],
        "{}",
        px.dump()
    );
}

#[test]
fn proxy_rations_connections_and_requests() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let px = FaultProxy::start(reg.port);
    let path = format!("/v2/team/app/blobs/{}", img.layers[0].digest);
    // Two requests in progress (held by a stall), a third refused at once.
    let stall = Fault::StallAfter(100, Duration::from_secs(3));
    px.add(Rule::new(&path, stall).times(2));
    px.set_ration(crate::support::faultproxy::Ration {
        conns: Some(2),
        per_minute: None,
    });
    let held: Vec<_> = (0..2)
        .map(|_| {
            let px_port = px.port();
            let path = path.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", px_port)).unwrap();
                write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink);
            })
        })
        .collect();
    let started = crate::support::util::poll(100, Duration::from_millis(20), || {
        (px.requests().iter().filter(|r| r.body_bytes == 100).count() == 2).then_some(())
    });
    assert!(started.is_some(), "stalls never began:\n{}", px.dump());
    let (st, h, _) = get(&px.url(&path), None);
    assert_eq!((st, header(&h, "retry-after")), (429, None));
    for t in held {
        t.join().unwrap();
    }
    assert_eq!(get(&px.url(&path), None).0, 200, "a slot is free again");
    // Three requests a minute with a burst of one: two pass, then 429.
    px.set_ration(crate::support::faultproxy::Ration {
        conns: None,
        per_minute: Some((3, 1)),
    });
    let from = px.log_len();
    let statuses: Vec<u16> = (0..3).map(|_| get(&px.url(&path), None).0).collect();
    assert_eq!(statuses, vec![200, 200, 429], "{}", px.dump_since(from));
    px.clear();
    assert_eq!(get(&px.url(&path), None).0, 200, "clear() ends the ration");
    let refused: Vec<_> = px.settled().iter().filter_map(|r| r.fault).collect();
    assert_eq!(
        refused,
        vec!["stall", "stall", "conn-ration", "req-ration"],
        "{}",
        px.dump()
    );
}

/// A reset in the middle of an upload: the registry gets the head and the
/// body's first bytes, the client no answer; a body short of the cut goes
/// through whole, and the rule is not used up by it.
#[test]
fn proxy_cuts_an_upload_in_the_middle_of_its_body() {
    let reg = Registry::start();
    let px = FaultProxy::start(reg.port);
    let cut = Fault::CutUpload(1000);
    px.add(Rule::new("/blobs/uploads/", cut).method("PATCH").times(1));
    let open = || {
        let post = agent().post(px.url("/v2/team/up/blobs/uploads/"));
        let resp = post.send_empty().expect("POST through the proxy");
        assert_eq!(resp.status().as_u16(), 202);
        let at = resp.headers().get("location").expect("a Location");
        let at = at.to_str().unwrap().to_string();
        if at.starts_with('/') {
            px.url(&at)
        } else {
            at
        }
    };
    let body = vec![7u8; 64 * 1024];
    let short = agent().patch(open()).send(&body[..500]);
    assert_eq!(short.expect("a short PATCH").status().as_u16(), 202);
    let cut = agent().patch(open()).send(&body[..]);
    assert!(cut.is_err(), "an answer to a cut upload: {cut:?}");
    let patches: Vec<_> = px
        .settled()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| (r.fault, r.status, r.body_in))
        .collect();
    assert_eq!(
        patches,
        vec![(None, 202, 500), (Some("cut-upload"), 0, 1000)],
        "{}",
        px.dump()
    );
}
