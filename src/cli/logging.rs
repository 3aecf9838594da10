//! The logger: records go to stderr as `level: message`, or under
//! `-v/--debug` with a timestamp and the module they come from, printed
//! through the progress display (above its bars, never between them).
//! Only pulltar's own records are shown, at warn (error with `-q/--quiet`,
//! debug with `--debug`); without `--debug`, `RUST_LOG` may change that.
//! Whatever `RUST_LOG` says, the HTTP and TLS crates are held at info,
//! because at debug and trace they log headers and tokens. With
//! `--log-file FILE`, pulltar's debug records also go to FILE (appended,
//! one line each with a UTC timestamp), whatever the terminal shows.
//!
//! It only configures the logger once, at start-up, and escapes each
//! record's text ([`printable`]); what is logged, and the redaction of URLs
//! in it, is decided where the records are made.

use std::fs::File;
use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{LevelFilter, Log, Metadata, Record};

use crate::cli::args::Args;
use crate::error::{Error, Result};
use crate::ui::escape::printable;

/// Sends the terminal's records through the progress display.
struct ProgressPipe;

impl Write for ProgressPipe {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        crate::ui::progress::write_log(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The terminal logger and, with `--log-file`, the file.
struct Tee {
    term: env_logger::Logger,
    file: Option<Mutex<File>>,
}

fn for_file(m: &Metadata) -> bool {
    m.level() <= LevelFilter::Debug && m.target().starts_with("pulltar")
}

impl Log for Tee {
    fn enabled(&self, m: &Metadata) -> bool {
        self.term.enabled(m) || (self.file.is_some() && for_file(m))
    }

    fn log(&self, record: &Record) {
        if self.term.matches(record) {
            self.term.log(record);
        }
        if let Some(file) = &self.file {
            if for_file(record.metadata()) {
                let line = format!(
                    "{} {:<5} {}: {}\n",
                    utc_now(),
                    record.level(),
                    record.target(),
                    printable(&record.args().to_string())
                );
                let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
                let _ = f.write_all(line.as_bytes());
            }
        }
    }

    fn flush(&self) {
        if let Some(file) = &self.file {
            let _ = file.lock().unwrap_or_else(|p| p.into_inner()).flush();
        }
    }
}

/// Sets up the logger for the flags in `args`; fails only when the
/// `--log-file` cannot be opened.
pub(crate) fn init_logging(args: &Args) -> Result<()> {
    let mut b = env_logger::Builder::new();
    let debug = args.debug;
    b.format(move |buf, record| {
        let level = record.level().as_str().to_ascii_lowercase();
        if debug {
            writeln!(
                buf,
                "[{} {level} {}] {}",
                buf.timestamp_millis(),
                record.target(),
                printable(&record.args().to_string())
            )
        } else {
            writeln!(buf, "{level}: {}", printable(&record.args().to_string()))
        }
    });
    let level = if args.debug {
        LevelFilter::Debug
    } else if args.quiet {
        LevelFilter::Error
    } else {
        LevelFilter::Warn
    };
    // Only our own records: ureq's debug lines show full URLs, presigned
    // queries included.
    b.filter_level(LevelFilter::Off)
        .filter_module("pulltar", level);
    if !args.debug {
        if let Ok(spec) = std::env::var("RUST_LOG") {
            b.parse_filters(&spec);
        }
    }
    // Whatever RUST_LOG says: the HTTP and TLS crates log headers and wire
    // bytes (tokens included) at debug and trace.
    for noisy in ["ureq", "ureq_proto", "rustls"] {
        b.filter_module(noisy, LevelFilter::Info);
    }
    b.target(env_logger::Target::Pipe(Box::new(ProgressPipe)));
    let term = b.build();
    let file = match &args.log_file {
        // Owner-only, like a shell history: it is redacted, but it still
        // names the registries and images a user pulls.
        Some(path) => Some(Mutex::new(
            crate::sys::open_private_append(path)
                .map_err(|e| Error::io("open the log file", path, e))?,
        )),
        None => None,
    };
    let mut max = term.filter();
    if file.is_some() {
        max = max.max(LevelFilter::Debug);
    }
    if log::set_boxed_logger(Box::new(Tee { term, file })).is_ok() {
        log::set_max_level(max);
    }
    if let Some(path) = &args.log_file {
        log::debug!(
            "pulltar {} logging to {}",
            env!("CARGO_PKG_VERSION"),
            path.display()
        );
    }
    Ok(())
}

/// The current time as `2024-05-01T12:34:56.789Z`.
fn utc_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    utc(d.as_secs(), d.subsec_millis())
}

fn utc(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(utc(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(utc(1_714_566_896, 789), "2024-05-01T12:34:56.789Z");
    }
}
