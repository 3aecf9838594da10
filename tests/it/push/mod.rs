//! `pulltar push`: what a pull wrote goes back with every digest kept
//! (`roundtrip`, whose helpers the others share), with credentials, TLS
//! and proxies (`auth`), and when things go wrong: size caps, failing
//! chunks, interruptions, bad input (`faults`).

mod auth;
mod faults;
pub mod roundtrip;
