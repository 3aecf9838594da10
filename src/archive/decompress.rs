//! Turning a pulled layer (gzip or zstd) into the plain tar whose SHA-256
//! must equal the config's diff_id, and computing a diff_id where no config
//! gives one (schema 1).
//!
//! A decompressed layer is written under `tmp/` in the store, hashed as it
//! is written, and committed as the blob named by its diff_id only when the
//! hash matches; the next pull finds it there and needs neither the
//! compressed blob nor the work. The compression is read from the blob's
//! first bytes (gzip `1f 8b`, zstd `28 b5 2f fd`), not trusted from the
//! media type; several gzip members or zstd frames (and zstd skippable
//! frames) are read to the end. Memory stays at the decoders' windows and
//! one buffer. This module decides nothing about which layers to expand
//! (see [`crate::archive::layers`]; media types are [`crate::image::layer_types`]'s) and
//! does not download.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};

use crate::error::{Error, Result};
use crate::image::digest::{Digest, Verifier};
use crate::image::layer_types::{sniff, Compression, OCI_LAYER_TAR};
use crate::image::manifest::Descriptor;
use crate::store::cache::Store;

/// Makes sure the store holds the plain tar of the stored `layer`, named
/// by `diff_id`, and returns its descriptor. `what` names the layer in
/// errors (`layer 2 of nginx:1.25`).
pub fn expand(
    store: &Store,
    layer: &Descriptor,
    diff_id: &Digest,
    what: &str,
) -> Result<Descriptor> {
    let done = |size| Descriptor::new(OCI_LAYER_TAR, diff_id.clone(), size);
    if let Some(size) = store.size_of(diff_id) {
        return Ok(done(size));
    }
    let src = store.blob_path(&layer.digest);
    let file = File::open(&src).map_err(|e| Error::io("read the layer", &src, e))?;
    let (temp, out) = store.create_temp(&format!("{}.tar", diff_id.hex()))?;
    let werr = |e| Error::io("write the decompressed layer", &temp, e);
    let result = decode_into(
        file,
        BufWriter::with_capacity(256 << 10, out),
        layer,
        what,
        &temp,
    )
    .and_then(|(out, verifier)| {
        let out = out.into_inner().map_err(|e| werr(e.into_error()))?;
        out.sync_all().map_err(werr)?;
        Ok(verifier)
    });
    let verifier = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    let size = verifier.len();
    let actual = verifier.finish();
    if actual != *diff_id {
        let _ = std::fs::remove_file(&temp);
        return Err(Error::Verify {
            digest: diff_id.to_string(),
            detail: format!(
                "{what} ({}) decompresses to {size} bytes whose SHA-256 is {actual}, but the image config's diff_id for it is {diff_id}",
                layer.digest
            ),
        });
    }
    store.commit(&temp, diff_id)?;
    Ok(done(size))
}

/// The diff_id of the stored `layer`: the SHA-256 of its plain tar, read
/// through without writing it anywhere (for schema 1 images, whose
/// manifests give none).
pub fn diff_id_of(store: &Store, layer: &Descriptor, what: &str) -> Result<Digest> {
    let src = store.blob_path(&layer.digest);
    let file = File::open(&src).map_err(|e| Error::io("read the layer", &src, e))?;
    let (_, verifier) = decode_into(file, std::io::sink(), layer, what, &src)?;
    Ok(verifier.finish())
}

/// Decompresses `file` (gzip, zstd or plain, as its first bytes say) into
/// `out`, hashing what is written; `dest` names `out` in errors.
fn decode_into<W: Write>(
    file: File,
    out: W,
    layer: &Descriptor,
    what: &str,
    dest: &std::path::Path,
) -> Result<(W, Verifier)> {
    let mut input = BufReader::with_capacity(256 << 10, file.take(layer.size));
    let bad = |detail: String| Error::Verify {
        digest: layer.digest.to_string(),
        detail: format!("{what} cannot be decompressed: {detail}"),
    };
    let head = input.fill_buf().map_err(|e| bad(e.to_string()))?;
    let compression = sniff(head);
    let mut sink = Hashing {
        inner: out,
        verifier: Verifier::new(),
    };
    match compression {
        Compression::None => {
            std::io::copy(&mut input, &mut sink)
                .map_err(|e| Error::io("write the decompressed layer", dest, e))?;
        }
        Compression::Gzip => {
            let mut gz = flate2::bufread::MultiGzDecoder::new(input);
            copy_decoded(&mut gz, &mut sink, dest).map_err(|e| e.or_else(bad))?;
        }
        Compression::Zstd => unzstd(&mut input, &mut sink, dest).map_err(|e| e.or_else(bad))?,
    }
    Ok((sink.inner, sink.verifier))
}

/// A decoding failure: writing failed (an error already), or the input
/// was bad (a message, to be named after the layer).
enum Failure {
    Write(Error),
    Input(String),
}

impl Failure {
    fn or_else(self, bad: impl Fn(String) -> Error) -> Error {
        match self {
            Failure::Write(e) => e,
            Failure::Input(m) => bad(m),
        }
    }
}

/// Copies a decoder's output into `sink`, telling bad input from a failed
/// write.
fn copy_decoded(
    decoder: &mut dyn Read,
    sink: &mut dyn Write,
    temp: &std::path::Path,
) -> std::result::Result<u64, Failure> {
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let n = match decoder.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Failure::Input(e.to_string())),
        };
        sink.write_all(&buf[..n])
            .map_err(|e| Failure::Write(Error::io("write the decompressed layer", temp, e)))?;
        total += n as u64;
        if crate::ui::interrupt::interrupted() {
            return Err(Failure::Write(Error::Interrupted { resumable: true }));
        }
    }
}

/// Decodes every zstd frame of `input` into `sink`, skipping skippable
/// frames.
fn unzstd(
    input: &mut BufReader<std::io::Take<File>>,
    sink: &mut dyn Write,
    temp: &std::path::Path,
) -> std::result::Result<(), Failure> {
    use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
    let mut frames = 0u32;
    loop {
        let more = input
            .fill_buf()
            .map_err(|e| Failure::Input(e.to_string()))?;
        if more.is_empty() {
            return if frames == 0 {
                Err(Failure::Input("no zstd frame".into()))
            } else {
                Ok(())
            };
        }
        match ruzstd::decoding::StreamingDecoder::new(&mut *input) {
            Ok(mut decoder) => {
                copy_decoded(&mut decoder, sink, temp)?;
                frames += 1;
            }
            Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                length,
                ..
            })) => {
                let skipped = std::io::copy(
                    &mut (&mut *input).take(u64::from(length)),
                    &mut std::io::sink(),
                )
                .map_err(|e| Failure::Input(e.to_string()))?;
                if skipped != u64::from(length) {
                    return Err(Failure::Input("a skippable frame is cut short".into()));
                }
            }
            Err(e) => return Err(Failure::Input(e.to_string())),
        }
    }
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    verifier: Verifier,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.verifier.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::layer_types::{OCI_LAYER_GZIP, OCI_LAYER_ZSTD};

    fn tar_of(data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "f", data).unwrap();
        b.into_inner().unwrap()
    }

    fn stored(store: &Store, bytes: &[u8], media_type: &str) -> Descriptor {
        let d = Digest::of(bytes);
        std::fs::write(store.blob_path(&d), bytes).unwrap();
        Descriptor::new(media_type, d, bytes.len() as u64)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_members_expand_and_verify() {
        let store = Store::temporary().unwrap();
        let plain = tar_of(b"hello layer");
        // Two gzip members, as some tools write: both are read.
        let half = plain.len() / 2;
        let mut two = gzip(&plain[..half]);
        two.extend(gzip(&plain[half..]));
        let layer = stored(&store, &two, OCI_LAYER_GZIP);
        let diff_id = Digest::of(&plain);
        let d = expand(&store, &layer, &diff_id, "layer 1 of x").unwrap();
        assert_eq!(d.digest, diff_id);
        assert_eq!(d.size, plain.len() as u64);
        assert_eq!(std::fs::read(store.blob_path(&diff_id)).unwrap(), plain);
        // A wrong diff_id is refused and leaves nothing behind.
        let wrong = Digest::of(b"other");
        let e = expand(&store, &layer, &wrong, "layer 1 of x").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("diff_id") && msg.contains("layer 1 of x"),
            "{msg}"
        );
        assert!(store.size_of(&wrong).is_none());
        let leftovers = std::fs::read_dir(store.root().join("tmp")).unwrap().count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn zstd_frames_and_skippable_frames() {
        use ruzstd::encoding::{compress_to_vec, CompressionLevel};
        let store = Store::temporary().unwrap();
        let plain = tar_of(&[7u8; 5000]);
        let (a, b) = plain.split_at(1000);
        let mut z = compress_to_vec(a, CompressionLevel::Fastest);
        // A skippable frame: magic 0x184D2A50, length 3, three bytes.
        z.extend([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
        z.extend(compress_to_vec(b, CompressionLevel::Fastest));
        let layer = stored(&store, &z, OCI_LAYER_ZSTD);
        let d = expand(&store, &layer, &Digest::of(&plain), "layer").unwrap();
        assert_eq!(std::fs::read(store.blob_path(&d.digest)).unwrap(), plain);
        // Found in the store the second time, without reading the layer.
        std::fs::remove_file(store.blob_path(&layer.digest)).unwrap();
        let again = expand(&store, &layer, &Digest::of(&plain), "layer").unwrap();
        assert_eq!(again.size, plain.len() as u64);
    }

    #[test]
    fn garbage_is_an_error() {
        let store = Store::temporary().unwrap();
        let mut bad = gzip(&tar_of(b"x"));
        let n = bad.len();
        bad[n / 2] ^= 0xff;
        bad.truncate(n - 4);
        let layer = stored(&store, &bad, OCI_LAYER_GZIP);
        let e = expand(&store, &layer, &Digest::of(b"y"), "layer 3 of z").unwrap_err();
        assert!(e.to_string().contains("layer 3 of z"), "{e}");
        let zbad = stored(&store, &[0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0], OCI_LAYER_ZSTD);
        let e = expand(&store, &zbad, &Digest::of(b"q"), "layer 4").unwrap_err();
        assert!(e.to_string().contains("cannot be decompressed"), "{e}");
    }
}
