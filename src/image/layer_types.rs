//! Layer media types: which are container image layers (plain tar, gzip,
//! zstd; foreign and non-distributable ones flagged), their OCI names, and
//! what a blob's first bytes say its compression really is. Pure
//! functions: nothing is read or written here.

/// Plain tar layer (OCI).
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Gzip tar layer (OCI).
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Zstd tar layer (OCI).
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// How a layer's tar is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// What a layer's media type says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerType {
    /// The compression the type names.
    pub compression: Compression,
    /// A foreign or non-distributable layer (old Windows base images).
    pub foreign: bool,
}

/// Reads a layer media type. An empty one (some old registries) counts as
/// gzip; a type that is not a container image layer (a Helm chart, a
/// signature, an SBOM) is an error message.
pub fn layer_type(media_type: &str) -> std::result::Result<LayerType, String> {
    let t = |compression, foreign| {
        Ok(LayerType {
            compression,
            foreign,
        })
    };
    match media_type {
        "" | "application/vnd.docker.image.rootfs.diff.tar.gzip" => t(Compression::Gzip, false),
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => t(Compression::Gzip, true),
        "application/vnd.docker.image.rootfs.diff.tar" | OCI_LAYER_TAR => {
            t(Compression::None, false)
        }
        OCI_LAYER_GZIP => t(Compression::Gzip, false),
        OCI_LAYER_ZSTD | "application/vnd.docker.image.rootfs.diff.tar.zstd" => {
            t(Compression::Zstd, false)
        }
        "application/vnd.oci.image.layer.nondistributable.v1.tar" => t(Compression::None, true),
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" => {
            t(Compression::Gzip, true)
        }
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
            t(Compression::Zstd, true)
        }
        other => Err(format!(
            "media type {:?} is not a container image layer (an artifact such as a Helm chart, a signature or an SBOM?); pulltar pulls container images only",
            crate::error::excerpt(other.as_bytes(), 100)
        )),
    }
}

/// The OCI media type of a layer of type `t`.
pub fn oci_media_type(t: LayerType) -> &'static str {
    match (t.compression, t.foreign) {
        (Compression::None, false) => OCI_LAYER_TAR,
        (Compression::Gzip, false) => OCI_LAYER_GZIP,
        (Compression::Zstd, false) => OCI_LAYER_ZSTD,
        (Compression::None, true) => "application/vnd.oci.image.layer.nondistributable.v1.tar",
        (Compression::Gzip, true) => "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        (Compression::Zstd, true) => "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
}

/// The compression of `bytes`, the start of a blob.
pub fn sniff(bytes: &[u8]) -> Compression {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert_eq!(
            layer_type(OCI_LAYER_ZSTD).unwrap().compression,
            Compression::Zstd
        );
        assert!(
            layer_type("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")
                .unwrap()
                .foreign
        );
        let e = layer_type("application/vnd.cncf.helm.chart.content.v1.tar+gzip").unwrap_err();
        assert!(
            e.contains("helm.chart") && e.contains("not a container image layer"),
            "{e}"
        );
        let e = layer_type("x\u{1b}[2J").unwrap_err();
        assert!(!e.contains('\u{1b}'), "{e}");
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd, 1]), Compression::Zstd);
        assert_eq!(sniff(b"usta"), Compression::None);
        assert_eq!(sniff(b""), Compression::None);
    }
}
