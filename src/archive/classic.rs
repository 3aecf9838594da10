//! An OCI manifest for an image of an archive that holds none (docker's
//! classic `docker save`, skopeo's `docker-archive:`): written over the
//! `manifest.json` item's config and layer files as they are, each layer
//! hashed here and its compression read from its first bytes. The config,
//! and so the image ID, is unchanged; the manifest's digest is new. This
//! module reads the archive and writes nothing.

use std::collections::HashMap;

use crate::archive::contents::Origin;
use crate::archive::documents::{oci_manifest_json, ManifestItem};
use crate::archive::reader::Archive;
use crate::archive::tree::{Blob, Node};
use crate::error::{Error, Result};
use crate::image::digest::Digest;
use crate::image::layer_types::{self, LayerType};
use crate::image::manifest::{Descriptor, ImageConfig, MAX_CONFIG_BYTES, OCI_MANIFEST};
use crate::image::upstream::Document;

/// An OCI manifest written for a `manifest.json` item of an archive that
/// holds none: over its config and its layer files as they are, each
/// hashed here (once: `hashed` keeps what a layer's region hashed to and
/// its first bytes, by offset).
pub fn written(
    archive: &Archive,
    item: &ManifestItem,
    hashed: &mut HashMap<u64, (Digest, Vec<u8>)>,
) -> Result<(Node, Origin)> {
    let where_ = |path: &str| format!("{path} in {}", archive.path().display());
    let locate = |path: &str| {
        archive.region(path).ok_or_else(|| Error::Manifest {
            what: where_(path),
            reason: "manifest.json lists it, but the archive does not hold it".into(),
        })
    };
    let config_region = locate(&item.config)?;
    let config_bytes = archive
        .read(&item.config, MAX_CONFIG_BYTES)?
        .ok_or_else(|| locate(&item.config).unwrap_err())?;
    let config = ImageConfig::parse(&config_bytes, &where_(&item.config))?;
    if config.rootfs.diff_ids.len() != item.layers.len() {
        return Err(Error::Manifest {
            what: where_("manifest.json"),
            reason: format!(
                "an item lists {} layers, but its config has {} diff_ids",
                item.layers.len(),
                config.rootfs.diff_ids.len()
            ),
        });
    }
    let config_desc = Descriptor::new(
        "application/vnd.oci.image.config.v1+json",
        Digest::of(&config_bytes),
        config_bytes.len() as u64,
    );
    let mut blobs = vec![Blob {
        digest: config_desc.digest.clone(),
        size: config_desc.size,
        region: config_region,
    }];
    let mut layers = Vec::new();
    for path in &item.layers {
        let region = locate(path)?;
        let (digest, start) = match hashed.get(&region.offset) {
            Some(known) => known.clone(),
            None => {
                let h = archive.hash(region)?;
                hashed.insert(region.offset, h.clone());
                h
            }
        };
        let media_type = layer_types::oci_media_type(LayerType {
            compression: layer_types::sniff(&start),
            foreign: false,
        });
        layers.push(Descriptor::new(media_type, digest.clone(), region.size));
        if !blobs.iter().any(|b| b.digest == digest) {
            blobs.push(Blob {
                digest,
                size: region.size,
                region,
            });
        }
    }
    let bytes = oci_manifest_json(&config_desc, &layers);
    let doc = Document::new(OCI_MANIFEST, bytes);
    let why = "the archive holds no manifest: written over its config and layers".to_string();
    Ok((Node::Image { doc, blobs }, Origin::Written(why)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::contents::{images, Origin};
    use crate::store::cache::Store;

    /// A `docker save`-style archive: no manifest, the layer a link.
    #[test]
    fn an_archive_without_manifests_gets_one() {
        let dir = Store::temporary().unwrap();
        let layer = b"layer bytes, plain";
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            Digest::of(layer)
        );
        let items = br#"[{"Config":"c.json","RepoTags":["team/app:v1","bad name"],"Layers":["x/layer.tar"]},
            {"Config":"c.json","RepoTags":null,"Layers":["x/layer.tar"]}]"#;
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8], link: Option<&str>| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            match link {
                Some(l) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    b.append_link(&mut h, name, l).unwrap()
                }
                None => b.append_data(&mut h, name, data).unwrap(),
            }
        };
        add("c.json", config.as_bytes(), None);
        add("l/layer.tar", layer, None);
        add("x/layer.tar", b"", Some("../l/layer.tar"));
        add("manifest.json", items, None);
        let path = dir.root().join("a.tar");
        std::fs::write(&path, b.into_inner().unwrap()).unwrap();
        let got = images(&Archive::open(&path).unwrap()).unwrap();
        assert_eq!(got.len(), 1, "one image, named once: {got:?}");
        let one = &got[0];
        let names: Vec<String> = one.names.iter().map(|n| n.to_string()).collect();
        assert_eq!(names, ["docker.io/team/app:v1"]);
        assert!(matches!(one.origin, Origin::Written(_)));
        let blobs = one.root.blobs();
        assert_eq!(blobs[0].digest, Digest::of(config.as_bytes()));
        assert_eq!(blobs[1].digest, Digest::of(layer));
        let m: serde_json::Value = serde_json::from_slice(&one.root.doc().bytes).unwrap();
        assert_eq!(m["layers"][0]["mediaType"], layer_types::OCI_LAYER_TAR);
        assert_eq!(
            m["config"]["digest"],
            Digest::of(config.as_bytes()).to_string()
        );
    }
}
