//! `-r/--registry`: Docker Hub images through one mirror (`hub`), and
//! lists of mirrors that fail over, share blobs and keep Docker Hub last
//! (`list`, issue 16).

mod hub;
mod list;
