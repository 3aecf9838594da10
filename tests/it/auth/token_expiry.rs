//! Short-lived bearer tokens (see `Issuer::set_lifetime`): the registry
//! really refuses a 3-second token after 3 s, so a pull that lasts a minute
//! must keep refreshing, per request, before `expires_in` runs out or on
//! the 401.

use crate::support::images::{
    image_of_layers, push_image, raw_layer, Flavor, AMD64, DOCKER_LAYER_TAR,
};
use crate::support::loaders::verify_everywhere;
use crate::support::nginx::{Access, Nginx};
use crate::support::registry::{agent, Registry};
use crate::support::token_server::TokenServer;
use crate::support::util::pull_ok;
use crate::support::util::{Rng, TempDir};
use std::time::{Duration, Instant};

const LIFETIME: u64 = 3;

fn short_token_registry() -> (TokenServer, Registry) {
    let tokens = TokenServer::start();
    tokens.issuer.set_lifetime(LIFETIME);
    let reg = Registry::start_with(
        Some(tokens.registry_auth()),
        Some(tokens.issuer.push_auth()),
    );
    (tokens, reg)
}

/// The harness claim the pull test rests on: a token is accepted when
/// fresh and refused `LIFETIME` seconds later with 401 invalid_token,
/// while the token server says `expires_in: LIFETIME`.
#[test]
fn short_tokens_really_expire() {
    let (tokens, reg) = short_token_registry();
    let img = crate::support::images::push_simple(&reg, "public/app", "v1", Flavor::Docker);
    let url = format!(
        "http://127.0.0.1:{}/token?service=x&scope=repository:public/app:pull",
        tokens.port
    );
    let body = agent()
        .get(url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["expires_in"], LIFETIME);
    let bearer = format!("Bearer {}", v["token"].as_str().unwrap());
    let blob = reg.url(&format!("/v2/public/app/blobs/{}", img.config_digest));
    let status = |bearer: &str| {
        let mut r = agent()
            .get(&blob)
            .header("Authorization", bearer)
            .call()
            .unwrap();
        let challenge = r
            .headers()
            .get("www-authenticate")
            .map(|h| h.to_str().unwrap().to_string())
            .unwrap_or_default();
        let _ = r.body_mut().read_to_vec();
        (r.status().as_u16(), challenge)
    };
    assert_eq!(status(&bearer).0, 200, "a fresh token");
    std::thread::sleep(Duration::from_millis(LIFETIME * 1000 + 1500));
    let (code, challenge) = status(&bearer);
    assert_eq!(code, 401, "a token older than its lifetime");
    assert!(
        challenge.contains("invalid_token"),
        "challenge: {challenge}"
    );
}

/// A lower bound on the tokens a client needs for requests that started at
/// `starts` (seconds) when a token lasts at most `window` seconds: a token
/// fetched before a request at `s` is dead by `s + window`.
fn tokens_needed(mut starts: Vec<f64>, window: f64) -> usize {
    starts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mut needed = 0;
    let mut covered_until = f64::NEG_INFINITY;
    for s in starts {
        if s >= covered_until {
            needed += 1;
            covered_until = s + window;
        }
    }
    needed
}

#[test]
fn short_tokens_long_pull() {
    let (tokens, reg) = short_token_registry();
    // About 59 MiB in 40 layers of 1 to 1.95 MiB, pulled by 4 connections
    // at 256 KiB/s each on average: about a minute, with a new request
    // starting every second or two throughout, each needing a live token.
    // The rate varies per request so the threads drift apart: equal
    // layers at equal rates finish in lock-step (pulltar takes the largest
    // first), and one token per wave of 4 would do.
    let mut rng = Rng::new();
    let layers = (0..40)
        .map(|i| {
            let twentieths = (i * 7) % 20; // 0..20, each twice
            raw_layer(
                &mut rng,
                DOCKER_LAYER_TAR,
                (1 << 20) + (twentieths << 20) / 20,
            )
        })
        .collect();
    let img = image_of_layers(&mut rng, Flavor::Docker, AMD64, layers);
    push_image(&reg, "public/big", Some("v1"), &img);
    let front = Nginx::throttle_varied(&reg, &["160k", "224k", "288k", "352k"]);
    let work = TempDir::new("shorttok");
    let reference = format!("{}/public/big:v1", front.host());

    let before = tokens.issued_count();
    let t0 = Instant::now();
    let tar = pull_ok(&work, &reference, &["-t", "4", "--chunk-size", "1M"]);
    let took = t0.elapsed();
    let issued = tokens.issued_count() - before;

    let log = front.settled_log("front", 42);
    // Requests that carried a token: refused ones and let-through ones.
    let with_token: Vec<&Access> = log.iter().filter(|a| a.auth).collect();
    let refused = with_token.iter().filter(|a| a.status == 401).count();
    let starts: Vec<f64> = with_token
        .iter()
        .filter(|a| a.status != 401)
        .map(|a| a.start())
        .collect();
    // Tokens live at most LIFETIME + 1 s at the registry (see
    // `set_lifetime`).
    let needed = tokens_needed(starts, LIFETIME as f64 + 1.0);
    let summary = format!(
        "pull took {took:?}; {issued} tokens issued; front saw {} requests, {} with a \
         token, {refused} of those refused (401); the accepted ones needed at least \
         {needed} tokens",
        log.len(),
        with_token.len()
    );
    assert!(
        took >= Duration::from_secs(8 * LIFETIME),
        "the pull was too short to outlive tokens: {summary}"
    );
    assert!(
        needed >= 10,
        "harness: requests did not spread over enough token lifetimes: {summary}\n{}",
        front.describe("front")
    );
    assert!(
        issued >= needed,
        "fewer tokens than the requests' start times need: {summary}"
    );
    // Refreshing before `expires_in` runs out, not only on 401: a client
    // that waits for the 401 gets about one per token.
    assert!(
        refused <= 2,
        "requests went out with expired tokens: {summary}\n{}",
        front.describe("front")
    );
    verify_everywhere(&tar, &img, &[reference]);
    eprintln!("short_tokens_long_pull: {summary}");
}
