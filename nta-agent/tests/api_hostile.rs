//! The API server against malformed and hostile requests, over raw TCP: the
//! real listener (`api::bind` + `api::serve`, as `run` starts them) on
//! 127.0.0.1:0 with a temporary store, no root needed.
//!
//! Each case asserts the answer is a 4xx (or, for bytes that are not HTTP
//! at all, that the connection is closed; a well-formed request gets its
//! 200), never a 5xx, and never a hang: every read and write has a timeout
//! and each exchange a deadline. After each case, `GET /healthz` and
//! `GET /api/alerts` on new connections still answer 200, and no server
//! thread has panicked.

mod support;

use std::{
    io::{self, Read, Write},
    net::{Shutdown, SocketAddr, TcpStream},
    sync::{
        Arc, Once,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use nta_agent::{
    api::{self, auth::Auth},
    store::Store,
};

use support::memory_api;

/// The token that changes to the blocklist need.
const ADMIN: &str = "hostile-admin-token-0123456789abcdef";

/// Longest any single read or write may block.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest one exchange (write the request, read the whole answer) may take.
const EXCHANGE_LIMIT: Duration = Duration::from_secs(10);

/// Name prefix of the server's threads, so that the panic hook can tell a
/// server panic from a failing assertion in a test.
const SERVER_THREADS: &str = "api-hostile-server";

/// Panics seen on server threads, across every test of this file.
static SERVER_PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_server_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if thread::current()
                .name()
                .is_some_and(|n| n.starts_with(SERVER_THREADS))
            {
                SERVER_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            default(info);
        }));
    });
}

/// The API server on its own runtime and thread; stopped on drop.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    stopped: mpsc::Receiver<()>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        count_server_panics();
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Arc::new(Store::open(&dir.path().join("nta.redb")).expect("store"));
        let state = memory_api::state(store, Auth::open().with_admin(ADMIN.into(), None));

        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (bound, addr_rx) = mpsc::channel();
        let (done, stopped) = mpsc::channel();
        thread::Builder::new()
            .name(SERVER_THREADS.into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name(SERVER_THREADS)
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                runtime.block_on(async move {
                    let listener = api::bind("127.0.0.1:0".parse().expect("address"))
                        .await
                        .expect("bind");
                    bound
                        .send(listener.local_addr().expect("bound address"))
                        .expect("test waits for the address");
                    api::serve(listener, state, async {
                        let _ = stop_rx.await;
                    })
                    .await;
                });
                // Connections still open (a slow client) end with the runtime.
                runtime.shutdown_timeout(Duration::from_secs(1));
                let _ = done.send(());
            })
            .expect("server thread");
        let addr = addr_rx
            .recv_timeout(IO_TIMEOUT)
            .expect("server bound in time");
        Server {
            addr,
            stop: Some(stop),
            stopped,
            _dir: dir,
        }
    }

    /// `GET /healthz` and `GET /api/alerts`, each on a new connection,
    /// answer 200, and no server thread has panicked so far.
    fn assert_still_serving(&self, after: &str) {
        for path in ["/healthz", "/api/alerts"] {
            let request = format!("GET {path} HTTP/1.1\r\nHost: nta\r\nConnection: close\r\n\r\n");
            let answers = exchange(self.addr, request.as_bytes());
            assert_eq!(
                statuses(&answers),
                [200],
                "after {after}: GET {path} on a new connection"
            );
        }
        assert_eq!(
            SERVER_PANICS.load(Ordering::SeqCst),
            0,
            "after {after}: a server thread panicked (see stderr)"
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Bounded: a test that fails must not hang on a server that does not stop.
        let _ = self.stopped.recv_timeout(Duration::from_secs(10));
    }
}

/// What came back on a connection.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    /// A response: status and body.
    Response(u16, String),
    /// The server closed the connection without (another) response.
    Closed,
}

fn statuses(answers: &[Answer]) -> Vec<u16> {
    answers
        .iter()
        .filter_map(|a| match a {
            Answer::Response(status, _) => Some(*status),
            Answer::Closed => None,
        })
        .collect()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream
}

/// Sends `request` on a new connection and reads every response until the
/// server closes it (or, for keep-alive, until no more bytes come).
fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<Answer> {
    let mut stream = connect(addr);
    // The server may answer and close before reading everything (a 413
    // on the headers alone): a failed write is fine, the answer tells.
    let _ = stream.write_all(request);
    read_answers(&mut stream)
}

/// Every response on `stream`, then `Closed` if the server closed it. A
/// connection left open after a complete response ends the reading after a
/// short quiet time.
fn read_answers(stream: &mut TcpStream) -> Vec<Answer> {
    let deadline = Instant::now() + EXCHANGE_LIMIT;
    let mut buf = Vec::new();
    let mut answers = Vec::new();
    loop {
        if let Some((answer, used)) = parse_response(&buf) {
            answers.push(answer);
            buf.drain(..used);
            // Keep-alive: wait briefly for a pipelined next response.
            stream
                .set_read_timeout(Some(Duration::from_millis(300)))
                .expect("timeout");
            continue;
        }
        assert!(
            Instant::now() < deadline,
            "no complete answer within {EXCHANGE_LIMIT:?}; got {:?}",
            String::from_utf8_lossy(&buf)
        );
        let mut chunk = [0u8; 16 * 1024];
        match stream.read(&mut chunk) {
            Ok(0) => {
                assert!(
                    buf.is_empty(),
                    "connection closed inside a response: {:?}",
                    String::from_utf8_lossy(&buf)
                );
                answers.push(Answer::Closed);
                return answers;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            // After a complete response, silence means keep-alive.
            Err(e) if is_timeout(&e) && !answers.is_empty() && buf.is_empty() => {
                return answers;
            }
            Err(e) if is_timeout(&e) => {
                panic!(
                    "no answer within {IO_TIMEOUT:?}: the server hangs; got {:?}",
                    String::from_utf8_lossy(&buf)
                )
            }
            // A reset after (or instead of) a response: the server closed
            // with our unread bytes in its buffer.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && buf.is_empty() => {
                answers.push(Answer::Closed);
                return answers;
            }
            Err(e) => panic!("reading the answer: {e}"),
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// One complete response at the start of `buf`, and its length.
fn parse_response(buf: &[u8]) -> Option<(Answer, usize)> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..head_end]).expect("response head is text");
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let header = |name: &str| {
        head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    };
    let (body, end) = if let Some(len) = header("content-length") {
        let len: usize = len.parse().expect("content-length");
        if buf.len() < head_end + len {
            return None;
        }
        (&buf[head_end..head_end + len], head_end + len)
    } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let rest = &buf[head_end..];
        let end = rest.windows(5).position(|w| w == b"0\r\n\r\n")? + 5;
        (&rest[..end], head_end + end)
    } else {
        // No length: the body runs to the end of the connection; every
        // answer of this API has a length, so this is only the 1xx/204 case.
        (&buf[head_end..head_end], head_end)
    };
    Some((
        Answer::Response(status, String::from_utf8_lossy(body).into_owned()),
        end,
    ))
}

/// A request with `Host` and `Connection: close`.
fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: nta\r\nConnection: close\r\n\r\n").into_bytes()
}

/// A POST to `/api/blocks` with the admin token and `body`.
fn post_blocks(body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST /api/blocks HTTP/1.1\r\nHost: nta\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// Asserts that one response came, with a 4xx status, and prints it (run
/// with `--nocapture` to see); then that the server still serves.
#[track_caller]
fn assert_refused(server: &Server, case: &str, answers: &[Answer]) {
    let got = statuses(answers);
    assert_eq!(
        got.len(),
        1,
        "{case}: expected one response, got {answers:?}"
    );
    assert!(
        (400..500).contains(&got[0]),
        "{case}: expected a 4xx, got {answers:?}"
    );
    println!("{case}: {}", got[0]);
    server.assert_still_serving(case);
}

/// Runs each case on a new connection, expecting a 4xx, and checks the
/// server afterwards.
fn run_cases(server: &Server, cases: &[(&str, Vec<u8>)]) {
    for (case, request) in cases {
        assert_refused(server, case, &exchange(server.addr, request));
    }
}

#[test]
fn bytes_that_are_not_http_are_refused_or_the_connection_closed() {
    let server = Server::start();
    let mut noise = Vec::new();
    let mut x: u32 = 0x2545_f491;
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise.push(x as u8);
    }
    for (case, bytes) in [
        ("random bytes", noise),
        (
            "a TLS ClientHello",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
        ),
        ("an SSH banner", b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec()),
        ("NUL bytes", vec![0; 1024]),
    ] {
        let answers = exchange(server.addr, &bytes);
        match answers.as_slice() {
            [Answer::Closed] => println!("{case}: closed"),
            [Answer::Response(status, _), Answer::Closed] if (400..500).contains(status) => {
                println!("{case}: {status}, then closed");
            }
            other => panic!("{case}: expected a 4xx or a closed connection, got {other:?}"),
        }
        server.assert_still_serving(case);
    }
}

#[test]
fn malformed_request_lines_are_4xx() {
    let server = Server::start();
    let long_path = format!("/api/alerts/{}", "a".repeat(100 * 1024));
    run_cases(
        &server,
        &[
            (
                "a request line without HTTP version",
                b"GET /healthz\r\nHost: nta\r\n\r\n".to_vec(),
            ),
            (
                "an unknown method",
                b"BREW /api/alerts HTTP/1.1\r\nHost: nta\r\nConnection: close\r\n\r\n".to_vec(),
            ),
            ("a 100 KB path", get(&long_path)),
            (
                "a path with raw invalid UTF-8",
                b"GET /api/alerts/\xff\xfe HTTP/1.1\r\nHost: nta\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            ),
            (
                "a path with invalid percent-encoding",
                get("/api/alerts/%zz%"),
            ),
            (
                "a path that decodes to invalid UTF-8",
                get("/api/alerts/%ff%fe"),
            ),
            ("a path with %00", get("/api/alerts/%00")),
        ],
    );
}

#[test]
fn hostile_headers_are_4xx() {
    let server = Server::start();
    let mut many = b"GET /api/alerts HTTP/1.1\r\nHost: nta\r\n".to_vec();
    for i in 0..1000 {
        many.extend_from_slice(format!("X-Header-{i}: {i}\r\n").as_bytes());
    }
    many.extend_from_slice(b"Connection: close\r\n\r\n");
    run_cases(
        &server,
        &[
            ("1000 headers", many),
            (
                "an Authorization header with invalid UTF-8",
                b"GET /api/alerts HTTP/1.1\r\nHost: nta\r\nAuthorization: Bearer \xff\xfe\xfd\r\n\
                  Connection: close\r\n\r\n"
                    .to_vec(),
            ),
            (
                "an Authorization header with invalid UTF-8 on a missing path",
                b"GET /nowhere HTTP/1.1\r\nHost: nta\r\nAuthorization: \xc3\x28\r\n\
                  Connection: close\r\n\r\n"
                    .to_vec(),
            ),
            (
                "a header name that is not a token",
                b"GET /api/alerts HTTP/1.1\r\nHost: nta\r\nBad Header: x\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            ),
        ],
    );
    // A header the API does not read may hold any byte: the request is served.
    let answers = exchange(
        server.addr,
        b"GET /api/alerts HTTP/1.1\r\nHost: nta\r\nX-Note: caf\xe9 \xff\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(statuses(&answers), [200], "{answers:?}");
    server.assert_still_serving("an unread header with invalid UTF-8");
}

#[test]
fn hostile_query_parameters_are_4xx() {
    let server = Server::start();
    let huge_query = format!("/api/alerts?kind={}", "x".repeat(1024 * 1024));
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "limit larger than any integer",
            get("/api/alerts?limit=99999999999999999999999999999999999999999999"),
        ),
        ("limit=2^64", get("/api/alerts?limit=18446744073709551616")),
        ("a negative limit", get("/api/alerts?limit=-5")),
        ("limit=NaN", get("/api/alerts?limit=NaN")),
        ("limit=1e3", get("/api/alerts?limit=1e3")),
        ("an empty limit", get("/api/alerts?limit=")),
        ("a repeated parameter", get("/api/alerts?limit=1&limit=2")),
        ("a %00 value", get("/api/alerts?limit=%00")),
        ("a %00 name", get("/api/alerts?%00=1")),
        ("invalid percent-encoding", get("/api/alerts?limit=%zz")),
        (
            "a query that decodes to invalid UTF-8",
            get("/api/alerts?kind=%ff%fe"),
        ),
        ("a 1 MB query string", get(&huge_query)),
        (
            "a history step too small for the range",
            get("/api/history?since=1970-01-01T00:00:00Z&until=2200-01-01T00:00:00Z&step=1"),
        ),
        (
            "a huge history step",
            get("/api/history?step=99999999999999999999"),
        ),
        ("a NaN history step", get("/api/history?step=NaN")),
        (
            "a time before year 0",
            get("/api/history?since=-99999-01-01T00:00:00Z"),
        ),
        (
            "an alert id beyond u64",
            get("/api/alerts/99999999999999999999999"),
        ),
        ("a negative alert id", get("/api/alerts/-1")),
    ];
    cases.push(("a cursor of NaN", get("/api/alerts?cursor=NaN")));
    run_cases(&server, &cases);
}

#[test]
fn hostile_bodies_to_post_blocks_are_4xx() {
    let server = Server::start();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("invalid JSON", post_blocks(b"{\"cidr\": ")),
        ("JSON that is not an object", post_blocks(b"[1, 2, 3]")),
        ("a cidr of the wrong type", post_blocks(b"{\"cidr\": 42}")),
        (
            "a ttl of the wrong type",
            post_blocks(b"{\"cidr\": \"198.18.0.2\", \"ttl\": [\"10m\"]}"),
        ),
        (
            "an unknown field",
            post_blocks(b"{\"cidr\": \"198.18.0.2\", \"admin\": true}"),
        ),
        ("invalid UTF-8 in a string", post_blocks(b"{\"cidr\": \"\xff\xfe\"}")),
        ("a NUL in the cidr", post_blocks(b"{\"cidr\": \"198.18.0.2\\u0000\"}")),
        (
            "deeply nested JSON",
            post_blocks(format!("{}{}", "[".repeat(3000), "]".repeat(3000)).as_bytes()),
        ),
        (
            "without the admin token",
            b"POST /api/blocks HTTP/1.1\r\nHost: nta\r\nContent-Length: 23\r\nConnection: close\r\n\r\n{\"cidr\": \"198.18.0.2\"}"
                .to_vec(),
        ),
        (
            "DELETE with garbage",
            format!(
                "DELETE /api/blocks/%zz%ff..%2F%00garbage HTTP/1.1\r\nHost: nta\r\n\
                 Authorization: Bearer {ADMIN}\r\nConnection: close\r\n\r\n"
            )
            .into_bytes(),
        ),
        (
            "DELETE with a CIDR of host bits",
            format!(
                "DELETE /api/blocks/10.1.2.3%2F8 HTTP/1.1\r\nHost: nta\r\n\
                 Authorization: Bearer {ADMIN}\r\nConnection: close\r\n\r\n"
            )
            .into_bytes(),
        ),
        (
            "DELETE with garbage, without the token",
            b"DELETE /api/blocks/garbage HTTP/1.1\r\nHost: nta\r\nConnection: close\r\n\r\n".to_vec(),
        ),
    ];
    run_cases(&server, &cases);
}

#[test]
fn a_10_mb_body_is_refused_without_being_read() {
    let server = Server::start();
    let body = vec![b'{'; 10 * 1024 * 1024];
    for (case, framing) in [
        (
            "a 10 MB body with its Content-Length",
            format!("Content-Length: {}\r\n", body.len()),
        ),
        (
            "a 10 MB body, chunked",
            "Transfer-Encoding: chunked\r\n".to_owned(),
        ),
    ] {
        let mut stream = connect(server.addr);
        let head = format!(
            "POST /api/blocks HTTP/1.1\r\nHost: nta\r\nAuthorization: Bearer {ADMIN}\r\n\
             Content-Type: application/json\r\n{framing}Connection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).expect("writing the head");
        // Send the body while the answer is read: the server is expected to
        // answer on the head alone, so the writer may meet a closed socket.
        let writer = {
            let mut stream = stream.try_clone().expect("clone");
            let chunked = framing.starts_with("Transfer");
            let body = body.clone();
            thread::spawn(move || {
                let started = Instant::now();
                for piece in body.chunks(64 * 1024) {
                    let sent = if chunked {
                        stream
                            .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                            .and_then(|()| stream.write_all(piece))
                            .and_then(|()| stream.write_all(b"\r\n"))
                    } else {
                        stream.write_all(piece)
                    };
                    if sent.is_err() || started.elapsed() > EXCHANGE_LIMIT {
                        return;
                    }
                }
                if chunked {
                    let _ = stream.write_all(b"0\r\n\r\n");
                }
            })
        };
        let answers = read_answers(&mut stream);
        let _ = stream.shutdown(Shutdown::Both);
        writer.join().expect("writer thread");
        assert_refused(&server, case, &answers);
    }
}

#[test]
fn a_request_that_closes_mid_body_does_not_disturb_the_server() {
    let server = Server::start();
    let mut stream = connect(server.addr);
    stream
        .write_all(
            format!(
                "POST /api/blocks HTTP/1.1\r\nHost: nta\r\nAuthorization: Bearer {ADMIN}\r\n\
                 Content-Length: 100\r\n\r\n{{\"cidr\": \"198"
            )
            .as_bytes(),
        )
        .expect("writing half a request");
    stream.shutdown(Shutdown::Write).expect("half-close");
    let answers = read_answers(&mut stream);
    // The body can never complete: the server may answer 400 or just close.
    match answers.as_slice() {
        [Answer::Closed] => println!("closed mid-body: closed"),
        [Answer::Response(status, _), ..] if (400..500).contains(status) => {
            println!("closed mid-body: {status}");
        }
        other => panic!("closed mid-body: expected a 4xx or a close, got {other:?}"),
    }
    drop(stream);
    // The same, with the socket dropped outright.
    let mut stream = connect(server.addr);
    stream
        .write_all(b"POST /api/blocks HTTP/1.1\r\nHost: nta\r\nContent-Length: 100\r\n\r\n{")
        .expect("writing half a request");
    drop(stream);
    server.assert_still_serving("a request that closes mid-body");
}

#[test]
fn a_slowloris_client_does_not_hold_up_others() {
    let server = Server::start();
    let mut slow = connect(server.addr);
    let request = b"GET /healthz HTTP/1.1\r\nHost: nta\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nConnection: close\r\n\r\n";
    let started = Instant::now();
    let mut sent = 0;
    // The headers one byte per 100 ms for 3 s, other clients served meanwhile.
    while started.elapsed() < Duration::from_secs(3) && sent < request.len() - 4 {
        slow.write_all(&request[sent..=sent]).expect("one byte");
        sent += 1;
        if sent % 10 == 0 {
            let before = Instant::now();
            server.assert_still_serving("slowloris bytes so far");
            // Generous for a loaded machine; waiting behind the slow client
            // would take until its 3 s are over.
            assert!(
                before.elapsed() < Duration::from_secs(2),
                "others waited {:?} behind the slow client",
                before.elapsed()
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
    // The rest of the request: the slow client gets its answer too (or was
    // dropped, which a server is free to do with a client this slow).
    let rest = slow.write_all(&request[sent..]);
    let answers = read_answers(&mut slow);
    match (rest, answers.as_slice()) {
        (Ok(()), [Answer::Response(200, _), ..]) => println!("slowloris: 200 after 3 s"),
        (_, [Answer::Closed]) => println!("slowloris: closed"),
        (_, [Answer::Response(status, _), ..]) if (400..500).contains(status) => {
            println!("slowloris: {status}");
        }
        (rest, other) => panic!("slowloris: got {other:?} (write: {rest:?})"),
    }
    server.assert_still_serving("a slowloris client");
}

#[test]
fn http_1_0_and_pipelined_requests_are_answered() {
    let server = Server::start();
    let answers = exchange(server.addr, b"GET /healthz HTTP/1.0\r\n\r\n");
    assert!(
        matches!(
            answers.as_slice(),
            [Answer::Response(200, _), Answer::Closed]
        ),
        "HTTP/1.0: {answers:?}"
    );
    println!("HTTP/1.0: 200, then closed");
    server.assert_still_serving("an HTTP/1.0 request");

    let answers = exchange(
        server.addr,
        b"GET /healthz HTTP/1.1\r\nHost: nta\r\n\r\n\
          GET /api/alerts?limit=-1 HTTP/1.1\r\nHost: nta\r\n\r\n\
          GET /api/alerts HTTP/1.1\r\nHost: nta\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        statuses(&answers),
        [200, 400, 200],
        "pipelined: {answers:?}"
    );
    println!("pipelined: 200, 400, 200");
    server.assert_still_serving("pipelined requests");
}
