//! The HTTP request and response parsers on arbitrary bytes, as a sampled
//! TCP segment reaches them: `payload::http::parse_request` and
//! `parse_response` alone, then through `Inspected::parse` and the default
//! rules, as the agent runs them.
//!
//! Asserts: no panic; at most `MAX_HEADERS` headers; every field borrows the
//! input; header values are trimmed; `decode_uri` never grows the target;
//! `normalize_host` never grows the host; a complete request cut before its
//! blank line (so read by the lenient reader rather than httparse) shows the
//! same method, target, version and headers; a response's status line,
//! headers and body lie in order in the input, its code is three digits,
//! and its body's chunks never decode to more than the body; every match's
//! excerpt is printable ASCII of at most `MAX_EXCERPT` bytes.

#![no_main]

use std::{net::SocketAddr, sync::OnceLock};

use libfuzzer_sys::fuzz_target;
use nta_agent::payload::{
    Inspected, Matcher, Transport, default_rules,
    excerpt::{self, MAX_EXCERPT},
    http::{
        HttpResponse, MAX_HEADERS, dechunk, decode_uri, normalize_host, parse_request,
        parse_response,
    },
};

fn matcher() -> &'static Matcher {
    static MATCHER: OnceLock<Matcher> = OnceLock::new();
    MATCHER.get_or_init(|| Matcher::new(&default_rules().rules).expect("default rules compile"))
}

/// Whether `part` lies inside `whole` (the parser borrows, never copies).
fn within(whole: &[u8], part: &[u8]) -> bool {
    let range = whole.as_ptr_range();
    part.is_empty() || (range.start <= part.as_ptr() && part.as_ptr_range().end <= range.end)
}

/// Where the blank line that ends the headers starts (just after the last
/// header line's `\n`), skipping the empty lines a request may start with.
fn before_blank_line(data: &[u8]) -> Option<usize> {
    let start = data.iter().position(|&b| b != b'\r' && b != b'\n')?;
    (start..data.len())
        .find(|&i| {
            data[i] == b'\n'
                && (data[i + 1..].starts_with(b"\n") || data[i + 1..].starts_with(b"\r\n"))
        })
        .map(|i| i + 1)
}

fn printable(text: &str) -> bool {
    text.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// A response's fields borrow the input, in order: the status line, then
/// the headers, then the body, which together are the whole input; a
/// chunked body's data is never longer than the body.
fn check_response(data: &[u8], resp: &HttpResponse<'_>) {
    assert!(
        resp.headers.len() <= MAX_HEADERS,
        "{} headers",
        resp.headers.len()
    );
    assert!(within(data, resp.line) && within(data, resp.reason));
    assert_eq!(resp.start.len() + resp.body.len(), data.len());
    if let Some(status) = resp.status {
        assert!(status.len() == 3 && status.iter().all(u8::is_ascii_digit));
        assert!(within(resp.line, status));
    }
    for header in &resp.headers {
        assert!(!header.name.is_empty());
        assert!(within(resp.start, header.name.as_bytes()) && within(resp.start, header.value));
    }
    assert!(resp.truncated || resp.start.ends_with(b"\n"));
    assert!(dechunk(resp.body).len() <= resp.body.len());
}

fuzz_target!(|data: &[u8]| {
    if let Some(req) = parse_request(data) {
        assert!(!req.method.is_empty());
        assert!(within(data, req.method.as_bytes()));
        assert!(
            req.headers.len() <= MAX_HEADERS,
            "{} headers",
            req.headers.len()
        );
        if let Some(uri) = req.uri {
            assert!(within(data, uri));
            assert!(decode_uri(uri).len() <= uri.len());
        }
        for header in &req.headers {
            assert!(!header.name.is_empty());
            assert!(within(data, header.name.as_bytes()) && within(data, header.value));
            let ws = |b: &u8| *b == b' ' || *b == b'\t';
            assert!(!header.value.first().is_some_and(ws), "{header:?}");
            assert!(!header.value.last().is_some_and(ws), "{header:?}");
        }
        if let Some(host) = req.host() {
            assert!(normalize_host(host).len() <= host.len());
        }
        // The same request cut before its blank line goes through the
        // lenient reader instead of httparse: it must show the same fields,
        // or one path would hide from the rules what the other shows.
        if !req.truncated
            && let Some(cut) = before_blank_line(data)
            && let Some(cut_req) = parse_request(&data[..cut])
        {
            assert_eq!(
                (cut_req.method, cut_req.uri, cut_req.version),
                (req.method, req.uri, req.version)
            );
            assert_eq!(cut_req.headers, req.headers);
            assert!(cut_req.truncated);
        }
    }
    if let Some(resp) = parse_response(data) {
        check_response(data, &resp);
    }
    // The excerpt helpers on attacker bytes, at every kind of position.
    let at = data
        .first()
        .map_or(0, |&b| usize::from(b) * data.len() / 256);
    let shown = excerpt::around(data, at);
    assert!(shown.len() <= MAX_EXCERPT && printable(&shown), "{shown:?}");
    let shown = excerpt::escape(data, MAX_EXCERPT / 2);
    assert!(
        shown.len() <= MAX_EXCERPT / 2 && printable(&shown),
        "{shown:?}"
    );

    let client: SocketAddr = "198.51.100.7:40000".parse().expect("address");
    let server: SocketAddr = "192.0.2.10:80".parse().expect("address");
    let pkt = Inspected::parse(Transport::Tcp, client, server, data);
    assert!(pkt.dns.is_none(), "DNS parsed on port 80");
    for m in matcher().matches(&pkt) {
        assert!(m.excerpt.len() <= MAX_EXCERPT, "{m:?}");
        assert!(printable(&m.excerpt), "{m:?}");
    }
});
