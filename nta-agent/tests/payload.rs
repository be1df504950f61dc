//! Payload inspection end to end: curl and dig run in the attacker's
//! namespace against a web server and a DNS responder in the victim's, the
//! agent samples the payloads on the victim's veth, and the tests read the
//! resulting `signature` and `dns_tunnel` alerts through the HTTP API.
//!
//! Times printed run from starting the tool (its startup included) to the
//! first API poll that listed the alert, polled every 5 ms.

mod support;

use std::{
    fs,
    process::Command,
    thread,
    time::{Duration, Instant},
};

use nta_agent::payload::{dns_tunnel::DnsTunnelConfig, excerpt::MAX_EXCERPT};
use serde_json::Value;
use support::{
    api::{AlertWatch, Api},
    dns::{check_dig, dig_batch, dns_responder, tunnel_names},
    lab::{Lab, curl, explain, ms, poll_note, start_agent, web_server},
    netns::{ATTACKER_ADDR, Topology, VICTIM_ADDR},
};

/// Longest any poller runs.
const WATCH_LIMIT: Duration = Duration::from_secs(60);
/// Longest the tests wait for an alert that should already be there.
const ALERT_LIMIT: Duration = Duration::from_secs(5);
/// After benign traffic: findings go to the store at once, and one tick
/// (1 s) would show anything the counters raise.
const SETTLE: Duration = Duration::from_secs(2);

/// nta's rule "cmd.exe in User-Agent" (default.rules).
const SID_CMD_EXE_USER_AGENT: u64 = 1_000_001;
/// nta's rule "cmd.exe in HTTP headers" (default.rules).
const SID_CMD_EXE_HEADER: u64 = 1_000_002;

/// The signature alerts for `sid`.
fn with_sid(alerts: &[Value], sid: u64) -> Vec<Value> {
    alerts
        .iter()
        .filter(|a| a["kind"] == "signature" && a["evidence"]["sid"] == sid)
        .cloned()
        .collect()
}

/// Polls `GET /api/alerts` until `done` holds for the list, up to `limit`;
/// returns the last list either way.
fn poll_alerts(api: &Api, limit: Duration, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let alerts = api.alerts("");
        if done(&alerts) || start.elapsed() >= limit {
            return alerts;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The bytes an excerpt stands for: `\\` and `\xNN` undone. Panics on any
/// byte outside printable ASCII and on a cut or unknown escape.
fn unescape(excerpt: &str) -> Vec<u8> {
    let bytes = excerpt.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        assert!(
            (0x20..=0x7e).contains(&b),
            "byte {b:#04x} at {i} of excerpt {excerpt:?} is not printable ASCII"
        );
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let hex = excerpt
                    .get(i + 2..i + 4)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .unwrap_or_else(|| panic!("cut \\x escape at {i} of {excerpt:?}"));
                out.push(hex);
                i += 4;
            }
            _ => panic!("unknown escape at {i} of {excerpt:?}"),
        }
    }
    out
}

#[test]
fn curl_with_cmd_exe_user_agent_raises_a_signature_alert() {
    let Some(lab) = Lab::privileged(&["curl", "python3"]) else {
        return;
    };
    let _web = web_server(&lab.net);
    let url = format!("http://{VICTIM_ADDR}/");
    let attack = ["-o", "/dev/null", "-H", "User-Agent: cmd.exe", url.as_str()];

    let watch = AlertWatch::start(&lab.api, WATCH_LIMIT);
    let start = Instant::now();
    curl(&lab.net, &attack);
    let curl_took = start.elapsed();
    let seen = watch.wait_for("signature", start + ALERT_LIMIT);
    let alerts = poll_alerts(&lab.api, ALERT_LIMIT, |all| {
        !with_sid(all, SID_CMD_EXE_USER_AGENT).is_empty()
    });
    let found = with_sid(&alerts, SID_CMD_EXE_USER_AGENT);
    assert_eq!(
        found.len(),
        1,
        "one request, one alert for sid {SID_CMD_EXE_USER_AGENT}; {}",
        explain(&alerts, &lab.agent)
    );
    let alert = &found[0];
    assert_eq!(alert["evidence"]["buffer"], "http.user_agent", "{alert}");
    assert_eq!(alert["src"], ATTACKER_ADDR, "{alert}");
    assert_eq!(alert["dst"], VICTIM_ADDR, "{alert}");
    assert_eq!(alert["dst_port"], 80, "{alert}");
    let at = watch.time_to(seen, start, "signature alert", || {
        explain(&alerts, &lab.agent)
    });
    println!(
        "curl -H 'User-Agent: cmd.exe': signature alert (sid {}, {:?}) in the API {} after \
         starting curl (curl ran {}); {}",
        alert["evidence"]["sid"],
        alert["evidence"]["signature"],
        ms(at),
        ms(curl_took),
        poll_note(&watch)
    );
    assert!(
        at <= Duration::from_secs(1),
        "signature alert {} after starting curl, more than 1 s",
        ms(at)
    );

    // Repeats from the same source update the one incident.
    for _ in 0..5 {
        curl(&lab.net, &attack);
    }
    let alerts = poll_alerts(&lab.api, ALERT_LIMIT, |all| {
        with_sid(all, SID_CMD_EXE_USER_AGENT)
            .iter()
            .any(|a| a["packets"].as_u64().is_some_and(|n| n >= 6))
    });
    let found = with_sid(&alerts, SID_CMD_EXE_USER_AGENT);
    assert_eq!(
        found.len(),
        1,
        "six requests from one source, still one alert for sid {SID_CMD_EXE_USER_AGENT}; {}",
        explain(&alerts, &lab.agent)
    );
    let packets = found[0]["packets"].as_u64().unwrap_or(0);
    assert!(
        packets >= 6,
        "the incident counts {packets} packets after six requests; {}",
        explain(&alerts, &lab.agent)
    );
    assert_eq!(
        found[0]["id"],
        alert["id"],
        "{}",
        explain(&alerts, &lab.agent)
    );
    println!(
        "after 6 requests: one alert for sid {SID_CMD_EXE_USER_AGENT}, packets {packets}, state {}",
        found[0]["state"]
    );
}

#[test]
fn attacker_data_is_stored_as_bounded_escaped_text() {
    let Some(lab) = Lab::privileged(&["curl", "python3"]) else {
        return;
    };
    let _web = web_server(&lab.net);

    let user_agent = "cmd.exe <script>alert(1)</script> <img src=x onerror=alert(2)>";
    // Within the sampled bytes and after the match: backslashes, quotes, a
    // tab, UTF-8 and a right-to-left override, whose escapes (2 to 4 bytes
    // per byte) push the excerpt to its bound.
    let junk = "\"\\\t\u{e9}\u{202e}<b>'&;".repeat(16);
    // Far past the sampled bytes: the request spans several segments.
    let pad = "A".repeat(3000);
    let headers = [
        format!("User-Agent: {user_agent}"),
        format!("X-Junk: {junk}"),
        format!("X-Pad: {pad}"),
    ];
    let url = format!("http://{VICTIM_ADDR}/");
    curl(
        &lab.net,
        &[
            "-o",
            "/dev/null",
            "-H",
            &headers[0],
            "-H",
            &headers[1],
            "-H",
            &headers[2],
            &url,
        ],
    );
    // What curl sends after the request line (checked by hand with curl
    // 7.88: its own Host and Accept, then the -H headers in order).
    let sent = format!(
        "Host: {VICTIM_ADDR}\r\nAccept: */*\r\n{}\r\n{}\r\n{}\r\n\r\n",
        headers[0], headers[1], headers[2]
    );

    let alerts = poll_alerts(&lab.api, ALERT_LIMIT, |all| {
        !with_sid(all, SID_CMD_EXE_USER_AGENT).is_empty()
            && !with_sid(all, SID_CMD_EXE_HEADER).is_empty()
    });
    let context = || explain(&alerts, &lab.agent);
    let signatures: Vec<&Value> = alerts.iter().filter(|a| a["kind"] == "signature").collect();
    assert!(!signatures.is_empty(), "no signature alert; {}", context());
    for alert in &signatures {
        let excerpt = alert["evidence"]["excerpt"]
            .as_str()
            .unwrap_or_else(|| panic!("no excerpt in {alert}"));
        assert!(
            excerpt.len() <= MAX_EXCERPT,
            "sid {}: excerpt of {} bytes, more than {MAX_EXCERPT}: {excerpt:?}",
            alert["evidence"]["sid"],
            excerpt.len()
        );
        // Printable ASCII only, every escape complete; and undone, the
        // excerpt is exactly bytes the attacker sent.
        let bytes = unescape(excerpt);
        assert!(
            sent.as_bytes().windows(bytes.len()).any(|w| w == bytes),
            "sid {}: excerpt {excerpt:?} is not a part of the request",
            alert["evidence"]["sid"]
        );
        // What a client of the API reads back is what was stored.
        let text = serde_json::to_string(alert).expect("serializing an alert");
        let back: Value = serde_json::from_str(&text).expect("re-reading an alert");
        assert_eq!(&back, *alert);
        let one = lab.api.get(&format!("/api/alerts/{}", alert["id"]));
        assert_eq!(&one, *alert);
    }

    let by_user_agent = with_sid(&alerts, SID_CMD_EXE_USER_AGENT);
    let ua_excerpt = by_user_agent
        .first()
        .and_then(|a| a["evidence"]["excerpt"].as_str())
        .unwrap_or_else(|| panic!("no alert for sid {SID_CMD_EXE_USER_AGENT}; {}", context()));
    // Markup stays readable text: escaping it for HTML is the dashboard's job.
    assert_eq!(ua_excerpt, user_agent, "{}", context());

    let by_header = with_sid(&alerts, SID_CMD_EXE_HEADER);
    let header_excerpt = by_header
        .first()
        .and_then(|a| a["evidence"]["excerpt"].as_str())
        .unwrap_or_else(|| panic!("no alert for sid {SID_CMD_EXE_HEADER}; {}", context()));
    assert_eq!(by_header[0]["evidence"]["buffer"], "http.header");
    assert!(
        header_excerpt.contains(&format!(
            "{user_agent}\\x0d\\x0aX-Junk: \"\\\\\\x09\\xc3\\xa9"
        )),
        "line ends and the junk header not shown escaped: {header_excerpt:?}"
    );
    assert!(
        header_excerpt.len() > MAX_EXCERPT - 4,
        "the junk header should fill the excerpt to its bound: {} bytes, {header_excerpt:?}",
        header_excerpt.len()
    );
    println!(
        "hostile request of {} header bytes: {} signature alerts; excerpt of sid \
         {SID_CMD_EXE_HEADER} is {} bytes (bound {MAX_EXCERPT}): {header_excerpt}",
        sent.len(),
        signatures.len(),
        header_excerpt.len()
    );
}

#[test]
fn a_users_rules_file_loads_and_its_bad_lines_are_reported() {
    if !support::privileged_with(&["curl", "python3"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("local.rules");
    fs::write(
        &rules,
        "alert http any any -> any any (msg:\"secret path\"; http.uri; content:\"/very-secret\"; sid:9000001; rev:1;)\n\
         alert http any any -> any any (msg:\"byte extract\"; http.uri; content:\"/x\"; byte_extract:1,0,size; sid:9000002; rev:1;)\n\
         alert http any any -> any any (msg:\"no sid\"; http.uri; content:\"/nosid\"; rev:1;)\n",
    )
    .expect("writing the rules file");
    let file = rules.to_str().expect("utf-8 temp path");

    let check = Command::new("timeout")
        .args([
            "-s",
            "KILL",
            "10",
            env!("CARGO_BIN_EXE_nta-agent"),
            "rules",
            "check",
            file,
        ])
        // As a user runs it: anyhow would add a backtrace to the error
        // when the test runner's RUST_BACKTRACE=1 leaks through.
        .env("RUST_LIB_BACKTRACE", "0")
        .output()
        .expect("running nta-agent rules check");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        !check.status.success(),
        "rules check accepted a file with two bad rules:\n{said}"
    );
    assert_ne!(check.status.code(), Some(137), "rules check timed out");
    for line in [2, 3] {
        assert!(
            said.contains(&format!("{file}:{line}:")),
            "rules check does not name {file}:{line}:\n{said}"
        );
    }
    assert!(
        !said.contains(&format!("{file}:1:")),
        "line 1 is fine:\n{said}"
    );
    println!("nta-agent rules check ({}):\n{said}", check.status);

    let lab = Lab::start_with(&["--rules", file]);
    let _web = web_server(&lab.net);
    let url = format!("http://{VICTIM_ADDR}/very-secret");
    curl(&lab.net, &["-o", "/dev/null", &url]);
    let alerts = poll_alerts(&lab.api, ALERT_LIMIT, |all| {
        !with_sid(all, 9_000_001).is_empty()
    });
    let found = with_sid(&alerts, 9_000_001);
    assert_eq!(found.len(), 1, "{}", explain(&alerts, &lab.agent));
    assert_eq!(found[0]["evidence"]["signature"], "secret path");
    assert_eq!(found[0]["evidence"]["buffer"], "http.uri");
    assert_eq!(found[0]["src"], ATTACKER_ADDR);

    let log = lab.agent.log();
    let rejected: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Rule rejected"))
        .collect();
    for line in [2, 3] {
        assert!(
            rejected
                .iter()
                .any(|l| l.contains(&format!("{file}:{line}:"))),
            "the agent does not report {file}:{line}:\n{log}"
        );
    }
    assert_eq!(rejected.len(), 2, "{log}");
    println!("agent log:\n{}", rejected.join("\n"));
}

#[test]
fn dns_tunnelling_with_dig_raises_a_dns_tunnel_alert() {
    let Some(lab) = Lab::privileged(&["dig", "python3"]) else {
        return;
    };
    let _dns = dns_responder(&lab.net);
    let dir = tempfile::tempdir().expect("temp dir");
    // The registered domain is approximated as the last two labels
    // (`example` is no two-letter country code): exfil.example.
    let queries: Vec<String> = tunnel_names(200)
        .into_iter()
        .map(|name| format!("{name} TXT"))
        .collect();

    let watch = AlertWatch::start(&lab.api, WATCH_LIMIT);
    let start = Instant::now();
    let mut dig = dig_batch(&lab.net, dir.path(), &queries);
    let seen = watch.wait_for("dns_tunnel", start + Duration::from_secs(10));
    check_dig(&mut dig, queries.len());
    let dig_took = start.elapsed();

    let alerts = poll_alerts(&lab.api, ALERT_LIMIT, |all| {
        all.iter().any(|a| a["kind"] == "dns_tunnel")
    });
    let tunnels: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["kind"] == "dns_tunnel")
        .collect();
    assert_eq!(
        tunnels.len(),
        1,
        "one tunnel, one alert; {}",
        explain(&alerts, &lab.agent)
    );
    let tunnel = tunnels[0];
    let evidence = &tunnel["evidence"];
    assert_eq!(tunnel["src"], ATTACKER_ADDR, "{tunnel}");
    assert_eq!(tunnel["dst"], VICTIM_ADDR, "{tunnel}");
    assert_eq!(tunnel["dst_port"], 53, "{tunnel}");
    assert_eq!(evidence["domain"], "exfil.example", "{tunnel}");
    let threshold = u64::from(DnsTunnelConfig::default().unique_subdomains);
    assert!(
        evidence["unique_subdomains"]
            .as_u64()
            .is_some_and(|n| n >= threshold),
        "{tunnel}"
    );
    assert!(
        evidence["query"]
            .as_str()
            .is_some_and(|q| q.ends_with(".t.exfil.example")),
        "{tunnel}"
    );
    assert!(
        tunnel["message"]
            .as_str()
            .is_some_and(|m| m.contains("distinct subdomains of exfil.example")),
        "{tunnel}"
    );
    let others: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["kind"] != "dns_tunnel")
        .collect();
    assert!(
        others.is_empty(),
        "only the tunnel should alert; {}",
        explain(&alerts, &lab.agent)
    );
    let at = watch.time_to(seen, start, "dns_tunnel alert", || {
        explain(&alerts, &lab.agent)
    });
    println!(
        "dig -f, {} TXT queries for random names under exfil.example: dns_tunnel alert in the \
         API {} after starting dig (dig ran {}); unique_subdomains {}, longest_label {}, \
         max_entropy {:.2}, txt_null {}, packets {}; {}",
        queries.len(),
        ms(at),
        ms(dig_took),
        evidence["unique_subdomains"],
        evidence["longest_label"],
        evidence["max_entropy"].as_f64().unwrap_or(0.0),
        evidence["txt_null"],
        tunnel["packets"],
        poll_note(&watch)
    );
    println!("message: {}", tunnel["message"]);
}

#[test]
fn ordinary_curl_and_dig_raise_no_alert() {
    let Some(lab) = Lab::privileged(&["curl", "dig", "python3"]) else {
        return;
    };
    let _web = web_server(&lab.net);
    let _dns = dns_responder(&lab.net);
    let dir = tempfile::tempdir().expect("temp dir");
    let taken_before = lab.api.get("/api/stats")["totals"]["samples_taken"]
        .as_u64()
        .unwrap_or(0);

    let urls: Vec<String> = (0..50)
        .map(|i| match i % 3 {
            0 => format!("http://{VICTIM_ADDR}/index.html"),
            1 => format!("http://{VICTIM_ADDR}/"),
            _ => format!("http://{VICTIM_ADDR}/index.html?page={i}"),
        })
        .collect();
    let mut args = vec!["-w", "%{http_code}\\n"];
    for url in &urls {
        args.extend(["-o", "/dev/null", url.as_str()]);
    }
    let out = curl(&lab.net, &args);
    let codes = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        codes.lines().filter(|c| *c == "200").count(),
        urls.len(),
        "{codes}"
    );

    let names = [
        ("www.example.com", "A"),
        ("mail.example.com", "MX"),
        ("www.example.org", "AAAA"),
        ("api.example.com", "A"),
        ("ns1.example.net", "A"),
    ];
    let queries: Vec<String> = (0..50)
        .map(|i| {
            let (name, qtype) = names[i % names.len()];
            format!("{name} {qtype}")
        })
        .collect();
    let mut dig = dig_batch(&lab.net, dir.path(), &queries);
    check_dig(&mut dig, queries.len());
    thread::sleep(SETTLE);

    let taken = lab.api.get("/api/stats")["totals"]["samples_taken"]
        .as_u64()
        .unwrap_or(0)
        .saturating_sub(taken_before);
    let alerts = lab.api.alerts("");
    println!(
        "{} HTTP requests and {} DNS queries: {taken} payload samples taken, {} alerts",
        urls.len(),
        queries.len(),
        alerts.len()
    );
    assert!(
        taken >= (urls.len() + queries.len()) as u64,
        "only {taken} samples taken: the traffic was not inspected"
    );
    assert!(
        alerts.is_empty(),
        "ordinary traffic raised alerts; {}",
        explain(&alerts, &lab.agent)
    );
}

/// A rule alerting on requests for `path`, with `sid`.
fn path_rule(path: &str, sid: u64) -> String {
    format!(
        "alert http any any -> any any (msg:\"path {path}\"; http.uri; content:\"{path}\"; sid:{sid}; rev:1;)\n"
    )
}

/// `POST /api/rules/reload` from the victim's namespace, with `token` if
/// any: the status and the body.
fn post_reload(net: &Topology, token: Option<&str>) -> (String, String) {
    let header = token.map(|t| format!("Authorization: Bearer {t}"));
    let mut args = vec!["curl", "-s", "-X", "POST", "-w", "\n%{http_code}"];
    if let Some(header) = &header {
        args.extend(["-H", header.as_str()]);
    }
    args.push("http://127.0.0.1:3000/api/rules/reload");
    let out = net.exec(&net.victim, Duration::from_secs(30), &args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.to_owned(), body.to_owned())
}

/// Requests `path` from the web server until rule `sid`'s alert is listed.
fn alerts_on(lab_net: &Topology, api: &Api, path: &str, sid: u64) -> Vec<Value> {
    curl(
        lab_net,
        &["-o", "/dev/null", &format!("http://{VICTIM_ADDR}{path}")],
    );
    let alerts = poll_alerts(api, ALERT_LIMIT, |all| !with_sid(all, sid).is_empty());
    with_sid(&alerts, sid)
}

#[test]
fn rules_reload_on_sighup_and_post_and_a_file_that_fails_keeps_the_old_set() {
    let Some(net) = Topology::privileged(&["curl", "python3"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("local.rules");
    fs::write(&rules, path_rule("/first-secret", 9_000_101)).expect("writing the rules");
    let db = dir.path().join("nta.redb");
    let file = rules.to_str().expect("UTF-8");
    let mut agent = start_agent(
        &net,
        &["--rules", file, "--db", db.to_str().expect("UTF-8")],
    );
    let api = Api::new(&net.victim);
    let _web = web_server(&net);
    let loaded = |api: &Api| {
        api.get("/api/stats")["rules"]["loaded"]
            .as_u64()
            .expect("rules.loaded")
    };
    let at_start = loaded(&api);
    assert_eq!(alerts_on(&net, &api, "/first-secret", 9_000_101).len(), 1);

    // SIGHUP: a second rule, and the first still there.
    let mut both = path_rule("/first-secret", 9_000_101);
    both.push_str(&path_rule("/second-secret", 9_000_102));
    fs::write(&rules, both).expect("rewriting the rules");
    let pid = libc::pid_t::try_from(agent.pid().expect("the agent's pid")).expect("a pid");
    // SAFETY: kill has no memory preconditions; pid is the agent's.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    agent.wait_for_log("Rules reloaded", Duration::from_secs(20));
    assert_eq!(loaded(&api), at_start + 1);
    let found = alerts_on(&net, &api, "/second-secret", 9_000_102);
    assert_eq!(found.len(), 1, "{}", agent.log());

    // The API, without the admin token: refused.
    let (status, body) = post_reload(&net, None);
    assert_eq!(status, "401", "{body}");
    let token = fs::read_to_string(dir.path().join("api-token")).expect("the admin token");
    let token = token.trim();

    // A file gone: 422 naming it, and the set in use stays.
    fs::remove_file(&rules).expect("removing the rules file");
    let (status, body) = post_reload(&net, Some(token));
    assert_eq!(status, "422", "{body}");
    assert!(
        body.contains(file) && body.contains("stay in use"),
        "{body}"
    );
    assert_eq!(loaded(&api), at_start + 1);
    agent.assert_logged("Rules reload failed");

    // A new set through the API: its counts, and its rule matches.
    let mut next = path_rule("/third-secret", 9_000_103);
    next.push_str("alert http any any -> any any (msg:\"no sid\"; content:\"x\"; rev:1;)\n");
    fs::write(&rules, next).expect("writing the rules again");
    let (status, body) = post_reload(&net, Some(token));
    assert_eq!(status, "200", "{body}");
    let counts: Value = serde_json::from_str(&body).expect("JSON counts");
    assert_eq!(counts["loaded"].as_u64(), Some(at_start), "{body}");
    assert_eq!(counts["rejected"], 1, "{body}");
    assert_eq!(loaded(&api), at_start);
    let found = alerts_on(&net, &api, "/third-secret", 9_000_103);
    assert_eq!(found.len(), 1, "{}", agent.log());
    // The open incidents went on through the reloads.
    assert_eq!(with_sid(&api.alerts(""), 9_000_101).len(), 1);
    agent.stop_cleanly(libc::SIGTERM, Duration::from_secs(15));
}

/// ET's user-agent rule for `reqwest/` (`flow:established,to_server;
/// http.user_agent; content:"reqwest/"; depth:8`), in
/// `emerging-user_agents.rules`.
const SID_ET_USER_AGENT: u64 = 2_028_842;
/// ET's DNS rule for `appsdown.urbanvillager.xyz` (`dns.query; content;
/// nocase; endswith`), in `emerging-adware_pup.rules`.
const SID_ET_DNS: u64 = 2_029_107;
/// Compiling all of ET Open in a debug build takes ~15 s, more on a busy
/// machine.
const ET_START_LIMIT: Duration = Duration::from_secs(90);

/// Emerging Threats Open loaded whole into a running agent, as a user
/// would (every `.rules` file, `HOME_NET` set to the clients): curl with a
/// user agent ET lists and dig for a domain ET lists raise those rules'
/// alerts, once each.
#[test]
fn et_open_in_a_running_agent_catches_a_listed_user_agent_and_domain() {
    let Some(dir) = support::et_open::ruleset() else {
        return;
    };
    let Some(net) = Topology::privileged(&["curl", "dig", "python3"]) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = tmp.path().join("nta.toml");
    fs::write(
        &config,
        format!("[vars]\nHOME_NET = \"{ATTACKER_ADDR}/32\"\n"),
    )
    .expect("writing the config");
    let files = support::et_open::rule_files(&dir);
    let mut args = vec!["--config".to_owned(), config.display().to_string()];
    for f in &files {
        args.extend(["--rules".to_owned(), f.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = Instant::now();
    let mut agent = support::lab::start_agent_within(&net, &args, ET_START_LIMIT);
    let took = started.elapsed();
    let api = Api::new(&net.victim);
    let loaded = api.get("/api/stats")["rules"]["loaded"]
        .as_u64()
        .expect("rules.loaded");
    assert!(loaded > 15_000, "{loaded} rules loaded");
    let _web = web_server(&net);
    let _dns = dns_responder(&net);

    curl(
        &net,
        &["-o", "/dev/null", &format!("http://{VICTIM_ADDR}/")],
    );
    curl(
        &net,
        &[
            "-o",
            "/dev/null",
            "-A",
            "reqwest/0.12.4",
            &format!("http://{VICTIM_ADDR}/index.html"),
        ],
    );
    let dig = net.exec(
        &net.attacker,
        Duration::from_secs(20),
        &[
            "dig",
            &format!("@{VICTIM_ADDR}"),
            "appsdown.urbanvillager.xyz",
            "A",
            "+tries=1",
            "+time=3",
        ],
    );
    assert!(dig.status.success(), "dig: {dig:?}");
    let alerts = poll_alerts(&api, ALERT_LIMIT, |all| {
        !with_sid(all, SID_ET_USER_AGENT).is_empty() && !with_sid(all, SID_ET_DNS).is_empty()
    });
    for sid in [SID_ET_USER_AGENT, SID_ET_DNS] {
        let found = with_sid(&alerts, sid);
        assert_eq!(found.len(), 1, "sid {sid}: {}", explain(&alerts, &agent));
        assert_eq!(found[0]["src"], ATTACKER_ADDR, "{}", found[0]);
    }
    let agent_alert = &with_sid(&alerts, SID_ET_USER_AGENT)[0];
    assert!(
        agent_alert["evidence"]["excerpt"]
            .as_str()
            .is_some_and(|e| e.contains("reqwest/")),
        "{agent_alert}"
    );
    let mut sids: Vec<String> = alerts
        .iter()
        .map(|a| format!("{} {}", a["evidence"]["sid"], a["message"]))
        .collect();
    sids.sort();
    println!(
        "ET Open, {} files: {loaded} rules loaded, agent up in {} (debug build); alerts:\n{}",
        files.len(),
        ms(took),
        sids.join("\n")
    );
    agent.stop_cleanly(libc::SIGTERM, Duration::from_secs(15));
}

/// ET's rule for a certificate subject ending `CN=*.qbix.com`
/// (`flow:established,to_client; tls.cert_subject; content; nocase;
/// endswith`), in `emerging-adware_pup.rules`.
const SID_ET_CERT_SUBJECT: u64 = 2_025_424;

/// A TLS 1.2 web server on the victim's 8443, with `cert` and `key` (PEM
/// files), answering before this returns.
const TLS_SERVER: &str = "
import http.server, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv = http.server.HTTPServer(('198.18.0.1', 8443), http.server.SimpleHTTPRequestHandler)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print('ready', flush=True)
srv.serve_forever()
";

/// A server whose certificate ET lists, on a port no rule names: the
/// agent, on a mirror of the server's interface (XDP sees what arrives),
/// reads the subject from the server's first bytes, as Suricata's
/// `tls.cert_subject`, and raises ET's rule against the server.
#[test]
fn a_tls_server_with_a_certificate_et_lists_raises_its_rule() {
    let Some(dir) = support::et_open::ruleset() else {
        return;
    };
    let Some(net) = Topology::privileged(&["curl", "python3"]) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut params =
        rcgen::CertificateParams::new(vec!["cdn.qbix.com".to_owned()]).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "*.qbix.com");
    let key = rcgen::KeyPair::generate().expect("a key");
    let cert = params.self_signed(&key).expect("a certificate");
    let (cert_file, key_file) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    fs::write(&cert_file, cert.pem()).expect("writing the certificate");
    fs::write(&key_file, key.serialize_pem()).expect("writing the key");
    let config = tmp.path().join("nta.toml");
    fs::write(
        &config,
        format!("[vars]\nHOME_NET = \"{ATTACKER_ADDR}/32\"\n"),
    )
    .expect("writing the config");
    let rules = dir.join("emerging-adware_pup.rules");
    let mut agent = support::lab::start_agent_on(
        &net,
        &net.mirror_port(),
        &[
            "--config",
            config.to_str().expect("UTF-8"),
            "--rules",
            rules.to_str().expect("UTF-8"),
        ],
        support::lab::START_LIMIT,
    );
    let api = Api::new(&net.victim);
    let mut server = support::lab::Spawned::start(
        &net.victim,
        Duration::from_secs(120),
        &[
            "python3",
            "-c",
            TLS_SERVER,
            cert_file.to_str().expect("UTF-8"),
            key_file.to_str().expect("UTF-8"),
        ],
    );
    server.wait_for_output("ready", Duration::from_secs(10));
    curl(
        &net,
        &[
            "-k",
            "--tls-max",
            "1.2",
            "-o",
            "/dev/null",
            &format!("https://{VICTIM_ADDR}:8443/"),
        ],
    );
    let alerts = poll_alerts(&api, ALERT_LIMIT, |all| {
        !with_sid(all, SID_ET_CERT_SUBJECT).is_empty()
    });
    let found = with_sid(&alerts, SID_ET_CERT_SUBJECT);
    assert_eq!(found.len(), 1, "{}", explain(&alerts, &agent));
    // The server sent the certificate: the alert is from it.
    assert_eq!(found[0]["src"], VICTIM_ADDR, "{}", found[0]);
    assert_eq!(
        found[0]["evidence"]["buffer"], "tls.cert_subject",
        "{}",
        found[0]
    );
    agent.stop_cleanly(libc::SIGTERM, Duration::from_secs(15));
}

/// A rule on addresses alone naming the attacker as source.
fn address_rule(sid: u64) -> String {
    format!(
        "alert ip [{ATTACKER_ADDR}] any -> [{VICTIM_ADDR}] any (msg:\"listed source {sid}\"; \
         threshold: type limit, track by_src, seconds 3600, count 1; sid:{sid}; rev:1;)\n"
    )
}

/// A rule on addresses alone alerts on the attacker's connection within a
/// walk of the flow table, once though it connects twice (its threshold);
/// after a reload, the new set's rule does, and the old one no more.
#[test]
fn a_rule_on_addresses_alone_alerts_on_a_new_flow_and_reloads() {
    let Some(net) = Topology::privileged(&["curl", "python3"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("addresses.rules");
    fs::write(&rules, address_rule(9_000_201)).expect("writing the rules");
    let file = rules.to_str().expect("UTF-8");
    let mut agent = start_agent(&net, &["--rules", file]);
    let api = Api::new(&net.victim);
    let _web = web_server(&net);
    let url = format!("http://{VICTIM_ADDR}/");
    // Two flows; a walk comes every 1 to 5 s.
    curl(&net, &["-o", "/dev/null", &url]);
    curl(&net, &["-o", "/dev/null", &url]);
    let limit = Duration::from_secs(15);
    let alerts = poll_alerts(&api, limit, |all| !with_sid(all, 9_000_201).is_empty());
    let found = with_sid(&alerts, 9_000_201);
    assert_eq!(found.len(), 1, "{}", agent.log());
    assert_eq!(found[0]["src"], ATTACKER_ADDR, "{:?}", found[0]);
    assert_eq!(found[0]["evidence"]["signature"], "listed source 9000201");
    // A walk later, still one match: the second flow was held.
    thread::sleep(Duration::from_secs(6));
    let after = with_sid(&api.alerts(""), 9_000_201);
    assert_eq!(after[0]["packets"], 1, "{after:?}");

    fs::write(&rules, address_rule(9_000_202)).expect("rewriting the rules");
    let pid = libc::pid_t::try_from(agent.pid().expect("the agent's pid")).expect("a pid");
    // SAFETY: kill has no memory preconditions; pid is the agent's.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    agent.wait_for_log("Rules reloaded", Duration::from_secs(20));
    curl(&net, &["-o", "/dev/null", &url]);
    let alerts = poll_alerts(&api, limit, |all| !with_sid(all, 9_000_202).is_empty());
    assert_eq!(with_sid(&alerts, 9_000_202).len(), 1, "{}", agent.log());
    agent.stop_cleanly(libc::SIGTERM, Duration::from_secs(15));
}
