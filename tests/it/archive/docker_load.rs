//! `docker load` through a test-started dockerd: the image ID must be the
//! config digest and `RootFS.Layers` the diff_ids, for Docker and OCI
//! sources alike.

use crate::support::dockerd::Dockerd;
use crate::support::images::{push_simple, Flavor};
use crate::support::registry::Registry;
use crate::support::util::pull_ok;
use crate::support::util::TempDir;

#[test]
fn docker_loads_pulled_images() {
    let reg = Registry::start();
    let v2 = push_simple(&reg, "team/app", "v2", Flavor::Docker);
    let oci = push_simple(&reg, "team/oci-app", "1.0", Flavor::Oci);
    let daemon = Dockerd::start();
    for (img, reference) in [
        (&v2, format!("{}/team/app:v2", reg.host())),
        (&oci, format!("{}/team/oci-app:1.0", reg.host())),
    ] {
        let work = TempDir::new("dload");
        let tar = pull_ok(&work, &reference, &[]);
        let info = daemon.load_and_inspect(&tar, &reference);
        assert_eq!(
            info["Id"],
            img.config_digest.as_str(),
            "docker image ID = config digest: {info}"
        );
        let layers: Vec<String> = serde_json::from_value(info["RootFS"]["Layers"].clone()).unwrap();
        assert_eq!(layers, img.diff_ids(), "RootFS.Layers = diff_ids");
        let tags: Vec<String> = serde_json::from_value(info["RepoTags"].clone()).unwrap();
        assert_eq!(tags, vec![reference.clone()]);
        assert_eq!(info["Architecture"], "amd64");
    }
}
