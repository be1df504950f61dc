use std::{io::Write as _, net::IpAddr};

use super::*;

fn one(rule: &str) -> Rule {
    let set = parse_rules(rule, "t.rules");
    assert_eq!(set.errors, vec![], "{rule}");
    assert_eq!(set.rules.len(), 1);
    set.rules.into_iter().next().unwrap()
}

/// The single error for `rule`, as displayed.
fn error(rule: &str) -> String {
    let set = parse_rules(rule, "local.rules");
    assert!(set.rules.is_empty(), "accepted: {rule}");
    assert_eq!(set.errors.len(), 1, "{rule}");
    set.errors[0].to_string()
}

fn with_options(options: &str) -> String {
    format!("alert http any any -> any any ({options})")
}

#[test]
fn a_rule_using_every_supported_feature_parses() {
    let rule = one(
        r#"alert http [10.0.0.0/8,!10.1.0.0/16] ![22,1024:] <> 2001:db8::1 [80,8000:8100] (msg:"it \"works\"\; really"; content:"GET"; depth:3; http.uri; content:"/a|2e 2E|b"; offset:1; http.user_agent; content:"CURL"; nocase; pkt_data; content:"x\\y"; sid:7; rev:3; classtype:web-application-attack; priority:2;)"#,
    );
    assert_eq!(rule.sid, 7);
    assert_eq!(rule.rev, 3);
    assert_eq!(rule.msg, r#"it "works"; really"#);
    assert_eq!(rule.classtype.as_deref(), Some("web-application-attack"));
    assert_eq!(rule.priority, 2);
    assert_eq!(rule.protocol, Protocol::Http);
    assert_eq!(rule.direction, Direction::Both);
    assert!(rule.src.matches("10.2.3.4".parse::<IpAddr>().unwrap()));
    assert!(!rule.src.matches("10.1.3.4".parse::<IpAddr>().unwrap()));
    assert!(rule.src_ports.matches(80u16) && !rule.src_ports.matches(2000u16));
    assert!(rule.dst.matches("2001:db8::1".parse::<IpAddr>().unwrap()));
    assert!(rule.dst_ports.matches(8080u16));
    let contents: Vec<_> = rule
        .contents
        .iter()
        .map(|c| (c.buffer, c.bytes.as_slice(), c.nocase, c.offset, c.depth))
        .collect();
    assert_eq!(
        contents,
        vec![
            (Buffer::PktData, &b"GET"[..], false, 0, Some(3)),
            (Buffer::HttpUri, &b"/a..b"[..], false, 1, None),
            (Buffer::HttpUserAgent, &b"CURL"[..], true, 0, None),
            (Buffer::PktData, &b"x\\y"[..], false, 0, None),
        ]
    );
    assert_eq!((rule.origin.as_str(), rule.line), ("t.rules", 1));
}

#[test]
fn defaults_for_rev_msg_and_priority() {
    let rule = one(&with_options(r#"content:"x"; sid:9;"#));
    assert_eq!(
        (rule.rev, rule.msg.as_str(), rule.priority),
        (1, "rule 9", 3)
    );
    assert_eq!(rule.classtype, None);
    let rule = one(&with_options(
        r#"content:"x"; sid:9; classtype:attempted-recon"#,
    ));
    // The classtype's priority; the last `;` is optional.
    assert_eq!(rule.priority, 2);
}

#[test]
fn every_sticky_buffer_is_accepted_where_it_fits() {
    for buffer in [
        "http.method",
        "http.uri",
        "http.uri.raw",
        "http.header",
        "http.user_agent",
        "http.host",
    ] {
        for protocol in ["http", "tcp"] {
            let rule = one(&format!(
                r#"alert {protocol} any any -> any any ({buffer}; content:"x"; sid:1;)"#
            ));
            assert_eq!(rule.contents[0].buffer.name(), buffer);
        }
    }
    for protocol in ["dns", "udp", "tcp"] {
        one(&format!(
            r#"alert {protocol} any any -> any any (dns.query; content:"x"; sid:1;)"#
        ));
    }
}

#[test]
fn comments_blank_lines_and_multiline_rules() {
    let text = "# a comment\n\n   # indented comment\n\
alert http any any -> any any (msg:\"split\"; \\\n    http.uri; content:\"/x\"; \\\n    sid:1;)\n\
\n# alert tcp any any -> any any (content:\"disabled\"; sid:2;)\n\
alert tcp any any -> any any (content:\"y\"; sid:3;)\n";
    let set = parse_rules(text, "t.rules");
    assert_eq!(set.errors, vec![]);
    let lines: Vec<_> = set.rules.iter().map(|r| (r.sid, r.line)).collect();
    assert_eq!(lines, vec![(1, 4), (3, 9)]);
    assert_eq!(set.rules[0].msg, "split");
}

#[test]
fn an_error_in_a_multiline_rule_names_its_first_line() {
    let text = "\n\nalert http any any -> any any (msg:\"x\"; \\\n  byte_extract:4,0,size; \\\n  sid:1;)\n";
    let set = parse_rules(text, "local.rules");
    assert_eq!(
        set.errors[0].to_string(),
        "local.rules:3: unsupported option `byte_extract`"
    );
}

#[test]
fn unsupported_options_are_named() {
    for option in [
        "byte_extract:1,0,size",
        "base64_decode:bytes 4",
        "ssl_state:client_hello",
    ] {
        let name = option.split(':').next().unwrap();
        let err = error(&with_options(&format!(r#"content:"x"; {option}; sid:1;"#)));
        assert!(
            err.starts_with(&format!("local.rules:1: unsupported option `{name}`")),
            "{err}"
        );
    }
    let err = error(&with_options(r#"content:"x"; frobnicate; sid:1;"#));
    assert_eq!(err, "local.rules:1: unsupported option `frobnicate`");
}

#[test]
fn header_errors_say_which_field() {
    let cases = [
        (
            "drop tcp any any -> any any (content:\"x\"; sid:1;)",
            "unsupported action `drop`",
        ),
        (
            "alert icmp any any -> any any (content:\"x\"; sid:1;)",
            "unsupported protocol `icmp`",
        ),
        (
            "alert tcp 10.0.0.300 any -> any any (content:\"x\"; sid:1;)",
            "bad source address `10.0.0.300`",
        ),
        (
            "alert tcp $NOPE any -> any any (content:\"x\"; sid:1;)",
            "bad source address `$NOPE`: unknown variable `$NOPE`",
        ),
        (
            "alert tcp any any -> any 70000 (content:\"x\"; sid:1;)",
            "bad destination port `70000`",
        ),
        (
            "alert tcp any any <- any any (content:\"x\"; sid:1;)",
            "bad direction `<-`",
        ),
        (
            "alert tcp any any => any any (content:\"x\"; sid:1;)",
            "bad direction `=>`",
        ),
        (
            "alert tcp any any -> any (content:\"x\"; sid:1;)",
            "found 6 fields",
        ),
        (
            "alert tcp [1.2.3.4 any -> any any (content:\"x\"; sid:1;)",
            "`[` without `]`",
        ),
        (
            "alert tcp any any -> any any content:\"x\"; sid:1;",
            "missing `(`",
        ),
        (
            "alert tcp any any -> any any (content:\"x\"; sid:1;",
            "missing `)`",
        ),
    ];
    for (rule, expected) in cases {
        let err = error(rule);
        assert!(err.starts_with("local.rules:1: "), "{err}");
        assert!(
            err.contains(expected),
            "{rule}\n  gave: {err}\n  want: {expected}"
        );
    }
}

#[test]
fn option_errors_say_which_option() {
    let cases = [
        (r#"content:"x";"#, "missing `sid`"),
        (r#"msg:"no content"; sid:1;"#, "nothing to look for"),
        (
            r#"content:"abc; sid:1;"#,
            "unterminated string in `content`",
        ),
        (r#"msg:"abc; content:"x"; sid:1;"#, "unexpected `x"),
        (r#"content:x; sid:1;"#, "`content`: needs a quoted string"),
        (r#"content:""; sid:1;"#, "`content`: empty content"),
        (
            r#"content:"|4g|"; sid:1;"#,
            "`content`: `g` is not a hex digit",
        ),
        (r#"content:"|414|"; sid:1;"#, "odd number of hex digits"),
        (r#"content:"|41"; sid:1;"#, "hex segment is not closed"),
        (r#"content:"a\x"; sid:1;"#, "unknown escape `\\x`"),
        (
            r#"nocase; content:"x"; sid:1;"#,
            "`nocase` must follow a `content`",
        ),
        (
            r#"content:"x"; nocase; nocase; sid:1;"#,
            "`nocase` is given twice for the same content",
        ),
        (
            r#"content:"abcd"; depth:3; sid:1;"#,
            "`depth`: 3 is shorter than its content",
        ),
        (
            r#"content:"x"; depth:0; sid:1;"#,
            "`depth`: must be at least 1",
        ),
        (
            r#"content:"x"; offset:-1; sid:1;"#,
            "`offset`: `-1` is not a number",
        ),
        (
            r#"content:"x"; offset:var; sid:1;"#,
            "`offset`: `var` is not a number",
        ),
        (
            r#"content:"x"; nocase:1; sid:1;"#,
            "`nocase`: takes no value",
        ),
        (r#"content:"x"; sid:0;"#, "`sid`: must be at least 1"),
        (r#"content:"x"; sid:abc;"#, "`sid`: `abc` is not a number"),
        (r#"content:"x"; sid:1; sid:2;"#, "`sid` is given twice"),
        (
            r#"content:"x"; sid:1; classtype:web-app-attack;"#,
            "unknown classtype `web-app-attack`",
        ),
        (
            r#"content:"x"; sid:1; priority:0;"#,
            "`priority`: must be 1",
        ),
        (
            r#"dns.query; content:"x"; sid:1;"#,
            "`dns.query` does not apply to http rules",
        ),
        (
            r#"http.uri; sid:1;"#,
            "`http.uri` is not followed by a `content`",
        ),
        (
            r#"http.uri; http.header; content:"x"; sid:1;"#,
            "`http.uri` is not followed by a `content`",
        ),
        (
            r#"http.host; content:"Example.com"; sid:1;"#,
            "`http.host` is lower-cased",
        ),
        (r#"content:"x";; sid:1;"#, "empty option"),
        (
            r#"content:"x" sid:1;"#,
            "unexpected `sid:1;` after the quoted value of `content`",
        ),
    ];
    for (options, expected) in cases {
        let err = error(&with_options(options));
        assert!(err.starts_with("local.rules:1: "), "{err}");
        assert!(
            err.contains(expected),
            "{options}\n  gave: {err}\n  want: {expected}"
        );
    }
    let err = error(r#"alert udp any any -> any any (http.uri; content:"x"; sid:1;)"#);
    assert!(
        err.contains("`http.uri` does not apply to udp rules"),
        "{err}"
    );
}

#[test]
fn content_escapes_and_hex() {
    let rule = one(&with_options(r#"content:"a|0d 0A|b\"\;\\|00 ff|"; sid:1;"#));
    assert_eq!(rule.contents[0].bytes, b"a\r\nb\";\\\x00\xff");
    let rule = one(&with_options(
        r#"http.host; content:"EXAMPLE.com"; nocase; sid:1;"#,
    ));
    assert_eq!(rule.contents[0].bytes, b"EXAMPLE.com");
}

#[test]
fn bad_rules_do_not_stop_the_others_and_every_error_is_reported() {
    let text = r#"alert tcp any any -> any any (content:"a"; sid:1;)
alert tcp any any -> any any (content:"b"; byte_extract:4,0,size; sid:2;)
alert tcp any any -> any any (content:"c"; sid:3;)
alert tcp any any -> any any (content:"d"; sid:1;)
alert tcp $NOPE any -> any any (content:"e"; sid:5;)
alert tcp any any -> any any (content:"f";)
alert tcp any any -> any any (content:"g"; sid:7;)
"#;
    let set = parse_rules(text, "local.rules");
    let sids: Vec<_> = set.rules.iter().map(|r| r.sid).collect();
    assert_eq!(sids, vec![1, 3, 7]);
    let errors: Vec<_> = set.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(errors[0].starts_with("local.rules:2: unsupported option `byte_extract`"));
    assert_eq!(
        errors[1],
        "local.rules:4: duplicate sid 1 (first used at local.rules:1)"
    );
    assert!(errors[2].starts_with("local.rules:5: bad source address `$NOPE`"));
    assert_eq!(errors[3], "local.rules:6: missing `sid`");
}

#[test]
fn merging_rule_sets_rejects_sids_already_used() {
    let mut set = default_rules();
    let before = set.rules.len();
    set.merge(parse_rules(
        "alert tcp any any -> any any (content:\"x\"; sid:1000001;)\n\
         alert tcp any any -> any any (content:\"y\"; sid:2000000;)",
        "local.rules",
    ));
    assert_eq!(set.rules.len(), before + 1);
    assert_eq!(set.errors.len(), 1);
    let err = set.errors[0].to_string();
    assert!(
        err.starts_with("local.rules:1: duplicate sid 1000001 (first used at default.rules:"),
        "{err}"
    );
}

#[test]
fn a_runaway_continuation_is_bounded() {
    let mut text = String::from("alert tcp any any -> any any (content:\"x\"; \\\n");
    for _ in 0..(MAX_RULE_LEN / 8) {
        text.push_str("#########\\\n");
    }
    text.push_str("sid:1;)\nalert tcp any any -> any any (content:\"y\"; sid:2;)\n");
    let set = parse_rules(&text, "big.rules");
    assert_eq!(set.rules.len(), 1);
    assert_eq!(
        set.errors[0].to_string(),
        format!("big.rules:1: rule is longer than {MAX_RULE_LEN} bytes")
    );
}

#[test]
fn the_default_rules_parse_without_errors() {
    let set = default_rules();
    assert_eq!(set.errors, vec![], "{:#?}", set.errors);
    assert!(set.rules.len() >= 20);
    let ua = set.rules.iter().find(|r| r.sid == 1000001).unwrap();
    assert_eq!(ua.contents[0].buffer, Buffer::HttpUserAgent);
    assert_eq!(ua.contents[0].bytes, b"cmd.exe");
    for rule in &set.rules {
        assert!(
            rule.classtype.is_some(),
            "sid {} has no classtype",
            rule.sid
        );
        assert!(
            !rule.msg.starts_with("rule "),
            "sid {} has no msg",
            rule.sid
        );
        assert!((1_000_001..2_000_000).contains(&rule.sid));
    }
}

#[test]
fn check_reports_a_summary_and_every_error() {
    let mut file = tempfile::Builder::new()
        .suffix(".rules")
        .tempfile()
        .unwrap();
    writeln!(
        file,
        "alert http any any -> any any (http.uri; content:\"/x\"; sid:1;)\n\
         alert http any any -> any any (content:\"x\"; byte_extract:1,0,v; sid:2;)\n\
         alert dns any any -> any any (dns.query; content:\"evil\"; sid:3;)\n\
         alert http any any -> any any (content:\"x\" sid:4;)"
    )
    .unwrap();
    let vars = Vars::default();
    let (summary, errors) = check(&[file.path().to_owned()], &vars).unwrap();
    let lines: Vec<&str> = summary.lines().collect();
    assert!(
        lines[0].ends_with("2 rules loaded, 2 rejected; buffers used: http.uri, dns.query"),
        "{summary}"
    );
    // The reasons, with how many rules each rejected.
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["reason", "rules"]
    );
    let mut reasons: Vec<Vec<&str>> = lines[2..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [vec!["byte_extract", "1"], vec!["syntax", "1"]],
        "{summary}"
    );
    assert_eq!(errors.len(), 2);
    let path = file.path().display().to_string();
    assert!(
        errors[0]
            .to_string()
            .starts_with(&format!("{path}:2: unsupported option `byte_extract`"))
    );
    assert!(
        errors[1]
            .to_string()
            .starts_with(&format!("{path}:4: unexpected"))
    );

    let err = check(&[PathBuf::from("/nonexistent/local.rules")], &vars).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read rules file /nonexistent/local.rules: "),
        "{err}"
    );
}

#[test]
fn any_prefix_or_mangling_of_a_rule_is_an_error_not_a_panic() {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for line in DEFAULT_RULES.lines().filter(|l| l.starts_with("alert")) {
        let chars: Vec<(usize, char)> = line.char_indices().collect();
        for &(cut, _) in &chars {
            let _ = parse_rules(&line[..cut], "t.rules");
        }
        for _ in 0..50 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut mangled: Vec<char> = line.chars().collect();
            let at = (x as usize) % mangled.len();
            mangled[at] =
                ['\\', '"', ';', '|', ':', '(', ')', '[', '!', 'é'][(x >> 32) as usize % 10];
            let _ = parse_rules(&mangled.into_iter().collect::<String>(), "t.rules");
        }
    }
}

#[test]
fn the_old_content_modifier_forms_put_their_content_in_the_buffer() {
    let r = one(&with_options(
        r#"content:"GET"; http_method; content:"/admin"; http_uri; content:"x"; sid:1;"#,
    ));
    let buffers: Vec<Buffer> = r.contents.iter().map(|c| c.buffer).collect();
    // A modifier moves the one content before it; the next is raw again.
    assert_eq!(
        buffers,
        [Buffer::HttpMethod, Buffer::HttpUri, Buffer::PktData]
    );
    let r = one(&with_options(
        r#"uricontent:"/cgi-bin/"; content:"y"; sid:2;"#,
    ));
    assert_eq!(r.contents[0].buffer, Buffer::HttpUri);
    assert_eq!(r.contents[0].bytes, b"/cgi-bin/");
    assert_eq!(r.contents[1].buffer, Buffer::PktData);
    for (modifier, buffer) in [
        ("http_raw_uri", Buffer::HttpUriRaw),
        ("http_header", Buffer::HttpHeader),
        ("http_user_agent", Buffer::HttpUserAgent),
        ("http_host", Buffer::HttpHost),
    ] {
        let r = one(&with_options(&format!(
            r#"content:"z"; {modifier}; sid:3;"#
        )));
        assert_eq!(r.contents[0].buffer, buffer, "{modifier}");
    }
    let err = error(&with_options("http_uri; sid:1;"));
    assert!(err.contains("http_uri"), "{err}");
}

/// An Emerging Threats rule as published: variables, metadata, references,
/// `flow`, `fast_pattern`, relative contents, `endswith`, `bsize`,
/// `dotprefix`.
#[test]
fn emerging_threats_rules_parse_with_their_keywords() {
    let rule = one(
        r#"alert http $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS (msg:"ET TEST"; flow:established,to_server; http.method; content:"POST"; http.uri; content:"/gate.php"; fast_pattern; startswith; content:"id="; distance:0; within:20; content:!"safe"; http.host; bsize:<30; content:".xyz"; endswith; reference:url,example.com; classtype:trojan-activity; sid:2000001; rev:2; metadata:created_at 2024_01_01, signature_severity Major;)"#,
    );
    assert!(rule.src.matches("10.1.2.3".parse::<IpAddr>().unwrap()));
    assert!(!rule.dst.matches("10.1.2.3".parse::<IpAddr>().unwrap()));
    assert!(rule.dst.matches("203.0.113.1".parse::<IpAddr>().unwrap()));
    assert!(rule.dst_ports.matches(80u16) && !rule.dst_ports.matches(8080u16));
    assert_eq!(
        rule.flow,
        FlowCheck {
            to_server: Some(true),
            established: true,
            not_established: false,
        }
    );
    let c = &rule.contents;
    assert!(c[1].fast_pattern && c[1].startswith);
    assert_eq!((c[2].distance, c[2].within), (Some(0), Some(20)));
    assert!(c[3].negated && c[3].buffer == Buffer::HttpUri);
    assert!(c[4].endswith && c[4].buffer == Buffer::HttpHost);
    assert_eq!(
        rule.sizes,
        vec![BufferSize {
            buffer: Buffer::HttpHost,
            dotprefix: false,
            min: 0,
            max: 29
        }]
    );
    let dns = one(
        r#"alert dns $HOME_NET any -> any any (msg:"ET DNS"; dns.query; dotprefix; content:".evil.example"; nocase; endswith; sid:2;)"#,
    );
    assert!(dns.contents[0].dotprefix && dns.contents[0].endswith);
}

#[test]
fn variables_come_from_the_config_over_suricata_defaults() {
    let text = r#"alert tcp $HOME_NET any -> any $HTTP_PORTS (content:"x"; sid:1;)"#;
    let vars = Vars::with([
        ("HOME_NET".to_owned(), "198.18.0.0/15".to_owned()),
        ("HTTP_PORTS".to_owned(), "[80,8888]".to_owned()),
    ]);
    let set = parse_rules_with(text, "t.rules", &vars);
    assert_eq!(set.errors, vec![]);
    let rule = &set.rules[0];
    assert!(rule.src.matches("198.19.0.1".parse::<IpAddr>().unwrap()));
    assert!(!rule.src.matches("10.0.0.1".parse::<IpAddr>().unwrap()));
    assert!(rule.dst_ports.matches(8888u16));
}

#[test]
fn bsize_takes_suricatas_forms() {
    let sizes = |v: &str| {
        one(&with_options(&format!(
            r#"http.uri; content:"a"; bsize:{v}; sid:1;"#
        )))
        .sizes[0]
    };
    assert_eq!((sizes("5").min, sizes("5").max), (5, 5));
    assert_eq!((sizes("<5").min, sizes("<5").max), (0, 4));
    assert_eq!((sizes(">5").min, sizes(">5").max), (6, usize::MAX));
    assert_eq!((sizes("<=5").min, sizes("<=5").max), (0, 5));
    assert_eq!((sizes("2<>6").min, sizes("2<>6").max), (3, 5));
    let err = error(&with_options(r#"content:"a"; bsize:x; sid:1;"#));
    assert!(err.contains("`bsize`: `x` is not a size"), "{err}");
}

#[test]
fn contradictory_or_unmatchable_modifiers_are_refused() {
    for (options, expected) in [
        (
            r#"content:"abc"; within:2; sid:1;"#,
            "`within`: 2 is shorter",
        ),
        (
            r#"content:"a"; content:"b"; depth:4; distance:1; sid:1;"#,
            "not both",
        ),
        (
            r#"content:"a"; depth:3; startswith; sid:1;"#,
            "`startswith`: cannot",
        ),
        (
            r#"content:!"a"; fast_pattern; content:"b"; sid:1;"#,
            "negated content cannot be the fast pattern",
        ),
        (
            r#"content:"a"; fast_pattern; content:"b"; fast_pattern; sid:1;"#,
            "more than one content",
        ),
        (
            r#"content:"a"; flow:to_client; http.uri; content:"/x"; sid:1;"#,
            "`http.uri` is in HTTP requests, which never travel `to_client`",
        ),
        (
            r#"content:"a"; flow:only_stream; sid:1;"#,
            "flow:only_stream",
        ),
        (
            r#"content:"a"; dotprefix; sid:1;"#,
            "must follow a sticky buffer",
        ),
    ] {
        let err = error(&with_options(options));
        assert!(err.contains(expected), "{options}: {err}");
    }
    let both = error(
        r#"alert tcp any any -> any any (content:"a"; flow:established,not_established; sid:1;)"#,
    );
    assert!(
        both.contains("both established and not_established"),
        "{both}"
    );
    let http = error(&with_options(
        r#"content:"a"; flow:not_established; sid:1;"#,
    ));
    assert!(http.contains("flow:not_established"), "{http}");
}

/// Raw TCP and UDP rules take `flow`: the flow table tells the way and
/// the state.
#[test]
fn raw_tcp_and_udp_rules_take_flow() {
    for (text, to_server, established, not_established) in [
        ("flow:established,to_server", Some(true), true, false),
        ("flow:to_client", Some(false), false, false),
        ("flow:from_server,established", Some(false), true, false),
        ("flow:not_established", None, false, true),
        ("flow:stateless", None, false, false),
    ] {
        for proto in ["tcp", "udp"] {
            let r = one(&format!(
                r#"alert {proto} any any -> any any (content:"a"; {text}; sid:1;)"#
            ));
            let want = FlowCheck {
                to_server,
                established,
                not_established,
            };
            assert_eq!(r.flow, want, "{proto} {text}");
        }
    }
}

#[test]
fn the_request_buffers_have_their_suricata_names() {
    for buffer in [
        "http.request_line",
        "http.protocol",
        "http.start",
        "http.header_names",
        "http.cookie",
        "http.content_type",
        "http.content_len",
        "http.referer",
        "http.accept",
        "http.accept_lang",
        "http.accept_enc",
        "http.connection",
        "http.request_body",
    ] {
        let rule = one(&with_options(&format!(r#"{buffer}; content:"x"; sid:1;"#)));
        assert_eq!(rule.contents[0].buffer.name(), buffer);
    }
    for (modifier, buffer) in [
        ("http_client_body", Buffer::HttpRequestBody),
        ("http_cookie", Buffer::HttpCookie),
    ] {
        let rule = one(&with_options(&format!(
            r#"content:"x"; {modifier}; sid:1;"#
        )));
        assert_eq!(rule.contents[0].buffer, buffer);
    }
}

#[test]
fn older_sticky_names_select_their_buffers() {
    for (keyword, buffer) in [
        ("dns_query", Buffer::DnsQuery),
        ("http_request_line", Buffer::HttpRequestLine),
        ("http_header_names", Buffer::HttpHeaderNames),
    ] {
        let protocol = if buffer == Buffer::DnsQuery {
            "dns"
        } else {
            "http"
        };
        let rule = one(&format!(
            r#"alert {protocol} any any -> any any ({keyword}; content:"x"; sid:1;)"#
        ));
        assert_eq!(rule.contents[0].buffer, buffer, "{keyword}");
    }
    let tls = one(r#"alert tls any any -> any any (tls_sni; content:"x"; sid:1;)"#);
    assert_eq!(tls.contents[0].buffer, Buffer::TlsSni);
}

#[test]
fn a_rule_testing_a_flowbit_no_rule_sets_is_rejected_by_name() {
    let mut set = parse_rules(
        r#"alert http any any -> any any (content:"a"; flowbits:set,one; sid:1;)
alert http any any -> any any (content:"b"; flowbits:isset,one; flowbits:set,two; sid:2;)
alert http any any -> any any (content:"c"; flowbits:isset,nobody; flowbits:set,three; sid:3;)
alert http any any -> any any (content:"d"; flowbits:isset,three; sid:4;)
alert http any any -> any any (content:"e"; flowbits:isnotset,nobody; sid:5;)"#,
        "local.rules",
    );
    assert_eq!(set.errors, vec![]);
    reject_unset_flowbits(&mut set);
    let sids: Vec<u32> = set.rules.iter().map(|r| r.sid).collect();
    assert_eq!(sids, [1, 2, 5]);
    let errors: Vec<String> = set.errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("local.rules:3: `flowbits:isset,nobody`: no loaded rule sets"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("local.rules:4: `flowbits:isset,three`"),
        "{errors:?}"
    );
    let err = error(&with_options(r#"content:"a"; flowbits:isset,a|b; sid:1;"#));
    assert!(err.contains("one name"), "{err}");
}

/// A TLS rule looks at one side: the client's server name or the server's
/// certificates, never both.
#[test]
fn tls_rules_name_the_side_their_buffers_are_on() {
    let server = one(
        r#"alert tls any any -> any any (flow:established,to_client; tls_cert_subject; content:"CN=a"; sid:1;)"#,
    );
    assert_eq!(server.contents[0].buffer, Buffer::TlsCertSubject);
    for (options, expected) in [
        (
            r#"flow:to_server; tls.certs; content:"a"; sid:1;"#,
            "the server's certificates with to_server",
        ),
        (
            r#"flow:to_client; tls.sni; content:"a"; sid:1;"#,
            "tls.sni, the client's, with to_client",
        ),
        (
            r#"tls.sni; content:"a"; tls.cert_issuer; content:"b"; sid:1;"#,
            "tls.sni with the server's certificates",
        ),
    ] {
        let err = error(&format!("alert tls any any -> any any ({options})"));
        assert!(err.contains(expected), "{options}: {err}");
    }
    let http = error(r#"alert http any any -> any any (tls.cert_serial; content:"0A"; sid:1;)"#);
    assert!(http.contains("tls.cert_serial"), "{http}");
}

/// ET Open's reputation rules, as published: no payload keyword, an
/// address list on one side, `$HOME_NET` on the other.
#[test]
fn rules_on_addresses_alone_load_in_ets_shapes() {
    let drop = one(
        "alert ip [192.0.2.1,198.51.100.0/24] any -> $HOME_NET any (msg:\"ET DROP Spamhaus DROP Listed Traffic Inbound group 1\"; reference:url,www.spamhaus.org/drop/drop.lasso; threshold: type limit, track by_src, seconds 3600, count 1; classtype:misc-attack; flowbits:set,ET.Evil; flowbits:set,ET.DROPIP; sid:2400000; rev:3955; metadata:affected_product Any, created_at 2010_12_30;)",
    );
    assert!(drop.is_address_only());
    assert_eq!(drop.protocol, Protocol::Ip);
    assert_eq!((drop.sid, drop.rev, drop.priority), (2_400_000, 3955, 2));
    assert!(drop.threshold.is_some());
    assert!(drop.src.matches("198.51.100.9".parse::<IpAddr>().unwrap()));
    assert!(drop.dst.matches("10.1.2.3".parse::<IpAddr>().unwrap()));

    let tor = one(
        "alert tcp [203.0.113.7,203.0.113.8] any -> $HOME_NET any (msg:\"ET TOR Known Tor Exit Node Traffic group 1\"; reference:url,doc.emergingthreats.net/bin/view/Main/TorRules; threshold: type limit, track by_src, seconds 60, count 1; classtype:misc-attack; flowbits:set,ET.TorIP; sid:2520000; rev:6111;)",
    );
    assert!(tor.is_address_only());
    assert_eq!(tor.protocol, Protocol::Tcp);

    let botcc = one(
        "alert ip $HOME_NET any -> [192.0.2.66,2001:db8::66] any (msg:\"ET CNC Feodo Tracker Reported CnC Server group 1\"; threshold: type limit, track by_src, seconds 60, count 1; classtype:trojan-activity; sid:2404300; rev:1;)",
    );
    assert!(botcc.is_address_only());
    assert_eq!(botcc.dst.bounds().map(|b| b.len()), Some(2));
    assert!(one("alert icmp [192.0.2.1] any -> any any (sid:1;)").is_address_only());
    assert!(!one("alert tcp any any -> any any (content:\"x\"; sid:1;)").is_address_only());
}

#[test]
fn rules_on_addresses_alone_that_ask_for_more_say_why_not() {
    let cases = [
        (
            "alert ip any any -> any any (msg:\"all\"; sid:1;)",
            "would match every flow",
        ),
        (
            "alert tcp any any -> $EXTERNAL_NET 22 (sid:1;)",
            "would match every flow",
        ),
        (
            "alert ip [192.0.2.1] any -> any any (content:\"x\"; sid:1;)",
            "unsupported protocol `ip`",
        ),
        (
            "alert icmp [192.0.2.1] any -> any any (itype:8; sid:1;)",
            "unsupported protocol `icmp`",
        ),
        (
            "alert ip [192.0.2.1] any -> any any (dsize:>10; sid:1;)",
            "unsupported protocol `ip`",
        ),
        (
            "alert tcp [192.0.2.1] any -> any any (dsize:>10; sid:1;)",
            "nothing to look for",
        ),
        (
            "alert ip [192.0.2.1] 80 -> any any (sid:1;)",
            "`ports on ip` is not supported",
        ),
        (
            "alert tcp [192.0.2.1] any -> any any (flow:established; sid:1;)",
            "`flow` is not supported",
        ),
        (
            "alert ip [192.0.2.1] any -> any any (flowbits:isset,x; sid:1;)",
            "`flowbits other than set` is not supported",
        ),
        (
            "alert http [192.0.2.1] any -> any any (sid:1;)",
            "nothing to look for",
        ),
    ];
    for (rule, expected) in cases {
        let err = error(rule);
        assert!(
            err.contains(expected),
            "{rule}\n  gave: {err}\n  want: {expected}"
        );
    }
}

/// A bit set by a rule on addresses alone would never be seen by the
/// payload rule testing it: the setter is refused, then the tester.
#[test]
fn a_bit_set_on_addresses_alone_and_tested_refuses_both() {
    let mut set = parse_rules(
        "alert ip [192.0.2.1] any -> any any (flowbits:set,ET.Evil; sid:1;)\n\
         alert ip [192.0.2.2] any -> any any (flowbits:set,ET.Other; sid:2;)\n\
         alert http any any -> any any (http.uri; content:\"/x\"; flowbits:isset,ET.Evil; sid:3;)",
        "t.rules",
    );
    reject_unset_flowbits(&mut set);
    let sids: Vec<u32> = set.rules.iter().map(|r| r.sid).collect();
    assert_eq!(sids, [2]);
    let errors: Vec<String> = set.errors.iter().map(ToString::to_string).collect();
    assert!(
        errors[0].contains("t.rules:1:") && errors[0].contains("where sid 3 tests it"),
        "{errors:?}"
    );
    assert!(errors[1].contains("t.rules:3:"), "{errors:?}");
}

#[test]
fn the_response_buffers_have_their_suricata_names() {
    for buffer in [
        "http.stat_code",
        "http.stat_msg",
        "http.response_line",
        "http.server",
        "http.location",
        "http.response_body",
        "file.data",
    ] {
        let rule = one(&with_options(&format!(
            r#"flow:established,to_client; {buffer}; content:"x"; sid:1;"#
        )));
        assert_eq!(rule.contents[0].buffer.name(), buffer);
        assert_eq!(rule.flow.to_server, Some(false));
    }
    for (keyword, buffer) in [
        ("file_data", Buffer::FileData),
        ("http_response_line", Buffer::HttpResponseLine),
        ("http_content_type", Buffer::HttpContentType),
    ] {
        let rule = one(&with_options(&format!(
            r#"flow:from_server; {keyword}; content:"x"; sid:1;"#
        )));
        assert_eq!(rule.contents[0].buffer, buffer, "{keyword}");
    }
    for (modifier, buffer) in [
        ("http_stat_code", Buffer::HttpStatCode),
        ("http_stat_msg", Buffer::HttpStatMsg),
        ("http_server_body", Buffer::HttpResponseBody),
    ] {
        let rule = one(&with_options(&format!(
            r#"content:"x"; {modifier}; sid:1;"#
        )));
        assert_eq!(rule.contents[0].buffer, buffer, "{modifier}");
    }
    let rule = one(&with_options(r#"content:"x"; pcre:"/^20[0-9]/S"; sid:1;"#));
    assert_eq!(rule.contents[1].buffer, Buffer::HttpStatCode);
}

/// A sample holds a request or a response: a rule needing both, or a
/// buffer of the message its `flow` does not match, is refused.
#[test]
fn a_rule_on_a_request_and_its_response_is_refused() {
    for (options, expected) in [
        (
            r#"http.uri; content:"/x"; http.stat_code; content:"200"; sid:1;"#,
            "`http.uri` is in the HTTP request and `http.stat_code` in the response",
        ),
        (
            r#"content:"200"; http_stat_code; content:"ua"; http_user_agent; sid:1;"#,
            "`http.user_agent` is in the HTTP request and `http.stat_code` in the response",
        ),
        (
            r#"flow:to_server; http.server; content:"nginx"; sid:1;"#,
            "`http.server` is in HTTP responses, which never travel `to_server`",
        ),
        (
            r#"flow:established,from_server; http.method; content:"GET"; sid:1;"#,
            "`http.method` is in HTTP requests, which never travel `to_client`",
        ),
    ] {
        let err = error(&with_options(options));
        assert!(err.contains(expected), "{options}: {err}");
    }
    // Buffers both messages have go with either direction.
    for flow in ["to_server", "to_client"] {
        one(&with_options(&format!(
            r#"flow:{flow}; http.header; content:"a"; file_data; content:"b"; http.cookie; content:"c"; sid:1;"#
        )));
    }
}

/// A content modifier after `isdataat` or `pcre` is the content's, as
/// Suricata reads it; after a sticky buffer named since, it has none.
#[test]
fn a_modifier_past_a_test_applies_to_the_last_content() {
    let rule = one(&with_options(
        r#"http.host; content:"Evil.Example"; isdataat:!1,relative; nocase; sid:1;"#,
    ));
    assert!(rule.contents[0].nocase);
    let rule = one(&with_options(
        r#"content:"a"; pcre:"/b/R"; depth:5; sid:1;"#,
    ));
    assert_eq!(rule.contents[0].depth, Some(5));
    let err = error(&with_options(r#"content:"a"; http.uri; nocase; sid:1;"#));
    assert!(err.contains("`nocase` must follow a `content`"), "{err}");
}
