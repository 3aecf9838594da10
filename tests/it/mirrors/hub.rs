//! `-r/--registry HOST[:PORT]`: Docker Hub images through a mirror. The
//! mirror is a local registry holding `library/nginx:1.25` and
//! `user/app:v1`; pulltar must ask it for `/v2/library/nginx/...` for
//! `nginx:1.25`, keep the Hub name in RepoTags (`nginx:1.25`, as `docker
//! save` writes it and docker reads as `docker.io/library/nginx:1.25`) and
//! in the default file name, and ignore the mirror for images on other registries.

use crate::support::images::{push_simple, Flavor, Image};
use crate::support::loaders::{check_archive, podman_load, skopeo_inspect};
use crate::support::registry::Registry;
use crate::support::util::{hex_of, pulltar_in, Output, TempDir};
use std::net::TcpListener;
use std::path::PathBuf;

struct Mirror {
    reg: Registry,
    nginx: Image,
    app: Image,
}

impl Mirror {
    fn start() -> Mirror {
        let reg = Registry::start();
        let nginx = push_simple(&reg, "library/nginx", "1.25", Flavor::Docker);
        let app = push_simple(&reg, "user/app", "v1", Flavor::Oci);
        Mirror { reg, nginx, app }
    }

    /// Requests for `/v2/REPO/...` in the mirror's access log.
    fn asked_for(&self, repo: &str) -> Vec<String> {
        let needle = format!(" /v2/{repo}/");
        self.reg
            .log()
            .lines()
            .filter(|l| l.starts_with("127.0.0.1 - ") && l.contains(&needle))
            .map(str::to_string)
            .collect()
    }
}

/// `pulltar ARGS` in a fresh work dir, with the output at `-o` there.
fn pull(args: &[&str]) -> (Output, PathBuf, TempDir) {
    let work = TempDir::new("mirror");
    let out = work.join("out.tar");
    let mut all = args.to_vec();
    all.extend(["-o", out.to_str().unwrap(), "--no-cache"]);
    let res = pulltar_in(work.path(), &all);
    (res, out, work)
}

#[test]
fn official_image_through_the_mirror_keeps_its_hub_name() {
    let m = Mirror::start();
    let host = m.reg.host();
    let (res, out, _w) = pull(&["-r", &host, "nginx:1.25"]);
    assert_eq!(res.code, 0, "{res}");
    check_archive(&out, &m.nginx, &["nginx:1.25".to_string()]);
    let asked = m.asked_for("library/nginx");
    assert!(
        asked
            .iter()
            .any(|l| l.contains("/v2/library/nginx/manifests/1.25 ")),
        "the mirror was never asked for library/nginx's manifest:\n{}",
        m.reg.log()
    );
    for l in &m.nginx.layers {
        let blob = format!("/v2/library/nginx/blobs/{}", l.digest);
        assert!(
            asked.iter().any(|a| a.contains(&blob)),
            "{blob} not fetched"
        );
    }
    let info = skopeo_inspect(&out);
    let layers: Vec<String> = serde_json::from_value(info["Layers"].clone()).unwrap();
    assert_eq!(layers, m.nginx.diff_ids(), "skopeo inspect: {info}");
    // podman 4.3 names a registry-less RepoTag `localhost/nginx:1.25`
    // (docker: `nginx:1.25`), so only the image ID is checked here.
    let (id, _names) = podman_load(&out);
    assert_eq!(id, hex_of(&m.nginx.config_digest));
}

#[test]
fn user_image_through_the_mirror_with_long_flag() {
    let m = Mirror::start();
    let host = m.reg.host();
    let (res, out, _w) = pull(&["--registry", &host, "user/app:v1"]);
    assert_eq!(res.code, 0, "{res}");
    check_archive(&out, &m.app, &["user/app:v1".to_string()]);
    assert!(
        m.asked_for("user/app")
            .iter()
            .any(|l| l.contains("/v2/user/app/manifests/v1 ")),
        "{}",
        m.reg.log()
    );
    assert!(m.asked_for("library/user/app").is_empty());
}

/// The fully spelled Hub name goes through the mirror too.
#[test]
fn docker_io_reference_through_the_mirror() {
    let m = Mirror::start();
    let host = m.reg.host();
    let (res, out, _w) = pull(&["-r", &host, "docker.io/library/nginx:1.25"]);
    assert_eq!(res.code, 0, "{res}");
    check_archive(&out, &m.nginx, &["nginx:1.25".to_string()]);
    assert!(!m.asked_for("library/nginx").is_empty(), "{}", m.reg.log());
}

#[test]
fn default_output_names_keep_the_hub_name() {
    let m = Mirror::start();
    let host = m.reg.host();
    let cache = TempDir::new("mircache");
    let cache_dir = cache.path().to_str().unwrap();
    let work = TempDir::new("mirdef");
    for (image, file, img) in [
        ("nginx:1.25", "nginx_1.25.tar", &m.nginx),
        ("user/app:v1", "user_app_v1.tar", &m.app),
    ] {
        let res = pulltar_in(work.path(), &["-r", &host, image, "--cache-dir", cache_dir]);
        assert_eq!(res.code, 0, "{image}:\n{res}");
        let path = work.join(file);
        assert!(path.is_file(), "no {file} in {:?}:\n{res}", work.list());
        check_archive(&path, img, &[image.to_string()]);
    }
    assert_eq!(work.list(), vec!["nginx_1.25.tar", "user_app_v1.tar"]);
}

/// `-r` is for Docker Hub only: a reference naming its own registry is
/// pulled from there, with the mirror (a dead port here) never contacted.
#[test]
fn other_registries_ignore_the_mirror() {
    let m = Mirror::start();
    let other = Registry::start();
    let img = push_simple(&other, "team/app", "v2", Flavor::Docker);
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let reference = format!("{}/team/app:v2", other.host());
    for mirror in [format!("127.0.0.1:{dead}"), m.reg.host()] {
        let (res, out, _w) = pull(&["-r", &mirror, &reference]);
        assert_eq!(res.code, 0, "-r {mirror}:\n{res}");
        check_archive(&out, &img, std::slice::from_ref(&reference));
    }
    assert!(
        m.asked_for("team/app").is_empty(),
        "the mirror was asked for a non-Hub image:\n{}",
        m.reg.log()
    );
}
