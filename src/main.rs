//! The `dist-zero` command.

use std::process::ExitCode;

/// mimalloc instead of the system allocator: the simulator allocates and frees millions of small
/// objects (events, messages, causal hops), where glibc's allocator spent a fifth of a run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    dist_zero::tools::sum::builtin_main()
}
