//! `pulltar inspect IMAGE`: what an image is, without downloading it —
//! the manifest's digest and media type, the platforms of an index, and
//! for the chosen platform the image manifest, its config and layers with
//! sizes and the total; `--list-platforms` shows only the platforms;
//! `--json` prints the same as one JSON document for scripts.
//!
//! Only manifests and the (small, verified) config are fetched; no layer
//! is requested and nothing is written to the cache. Resolution is
//! [`crate::resolve`]'s, the same rules as a pull.

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::image::digest::Digest;
use crate::image::manifest::{self, Descriptor, ImageConfig, Manifest};
use crate::pull::Plan;
use crate::registry::mirrors::Hosts;
use crate::resolve;
use crate::ui::counters::human_bytes;

/// What `inspect` was asked for.
#[derive(Debug, Default, Clone, Copy)]
pub struct Options {
    /// One JSON document on stdout.
    pub json: bool,
    /// Only the platforms.
    pub list_platforms: bool,
}

/// Inspects the one image of `plan` (platform from `plan.platform`) and
/// returns the text to print.
pub fn run(plan: &Plan, opts: Options) -> Result<String> {
    let [reference] = plan.references.as_slice() else {
        return Err(Error::Usage(format!(
            "inspect takes one image, got {}",
            plan.references.len()
        )));
    };
    if plan.selection.is_several() && !opts.list_platforms {
        return Err(Error::Usage(
            "pulltar inspect shows one platform: give one --platform, or --list-platforms to see them all".into(),
        ));
    }
    let registry = Hosts::connect(reference, &plan.registry)?;
    let top = resolve::top(&registry, reference)?;
    let mut doc = json!({
        "reference": reference.original(),
        "name": reference.familiar_name(),
        "digest": top.digest.to_string(),
        "mediaType": top.media_type,
        "size": top.bytes.len(),
    });
    let (image, image_digest, image_type, platform_note) = match &top.manifest {
        Manifest::Index(index) => {
            let entries = resolve::entries(&registry, reference, index.clone())?;
            doc["platforms"] = Value::Array(
                entries
                    .iter()
                    .map(|d| {
                        json!({
                            "platform": d.platform_as_listed(),
                            "digest": d.digest.to_string(),
                            "mediaType": d.media_type,
                            "size": d.size,
                        })
                    })
                    .collect(),
            );
            if opts.list_platforms {
                return Ok(render(&doc, opts));
            }
            let chosen = match resolve::choose(reference, &entries, &plan.platform) {
                Ok(c) => c,
                // Without --platform, an index lacking this host's platform
                // is still worth showing.
                Err(Error::Platform(msg)) if !plan.platform_explicit => {
                    doc["note"] = Value::String(msg);
                    return Ok(render(&doc, opts));
                }
                Err(e) => return Err(e),
            };
            let (fetched, image) = resolve::child(&registry, reference, chosen)?;
            (
                image,
                fetched.digest,
                fetched.media_type,
                Some(chosen.platform_as_listed()),
            )
        }
        Manifest::Image(m) => (m.clone(), top.digest.clone(), top.media_type.clone(), None),
        Manifest::Schema1(m) => {
            // No config and no sizes: say what there is; a pull converts it.
            doc["note"] = Value::String(format!(
                "a Docker schema 1 manifest ({}, {} layers, sizes not given); a pull converts it to a current image",
                m.architecture,
                m.fs_layers.len()
            ));
            return Ok(render(&doc, opts));
        }
    };
    let config = fetch_config(&registry, &image.config)?;
    let platform = platform_note.unwrap_or_else(|| config.platform().to_string());
    if opts.list_platforms {
        doc["platforms"] = json!([{
            "platform": platform,
            "digest": image_digest.to_string(),
            "mediaType": image_type,
        }]);
        return Ok(render(&doc, opts));
    }
    let total: u64 = image.layers.iter().map(|l| l.size).sum();
    doc["image"] = json!({
        "platform": platform,
        "configPlatform": config.platform().to_string(),
        "digest": image_digest.to_string(),
        "mediaType": image_type,
        "config": descriptor(&image.config),
        "layers": image.layers.iter().map(descriptor).collect::<Vec<_>>(),
        "layersSize": total,
        "totalSize": total + image.config.size,
    });
    Ok(render(&doc, opts))
}

fn descriptor(d: &Descriptor) -> Value {
    json!({"digest": d.digest.to_string(), "size": d.size, "mediaType": d.media_type})
}

fn fetch_config(registry: &Hosts, desc: &Descriptor) -> Result<ImageConfig> {
    manifest::check_config_size(desc)?;
    let bytes = registry.small_blob(&desc.digest, desc.size)?;
    let actual = Digest::of(&bytes);
    if actual != desc.digest || bytes.len() as u64 != desc.size {
        return Err(Error::Verify {
            digest: desc.digest.to_string(),
            detail: format!("the registry's config hashes to {actual}"),
        });
    }
    ImageConfig::parse(&bytes, &format!("config {}", desc.digest))
}

fn render(doc: &Value, opts: Options) -> String {
    if opts.json {
        let mut s = serde_json::to_string_pretty(doc).unwrap_or_default();
        s.push('\n');
        return s;
    }
    let field = |k: &str| doc[k].as_str().unwrap_or("").to_string();
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    if opts.list_platforms {
        for p in doc["platforms"].as_array().into_iter().flatten() {
            line(format!(
                "{:<16} {}",
                p["platform"].as_str().unwrap_or(""),
                p["digest"].as_str().unwrap_or("")
            ));
        }
        return out;
    }
    line(format!("Image:       {}", field("reference")));
    line(format!("Digest:      {}", field("digest")));
    line(format!("Media type:  {}", field("mediaType")));
    if let Some(platforms) = doc["platforms"].as_array() {
        line(format!("Platforms:   {}", platforms.len()));
        for p in platforms {
            line(format!(
                "  {:<16} {}  {}",
                p["platform"].as_str().unwrap_or(""),
                p["digest"].as_str().unwrap_or(""),
                human_bytes(p["size"].as_u64().unwrap_or(0))
            ));
        }
    }
    if let Some(note) = doc["note"].as_str() {
        line(format!("Note:        {note}"));
    }
    let image = &doc["image"];
    if image.is_object() {
        let s = |k: &str| image[k].as_str().unwrap_or("").to_string();
        let size = |v: &Value| human_bytes(v["size"].as_u64().unwrap_or(0));
        line(format!("Platform:    {}", s("platform")));
        if doc["platforms"].is_array() {
            line(format!("Manifest:    {} ({})", s("digest"), s("mediaType")));
        }
        let config = &image["config"];
        line(format!(
            "Config:      {}  {}",
            config["digest"].as_str().unwrap_or(""),
            size(config)
        ));
        let layers = image["layers"].as_array().cloned().unwrap_or_default();
        line(format!("Layers:      {}", layers.len()));
        for l in &layers {
            line(format!(
                "  {}  {:>9}  {}",
                l["digest"].as_str().unwrap_or(""),
                size(l),
                l["mediaType"].as_str().unwrap_or("")
            ));
        }
        line(format!(
            "Total:       {} in {} layers ({} with the config)",
            human_bytes(image["layersSize"].as_u64().unwrap_or(0)),
            layers.len(),
            human_bytes(image["totalSize"].as_u64().unwrap_or(0))
        ));
    }
    out
}
