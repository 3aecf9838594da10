//! Writing the tar: the docker and OCI layouts over one set of blobs
//! ([`entries`] for what each name holds, [`index`] for the member list,
//! [`documents`] for the JSON documents, [`writer`] for the archive written
//! from the store, [`in_place`] for one laid out first and filled by the
//! downloads, [`writeback`] to start its disk writes early), and the layers
//! that are decompressed on the way ([`layers`], [`decompress`]).
//!
//! It takes in resolved images and verified blobs, and gives out one
//! archive at the output path, complete or not at all. It never makes a
//! network request.

pub mod decompress;
pub mod documents;
pub mod entries;
pub mod in_place;
pub mod index;
pub mod layers;
pub mod writeback;
pub mod writer;
