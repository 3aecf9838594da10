//! One pull from start to finish, for one image or several into one
//! archive: resolve every reference to its image manifests ([`resolve`]:
//! one platform, or several of an index with `--platform all` or a list),
//! fetch and check the configs, fetch the layers of all images in one
//! batch (a layer shared by images is fetched and stored once, and the
//! attestations' blobs come along), decompress the layers that need it
//! ([`crate::archive::layers`]), write the archive, with the registry's
//! own manifests and indexes kept for a push
//! ([`crate::archive::entries`]).
//!
//! The configs come before the layers, so a platform or layer-count
//! problem, or a layer that is not a container layer, is reported before
//! any large download. References naming the same image manifest become
//! one image with all their names. This module holds no network or file
//! code of its own.

use std::path::PathBuf;

use crate::archive::entries::ImageEntry;
use crate::archive::entries::{self, Part};
use crate::archive::in_place::InPlace;
use crate::archive::layers::{self, Expansion};
use crate::archive::layout::{Format, Layout};
use crate::archive::writer::{self, Output, Sink};
use crate::error::{Error, Result};
use crate::fetch::download::{check_size, max_blob_size, Downloader, Sources};
use crate::image::digest::Digest;
use crate::image::manifest::Resolved;
use crate::image::manifest::{self, Descriptor, ImageConfig};
use crate::image::platform::{self, Platform, Selection};
use crate::image::reference::Reference;
use crate::image::upstream::Several;
use crate::registry::client;
use crate::registry::mirrors::Hosts;
use crate::resolve::{self, Resolution};
use crate::store::cache::Store;
use crate::ui::progress::Progress;
use crate::ui::progress_report::Summary;

/// The output path that means standard output (`-o -`).
pub const STDOUT: &str = "-";

/// Everything one pull needs, already validated.
#[derive(Debug)]
pub struct Plan {
    /// The images, in the order given (at least one).
    pub references: Vec<Reference>,
    /// The platform wanted: the one `docker load` gets (the first of
    /// `selection`).
    pub platform: Platform,
    /// The platforms taken from a multi-platform image.
    pub selection: Selection,
    /// Whether the platform was asked for (an error on mismatch) or is the
    /// host default (a warning).
    pub platform_explicit: bool,
    /// Where the archive goes.
    pub output: Output,
    /// The layouts the archive holds.
    pub format: Format,
    /// Which layers are decompressed.
    pub expansion: Expansion,
    /// The store directory; `None` for a temporary one.
    pub cache_dir: Option<PathBuf>,
    /// Hash blobs found in the store before using them (else their size
    /// is checked).
    pub verify_cache: bool,
    /// Parallel downloads.
    pub threads: usize,
    /// How to reach the registry.
    pub registry: client::Options,
    /// Only errors on stderr.
    pub quiet: bool,
    /// The smallest download segment.
    pub chunk: u64,
}

/// What a successful pull produced.
#[derive(Debug)]
pub struct Outcome {
    /// The digest of each reference's manifest (of its index, for several
    /// platforms), in the order of the references.
    pub manifest_digests: Vec<Digest>,
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

/// One reference, resolved.
struct Image<'a> {
    /// Its blobs are in the store already (a converted schema 1 image).
    prefetched: bool,
    reference: &'a Reference,
    registry: usize,
    /// Its images: one, or several of an index; `docker load`'s first.
    images: Vec<Resolved>,
    /// What came with several images of an index (its images moved to
    /// `images`).
    several: Option<Several>,
}

impl Image<'_> {
    /// The configs and layers of its images, and the attestations' blobs.
    fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        let images = self.images.iter().map(|r| &r.image);
        images
            .flat_map(|m| std::iter::once(&m.config).chain(&m.layers))
            .chain(self.extra_blobs())
    }

    /// The attestations' configs and layers.
    fn extra_blobs(&self) -> impl Iterator<Item = &Descriptor> {
        let attestations = self.several.iter().flat_map(|s| &s.attestations);
        attestations.flat_map(|(_, m)| std::iter::once(&m.config).chain(&m.layers))
    }

    /// The digest its name resolved to: the index's, for several images.
    fn digest(&self) -> &Digest {
        match &self.several {
            Some(s) => &s.index.digest,
            None => &self.images[0].digest,
        }
    }
}

fn run_inner(plan: &Plan) -> Result<Outcome> {
    // A pipe is opened first, as a shell opens `> fifo` for `-o -`: its
    // reader sees the end even when the pull fails.
    let sink = plan.output.open()?;
    let progress = Progress::new(plan.quiet);
    let store = match &plan.cache_dir {
        Some(dir) => Store::open(dir)?,
        None => Store::temporary()?,
    };
    let mut registries: Vec<Hosts> = Vec::new();
    let mut images: Vec<Image> = Vec::new();
    for reference in &plan.references {
        progress.say(&format!(
            "Pulling {} ({})",
            reference.original(),
            plan.selection
        ));
        let registry = Hosts::connect(reference, &plan.registry)?;
        let resolution = if plan.selection.is_several() {
            resolve::resolve_several(&registry, reference, &plan.selection)?
        } else {
            resolve::resolve(&registry, reference, &plan.platform)?
        };
        for note in registry.take_notes() {
            progress.say(&note);
        }
        progress.hosts(registry.counters());
        let prefetched = matches!(resolution, Resolution::Schema1(..));
        let (resolved, several) = match resolution {
            Resolution::Image(r) => (vec![*r], None),
            Resolution::Several(mut s) => (std::mem::take(&mut s.images), Some(*s)),
            Resolution::Schema1(m, digest) => {
                let downloader = Downloader {
                    sources: Sources::new(&registry),
                    store: &store,
                    progress: &progress,
                    policy: plan.registry.policy.clone(),
                    threads: plan.threads,
                    chunk: plan.chunk,
                    in_place: None,
                };
                let r = crate::resolve::schema1::convert(
                    &downloader,
                    &store,
                    registry.first(),
                    m,
                    digest,
                    reference.original(),
                )?;
                (vec![r], None)
            }
        };
        for r in &resolved {
            manifest::check_config_size(&r.image.config)?;
        }
        images.push(Image {
            reference,
            registry: registries.len(),
            images: resolved,
            several,
            prefetched,
        });
        registries.push(registry);
    }

    // Sizes no pull may take are refused before any file is made.
    let max = max_blob_size()?;
    let mut sources = Sources::new(&registries[0]);
    for image in &images {
        for blob in image.blobs() {
            check_size(blob, max)?;
            sources.add(&blob.digest, &registries[image.registry]);
        }
    }
    let downloader = |in_place| Downloader {
        sources: sources.clone(),
        store: &store,
        progress: &progress,
        policy: plan.registry.policy.clone(),
        threads: plan.threads,
        chunk: plan.chunk,
        in_place,
    };
    let configs: Vec<Descriptor> = images
        .iter()
        .filter(|i| !i.prefetched)
        .flat_map(|i| i.images.iter().map(|r| r.image.config.clone()))
        .collect();
    if plan.verify_cache {
        store.verify_held(images.iter().flat_map(Image::blobs))?;
    }
    progress.expect(unique_blobs(&images) as u64);
    downloader(None).fetch_all(&configs)?;
    // The layer work of each image of each reference, in the same order.
    let mut work: Vec<Vec<layers::LayerWork>> = Vec::new();
    // The platforms pulled, for the summary.
    let mut platforms: Vec<String> = Vec::new();
    for image in &images {
        let mut of_image = Vec::new();
        for r in &image.images {
            let what = format!("config {}", r.image.config.digest);
            let config = ImageConfig::parse(&store.read_checked(&r.image.config)?, &what)?;
            check_image(plan, image, r, &config)?;
            let platform = match image.several {
                Some(_) => config.platform().to_string(),
                None => plan.platform.to_string(),
            };
            if !platforms.contains(&platform) {
                platforms.push(platform);
            }
            if plan.verify_cache {
                // Decompressed layers held from earlier pulls, by diff_id.
                for diff_id in &config.rootfs.diff_ids {
                    if store.size_of(diff_id).is_some() {
                        store.verify(diff_id, None);
                    }
                }
            }
            of_image.push(layers::plan(
                &r.image,
                &config,
                plan.expansion,
                &store,
                image.reference.original(),
            )?);
        }
        work.push(of_image);
    }
    let to_fetch: Vec<Descriptor> = work
        .iter()
        .zip(&images)
        .filter(|(_, i)| !i.prefetched)
        .flat_map(|(w, i)| {
            let layers = w.iter().flat_map(|w| w.to_fetch(&store));
            layers.chain(i.extra_blobs())
        })
        .cloned()
        .collect();
    let parts = || {
        work.iter().zip(&images).map(|(w, i)| Part {
            reference: i.reference,
            images: w.iter().zip(&i.images).collect(),
            several: i.several.as_ref(),
        })
    };
    // Into a file, with no layer to decompress: each layer goes straight
    // into its place in the archive (and into the cache from the same
    // buffer, unless --no-cache).
    let in_place = match sink {
        Sink::File(out) if images.iter().all(|i| !i.prefetched) => {
            work.iter().flatten().all(|w| !w.expands()).then_some(out)
        }
        _ => None,
    };
    let archive_size = if let Some(out) = in_place {
        log::debug!("writing the archive in place: layers are downloaded straight into it");
        let entries = entries::entries(parts(), &[]);
        let incoming: Vec<Digest> = to_fetch.iter().map(|d| d.digest.clone()).collect();
        // Every other blob is in the store: verified by this run (the
        // configs) or held from an earlier one, trusted as the streaming
        // writer trusts it (by size, or hashed with --verify-cache).
        let trusted: Vec<Digest> = entries
            .iter()
            .flat_map(ImageEntry::blobs)
            .map(|d| d.digest.clone())
            .filter(|d| !incoming.contains(d))
            .collect();
        let layout = Layout::new(&entries, plan.format, &store, &trusted);
        let archive = InPlace::create(out, &layout, &incoming)?;
        downloader(Some(&archive)).fetch_all(&to_fetch)?;
        archive.finish(out)?
    } else {
        downloader(None).fetch_all(&to_fetch)?;
        let expanded = layers::expand_all(&store, work.iter().flatten(), plan.threads)?;
        let entries = entries::entries(parts(), &expanded);
        // Every blob is now in the store: verified by this run, held from
        // an earlier one (checked by size, or hashed with --verify-cache),
        // or decompressed and hashed against its diff_id. The archive
        // copies them with a size check.
        let trusted: Vec<Digest> = entries
            .iter()
            .flat_map(ImageEntry::blobs)
            .map(|d| d.digest.clone())
            .collect();
        let layout = Layout::new(&entries, plan.format, &store, &trusted);
        writer::write(sink, &layout)?
    };
    progress.archive_written();
    let all_layers: Vec<Descriptor> = images
        .iter()
        .flat_map(|i| i.images.iter().flat_map(|r| r.image.layers.iter().cloned()))
        .collect();
    let names: Vec<&str> = images.iter().map(|i| i.reference.original()).collect();
    let sources = tally(&registries);
    progress.summary(&Summary {
        image: &names.join(", "),
        platforms: &platforms.join(", "),
        digest: match images.as_slice() {
            [one] => Some(one.digest()),
            _ => None,
        },
        archive_size,
        output: plan.output.path(),
        layers: &all_layers,
        sources: &sources,
    });
    Ok(Outcome {
        manifest_digests: images.iter().map(|i| i.digest().clone()).collect(),
        archive_size,
    })
}

/// The blob bytes each host of the mirror lists brought, by host.
fn tally(registries: &[Hosts]) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    for (name, n) in registries.iter().flat_map(Hosts::tally) {
        match out.iter_mut().find(|(m, _)| *m == name) {
            Some((_, total)) => *total += n,
            None => out.push((name, n)),
        }
    }
    out
}

/// How many different blobs the images still need.
fn unique_blobs(images: &[Image]) -> usize {
    let mut all: Vec<&Digest> = images
        .iter()
        .filter(|i| !i.prefetched)
        .flat_map(Image::blobs)
        .map(|d| &d.digest)
        .collect();
    all.sort();
    all.dedup();
    all.len()
}

/// The checks a config allows before any layer is fetched: its platform
/// (one image; several of an index are taken as the index lists them),
/// and one diff_id per layer.
fn check_image(plan: &Plan, image: &Image, r: &Resolved, config: &ImageConfig) -> Result<()> {
    if image.several.is_none() {
        check_platform(plan, image.reference, &config.platform(), r.from_index)?;
    }
    let layers = r.image.layers.len();
    if config.rootfs.diff_ids.len() != layers {
        return Err(Error::Manifest {
            what: format!("image {}", image.reference.original()),
            reason: format!(
                "the manifest lists {layers} layers but the config has {} diff_ids",
                config.rootfs.diff_ids.len()
            ),
        });
    }
    Ok(())
}

/// Compares the config's platform with the one wanted. For an image
/// chosen from an index a mismatch means the index mislabels it: a warning.
/// For a single-platform image it is an error when the platform was asked
/// for, and a warning when it is only the host default.
fn check_platform(
    plan: &Plan,
    reference: &Reference,
    actual: &Platform,
    from_index: bool,
) -> Result<()> {
    let wanted = match &plan.selection {
        Selection::All => return Ok(()),
        Selection::Some(list) => list,
    };
    if wanted
        .iter()
        .any(|w| platform::match_score(w, actual).is_some())
    {
        return Ok(());
    }
    let name = reference.original();
    if from_index {
        log::warn!(
            "{name}: the index lists this image as {}, but its config says {actual}",
            plan.platform
        );
        Ok(())
    } else if plan.platform_explicit {
        Err(Error::Platform(format!(
            "{name} is a {actual} image, not {} (it has no other platforms); pull it without --platform to take it as it is",
            plan.selection
        )))
    } else {
        log::warn!("{name} is a {actual} image; this host is {}", plan.platform);
        Ok(())
    }
}
