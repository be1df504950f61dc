//! The XDP program's payload sampling, run on crafted frames with
//! BPF_PROG_TEST_RUN: what is sampled, what the sample holds, and what is
//! counted when the cap or the ring says no.

use std::net::IpAddr;

use nta_common::{
    Counter, IpKey,
    maps::{SAMPLE_BYTES, Sampling, Thresholds, feature, sample_port},
};

use crate::support::{
    self,
    frames::{self, DST_V4, DST_V6, SRC_V4, SRC_V6, Tcp, tcp_flags},
    xdp::{Xdp, pin_to_cpu, pin_to_one_cpu},
};

const HTTP_GET: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: victim\r\nUser-Agent: cmd.exe\r\n\r\n";

/// Loads the program with windows off and `sampling` on `ports`.
fn load(sampling: Sampling, ports: &[(u16, u8)]) -> Xdp {
    let mut xdp = Xdp::load_with(feature::ALL, Some(&Thresholds::DISABLED));
    xdp.sensor.set_sampling(&sampling, ports).expect("SAMPLING");
    xdp
}

fn web() -> Vec<(u16, u8)> {
    vec![
        (80, sample_port::TCP),
        (53, sample_port::TCP | sample_port::UDP),
    ]
}

fn on(max_per_sec: u32) -> Sampling {
    Sampling {
        enabled: 1,
        max_per_sec,
        one_in: 0,
        flow_payloads: 0,
    }
}

fn http_to_80() -> Vec<u8> {
    let tcp = Tcp::new(40_000, 80, tcp_flags::PSH | tcp_flags::ACK).payload(HTTP_GET);
    frames::tcp_v4(SRC_V4, DST_V4, &tcp)
}

#[test]
fn an_http_request_to_a_watched_port_is_sampled_whole() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load(on(1000), &web());
    xdp.pass(&http_to_80());
    let got = xdp.samples();
    assert_eq!(got.len(), 1, "{got:?}");
    let s = &got[0];
    assert_eq!(s.data, HTTP_GET);
    assert_eq!(IpAddr::from(s.header.src), IpAddr::V4(SRC_V4));
    assert_eq!(IpAddr::from(s.header.dst), IpAddr::V4(DST_V4));
    assert_eq!((s.header.src_port, s.header.dst_port), (40_000, 80));
    assert_eq!(
        (s.header.proto, s.header.tcp_flags),
        (6, tcp_flags::PSH | tcp_flags::ACK)
    );
    assert_eq!(s.header.payload_len as usize, HTTP_GET.len());
    assert_eq!(xdp.counter(Counter::SamplesTaken), 1);
}

#[test]
fn replies_from_a_watched_port_and_ipv6_dns_are_sampled() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load(on(1000), &web());
    let reply = Tcp::new(80, 40_000, tcp_flags::ACK).payload(b"HTTP/1.1 200 OK\r\n\r\n");
    xdp.pass(&frames::tcp_v4(DST_V4, SRC_V4, &reply));
    let query = frames::dns_query();
    xdp.pass(&frames::udp_v6(SRC_V6, DST_V6, 5353, 53, &query));
    let got = xdp.samples();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].data, b"HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(got[1].data, query);
    assert_eq!(got[1].header.proto, 17);
    assert_eq!(got[1].header.src, IpKey::from(IpAddr::V6(SRC_V6)));
}

#[test]
fn unwatched_ports_empty_segments_and_udp_on_tcp_only_ports_are_not_sampled() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load(on(1000), &web());
    let other = Tcp::new(40_000, 443, tcp_flags::PSH | tcp_flags::ACK).payload(HTTP_GET);
    xdp.pass(&frames::tcp_v4(SRC_V4, DST_V4, &other));
    xdp.pass(&frames::tcp_v4(SRC_V4, DST_V4, &Tcp::ack(40_000, 80)));
    xdp.pass(&frames::syn_v4(SRC_V4, DST_V4, 40_000, 80));
    xdp.pass(&frames::udp_v4(SRC_V4, DST_V4, 40_000, 80, b"not tcp"));
    assert_eq!(xdp.samples(), []);
    assert_eq!(xdp.counter(Counter::SamplesTaken), 0);
}

#[test]
fn the_first_payloads_of_each_flow_direction_are_sampled_on_any_port() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load(
        Sampling {
            flow_payloads: 2,
            ..on(1000)
        },
        &web(),
    );
    let request = |sport| {
        let tcp = Tcp::new(sport, 8888, tcp_flags::PSH | tcp_flags::ACK).payload(HTTP_GET);
        frames::tcp_v4(SRC_V4, DST_V4, &tcp)
    };
    let reply =
        Tcp::new(8888, 40_000, tcp_flags::PSH | tcp_flags::ACK).payload(b"HTTP/1.1 200 OK\r\n");
    let reply = frames::tcp_v4(DST_V4, SRC_V4, &reply);
    // An empty segment is no payload: it does not use up the first two.
    xdp.pass(&frames::tcp_v4(SRC_V4, DST_V4, &Tcp::ack(40_000, 8888)));
    for _ in 0..3 {
        xdp.pass(&request(40_000));
        xdp.pass(&reply);
    }
    let samples = xdp.samples();
    let to_server = samples.iter().filter(|s| s.header.dst_port == 8888).count();
    let to_client = samples.iter().filter(|s| s.header.src_port == 8888).count();
    assert_eq!((to_server, to_client), (2, 2), "{samples:?}");
    // Another flow has its own first two.
    xdp.pass_repeat(&request(40_001), 3);
    assert_eq!(xdp.samples().len(), 2);
    assert_eq!(xdp.counter(Counter::SamplesTaken), 6);
}

/// The `sample_flow` bits of each sample, in order.
fn standings(xdp: &mut Xdp) -> Vec<u8> {
    xdp.samples().iter().map(|s| s.header.flow).collect()
}

#[test]
fn samples_say_which_way_they_went_and_whether_the_flow_was_seen_from_its_start() {
    use nta_common::maps::sample_flow::{ESTABLISHED, TO_CLIENT, TO_SERVER};
    if !support::privileged() {
        return;
    }
    let two_cpus = std::thread::available_parallelism().map_or(1, usize::from) >= 2;
    assert!(two_cpus || !support::in_ci(), "two CPUs needed");
    let mut xdp = load(on(1000), &[(445, sample_port::TCP | sample_port::UDP)]);
    let client = |tcp: Tcp| frames::tcp_v4(SRC_V4, DST_V4, &tcp);
    let server = |tcp: Tcp| frames::tcp_v4(DST_V4, SRC_V4, &tcp);
    let data = tcp_flags::PSH | tcp_flags::ACK;
    // The server's packets on another CPU, whose slot starts with the
    // SYN-ACK: it still names the client as the opener.
    pin_to_one_cpu();
    xdp.pass(&frames::syn_v4(SRC_V4, DST_V4, 40_000, 445));
    pin_to_cpu(if two_cpus { 1 } else { 0 });
    xdp.pass(&server(Tcp::new(
        445,
        40_000,
        tcp_flags::SYN | tcp_flags::ACK,
    )));
    xdp.pass(&server(Tcp::new(445, 40_000, data).payload(b"banner")));
    pin_to_one_cpu();
    xdp.pass(&client(Tcp::new(40_000, 445, data).payload(b"request")));
    assert_eq!(
        standings(&mut xdp),
        [TO_CLIENT | ESTABLISHED, TO_SERVER | ESTABLISHED]
    );
    // Data with no handshake seen: a mid-stream pickup, not established.
    xdp.pass(&client(Tcp::new(40_001, 445, data).payload(b"midstream")));
    assert_eq!(standings(&mut xdp), [TO_SERVER]);
    // UDP: established once the other end has answered, even when the
    // answer came in on another CPU than the query.
    xdp.pass(&frames::udp_v4(SRC_V4, DST_V4, 5000, 445, b"query"));
    pin_to_cpu(if two_cpus { 1 } else { 0 });
    xdp.pass(&frames::udp_v4(DST_V4, SRC_V4, 445, 5000, b"answer"));
    pin_to_one_cpu();
    xdp.pass(&frames::udp_v4(SRC_V4, DST_V4, 5000, 445, b"again"));
    assert_eq!(
        standings(&mut xdp),
        [TO_SERVER, TO_CLIENT | ESTABLISHED, TO_SERVER | ESTABLISHED]
    );
    // Without the flow table, nothing is known.
    let mut plain = Xdp::load_with(feature::ALL & !feature::FLOWS, Some(&Thresholds::DISABLED));
    plain
        .sensor
        .set_sampling(&on(1000), &[(445, sample_port::TCP)])
        .expect("SAMPLING");
    plain.pass(&client(Tcp::new(40_000, 445, data).payload(b"request")));
    assert_eq!(standings(&mut plain), [0]);
}

#[test]
fn nothing_is_sampled_until_the_agent_turns_it_on() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load(Sampling::default(), &web());
    xdp.pass(&http_to_80());
    assert_eq!(xdp.samples(), []);
}

#[test]
fn one_in_n_samples_other_traffic() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load(
        Sampling {
            one_in: 1,
            ..on(100_000)
        },
        &[],
    );
    let other = Tcp::new(40_000, 443, tcp_flags::PSH | tcp_flags::ACK).payload(b"tls?");
    xdp.pass_repeat(&frames::tcp_v4(SRC_V4, DST_V4, &other), 10);
    assert_eq!(xdp.samples().len(), 10, "1 in 1 is every packet");
}

#[test]
fn long_payloads_are_cut_at_the_sample_size() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load(on(1000), &web());
    let body: Vec<u8> = (0..1200u32).map(|i| (i % 251) as u8).collect();
    let tcp = Tcp::new(40_000, 80, tcp_flags::PSH | tcp_flags::ACK).payload(&body);
    xdp.pass(&frames::tcp_v4(SRC_V4, DST_V4, &tcp));
    let got = xdp.samples();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, body[..SAMPLE_BYTES]);
    assert_eq!(got[0].header.payload_len, 1200);
}

#[test]
fn the_rate_cap_counts_what_it_skips() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load(on(5), &web());
    xdp.pass_repeat(&http_to_80(), 20);
    assert_eq!(xdp.samples().len(), 5);
    assert_eq!(xdp.counter(Counter::SamplesTaken), 5);
    assert_eq!(xdp.counter(Counter::SamplesCapped), 15);
}

#[test]
fn a_full_ring_counts_lost_samples_and_never_blocks() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load(on(u32::MAX), &web());
    const RUNS: u32 = 10_000;
    xdp.pass_repeat(&http_to_80(), RUNS);
    let taken = xdp.samples().len() as u64;
    let lost = xdp.counter(Counter::SamplesLost);
    assert!(lost > 0, "a 2 MiB ring cannot hold 10 000 samples");
    assert_eq!(taken + lost, u64::from(RUNS));
    assert_eq!(xdp.counter(Counter::SamplesTaken), taken);
}
