//! Docker schema 1 images (old Quay and private registries) made
//! loadable, as docker itself converted them: the layers are fetched
//! (their sizes, which schema 1 does not give, from a one-byte `Range`
//! request), each one's diff_id is computed by decompressing it, and an
//! image config is written from the top layer's `v1Compatibility` JSON
//! with `rootfs.diff_ids` and a `history` built from every entry. Entries
//! marked `throwaway` (empty layers) are kept in the history as
//! `empty_layer` and left out of the layers.
//!
//! The blobs are verified like any others; the config is pulltar's own and
//! is stored by its digest. The manifest's signature is not checked (no
//! loader does), so a schema 1 image pulled by digest is refused: its
//! digest covers only part of the signed document. This module does not
//! write the archive.

use serde_json::{json, Map, Value};

use crate::archive::decompress;
use crate::error::{Error, Result};
use crate::fetch::download::Downloader;
use crate::image::digest::Digest;
use crate::image::manifest::Resolved;
use crate::image::manifest::{Descriptor, ImageManifest, Schema1, DOCKER_SCHEMA1};
use crate::registry::client::Registry;
use crate::registry::http_error;
use crate::store::cache::Store;

const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Converts the schema 1 manifest `m` (of digest `digest`, for the image
/// `name`) into an image whose layers and config are in the store.
pub fn convert(
    downloader: &Downloader,
    store: &Store,
    registry: &Registry,
    m: Schema1,
    digest: Digest,
    name: &str,
) -> Result<Resolved> {
    let bad = |reason: String| Error::Manifest {
        what: format!("schema 1 manifest of {name}"),
        reason,
    };
    let mut entries = Vec::new();
    for (layer, history) in m.fs_layers.iter().zip(&m.history).rev() {
        let v1: Map<String, Value> = serde_json::from_str(&history.v1_compatibility)
            .map_err(|e| bad(format!("a v1Compatibility entry is not a JSON object: {e}")))?;
        let throwaway = v1.get("throwaway").and_then(Value::as_bool) == Some(true);
        entries.push((layer.blob_sum.clone(), v1, throwaway));
    }
    let mut layers = Vec::new();
    for (blob, _, throwaway) in &entries {
        if !throwaway {
            layers.push(Descriptor {
                media_type: DOCKER_LAYER.into(),
                digest: blob.clone(),
                size: blob_size(registry, blob)?,
                platform: None,
                annotations: Default::default(),
            });
        }
    }
    downloader.progress.expect(layers.len() as u64);
    downloader.fetch_all(&layers)?;
    let mut diff_ids: Vec<Digest> = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let what = format!("layer {} of {name}", i + 1);
        diff_ids.push(decompress::diff_id_of(store, layer, &what)?);
    }
    let history: Vec<Value> = entries
        .iter()
        .map(|(_, v1, throwaway)| history_entry(v1, *throwaway))
        .collect();
    let Some((_, top, _)) = entries.last() else {
        return Err(bad("it has no layers".into()));
    };
    let mut config = top.clone();
    for key in ["id", "parent", "Size", "parent_id", "layer_id", "throwaway"] {
        config.remove(key);
    }
    if !config.contains_key("architecture") && !m.architecture.is_empty() {
        config.insert("architecture".into(), json!(m.architecture));
    }
    config
        .entry("os".to_string())
        .or_insert_with(|| json!("linux"));
    config.insert(
        "rootfs".into(),
        json!({"type": "layers", "diff_ids": diff_ids}),
    );
    config.insert("history".into(), json!(history));
    let bytes = serde_json::to_vec(&config).unwrap_or_default();
    let config_digest = Digest::of(&bytes);
    if store.size_of(&config_digest) != Some(bytes.len() as u64) {
        let (temp, mut file) = store.create_temp(&format!("{}.config", config_digest.hex()))?;
        std::io::Write::write_all(&mut file, &bytes).map_err(|e| Error::io("write", &temp, e))?;
        drop(file);
        store.commit(&temp, &config_digest)?;
    }
    log::info!(
        "{name}: converted its Docker schema 1 manifest; image ID {}",
        config_digest.short()
    );
    Ok(Resolved {
        digest,
        index: None,
        bytes: Vec::new(),
        image: ImageManifest {
            media_type: DOCKER_SCHEMA1[0].into(),
            config: Descriptor {
                media_type: DOCKER_CONFIG.into(),
                digest: config_digest,
                size: bytes.len() as u64,
                platform: None,
                annotations: Default::default(),
            },
            layers,
        },
        from_index: false,
    })
}

/// A config `history` entry from a v1 JSON, as docker writes it.
fn history_entry(v1: &Map<String, Value>, empty: bool) -> Value {
    let mut h = Map::new();
    for (from, to) in [
        ("created", "created"),
        ("author", "author"),
        ("comment", "comment"),
    ] {
        if let Some(v) = v1
            .get(from)
            .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        {
            h.insert(to.into(), v.clone());
        }
    }
    let cmd: Vec<&str> = v1
        .get("container_config")
        .and_then(|c| c.get("Cmd"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !cmd.is_empty() {
        h.insert("created_by".into(), json!(cmd.join(" ")));
    }
    if empty {
        h.insert("empty_layer".into(), json!(true));
    }
    Value::Object(h)
}

/// The size of a blob, which schema 1 does not give: the total of a
/// one-byte `Range` answer, or the length of a whole one.
fn blob_size(registry: &Registry, digest: &Digest) -> Result<u64> {
    let what = format!("finding the size of blob {digest}");
    registry.request(&what, true, |permit| {
        let mut resp = registry.open_blob(digest, Some((0, 1)), permit)?;
        let header = |name: &str| http_error::header(&resp, name).map(str::to_string);
        let size = match resp.status().as_u16() {
            206 => header("content-range")
                .and_then(|r| r.rsplit_once('/').and_then(|(_, t)| t.trim().parse().ok())),
            200 => header("content-length").and_then(|l| l.trim().parse().ok()),
            _ => return Err(registry.blob_error(digest, &mut resp)),
        };
        size.ok_or_else(|| Error::Verify {
            digest: digest.to_string(),
            detail: "the registry gave no size for this schema 1 layer".into(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_from_v1() {
        let v1: Map<String, Value> = serde_json::from_str(
            r##"{"id":"x","created":"2016-01-01T00:00:00Z","author":"","container_config":{"Cmd":["/bin/sh","-c","#(nop) ADD file"]},"throwaway":true}"##,
        )
        .unwrap();
        let h = history_entry(&v1, true);
        assert_eq!(h["created"], "2016-01-01T00:00:00Z");
        assert_eq!(h["created_by"], "/bin/sh -c #(nop) ADD file");
        assert_eq!(h["empty_layer"], true);
        assert!(h.get("author").is_none());
        assert!(history_entry(&Map::new(), false)
            .as_object()
            .unwrap()
            .is_empty());
    }
}
