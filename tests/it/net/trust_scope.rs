//! What `--insecure` covers and where a registry may send the client.
//! `--insecure` spares the certificate checks of the registries named
//! (and of hosts of the same name), not of a host a registry sends the
//! client to: a blob redirect or a token realm on another host (here
//! 127.0.0.2, with a certificate of another untrusted CA) is verified, and
//! its failure names that host and `--insecure-registry HOST`, which then
//! lets the pull through; `--insecure-registry A` spares A, not B. And a
//! registry off loopback (10.200.0.1 on a veth link, in a network
//! namespace of its own made with `unshare -n`, with no route out) may not
//! redirect a blob to 127.0.0.1, nor name a token realm there; a redirect
//! to its own address is followed (redirects from a loopback registry to
//! loopback are in `redirect.rs`).

use crate::support::images::{build_image, push_simple, Flavor, AMD64};
use crate::support::loaders::{check_archive, read_tar};
use crate::support::nginx::Nginx;
use crate::support::registry::{Registry, TokenAuth};
use crate::support::tls_front::Pki;
use crate::support::token_server::TokenServer;
use crate::support::util::{pulltar_in, require_tool, run, Output, Rng, TempDir, PULLTAR};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A TLS `server` block on 127.0.0.1:`port` (and 127.0.0.2:`port` when
/// `second`) under `pki`, access log `log`, proxying to `upstream` (or
/// answering blob requests with `blobs`, a location body, first).
fn tls_server(port: u16, second: bool, pki: &Pki, log: &str, dir: &str, inner: &str) -> String {
    let also = if second {
        format!("  listen 127.0.0.2:{port} ssl;\n")
    } else {
        String::new()
    };
    format!(
        "server {{\n  listen 127.0.0.1:{port} ssl;\n{also}\
         \x20 ssl_certificate {};\n  ssl_certificate_key {};\n\
         \x20 access_log {dir}/{log}.log pt;\n{inner}}}\n",
        pki.cert().display(),
        pki.key().display()
    )
}

fn proxy(upstream: u16) -> String {
    format!(
        "  location / {{\n    proxy_pass http://127.0.0.1:{upstream};\n\
         \x20   proxy_set_header Host $http_host;\n  }}\n"
    )
}

fn pull(work: &TempDir, images: &[&str], flags: &[&str]) -> Output {
    let out = work.join("out.tar");
    let _ = std::fs::remove_file(&out);
    let mut args: Vec<&str> = images.to_vec();
    let out = out.to_str().unwrap().to_string();
    args.extend(["-o", &out, "--no-cache", "--retries", "1"]);
    args.extend(flags);
    pulltar_in(work.path(), &args)
}

fn assert_names_host(res: &Output, host: &str) {
    assert_eq!(
        res.code, 1,
        "an untrusted {host} must fail the pull:\n{res}"
    );
    let flag = format!("--insecure-registry {host}");
    assert!(
        res.stderr.contains(&flag),
        "the error names {host} and `{flag}`:\n{res}"
    );
}

#[test]
fn insecure_does_not_cover_a_blob_redirect_to_another_host() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let (named, cdn) = (Pki::new(&[]), Pki::with_sans(&["IP:127.0.0.2"]));
    let reg_port = reg.port;
    let front = Nginx::start("trust-redir", true, |dir, p1, p2| {
        let p2 = p2.expect("a second port").0;
        let redirect = format!(
            "  location ~ \"^/v2/.+/blobs/sha256:\" {{\n\
             \x20   return 307 https://127.0.0.2:{p2}$request_uri;\n  }}\n{}",
            proxy(reg_port)
        );
        tls_server(p1, false, &named, "front", dir, &redirect)
            + &tls_server(p2, true, &cdn, "cdn", dir, &proxy(reg_port))
    });
    let cdn_host = format!("127.0.0.2:{}", front.cdn_port.unwrap());
    let reference = format!("{}/team/app:v1", front.host());
    let work = TempDir::new("trust-redir");

    let res = pull(&work, &[&reference], &["--insecure"]);
    assert_names_host(&res, &cdn_host);
    assert!(
        front.access_log("cdn").is_empty(),
        "no request completed on the unverified CDN:\n{}",
        front.describe("cdn")
    );
    assert!(
        !front.access_log("front").is_empty(),
        "the front was reached"
    );

    let res = pull(
        &work,
        &[&reference],
        &["--insecure", "--insecure-registry", &cdn_host],
    );
    assert_eq!(res.code, 0, "--insecure-registry {cdn_host}:\n{res}");
    check_archive(&work.join("out.tar"), &img, &[reference]);
    let cdn_blobs = front.access_log("cdn");
    assert!(
        cdn_blobs.iter().any(|a| a.path.contains("/blobs/sha256:")),
        "the blobs came from the CDN:\n{}",
        front.describe("cdn")
    );
}

#[test]
fn insecure_does_not_cover_a_token_realm_on_another_host() {
    let tokens = TokenServer::start();
    let realm_pki = Pki::with_sans(&["IP:127.0.0.2"]);
    let token_port = tokens.port;
    let realm_front = Nginx::start("trust-realm", false, |dir, p1, _| {
        tls_server(p1, true, &realm_pki, "front", dir, &proxy(token_port))
    });
    let realm_host = format!("127.0.0.2:{}", realm_front.port);
    let auth = TokenAuth {
        realm: format!("https://{realm_host}/token"),
        ..tokens.registry_auth()
    };
    let reg = Registry::start_with(Some(auth), Some(tokens.issuer.push_auth()));
    let img = push_simple(&reg, "public/app", "v1", Flavor::Docker);
    let pki = Pki::new(&[]);
    let front = Nginx::tls(&reg, &pki.cert(), &pki.key());
    let reference = format!("{}/public/app:v1", front.host());
    let work = TempDir::new("trust-realm");

    let res = pull(&work, &[&reference], &["--insecure"]);
    assert_names_host(&res, &realm_host);
    assert_eq!(tokens.issued_count(), 0, "no token was fetched:\n{res}");

    let res = pull(
        &work,
        &[&reference],
        &["--insecure", "--insecure-registry", &realm_host],
    );
    assert_eq!(res.code, 0, "--insecure-registry {realm_host}:\n{res}");
    check_archive(&work.join("out.tar"), &img, &[reference]);
    assert!(tokens.issued_count() > 0, "the token came from the realm");
}

#[test]
fn insecure_registry_names_one_registry_among_two() {
    let regs: Vec<(Registry, Pki)> = (0..2).map(|_| (Registry::start(), Pki::new(&[]))).collect();
    let imgs: Vec<_> = regs
        .iter()
        .map(|(r, _)| push_simple(r, "team/app", "v1", Flavor::Docker))
        .collect();
    let fronts: Vec<Nginx> = regs
        .iter()
        .map(|(r, p)| Nginx::tls(r, &p.cert(), &p.key()))
        .collect();
    let refs: Vec<String> = fronts
        .iter()
        .map(|f| format!("{}/team/app:v1", f.host()))
        .collect();
    let (a, b) = (fronts[0].host(), fronts[1].host());
    let work = TempDir::new("trust-two");

    let res = pull(&work, &[&refs[0], &refs[1]], &["--insecure-registry", &a]);
    assert_eq!(res.code, 1, "B is not named:\n{res}");
    assert!(
        res.stderr.contains(&b) && res.stderr.contains("--ca-cert"),
        "the error names B ({b}):\n{res}"
    );
    let got_manifest = |f: &Nginx| {
        f.access_log("front")
            .iter()
            .any(|x| x.path == "/v2/team/app/manifests/v1" && x.status == 200)
    };
    assert!(got_manifest(&fronts[0]), "A ({a}) was read unverified");
    assert!(
        fronts[1].access_log("front").is_empty(),
        "no request completed on B:\n{}",
        fronts[1].describe("front")
    );

    let res = pull(
        &work,
        &[&refs[0], &refs[1]],
        &["--insecure-registry", &a, "--insecure-registry", &b],
    );
    assert_eq!(res.code, 0, "both named:\n{res}");
    let files = read_tar(&work.join("out.tar"));
    let listing = String::from_utf8_lossy(&files["manifest.json"]).into_owned();
    for (r, img) in refs.iter().zip(&imgs) {
        let config = img.config_digest.replace(':', "/");
        assert!(
            listing.contains(r.as_str()) && listing.contains(&config),
            "{r} is in the archive:\n{listing}"
        );
    }
    assert!(got_manifest(&fronts[1]), "B ({b}) was read");
}

/// The script run in the namespace: a veth link with 10.200.0.1, nginx
/// serving `files` (the registry at :5000, a blob server at :5001 on both
/// addresses, a registry at :5002 whose token realm is on 127.0.0.1),
/// then one pull per repository.
const NAMESPACE_SCRIPT: &str = r#"set -e
ip link set lo up
ip link add v0 type veth peer name v1
ip addr add 10.200.0.1/24 dev v0
ip link set v0 up
ip link set v1 up
"$NGINX" -p "$DIR" -c "$DIR/nginx.conf" -e "$DIR/error.log" &
NGINX_PID=$!
for i in $(seq 100); do [ -s "$DIR/nginx.pid" ] && break; sleep 0.1; done
set +e
for repo in loopback own; do
  "$PULLTAR" --insecure --no-cache --retries 1 -o "$DIR/$repo.tar" 10.200.0.1:5000/team/$repo:v1 2>"$DIR/$repo.err"
  echo "$repo $?" >> "$DIR/codes"
done
"$PULLTAR" --insecure --no-cache --retries 1 -o "$DIR/realm.tar" 10.200.0.1:5002/team/own:v1 2>"$DIR/realm.err"
echo "realm $?" >> "$DIR/codes"
kill $NGINX_PID
wait $NGINX_PID
exit 0
"#;

fn namespace_conf(dir: &Path) -> String {
    let d = dir.display();
    let manifest = "application/vnd.docker.distribution.manifest.v2+json";
    format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/tmp;\n\
         \x20 proxy_temp_path {d}/tmp;\n  fastcgi_temp_path {d}/tmp;\n\
         \x20 uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n\
         server {{\n  listen 10.200.0.1:5000;\n\
         \x20 location = /v2/ {{ default_type application/json; return 200 '{{}}'; }}\n\
         \x20 location ~ \"^/v2/team/[a-z]+/manifests/v1$\" {{\n\
         \x20   default_type {manifest};\n    alias {d}/files/manifest;\n  }}\n\
         \x20 location ~ \"^/v2/team/loopback/blobs/(sha256:[0-9a-f]+)$\" {{\n\
         \x20   return 307 http://127.0.0.1:5001/blobs/$1;\n  }}\n\
         \x20 location ~ \"^/v2/team/own/blobs/(sha256:[0-9a-f]+)$\" {{\n\
         \x20   return 307 http://10.200.0.1:5001/blobs/$1;\n  }}\n}}\n\
         server {{\n  listen 10.200.0.1:5002;\n\
         \x20 location / {{\n\
         \x20   add_header WWW-Authenticate 'Bearer realm=\"http://127.0.0.1:5001/token\",service=\"x\"' always;\n\
         \x20   return 401 '{{}}';\n  }}\n}}\n\
         server {{\n  listen 127.0.0.1:5001;\n  listen 10.200.0.1:5001;\n\
         \x20 location /blobs/ {{ alias {d}/files/; }}\n\
         \x20 location = /token {{ default_type application/json; return 200 '{{\"token\":\"t\"}}'; }}\n}}\n}}\n"
    )
}

#[test]
fn a_registry_off_loopback_may_not_send_the_client_to_loopback() {
    let unshare = require_tool("unshare", "util-linux");
    let nginx = require_tool("nginx", "nginx");
    require_tool("ip", "iproute2");
    let img = build_image(&mut Rng::new(), Flavor::Docker, AMD64, 2, 32 << 10);
    let work = TempDir::new("trust-netns");
    let dir = work.path();
    let files = dir.join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    std::fs::write(files.join("manifest"), &img.manifest).unwrap();
    std::fs::write(files.join(&img.config_digest), &img.config).unwrap();
    for l in &img.layers {
        std::fs::write(files.join(&l.digest), &l.blob).unwrap();
    }
    std::fs::write(dir.join("nginx.conf"), namespace_conf(dir)).unwrap();
    let mut cmd = Command::new(unshare);
    cmd.args(["-n", "sh", "-c", NAMESPACE_SCRIPT])
        .env("NGINX", nginx)
        .env("DIR", dir)
        .env("PULLTAR", PULLTAR)
        .env("HOME", dir)
        .env_remove("RUST_LOG");
    let out = run(&mut cmd, Duration::from_secs(120));
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let report = format!(
        "{out}\ncodes:\n{}\nloopback.err:\n{}\nown.err:\n{}\nrealm.err:\n{}\nnginx:\n{}\n{}",
        read("codes"),
        read("loopback.err"),
        read("own.err"),
        read("realm.err"),
        read("error.log"),
        read("access.log")
    );
    assert_eq!(out.code, 0, "the namespace script:\n{report}");
    let codes = read("codes");
    assert!(
        codes.contains("own 0\n"),
        "a redirect to the registry's own address is followed:\n{report}"
    );
    check_archive(
        &dir.join("own.tar"),
        &img,
        &["10.200.0.1:5000/team/own:v1".into()],
    );
    assert!(codes.contains("loopback 1\n"), "refused:\n{report}");
    let err = read("loopback.err");
    assert!(
        err.contains("127.0.0.1:5001") && err.contains("loopback or link-local"),
        "the refusal names the target:\n{report}"
    );
    assert!(!dir.join("loopback.tar").exists());
    let access = read("access.log");
    assert!(
        !access.lines().any(|l| l.contains("127.0.0.1 - ")),
        "nothing reached the blob server from loopback:\n{report}"
    );
    assert!(
        codes.contains("realm 1\n"),
        "the realm is refused:\n{report}"
    );
    let err = read("realm.err");
    assert!(
        err.contains("127.0.0.1:5001") && err.contains("loopback or link-local"),
        "the refusal names the realm's host:\n{report}"
    );
    assert!(
        !access.contains("GET /token"),
        "the token service was not asked:\n{report}"
    );
}
