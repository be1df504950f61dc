//! `nta-agent read` as a user would run it: a capture made with tcpdump
//! (on the veth, and with `-i any`, Linux cooked) of a request the rules
//! catch, read by an unprivileged user into EVE (checked against
//! Suricata's schema) and into a summary; a capture cut short, and a file
//! that is not one.

mod support;

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use jiff::Timestamp;
use support::{
    eve::{alerts_with_sid, can_validate, validated},
    lab::{Spawned, curl, web_server},
    netns::{ATTACKER_ADDR, Topology, VICTIM_ADDR},
};

/// nta's rule "cmd.exe in User-Agent" (default.rules).
const SID_CMD_EXE_USER_AGENT: u64 = 1_000_001;

/// A directory anyone may read and write: the captures and outputs of an
/// unprivileged read.
fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).expect("chmod");
    dir
}

/// Captures on `iface` in the victim's namespace into `file` while a
/// client sends the victim's web server a request with `User-Agent:
/// cmd.exe`; returns when the capture is written.
fn capture_attack(net: &Topology, iface: &str, file: &Path) -> (Timestamp, Timestamp) {
    let _web = web_server(net);
    let path = file.to_str().expect("a UTF-8 path");
    let mut tcpdump = Spawned::start(
        &net.victim,
        Duration::from_secs(3),
        &["tcpdump", "-i", iface, "-n", "-U", "-w", path, "tcp or udp"],
    );
    tcpdump.wait_for_output("listening on", Duration::from_secs(10));
    let before = Timestamp::now();
    curl(
        net,
        &[
            "-o",
            "/dev/null",
            "-H",
            "User-Agent: cmd.exe",
            &format!("http://{VICTIM_ADDR}/"),
        ],
    );
    let after = Timestamp::now();
    // timeout ends tcpdump (SIGTERM), which writes what it has.
    tcpdump.wait(Duration::from_secs(15));
    fs::set_permissions(file, fs::Permissions::from_mode(0o644)).expect("chmod");
    (before, after)
}

/// `nta-agent read ARGS` as the unprivileged user `nobody`.
fn read_as_nobody(args: &[&str]) -> Output {
    Command::new("runuser")
        .args([
            "-u",
            "nobody",
            "--",
            env!("CARGO_BIN_EXE_nta-agent"),
            "read",
        ])
        .args(args)
        .output()
        .expect("running nta-agent read")
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn str_of(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn a_tcpdump_capture_read_by_an_ordinary_user_finds_the_rule_match() {
    if !support::privileged_with(&["tcpdump", "curl", "python3", "runuser"]) || !can_validate() {
        return;
    }
    let net = Topology::new();
    let dir = shared_dir();
    for (iface, name) in [(net.victim_if.as_str(), "veth.pcap"), ("any", "any.pcap")] {
        let capture: PathBuf = dir.path().join(name);
        let (before, after) = capture_attack(&net, iface, &capture);
        let eve = dir.path().join(format!("{name}.eve.json"));
        let out = read_as_nobody(&["--eve", str_of(&eve), str_of(&capture)]);
        assert!(out.status.success(), "{name}: {}", text(&out));
        let events = validated(&eve);
        let matches = alerts_with_sid(&events, SID_CMD_EXE_USER_AGENT);
        assert_eq!(matches.len(), 1, "{name}: {events:?}");
        let m = matches[0];
        assert_eq!(m["src_ip"], ATTACKER_ADDR, "{name}");
        assert_eq!(m["dest_ip"], VICTIM_ADDR, "{name}");
        assert_eq!(m["dest_port"], 80, "{name}");
        assert_eq!(m["proto"], "TCP", "{name}");
        // The capture's time, not the reading's.
        let at = m["timestamp"].as_str().expect("a timestamp");
        let at: Timestamp = at.replace("+0000", "Z").parse().expect("parses");
        assert!(
            before <= at && at <= after,
            "{name}: {at} outside the request's [{before}, {after}]"
        );
        let stats = events.last().expect("events");
        assert_eq!(stats["event_type"], "stats", "{name}");
        assert!(
            stats["stats"]["decoder"]["tcp"]
                .as_u64()
                .is_some_and(|n| n >= 5)
        );

        // Without --eve or --db: a summary, with an incident per rule
        // that matched (both cmd.exe rules match the one request).
        let sids: std::collections::BTreeSet<u64> = events
            .iter()
            .filter_map(|e| e["alert"]["signature_id"].as_u64())
            .collect();
        let out = read_as_nobody(&[str_of(&capture)]);
        assert!(out.status.success(), "{name}: {}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let n = sids.len();
        assert!(
            stdout.contains(&format!("alerts: {n}\n  signature: {n}")),
            "{name}: sids {sids:?}; {stdout}"
        );
    }
}

#[test]
fn a_capture_cut_short_keeps_what_came_before_and_says_where() {
    if !support::privileged_with(&["tcpdump", "curl", "python3", "runuser"]) {
        return;
    }
    let net = Topology::new();
    let dir = shared_dir();
    let capture = dir.path().join("cut.pcap");
    capture_attack(&net, &net.victim_if, &capture);
    let whole = fs::read(&capture).expect("the capture");
    // Cut inside the last packet record: everything else, the request
    // included, is still there.
    fs::write(&capture, &whole[..whole.len() - 10]).expect("cutting");
    let out = read_as_nobody(&[str_of(&capture)]);
    // Exit 1: the file was not read whole; what it held is reported.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{} is cut short", capture.display()))
            && stderr.contains("at byte"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("  signature: "), "{}", text(&out));

    let notes = dir.path().join("notes.txt");
    fs::write(&notes, "not a capture\n".repeat(10)).expect("writing");
    let out = read_as_nobody(&[str_of(&notes)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("notes.txt is not a capture file"),
        "{}",
        text(&out)
    );
}
