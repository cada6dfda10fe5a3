//! The `dist-zero` command.

use std::process::ExitCode;

fn main() -> ExitCode {
    dist_zero::cli::main()
}
