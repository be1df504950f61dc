//! DNS for the tests: a responder in the victim's namespace, `dig` batches
//! from the attacker's, and names that look like a tunnel's.

use std::{
    fs,
    hash::{BuildHasher, RandomState},
    path::Path,
    time::Duration,
};

use super::{
    lab::Spawned,
    netns::{Topology, VICTIM_ADDR},
};

/// Longest the responder lives.
const SERVER_LIMIT: Duration = Duration::from_secs(120);
/// Longest one dig batch may take.
const TOOL_LIMIT: Duration = Duration::from_secs(20);

/// A DNS server for the victim's address: an A record (the victim) for A
/// queries, NXDOMAIN for anything else. Prints `ready` once bound.
pub const DNS_RESPONDER: &str = "
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('198.18.0.1', 53))
print('ready', flush=True)
while True:
    q, peer = s.recvfrom(4096)
    i = 12
    while i < len(q) and q[i] != 0:
        i += 1 + q[i]
    if len(q) < 12 or i + 5 > len(q):
        continue
    qid, = struct.unpack('!H', q[:2])
    qtype, = struct.unpack('!H', q[i + 1:i + 3])
    question = q[12:i + 5]
    if qtype == 1:
        head = struct.pack('!6H', qid, 0x8580, 1, 1, 0, 0)
        answer = struct.pack('!HHHIH', 0xc00c, 1, 1, 60, 4) + socket.inet_aton('198.18.0.1')
        s.sendto(head + question + answer, peer)
    else:
        s.sendto(struct.pack('!6H', qid, 0x8583, 1, 0, 0, 0) + question, peer)
";

/// [`DNS_RESPONDER`] in the victim's namespace, bound before this returns.
pub fn dns_responder(net: &Topology) -> Spawned {
    let mut responder =
        Spawned::start(&net.victim, SERVER_LIMIT, &["python3", "-c", DNS_RESPONDER]);
    responder.wait_for_output("ready", Duration::from_secs(10));
    responder
}

/// `dig -f` in the attacker's namespace: one query per line of `queries`
/// ("name type"), each tried once for at most 1 s, against the victim.
pub fn dig_batch(net: &Topology, dir: &Path, queries: &[String]) -> Spawned {
    let file = dir.join("queries.txt");
    fs::write(&file, queries.join("\n") + "\n").expect("writing the dig batch file");
    let file = file.to_str().expect("utf-8 temp path");
    let server = format!("@{VICTIM_ADDR}");
    Spawned::start(
        &net.attacker,
        TOOL_LIMIT,
        &[
            "dig",
            &server,
            "+tries=1",
            "+time=1",
            "+noall",
            "+comments",
            "-f",
            file,
        ],
    )
}

/// Waits for a `dig -f` run; panics unless every query was answered.
pub fn check_dig(dig: &mut Spawned, queries: usize) {
    let (status, out) = dig.wait(TOOL_LIMIT + Duration::from_secs(5));
    let answered = out.matches("status: ").count();
    assert!(
        status.success() && answered == queries,
        "dig ({status}): {answered} of {queries} queries answered:\n{out}"
    );
}

/// `count` names `<32 random hex digits>.t.exfil.example`, all different.
pub fn tunnel_names(count: usize) -> Vec<String> {
    let random = RandomState::new();
    (0..count as u64)
        .map(|i| {
            format!(
                "{:016x}{:016x}.t.exfil.example",
                random.hash_one(2 * i),
                random.hash_one(2 * i + 1)
            )
        })
        .collect()
}
