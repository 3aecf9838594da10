//! The fixture of the retry, resume, progress and log tests: a registry
//! holding `team/app:v1`, the fault proxy in front of it, and a work dir
//! for the output and the cache ([`Case`]), with the pull it runs (backoff
//! fixed at 50 ms) and what its proxy saw.

use crate::support::faultproxy::{FaultProxy, Record};
use crate::support::images::{build_image, push_image, push_simple, Flavor, Image, AMD64};
use crate::support::registry::Registry;
use crate::support::util::{hex_of, pulltar_env, Output, Rng, TempDir};
use std::path::PathBuf;

/// A registry holding `team/app:v1`, a fault proxy in front of it and a
/// work dir for the output and the cache.
pub struct Case {
    pub px: FaultProxy,
    pub img: Image,
    pub work: TempDir,
    _reg: Registry,
}

impl Case {
    /// Three layers of about 96 KiB: every blob is one plain GET.
    pub fn small() -> Case {
        let reg = Registry::start();
        let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
        Case::around(reg, img)
    }

    /// `n` random layers of `size` bytes (big enough to be segmented).
    pub fn big(n: usize, size: usize) -> Case {
        let reg = Registry::start();
        let img = build_image(&mut Rng::new(), Flavor::Docker, AMD64, n, size);
        push_image(&reg, "team/app", Some("v1"), &img);
        Case::around(reg, img)
    }

    fn around(reg: Registry, img: Image) -> Case {
        Case {
            px: FaultProxy::start(reg.port),
            img,
            work: TempDir::new("retry"),
            _reg: reg,
        }
    }

    pub fn reference(&self) -> String {
        format!("{}/team/app:v1", self.px.host())
    }

    pub fn out(&self) -> PathBuf {
        self.work.join("out/image.tar")
    }

    pub fn cache(&self) -> PathBuf {
        self.work.join("cache")
    }

    /// `pulltar REF -o OUT --cache-dir CACHE EXTRA…`, backoff fixed at 50 ms.
    pub fn pull(&self, extra: &[&str]) -> Output {
        std::fs::create_dir_all(self.work.join("out")).unwrap();
        let (reference, out, cache) = (self.reference(), self.out(), self.cache());
        let mut args = vec![
            reference.as_str(),
            "-o",
            out.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        pulltar_env(self.work.path(), &args, &[("PULLTAR_RETRY_DELAY_MS", "50")])
    }

    pub fn tags(&self) -> Vec<String> {
        vec![self.reference()]
    }

    /// Requests the proxy saw for `digest`, once all have ended.
    pub fn hits(&self, digest: &str) -> Vec<Record> {
        self.px.settled();
        self.px.requests_to(&format!("/blobs/{digest}"))
    }

    /// Exit 1, the output dir empty, and `digest` named in stderr.
    pub fn assert_failed_on(&self, res: &Output, digest: &str) {
        assert_eq!(res.code, 1, "wanted exit 1:\n{res}\n{}", self.px.dump());
        let left = crate::support::util::list_dir(&self.work.join("out"));
        assert!(left.is_empty(), "left {left:?} after a failure:\n{res}");
        assert!(
            res.stderr.contains(hex_of(digest)),
            "stderr should name {digest}:\n{res}"
        );
    }
}
