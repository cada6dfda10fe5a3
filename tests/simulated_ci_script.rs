//! `.ci/run` lints every feature combination a user of the crate can pick — none, `docker` and
//! `cloud` (`--all-features`) — with warnings as errors, so that a crate depending on DistZero
//! with any of them gets no warning from DistZero itself.

use std::path::Path;

/// The commands of `.ci/run`, one a line, comments and blank lines left out.
fn commands() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/run");
    let text = std::fs::read_to_string(&path).expect(".ci/run is readable");
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn simulated_ci_lints_every_feature_combination_with_warnings_as_errors() {
    let commands = commands();
    let clippy = |features: &str| {
        commands.iter().any(|line| {
            line.starts_with("cargo clippy --all-targets")
                && line.ends_with("-- -D warnings")
                && line
                    .trim_start_matches("cargo clippy --all-targets")
                    .trim_end_matches("-- -D warnings")
                    .trim()
                    == features
        })
    };
    for features in ["", "--features docker", "--all-features"] {
        assert!(
            clippy(features),
            "no `cargo clippy --all-targets {features} -- -D warnings` line in .ci/run"
        );
    }
}
