//! Shared by the user-application tests: builds the example crate `examples/replicated-kv` — a
//! library user's own application and binary, in its own workspace — with the cargo that built
//! these tests, and runs its binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

use serde_json::Value;

/// The example crate's manifest, from the repository's root.
const MANIFEST: &str = "examples/replicated-kv/Cargo.toml";
/// The example's binary target.
const BINARY: &str = "replicated-kv";

/// The repository's root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where the example crate is built: DistZero's own target directory (as cargo says), so that
/// the example reuses the dependencies already compiled for these tests.
fn target_dir() -> PathBuf {
    let output = Command::new(env!("CARGO"))
        .current_dir(root())
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON");
    let dir = metadata["target_directory"]
        .as_str()
        .unwrap_or_else(|| panic!("no target directory in cargo metadata"));
    PathBuf::from(dir)
}

/// The example's binary, built once per test process (`cargo build` of the example crate from
/// the repository's root, so the root's `.cargo/config.toml` links it statically).
pub fn binary() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(build)
}

fn build() -> PathBuf {
    let began = Instant::now();
    let output = Command::new(env!("CARGO"))
        .current_dir(root())
        .args(["build", "--manifest-path", MANIFEST])
        .args(["--message-format", "json-render-diagnostics"])
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "cargo build of {MANIFEST} failed:\n{stderr}"
    );
    let executable = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| message["target"]["name"] == BINARY)
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo built no `{BINARY}` binary:\n{stdout}\n{stderr}"));
    eprintln!(
        "built {BINARY} in {:.1} s ({})",
        began.elapsed().as_secs_f64(),
        executable.display()
    );
    executable
}

/// A scenario of the example crate.
pub fn scenario(name: &str) -> String {
    root()
        .join("examples/replicated-kv/scenarios")
        .join(name)
        .display()
        .to_string()
}

/// The machine image's name for the example's binary in virtual mode: its own, so that building
/// it does not prune the image of the `dist-zero` binary that other tests run at the same time
/// (a new image replaces older ones of the same name).
const IMAGE: &str = "dist-zero-user-app";

/// Runs the example's binary with `args` in `dir`.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .current_dir(dir)
        .env("DIST_ZERO_LOG", "warn")
        .env("DIST_ZERO_ENV", "test")
        .env("DIST_ZERO_IMAGE", IMAGE)
        .output()
        .expect("the example's binary runs")
}

/// Runs the example's binary with `args` in the repository's root.
pub fn run(args: &[&str]) -> Output {
    run_in(root(), args)
}

/// What `output` printed on stdout.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What `output` printed on stderr.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The single JSON object `output` printed on stdout.
pub fn json_of(output: &Output) -> Value {
    let text = stdout(output);
    assert_eq!(
        text.trim_end().lines().count(),
        1,
        "exactly one line on stdout, got:\n{text}\nstderr:\n{}",
        stderr(output)
    );
    let value: Value = serde_json::from_str(text.trim_end()).expect("stdout is one JSON value");
    assert!(value.is_object(), "{value}");
    value
}

/// The write ids of a report's `order`, checked to hold each of `writes` writes exactly once.
pub fn assert_full_order(report: &Value, writes: u64) {
    let mut order: Vec<u64> = report["order"]
        .as_array()
        .unwrap_or_else(|| panic!("an order: {report}"))
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    order.sort_unstable();
    assert_eq!(order, (0..writes).collect::<Vec<_>>(), "{report}");
}
