//! The browser checks' Rust side: each runs a script of
//! integration-tests/browser/ under node (headless Chromium through
//! playwright-core, installed by `scripts/lib/deps.sh browser`), which prints
//! one JSON line of what it saw for the test to judge.

use std::ffi::OsStr;
use std::path::PathBuf;

use serde_json::Value;

use crate::repo_root;

/// Where the scripts leave screenshots: `$FACEPASS_SCREENSHOTS`, or
/// target/screenshots.
pub fn screenshots() -> PathBuf {
    let dir = std::env::var_os("FACEPASS_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `integration-tests/browser/<script>` with `args` and returns the JSON
/// it printed last; panics with its output (and `context`, e.g. the
/// services' logs) when it fails.
pub fn run(script: &str, args: &[&OsStr], context: impl FnOnce() -> String) -> Value {
    let out = std::process::Command::new("node")
        .arg(repo_root().join("integration-tests/browser").join(script))
        .args(args)
        .output()
        .expect("node (scripts/lib/deps.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        context()
    );
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}):\n{stdout}"))
}

/// The step `name` a script recorded (`{"steps": [{"name": ...}, ...]}`).
pub fn step(seen: &Value, name: &str) -> Value {
    seen["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no step {name}: {seen}"))
}
