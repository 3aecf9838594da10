//! One pull from start to finish: resolve the reference to a manifest
//! (choosing the platform from an index), fetch and check the config, fetch
//! the layers, write the archive.
//!
//! Manifests fetched by digest are checked against that digest (and index
//! children against their descriptor's size); a tag's manifest is
//! identified by the digest of the bytes received, never by the
//! `Docker-Content-Digest` header. The config is fetched before the layers,
//! so a platform or layer-count problem is reported before any large
//! download. This module holds no network or file code of its own.

use std::path::PathBuf;

use crate::archive::{self, ImageEntry};
use crate::cache::Store;
use crate::digest::Digest;
use crate::download::Downloader;
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor, ImageConfig, ImageManifest, Manifest};
use crate::platform::{self, Platform};
use crate::progress::{Progress, Summary};
use crate::reference::Reference;
use crate::registry::{self, Registry};

/// Everything one pull needs, already validated.
#[derive(Debug)]
pub struct Plan {
    /// The image.
    pub reference: Reference,
    /// The platform wanted.
    pub platform: Platform,
    /// Whether the platform was asked for (an error on mismatch) or is the
    /// host default (a warning).
    pub platform_explicit: bool,
    /// Where the archive goes.
    pub output: PathBuf,
    /// The store directory; `None` for a temporary one.
    pub cache_dir: Option<PathBuf>,
    /// Parallel downloads.
    pub threads: usize,
    /// How to reach the registry.
    pub registry: registry::Options,
    /// Only errors on stderr.
    pub quiet: bool,
    /// The smallest download segment.
    pub chunk: u64,
}

/// What a successful pull produced.
#[derive(Debug)]
pub struct Outcome {
    /// The manifest digest of the chosen image.
    pub manifest_digest: Digest,
    /// The config digest (the image ID docker shows).
    pub config_digest: Digest,
    /// The image's platform, from its config.
    pub platform: Platform,
    /// The archive's size in bytes.
    pub archive_size: u64,
}

/// Runs the pull described by `plan`.
pub fn run(plan: &Plan) -> Result<Outcome> {
    run_inner(plan).map_err(|e| match e {
        Error::Interrupted { .. } => Error::Interrupted {
            resumable: plan.cache_dir.is_some(),
        },
        other => other,
    })
}

fn run_inner(plan: &Plan) -> Result<Outcome> {
    let progress = Progress::new(plan.quiet);
    let store = match &plan.cache_dir {
        Some(dir) => Store::open(dir)?,
        None => Store::temporary()?,
    };
    let reference = &plan.reference;
    progress.say(&format!(
        "Pulling {} ({})",
        reference.original(),
        plan.platform
    ));
    let registry = Registry::connect(reference, &plan.registry)?;
    let (manifest_digest, image, from_index) = resolve(&registry, plan)?;

    let downloader = Downloader {
        registry: &registry,
        store: &store,
        progress: &progress,
        policy: plan.registry.policy.clone(),
        threads: plan.threads,
        chunk: plan.chunk,
    };
    if image.config.size > manifest::MAX_CONFIG_BYTES {
        return Err(Error::Manifest {
            what: format!("config {}", image.config.digest),
            reason: format!(
                "its declared size {} is larger than the {} bytes allowed",
                image.config.size,
                manifest::MAX_CONFIG_BYTES
            ),
        });
    }
    let mut unique: Vec<&Digest> = std::iter::once(&image.config)
        .chain(&image.layers)
        .map(|d| &d.digest)
        .collect();
    unique.sort();
    unique.dedup();
    progress.expect(unique.len() as u64);
    let mut fresh = downloader.fetch_all(std::slice::from_ref(&image.config))?;
    let config_path = store.blob_path(&image.config.digest);
    let config_bytes =
        std::fs::read(&config_path).map_err(|e| Error::io("read", &config_path, e))?;
    if Digest::of(&config_bytes) != image.config.digest {
        store.evict(&image.config.digest);
        return Err(Error::Verify {
            digest: image.config.digest.to_string(),
            detail: "the cached config changed on disk; it was removed, run the pull again".into(),
        });
    }
    let config = ImageConfig::parse(&config_bytes, &format!("config {}", image.config.digest))?;
    check_platform(plan, &config.platform(), from_index)?;
    if config.rootfs.diff_ids.len() != image.layers.len() {
        return Err(Error::Manifest {
            what: format!("image {}", reference.original()),
            reason: format!(
                "the manifest lists {} layers but the config has {} diff_ids",
                image.layers.len(),
                config.rootfs.diff_ids.len()
            ),
        });
    }
    fresh.extend(downloader.fetch_all(&image.layers)?);

    let entry = ImageEntry {
        config: image.config.clone(),
        layers: image.layers.clone(),
        diff_ids: config.rootfs.diff_ids.clone(),
        repo_tags: reference.repo_tag().into_iter().collect(),
    };
    let to_stdout = plan.output.as_os_str() == crate::plan::STDOUT;
    let archive_size = if to_stdout {
        archive::write_stdout(&[entry], &store, &fresh)?
    } else {
        archive::write(&plan.output, &[entry], &store, &fresh)?
    };
    progress.summary(&Summary {
        image: reference.original(),
        platform: &config.platform(),
        digest: &manifest_digest,
        archive_size,
        output: (!to_stdout).then_some(plan.output.as_path()),
        layers: &image.layers,
    });
    Ok(Outcome {
        manifest_digest,
        config_digest: image.config.digest.clone(),
        platform: config.platform(),
        archive_size,
    })
}

/// Fetches the reference's manifest and, for an index, the chosen child.
/// Also says whether the image was chosen from an index.
fn resolve(registry: &Registry, plan: &Plan) -> Result<(Digest, ImageManifest, bool)> {
    let reference = &plan.reference;
    let key = reference.manifest_key();
    let (bytes, content_type) = registry.manifest(&key)?;
    let digest = Digest::of(&bytes);
    if let Some(wanted) = reference.digest() {
        if &digest != wanted {
            return Err(Error::Verify {
                digest: wanted.to_string(),
                detail: format!("the registry's manifest for it hashes to {digest}"),
            });
        }
    }
    let what = format!("manifest of {}", reference.original());
    match manifest::parse(&bytes, content_type.as_deref(), &what)? {
        Manifest::Image(m) => {
            log::debug!(
                "{} is a single-platform image {digest}",
                reference.original()
            );
            Ok((digest, m, false))
        }
        Manifest::Index(index) => {
            let entries: Vec<&Descriptor> = index
                .manifests
                .iter()
                .filter(|d| !d.is_attestation())
                .collect();
            let platforms: Vec<Platform> = entries.iter().map(|d| d.entry_platform()).collect();
            let Some(i) = platform::choose(&plan.platform, &platforms) else {
                // As the index spells them (arm64/v8 stays arm64/v8).
                let available: Vec<String> =
                    entries.iter().map(|d| d.platform_as_listed()).collect();
                return Err(Error::Platform(format!(
                    "{} has no image for {}; available platforms: {} (choose one with --platform)",
                    reference.original(),
                    plan.platform,
                    if available.is_empty() {
                        "none".into()
                    } else {
                        available.join(", ")
                    }
                )));
            };
            let child = entries[i];
            log::debug!(
                "{} -> {} ({})",
                reference.original(),
                child.digest,
                platforms[i]
            );
            let (child_bytes, child_type) = registry.manifest(&child.digest.to_string())?;
            let actual = Digest::of(&child_bytes);
            if actual != child.digest || child_bytes.len() as u64 != child.size {
                return Err(Error::Verify {
                    digest: child.digest.to_string(),
                    detail: format!(
                        "the registry's manifest for it has {} bytes and hashes to {actual} (the index says {} bytes)",
                        child_bytes.len(),
                        child.size
                    ),
                });
            }
            let what = format!(
                "manifest {} ({}) of {}",
                child.digest,
                platforms[i],
                reference.original()
            );
            match manifest::parse(&child_bytes, child_type.as_deref(), &what)? {
                Manifest::Image(m) => Ok((actual, m, true)),
                Manifest::Index(_) => Err(Error::Manifest {
                    what,
                    reason: "an index inside an index is not supported".into(),
                }),
            }
        }
    }
}

/// Compares the config's platform with the one wanted. For an image
/// chosen from an index a mismatch means the index mislabels it: a warning.
/// For a single-platform image it is an error when the platform was asked
/// for, and a warning when it is only the host default.
fn check_platform(plan: &Plan, actual: &Platform, from_index: bool) -> Result<()> {
    if platform::match_score(&plan.platform, actual).is_some() {
        return Ok(());
    }
    let name = plan.reference.original();
    if from_index {
        log::warn!(
            "{name}: the index lists this image as {}, but its config says {actual}",
            plan.platform
        );
        Ok(())
    } else if plan.platform_explicit {
        Err(Error::Platform(format!(
            "{name} is a {actual} image, not {} (it has no other platforms); pull it without --platform to take it as it is",
            plan.platform
        )))
    } else {
        log::warn!("{name} is a {actual} image; this host is {}", plan.platform);
        Ok(())
    }
}
