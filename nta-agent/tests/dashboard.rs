//! The dashboard in a real browser while a real attack runs.
//!
//! The agent watches the victim's veth with a token; headless Chromium
//! (Debian's, driven by Playwright through `dashboard/tests/browser.mjs`)
//! opens the dashboard inside the victim's namespace. Once the page is live
//! on the stream, nmap scans from the attacker's namespace and curl sends a
//! request whose User-Agent carries `cmd.exe` with HTML and script. The
//! browser script then checks, without reloading: the port-scan and
//! signature rows appear, the charts have points, the hostile text is shown
//! as text and nothing ran, a kind filter works, a `#alert=ID` link opens
//! that alert; the attacker's address in an alert row opens its host view,
//! where its flows (stored once idle: the test sets a 2 s idle timeout)
//! show, and its port 80 the flows view, where the request's flow shows and
//! the attacker's flows are filtered, sorted and paged; with the stream
//! blocked the page polls, and goes live again once unblocked. It saves
//! screenshots in light and dark mode, on a phone, and of the hosts and
//! flows views under
//! `target/nta-test-artifacts/dashboard/`. The API's own answers about the
//! attacker (`/api/hosts/{ip}`, `/api/top`) are checked after.

mod support;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use support::{
    api::{Api, LISTEN},
    lab::{
        Spawned, alert_log, curl, explain, nmap_fast_scan, ping_victim, start_agent, web_server,
    },
    netns::{ATTACKER_ADDR, Topology, VICTIM_ADDR},
};

const TOKEN: &str = "dashboard-test-token-0123456789";
/// What curl sends: the default rule's `cmd.exe`, then markup that would
/// raise a dialog if the page ever rendered it as HTML.
const HOSTILE_USER_AGENT: &str = "cmd.exe <img src=x onerror=alert(1)><script>alert(2)</script>";
/// Longest the page may take to load and connect to the stream (Chromium's
/// first start on a cold disk is slow).
const READY_LIMIT: Duration = Duration::from_secs(60);
/// Longest the whole browser run may take.
const BROWSER_LIMIT: Duration = Duration::from_secs(210);
/// Flows are stored once idle this long: short, so that the request's
/// flow is there while the browser looks.
const FLOW_CONFIG: &str = "[flows]\nidle_timeout = \"2s\"\n";

/// One browser test at a time: two Chromiums and a flood starting at once
/// on a small machine can take longer than [`READY_LIMIT`] to start, and
/// the attack test clears the screenshots folder the other writes into.
static ONE_BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_browser() -> std::sync::MutexGuard<'static, ()> {
    ONE_BROWSER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the agent crate sits in the workspace")
        .to_owned()
}

/// The browser script in `scripts` run in the victim's namespace against
/// the dashboard with the token, with `args` before its URL, keeping its
/// screenshots in `out`.
fn browser(net: &Topology, scripts: &Path, out: &Path, args: &[&str]) -> Spawned {
    let script = scripts.join("browser.mjs");
    let url = format!("http://{LISTEN}/");
    let mut all = vec!["node", script.to_str().expect("UTF-8 path")];
    all.extend_from_slice(args);
    all.extend([
        "--url",
        &url,
        "--out",
        out.to_str().expect("UTF-8 path"),
        "--token",
        TOKEN,
    ]);
    Spawned::start(&net.victim, BROWSER_LIMIT, &all)
}

/// Where screenshots are kept after the test.
fn artefacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    target.join("nta-test-artifacts").join("dashboard")
}

/// Whether Playwright is installed beside the browser script (by `cargo
/// xtask setup --test-tools`); like `have_tool`, a failure under CI.
fn have_playwright(scripts: &Path) -> bool {
    scripts
        .join("node_modules/playwright-core/package.json")
        .is_file()
        || support::missing(
            &format!("playwright-core is not installed in {}", scripts.display()),
            "`cargo xtask setup --test-tools` runs npm ci there",
        )
}

#[test]
fn dashboard_shows_a_live_attack_and_renders_attacker_data_as_text() {
    let scripts = workspace().join("dashboard/tests");
    if !support::privileged_with(&["nmap", "curl", "python3", "node", "chromium"])
        || !have_playwright(&scripts)
    {
        return;
    }
    let _one = one_browser();
    let out = artefacts();
    let _ = std::fs::remove_dir_all(&out);

    let net = Topology::new();
    let config_dir = tempfile::tempdir().expect("temp dir");
    let config = config_dir.path().join("nta.toml");
    std::fs::write(&config, FLOW_CONFIG).expect("writing the config");
    let config = config.to_str().expect("a UTF-8 path");
    let mut agent = start_agent(&net, &["--token", TOKEN, "--config", config]);
    let api = Api::with_token(&net.victim, Some(TOKEN));
    let _web = web_server(&net);

    let mut browser = browser(
        &net,
        &scripts,
        &out,
        &["--attacker", ATTACKER_ADDR, "--victim", VICTIM_ADDR],
    );
    browser.wait_for_output("ready", READY_LIMIT);

    nmap_fast_scan(&net, "1-1000");
    let page = format!("http://{VICTIM_ADDR}/");
    curl(
        &net,
        &[
            "-o",
            "/dev/null",
            "-H",
            &format!("User-Agent: {HOSTILE_USER_AGENT}"),
            &page,
        ],
    );

    let (status, output) = browser.wait(BROWSER_LIMIT);
    let context = || {
        format!(
            "browser:\n{output}\n{}\n{}",
            flow_diagnosis(&api),
            explain(&api.alerts(""), &agent)
        )
    };
    assert!(
        status.success(),
        "the browser checks failed ({status})\n{}",
        context()
    );
    let result = output
        .lines()
        .find_map(|l| l.strip_prefix("result "))
        .unwrap_or_else(|| panic!("no result line\n{}", context()));
    let result: serde_json::Value = serde_json::from_str(result).expect("result is JSON");
    let excerpt = result["excerpt"].as_str().unwrap_or_default();
    assert!(excerpt.contains(HOSTILE_USER_AGENT), "{result}");
    for shot in [
        "dashboard-light.png",
        "dashboard-dark.png",
        "dashboard-phone-dark.png",
        "hosts-light.png",
        "flows-light.png",
    ] {
        let path = out.join(shot);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 10_000,
            "{} is missing or blank ({size} bytes)",
            path.display()
        );
    }
    println!(
        "dashboard: port_scan row {} ms and signature row {} ms after the page went live; \
         chart points {}; the attacker's flows in the host view after {} ms; flows pages {}; \
         stream blocked: polling after {} ms, live {} ms after unblocking; screenshots in {}",
        result["port_scan_row_ms"],
        result["signature_row_ms"],
        result["chart_points"],
        result["host_flow_ms"],
        result["flows_pages"],
        result["polling_after_ms"],
        result["live_again_ms"],
        out.display()
    );
    the_api_adds_up_the_attackers_flows(&api);
    agent.stop_cleanly(libc::SIGTERM, Duration::from_secs(10));
}

/// For a failure: the attacker's TCP flows in the store, and every
/// flow counter the agent reports.
fn flow_diagnosis(api: &Api) -> String {
    let flows = api.get(&format!(
        "/api/flows?host={ATTACKER_ADDR}&proto=tcp&limit=1000"
    ));
    let stored = flows["flows"].as_array().map_or(0, Vec::len);
    let mut counters = Vec::new();
    let mut stack = vec![(String::new(), api.get("/api/stats"))];
    while let Some((path, value)) = stack.pop() {
        if let Some(object) = value.as_object() {
            for (k, v) in object {
                stack.push((format!("{path}.{k}"), v.clone()));
            }
        } else if path.contains("flow") {
            counters.push(format!("{path}={value}"));
        }
    }
    counters.sort();
    format!(
        "flows of the attacker over TCP in the store: {stored}\nflow counters: {}",
        counters.join(", ")
    )
}

/// What the browser showed, from the API: the attacker's host answer
/// names the victim as a peer, port 80 among its services and the port
/// scan among its alerts, and top talkers by flows list both ends.
fn the_api_adds_up_the_attackers_flows(api: &Api) {
    let host = api.get(&format!("/api/hosts/{ATTACKER_ADDR}"));
    assert_eq!(host["host"], ATTACKER_ADDR, "{host}");
    assert!(host["flows"].as_u64() > Some(0), "{host}");
    // XDP sees what the victim receives only: the attacker's bytes out.
    assert!(host["bytes_out"].as_u64() > Some(0), "{host}");
    assert_eq!(host["truncated"], false, "{host}");
    let has = |list: &str, key: &str, value: serde_json::Value| {
        host[list]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i[key] == value))
    };
    assert!(has("peers", "ip", VICTIM_ADDR.into()), "{host}");
    assert!(has("ports", "port", 80.into()), "{host}");
    assert!(has("alerts", "kind", "port_scan".into()), "{host}");
    let top = api.get("/api/top?by=flows&limit=5");
    for addr in [ATTACKER_ADDR, VICTIM_ADDR] {
        assert!(
            top["hosts"]
                .as_array()
                .is_some_and(|hosts| hosts.iter().any(|h| h["ip"] == addr)),
            "{addr} not in {top}"
        );
    }
}

/// The blocks panel during a flood that `--mitigate` blocked: the entry's
/// drop counter climbs on screen, and its Unblock button lifts the block,
/// after which the attacker's packets get through again.
#[test]
fn dashboard_unblock_button_lets_the_attacker_through_again() {
    let scripts = workspace().join("dashboard/tests");
    if !support::privileged_with(&["hping3", "node", "chromium", "ping"])
        || !have_playwright(&scripts)
    {
        return;
    }
    let _one = one_browser();
    let out = artefacts().join("unblock");
    let _ = std::fs::remove_dir_all(&out);
    let net = Topology::new();
    let mut agent = start_agent(&net, &["--token", TOKEN, "--mitigate"]);
    let api = Api::with_token(&net.victim, Some(TOKEN));
    let attacker = format!("{ATTACKER_ADDR}/32");

    let mut browser = browser(
        &net,
        &scripts,
        &out,
        &["--scenario", "unblock", "--cidr", &attacker],
    );
    // The page goes live before the flood: on 2 CPUs, a flood that starts
    // with Chromium can keep the page from starting within its limit.
    browser.wait_for_output("ready", READY_LIMIT);
    let flood = Spawned::start(
        &net.attacker,
        Duration::from_secs(60),
        &["hping3", "-S", "-p", "80", "--flood", VICTIM_ADDR],
    );
    let (status, output) = browser.wait(BROWSER_LIMIT);
    assert!(
        status.success(),
        "the browser checks failed ({status})\nbrowser:\n{output}\nagent:\n{}",
        alert_log(&agent)
    );
    let blocks = api.get("/api/blocks");
    assert_eq!(blocks["blocks"], serde_json::json!([]), "{blocks}");
    agent.assert_logged(&format!("Unblocked by hand cidr={attacker}"));
    // The flood's incident is still the same one: it is not blocked again,
    // and the attacker's packets reach the victim.
    drop(flood);
    let ping = ping_victim(&net, None, 3);
    assert!(
        String::from_utf8_lossy(&ping.stdout).contains("3 received"),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    println!(
        "{}",
        output
            .lines()
            .filter(|l| l.starts_with("drop counter") || l.starts_with("unblocked"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    agent.stop_cleanly(libc::SIGTERM, Duration::from_secs(15));
}
