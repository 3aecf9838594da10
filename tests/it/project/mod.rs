//! The project around the binary: the shape of `src/` and the one-way
//! imports between its stages (`layout`), and `scripts/demo` (`demo`).

mod demo;
mod layout;
