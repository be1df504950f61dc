//! Shared by the integration tests: privilege and tool checks that fail
//! under CI, and the harnesses in the submodules.
#![allow(dead_code, reason = "each test binary uses a different part")]

pub mod api;
pub mod captures;
pub mod collectors;
pub mod container;
pub mod coverage;
pub mod dns;
pub mod et_open;
pub mod eve;
pub mod figures;
pub mod frames;
pub mod lab;
pub mod memory_api;
pub mod netns;
pub mod prometheus;
pub mod smtp;
pub mod usage;
pub mod xdp;

/// Whether the tests run in CI, where anything that cannot run is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The running test's name as libtest prints it: libtest runs every test
/// on a thread named after it, with `--test-threads=1` too.
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .unwrap_or("this test")
        .to_owned()
}

/// Returns false, having said why the running test cannot run: `what` is
/// missing, and `fix` is how to get it. With `CI=true` it panics instead,
/// so a missing prerequisite can never pass as green.
pub fn missing(what: &str, fix: &str) -> bool {
    let test = test_name();
    if in_ci() {
        panic!("{test}: {what}, and CI=true forbids skipping");
    }
    eprintln!("SKIPPED {test}: {what} ({fix})");
    false
}

/// Returns true if this test can touch BPF and the network (it runs as
/// root); see [`missing`] for what happens when it cannot.
pub fn privileged() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    root || missing(
        "needs root for BPF and network namespaces",
        "run `cargo xtask test`, which uses sudo",
    )
}

/// Returns true if `tool` is on PATH; like [`privileged`], fails under CI.
pub fn have_tool(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()));
    found
        || missing(
            &format!("`{tool}` is not installed"),
            "`cargo xtask setup --test-tools`",
        )
}

/// Returns true if python3 can import `module`; like [`have_tool`], fails
/// under CI.
pub fn python_module(module: &str) -> bool {
    let imports = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|out| out.status.success());
    imports
        || missing(
            &format!("python3 cannot import `{module}`"),
            "`cargo xtask setup --test-tools`",
        )
}

/// [`privileged`], and every one of `tools` on PATH: what a test that runs
/// real tools in network namespaces needs. Stops at the first one missing.
pub fn privileged_with(tools: &[&str]) -> bool {
    privileged() && tools.iter().all(|tool| have_tool(tool))
}

/// Runs `nta-agent read ARGS` (unprivileged, in this process's namespace),
/// which must succeed; its error output is the panic's message otherwise.
pub fn nta_read(args: &[&str]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nta-agent"))
        .arg("read")
        .args(args)
        .output()
        .expect("running nta-agent read");
    assert!(
        out.status.success(),
        "nta-agent read {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Debian package under test (`NTA_TEST_DEB`, which `cargo xtask test`
/// sets once it has built it), or `None` having said why there is none.
pub fn deb() -> Option<std::path::PathBuf> {
    let Some(path) = std::env::var_os("NTA_TEST_DEB").map(std::path::PathBuf::from) else {
        missing(
            "no package to check: NTA_TEST_DEB is not set",
            "`cargo xtask test` builds it first and sets it (if packaging failed, its \
             output says why); or `cargo xtask package`, then \
             NTA_TEST_DEB=target/debian/nta_VERSION_ARCH.deb",
        );
        return None;
    };
    if !path.is_file() {
        missing(
            &format!("{} does not exist", path.display()),
            "`cargo xtask package`",
        );
        return None;
    }
    have_tool("dpkg-deb").then_some(path)
}

/// Polls `done` every 250 ms until it gives a value, for at most `limit`.
pub fn wait_for<T>(
    what: &str,
    limit: std::time::Duration,
    mut done: impl FnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(found) = done() {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// The first word of field `name` (`Uid`, `CapEff`, ...) of a
/// `/proc/PID/status` text.
#[track_caller]
pub fn status_field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in\n{status}"))
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}
