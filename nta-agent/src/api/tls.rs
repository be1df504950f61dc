//! HTTPS for the API and dashboard: the certificate and key, checked at
//! start, and a server that decrypts each connection before hyper serves
//! the routes on it.
//!
//! warp 0.4 serves plain TCP only and its acceptor trait is sealed, so this
//! drives the connections itself: rustls (ring) for the handshake, then
//! hyper-util's server, HTTP/1.1 or HTTP/2 as ALPN agreed, with the same
//! graceful shutdown as [`super::serve`].

use std::{
    convert::Infallible,
    fmt, fs, io,
    net::SocketAddr,
    path::{Path, PathBuf},
    pin::pin,
    sync::Arc,
    time::Duration,
};

use hyper::{Request, body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use rustls::{
    ServerConfig,
    crypto::CryptoProvider,
    pki_types::{
        CertificateDer, PrivateKeyDer,
        pem::{self, PemObject},
    },
    sign::CertifiedKey,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, error};

use super::{ApiState, TlsPeer};

/// Longest a client may take to complete its handshake: a scanner or a
/// client that connects and says nothing holds a socket and a task only
/// this long.
pub const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// Why the certificate or the key cannot be served; each names its file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS {what} file {}: {source}", path.display())]
    Read {
        /// `certificate` or `key`.
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("the TLS {what} file {} is not valid PEM: {source}", path.display())]
    Pem {
        what: &'static str,
        path: PathBuf,
        source: pem::Error,
    },
    #[error(
        "no certificate in {} (--tls-cert): expected PEM `-----BEGIN CERTIFICATE-----` blocks, the server's certificate first",
        path.display()
    )]
    NoCertificate { path: PathBuf },
    #[error(
        "no private key in {} (--tls-key): expected a PEM `-----BEGIN PRIVATE KEY-----` (PKCS#8), `RSA PRIVATE KEY` (PKCS#1) or `EC PRIVATE KEY` (SEC1) block",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error("the private key in {} cannot be used: {source}", path.display())]
    UnusableKey {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error(
        "the private key in {} does not match the certificate in {}: give the key the certificate was issued for",
        key.display(),
        cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("the certificate in {} cannot be served: {source}", path.display())]
    Unusable {
        path: PathBuf,
        source: rustls::Error,
    },
}

/// A certificate chain and its key, checked and ready to serve.
#[derive(Clone)]
pub struct Tls {
    config: Arc<ServerConfig>,
    handshake_limit: Duration,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key: the config holds it.
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads the PEM certificate chain at `cert` and the PEM private key
    /// at `key` (PKCS#8, PKCS#1 or SEC1), and checks that they belong
    /// together.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let chain = read_chain(cert)?;
        let private_key = read_key(key)?;
        // ring explicitly rather than the process default, which another
        // part of the agent may set (reqwest's clients install ring too).
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certified = certified_key(&provider, chain, private_key, cert, key)?;
        let unusable = |source| TlsError::Unusable {
            path: cert.to_owned(),
            source,
        };
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(unusable)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            handshake_limit: HANDSHAKE_LIMIT,
        })
    }

    /// With handshakes bounded by `limit` rather than [`HANDSHAKE_LIMIT`],
    /// so that a test sees one given up without waiting that long.
    #[cfg(test)]
    fn handshake_limit(self, limit: Duration) -> Self {
        Self {
            handshake_limit: limit,
            ..self
        }
    }
}

/// The file's bytes; a failure names it.
fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read("certificate", path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            what: "certificate",
            path: path.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|source| match source {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_owned(),
        },
        source => TlsError::Pem {
            what: "key",
            path: path.to_owned(),
            source,
        },
    })
}

/// The chain with its key, refused when the key is not the one the first
/// certificate was issued for: rustls would only find out at the first
/// handshake, which would then fail for every client.
fn certified_key(
    provider: &CryptoProvider,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_path: &Path,
    key_path: &Path,
) -> Result<CertifiedKey, TlsError> {
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|source| TlsError::UnusableKey {
            path: key_path.to_owned(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // A key type whose public half ring cannot derive: nothing to
        // compare, as rustls itself decides.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
            })
        }
        Err(source) => Err(TlsError::Unusable {
            path: cert_path.to_owned(),
            source,
        }),
    }
}

/// Serves the routes over TLS on `listener` until `shutdown` completes:
/// then stops accepting, drops the handshakes under way and lets the
/// requests in flight finish, as [`super::serve`] does in the clear.
pub(super) async fn serve(
    listener: TcpListener,
    state: ApiState,
    tls: Tls,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let acceptor = TlsAcceptor::from(tls.config.clone());
    let service = TowerToHyperService::new(warp::service(super::routes(state)));
    let graceful = GracefulShutdown::new();
    // Handshakes are not connections hyper watches yet: they learn of the
    // shutdown here.
    let (stop_handshakes, stopping) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = Connection {
            acceptor: acceptor.clone(),
            handshake_limit: tls.handshake_limit,
            peer,
            watcher: graceful.watcher(),
            stopping: stopping.clone(),
        };
        let service = service.clone();
        tokio::spawn(async move {
            let with_peer = service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(TlsPeer(peer));
                hyper::service::Service::call(&service, request)
            });
            connection.serve(tcp, with_peer).await;
        });
    }
    drop(listener);
    let _ = stop_handshakes.send(());
    graceful.shutdown().await;
}

/// One accepted socket, before and after its handshake.
struct Connection {
    acceptor: TlsAcceptor,
    handshake_limit: Duration,
    peer: SocketAddr,
    watcher: hyper_util::server::graceful::Watcher,
    stopping: watch::Receiver<()>,
}

impl Connection {
    /// The handshake, bounded by the handshake limit, then HTTP until the
    /// client or the shutdown ends it. Failures are the client's (a plain
    /// HTTP request, a scanner, a certificate it does not trust) and only
    /// logged at debug level: the server goes on.
    async fn serve<S>(mut self, tcp: TcpStream, service: S)
    where
        S: hyper::service::Service<
                Request<Incoming>,
                Response = warp::reply::Response,
                Error = Infallible,
            > + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let peer = self.peer;
        let limit = self.handshake_limit;
        let handshake = tokio::time::timeout(limit, self.acceptor.accept(tcp));
        let stream = tokio::select! {
            result = handshake => match result {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    debug!(message = "TLS handshake failed", %peer, %error);
                    return;
                }
                Err(_) => {
                    debug!(message = "TLS handshake timed out", %peer, ?limit);
                    return;
                }
            },
            _ = self.stopping.changed() => return,
        };
        let builder = auto::Builder::new(TokioExecutor::new());
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        if let Err(error) = self.watcher.watch(connection).await {
            debug!(message = "API connection ended with an error", %peer, %error);
        }
    }
}

/// What warp's own server does when `accept` fails: a connection that
/// died before it was accepted is nothing; anything else (out of file
/// descriptors) is logged, and the next accept waits a second for some to
/// be freed rather than spin.
async fn accept_failed(error: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    error!(message = "API cannot accept connections", %error);
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use rcgen::{CertificateParams, KeyPair};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::api::{auth::Auth, bind, serve_tls, tests::test_state};

    const TOKEN: &str = "tls-test-token-0123456789abcdef";

    /// A self-signed certificate for `localhost` and 127.0.0.1 and its key,
    /// as PEM files in a temporary directory.
    struct Files {
        dir: tempfile::TempDir,
        cert: PathBuf,
        key: PathBuf,
        cert_pem: String,
    }

    fn self_signed() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let cert_pem = params.self_signed(&key).unwrap().pem();
        let (cert, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        fs::write(&cert, &cert_pem).unwrap();
        fs::write(&key_path, key.serialize_pem()).unwrap();
        Files {
            dir,
            cert,
            key: key_path,
            cert_pem,
        }
    }

    /// [`serve_tls`] on a loopback port with the read token [`TOKEN`].
    struct Server {
        addr: SocketAddr,
        state: ApiState,
        stop: tokio::sync::oneshot::Sender<()>,
        task: tokio::task::JoinHandle<()>,
        _store: tempfile::TempDir,
    }

    impl Server {
        async fn start(files: &Files) -> Self {
            Self::start_with(files, |tls| tls).await
        }

        /// [`Server::start`], with the TLS settings changed by `change`.
        async fn start_with(files: &Files, change: impl FnOnce(Tls) -> Tls) -> Self {
            let tls = Tls::load(&files.cert, &files.key).expect("certificate and key load");
            let tls = change(tls);
            let (store, state) = test_state();
            let state = ApiState {
                auth: Auth::for_listen("127.0.0.1:0".parse().unwrap(), Some(TOKEN)).unwrap(),
                ..state
            };
            let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(serve_tls(listener, state.clone(), tls, async {
                let _ = stopped.await;
            }));
            Server {
                addr,
                state,
                stop,
                task,
                _store: store,
            }
        }

        /// Shuts the server down, which must stop within 5 s.
        async fn stops(self, expected: &str) {
            self.stop.send(()).unwrap();
            tokio::time::timeout(Duration::from_secs(5), self.task)
                .await
                .expect(expected)
                .unwrap();
        }
    }

    /// A client that trusts only the test's certificate.
    fn client(files: &Files) -> reqwest::Client {
        let root = reqwest::Certificate::from_pem(files.cert_pem.as_bytes()).unwrap();
        crate::http_client::build_trusting_only("api", Duration::from_secs(5), vec![root]).unwrap()
    }

    async fn get(
        client: &reqwest::Client,
        url: &str,
        token: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let mut request = client.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e:?}"));
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    #[tokio::test]
    async fn https_serves_health_and_the_api_behind_its_token() {
        let files = self_signed();
        let server = Server::start(&files).await;
        let client = client(&files);
        let base = format!("https://127.0.0.1:{}", server.addr.port());

        let (status, body) = get(&client, &format!("{base}/healthz"), None).await;
        assert_eq!((status, body), (200, serde_json::json!({"status": "ok"})));
        let (status, body) = get(&client, &format!("{base}/api/alerts"), None).await;
        assert_eq!(status, 401, "{body}");
        let (status, body) = get(&client, &format!("{base}/api/alerts"), Some(TOKEN)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["alerts"].as_array().map(Vec::len), Some(5), "{body}");
        // The name in the certificate works as well as the address.
        let by_name = format!("https://localhost:{}/healthz", server.addr.port());
        assert_eq!(get(&client, &by_name, None).await.0, 200);
        // The client passed the token: automatic mitigation must know it.
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(
            server.state.mitigation.clients.all().contains(&loopback),
            "an authenticated client over TLS was not recorded"
        );

        server.stops("server stops after shutdown").await;
    }

    #[tokio::test]
    async fn plain_http_on_the_tls_port_is_refused_and_the_server_goes_on() {
        let files = self_signed();
        let server = Server::start(&files).await;
        let client = client(&files);

        let mut conn = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: nta\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut answer))
            .await
            .expect("the server closes the connection")
            .ok();
        assert!(
            !answer.starts_with(b"HTTP/"),
            "a plain request got an HTTP answer: {}",
            String::from_utf8_lossy(&answer)
        );
        let plain = format!("http://127.0.0.1:{}/healthz", server.addr.port());
        assert!(client.get(&plain).send().await.is_err(), "{plain} answered");

        let https = format!("https://127.0.0.1:{}/healthz", server.addr.port());
        assert_eq!(get(&client, &https, None).await.0, 200);
        server.stops("server stops after shutdown").await;
    }

    #[tokio::test]
    async fn a_client_that_does_not_trust_the_certificate_is_refused_and_the_server_goes_on() {
        let files = self_signed();
        let server = Server::start(&files).await;
        let https = format!("https://127.0.0.1:{}/healthz", server.addr.port());
        let stranger = self_signed();
        let error = client(&stranger).get(&https).send().await.unwrap_err();
        assert!(
            format!("{error:?}").contains("InvalidCertificate"),
            "{error:?}"
        );
        assert_eq!(get(&client(&files), &https, None).await.0, 200);
        server.stops("server stops after shutdown").await;
    }

    /// A client that connects and never sends its hello is let go once
    /// the handshake limit is up.
    #[tokio::test]
    async fn a_silent_client_is_dropped_after_the_handshake_limit() {
        let files = self_signed();
        let limit = Duration::from_millis(300);
        let server = Server::start_with(&files, |tls| tls.handshake_limit(limit)).await;
        let mut silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let start = std::time::Instant::now();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut byte))
            .await
            .expect("the server closes the silent connection");
        assert!(matches!(read, Ok(0) | Err(_)), "the server sent {read:?}");
        let waited = start.elapsed();
        assert!(waited >= limit, "closed after {waited:?}, before the limit");
        server.stops("server stops after shutdown").await;
    }

    #[tokio::test]
    async fn shutdown_waits_neither_for_a_stalled_handshake_nor_an_open_stream() {
        let files = self_signed();
        let server = Server::start(&files).await;
        let _silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let client = client(&files);
        let url = format!("https://127.0.0.1:{}/api/stream", server.addr.port());
        let stream = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(stream.status(), 200);
        // As `run` stops the API: the feed first, then the server.
        server.state.feed.close();
        let started = std::time::Instant::now();
        server
            .stops("server stops with a handshake and a stream open")
            .await;
        assert!(
            started.elapsed() < HANDSHAKE_LIMIT / 2,
            "{:?}",
            started.elapsed()
        );
    }

    /// Loads `cert` and `key` expecting an error; its message.
    fn load_error(cert: &Path, key: &Path) -> String {
        Tls::load(cert, key)
            .expect_err("the files are refused")
            .to_string()
    }

    #[test]
    fn a_missing_file_is_named() {
        let files = self_signed();
        let missing = files.dir.path().join("nowhere.pem");
        let err = load_error(&missing, &files.key);
        assert!(
            err.contains("certificate") && err.contains(&missing.display().to_string()),
            "{err}"
        );
        let err = load_error(&files.cert, &missing);
        assert!(
            err.contains("key") && err.contains(&missing.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn a_file_without_what_it_should_hold_is_named() {
        let files = self_signed();
        // The two files swapped: a key where the certificate should be,
        // and the other way round.
        let err = load_error(&files.key, &files.cert);
        assert!(
            err.starts_with("no certificate in") && err.contains(&files.key.display().to_string()),
            "{err}"
        );
        let err = load_error(&files.cert, &files.cert);
        assert!(
            err.starts_with("no private key in") && err.contains(&files.cert.display().to_string()),
            "{err}"
        );
        let garbage = files.dir.path().join("garbage.pem");
        fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n",
        )
        .unwrap();
        let err = load_error(&garbage, &files.key);
        assert!(
            err.contains("not valid PEM") && err.contains(&garbage.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn a_key_that_does_not_match_the_certificate_is_refused() {
        let files = self_signed();
        let other = self_signed();
        let err = load_error(&files.cert, &other.key);
        assert!(err.contains("does not match"), "{err}");
        assert!(
            err.contains(&files.cert.display().to_string())
                && err.contains(&other.key.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn a_chain_with_its_key_in_one_file_loads() {
        let files = self_signed();
        let both = files.dir.path().join("both.pem");
        let key = fs::read_to_string(&files.key).unwrap();
        fs::write(&both, format!("{}{key}", files.cert_pem)).unwrap();
        Tls::load(&both, &both).expect("one file with both loads");
    }
}
