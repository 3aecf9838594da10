//! Blob redirects like S3/CDN: the registry (token auth) behind nginx's
//! redirect front (see `support/nginx/`), which answers authenticated blob GETs
//! with 307 to a signed URL on `localhost:P2`, a server that refuses any
//! request carrying Authorization with 400. pulltar must follow the
//! redirect, keep Range, and drop the registry's bearer token.

use crate::support::images::{
    image_of_layers, push_image, random_layer, raw_layer, Flavor, Image, AMD64, DOCKER_LAYER,
    DOCKER_LAYER_TAR,
};
use crate::support::loaders::verify_everywhere;
use crate::support::nginx::blob_gets;
use crate::support::nginx::{ranges_cover, Access, Nginx};
use crate::support::registry::Registry;
use crate::support::token_server::{TokenServer, PASSWORD, USER};
use crate::support::util::pull_ok;
use crate::support::util::{pulltar_with_stdin, Rng, TempDir};

/// One big uncompressed layer (segmented at the default 1 MiB chunk size)
/// and two small gzip layers.
fn mixed_image(big: usize) -> Image {
    let mut rng = Rng::new();
    let layers = vec![
        raw_layer(&mut rng, DOCKER_LAYER_TAR, big),
        random_layer(&mut rng, DOCKER_LAYER, 64 << 10),
        random_layer(&mut rng, DOCKER_LAYER, 100 << 10),
    ];
    image_of_layers(&mut rng, Flavor::Docker, AMD64, layers)
}

fn all_blobs(img: &Image) -> Vec<String> {
    img.layers
        .iter()
        .map(|l| l.digest.clone())
        .chain([img.config_digest.clone()])
        .collect()
}

#[test]
fn redirect_drops_authorization() {
    let tokens = TokenServer::start();
    let reg = Registry::start_with(
        Some(tokens.registry_auth()),
        Some(tokens.issuer.push_auth()),
    );
    let public = mixed_image(8 << 20);
    push_image(&reg, "public/app", Some("v1"), &public);
    let private = mixed_image(6 << 20);
    push_image(&reg, "private/app", Some("v1"), &private);
    let blobs: Vec<String> = all_blobs(&public)
        .into_iter()
        .chain(all_blobs(&private))
        .collect();
    let front = Nginx::redirect(&reg, &blobs, 3600);

    // Anonymous pull of the public repository.
    let work = TempDir::new("redir-pub");
    let public_ref = format!("{}/public/app:v1", front.host());
    let tar = pull_ok(&work, &public_ref, &["-t", "4"]);

    // The private one with credentials on stdin.
    let work2 = TempDir::new("redir-priv");
    let private_ref = format!("{}/private/app:v1", front.host());
    let out2 = work2.join("out.tar");
    let cache2 = work2.join("cache");
    let stdin = format!("{PASSWORD}\n");
    let res = pulltar_with_stdin(
        work2.path(),
        &[
            &private_ref,
            "-o",
            out2.to_str().unwrap(),
            "--cache-dir",
            cache2.to_str().unwrap(),
            "-t",
            "4",
            "-u",
            USER,
            "--password-stdin",
        ],
        Some(stdin.as_bytes()),
    );
    assert_eq!(
        res.code,
        0,
        "private pull through the redirect front failed:\n{res}\n--- front ---\n{}\n--- cdn ---\n{}",
        front.describe("front"),
        front.describe("cdn")
    );

    let front_log = front.settled_log("front", 8);
    let cdn_log = front.settled_log("cdn", 8);
    let trace = format!(
        "--- front ---\n{}--- cdn ---\n{}",
        front.describe("front"),
        front.describe("cdn")
    );
    assert!(
        !cdn_log.is_empty(),
        "nothing reached the blob server:\n{trace}"
    );
    let leaked: Vec<&Access> = cdn_log.iter().filter(|a| a.auth).collect();
    assert!(
        leaked.is_empty(),
        "{} request(s) carried Authorization to the other host:\n{trace}",
        leaked.len()
    );
    for a in &cdn_log {
        assert!(
            matches!(a.status, 200 | 206),
            "the blob server answered {}:\n{trace}",
            a.status
        );
        assert!(
            a.query.contains("md5=") && a.query.contains("expires="),
            "the signed query was not kept: {:?}",
            a.query
        );
    }
    for d in &blobs {
        let at_front = blob_gets(&front_log, d);
        assert!(
            at_front.iter().any(|a| a.status == 307 && a.auth),
            "blob {d} was never redirected after an authenticated GET:\n{trace}"
        );
        assert!(
            blob_gets(&cdn_log, d).iter().any(|a| a.status < 300),
            "blob {d} never came from the blob server:\n{trace}"
        );
    }
    // The big layers were segmented, and Range survived the redirect.
    for img in [&public, &private] {
        let big = &img.layers[0];
        let ranged: Vec<&Access> = blob_gets(&cdn_log, &big.digest)
            .into_iter()
            .filter(|a| a.range.is_some())
            .collect();
        assert!(
            ranged.len() >= 2,
            "{} ranged GETs of the {}-byte blob reached the blob server:\n{trace}",
            ranged.len(),
            big.blob.len()
        );
        assert!(
            ranges_cover(&ranged, big.blob.len() as u64),
            "the ranges at the blob server leave a hole:\n{trace}"
        );
    }

    verify_everywhere(&tar, &public, &[public_ref]);
    verify_everywhere(&out2, &private, &[private_ref]);
}
