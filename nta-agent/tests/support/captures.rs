//! Captures of real attacks, made with tcpdump in the test namespaces, for
//! the tests that read them back; and legacy pcap files written by hand.

use std::{fs, os::unix::fs::PermissionsExt as _, path::Path, process::Command, time::Duration};

use super::{
    dns::{check_dig, dig_batch, dns_responder, tunnel_names},
    lab::{Spawned, cmd_exe_request, nmap_fast_scan, web_server},
    netns::{Topology, VICTIM_ADDR},
};

/// Captures on `iface` in the victim's namespace into `file` while the
/// attacker runs, one after the other: `nmap -sS`, a request with
/// `User-Agent: cmd.exe`, 200 DNS queries for names that look like a
/// tunnel's, and a second of `hping3 -S --flood` from one source port.
pub fn capture_attacks(net: &Topology, iface: &str, file: &Path, dir: &Path) {
    let _web = web_server(net);
    let _dns = dns_responder(net);
    let path = file.to_str().expect("a UTF-8 path");
    let mut tcpdump = Spawned::start(
        &net.victim,
        Duration::from_secs(60),
        &[
            "tcpdump",
            "-i",
            iface,
            "-n",
            "-U",
            "-B",
            "32768",
            "-w",
            path,
            "tcp or udp",
        ],
    );
    tcpdump.wait_for_output("listening on", Duration::from_secs(10));
    nmap_fast_scan(net, "1-200");
    cmd_exe_request(net);
    let queries: Vec<String> = tunnel_names(200)
        .into_iter()
        .map(|name| format!("{name} TXT"))
        .collect();
    check_dig(&mut dig_batch(net, dir, &queries), queries.len());
    let mut flood = Spawned::start(
        &net.attacker,
        Duration::from_secs(1),
        // One source port (-k): one flow, not a hundred thousand.
        &[
            "hping3",
            "-S",
            "-p",
            "80",
            "-s",
            "40000",
            "-k",
            "--flood",
            VICTIM_ADDR,
        ],
    );
    flood.wait(Duration::from_secs(10));
    // Stopping tcpdump (SIGINT) has it write what it has.
    let _ = Command::new("pkill")
        .args(["-INT", "-f", &format!("tcpdump -i {iface} .*{path}")])
        .status();
    tcpdump.wait(Duration::from_secs(30));
    fs::set_permissions(file, fs::Permissions::from_mode(0o644)).expect("chmod");
}

/// A legacy pcap file's header: microseconds, Ethernet.
pub fn pcap_header() -> Vec<u8> {
    let mut header = Vec::new();
    header.extend(0xa1b2_c3d4u32.to_le_bytes());
    header.extend(2u16.to_le_bytes());
    header.extend(4u16.to_le_bytes());
    header.extend([0; 8]);
    header.extend(65_535u32.to_le_bytes());
    header.extend(1u32.to_le_bytes());
    header
}

/// A pcap record of `frame` at `secs` and `micros`.
pub fn pcap_record(secs: u32, micros: u32, frame: &[u8]) -> Vec<u8> {
    let len = frame.len() as u32;
    let mut record = Vec::with_capacity(16 + frame.len());
    record.extend(secs.to_le_bytes());
    record.extend(micros.to_le_bytes());
    record.extend(len.to_le_bytes());
    record.extend(len.to_le_bytes());
    record.extend(frame);
    record
}
