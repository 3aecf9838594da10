//! The `pulltar` binary: runs the command line and turns the result into an
//! exit code (0 done, 1 the pull failed, 2 the command line is wrong),
//! printing the error once; a window opened by a double-click waits for
//! Enter before it closes.

use std::process::ExitCode;

use pulltar::ui::escape::printable;

fn main() -> ExitCode {
    let args = std::env::args_os().skip(1).collect();
    let code = match pulltar::cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pulltar: error: {}", printable(&e.to_string()));
            ExitCode::from(e.exit_code())
        }
    };
    pulltar::cli::before_exit();
    code
}
