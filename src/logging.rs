//! The logger: records go to stderr as `level: message`, or under
//! `-v/--debug` with a timestamp and the module they come from. Only
//! pulltar's own records are shown, at warn (error with `-q/--quiet`,
//! debug with `--debug`); without `--debug`, `RUST_LOG` may change that.
//! Whatever `RUST_LOG` says, the HTTP and TLS crates are held at info,
//! because at debug and trace they log headers and tokens.
//!
//! It only configures `env_logger` once, at start-up; what is logged, and
//! the redaction of URLs in it, is decided where the records are made.

use crate::cli::Args;

/// Sets up the logger for the flags in `args`.
pub(crate) fn init_logging(args: &Args) {
    let mut b = env_logger::Builder::new();
    let debug = args.debug;
    b.format(move |buf, record| {
        use std::io::Write;
        let level = record.level().as_str().to_ascii_lowercase();
        if debug {
            writeln!(
                buf,
                "[{} {level} {}] {}",
                buf.timestamp_millis(),
                record.target(),
                record.args()
            )
        } else {
            writeln!(buf, "{level}: {}", record.args())
        }
    });
    let level = if args.debug {
        log::LevelFilter::Debug
    } else if args.quiet {
        log::LevelFilter::Error
    } else {
        log::LevelFilter::Warn
    };
    // Only our own records: ureq's debug lines show full URLs, presigned
    // queries included.
    b.filter_level(log::LevelFilter::Off)
        .filter_module("pulltar", level);
    if !args.debug {
        if let Ok(spec) = std::env::var("RUST_LOG") {
            b.parse_filters(&spec);
        }
    }
    // Whatever RUST_LOG says: the HTTP and TLS crates log headers and wire
    // bytes (tokens included) at debug and trace.
    for noisy in ["ureq", "ureq_proto", "rustls"] {
        b.filter_module(noisy, log::LevelFilter::Info);
    }
    let _ = b.try_init();
}
