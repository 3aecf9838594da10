//! The archive formats: several images in one archive (positional and
//! `-f` lists, shared layers stored and fetched once, one item per image
//! manifest with all its tags), `-o -` piped into `podman load`, zstd
//! layers turned into plain tar checked against the config's diff_ids
//! (`--keep-zstd`, `--uncompressed`), `--format docker|oci|both`, and the
//! manifest shapes (nested and too-deep indexes, an entry without a
//! platform, no layers, a layer listed twice, an artifact layer). Each
//! archive is proven with skopeo, podman, containerd 1.6 and docker 20.10.

use crate::support::containerd::Containerd;
use crate::support::dockerd::Dockerd;
use crate::support::images::{
    build_image, image_of_layers, push_image, push_simple, random_layer, Flavor, Image, AMD64,
    OCI_LAYER, OCI_MANIFEST,
};
use crate::support::images_more::{
    push_deep_index, push_dup_layer_image, push_nested_index, push_no_platform_index,
    push_shared_layer_images, push_zero_layer_image, push_zstd_image, zstd_layer, OCI_LAYER_TAR,
    OCI_LAYER_ZSTD,
};
use crate::support::loaders::{
    check_archive, podman_command, podman_images, podman_load, podman_load_all, read_tar,
    skopeo_copy_to_dir, skopeo_copy_to_oci, skopeo_inspect, verify_everywhere,
};
use crate::support::oci_check::{oci_images, skopeo_copy_oci_archive, OciImage};
use crate::support::registry::Registry;
use crate::support::util::pull_ok;
use crate::support::util::{
    digest_of, hex_of, pulltar_in, require_tool, run, Output, Rng, TempDir, PULLTAR,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const HELM_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", hex_of(digest))
}

/// The items of the archive's manifest.json.
fn manifest_items(files: &HashMap<String, Vec<u8>>) -> Vec<Value> {
    let data = files
        .get("manifest.json")
        .expect("manifest.json in archive");
    let v: Value = serde_json::from_slice(data).expect("manifest.json is JSON");
    v.as_array().expect("manifest.json is a list").clone()
}

/// The manifest.json item whose Config is `config_digest`'s blob.
fn item_for<'a>(items: &'a [Value], config_digest: &str) -> &'a Value {
    let want = blob_path(config_digest);
    items
        .iter()
        .find(|i| i["Config"] == want.as_str())
        .unwrap_or_else(|| panic!("no manifest.json item with Config {want}: {items:?}"))
}

fn strings(v: &Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v} is not a string list: {e}"))
}

/// The `manifests` of the archive's index.json.
fn index_entries(files: &HashMap<String, Vec<u8>>) -> Vec<Value> {
    let data = files.get("index.json").expect("index.json in archive");
    let v: Value = serde_json::from_slice(data).expect("index.json is JSON");
    v["manifests"]
        .as_array()
        .expect("index.json manifests")
        .clone()
}

/// The OCI layout's entry named `name` (`io.containerd.image.name`).
fn oci_named<'a>(oci: &'a [OciImage], name: &str) -> &'a OciImage {
    oci.iter()
        .find(|o| o.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("index.json has no entry named {name}: {oci:?}"))
}

/// How many times the registry served a GET of blob `digest` (any repo);
/// the access log prints `"GET /v2/REPO/blobs/DIGEST HTTP/1.1"`.
fn blob_gets(reg: &Registry, digest: &str) -> Vec<String> {
    let needle = format!("/blobs/{digest} ");
    reg.log()
        .lines()
        .filter(|l| l.contains("\"GET /v2/") && l.contains(&needle))
        .map(str::to_string)
        .collect()
}

/// `skopeo copy SRC dir:DIR` into a fresh DIR; the config digest it
/// recorded (its config file checked against it).
fn skopeo_to_dir(src: &str) -> String {
    let dir = TempDir::new("skdir");
    let dest = dir.join("d");
    run(
        Command::new(require_tool("skopeo", "skopeo"))
            .args(["copy", "--quiet", src])
            .arg(format!("dir:{}", dest.display())),
        Duration::from_secs(180),
    )
    .ok(&format!("skopeo copy {src} dir:"));
    let m: Value =
        serde_json::from_slice(&std::fs::read(dest.join("manifest.json")).unwrap()).unwrap();
    let cdigest = m["config"]["digest"].as_str().expect("config digest");
    let config = std::fs::read(dest.join(hex_of(cdigest))).expect("config in dir:");
    assert_eq!(
        digest_of(&config),
        cdigest,
        "dir: config matches its digest"
    );
    cdigest.to_string()
}

/// Runs `pulltar ARGS` in `work` and insists on a failure with `code`
/// that left nothing at `out` (nor a temp file beside it, in `out`'s
/// directory, which must hold nothing else).
fn pull_fails(work: &TempDir, args: &[&str], code: i32, out: &Path) -> Output {
    let res = pulltar_in(work.path(), args);
    assert_eq!(res.code, code, "pulltar {args:?}:\n{res}");
    assert!(
        !out.exists(),
        "{} exists after a failure:\n{res}",
        out.display()
    );
    let dir = out.parent().unwrap();
    let left = crate::support::util::list_dir(dir);
    assert!(
        left.is_empty(),
        "{} holds {left:?} after a failed pull:\n{res}",
        dir.display()
    );
    res
}

/// `docker load -i T` (must succeed).
fn docker_load(d: &Dockerd, tar: &Path) {
    let out = d.docker(&["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(out.code, 0, "docker load failed:\n{out}\n{}", d.log());
}

/// `docker image inspect REF`, parsed.
fn docker_inspect(d: &Dockerd, reference: &str) -> Value {
    let out = d
        .docker(&["image", "inspect", reference])
        .ok("docker image inspect");
    let v: Value = serde_json::from_str(&out.stdout).expect("docker inspect JSON");
    v[0].clone()
}

/// The loaded image `reference` has ID = config digest and RootFS.Layers
/// = diff_ids.
fn assert_docker_image(d: &Dockerd, reference: &str, img: &Image) {
    let info = docker_inspect(d, reference);
    assert_eq!(
        info["Id"],
        img.config_digest.as_str(),
        "docker ID of {reference}: {info}"
    );
    // docker leaves `Layers` out of RootFS when there are none.
    let layers = match &info["RootFS"]["Layers"] {
        Value::Null => vec![],
        v => strings(v),
    };
    assert_eq!(
        layers,
        img.diff_ids(),
        "docker RootFS.Layers of {reference}: {info}"
    );
}

/// Removes every image from dockerd (so the next load must apply every
/// layer again, not reuse one it has).
fn docker_forget(d: &Dockerd) {
    let ids = d.docker(&["image", "ls", "-aq"]).ok("docker image ls");
    let ids: Vec<&str> = ids.stdout.split_whitespace().collect();
    if !ids.is_empty() {
        let mut args = vec!["image", "rm", "-f"];
        args.extend(ids);
        d.docker(&args).ok("docker image rm");
    }
    let left = d.docker(&["image", "ls", "-aq"]).ok("docker image ls");
    assert!(left.stdout.trim().is_empty(), "images left: {left}");
}

/// Removes every image from containerd and waits for the garbage
/// collector, so no content or snapshot is left for the next import to
/// reuse.
fn containerd_forget(c: &Containerd) {
    let names: Vec<String> = c.images().into_iter().map(|(n, _)| n).collect();
    if !names.is_empty() {
        let mut args = vec!["images", "rm", "--sync"];
        args.extend(names.iter().map(String::as_str));
        c.ctr(&args, 60).ok("ctr images rm --sync");
    }
    let snaps = c
        .ctr(&["snapshots", "--snapshotter", "native", "ls"], 30)
        .ok("ctr snapshots ls");
    assert_eq!(
        snaps.stdout.trim().lines().count(),
        1,
        "snapshots left after removing every image:\n{snaps}"
    );
    let content = c.ctr(&["content", "ls", "-q"], 30).ok("ctr content ls");
    assert!(
        content.stdout.trim().is_empty(),
        "content left after removing every image:\n{content}"
    );
}

/// The docker-archive view of a plain pull: Layers = the pushed blobs.
fn assert_layers_as_pushed(files: &HashMap<String, Vec<u8>>, item: &Value, img: &Image) {
    let want: Vec<String> = img.layers.iter().map(|l| blob_path(&l.digest)).collect();
    assert_eq!(strings(&item["Layers"]), want, "Layers of {item}");
    for l in &img.layers {
        assert!(
            files.get(&blob_path(&l.digest)) == Some(&l.blob),
            "layer {} is not stored as pushed",
            l.digest
        );
    }
    assert_eq!(
        files.get(&blob_path(&img.config_digest)),
        Some(&img.config),
        "config bytes verbatim"
    );
}

#[test]
fn several_images_share_layers_and_load_everywhere() {
    let reg = Registry::start();
    let (a, b) = push_shared_layer_images(&reg, "team/a", "t", "team/b", "t");
    push_image(&reg, "team/b", Some("alias"), &b);
    let shared = a.layers[0].digest.clone();
    assert_eq!(shared, b.layers[0].digest);
    let ref_a = format!("{}/team/a:t", reg.host());
    let ref_b = format!("{}/team/b:t", reg.host());
    let ref_alias = format!("{}/team/b:alias", reg.host());
    let work = TempDir::new("multi");
    let tar = pull_ok(&work, &ref_a, &[&ref_b, &ref_alias]);

    // read_tar panics on a duplicate entry: the shared blob is stored once.
    let files = read_tar(&tar);
    let items = manifest_items(&files);
    assert_eq!(items.len(), 2, "two image manifests, two items: {items:?}");
    let (item_a, item_b) = (
        item_for(&items, &a.config_digest),
        item_for(&items, &b.config_digest),
    );
    assert_eq!(strings(&item_a["RepoTags"]), std::slice::from_ref(&ref_a));
    assert_eq!(
        strings(&item_b["RepoTags"]),
        [ref_b.clone(), ref_alias.clone()],
        "both tags of B on one item"
    );
    assert_layers_as_pushed(&files, item_a, &a);
    assert_layers_as_pushed(&files, item_b, &b);
    let repos: Value = serde_json::from_slice(&files["repositories"]).unwrap();
    for r in [&ref_a, &ref_b, &ref_alias] {
        let (name, tag) = r.rsplit_once(':').unwrap();
        assert!(
            repos[name][tag].is_string(),
            "repositories lacks {r}: {repos}"
        );
    }
    let blobs = files.keys().filter(|k| k.starts_with("blobs/")).count();
    // 2 configs, 3 distinct layers, 2 OCI manifests (B's tags share one),
    // and the registry's 2 Docker manifests, kept as they came for a push.
    assert_eq!(blobs, 9, "blobs in the archive: {:?}", files.keys());
    for img in [&a, &b] {
        assert!(
            files.get(&blob_path(&img.manifest_digest)) == Some(&img.manifest),
            "the registry's manifest {} is not kept byte for byte",
            img.manifest_digest
        );
    }

    // The OCI view: one entry per name, the same manifest for B's two tags.
    let oci = oci_images(&tar);
    assert_eq!(oci.len(), 3, "index.json entries: {oci:?}");
    for (name, ref_name, img) in [
        (&ref_a, "t", &a),
        (&ref_b, "t", &b),
        (&ref_alias, "alias", &b),
    ] {
        let o = oci_named(&oci, name);
        assert_eq!(o.ref_name.as_deref(), Some(ref_name), "ref name of {name}");
        assert_eq!(o.config_digest, img.config_digest, "config of {name}");
        let layers: Vec<String> = img.layers.iter().map(|l| l.digest.clone()).collect();
        assert_eq!(o.layers, layers, "layers of {name}");
        // A Docker schema2 manifest is rewritten as OCI over the same config.
        assert_eq!(
            o.manifest["mediaType"], OCI_MANIFEST,
            "{name}: {}",
            o.manifest
        );
        assert_ne!(o.manifest_digest, img.manifest_digest, "{name}: rewritten");
        assert_eq!(o.layer_media_types, [OCI_LAYER, OCI_LAYER], "{name}");
    }
    assert_eq!(
        oci_named(&oci, &ref_b).manifest_digest,
        oci_named(&oci, &ref_alias).manifest_digest,
        "B's two names point at one manifest"
    );
    for e in index_entries(&files) {
        assert_eq!(
            e["platform"],
            json!({"os": "linux", "architecture": "amd64"}),
            "platform of {e}"
        );
    }

    // The shared base was fetched once, from the first image's repository.
    let gets = blob_gets(&reg, &shared);
    assert_eq!(
        gets.len(),
        1,
        "GETs of the shared blob:\n{}",
        gets.join("\n")
    );
    assert!(gets[0].contains("/v2/team/a/blobs/"), "{}", gets[0]);
    for l in [&a.layers[1], &b.layers[1]] {
        assert_eq!(blob_gets(&reg, &l.digest).len(), 1, "GETs of {}", l.digest);
    }

    // skopeo picks each image out by name.
    let t = tar.display();
    for (r, img) in [(&ref_a, &a), (&ref_b, &b), (&ref_alias, &b)] {
        assert_eq!(
            skopeo_to_dir(&format!("docker-archive:{t}:{r}")),
            img.config_digest,
            "skopeo docker-archive:…:{r}"
        );
    }
    let sk = TempDir::new("skoci");
    assert_eq!(
        skopeo_copy_oci_archive(&tar, Some("alias"), &sk),
        b.config_digest,
        "skopeo oci-archive:…:alias"
    );

    // podman loads both images with all their names.
    let mut loaded = podman_load_all(&tar);
    loaded.sort();
    assert_eq!(loaded.len(), 2, "podman images: {loaded:?}");
    for (img, names) in [(&a, vec![&ref_a]), (&b, vec![&ref_b, &ref_alias])] {
        let (_, got) = loaded
            .iter()
            .find(|(id, _)| id == hex_of(&img.config_digest))
            .unwrap_or_else(|| panic!("podman lacks {}: {loaded:?}", img.config_digest));
        for n in names {
            assert!(got.contains(n), "podman names {got:?} lack {n}");
        }
    }

    // containerd: three names, each on its config, all unpacked.
    let ctd = Containerd::start();
    let out = ctd.import(&tar);
    assert_eq!(out.code, 0, "ctr images import:\n{out}\n{}", ctd.log());
    let mut names: Vec<String> = ctd.images().into_iter().map(|(n, _)| n).collect();
    names.sort();
    let mut want = vec![ref_a.clone(), ref_b.clone(), ref_alias.clone()];
    want.sort();
    assert_eq!(names, want, "containerd image names:\n{out}");
    ctd.check();
    for (r, img) in [(&ref_a, &a), (&ref_b, &b), (&ref_alias, &b)] {
        assert_eq!(ctd.config_digest(r), img.config_digest, "containerd {r}");
    }
    drop(ctd);

    // docker 20.10: every tag, on the right image.
    let dk = Dockerd::start();
    docker_load(&dk, &tar);
    for (r, img) in [(&ref_a, &a), (&ref_b, &b), (&ref_alias, &b)] {
        assert_docker_image(&dk, r, img);
    }
}

#[test]
fn image_list_file() {
    let reg = Registry::start();
    let mut rng = Rng::new();
    let a = build_image(&mut rng, Flavor::Docker, AMD64, 2, 16 * 1024);
    let b = build_image(&mut rng, Flavor::Oci, AMD64, 1, 16 * 1024);
    push_image(&reg, "list/a", Some("v1"), &a);
    push_image(&reg, "list/b", Some("v1"), &b);
    let ref_a = format!("{}/list/a:v1", reg.host());
    let ref_b = format!("{}/list/b:v1", reg.host());
    let work = TempDir::new("list");
    let cache = work.join("cache");
    let cache = cache.to_str().unwrap();

    let list = work.join("images.txt");
    std::fs::write(
        &list,
        format!("# the bundle\n\n{ref_a}   # the app\n   \n\t{ref_b}\n# {ref_b}x\n{ref_a}\n"),
    )
    .unwrap();
    let out = work.join("bundle.tar");
    let res = pulltar_in(
        work.path(),
        &["-f", "images.txt", "-o", "bundle.tar", "--cache-dir", cache],
    );
    assert_eq!(res.code, 0, "pulltar -f images.txt:\n{res}");
    let files = read_tar(&out);
    let items = manifest_items(&files);
    assert_eq!(items.len(), 2, "manifest.json: {items:?}");
    assert_eq!(
        strings(&item_for(&items, &a.config_digest)["RepoTags"]),
        std::slice::from_ref(&ref_a)
    );
    assert_eq!(
        strings(&item_for(&items, &b.config_digest)["RepoTags"]),
        std::slice::from_ref(&ref_b)
    );
    assert_layers_as_pushed(&files, item_for(&items, &a.config_digest), &a);
    assert_layers_as_pushed(&files, item_for(&items, &b.config_digest), &b);
    assert_eq!(
        index_entries(&files).len(),
        2,
        "index.json: one entry per name"
    );

    // A positional image and the list combine; the repeat is pulled once.
    let out2 = work.join("both.tar");
    let res = pulltar_in(
        work.path(),
        &[
            &ref_b,
            "-f",
            "images.txt",
            "-o",
            "both.tar",
            "--cache-dir",
            cache,
        ],
    );
    assert_eq!(res.code, 0, "pulltar IMG -f images.txt:\n{res}");
    let items = manifest_items(&read_tar(&out2));
    assert_eq!(items.len(), 2, "manifest.json: {items:?}");
    assert_eq!(
        strings(&item_for(&items, &b.config_digest)["RepoTags"]),
        std::slice::from_ref(&ref_b)
    );
    assert_eq!(
        strings(&item_for(&items, &a.config_digest)["RepoTags"]),
        std::slice::from_ref(&ref_a)
    );

    // A bad reference names the file and the line.
    let failed = TempDir::new("listbad");
    let bad_out = failed.join("bad.tar");
    std::fs::write(
        work.join("bad-list.txt"),
        format!("# comment\n{ref_a}\nNot/A Valid:Ref!\n{ref_b}\n"),
    )
    .unwrap();
    let res = pull_fails(
        &work,
        &[
            "-f",
            "bad-list.txt",
            "-o",
            bad_out.to_str().unwrap(),
            "--cache-dir",
            cache,
        ],
        2,
        &bad_out,
    );
    assert!(
        res.stderr.contains("bad-list.txt") && res.stderr.contains("line 3"),
        "the message names the file and line 3:\n{res}"
    );

    // Several images need -o.
    let empty = TempDir::new("listnoo");
    let res = pulltar_in(empty.path(), &[&ref_a, &ref_b, "--cache-dir", cache]);
    assert_eq!(res.code, 2, "two images without -o:\n{res}");
    assert!(res.stderr.contains("-o"), "the message mentions -o:\n{res}");
    assert!(empty.list().is_empty(), "files written: {:?}", empty.list());

    // A missing list file.
    let res = pull_fails(
        &work,
        &[
            "-f",
            "no-such-list.txt",
            "-o",
            bad_out.to_str().unwrap(),
            "--cache-dir",
            cache,
        ],
        2,
        &bad_out,
    );
    assert!(
        res.stderr.contains("no-such-list.txt"),
        "the message names the missing file:\n{res}"
    );
}

/// Waits for `child` up to `deadline`; None if it is still running.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return Some(st);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn stdout_pipes_into_podman_load() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/app", "v1", Flavor::Docker);
    let reference = format!("{}/team/app:v1", reg.host());
    let work = TempDir::new("pipe");
    let store = TempDir::new("podpipe");
    let log = |name: &str| std::fs::File::create(work.join(name)).unwrap();
    let mut producer = Command::new(PULLTAR)
        .args([reference.as_str(), "-o", "-", "--no-cache"])
        .current_dir(work.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log("pulltar.err"))
        .spawn()
        .expect("start pulltar");
    let pipe = producer.stdout.take().expect("pulltar stdout");
    // The Command (and with it our copy of the read end) is dropped at the
    // end of this statement: podman holds the only reader.
    let mut consumer = podman_command(&store)
        .arg("load")
        .stdin(Stdio::from(pipe))
        .stdout(log("podman.out"))
        .stderr(log("podman.err"))
        .spawn()
        .expect("start podman load");
    let deadline = Instant::now() + Duration::from_secs(300);
    let p = wait_until(&mut producer, deadline);
    let c = wait_until(&mut consumer, deadline);
    let read = |name: &str| std::fs::read_to_string(work.join(name)).unwrap_or_default();
    let report = format!(
        "pulltar: {p:?}\n{}\npodman load: {c:?}\n{}\n{}",
        read("pulltar.err"),
        read("podman.out"),
        read("podman.err")
    );
    for child in [&mut producer, &mut consumer] {
        if child.try_wait().ok().flatten().is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    let (p, c) = (
        p.unwrap_or_else(|| panic!("pulltar did not finish:\n{report}")),
        c.unwrap_or_else(|| panic!("podman load did not finish:\n{report}")),
    );
    assert!(p.success() && c.success(), "the pipe failed:\n{report}");
    let images = podman_images(&store);
    assert_eq!(images.len(), 1, "podman images: {images:?}\n{report}");
    assert_eq!(images[0].0, hex_of(&img.config_digest), "podman image ID");
    assert!(
        images[0].1.contains(&reference),
        "podman names {:?} lack {reference}",
        images[0].1
    );
    assert!(work
        .list()
        .iter()
        .all(|n| n.ends_with(".err") || n.ends_with(".out")));
}

#[test]
fn zstd_layers_become_plain_tar_checked_against_diff_ids() {
    let reg = Registry::start();
    let img = push_zstd_image(&reg, "team/zstd", "v1");
    let reference = format!("{}/team/zstd:v1", reg.host());
    let ls = &img.layers;
    let dk = Dockerd::start();
    let ctd = Containerd::start();

    // Default: zstd layers become plain tar named by their diff_id.
    let work = TempDir::new("zdef");
    let tar = pull_ok(&work, &reference, &[]);
    let files = read_tar(&tar);
    let items = manifest_items(&files);
    assert_eq!(items.len(), 1);
    assert_eq!(
        strings(&items[0]["RepoTags"]),
        std::slice::from_ref(&reference)
    );
    assert_eq!(
        strings(&items[0]["Layers"]),
        [
            blob_path(&ls[0].digest),
            blob_path(&ls[1].diff_id),
            blob_path(&ls[2].diff_id)
        ],
        "gzip kept, zstd expanded"
    );
    assert!(
        files[&blob_path(&ls[0].digest)] == ls[0].blob,
        "gzip as pulled"
    );
    for l in &ls[1..] {
        let data = &files[&blob_path(&l.diff_id)];
        assert_eq!(
            digest_of(data),
            l.diff_id,
            "plain tar hashes to its diff_id"
        );
        assert_ne!(&data[..4], b"\x28\xb5\x2f\xfd", "not zstd");
        let n = tar::Archive::new(&data[..])
            .entries()
            .expect("a plain tar")
            .collect::<Result<Vec<_>, _>>()
            .expect("tar entries")
            .len();
        assert_eq!(n, 1, "one file in the expanded layer");
        assert!(
            !files.contains_key(&blob_path(&l.digest)),
            "zstd blob {} stored",
            l.digest
        );
    }
    assert_eq!(
        files[&blob_path(&img.config_digest)],
        img.config,
        "config verbatim"
    );
    let oci = oci_images(&tar);
    assert_eq!(oci.len(), 1);
    let o = &oci[0];
    assert_eq!(o.name.as_deref(), Some(reference.as_str()));
    assert_eq!(o.config_digest, img.config_digest);
    assert_eq!(
        o.layer_media_types,
        [OCI_LAYER, OCI_LAYER_TAR, OCI_LAYER_TAR]
    );
    assert_eq!(
        o.layers,
        [
            ls[0].digest.clone(),
            ls[1].diff_id.clone(),
            ls[2].diff_id.clone()
        ]
    );
    assert_ne!(o.manifest_digest, img.manifest_digest, "a new manifest");
    assert_eq!(o.manifest["mediaType"], OCI_MANIFEST);
    // docker 20.10 cannot read zstd: this load proves the layers are plain.
    docker_load(&dk, &tar);
    assert_docker_image(&dk, &reference, &img);
    ctd.import_and_check(&tar, std::slice::from_ref(&reference), &img.config_digest);
    let (id, _) = podman_load(&tar);
    assert_eq!(id, hex_of(&img.config_digest), "podman ID");
    let info = skopeo_inspect(&tar);
    assert_eq!(
        strings(&info["Layers"]),
        img.diff_ids(),
        "skopeo inspect Layers"
    );
    let sk = TempDir::new("zsk");
    let copied = skopeo_copy_to_oci(&tar, &sk);
    let ours: Value = serde_json::from_slice(&img.config).unwrap();
    assert_eq!(
        copied["rootfs"], ours["rootfs"],
        "skopeo copy to oci: rootfs"
    );
    assert_eq!(skopeo_copy_to_dir(&tar, &sk), img.config_digest);

    // --keep-zstd: every blob as pulled, the registry's manifest verbatim.
    containerd_forget(&ctd);
    let work = TempDir::new("zkeep");
    let tar = pull_ok(&work, &reference, &["--keep-zstd"]);
    let files = read_tar(&tar);
    let items = manifest_items(&files);
    assert_eq!(items.len(), 1);
    assert_layers_as_pushed(&files, &items[0], &img);
    for l in &ls[1..] {
        assert!(
            !files.contains_key(&blob_path(&l.diff_id)),
            "expanded {} stored",
            l.diff_id
        );
    }
    let oci = oci_images(&tar);
    assert_eq!(oci.len(), 1);
    assert_eq!(
        oci[0].manifest_digest, img.manifest_digest,
        "registry manifest verbatim"
    );
    assert!(files[&blob_path(&img.manifest_digest)] == img.manifest);
    assert_eq!(
        oci[0].layer_media_types,
        [OCI_LAYER, OCI_LAYER_ZSTD, OCI_LAYER_ZSTD]
    );
    ctd.import_and_check(&tar, std::slice::from_ref(&reference), &img.config_digest);
    let sk = TempDir::new("zksk");
    let copied = skopeo_copy_to_oci(&tar, &sk);
    assert_eq!(
        copied["rootfs"], ours["rootfs"],
        "skopeo copy to oci: rootfs"
    );
    assert_eq!(
        skopeo_copy_oci_archive(&tar, Some("v1"), &sk),
        img.config_digest
    );

    // --uncompressed: every layer is plain tar, gzip too.
    let work = TempDir::new("zunc");
    let tar = pull_ok(&work, &reference, &["--uncompressed"]);
    let files = read_tar(&tar);
    let items = manifest_items(&files);
    let want: Vec<String> = ls.iter().map(|l| blob_path(&l.diff_id)).collect();
    assert_eq!(
        strings(&items[0]["Layers"]),
        want,
        "every layer by its diff_id"
    );
    for l in ls {
        assert_eq!(digest_of(&files[&blob_path(&l.diff_id)]), l.diff_id);
        assert!(
            !files.contains_key(&blob_path(&l.digest)),
            "compressed {} stored",
            l.digest
        );
    }
    let oci = oci_images(&tar);
    assert_eq!(oci[0].layer_media_types, [OCI_LAYER_TAR; 3]);
    assert_eq!(oci[0].config_digest, img.config_digest);
    docker_forget(&dk);
    docker_load(&dk, &tar);
    assert_docker_image(&dk, &reference, &img);
}

#[test]
fn wrong_diff_id_is_refused() {
    let reg = Registry::start();
    let mut rng = Rng::new();
    let mut layer = zstd_layer(&mut rng, 32 * 1024);
    let actual = layer.diff_id.clone();
    let wrong = digest_of(b"not the tar inside this layer");
    layer.diff_id = wrong.clone();
    let img = image_of_layers(&mut rng, Flavor::Oci, AMD64, vec![layer]);
    push_image(&reg, "team/liar", Some("v1"), &img);
    let reference = format!("{}/team/liar:v1", reg.host());
    let work = TempDir::new("wrongdiff");
    let outdir = work.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let out = outdir.join("liar.tar");
    let cache = work.join("cache");
    let args = [
        reference.as_str(),
        "-o",
        out.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
    ];
    let res = pull_fails(&work, &args, 1, &out);
    assert!(
        res.stderr.contains("diff_id") && res.stderr.contains(&wrong),
        "the message names the diff_id {wrong}:\n{res}"
    );
    for d in [&wrong, &actual] {
        assert!(
            !cache.join("blobs/sha256").join(hex_of(d)).exists(),
            "the cache kept a blob named {d}"
        );
    }
    // Nothing is decompressed with --keep-zstd, so nothing is checked.
    let mut keep = args.to_vec();
    keep.push("--keep-zstd");
    let res = pulltar_in(work.path(), &keep);
    assert_eq!(res.code, 0, "pulltar --keep-zstd:\n{res}");
    let files = read_tar(&out);
    assert!(files[&blob_path(&img.layers[0].digest)] == img.layers[0].blob);
}

#[test]
fn format_flags() {
    let reg = Registry::start();
    let img = push_simple(&reg, "team/fmt", "v1", Flavor::Oci);
    let reference = format!("{}/team/fmt:v1", reg.host());
    let tags = std::slice::from_ref(&reference);
    let layer_blobs: Vec<String> = img.layers.iter().map(|l| blob_path(&l.digest)).collect();

    // docker: manifest.json, repositories, config and layers, and the
    // registry's manifest kept for a push; no OCI layout.
    let work = TempDir::new("fmtd");
    let tar = pull_ok(&work, &reference, &["--format", "docker"]);
    let files = read_tar(&tar);
    let mut names: Vec<String> = files.keys().cloned().collect();
    names.sort();
    let mut want = vec![
        "manifest.json".to_string(),
        "repositories".to_string(),
        blob_path(&img.config_digest),
        blob_path(&img.manifest_digest),
    ];
    want.extend(layer_blobs.iter().cloned());
    want.sort();
    assert_eq!(names, want, "--format docker entries");
    verify_everywhere(&tar, &img, tags);

    // oci: the layout only, the registry's manifest verbatim.
    let work = TempDir::new("fmto");
    let tar = pull_ok(&work, &reference, &["--format", "oci"]);
    let files = read_tar(&tar);
    let mut names: Vec<String> = files.keys().cloned().collect();
    names.sort();
    let mut want = vec![
        "index.json".to_string(),
        "oci-layout".to_string(),
        blob_path(&img.config_digest),
        blob_path(&img.manifest_digest),
    ];
    want.extend(layer_blobs.iter().cloned());
    want.sort();
    assert_eq!(names, want, "--format oci entries");
    let oci = oci_images(&tar);
    assert_eq!(oci.len(), 1);
    assert_eq!(oci[0].name.as_deref(), Some(reference.as_str()));
    assert_eq!(oci[0].ref_name.as_deref(), Some("v1"));
    assert_eq!(
        oci[0].manifest_digest, img.manifest_digest,
        "manifest verbatim"
    );
    assert_eq!(oci[0].layer_media_types, [OCI_LAYER; 3]);
    let sk = TempDir::new("fmtsk");
    assert_eq!(
        skopeo_copy_oci_archive(&tar, Some("v1"), &sk),
        img.config_digest
    );
    let ctd = Containerd::start();
    ctd.import_and_check(&tar, tags, &img.config_digest);
    drop(ctd);
    let (id, _) = podman_load(&tar);
    assert_eq!(
        id,
        hex_of(&img.config_digest),
        "podman loads the OCI-only archive"
    );

    // both (the default): each view complete.
    let work = TempDir::new("fmtb");
    let tar = pull_ok(&work, &reference, &["--format", "both"]);
    verify_everywhere(&tar, &img, tags);
    assert_eq!(oci_images(&tar)[0].manifest_digest, img.manifest_digest);

    // bogus
    let work = TempDir::new("fmtx");
    let outdir = work.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let out = outdir.join("x.tar");
    let res = pull_fails(
        &work,
        &[
            &reference,
            "-o",
            out.to_str().unwrap(),
            "--no-cache",
            "--format",
            "bogus",
        ],
        2,
        &out,
    );
    assert!(
        res.stderr.contains("bogus"),
        "the message names the format:\n{res}"
    );
}

#[test]
fn manifest_shapes() {
    let reg = Registry::start();
    let host = reg.host();
    let dk = Dockerd::start();
    let ctd = Containerd::start();

    // An index inside an index: the platform is chosen inside.
    let (_, amd, arm) = push_nested_index(&reg, "shape/nested", "v1");
    let nested = format!("{host}/shape/nested:v1");
    let work = TempDir::new("nest");
    let tar = pull_ok(&work, &nested, &[]);
    verify_everywhere(&tar, &amd, std::slice::from_ref(&nested));
    let work = TempDir::new("nestarm");
    let tar = pull_ok(&work, &nested, &["--platform", "linux/arm64"]);
    check_archive(&tar, &arm, std::slice::from_ref(&nested));
    let oci = oci_images(&tar);
    assert_eq!(
        oci[0].manifest_digest, arm.manifest_digest,
        "arm64 manifest verbatim"
    );

    // A chain of 10 indexes is refused; 5 is fine.
    push_deep_index(&reg, "shape/deep", "v1", 10);
    let work = TempDir::new("deep");
    let outdir = work.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let out = outdir.join("deep.tar");
    let deep = format!("{host}/shape/deep:v1");
    let res = pull_fails(
        &work,
        &[&deep, "-o", out.to_str().unwrap(), "--no-cache"],
        1,
        &out,
    );
    assert!(res.stderr.contains("nests indexes"), "why:\n{res}");
    let (_, img5) = push_deep_index(&reg, "shape/deep5", "v1", 5);
    let deep5 = format!("{host}/shape/deep5:v1");
    let work = TempDir::new("deep5");
    let tar = pull_ok(&work, &deep5, &[]);
    check_archive(&tar, &img5, std::slice::from_ref(&deep5));

    // An index entry without a platform counts as linux/amd64.
    let noplat = push_no_platform_index(&reg, "shape/noplat", "v1");
    let np = format!("{host}/shape/noplat:v1");
    let work = TempDir::new("noplat");
    let tar = pull_ok(&work, &np, &[]);
    check_archive(&tar, &noplat, std::slice::from_ref(&np));
    assert_eq!(oci_images(&tar)[0].manifest_digest, noplat.manifest_digest);

    // No layers at all.
    let empty = push_zero_layer_image(&reg, "shape/empty", "v1");
    let er = format!("{host}/shape/empty:v1");
    let work = TempDir::new("zero");
    let tar = pull_ok(&work, &er, &[]);
    // Not check_archive: `repositories` maps a tag to its top layer, and
    // there is none, so pulltar leaves the file out (as designed in
    // archive_index::repositories_json).
    let files = read_tar(&tar);
    let items = manifest_items(&files);
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["Config"], blob_path(&empty.config_digest).as_str());
    assert_eq!(strings(&items[0]["RepoTags"]), std::slice::from_ref(&er));
    assert_eq!(items[0]["Layers"], json!([]), "no layers");
    assert_eq!(files[&blob_path(&empty.config_digest)], empty.config);
    assert!(
        !files.contains_key("repositories"),
        "a repositories file without a top layer"
    );
    let oci = oci_images(&tar);
    assert!(oci[0].layers.is_empty(), "{:?}", oci[0]);
    let (id, names) = podman_load(&tar);
    assert_eq!(id, hex_of(&empty.config_digest), "podman ID");
    assert!(names.contains(&er), "podman names {names:?}");
    docker_load(&dk, &tar);
    assert_docker_image(&dk, &er, &empty);
    // Not import_and_check: containerd 1.6 has no snapshot to make for an
    // image without layers, so `images check` calls it complete but never
    // unpacked.
    let out = ctd.import(&tar);
    assert_eq!(out.code, 0, "ctr images import:\n{out}\n{}", ctd.log());
    let names: Vec<String> = ctd.images().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        std::slice::from_ref(&er),
        "containerd images:\n{out}"
    );
    assert_eq!(ctd.config_digest(&er), empty.config_digest);
    let check = ctd
        .ctr(&["images", "check", "--snapshotter", "native"], 60)
        .ok("ctr images check");
    let row = check.stdout.lines().find(|l| l.starts_with(er.as_str()));
    assert!(
        row.is_some_and(|r| r.split_whitespace().nth(3) == Some("complete")),
        "the empty image is not complete:\n{check}"
    );
    containerd_forget(&ctd);

    // The same layer twice: one file, listed twice.
    let dup = push_dup_layer_image(&reg, "shape/dup", "v1");
    let dr = format!("{host}/shape/dup:v1");
    let work = TempDir::new("dup");
    let tar = pull_ok(&work, &dr, &[]);
    verify_everywhere(&tar, &dup, std::slice::from_ref(&dr));
    let oci = oci_images(&tar);
    let layers: Vec<String> = dup.layers.iter().map(|l| l.digest.clone()).collect();
    assert_eq!(oci[0].layers, layers, "OCI manifest lists the layer twice");
    docker_load(&dk, &tar);
    assert_docker_image(&dk, &dr, &dup);
    assert_eq!(dup.diff_ids()[0], dup.diff_ids()[2]);
    ctd.import_and_check(&tar, std::slice::from_ref(&dr), &dup.config_digest);
}

#[test]
fn artifact_layer_is_refused() {
    let reg = Registry::start();
    let mut rng = Rng::new();
    let chart = random_layer(&mut rng, HELM_LAYER, 16 * 1024);
    let chart_digest = chart.digest.clone();
    let img = image_of_layers(&mut rng, Flavor::Oci, AMD64, vec![chart]);
    push_image(&reg, "charts/app", Some("1.0"), &img);
    let reference = format!("{}/charts/app:1.0", reg.host());
    let work = TempDir::new("helm");
    let outdir = work.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let out = outdir.join("chart.tar");
    let res = pull_fails(
        &work,
        &[&reference, "-o", out.to_str().unwrap(), "--no-cache"],
        1,
        &out,
    );
    assert!(
        res.stderr.contains(HELM_LAYER),
        "the message names the media type:\n{res}"
    );
    let gets = blob_gets(&reg, &chart_digest);
    assert!(
        gets.is_empty(),
        "the chart layer was fetched:\n{}",
        gets.join("\n")
    );
    // The access log is on: it shows the manifest GET.
    assert!(
        reg.log().contains("\"GET /v2/charts/app/manifests/1.0 "),
        "no manifest GET in the registry log:\n{}",
        reg.log()
    );
}

/// An index that mislabels its image (an amd64 image listed as arm64): the
/// pull takes what the index says, warns that the config disagrees, and
/// the archive holds the image as it is.
#[test]
fn index_platform_that_the_config_contradicts_is_warned_about() {
    let reg = Registry::start();
    let img = crate::support::images::push_simple(
        &reg,
        "team/mislabelled",
        "amd64-only",
        crate::support::images::Flavor::Oci,
    );
    let index = json!({
        "schemaVersion": 2,
        "mediaType": crate::support::images::OCI_INDEX,
        "manifests": [{
            "mediaType": img.media_type,
            "digest": img.manifest_digest,
            "size": img.manifest.len(),
            "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
        }],
    });
    let bytes = serde_json::to_vec(&index).unwrap();
    reg.put_manifest(
        "team/mislabelled",
        "v1",
        crate::support::images::OCI_INDEX,
        &bytes,
    );
    let work = TempDir::new("mislabel");
    let name = format!("{}/team/mislabelled:v1", reg.host());
    let out = work.join("out.tar");
    let res = pulltar_in(
        work.path(),
        &[
            &name,
            "--platform",
            "linux/arm64",
            "-o",
            out.to_str().unwrap(),
            "--no-cache",
        ],
    );
    assert_eq!(res.code, 0, "{res}");
    assert!(
        res.stderr.contains("lists this image as linux/arm64")
            && res.stderr.contains("its config says linux/amd64"),
        "no warning about the mislabelled platform:\n{res}"
    );
    check_archive(&out, &img, &[name]);
}
