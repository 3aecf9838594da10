//! Explicit credentials belong to one host: `-u` (and
//! `PULLTAR_USERNAME`/`PULLTAR_PASSWORD`) with images from several
//! registries is a usage error that reaches no host; through `-r` mirrors
//! they go to Docker Hub only (`PULLTAR_DOCKER_HUB` points it at a
//! stand-in), and to the one mirror under `--mirrors-only`. `pulltar
//! login` checks a login against the htpasswd registry and keeps it in
//! docker's config (0600, other keys kept, the unencrypted warning) or
//! through a `credsStore` helper; `logout` removes it; a later pull uses
//! it; the password prompt does not echo. The stand-ins answer every
//! request `401 Basic` and log the `Authorization` headers they receive.

use crate::support::auth_registries::{BasicRegistry, BPASS, BUSER, STALE};
use crate::support::user_env::{userpass, Client};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A stand-in registry on 127.0.0.1 that answers `401 Basic` to every
/// request (60 connections or 120 s at most) and logs each request's
/// `Authorization` header ("-" when there is none).
struct StandIn {
    addr: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl StandIn {
    fn start() -> StandIn {
        StandIn::answering(|_| {
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"stand-in\"\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
                .to_string()
        })
    }

    /// A stand-in that answers each request (given its request line) with
    /// what `answer` makes of it.
    fn answering(answer: impl Fn(&str) -> String + Send + 'static) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(120);
            let mut served = 0;
            while Instant::now() < end && served < 60 {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                served += 1;
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream);
                let mut auth = "-".to_string();
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let request = std::mem::take(&mut line);
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("authorization") {
                            auth = v.trim().to_string();
                        }
                    }
                    line.clear();
                }
                log.lock().unwrap().push(auth);
                let _ = reader.get_mut().write_all(answer(&request).as_bytes());
            }
        });
        StandIn { addr, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// Some request came, and none carried an Authorization header.
    fn assert_asked_without_credentials(&self) {
        let seen = self.seen();
        assert!(!seen.is_empty(), "{} was never asked", self.addr);
        assert!(
            seen.iter().all(|a| a == "-"),
            "{} got credentials: {seen:?}",
            self.addr
        );
    }

    fn assert_got_basic(&self) {
        let want = format!("Basic {}", userpass(BUSER, BPASS));
        assert!(
            self.seen().contains(&want),
            "{} got {:?}",
            self.addr,
            self.seen()
        );
    }
}

fn with_password() -> Option<&'static [u8]> {
    Some(b"pt-Basic-Pw-93kq\n")
}

#[test]
fn several_registries_make_u_a_usage_error_that_reaches_no_host() {
    assert_eq!(with_password(), Some(format!("{BPASS}\n").as_bytes()));
    let b = BasicRegistry::start();
    let s = StandIn::start();
    let c = Client::new();
    let other = format!("{}/any:1", s.addr);
    let list = c.work.join("images.txt");
    std::fs::write(&list, format!("{}\n{other}\n", b.reference())).unwrap();
    let list = list.display().to_string();
    let flags = ["-u", BUSER, "--password-stdin", "-o", "x.tar"];
    let env = [("PULLTAR_USERNAME", BUSER), ("PULLTAR_PASSWORD", BPASS)];
    let runs = [
        c.run(
            &[&flags[..], &[&b.reference(), &other]].concat(),
            &[],
            with_password(),
        ),
        c.run(&[&flags[..], &["-f", &list]].concat(), &[], with_password()),
        c.run(&["-o", "x.tar", &b.reference(), &other], &env, None),
    ];
    for res in runs {
        assert_eq!(res.code, 2, "{res}");
        for host in [b.reg.host(), s.addr.clone()] {
            assert!(res.stderr.contains(&host), "{host} not named: {res}");
        }
        assert!(res.stderr.contains("pulltar login"), "{res}");
    }
    assert!(
        s.seen().is_empty(),
        "the stand-in was asked: {:?}",
        s.seen()
    );
    // One registry: -u is for it.
    let (res, _) = c.pull(
        &b.reference(),
        &["-u", BUSER, "--password-stdin"],
        &[],
        with_password(),
    );
    assert_eq!(res.code, 0, "{res}");
    b.assert_authorized();
}

#[test]
fn u_goes_to_docker_hub_never_to_a_mirror() {
    let mirror = StandIn::start();
    let hub = StandIn::start();
    let c = Client::new();
    let env = [("PULLTAR_DOCKER_HUB", hub.addr.as_str())];
    let flags = [
        "-u",
        BUSER,
        "--password-stdin",
        "-r",
        &mirror.addr,
        "--retries",
        "0",
    ];
    let (res, _) = c.pull("library/any:1", &flags, &env, with_password());
    assert_ne!(res.code, 0, "{res}");
    mirror.assert_asked_without_credentials();
    hub.assert_got_basic();
    // The same from the environment.
    let (mirror, hub) = (StandIn::start(), StandIn::start());
    let env = [
        ("PULLTAR_DOCKER_HUB", hub.addr.as_str()),
        ("PULLTAR_USERNAME", BUSER),
        ("PULLTAR_PASSWORD", BPASS),
    ];
    let (res, _) = c.pull(
        "library/any:1",
        &["-r", &mirror.addr, "--retries", "0"],
        &env,
        None,
    );
    assert_ne!(res.code, 0, "{res}");
    mirror.assert_asked_without_credentials();
    hub.assert_got_basic();
}

#[test]
fn mirrors_only_gives_u_to_its_one_mirror() {
    let mirror = StandIn::start();
    let hub = StandIn::start();
    let c = Client::new();
    let env = [("PULLTAR_DOCKER_HUB", hub.addr.as_str())];
    let flags = [
        "-u",
        BUSER,
        "--password-stdin",
        "--mirrors-only",
        "--retries",
        "0",
    ];
    let one = [&flags[..], &["-r", &mirror.addr]].concat();
    let (res, _) = c.pull("library/any:1", &one, &env, with_password());
    assert_ne!(res.code, 0, "{res}");
    mirror.assert_got_basic();
    assert!(
        hub.seen().is_empty(),
        "Docker Hub was asked: {:?}",
        hub.seen()
    );
    let other = StandIn::start();
    let both = format!("{},{}", mirror.addr, other.addr);
    let two = [&flags[..], &["-r", &both]].concat();
    let (res, _) = c.pull("library/any:1", &two, &env, with_password());
    assert_eq!(res.code, 2, "{res}");
    assert!(res.stderr.contains(&other.addr), "{res}");
    assert!(other.seen().is_empty());
}

fn config_of(c: &Client) -> (Value, u32) {
    let path = c.work.join("dockercfg/config.json");
    let text = std::fs::read(&path).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    (serde_json::from_slice(&text).unwrap(), mode)
}

#[test]
fn login_keeps_the_login_in_auths_and_a_wrong_one_nothing() {
    let b = BasicRegistry::start();
    let mut c = Client::new();
    let decoy = json!({"auth": userpass("someone", "else")});
    c.docker_config(&json!({"auths": {"other.example": decoy}, "proxies": {"x": 1}}));
    let host = b.reg.host();
    let before = std::fs::read(c.work.join("dockercfg/config.json")).unwrap();
    let stale = format!("{STALE}\n");
    let res = c.run(
        &["login", "-u", BUSER, "--password-stdin", &host],
        &[],
        Some(stale.as_bytes()),
    );
    assert_eq!(res.code, 1, "{res}");
    assert_eq!(
        std::fs::read(c.work.join("dockercfg/config.json")).unwrap(),
        before
    );
    let res = c.run(
        &["login", "-u", BUSER, "--password-stdin", &host],
        &[],
        with_password(),
    );
    assert_eq!(res.code, 0, "{res}");
    assert!(res.stdout.contains("Login Succeeded"), "{res}");
    assert!(res.stderr.contains("unencrypted"), "{res}");
    assert!(!res.stderr.contains(BPASS) && !res.stdout.contains(BPASS));
    let (config, mode) = config_of(&c);
    assert_eq!(mode, 0o600);
    assert_eq!(config["proxies"], json!({"x": 1}));
    assert_eq!(config["auths"]["other.example"], decoy);
    assert_eq!(
        config["auths"][&host]["auth"],
        json!(userpass(BUSER, BPASS))
    );
    // A later pull uses it (the registry lets no one in without it; its
    // log holds the wrong login's refusal).
    let (res, _) = c.pull(&b.reference(), &[], &[], None);
    assert_eq!(res.code, 0, "{res}");
    let res = c.run(&["logout", &host], &[], None);
    assert_eq!(res.code, 0, "{res}");
    let (config, _) = config_of(&c);
    assert!(config["auths"].get(&host).is_none(), "{config}");
    assert_eq!(config["auths"]["other.example"], decoy);
}

#[test]
fn login_through_a_creds_store_helper() {
    let b = BasicRegistry::start();
    let mut c = Client::new();
    c.docker_config(&json!({"credsStore": "pttest", "auths": {}}));
    let store = c.work.join("store.json");
    let log = c.work.join("helper.log");
    let script = format!(
        "#!/bin/sh\ninput=$(cat)\nprintf '%s %s\\n' \"$1\" \"$input\" >> '{log}'\n\
         case \"$1\" in\n\
         store) printf '%s' \"$input\" > '{store}';;\n\
         get) [ -f '{store}' ] && cat '{store}' || exit 1;;\n\
         erase) rm -f '{store}';;\n\
         esac\n",
        log = log.display(),
        store = store.display()
    );
    let helper = c.work.join("bin/docker-credential-pttest");
    std::fs::write(&helper, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let host = b.reg.host();
    let res = c.run(
        &["login", "-u", BUSER, "--password-stdin", &host],
        &[],
        with_password(),
    );
    assert_eq!(res.code, 0, "{res}");
    assert!(!res.stderr.contains("unencrypted"), "{res}");
    let stored: Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
    assert_eq!(
        stored,
        json!({"ServerURL": host, "Username": BUSER, "Secret": BPASS})
    );
    let (config, mode) = config_of(&c);
    assert_eq!(mode, 0o600);
    assert_eq!(config["credsStore"], "pttest");
    assert!(
        !config.to_string().contains(&userpass(BUSER, BPASS)),
        "{config}"
    );
    assert!(!config.to_string().contains(BPASS), "{config}");
    let (res, _) = c.pull(&b.reference(), &[], &[], None);
    assert_eq!(res.code, 0, "{res}");
    b.assert_authorized();
    let res = c.run(&["logout", &host], &[], None);
    assert_eq!(res.code, 0, "{res}");
    assert!(!store.exists());
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls.lines().any(|l| l == format!("erase {host}")),
        "{calls}"
    );
}

#[test]
fn the_password_prompt_does_not_echo() {
    let b = BasicRegistry::start();
    let mut c = Client::new();
    c.docker_config(&json!({}));
    let host = b.reg.host();
    let pulltar = crate::support::util::PULLTAR;
    let inner = format!("{pulltar} login -u {BUSER} {host}");
    // The password is typed once the prompt is up (and the echo off).
    let shell =
        format!("(sleep 3; printf '%s\\r' '{BPASS}'; sleep 5) | script -qec '{inner}' /dev/null");
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", &shell]).current_dir(c.work.path());
    cmd.env("DOCKER_CONFIG", c.work.join("dockercfg"));
    cmd.env("HOME", c.work.join("home"));
    for v in ["PULLTAR_USERNAME", "PULLTAR_PASSWORD", "RUST_LOG"] {
        cmd.env_remove(v);
    }
    let out = crate::support::util::run(&mut cmd, Duration::from_secs(60));
    assert!(out.stdout.contains("Password:"), "{out}");
    assert!(out.stdout.contains("Login Succeeded"), "{out}");
    assert!(
        !out.stdout.contains(BPASS),
        "the password was echoed: {out}"
    );
    let (config, _) = config_of(&c);
    assert_eq!(
        config["auths"][&host]["auth"],
        json!(userpass(BUSER, BPASS))
    );
}

/// Against a token registry the login is checked at the token service the
/// registry names: a wrong password fails there, the right one is kept
/// and a later pull of a private image uses it.
#[test]
fn login_checks_a_token_registry_at_its_token_service() {
    use crate::support::auth_registries::TokenRegistry;
    use crate::support::token_server::{PASSWORD, USER};
    let t = TokenRegistry::start("private/app");
    let mut c = Client::new();
    c.docker_config(&json!({}));
    let host = t.reg.host();
    let login = ["login", "-u", USER, "--password-stdin", &host];
    let res = c.run(&login, &[], Some(b"not-the-password\n"));
    assert_eq!(res.code, 1, "{res}");
    assert_eq!(config_of(&c).0, json!({}));
    let right = format!("{PASSWORD}\n");
    let res = c.run(&login, &[], Some(right.as_bytes()));
    assert_eq!(res.code, 0, "{res}");
    t.assert_nothing_leaked(&res);
    let (config, _) = config_of(&c);
    assert_eq!(
        config["auths"][&host]["auth"],
        json!(userpass(USER, PASSWORD))
    );
    let (res, _) = c.pull(&t.reference(), &[], &[], None);
    assert_eq!(res.code, 0, "{res}");
}

#[test]
fn a_host_a_registry_redirects_to_cannot_ask_for_the_credentials() {
    // The token service a redirect target would name, logging what it gets.
    let realm = StandIn::start();
    let token_url = format!("http://{}/token", realm.addr);
    let target = StandIn::answering(move |_| {
        format!(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"{token_url}\",service=\"x\"\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
    });
    let elsewhere = format!("http://{}/elsewhere", target.addr);
    let registry = StandIn::answering(move |request| {
        if request.starts_with("GET /v2/ ") {
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
        } else {
            format!(
                "HTTP/1.1 302 Found\r\nLocation: {elsewhere}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        }
    });
    let c = Client::new();
    let image = format!("{}/any:1", registry.addr);
    let flags = ["-u", BUSER, "--password-stdin", "--retries", "0"];
    let (res, _) = c.pull(&image, &flags, &[], with_password());
    assert_eq!(res.code, 1, "{res}");
    assert!(res.stderr.contains("asks for credentials"), "{res}");
    target.assert_asked_without_credentials();
    assert!(realm.seen().is_empty(), "the realm got {:?}", realm.seen());
}
