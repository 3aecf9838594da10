//! What every round shares: the real registry, the fault proxy in front of
//! it, the shared caches, a temp dir for pulltar (`TMPDIR`), a pool of
//! layers that several rounds' images reuse; and each round's images,
//! built from the round's generator and pushed, with the targets (blobs
//! and manifests) the plan puts faults on. A round's own blobs are removed
//! from the registry's storage afterwards, so a long soak does not fill
//! the disk; the pool stays.

use super::plan::{pick, Draw, Kind, Target, CACHES};
use crate::support::faultproxy::FaultProxy;
use crate::support::images::{
    image_of_layers, push_index_from, random_layer, raw_layer, Flavor, Image, Layer, AMD64, ARM64,
    ARMV7, DOCKER_LAYER, DOCKER_LAYER_TAR, OCI_LAYER,
};
use crate::support::registry::Registry;
use crate::support::util::{hex_of, Rng, TempDir};
use std::path::PathBuf;

/// The OCI media type of an uncompressed layer.
const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// A cache is emptied when its blobs pass this size.
const CACHE_CAP: u64 = 512 << 20;

pub struct World {
    pub reg: Registry,
    pub px: FaultProxy,
    pub dir: TempDir,
    /// Layers several rounds reuse, and whether each is gzip.
    pool: Vec<(Layer, bool)>,
    /// Push rounds draw 429s (else 503s in their place).
    pub push_429: bool,
}

/// One pull a round makes: the reference and the image it must yield.
pub struct Pulled {
    pub reference: String,
    pub img: Image,
    /// `--platform`, for an index.
    pub platform: Option<&'static str>,
}

impl Pulled {
    /// The name the pull asks for: the reference, or through a mirror
    /// list its Docker Hub name (`soak/rK:v1`, the registry's host left
    /// out), which the archive's RepoTags keep.
    pub fn name(&self, mirrors: bool) -> String {
        match self.reference.split_once('/') {
            Some((_, hub)) if mirrors => hub.to_string(),
            _ => self.reference.clone(),
        }
    }
}

/// A round's images, pushed: the pulls (one, or two of overlapping images)
/// and every target the pulls fetch.
pub struct Built {
    pub pulls: Vec<Pulled>,
    pub targets: Vec<Target>,
    /// Blobs of the registry's storage to remove after the round.
    own: Vec<String>,
    pub describe: String,
}

impl World {
    /// Starts the registry and the proxy; draws the pool from `rng`.
    pub fn start(rng: &mut Rng) -> World {
        let reg = Registry::start();
        let px = FaultProxy::start(reg.port);
        let dir = TempDir::new("soak");
        for sub in ["tmp", "rounds"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let pool = (0..6)
            .map(|i| match i % 2 {
                0 => {
                    let size = rng.within(32 << 10, 2 << 20) as usize;
                    (raw_layer(rng, DOCKER_LAYER_TAR, size), false)
                }
                _ => {
                    let size = rng.within(16 << 10, 256 << 10) as usize;
                    (random_layer(rng, DOCKER_LAYER, size), true)
                }
            })
            .collect();
        World {
            reg,
            px,
            dir,
            pool,
            push_429: true,
        }
    }

    pub fn cache(&self, i: usize) -> PathBuf {
        self.dir.join(&format!("caches/c{i}"))
    }

    /// The directory pulltar's temporary store goes in (`TMPDIR`).
    pub fn tmp(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// Builds round `k`'s images of `kind` (two overlapping ones if
    /// `twin`), pushes them and lists their targets.
    pub fn build(&self, rng: &mut Rng, k: u64, kind: Kind, twin: bool) -> Built {
        let flavor = if rng.chance(50) {
            Flavor::Docker
        } else {
            Flavor::Oci
        };
        let raw = match flavor {
            Flavor::Docker => DOCKER_LAYER_TAR,
            Flavor::Oci => OCI_LAYER_TAR,
        };
        let gz = match flavor {
            Flavor::Docker => DOCKER_LAYER,
            Flavor::Oci => OCI_LAYER,
        };
        let repo = format!("soak/r{k}");
        let mut pulls = Vec::new();
        let describe;
        match kind {
            Kind::Big => {
                let size = rng.within(2 << 20, 24 << 20) as usize;
                let mut layers = vec![raw_layer(rng, raw, size)];
                if rng.chance(30) {
                    layers.insert(0, self.pooled(rng, raw, gz));
                }
                describe = format!("big {:.1} MB {flavor:?}", size as f64 / 1e6);
                let img = image_of_layers(rng, flavor, AMD64, layers);
                if twin {
                    let extra = raw_layer(rng, raw, 64 << 10);
                    let shared = copy(img.layers.last().unwrap());
                    let b = image_of_layers(rng, flavor, AMD64, vec![shared, extra]);
                    pulls.push(self.push(&format!("{repo}-b"), b, None));
                }
                pulls.insert(0, self.push(&repo, img, None));
            }
            Kind::Many => {
                let n = rng.within(5, 30);
                let layers: Vec<Layer> = (0..n)
                    .map(|_| match rng.below(10) {
                        0..=1 => self.pooled(rng, raw, gz),
                        2..=5 => {
                            let size = rng.within(1 << 10, 256 << 10) as usize;
                            random_layer(rng, gz, size)
                        }
                        _ => {
                            let size = rng.within(1 << 10, 768 << 10) as usize;
                            raw_layer(rng, raw, size)
                        }
                    })
                    .collect();
                let total: usize = layers.iter().map(|l| l.blob.len()).sum();
                describe = format!("many {n} layers {:.1} MB {flavor:?}", total as f64 / 1e6);
                let img = image_of_layers(rng, flavor, AMD64, layers);
                if twin {
                    let mut b: Vec<Layer> = img.layers.iter().step_by(2).map(copy).collect();
                    b.extend((0..3).map(|_| raw_layer(rng, raw, 32 << 10)));
                    let b = image_of_layers(rng, flavor, AMD64, b);
                    pulls.push(self.push(&format!("{repo}-b"), b, None));
                }
                pulls.insert(0, self.push(&repo, img, None));
            }
            Kind::Index => {
                let index = push_index_from(rng, &self.reg, &repo, "v1", flavor);
                let choices = [
                    (&AMD64, None),
                    (&ARM64, Some("linux/arm64/v8")),
                    (&ARMV7, Some("linux/arm/v7")),
                ];
                let (platform, flag) = choices[pick(rng, &[0, 0, 1, 2])];
                let mut children = index.children;
                let at = children.iter().position(|c| &c.platform == platform);
                let img = children.swap_remove(at.expect("the platform is in the index"));
                describe = format!("index {flavor:?}, {}", flag.unwrap_or("host platform"));
                pulls.push(Pulled {
                    reference: format!("{}/{repo}:v1", self.px.host()),
                    img,
                    platform: flag,
                });
                let mut own: Vec<String> = children.iter().flat_map(blobs_of).collect();
                own.push(index.digest.clone());
                return self.finish(kind, pulls, own, describe);
            }
        }
        self.finish(kind, pulls, Vec::new(), describe)
    }

    /// A pool layer (pushed by the round that uses it), described with
    /// `raw` or `gz` as its media type.
    fn pooled(&self, rng: &mut Rng, raw: &'static str, gz: &'static str) -> Layer {
        let (layer, gzip) = &self.pool[rng.below(self.pool.len() as u64) as usize];
        let mut l = copy(layer);
        l.media_type = if *gzip { gz } else { raw };
        l
    }

    fn push(&self, repo: &str, img: Image, platform: Option<&'static str>) -> Pulled {
        crate::support::images::push_image(&self.reg, repo, Some("v1"), &img);
        Pulled {
            reference: format!("{}/{repo}:v1", self.px.host()),
            img,
            platform,
        }
    }

    /// Lists the targets of `pulls`; `own` gets every blob they pushed
    /// that is not in the pool.
    fn finish(
        &self,
        kind: Kind,
        pulls: Vec<Pulled>,
        mut own: Vec<String>,
        describe: String,
    ) -> Built {
        let mut targets: Vec<Target> = Vec::new();
        for (p, pull) in pulls.iter().enumerate() {
            let img = &pull.img;
            let repo_path = pull.reference.split_once('/').unwrap().1.replace(":v1", "");
            let tag_path = format!("/{repo_path}/manifests/v1");
            let tag_size = img.manifest.len() as u64;
            let manifest = match kind {
                // The tag names the index; the image manifest is fetched by
                // digest.
                Kind::Index => {
                    targets.push(Target::new("index", tag_path, 1024, false, false));
                    let path = format!("/manifests/{}", img.manifest_digest);
                    Target::new("child", path, tag_size, false, true)
                }
                _ => Target::new(&format!("manifest{p}"), tag_path, tag_size, false, false),
            };
            targets.push(manifest);
            let blobs =
                std::iter::once(("config".to_string(), &img.config_digest, img.config.len()))
                    .chain(
                        img.layers
                            .iter()
                            .enumerate()
                            .map(|(i, l)| (format!("layer{i}"), &l.digest, l.blob.len())),
                    );
            for (label, digest, size) in blobs {
                if targets.iter().any(|t| &t.path == digest) {
                    continue;
                }
                let label = if p == 0 { label } else { format!("b.{label}") };
                targets.push(Target::new(&label, digest.clone(), size as u64, true, true));
            }
            own.extend(blobs_of(img));
        }
        own.retain(|d| !self.pool.iter().any(|(l, _)| &l.digest == d));
        Built {
            pulls,
            targets,
            own,
            describe,
        }
    }

    /// Removes a round's own blobs from the registry's storage (its
    /// manifests are never asked for again).
    pub fn forget(&self, built: &Built) {
        let root = self
            .reg
            .storage_dir()
            .join("docker/registry/v2/blobs/sha256");
        for d in &built.own {
            let hex = hex_of(d);
            let _ = std::fs::remove_dir_all(root.join(&hex[..2]).join(hex));
        }
    }

    /// Empties the caches grown past [`CACHE_CAP`]; returns their numbers.
    pub fn trim_caches(&self) -> Vec<usize> {
        let mut trimmed = Vec::new();
        for i in 0..CACHES {
            let blobs = self.cache(i).join("blobs/sha256");
            let Ok(dir) = std::fs::read_dir(&blobs) else {
                continue;
            };
            let size: u64 = dir
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum();
            if size > CACHE_CAP {
                let _ = std::fs::remove_dir_all(self.cache(i));
                trimmed.push(i);
            }
        }
        trimmed
    }
}

/// Every blob of an image: config, layers and its manifest.
fn blobs_of(img: &Image) -> Vec<String> {
    let mut v = vec![img.config_digest.clone(), img.manifest_digest.clone()];
    v.extend(img.layers.iter().map(|l| l.digest.clone()));
    v
}

fn copy(l: &Layer) -> Layer {
    Layer {
        media_type: l.media_type,
        blob: l.blob.clone(),
        digest: l.digest.clone(),
        diff_id: l.diff_id.clone(),
    }
}
