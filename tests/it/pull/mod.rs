//! Pulls that succeed (`success`: Docker and OCI images, each platform of
//! an index, digest references), pulls that fail cleanly (`failures`),
//! several platforms of one index into one archive (`platforms`),
//! Docker schema 1 images (`schema1`), and `-o` naming a symlink, a named
//! pipe, a device or a socket (`output_path`).

mod failures;
mod output_path;
mod platforms;
mod schema1;
mod success;
