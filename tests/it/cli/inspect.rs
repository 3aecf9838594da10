//! `pulltar inspect`: for an index (the platforms, and the chosen one's
//! layers) and for a single manifest, as text and as `--json`;
//! `--list-platforms`; a missing platform; and no blob but the config is
//! ever requested (counted at the registry's access log); a config's
//! control characters are printed escaped.

use crate::support::images::{
    build_image, push_image, push_index, push_simple, Flavor, Platform, ARM64,
};
use crate::support::registry::Registry;
use crate::support::util::{pulltar_in, Rng, TempDir};
use serde_json::Value;

fn inspect(args: &[&str]) -> crate::support::util::Output {
    let work = TempDir::new("inspect");
    let mut v = vec!["inspect"];
    v.extend_from_slice(args);
    pulltar_in(work.path(), &v)
}

fn blob_gets(reg: &Registry) -> Vec<String> {
    reg.log()
        .lines()
        .filter(|l| l.contains("\"GET /v2/") && l.contains("/blobs/"))
        .map(str::to_string)
        .collect()
}

#[test]
fn inspect_an_index() {
    let reg = Registry::start();
    let index = push_index(&reg, "team/multi", "v1", Flavor::Oci);
    let reference = format!("{}/team/multi:v1", reg.host());
    let child = index.child(&ARM64);
    let res = inspect(&["-a", "arm64", &reference]);
    assert_eq!(res.code, 0, "{res}");
    let out = &res.stdout;
    for want in [
        format!("Image:       {reference}"),
        format!("Digest:      {}", index.digest),
        "Media type:  application/vnd.oci.image.index.v1+json".to_string(),
        "Platforms:   3".to_string(),
        "  linux/amd64 ".to_string(),
        "  linux/arm/v7 ".to_string(),
        "Platform:    linux/arm64/v8".to_string(),
        format!("Manifest:    {} (", child.manifest_digest),
        format!("Config:      {}", child.config_digest),
        "Layers:      2".to_string(),
        " in 2 layers (".to_string(),
    ] {
        assert!(out.contains(&want), "{want:?} missing:\n{res}");
    }
    for l in &child.layers {
        assert!(out.contains(&l.digest), "{res}");
    }
    // Only the config was fetched, never a layer.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let gets = blob_gets(&reg);
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert!(gets[0].contains(&child.config_digest), "{gets:?}");

    let res = inspect(&["--json", "--platform", "linux/arm64", &reference]);
    assert_eq!(res.code, 0, "{res}");
    let v: Value = serde_json::from_str(&res.stdout).expect("--json prints JSON");
    assert_eq!(v["digest"], index.digest.as_str());
    assert_eq!(v["platforms"].as_array().unwrap().len(), 3);
    assert_eq!(v["image"]["digest"], child.manifest_digest.as_str());
    assert_eq!(v["image"]["platform"], "linux/arm64/v8");
    let layers = v["image"]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    let total: u64 = child.layers.iter().map(|l| l.blob.len() as u64).sum();
    assert_eq!(v["image"]["layersSize"], total);
    assert_eq!(layers[0]["digest"], child.layers[0].digest.as_str());

    let res = inspect(&["--list-platforms", &reference]);
    assert_eq!(res.code, 0, "{res}");
    let lines: Vec<&str> = res.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{res}");
    assert!(lines[1].starts_with("linux/arm64/v8 "), "{res}");

    let res = inspect(&["--platform", "linux/s390x", &reference]);
    assert_eq!(res.code, 1, "{res}");
    assert!(
        res.stderr
            .contains("available platforms: linux/amd64, linux/arm64/v8, linux/arm/v7"),
        "{res}"
    );
}

#[test]
fn inspect_a_single_manifest() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v2", Flavor::Docker);
    let reference = format!("{}/team/app:v2", reg.host());
    let res = inspect(&[&reference]);
    assert_eq!(res.code, 0, "{res}");
    for want in [
        format!("Digest:      {}", img.manifest_digest),
        "Media type:  application/vnd.docker.distribution.manifest.v2+json".to_string(),
        "Platform:    linux/amd64".to_string(),
        "Layers:      3".to_string(),
    ] {
        assert!(res.stdout.contains(&want), "{want:?} missing:\n{res}");
    }
    assert!(!res.stdout.contains("Platforms:"), "{res}");
    let res = inspect(&["--json", &reference]);
    let v: Value = serde_json::from_str(&res.stdout).expect("JSON");
    assert!(v.get("platforms").is_none(), "{v}");
    assert_eq!(v["image"]["config"]["digest"], img.config_digest.as_str());
    let total: u64 = img.layers.iter().map(|l| l.blob.len() as u64).sum();
    assert_eq!(
        v["image"]["totalSize"],
        total + img.config.len() as u64,
        "{v}"
    );
    let res = inspect(&[&format!("{}/team/app:nope", reg.host())]);
    assert_eq!(res.code, 1, "{res}");
    assert!(res.stderr.contains("has these tags: v2"), "{res}");
}

/// Whether `text` holds a character a terminal would act on or show
/// reversed: C0 but the line feed, DEL, C1, a bidi override.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c))
        .collect()
}

#[test]
fn a_configs_control_characters_are_printed_escaped() {
    let reg = Registry::start();
    let hostile = Platform {
        os: "linux",
        arch: "amd\u{1b}]0;pwned\u{7}\u{1b}[2J64",
        variant: Some("v\u{9b}1\u{202e}8"),
    };
    let img = build_image(&mut Rng::new(), Flavor::Oci, hostile.clone(), 1, 4096);
    push_image(&reg, "team/odd", Some("v1"), &img);
    let reference = format!("{}/team/odd:v1", reg.host());

    let res = inspect(&[&reference]);
    assert_eq!(res.code, 0, "{res}");
    assert!(raw_controls(&res.stdout).is_empty(), "{:?}", res.stdout);
    assert!(raw_controls(&res.stderr).is_empty(), "{:?}", res.stderr);
    assert!(
        res.stdout
            .contains("Platform:    linux/amd\\u001b]0;pwned\\u0007\\u001b[2j64/v\\u009b1\\u202e8"),
        "{res}"
    );

    // As JSON the escapes are JSON's own: the document still reads back
    // to the config's text (lowercased, as platforms are).
    let res = inspect(&["--json", &reference]);
    assert_eq!(res.code, 0, "{res}");
    assert!(raw_controls(&res.stdout).is_empty(), "{:?}", res.stdout);
    let v: Value = serde_json::from_str(&res.stdout).expect("--json prints JSON");
    assert_eq!(
        v["image"]["configPlatform"],
        format!("linux/{}/{}", hostile.arch, hostile.variant.unwrap())
            .to_lowercase()
            .as_str()
    );
}
