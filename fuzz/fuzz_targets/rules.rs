//! The rules parser on arbitrary UTF-8 text; when rules load, the matcher
//! built from them, run over a few samples (and the text itself as one).
//!
//! Asserts: no panic; every loaded rule has up to `MAX_CONTENTS_PER_RULE`
//! contents of 1 to `MAX_CONTENT_LEN` bytes (or `pcre`/`isdataat` steps),
//! none only when it is matched on an address list alone, a line number inside the text,
//! a unique sid; every error displays and names a line inside the text;
//! `Matcher::new` accepts whatever `parse_rules` loaded; every match names a
//! loaded sid and has an excerpt of at most `MAX_EXCERPT` printable bytes.

#![no_main]

use std::{collections::HashSet, net::SocketAddr};

use libfuzzer_sys::fuzz_target;
use nta_agent::payload::{
    Inspected, Matcher, Transport,
    excerpt::MAX_EXCERPT,
    parse_rules,
    rules::{MAX_CONTENT_LEN, MAX_CONTENTS_PER_RULE},
};

const HTTP: &[u8] = b"GET /index.php?page=../../etc/passwd&q=1%27+or+1%3D1 HTTP/1.1\r\n\
Host: Victim.Example:8080\r\nUser-Agent: cmd.exe () { :; }; /bin/bash\r\nAccept: */*\r\n\r\n";

/// `A? a.b.example.com` with id 7 and RD set.
const DNS: &[u8] = b"\x00\x07\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\
\x01a\x01b\x07example\x03com\x00\x00\x01\x00\x01";

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("address")
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let set = parse_rules(text, "fuzz.rules");
    // `lines()` of an empty last line, and a rule in progress at the end.
    let lines = text.lines().count().max(1);
    let mut sids = HashSet::new();
    for rule in &set.rules {
        assert!(sids.insert(rule.sid), "sid {} loaded twice", rule.sid);
        assert!(
            (1..=lines).contains(&rule.line),
            "line {} of {lines}",
            rule.line
        );
        assert!(rule.contents.len() <= MAX_CONTENTS_PER_RULE);
        // A rule without contents is on addresses alone: it has a list of
        // them to be looked up by.
        if rule.is_address_only() {
            assert!(rule.src.bounds().is_some() || rule.dst.bounds().is_some());
        }
        for content in &rule.contents {
            // A `pcre` or `isdataat` step has no bytes; a content has some.
            assert_eq!(content.is_bytes(), !content.bytes.is_empty());
            assert!(content.bytes.len() <= MAX_CONTENT_LEN);
        }
        // A rule of negations or `pcre` alone loads, checked on every
        // sample; one with nothing to look for loads only with an address
        // list (the assert above).
        assert!(rule.priority >= 1);
    }
    for error in &set.errors {
        assert!((1..=lines).contains(&error.line), "{error}");
        let _ = error.to_string();
    }
    if set.rules.is_empty() {
        return;
    }

    let matcher = Matcher::new(&set.rules).expect("loaded rules compile");
    let samples = [
        Inspected::parse(
            Transport::Tcp,
            addr("198.51.100.7:40000"),
            addr("192.0.2.10:80"),
            HTTP,
        ),
        Inspected::parse(
            Transport::Udp,
            addr("198.51.100.7:40000"),
            addr("192.0.2.53:53"),
            DNS,
        ),
        Inspected::parse(
            Transport::Tcp,
            addr("[2001:db8::7]:40000"),
            addr("[2001:db8::1]:8080"),
            data,
        ),
        Inspected::parse(
            Transport::Udp,
            addr("198.51.100.7:53"),
            addr("192.0.2.53:5353"),
            data,
        ),
    ];
    for pkt in &samples {
        for m in matcher.matches(pkt) {
            assert!(sids.contains(&m.sid), "{m:?}");
            assert!(m.excerpt.len() <= MAX_EXCERPT, "{m:?}");
            assert!(
                m.excerpt.bytes().all(|b| (0x20..=0x7e).contains(&b)),
                "{m:?}"
            );
        }
    }
});
