//! Writing the tar: the docker and OCI layouts over one set of blobs
//! ([`entries`] for what each name holds, [`documents`] for the JSON
//! documents, [`layout`] for every member's offset, header and source,
//! computed once; [`writer`] streams that list from the store,
//! [`in_place`] writes each member at its offset and leaves the layers'
//! regions to the downloads, [`writeback`] starts the disk writes early),
//! and the layers that are decompressed on the way ([`layers`],
//! [`decompress`]). And reading one back for a push: [`reader`] indexes
//! the tar's members once, [`contents`] finds its images (pulltar's,
//! `docker save`'s, skopeo's, any OCI layout) and what to push for each
//! name, as a [`tree`] of documents and blobs ([`classic`] writes a
//! manifest for an archive that holds none), refusing one whose
//! `manifest.json` and `index.json` tell different stories.
//!
//! It takes in resolved images and verified blobs, and gives out one
//! archive at the output path, complete or not at all; or takes in an
//! archive and gives out its images, with each blob's place in the file.
//! It never makes a network request.

pub mod classic;
pub mod contents;
pub mod decompress;
pub mod documents;
pub mod entries;
pub mod in_place;
pub mod layers;
pub mod layout;
pub mod reader;
pub mod tree;
pub mod writeback;
pub mod writer;
