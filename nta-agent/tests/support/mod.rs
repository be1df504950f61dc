//! Shared by the integration tests: privilege checks that fail under CI.
#![allow(dead_code, reason = "each test binary uses a different part")]

pub mod api;
pub mod figures;
pub mod frames;
pub mod lab;
pub mod netns;
pub mod smtp;
pub mod usage;
pub mod xdp;

/// Whether the tests run in CI, where anything that cannot run is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Returns true if this test can touch BPF and the network (it runs as root).
///
/// Outside CI a test that cannot run says so and is skipped; with `CI=true`
/// it panics, so a missing privilege can never pass as green.
pub fn privileged(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if in_ci() {
        panic!("{test}: needs root for BPF and network namespaces, and CI=true forbids skipping");
    }
    eprintln!("SKIPPED {test}: needs root (run `cargo xtask test`, which uses sudo)");
    false
}

/// Returns true if `tool` is on PATH; like [`privileged`], fails under CI.
pub fn have_tool(test: &str, tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()));
    if found {
        return true;
    }
    if in_ci() {
        panic!("{test}: `{tool}` is not installed, and CI=true forbids skipping");
    }
    eprintln!("SKIPPED {test}: `{tool}` is not installed (`cargo xtask setup --test-tools`)");
    false
}
