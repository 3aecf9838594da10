//! The soak's checks, each an `Err` with what is wrong rather than a
//! panic, so that a round records its failures and the soak goes on: the
//! archive holds exactly the registry's image (every member of
//! `blobs/sha256/` hashed against its name, the set of blobs, docker's
//! `manifest.json` and the OCI `index.json`); what a failed pull leaves
//! (nothing at `-o`, no temporary file beside it, no temporary store);
//! every file of a cache's blob store hashes to its name; a tag a push
//! wrote names nothing the registry lacks.

use crate::support::images::Image;
use crate::support::registry::{agent, Registry};
use crate::support::util::{hex_of, sha256_hex};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The top-level documents of an archive in the default format (both).
const DOCS: [&str; 4] = ["index.json", "oci-layout", "manifest.json", "repositories"];

/// Checks that `tar` is exactly `img`, named `tag`.
pub fn archive(tar: &Path, img: &Image, tag: &str) -> Result<(), String> {
    let file = std::fs::File::open(tar).map_err(|e| format!("open {}: {e}", tar.display()))?;
    let mut blobs = BTreeSet::new();
    // Blobs small enough to be a manifest, by hex.
    let mut small: HashMap<String, Vec<u8>> = HashMap::new();
    let mut docs: HashMap<String, Vec<u8>> = HashMap::new();
    let mut ar = tar::Archive::new(file);
    let entries = ar.entries().map_err(|e| format!("not a tar: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("a broken tar entry: {e}"))?;
        let name = entry.path().map_err(|e| e.to_string())?;
        let name = name.to_string_lossy().into_owned();
        if entry.header().entry_type().is_dir() {
            if name != "blobs/" && name != "blobs/sha256/" {
                return Err(format!("an unexpected directory {name}"));
            }
            continue;
        }
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| format!("reading {name}: {e}"))?;
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            let got = sha256_hex(&data);
            if got != hex {
                return Err(format!("{name} hashes to sha256:{got}"));
            }
            if !blobs.insert(hex.to_string()) {
                return Err(format!("{name} twice"));
            }
            if data.len() < 1 << 20 {
                small.insert(hex.to_string(), data);
            }
        } else if DOCS.contains(&name.as_str()) {
            if docs.insert(name.clone(), data).is_some() {
                return Err(format!("{name} twice"));
            }
        } else {
            return Err(format!("an unexpected member {name}"));
        }
    }
    // The OCI layout's manifest: the registry's own for an OCI image, one
    // pulltar writes (OCI media types, same config and layers) for a
    // Docker one.
    let index: Value = docs
        .get("index.json")
        .and_then(|d| serde_json::from_slice(d).ok())
        .ok_or("no index.json, or not JSON")?;
    let listed: Vec<String> = index["manifests"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|d| d["digest"].as_str())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let [manifest] = listed.as_slice() else {
        return Err(format!("index.json lists {listed:?}"));
    };
    if img.media_type == crate::support::images::OCI_MANIFEST && *manifest != img.manifest_digest {
        return Err(format!(
            "index.json lists {manifest}, not the registry's manifest"
        ));
    }
    let mut want: BTreeSet<String> = img
        .layers
        .iter()
        .map(|l| hex_of(&l.digest).into())
        .collect();
    want.insert(hex_of(&img.config_digest).into());
    want.insert(hex_of(manifest).into());
    // The registry's own documents, kept for a push: the image manifest
    // (a Docker one besides the OCI manifest written anew), and the index
    // one platform was taken from.
    want.insert(hex_of(&img.manifest_digest).into());
    let entry = &index["manifests"][0]["annotations"];
    if let Some(ix) = entry["pulltar.upstream.index"].as_str() {
        want.insert(hex_of(ix).into());
    }
    if blobs != want {
        let extra: Vec<_> = blobs.difference(&want).collect();
        let missing: Vec<_> = want.difference(&blobs).collect();
        return Err(format!("blobs: extra {extra:?}, missing {missing:?}"));
    }
    let doc: Value = small
        .get(hex_of(manifest))
        .and_then(|d| serde_json::from_slice(d).ok())
        .ok_or_else(|| format!("the OCI manifest {manifest} is not JSON"))?;
    let layer_digests: Vec<&str> = doc["layers"]
        .as_array()
        .map(|l| l.iter().filter_map(|d| d["digest"].as_str()).collect())
        .unwrap_or_default();
    let pushed: Vec<&str> = img.layers.iter().map(|l| l.digest.as_str()).collect();
    if doc["config"]["digest"] != img.config_digest.as_str() || layer_digests != pushed {
        return Err(format!("the OCI manifest {manifest} is {doc}"));
    }
    for doc in DOCS {
        if !docs.contains_key(doc) {
            return Err(format!("no {doc}"));
        }
    }
    let json = |name: &str| -> Result<Value, String> {
        serde_json::from_slice(&docs[name]).map_err(|e| format!("{name}: {e}"))
    };
    let path = |d: &str| format!("blobs/sha256/{}", hex_of(d));
    let layers: Vec<String> = img.layers.iter().map(|l| path(&l.digest)).collect();
    let want = serde_json::json!([{
        "Config": path(&img.config_digest),
        "RepoTags": [tag],
        "Layers": layers,
    }]);
    let mut got = json("manifest.json")?;
    // The record of the registry's own document (for a push): the image
    // manifest pulled, and for one platform of an index, the index, whose
    // bytes must be a blob of the archive.
    let upstream = got
        .get_mut(0)
        .and_then(Value::as_object_mut)
        .and_then(|item| item.remove("PulltarUpstream"));
    if let Some(up) = &upstream {
        let index = up.get("Index").and_then(Value::as_str);
        let index_held = index.is_none_or(|d| blobs.contains(hex_of(d)));
        if up["Digest"] != img.manifest_digest.as_str()
            || up["MediaType"] != img.media_type
            || !index_held
        {
            return Err(format!("manifest.json's PulltarUpstream is {up}"));
        }
    }
    if got != want {
        return Err(format!("manifest.json is {got}, wanted {want}"));
    }
    Ok(())
}

/// The temporary files pulltar writes beside the output `out`
/// (`.NAME.PID.N.partial`).
pub fn temp_beside(out: &Path) -> Vec<PathBuf> {
    let Some(dir) = out.parent() else {
        return Vec::new();
    };
    let name = out.file_name().unwrap_or_default().to_string_lossy();
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// What a failed pull left: a file at `out`, temporary files beside it.
pub fn leftovers(out: &Path) -> Result<(), String> {
    let mut left: Vec<PathBuf> = temp_beside(out);
    if out.exists() {
        left.push(out.to_path_buf());
    }
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("a failed pull left {left:?}"))
    }
}

/// The manifest types a tag may name, for `Accept`.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// The tag `repo:v1`, asked of `reg` itself: `None` if there is none, or
/// the digest of the manifest it names once every blob that manifest
/// references (and every child manifest of an index, with its blobs) is
/// there too (`HEAD`, 200).
pub fn tag_whole(reg: &Registry, repo: &str) -> Result<Option<String>, String> {
    let get = |reference: &str| -> Result<Option<Vec<u8>>, String> {
        let url = reg.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = agent().get(&url).header("Accept", MANIFEST_TYPES).call();
        let mut resp = resp.map_err(|e| format!("GET {url}: {e}"))?;
        match resp.status().as_u16() {
            404 => Ok(None),
            200 => resp
                .body_mut()
                .read_to_vec()
                .map(Some)
                .map_err(|e| e.to_string()),
            s => Err(format!("GET {url} answered {s}")),
        }
    };
    let Some(top) = get("v1")? else {
        return Ok(None);
    };
    let mut missing = Vec::new();
    let mut docs = vec![top.clone()];
    while let Some(doc) = docs.pop() {
        let doc: Value = serde_json::from_slice(&doc).map_err(|e| format!("a manifest: {e}"))?;
        for child in doc["manifests"].as_array().into_iter().flatten() {
            let d = child["digest"].as_str().unwrap_or_default();
            match get(d)? {
                Some(bytes) => docs.push(bytes),
                None => missing.push(format!("manifest {d}")),
            }
        }
        let layers = doc["layers"].as_array().into_iter().flatten();
        for blob in std::iter::once(&doc["config"]).chain(layers) {
            let Some(d) = blob["digest"].as_str() else {
                continue;
            };
            let url = reg.url(&format!("/v2/{repo}/blobs/{d}"));
            let resp = agent().head(&url).call();
            let status = resp.map_err(|e| format!("HEAD {url}: {e}"))?.status();
            if status.as_u16() != 200 {
                missing.push(format!("blob {d} ({status})"));
            }
        }
    }
    if missing.is_empty() {
        Ok(Some(format!("sha256:{}", sha256_hex(&top))))
    } else {
        Err(format!(
            "{repo}:v1 names what is missing: {}",
            missing.join(", ")
        ))
    }
}

/// Files verified already, by path: (inode, size, mtime) when hashed.
pub type Verified = HashMap<PathBuf, (u64, u64, i64)>;

/// Hashes every file of the blob store under `cache` not verified before
/// (blobs are only ever renamed into place, so a file whose inode, size
/// and mtime are unchanged is the one that was hashed).
pub fn cache_store(cache: &Path, seen: &mut Verified) -> Result<(), String> {
    let dir = cache.join("blobs/sha256");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let mut bad = Vec::new();
    for e in entries.filter_map(|e| e.ok()) {
        let path = e.path();
        let Ok(meta) = e.metadata() else { continue };
        let key = (meta.ino(), meta.len(), meta.mtime());
        if seen.get(&path) == Some(&key) {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let data = std::fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
        let got = sha256_hex(&data);
        if got == name {
            seen.insert(path, key);
        } else {
            bad.push(format!("{name} hashes to {got}"));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("cache {}: {}", cache.display(), bad.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::images::push_simple;
    use crate::support::images::Flavor;
    use crate::support::util::{pulltar_in, Rng, TempDir};

    /// Inverts the byte at `at` bytes into member `name` of `tar`.
    fn corrupt_member(tar: &Path, name: &str, at: u64) {
        let file = std::fs::File::open(tar).unwrap();
        let mut ar = tar::Archive::new(file);
        let pos = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_string_lossy() == name)
            .map(|e| e.raw_file_position())
            .unwrap_or_else(|| panic!("no {name} in {}", tar.display()));
        let mut data = std::fs::read(tar).unwrap();
        data[(pos + at) as usize] ^= 0xff;
        std::fs::write(tar, data).unwrap();
    }

    #[test]
    fn the_archive_check_passes_a_real_pull_and_fails_a_changed_one() {
        let reg = Registry::start();
        for flavor in [Flavor::Docker, Flavor::Oci] {
            let img = push_simple(&reg, "soak/check", "v1", flavor);
            let work = TempDir::new("soakchk");
            let out = work.join("image.tar");
            let reference = format!("{}/soak/check:v1", reg.host());
            let args = [
                reference.as_str(),
                "-o",
                out.to_str().unwrap(),
                "--no-cache",
            ];
            pulltar_in(work.path(), &args).ok("pulltar");
            archive(&out, &img, &reference).unwrap();
            let other = push_simple(&reg, "soak/other", "v1", flavor);
            let err = archive(&out, &other, &reference).unwrap_err();
            let named = ["blobs: extra", "not the registry's manifest"];
            assert!(named.iter().any(|n| err.contains(n)), "{err}");
            let err = archive(&out, &img, "127.0.0.1:1/soak/check:v1").unwrap_err();
            assert!(err.contains("manifest.json is"), "{err}");
            let layer = format!("blobs/sha256/{}", hex_of(&img.layers[1].digest));
            corrupt_member(&out, &layer, 100);
            let err = archive(&out, &img, &reference).unwrap_err();
            assert!(err.contains(&format!("{layer} hashes to")), "{err}");
        }
    }

    #[test]
    fn the_cache_check_hashes_new_files_once_and_names_a_bad_one() {
        let dir = TempDir::new("soakcache");
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let data = Rng::new().bytes(1000);
        std::fs::write(blobs.join(sha256_hex(&data)), &data).unwrap();
        let mut seen = Verified::new();
        cache_store(dir.path(), &mut seen).unwrap();
        assert_eq!(seen.len(), 1);
        let mut bad = data.clone();
        bad[7] ^= 1;
        std::fs::write(blobs.join(sha256_hex(&bad)), &data).unwrap();
        let err = cache_store(dir.path(), &mut seen).unwrap_err();
        assert!(err.contains(&sha256_hex(&bad)), "{err}");
        assert_eq!(seen.len(), 1, "a bad file is not remembered as verified");
    }

    #[test]
    fn leftovers_name_the_output_and_the_temporary_file_beside_it() {
        let dir = TempDir::new("soakleft");
        let out = dir.join("image.tar");
        leftovers(&out).unwrap();
        std::fs::write(dir.join(".image.tar.123.4.partial"), b"x").unwrap();
        std::fs::write(dir.join("other.tar"), b"x").unwrap();
        let err = leftovers(&out).unwrap_err();
        assert!(err.contains(".image.tar.123.4.partial"), "{err}");
        std::fs::write(&out, b"x").unwrap();
        assert_eq!(temp_beside(&out).len(), 1);
        assert!(leftovers(&out).unwrap_err().contains("image.tar\""));
    }
}
