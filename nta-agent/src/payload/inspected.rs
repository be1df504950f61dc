//! One sampled segment, with what could be parsed out of it.

use std::net::SocketAddr;

use nta_common::maps::sample_flow;

use super::{
    dns::{self, DnsMessage},
    http::{self, HttpRequest, HttpResponse},
    tls::{self, ClientHello},
    tls_server::{self, ServerHandshake},
};

/// DNS is recognised on this port only (either side): probing every UDP
/// datagram as DNS would turn random payloads into "queries".
pub(crate) const DNS_PORT: u16 = 53;

/// Layer-4 protocol of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

/// A sampled segment as the matcher sees it. Borrows the payload.
#[derive(Debug, Clone)]
pub struct Inspected<'a> {
    pub transport: Transport,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// The L4 payload as sampled (possibly cut short).
    pub payload: &'a [u8],
    /// The HTTP request the payload starts with, if any.
    pub http: Option<HttpRequest<'a>>,
    /// The HTTP response the payload starts with, if any: what a server
    /// sends back (never set together with `http`).
    pub http_response: Option<HttpResponse<'a>>,
    /// The DNS message the payload carries, if any.
    pub dns: Option<DnsMessage>,
    /// The TLS ClientHello the payload starts with, if any (any port).
    pub tls: Option<ClientHello>,
    /// The server's hello and certificates the payload starts with, if
    /// any (any port).
    pub tls_server: Option<ServerHandshake>,
    /// The packet's payload length, for `dsize`: set for one packet's
    /// payload (which may be longer than what was sampled), not for a
    /// stream's bytes put in order, as Suricata's `dsize` looks at packets
    /// only.
    pub dsize: Option<usize>,
    /// Where the payload stands in its flow: [`sample_flow`] bits from
    /// the flow table, 0 when it had no entry.
    pub flow: u8,
}

impl<'a> Inspected<'a> {
    /// Parses `payload`: as an HTTP request or response if it is TCP (on
    /// any port: the request or status line tells), as DNS if either port
    /// is 53.
    pub fn parse(
        transport: Transport,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &'a [u8],
    ) -> Inspected<'a> {
        let is_dns_port = src.port() == DNS_PORT || dst.port() == DNS_PORT;
        // HTTP by its request line, on any port, 53 too (as Suricata's
        // protocol detection): a DNS message over TCP starts with its
        // length, never with a method and a space.
        let http = match transport {
            Transport::Tcp => http::parse_request(payload),
            Transport::Udp => None,
        };
        // A response by its status line, on any port too.
        let http_response = match transport {
            Transport::Tcp if http.is_none() => http::parse_response(payload),
            _ => None,
        };
        let is_http = http.is_some() || http_response.is_some();
        let dns = match transport {
            _ if !is_dns_port || is_http => None,
            Transport::Udp => dns::parse_udp(payload).ok(),
            Transport::Tcp => dns::parse_tcp(payload).ok(),
        };
        let (tls, tls_server) = match transport {
            Transport::Tcp if !is_http => (
                tls::parse_client_hello(payload),
                tls_server::parse_server_handshake(payload),
            ),
            _ => (None, None),
        };
        Inspected {
            transport,
            src,
            dst,
            payload,
            http,
            http_response,
            dns,
            tls,
            tls_server,
            dsize: None,
            flow: 0,
        }
    }

    /// Whether the payload went to the end that opened the flow; `None`
    /// without a flow entry.
    pub fn to_server(&self) -> Option<bool> {
        match self.flow & (sample_flow::TO_SERVER | sample_flow::TO_CLIENT) {
            sample_flow::TO_SERVER => Some(true),
            sample_flow::TO_CLIENT => Some(false),
            _ => None,
        }
    }

    /// Suricata's `established`: for TCP, the flow was seen from its
    /// handshake; for UDP, both ends have sent.
    pub fn established(&self) -> bool {
        self.flow & sample_flow::ESTABLISHED != 0
    }
}
