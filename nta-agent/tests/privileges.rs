//! Least privilege: the agent as an unprivileged user holding only
//! CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON as ambient capabilities, as the
//! packaged systemd unit runs it (here through `setpriv`), attaches,
//! detects and serves; without any one of them it fails at start, naming
//! what it lacks.

mod support;

use std::{
    os::unix::fs::PermissionsExt as _,
    time::{Duration, Instant},
};

use support::{
    api::{Api, LISTEN},
    lab::send_syns,
    netns::{Agent, Topology},
};

const START_LIMIT: Duration = Duration::from_secs(30);
const STOP_LIMIT: Duration = Duration::from_secs(10);
/// `nobody`, who owns nothing: every file the agent writes is in a
/// directory the test opens to it.
const NOBODY: &str = "65534";

/// `setpriv` switching to [`NOBODY`] with exactly `caps` (setpriv's names,
/// e.g. `["bpf", "net_admin"]`) inheritable, ambient and in the bounding
/// set, so that they are all the agent has after exec.
fn as_nobody_with(caps: &[&str]) -> Vec<String> {
    let set: String = std::iter::once("-all".to_owned())
        .chain(caps.iter().map(|cap| format!("+{cap}")))
        .collect::<Vec<_>>()
        .join(",");
    vec![
        "setpriv".into(),
        format!("--reuid={NOBODY}"),
        format!("--regid={NOBODY}"),
        "--clear-groups".into(),
        format!("--inh-caps={set}"),
        format!("--ambient-caps={set}"),
        format!("--bounding-set={set}"),
        "--".into(),
    ]
}

/// A temporary directory the unprivileged agent may write its store and
/// token into.
fn open_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
        .expect("opening the temp dir to nobody");
    dir
}

fn start_as_nobody(net: &Topology, caps: &[&str]) -> Agent {
    let wrapper = as_nobody_with(caps);
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    Agent::start_wrapped(
        open_dir(),
        &net.victim,
        &net.victim_if,
        &["--listen", LISTEN, "--interval", "200ms"],
        "info",
        &wrapper,
    )
}

/// A field of `/proc/PID/status`, e.g. `CapEff`.
fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("its status");
    support::status_field(&status, field)
}

#[test]
fn the_agent_attaches_detects_and_serves_with_only_its_three_capabilities() {
    let Some(net) = Topology::privileged(&["hping3", "setpriv"]) else {
        return;
    };
    let mut agent = start_as_nobody(&net, &["bpf", "net_admin", "perfmon"]);
    agent.wait_for_log("Sensor attached", START_LIMIT);
    agent.wait_for_log("API listening", START_LIMIT);
    assert!(net.xdp_attached(&net.victim, &net.victim_if));

    // What it runs with: nobody, and exactly the three.
    let pid = agent.pid().expect("running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("its status");
    let uids = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .unwrap_or_else(|| panic!("no Uid in\n{status}"));
    assert!(
        uids.split_whitespace().all(|uid| uid == NOBODY),
        "Uid: {uids}"
    );
    let three = (1u64 << 12) | (1 << 38) | (1 << 39);
    for set in ["CapEff", "CapPrm", "CapAmb"] {
        let value = u64::from_str_radix(&status_field(pid, set), 16).expect("a hex set");
        assert_eq!(
            value, three,
            "{set} is {value:x}, not CAP_BPF+CAP_NET_ADMIN+CAP_PERFMON"
        );
    }

    // Detects: a SYN flood at ~5 000/s against a threshold of 1 000/s.
    send_syns(&net, 80, 3_000, "u200", None);
    let api = Api::new(&net.victim);
    let deadline = Instant::now() + Duration::from_secs(15);
    let floods = loop {
        let floods = api.alerts("kind=syn_flood");
        if !floods.is_empty() || Instant::now() > deadline {
            break floods;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        !floods.is_empty(),
        "no syn_flood alert served\n{}",
        agent.log()
    );
    // Serves: the stats count every SYN hping3 sent, no more.
    let deadline = Instant::now() + Duration::from_secs(5);
    let stats = loop {
        let stats = api.get("/api/stats");
        if stats["totals"]["tcp_syn"] == 3_000 || Instant::now() > deadline {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(stats["totals"]["tcp_syn"], 3_000, "{stats}");

    agent.stop_cleanly(libc::SIGTERM, STOP_LIMIT);
    assert!(
        !net.xdp_attached(&net.victim, &net.victim_if),
        "XDP left attached"
    );
}

#[test]
fn without_one_of_its_capabilities_the_agent_fails_naming_it() {
    let Some(net) = Topology::privileged(&["setpriv"]) else {
        return;
    };
    let cases: [(&[&str], &[&str]); 4] = [
        (&["bpf", "perfmon"], &["CAP_NET_ADMIN"]),
        (&["net_admin", "perfmon"], &["CAP_BPF"]),
        (&["bpf", "net_admin"], &["CAP_PERFMON"]),
        (&[], &["CAP_BPF", "CAP_NET_ADMIN", "CAP_PERFMON"]),
    ];
    for (caps, missing) in cases {
        let mut agent = start_as_nobody(&net, caps);
        let status = agent.wait_exit(START_LIMIT);
        let log = agent.log();
        assert_eq!(status.code(), Some(1), "with {caps:?}: {status}\n{log}");
        let error = log
            .lines()
            .find(|line| line.contains("missing capability"))
            .unwrap_or_else(|| panic!("with {caps:?}, no word of a missing capability:\n{log}"));
        for cap in missing {
            assert!(error.contains(cap), "with {caps:?}: {error}");
        }
        for cap in ["CAP_BPF (", "CAP_NET_ADMIN (", "CAP_PERFMON ("] {
            let named = error.contains(cap);
            let lacking = missing.iter().any(|m| cap.starts_with(m));
            assert_eq!(named, lacking, "with {caps:?}: {error}");
        }
        assert!(
            !net.xdp_attached(&net.victim, &net.victim_if),
            "with {caps:?}, XDP attached"
        );
    }
}
