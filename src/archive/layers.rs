//! What becomes of each layer of an image: kept as pulled, or
//! decompressed to a plain tar (zstd layers by default, so Docker before
//! 23 and Synology can load them; every compressed layer with
//! `--uncompressed`; none with `--keep-zstd`), and the archive's image
//! that results, with an OCI manifest written anew when a layer changed or
//! the registry's manifest is a Docker one.
//!
//! Layer media types are checked before any layer is fetched: a type that
//! is not a container layer stops the pull; a foreign (non-distributable)
//! layer is fetched like the others, with a warning. A layer whose plain
//! tar is already in the store (named by its diff_id) is not fetched at
//! all. The decompression itself, and the diff_id check, are
//! [`crate::archive::decompress`]'s; this module runs it on a few threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::archive::decompress;
use crate::archive::entries::Image;
use crate::error::{Error, Result};
use crate::image::digest::Digest;
use crate::image::layer_types::{self, Compression, LayerType};
use crate::image::manifest::Resolved;
use crate::image::manifest::{self, Descriptor, ImageConfig, ImageManifest, PlatformSpec};
use crate::store::cache::Store;

/// Which layers are decompressed into the archive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Expansion {
    /// zstd layers only (the default).
    #[default]
    Zstd,
    /// None: zstd layers stay zstd (`--keep-zstd`).
    Nothing,
    /// Every compressed layer (`--uncompressed`).
    All,
}

/// One layer and what to do with it.
#[derive(Debug)]
struct Item {
    layer: Descriptor,
    kind: LayerType,
    diff_id: Digest,
    expand: bool,
    what: String,
}

/// The layers of one image and their fate.
#[derive(Debug)]
pub struct LayerWork {
    items: Vec<Item>,
    platform: PlatformSpec,
}

/// Decides the fate of each layer of `image` (named `name` in messages).
/// The config must already have one diff_id per layer.
pub fn plan(
    image: &ImageManifest,
    config: &ImageConfig,
    expansion: Expansion,
    store: &Store,
    name: &str,
) -> Result<LayerWork> {
    let mut items = Vec::new();
    for (i, (layer, diff_id)) in image.layers.iter().zip(&config.rootfs.diff_ids).enumerate() {
        let what = format!("layer {} of {name}", i + 1);
        let t = layer_types::layer_type(&layer.media_type).map_err(|reason| Error::Manifest {
            what: format!("{what} ({})", layer.digest),
            reason,
        })?;
        if t.foreign {
            log::warn!(
                "{what} ({}) is a foreign (non-distributable) layer; it is fetched from the registry like the others",
                layer.digest.short()
            );
        }
        let expand = match expansion {
            Expansion::Nothing => false,
            Expansion::Zstd => t.compression == Compression::Zstd,
            Expansion::All => t.compression != Compression::None,
        };
        if expand && store.size_of(diff_id).is_some() {
            log::debug!("{what}: its plain tar {} is in the cache", diff_id.short());
        }
        items.push(Item {
            layer: layer.clone(),
            kind: t,
            diff_id: diff_id.clone(),
            expand,
            what,
        });
    }
    let platform = PlatformSpec {
        os: config.os.clone(),
        architecture: config.architecture.clone(),
        variant: config.variant.clone(),
    };
    Ok(LayerWork { items, platform })
}

impl LayerWork {
    /// Whether any layer is decompressed.
    pub fn expands(&self) -> bool {
        self.items.iter().any(|i| i.expand)
    }

    /// The layers to download: all but those whose plain tar the store
    /// already holds.
    pub fn to_fetch<'a>(&'a self, store: &'a Store) -> impl Iterator<Item = &'a Descriptor> + 'a {
        self.items
            .iter()
            .filter(move |i| !(i.expand && store.size_of(&i.diff_id).is_some()))
            .map(|i| &i.layer)
    }

    /// The archive's image: its layers as the archive holds them
    /// (`expanded` has the plain tars, by diff_id) and its manifest for
    /// the OCI layout: the registry's bytes for an OCI manifest whose
    /// layers are unchanged; otherwise an OCI manifest written anew, as
    /// `docker save` does (skopeo's `oci-archive:` reads OCI manifests
    /// only), over the same config bytes.
    pub fn image(&self, resolved: &Resolved, expanded: &[Descriptor]) -> Image {
        let mut layers = Vec::new();
        for item in &self.items {
            let plain = item
                .expand
                .then(|| expanded.iter().find(|d| d.digest == item.diff_id))
                .flatten();
            layers.push(match plain {
                Some(d) => d.clone(),
                None => item.layer.clone(),
            });
        }
        let config = &resolved.image.config;
        let verbatim = resolved.image.media_type == manifest::OCI_MANIFEST
            && !self.items.iter().any(|i| i.expand);
        let (mut manifest, bytes) = if !verbatim {
            let oci_layers: Vec<Descriptor> = layers
                .iter()
                .zip(&self.items)
                .map(|(d, item)| {
                    let mut d = d.clone();
                    if !item.expand && !d.media_type.starts_with("application/vnd.oci.") {
                        d.media_type = layer_types::oci_media_type(item.kind).into();
                    }
                    d
                })
                .collect();
            let bytes = crate::archive::documents::oci_manifest_json(config, &oci_layers);
            let desc = descriptor(manifest::OCI_MANIFEST, &bytes);
            (desc, bytes)
        } else {
            let desc = descriptor(&resolved.image.media_type, &resolved.bytes);
            (desc, resolved.bytes.clone())
        };
        manifest.platform = Some(self.platform.clone());
        Image {
            config: config.clone(),
            layers,
            diff_ids: self.items.iter().map(|i| i.diff_id.clone()).collect(),
            manifest: (manifest, bytes),
        }
    }
}

/// The descriptor of the document `bytes`.
pub fn descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor::new(media_type, Digest::of(bytes), bytes.len() as u64)
}

/// Decompresses every layer the images' work says to (each diff_id once),
/// on up to `threads` threads (at most one per CPU). Returns the plain
/// tars' descriptors.
pub fn expand_all<'a>(
    store: &Store,
    work: impl Iterator<Item = &'a LayerWork>,
    threads: usize,
) -> Result<Vec<Descriptor>> {
    let mut todo: Vec<&Item> = Vec::new();
    for item in work.flat_map(|w| &w.items).filter(|i| i.expand) {
        if !todo.iter().any(|t| t.diff_id == item.diff_id) {
            todo.push(item);
        }
    }
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    todo.sort_by_key(|i| std::cmp::Reverse(i.layer.size));
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = threads.min(cpus).min(todo.len()).max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Result<Descriptor>>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = todo.get(i) else { break };
                if crate::ui::interrupt::interrupted() {
                    break;
                }
                log::debug!(
                    "decompressing {} ({})",
                    item.what,
                    item.layer.digest.short()
                );
                let r = decompress::expand(store, &item.layer, &item.diff_id, &item.what);
                let failed = r.is_err();
                results.lock().unwrap_or_else(|p| p.into_inner()).push(r);
                if failed {
                    // Let the other threads stop at their next layer.
                    next.store(todo.len(), Ordering::Relaxed);
                }
            });
        }
    });
    if crate::ui::interrupt::interrupted() {
        return Err(Error::Interrupted { resumable: true });
    }
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .collect()
}
