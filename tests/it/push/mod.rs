//! `pulltar push`: what a pull wrote goes back with every digest kept
//! (`roundtrip`, whose helpers the others share), with credentials, TLS
//! and proxies (`auth`), and when things go wrong: size caps, failing
//! chunks, interruptions, bad input (`faults`); archives made to mislead or
//! exhaust it: fanned-out indexes, `manifest.json` and `index.json` that
//! disagree, a bogus recorded media type (`hostile`); what `--dry-run`
//! lists, and that it writes nothing (`dry_run`).

mod auth;
mod dry_run;
mod faults;
mod hostile;
pub mod roundtrip;
