//! The command line as a person meets it: usage errors, help, flags and
//! default names (`usage`), the questions asked when started with no
//! arguments (`ask`), the progress display (`progress`), `--log-file`
//! and the hints an error carries (`logs`), and `pulltar inspect`.

mod ask;
mod inspect;
mod logs;
mod progress;
mod usage;
