//! Pulls that succeed (`success`: Docker and OCI images, each platform of
//! an index, digest references), pulls that fail cleanly (`failures`),
//! several platforms of one index into one archive (`platforms`), and
//! Docker schema 1 images (`schema1`).

mod failures;
mod platforms;
mod schema1;
mod success;
