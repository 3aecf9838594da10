//! What an image *is*: references and the grammar of their names,
//! digests, platforms, media types, manifests and indexes, and the kinds
//! of layer a manifest may list; the documents a registry sent, kept as
//! they were for a push ([`upstream`]); where a push puts each image
//! ([`destination`]).
//!
//! It takes in strings and bytes (a reference as typed, a manifest as
//! received) and gives out validated values: a [`reference::Reference`],
//! a [`digest::Digest`] whose hex alone may become part of a path, a parsed
//! [`manifest::Manifest`]. It never touches the network or the disk, and
//! imports nothing from the other stages.

pub mod config;
pub mod destination;
pub mod digest;
pub mod layer_types;
pub mod manifest;
pub mod media_type;
pub mod name_rules;
pub mod platform;
pub mod reference;
pub mod upstream;
