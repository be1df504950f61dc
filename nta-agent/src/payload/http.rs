//! HTTP/1.x requests from a single sampled segment.
//!
//! The kernel samples one segment at a time and may cut it short, so a
//! request can end anywhere: in the method, the URI, a header. What is
//! complete is returned; a request whose headers continue in the next
//! segment is matched on what this one holds (later headers are not seen).
//!
//! Well-formed requests go through `httparse`. Anything it does not accept as
//! complete (a cut segment, more than [`MAX_HEADERS`] headers, bytes a strict
//! parser refuses, such as non-UTF-8 in the URI or control bytes in a value)
//! is read again line by line, leniently: an attacker must not be able to
//! hide a header from the rules by adding one odd byte that a lenient server
//! would still accept.

use std::borrow::Cow;

/// Headers kept per request. Real browsers send 10–20; more is either a
/// scanner or an attempt to make the parser work hard, and the first 64 are
/// where the interesting ones (Host, User-Agent) are.
pub const MAX_HEADERS: usize = 64;

/// Methods accepted when the request line is cut or not quite well-formed:
/// without them, any text starting with a word and a space would look like
/// HTTP. A complete, well-formed request line with another method is still
/// accepted.
const KNOWN_METHODS: &[&str] = &[
    "GET",
    "POST",
    "HEAD",
    "PUT",
    "DELETE",
    "OPTIONS",
    "PATCH",
    "CONNECT",
    "TRACE",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "SEARCH",
    "REPORT",
];

/// An HTTP/1.x request as far as one segment shows it. Borrows the segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// The request-target as sent (not decoded). When the segment ends inside
    /// it, what was sampled; `None` when it ends before the target starts.
    pub uri: Option<&'a [u8]>,
    /// Minor version (`1` for HTTP/1.1); `None` if the request line is cut
    /// or has no version.
    pub version: Option<u8>,
    /// Complete header lines in order, at most [`MAX_HEADERS`].
    pub headers: Vec<Header<'a>>,
    /// The segment ends before the blank line that closes the headers.
    pub truncated: bool,
    /// The request line, without its line end.
    pub line: &'a [u8],
    /// The request line and headers up to and including the blank line
    /// (what was sampled of them, when truncated).
    pub start: &'a [u8],
    /// The body's first bytes, as far as sampled; empty when truncated.
    pub body: &'a [u8],
}

/// One header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub name: &'a str,
    /// With surrounding spaces and tabs removed; may hold any byte.
    pub value: &'a [u8],
}

/// The value of the first of `headers` called `name` (case-insensitive).
pub fn find_header<'a>(headers: &[Header<'a>], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

impl<'a> HttpRequest<'a> {
    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        find_header(&self.headers, name)
    }

    /// The Host header as sent.
    pub fn host(&self) -> Option<&'a [u8]> {
        self.header("host")
    }

    /// The User-Agent header as sent.
    pub fn user_agent(&self) -> Option<&'a [u8]> {
        self.header("user-agent")
    }
}

/// Parses the start of `payload` as an HTTP/1.x request; `None` if it is not
/// one (or too little of one to tell).
pub fn parse_request(payload: &[u8]) -> Option<HttpRequest<'_>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    if let Ok(httparse::Status::Complete(end)) = req.parse(payload) {
        // On `Complete` httparse has set every field and shrunk `headers` to
        // the ones it parsed.
        let (Some(method), Some(uri)) = (req.method, req.path) else {
            return lenient(payload);
        };
        return Some(HttpRequest {
            method,
            uri: Some(uri.as_bytes()),
            version: req.version,
            headers: req
                .headers
                .iter()
                .map(|h| Header {
                    name: h.name,
                    value: trim(h.value),
                })
                .collect(),
            truncated: false,
            line: first_line(payload),
            start: &payload[..end],
            body: &payload[end..],
        });
    }
    lenient(payload)
}

/// An HTTP/1.x response as far as one segment shows it. Borrows the
/// segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse<'a> {
    /// Minor version (`1` for HTTP/1.1).
    pub version: u8,
    /// The three digits of the status code as sent; `None` when the
    /// segment ends before them or they are not three digits.
    pub status: Option<&'a [u8]>,
    /// The reason phrase (`Not Found`), as far as sampled; empty when
    /// there is none.
    pub reason: &'a [u8],
    /// Complete header lines in order, at most [`MAX_HEADERS`].
    pub headers: Vec<Header<'a>>,
    /// The segment ends before the blank line that closes the headers.
    pub truncated: bool,
    /// The status line, without its line end.
    pub line: &'a [u8],
    /// The status line and headers up to and including the blank line
    /// (what was sampled of them, when truncated).
    pub start: &'a [u8],
    /// The body's first bytes as sent (chunk sizes and compression
    /// included), as far as sampled; empty when truncated.
    pub body: &'a [u8],
}

impl<'a> HttpResponse<'a> {
    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        find_header(&self.headers, name)
    }
}

/// Whether a message with `headers` sends its body in chunks
/// (`Transfer-Encoding: chunked`).
pub fn is_chunked(headers: &[Header<'_>]) -> bool {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .any(|coding| trim(coding).eq_ignore_ascii_case(b"chunked"))
}

/// Parses the start of `payload` as an HTTP/1.x response; `None` unless it
/// starts with `HTTP/1.` and a digit. Servers are read leniently, line by
/// line, as for requests: a status line with an odd code still shows its
/// headers and body.
pub fn parse_response(payload: &[u8]) -> Option<HttpResponse<'_>> {
    let (&minor, _) = payload.strip_prefix(b"HTTP/1.")?.split_first()?;
    if !minor.is_ascii_digit() {
        return None;
    }
    let newline = memchr(b'\n', payload);
    let line = match newline {
        Some(i) => strip_cr(&payload[..i]),
        None => payload,
    };
    let after_version = line.get(b"HTTP/1.x".len()..).unwrap_or_default();
    let (status, reason) = status_and_reason(after_version);
    let block = match newline {
        Some(i) => header_block(payload, i + 1),
        None => HeaderBlock::cut(payload),
    };
    Some(HttpResponse {
        version: minor - b'0',
        status,
        reason,
        headers: block.headers,
        truncated: block.truncated,
        line,
        start: &payload[..block.end],
        body: &payload[block.end..],
    })
}

/// ` 404 Not Found` → (`404`, `Not Found`). The code must be three digits
/// followed by a space or the end of what was sampled of the line.
fn status_and_reason(after_version: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let rest = after_version.strip_prefix(b" ").map(trim);
    let Some(rest) = rest else {
        return (None, b"");
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits != 3 || rest.get(3).is_some_and(|&b| b != b' ' && b != b'\t') {
        return (None, b"");
    }
    (Some(&rest[..3]), trim(&rest[3..]))
}

/// The data of a chunked body's first bytes, chunk sizes and extensions
/// left out, as far as `body` holds it (the last chunk may be cut short).
/// Bytes that do not follow the chunked framing end it: what was decoded
/// until then is returned.
pub fn dechunk(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some(i) = memchr(b'\n', rest) {
        let size_line = strip_cr(&rest[..i]);
        let digits = size_line
            .iter()
            .position(|b| !b.is_ascii_hexdigit())
            .unwrap_or(size_line.len());
        let Some(size) = chunk_size(&size_line[..digits]) else {
            break;
        };
        if size == 0 {
            break;
        }
        let data = &rest[i + 1..];
        let take = size.min(data.len());
        out.extend_from_slice(&data[..take]);
        // The chunk's data is followed by its own line end.
        let after = &data[take..];
        rest = after
            .strip_prefix(b"\r\n")
            .or_else(|| after.strip_prefix(b"\n"))
            .unwrap_or(after);
        if take < size {
            break;
        }
    }
    out
}

/// A chunk size in hex; `None` if absent or too large to be real.
fn chunk_size(hex_digits: &[u8]) -> Option<usize> {
    if hex_digits.is_empty() || hex_digits.len() > 8 {
        return None;
    }
    hex_digits
        .iter()
        .try_fold(0usize, |n, &b| Some(n << 4 | usize::from(hex(b)?)))
}

/// The first non-empty line of `payload`, without its line end.
fn first_line(payload: &[u8]) -> &[u8] {
    let start = payload
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(payload.len());
    let rest = &payload[start..];
    strip_cr(memchr(b'\n', rest).map_or(rest, |i| &rest[..i]))
}

/// Line-by-line reading of what is complete in `payload`.
fn lenient(payload: &[u8]) -> Option<HttpRequest<'_>> {
    // httparse skips empty lines before the request line; so do we.
    let start = payload
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(payload.len());
    let rest = &payload[start..];
    let newline = memchr(b'\n', rest);
    let line_complete = newline.is_some();
    let line = match newline {
        Some(i) => strip_cr(&rest[..i]),
        None => rest,
    };

    let sp = line.iter().position(|&b| b == b' ')?;
    let method = std::str::from_utf8(&line[..sp]).ok()?;
    if method.is_empty() || !method.bytes().all(is_token) {
        return None;
    }
    let known = KNOWN_METHODS.contains(&method);
    let target = trim(&line[sp..]);

    let (uri, version) = if line_complete {
        // The version is the last word; the target is everything between
        // (spaces included, as some servers accept them).
        match target.iter().rposition(|&b| b == b' ') {
            Some(i) if target[i + 1..].starts_with(b"HTTP/") => {
                (Some(trim(&target[..i])), parse_version(&target[i + 1..]))
            }
            // HTTP/0.9-style `GET /path`: only for methods we know.
            _ if known => (Some(target), None),
            _ => return None,
        }
    } else {
        if !known {
            return None;
        }
        // Cut inside the request line: the target is the next word, or as
        // much of it as was sampled.
        let end = target
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or(target.len());
        let version = target
            .get(end + 1..)
            .filter(|v| v.len() == 8)
            .and_then(parse_version);
        (Some(&target[..end]), version)
    };
    if !known && version.is_none() {
        return None;
    }
    let uri = uri.filter(|u| !u.is_empty());

    let block = match newline {
        Some(newline) => header_block(payload, start + newline + 1),
        None => HeaderBlock::cut(payload),
    };
    Some(HttpRequest {
        method,
        uri,
        version,
        headers: block.headers,
        truncated: block.truncated,
        line,
        start: &payload[..block.end],
        body: &payload[block.end..],
    })
}

/// The header lines after the first line, as far as `payload` holds them.
struct HeaderBlock<'a> {
    /// At most [`MAX_HEADERS`].
    headers: Vec<Header<'a>>,
    /// No blank line closes them in `payload`.
    truncated: bool,
    /// Where the body starts: just past the blank line, else the end.
    end: usize,
}

impl HeaderBlock<'_> {
    /// No header: the first line itself is cut.
    fn cut(payload: &[u8]) -> HeaderBlock<'_> {
        HeaderBlock {
            headers: Vec::new(),
            truncated: true,
            end: payload.len(),
        }
    }
}

/// Reads header lines from `pos`, up to the blank line. Lines past
/// [`MAX_HEADERS`] and lines that are no header are skipped, not refused:
/// the ones before them still count.
fn header_block(payload: &[u8], mut pos: usize) -> HeaderBlock<'_> {
    let mut block = HeaderBlock::cut(payload);
    while let Some(i) = payload.get(pos..).and_then(|rest| memchr(b'\n', rest)) {
        let line = strip_cr(&payload[pos..pos + i]);
        pos += i + 1;
        if line.is_empty() {
            block.truncated = false;
            block.end = pos;
            break;
        }
        if block.headers.len() < MAX_HEADERS
            && let Some(header) = header_line(line)
        {
            block.headers.push(header);
        }
    }
    block
}

/// `Name: value`, leniently: no continuation lines (obsolete line folding),
/// spaces allowed before the colon.
fn header_line(line: &[u8]) -> Option<Header<'_>> {
    if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return None;
    }
    let colon = line.iter().position(|&b| b == b':')?;
    let name = std::str::from_utf8(trim(&line[..colon])).ok()?;
    if name.is_empty() || !name.bytes().all(is_token) {
        return None;
    }
    Some(Header {
        name,
        value: trim(&line[colon + 1..]),
    })
}

/// `HTTP/1.x` → `x`.
fn parse_version(v: &[u8]) -> Option<u8> {
    match v {
        [
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            b'1',
            b'.',
            minor @ b'0'..=b'9',
        ] => Some(minor - b'0'),
        _ => None,
    }
}

/// RFC 9110 `tchar`.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim(v: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !is_ws(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !is_ws(b)).map_or(start, |i| i + 1);
    &v[start..end]
}

/// The request-target with `%XX` escapes decoded, and `+` as a space in the
/// query, as servers see it: rules then match `' or 1=1` however it was
/// encoded (once; a double-encoded `%2527` decodes to `%27`). No path
/// normalisation: `../` stays visible. Never longer than `raw`.
pub fn decode_uri(raw: &[u8]) -> Cow<'_, [u8]> {
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut in_query = false;
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        match b {
            b'%' if i + 2 < raw.len() => match (hex(raw[i + 1]), hex(raw[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b),
            },
            b'?' => {
                in_query = true;
                out.push(b);
            }
            b'+' if in_query => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The Host header as Suricata's `http.host` sees it: lower-cased, without
/// the port or a trailing dot.
pub fn normalize_host(host: &[u8]) -> Vec<u8> {
    let host = trim(host);
    let name = if host.first() == Some(&b'[') {
        // IPv6 literal: keep the brackets, drop what follows them.
        match host.iter().position(|&b| b == b']') {
            Some(i) => &host[..=i],
            None => host,
        }
    } else {
        match host.iter().rposition(|&b| b == b':') {
            Some(i) if host[i + 1..].iter().all(u8::is_ascii_digit) => &host[..i],
            _ => host,
        }
    };
    let name = name.strip_suffix(b".").unwrap_or(name);
    name.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURL: &[u8] = b"GET /index.html?q=1 HTTP/1.1\r\nHost: victim.example:8080\r\n\
User-Agent: cmd.exe\r\nAccept: */*\r\n\r\n";

    #[test]
    fn a_complete_request_gives_every_field() {
        let req = parse_request(CURL).unwrap();
        assert_eq!(req.method, "GET");
        assert_eq!(req.uri, Some(&b"/index.html?q=1"[..]));
        assert_eq!(req.version, Some(1));
        assert_eq!(req.headers.len(), 3);
        assert_eq!(req.host(), Some(&b"victim.example:8080"[..]));
        assert_eq!(req.user_agent(), Some(&b"cmd.exe"[..]));
        assert_eq!(req.header("ACCEPT"), Some(&b"*/*"[..]));
        assert!(!req.truncated);
    }

    #[test]
    fn every_prefix_of_a_request_parses_without_panic_and_keeps_complete_fields() {
        let full = parse_request(CURL).unwrap();
        for cut in 0..=CURL.len() {
            let prefix = &CURL[..cut];
            let Some(req) = parse_request(prefix) else {
                // Only a prefix too short to show the method may be rejected.
                assert!(cut <= 4, "prefix of {cut} bytes not recognised: {prefix:?}");
                continue;
            };
            assert_eq!(req.method, "GET");
            let line_end = CURL.iter().position(|&b| b == b'\n').unwrap() + 1;
            if cut >= line_end {
                assert_eq!(req.uri, full.uri, "cut at {cut}");
                assert_eq!(req.version, full.version, "cut at {cut}");
            } else if let Some(uri) = req.uri {
                // A cut target is a prefix of the real one.
                assert!(full.uri.unwrap().starts_with(uri), "cut at {cut}");
            }
            // Every header whose line is complete in the prefix is there.
            let mut line_start = line_end;
            for header in &full.headers {
                let len = CURL[line_start..].iter().position(|&b| b == b'\n').unwrap() + 1;
                if cut >= line_start + len {
                    assert_eq!(req.header(header.name), Some(header.value), "cut at {cut}");
                } else {
                    assert_eq!(req.header(header.name), None, "cut at {cut}");
                }
                line_start += len;
            }
            assert_eq!(req.truncated, cut < CURL.len(), "cut at {cut}");
        }
    }

    #[test]
    fn a_target_cut_by_the_sample_is_kept_for_matching() {
        let req = parse_request(b"GET /cgi-bin/../../etc/pas").unwrap();
        assert_eq!(req.uri, Some(&b"/cgi-bin/../../etc/pas"[..]));
        assert_eq!(req.version, None);
        assert!(req.truncated);
    }

    #[test]
    fn odd_bytes_do_not_hide_headers() {
        // httparse refuses non-UTF-8 in the target and NUL in a value.
        let req =
            parse_request(b"GET /\xff\xfe HTTP/1.1\r\nUser-Agent: cmd.exe\x00x\r\n\r\n").unwrap();
        assert_eq!(req.uri, Some(&b"/\xff\xfe"[..]));
        assert_eq!(req.user_agent(), Some(&b"cmd.exe\x00x"[..]));
        assert!(!req.truncated);

        let req = parse_request(b"GET /a b HTTP/1.0\nHost : x\n\n").unwrap();
        assert_eq!(req.uri, Some(&b"/a b"[..]));
        assert_eq!(req.version, Some(0));
        assert_eq!(req.host(), Some(&b"x"[..]));
    }

    #[test]
    fn more_than_64_headers_keeps_the_first_64() {
        let mut raw = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..200 {
            raw.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        let req = parse_request(&raw).unwrap();
        assert_eq!(req.headers.len(), MAX_HEADERS);
        assert_eq!(req.header("X-63"), Some(&b"63"[..]));
        assert_eq!(req.header("X-64"), None);
        assert!(!req.truncated);
    }

    #[test]
    fn non_http_payloads_are_not_requests() {
        for payload in [
            &b""[..],
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"SSH-2.0-OpenSSH_9.6\r\n",
            b"HELO mail.example\r\n",
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"EHLO",
            b"\x00\x01 \x02\x03\n",
            b"\r\n\r\n",
        ] {
            assert_eq!(parse_request(payload), None, "{payload:?}");
        }
    }

    #[test]
    fn random_binary_never_panics() {
        let mut next = crate::payload::xorshift(0x1234_5678);
        for len in 0..2000 {
            // Bias towards bytes that matter to the parser.
            let bytes: Vec<u8> = (0..len % 300)
                .map(|_| b"GET / HTTP/1.1\r\n:\x00\xff"[(next() % 19) as usize])
                .collect();
            let _ = parse_request(&bytes);
            let _ = decode_uri(&bytes);
            let _ = normalize_host(&bytes);
        }
    }

    const NGINX_404: &[u8] = b"HTTP/1.1 404 Not Found\r\nServer: nginx/1.24.0\r\n\
Content-Type: text/html\r\nLocation: /login\r\n\r\n<html>gone</html>";

    #[test]
    fn a_complete_response_gives_status_headers_and_body() {
        let resp = parse_response(NGINX_404).unwrap();
        assert_eq!(resp.version, 1);
        assert_eq!(resp.status, Some(&b"404"[..]));
        assert_eq!(resp.reason, b"Not Found");
        assert_eq!(resp.line, b"HTTP/1.1 404 Not Found");
        assert_eq!(resp.header("server"), Some(&b"nginx/1.24.0"[..]));
        assert_eq!(resp.header("Location"), Some(&b"/login"[..]));
        assert_eq!(resp.body, b"<html>gone</html>");
        assert!(resp.start.ends_with(b"/login\r\n\r\n"));
        assert!(!resp.truncated);
    }

    #[test]
    fn every_prefix_of_a_response_parses_without_panic_and_keeps_complete_fields() {
        let line_end = NGINX_404.iter().position(|&b| b == b'\n').unwrap() + 1;
        for cut in 0..=NGINX_404.len() {
            let prefix = &NGINX_404[..cut];
            let Some(resp) = parse_response(prefix) else {
                assert!(cut < 8, "prefix of {cut} bytes not recognised: {prefix:?}");
                continue;
            };
            assert_eq!(resp.version, 1);
            // The code counts once its three digits were sampled.
            assert_eq!(resp.status.is_some(), cut >= 12, "cut at {cut}");
            if cut >= line_end {
                assert_eq!(resp.reason, b"Not Found", "cut at {cut}");
            }
            let server_complete = cut >= line_end + b"Server: nginx/1.24.0\r\n".len();
            assert_eq!(
                resp.header("server").is_some(),
                server_complete,
                "cut at {cut}"
            );
            let body_start = NGINX_404.len() - b"<html>gone</html>".len();
            assert_eq!(resp.truncated, cut < body_start, "cut at {cut}");
            assert_eq!(
                resp.body,
                &NGINX_404[body_start.min(cut)..cut],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_status_line_that_is_no_response_is_refused_and_odd_codes_are_kept_out() {
        for payload in [
            &b""[..],
            b"HTTP/2 200\r\n\r\n",
            b"HTTP/1.x 200 OK\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"SSH-2.0-OpenSSH_9.6\r\n",
        ] {
            assert_eq!(parse_response(payload), None, "{payload:?}");
        }
        for (payload, status) in [
            (&b"HTTP/1.0 2000 OK\r\n\r\n"[..], None),
            (b"HTTP/1.0 abc\r\n\r\n", None),
            (b"HTTP/1.0\r\n\r\n", None),
            (b"HTTP/1.0 204\r\n\r\n", Some(&b"204"[..])),
            (b"HTTP/1.1   302\tMoved\n\n", Some(b"302")),
        ] {
            let resp = parse_response(payload).unwrap();
            assert_eq!(resp.status, status, "{payload:?}");
            assert!(!resp.truncated, "{payload:?}");
        }
    }

    #[test]
    fn chunked_bodies_are_read_without_their_framing_as_far_as_sampled() {
        assert_eq!(
            dechunk(b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"),
            b"hello world"
        );
        assert_eq!(dechunk(b"5\nhello\n3\nabc"), b"helloabc");
        // Cut inside a chunk: its first bytes.
        assert_eq!(dechunk(b"a\r\n0123"), b"0123");
        // Not chunked framing: nothing after what decoded.
        assert_eq!(dechunk(b"5\r\nhello\r\nzz\r\nmore"), b"hello");
        assert_eq!(dechunk(b"fffffffff\r\nx"), b"");
        let resp =
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n").unwrap();
        assert!(is_chunked(&resp.headers));
        assert!(!is_chunked(&parse_response(NGINX_404).unwrap().headers));
    }

    #[test]
    fn random_binary_never_panics_the_response_parser() {
        let mut next = crate::payload::xorshift(0x8765_4321);
        for len in 0..2000 {
            let mut bytes = b"HTTP/1.1 ".to_vec();
            bytes
                .extend((0..len % 300).map(|_| b"200 OK\r\n:\x00\xff\t5a"[(next() % 14) as usize]));
            if let Some(resp) = parse_response(&bytes) {
                assert!(resp.headers.len() <= MAX_HEADERS);
                assert!(resp.start.len() + resp.body.len() == bytes.len());
                let _ = dechunk(resp.body);
            }
            let _ = dechunk(&bytes[9..]);
        }
    }

    #[test]
    fn uris_are_percent_decoded_with_plus_as_space_in_the_query() {
        assert_eq!(
            &*decode_uri(b"/a+b/x.php?id=1%27+or+1%3D1--"),
            b"/a+b/x.php?id=1' or 1=1--"
        );
        assert_eq!(&*decode_uri(b"/%2e%2e%2fetc%2Fpasswd"), b"/../etc/passwd");
        assert_eq!(&*decode_uri(b"/%2527"), b"/%27");
        assert_eq!(&*decode_uri(b"/bad%zz%4"), b"/bad%zz%4");
        assert_eq!(&*decode_uri(b"%"), b"%");
        assert!(matches!(decode_uri(b"/plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn hosts_are_lower_cased_without_port() {
        assert_eq!(normalize_host(b"Victim.Example:8080"), b"victim.example");
        assert_eq!(normalize_host(b"[::1]:80"), b"[::1]");
        assert_eq!(normalize_host(b"example.com."), b"example.com");
    }
}
