//! The fronts themselves, without pulltar: if these pass and a pull
//! test fails, the fault is not in nginx's configuration.

use crate::support::nginx::conf::unix_now;
use crate::support::nginx::{
    blob_file, cdn_path, max_in_flight, ranges_cover, sign_link, Access, Nginx,
};
use crate::support::registry::{agent, Registry};
use crate::support::token_server::TokenServer;
use crate::support::util::{digest_of, Rng};
use std::time::{Duration, Instant};

fn get(url: &str, headers: &[(&str, &str)]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut req = agent().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let hdrs = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap();
    (status, hdrs, body)
}

fn header<'a>(hdrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    hdrs.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn throttle_front_limits_rate_and_passes_range() {
    let reg = Registry::start();
    let data = Rng::new().bytes(2 << 20);
    let digest = reg.push_blob("t/blob", &data);
    let front = Nginx::throttle(&reg, Some("1m"));
    let url = front.url(&format!("/v2/t/blob/blobs/{digest}"));

    let t0 = Instant::now();
    let (status, _, body) = get(&url, &[]);
    let took = t0.elapsed();
    assert_eq!(status, 200);
    assert!(body == data, "full body differs");
    assert!(
        took >= Duration::from_millis(1500),
        "2 MiB at limit_rate 1m took only {took:?}: the throttle is not applied"
    );

    let (status, hdrs, body) = get(&url, &[("Range", "bytes=100-1123")]);
    assert_eq!(status, 206, "Range must pass through");
    assert_eq!(
        header(&hdrs, "content-range"),
        Some(format!("bytes 100-1123/{}", data.len()).as_str())
    );
    assert!(body == data[100..1124], "ranged body differs");

    // Two 1 MiB halves on two connections at once: ~1 s, overlapping.
    let t0 = Instant::now();
    let halves: Vec<_> = ["bytes=0-1048575", "bytes=1048576-2097151"]
        .into_iter()
        .map(|r| {
            let url = url.clone();
            std::thread::spawn(move || get(&url, &[("Range", r)]))
        })
        .collect();
    for h in halves {
        assert_eq!(h.join().unwrap().0, 206);
    }
    let took = t0.elapsed();
    assert!(
        took < Duration::from_millis(1900),
        "two parallel halves took {took:?}: is the limit per connection?"
    );

    let log = front.settled_log("front", 4);
    let gets: Vec<&Access> = log.iter().filter(|a| a.is_blob_get(&digest)).collect();
    assert_eq!(gets.len(), 4, "{}", front.describe("front"));
    assert_eq!(gets[0].range, None);
    assert_eq!(gets[1].range_bounds(), Some((100, Some(1123))));
    assert!(gets[0].secs >= 1.5, "request_time logged: {:?}", gets[0]);
    assert_eq!(max_in_flight(&gets[..2]), 1, "sequential requests");
    assert_eq!(max_in_flight(&gets[2..]), 2, "parallel requests");
    assert!(ranges_cover(&gets[2..], data.len() as u64));
    assert!(!ranges_cover(&gets[1..2], data.len() as u64));
}

#[test]
fn redirect_front_checks_credentials_signs_links_and_refuses_authorization() {
    let tokens = TokenServer::start();
    let reg = Registry::start_with(
        Some(tokens.registry_auth()),
        Some(tokens.issuer.push_auth()),
    );
    let data = Rng::new().bytes(300 * 1024);
    let digest = reg.push_blob("public/app", &data);
    assert_eq!(digest, digest_of(&data));
    assert!(
        blob_file(&reg, &digest).is_file(),
        "registry storage layout"
    );
    let front = Nginx::redirect(&reg, std::slice::from_ref(&digest), 600);
    let blob_url = front.url(&format!("/v2/public/app/blobs/{digest}"));

    // No credentials: the registry's 401 and its challenge, no redirect.
    let (status, hdrs, _) = get(&blob_url, &[]);
    assert_eq!(status, 401, "{}", front.describe("front"));
    let challenge = header(&hdrs, "www-authenticate").unwrap_or("");
    assert!(
        challenge.starts_with(&format!(
            "Bearer realm=\"http://127.0.0.1:{}/token\"",
            tokens.port
        )),
        "challenge passed through: {challenge:?}"
    );
    // Everything else is the registry's own answer.
    assert_eq!(get(&front.url("/v2/"), &[]).0, 401);

    let token_url = format!(
        "http://127.0.0.1:{}/token?service=x&scope=repository:public/app:pull",
        tokens.port
    );
    let (_, _, body) = get(&token_url, &[]);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let bearer = format!("Bearer {}", v["token"].as_str().unwrap());

    let (status, hdrs, _) = get(&blob_url, &[("Authorization", &bearer)]);
    assert_eq!(status, 307, "{}", front.error_log());
    let location = header(&hdrs, "location").unwrap().to_string();
    let want = front.cdn_url(&format!("{}?md5=", cdn_path(&digest)));
    assert!(location.starts_with(&want), "{location}");

    // S3: a second auth mechanism is refused.
    let (status, _, body) = get(
        &location,
        &[("Authorization", &bearer), ("Range", "bytes=0-9")],
    );
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("Only one auth mechanism allowed"));
    let (status, _, body) = get(&location, &[("Range", "bytes=10-19")]);
    assert_eq!(status, 206);
    assert!(body == data[10..20]);
    let (status, _, body) = get(&location, &[]);
    assert_eq!(status, 200);
    assert!(body == data);

    let path = cdn_path(&digest);
    let tampered = location.replace("md5=", "md5=x");
    assert_eq!(get(&tampered, &[]).0, 403, "bad signature");
    let expired = front.cdn_url(&format!("{path}?{}", sign_link(&path, unix_now() - 5)));
    assert_eq!(get(&expired, &[]).0, 403, "expired link");
    let fresh = front.cdn_url(&format!("{path}?{}", sign_link(&path, unix_now() + 60)));
    assert_eq!(get(&fresh, &[]).0, 200, "a freshly signed link");

    let cdn = front.settled_log("cdn", 6);
    let summary: Vec<(u16, bool, Option<String>)> = cdn
        .iter()
        .map(|a| (a.status, a.auth, a.range.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (400, true, Some("bytes=0-9".into())),
            (206, false, Some("bytes=10-19".into())),
            (200, false, None),
            (403, false, None),
            (403, false, None),
            (200, false, None),
        ],
        "{}",
        front.describe("cdn")
    );
    assert!(
        !front
            .access_text("cdn")
            .contains(bearer.trim_start_matches("Bearer ")),
        "the access log must not hold the token"
    );
}

#[test]
fn rationed_front_refuses_beyond_its_connections_and_requests() {
    use crate::support::nginx::conf::Rations;
    let reg = Registry::start();
    let data = Rng::new().bytes(1 << 20);
    let digest = reg.push_blob("t/blob", &data);
    // Two requests in progress (1 MiB at 256 KiB/s: 4 s each), a third
    // refused at once with 429 and no Retry-After.
    let rations = Rations {
        conns: Some(2),
        per_minute: None,
        rate: "256k",
    };
    let front = Nginx::rationed(&reg, &rations);
    let url = front.url(&format!("/v2/t/blob/blobs/{digest}"));
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || get(&url, &[]).0)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let (status, hdrs, _) = get(&url, &[("Range", "bytes=0-9")]);
    assert_eq!(
        (status, header(&hdrs, "retry-after")),
        (429, None),
        "{}",
        front.describe("front")
    );
    for t in slow {
        assert_eq!(t.join().unwrap(), 200);
    }
    assert_eq!(
        get(&url, &[("Range", "bytes=0-9")]).0,
        206,
        "a slot is free"
    );
    // 60 requests a minute with a burst of 2: three at once pass, the
    // fourth is refused.
    let rations = Rations {
        conns: None,
        per_minute: Some((60, 2)),
        rate: "0",
    };
    let front = Nginx::rationed(&reg, &rations);
    let url = front.url(&format!("/v2/t/blob/blobs/{digest}"));
    let got: Vec<u16> = (0..4)
        .map(|_| get(&url, &[("Range", "bytes=0-9")]).0)
        .collect();
    assert_eq!(got, vec![206, 206, 206, 429], "{}", front.describe("front"));
}
