//! The process's one SIP endpoint: UDP and TCP listeners on `sip.listen` (same port), an
//! optional TLS listener on `sip.tls_listen`, and a TLS client configuration that trusts the
//! system roots plus `sip.ca_file`. rsipstack provides the UDP transport, transactions and the
//! TCP connections to registrars (one per remote address, shared by every registration to it).
//!
//! Ours, not rsipstack's:
//! - **Inbound TCP** ([`InboundTcp`]): rsipstack's stream framing computes
//!   `headers + Content-Length` without overflow checks, so `Content-Length:
//!   18446744073709551615` panicked its connection task in debug builds (the socket then stayed
//!   open and cached forever, no close event) and framed a truncated message in release
//!   builds; and it reserved a zeroed 64 KiB read buffer per connection, idle or not, with no
//!   limit on connections. We accept, frame ([`frame`]: checked lengths, 64 KiB per message,
//!   a deadline per message), and hand rsipstack each parsed message as if its own listener had
//!   read it (through a channel connection, see [`SipEndpoint::bind`]).
//! - **TLS client connections** ([`SipEndpoint::tls_connection`]): rsipstack's connection lookup
//!   re-resolves a domain itself (system DNS, A records) and caches by address only. We connect
//!   to the address our resolver chose, verify the certificate against the registrar's name
//!   (RFC 5922), and reuse a connection only for the same name and address.
//! - **Destinations** ([`DestinationPolicy`]): `outbound.deny_networks` and our own HTTP port.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use rsipstack::transaction::endpoint::{EndpointInnerRef, EndpointOption, TransportEventInspector};
use rsipstack::transport::channel::ChannelConnection;
use rsipstack::transport::connection::{
    TransportEvent, TransportSender, KEEPALIVE_REQUEST, KEEPALIVE_RESPONSE,
};
use rsipstack::transport::stream::StreamConnection;
use rsipstack::transport::tcp::TcpConnection;
use rsipstack::transport::tls::{TlsConfig, TlsConnection, TlsListenerConnection};
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::TransportLayer;
use rsipstack::transport::{SipAddr, SipConnection};
use rsipstack::EndpointBuilder;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use trunkline_core::model::Transport;

pub use crate::target::DestinationPolicy;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot bind SIP {transport} on {addr}: {source}")]
    Bind {
        transport: &'static str,
        addr: SocketAddr,
        source: Box<rsipstack::Error>,
    },
    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sip.tls_listen needs sip.tls_cert and sip.tls_key")]
    TlsWithoutCertificate,
    #[error("cannot start the SIP thread: {0}")]
    Thread(std::io::Error),
}

/// Listener settings (from `sip.*`).
#[derive(Debug, Clone)]
pub struct TransportSettings {
    pub listen: SocketAddr,
    pub tls_listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    /// `host:port` to put in Contact and Via instead of the bound address.
    pub public_addr: Option<String>,
    /// DNS servers for SRV/A/AAAA lookups; empty: the system's.
    pub dns_servers: Vec<std::net::IpAddr>,
    /// `outbound.deny_networks`: no REGISTER goes to an address in these.
    pub deny_networks: Vec<ipnet::IpNet>,
    /// The HTTP API's `listen` address, never a destination (port 0: see
    /// [`SipEndpoint::set_http_listen`]).
    pub http_listen: Option<SocketAddr>,
}

/// The running endpoint and the addresses it is reachable at.
pub struct SipEndpoint {
    pub endpoint: Arc<rsipstack::transaction::endpoint::Endpoint>,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub tls: Option<SocketAddr>,
    /// RFC 3263 resolver (SRV, then A/AAAA).
    pub resolver: rsipstack::resolver::SipResolver,
    /// Where REGISTERs may go.
    pub policy: DestinationPolicy,
    public_addr: Option<String>,
    tls_clients: TlsClients,
    cancel: CancellationToken,
}

/// Tells the engine when a TCP/TLS connection closes, so the registrations bound over it can
/// re-register at once instead of at their next refresh.
struct ClosedConnections(mpsc::UnboundedSender<SocketAddr>);

#[async_trait::async_trait]
impl TransportEventInspector for ClosedConnections {
    async fn handle(&self, event: TransportEvent) -> Option<TransportEvent> {
        if let TransportEvent::Closed(connection) = &event {
            if connection.is_reliable() {
                if let Some(remote) = connection
                    .get_remote_addr()
                    .and_then(|a| a.get_socketaddr().ok())
                {
                    let _ = self.0.send(remote);
                }
            }
        }
        Some(event)
    }
}

impl SipEndpoint {
    /// Binds the listeners; the receiver yields the remote address of every TCP/TLS
    /// connection that closes.
    pub async fn bind(
        settings: &TransportSettings,
    ) -> Result<(Self, mpsc::UnboundedReceiver<SocketAddr>), TransportError> {
        let cancel = CancellationToken::new();
        let layer = TransportLayer::new(cancel.clone());
        // TCP shares the UDP port; with `sip.listen` port 0 the port UDP got may be taken for
        // TCP, so try another.
        let mut attempts = if settings.listen.port() == 0 { 8 } else { 1 };
        let (udp, udp_addr, tcp_listener) = loop {
            attempts -= 1;
            let socket = udp_socket(settings.listen)
                .map_err(|err| bind_error("UDP", settings.listen)(err.into()))?;
            let udp =
                UdpConnection::from_socket(Arc::new(socket), None, Some(cancel.child_token()))
                    .await
                    .map_err(bind_error("UDP", settings.listen))?;
            let udp_addr = udp
                .get_addr()
                .get_socketaddr()
                .map_err(bind_error("UDP", settings.listen))?;
            match tcp_listen(udp_addr) {
                Ok(listener) => break (udp, udp_addr, listener),
                Err(err) if err.kind() == std::io::ErrorKind::AddrInUse && attempts > 0 => {}
                Err(err) => return Err(bind_error("TCP", udp_addr)(err.into())),
            }
        };
        layer.add_transport(udp.into());
        let tcp_addr = udp_addr;
        // What we read on inbound TCP connections reaches rsipstack through a channel
        // connection: its serve loop forwards our events as they are (the message, the TCP
        // connection to answer on, the remote address). It sits in rsipstack's connection table
        // under an address nobody sends to.
        let (conduit_tx, conduit_rx) = mpsc::unbounded_channel();
        let (unused_tx, _) = mpsc::unbounded_channel();
        let conduit = ChannelConnection::create_connection(
            conduit_rx,
            unused_tx,
            SipAddr {
                r#type: Some(rsipstack::sip::Transport::Tcp),
                addr: SocketAddr::from(([0, 0, 0, 0], 0)).into(),
            },
            Some(cancel.child_token()),
        )
        .await
        .map_err(bind_error("TCP", tcp_addr))?;
        layer.add_connection(SipConnection::Channel(conduit));
        tokio::spawn(
            InboundTcp {
                local: SipAddr {
                    r#type: Some(rsipstack::sip::Transport::Tcp),
                    addr: tcp_addr.into(),
                },
                events: conduit_tx,
                slots: Arc::new(Semaphore::new(MAX_INBOUND_STREAMS)),
                cancel: cancel.child_token(),
            }
            .accept(tcp_listener),
        );

        let ca_certs = Some(trust_anchors(settings.ca_file.as_ref())?);
        let tls_clients = TlsClients {
            config: TlsConfig {
                ca_certs: ca_certs.clone(),
                ..TlsConfig::default()
            },
            slots: std::sync::Mutex::new(HashMap::new()),
        };
        let mut tls_addr = None;
        if let Some(addr) = settings.tls_listen {
            let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) else {
                return Err(TransportError::TlsWithoutCertificate);
            };
            let config = TlsConfig {
                cert: Some(read(cert)?),
                key: Some(read(key)?),
                ca_certs: ca_certs.clone(),
                ..TlsConfig::default()
            };
            let listener = TlsListenerConnection::new(addr, None, config)
                .await
                .map_err(bind_error("TLS", addr))?;
            layer.add_transport(listener.into());
            tls_addr = Some(addr);
        }
        // Client side of TLS (for any connection rsipstack would open itself; ours are opened
        // by `tls_connection`): system roots plus the configured CA file.
        layer.set_tls_config(tls_clients.config.clone());

        let (closed_tx, closed) = mpsc::unbounded_channel();
        let endpoint = Arc::new(
            EndpointBuilder::new()
                .with_transport_layer(layer)
                .with_option(EndpointOption {
                    // Timer F (and B): how long a transaction waits for a final response.
                    t1x64: crate::policy::ATTEMPT_TIMEOUT,
                    ..EndpointOption::default()
                })
                .with_transport_inspector(Box::new(ClosedConnections(closed_tx)))
                .with_cancel_token(cancel.clone())
                .with_user_agent(USER_AGENT)
                .build(),
        );
        let serving = endpoint.clone();
        tokio::spawn(async move { serving.serve().await });
        Ok((
            Self {
                endpoint,
                udp: udp_addr,
                tcp: tcp_addr,
                tls: tls_addr,
                resolver: if settings.dns_servers.is_empty() {
                    rsipstack::resolver::SipResolver::new()
                } else {
                    rsipstack::resolver::SipResolver::with_nameservers(settings.dns_servers.clone())
                },
                policy: DestinationPolicy::new(
                    settings.deny_networks.clone(),
                    settings.http_listen,
                ),
                public_addr: settings.public_addr.clone(),
                tls_clients,
                cancel,
            },
            closed,
        ))
    }

    pub fn inner(&self) -> EndpointInnerRef {
        self.endpoint.inner.clone()
    }

    /// `host:port` others reach us at over `transport` (Contact).
    pub fn contact_hostport(&self, transport: Transport) -> String {
        if let Some(public) = &self.public_addr {
            return public.clone();
        }
        let addr = match transport {
            Transport::Udp => self.udp,
            Transport::Tcp => self.tcp,
            Transport::Tls => self.tls.unwrap_or(self.tcp),
        };
        addr.to_string()
    }

    /// Sends an RFC 5626 CRLF keepalive on the cached TCP/TLS connection(s) to `remote`.
    pub async fn keepalive(&self, transport: trunkline_core::model::Transport, remote: SocketAddr) {
        if transport == Transport::Tls {
            for connection in self.tls_clients.live_to(remote) {
                if let SipConnection::Tls(stream) = &connection {
                    if let Err(err) = stream.send_raw(KEEPALIVE_REQUEST).await {
                        tracing::debug!(%remote, error = %err, "keepalive failed");
                    }
                }
            }
            return;
        }
        let target = SipAddr {
            r#type: Some(rsipstack::sip::Transport::Tcp),
            addr: remote.into(),
        };
        let Ok((connection, _)) = self
            .endpoint
            .inner
            .transport_layer
            .lookup(&target, None)
            .await
        else {
            return;
        };
        if let SipConnection::Tcp(stream) = &connection {
            if let Err(err) = stream.send_raw(KEEPALIVE_REQUEST).await {
                tracing::debug!(%remote, error = %err, "keepalive failed");
            }
        }
    }

    /// A TLS connection to `remote` whose certificate was verified for `name` (RFC 5922: the
    /// host of the URI being reached, not the address it resolved to): the live one opened
    /// for the same name and address, else a new one. Concurrent callers for one name and
    /// address share one handshake.
    pub async fn tls_connection(
        &self,
        name: &str,
        remote: SocketAddr,
    ) -> Result<SipConnection, rsipstack::Error> {
        let slot = self.tls_clients.slot(name, remote);
        let mut slot = slot.lock().await;
        if let Some(connection) = slot.as_ref().filter(|c| is_live(c)) {
            return Ok(connection.clone());
        }
        let target = SipAddr {
            r#type: Some(rsipstack::sip::Transport::Tls),
            addr: remote.into(),
        };
        let config = TlsConfig {
            sni_hostname: Some(name.to_owned()),
            ..self.tls_clients.config.clone()
        };
        let connection = SipConnection::Tls(
            TlsConnection::connect(
                &target,
                Some(&config),
                None,
                Some(self.cancel.child_token()),
            )
            .await?,
        );
        // rsipstack serves it (reads responses, reports its closing); its own table keys it by
        // address, but our lookups go through `slot`, keyed by name and address.
        self.endpoint
            .inner
            .transport_layer
            .add_connection(connection.clone());
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// The HTTP listener's bound address, refused as a destination from now on.
    pub fn set_http_listen(&self, addr: SocketAddr) {
        self.policy.set_http_listen(addr);
    }

    /// The configured public `host:port`, if any.
    pub fn public_addr(&self) -> Option<String> {
        self.public_addr.clone()
    }

    pub fn shutdown(&self) {
        self.cancel.cancel();
    }
}

fn bind_error(
    transport: &'static str,
    addr: SocketAddr,
) -> impl FnOnce(rsipstack::Error) -> TransportError {
    move |source| TransportError::Bind {
        transport,
        addr,
        source: Box::new(source),
    }
}

pub const USER_AGENT: &str = concat!("trunkline/", env!("CARGO_PKG_VERSION"));

/// The system's root certificates plus `sip.ca_file`, as one PEM bundle (rsipstack trusts
/// exactly what it is given).
fn trust_anchors(ca_file: Option<&PathBuf>) -> Result<Vec<u8>, TransportError> {
    use base64::Engine as _;
    let mut pem = Vec::new();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::warn!(%error, "skipping an unreadable system root certificate");
    }
    for cert in native.certs {
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        let encoded = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        for line in encoded.as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    if let Some(path) = ca_file {
        pem.extend_from_slice(&read(path)?);
        pem.push(b'\n');
    }
    Ok(pem)
}

fn read(path: &PathBuf) -> Result<Vec<u8>, TransportError> {
    std::fs::read(path).map_err(|source| TransportError::ReadFile {
        path: path.clone(),
        source,
    })
}

/// A connection rsipstack has not retired (it cancels a connection's token when its read loop
/// ends or a write fails).
fn is_live(connection: &SipConnection) -> bool {
    connection
        .cancel_token()
        .is_none_or(|token| !token.is_cancelled())
}

/// Our TLS client connections, by the name verified and the address.
struct TlsClients {
    config: TlsConfig,
    #[allow(clippy::type_complexity)]
    slots: std::sync::Mutex<
        HashMap<(String, SocketAddr), Arc<tokio::sync::Mutex<Option<SipConnection>>>>,
    >,
}

impl TlsClients {
    fn slot(
        &self,
        name: &str,
        remote: SocketAddr,
    ) -> Arc<tokio::sync::Mutex<Option<SipConnection>>> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        // Forget dead connections now and then (the map only holds what registrations use).
        if slots.len() > 64 {
            slots.retain(|_, slot| {
                slot.try_lock()
                    .map_or(true, |c| c.as_ref().is_some_and(is_live))
            });
        }
        slots
            .entry((name.to_ascii_lowercase(), remote))
            .or_default()
            .clone()
    }

    fn live_to(&self, remote: SocketAddr) -> Vec<SipConnection> {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .iter()
            .filter(|((_, addr), _)| *addr == remote)
            .filter_map(|(_, slot)| slot.try_lock().ok()?.clone())
            .filter(is_live)
            .collect()
    }
}

// --- inbound TCP --------------------------------------------------------------------------

/// Largest SIP message read from a stream (headers and body), as rsipstack's own limit.
pub const MAX_STREAM_MESSAGE: usize = 65_535;
/// Inbound TCP connections open at once; more are closed as they are accepted.
pub const MAX_INBOUND_STREAMS: usize = 1024;
/// A message must be complete this long after its first byte (and a new connection must
/// deliver its first message within it), so a peer trickling an endless header or holding
/// connections open without a word does not keep them.
pub const MESSAGE_DEADLINE: Duration = Duration::from_secs(32);
/// A connection that has spoken is closed after this long without a byte (rsipstack's
/// default for its own streams; RFC 5626 keepalives come far more often).
pub const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
const READ_CHUNK: usize = 4096;

/// Bytes of datagrams the kernel may queue for our UDP socket while the SIP thread is busy (a
/// burst of REGISTERs, the park pause): asked for at bind, capped by the kernel at
/// `net.core.rmem_max`. With Linux's default (208 KiB) bursts of a few thousand REGISTERs a
/// second already lost datagrams, which the senders then retransmit.
const UDP_RECEIVE_BUFFER: usize = 4 << 20;

/// The UDP socket, bound, with [`UDP_RECEIVE_BUFFER`] asked for (rsipstack's own bind leaves
/// the default).
fn udp_socket(addr: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(err) = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER) {
        tracing::debug!(error = %err, "cannot enlarge the SIP UDP receive buffer");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(socket.into())
}

fn tcp_listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv6() {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Accepts inbound TCP connections and reads SIP from them; see the module documentation.
struct InboundTcp {
    local: SipAddr,
    /// Into rsipstack (through the channel connection).
    events: TransportSender,
    slots: Arc<Semaphore>,
    cancel: CancellationToken,
}

static REFUSED_STREAMS: AtomicU64 = AtomicU64::new(0);

impl InboundTcp {
    async fn accept(self, listener: TcpListener) {
        let this = Arc::new(self);
        loop {
            let accepted = tokio::select! {
                () = this.cancel.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, remote) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, say: do not spin on it.
                    tracing::warn!(error = %err, "cannot accept a SIP TCP connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = this.slots.clone().try_acquire_owned() else {
                if REFUSED_STREAMS
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(1000)
                {
                    tracing::warn!(
                        %remote,
                        limit = MAX_INBOUND_STREAMS,
                        "too many inbound SIP TCP connections; closing new ones"
                    );
                }
                continue;
            };
            // One task per connection: whatever happens in it ends that connection only.
            tokio::spawn(this.clone().serve(stream, remote, permit));
        }
    }

    async fn serve(
        self: Arc<Self>,
        stream: TcpStream,
        remote: SocketAddr,
        _slot: OwnedSemaphorePermit,
    ) {
        let _ = stream.set_nodelay(true);
        let connection = match TcpConnection::from_stream(
            stream,
            self.local.clone(),
            Some(self.cancel.child_token()),
        ) {
            Ok(connection) => connection,
            Err(err) => {
                tracing::debug!(%remote, error = %err, "cannot take an inbound TCP connection");
                return;
            }
        };
        let Some(mut reader) = connection.inner.read_half.lock().await.take() else {
            return;
        };
        let sip = SipConnection::Tcp(connection.clone());
        let from = connection.get_remote_addr().clone();
        if self.events.send(TransportEvent::New(sip.clone())).is_err() {
            return;
        }
        let why = tokio::select! {
            () = self.cancel.cancelled() => "shutting down",
            why = self.read_loop(&mut reader, &connection, &sip, &from, remote) => why,
        };
        tracing::debug!(%remote, why, "inbound SIP TCP connection closed");
        if let Some(token) = connection.cancel_token() {
            token.cancel();
        }
        let _ = connection.close().await;
        let _ = self.events.send(TransportEvent::Closed(sip));
    }

    /// Reads until the peer closes, misbehaves or goes quiet; says why it stopped.
    async fn read_loop(
        &self,
        reader: &mut tokio::io::ReadHalf<TcpStream>,
        connection: &TcpConnection,
        sip: &SipConnection,
        from: &SipAddr,
        remote: SocketAddr,
    ) -> &'static str {
        let mut buffer = BytesMut::new();
        // The first message is due MESSAGE_DEADLINE after the connection opens.
        let mut message_due = Some(tokio::time::Instant::now() + MESSAGE_DEADLINE);
        loop {
            loop {
                match frame(&mut buffer) {
                    Frame::Incomplete => break,
                    Frame::Invalid(why) => return why,
                    Frame::Ping => {
                        if connection.send_raw(KEEPALIVE_RESPONSE).await.is_err() {
                            return "write failed";
                        }
                        message_due = None;
                    }
                    Frame::Pong => message_due = None,
                    Frame::Message(bytes) => {
                        message_due = None;
                        match parse(&bytes, remote) {
                            Ok(message) => {
                                let event =
                                    TransportEvent::Incoming(message, sip.clone(), from.clone());
                                if self.events.send(event).is_err() {
                                    return "shutting down";
                                }
                            }
                            // The framing held (the length was right), so carry on.
                            Err(why) => {
                                tracing::debug!(%remote, why, "dropped an unparsable SIP message");
                            }
                        }
                    }
                }
            }
            if !buffer.is_empty() && message_due.is_none() {
                message_due = Some(tokio::time::Instant::now() + MESSAGE_DEADLINE);
            }
            let deadline =
                message_due.unwrap_or_else(|| tokio::time::Instant::now() + STREAM_IDLE_TIMEOUT);
            buffer.reserve(READ_CHUNK);
            let read = tokio::time::timeout_at(deadline, reader.read_buf(&mut buffer)).await;
            match read {
                Err(_) if message_due.is_some() => return "no complete message in time",
                Err(_) => return "idle",
                Ok(Ok(0)) => return "closed by the peer",
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return "read failed",
            }
        }
    }
}

/// rsipstack's parse and Via update (`received`/`rport`) of one framed message, with any panic
/// in them contained to this message.
fn parse(bytes: &[u8], remote: SocketAddr) -> Result<rsipstack::sip::SipMessage, &'static str> {
    let parsed = std::panic::catch_unwind(|| {
        let message = rsipstack::sip::SipMessage::try_from(bytes).ok()?;
        SipConnection::update_msg_received(message, remote, rsipstack::sip::Transport::Tcp).ok()
    });
    match parsed {
        Ok(Some(message)) => Ok(message),
        Ok(None) => Err("not a SIP message"),
        Err(_) => Err("the SIP parser panicked"),
    }
}

/// What the front of a stream's buffer holds.
#[derive(Debug, PartialEq, Eq)]
enum Frame {
    /// A whole message (headers and `Content-Length` bytes of body), taken off the buffer.
    Message(BytesMut),
    /// RFC 5626 keepalive ping (CRLFCRLF), to answer with CRLF.
    Ping,
    /// RFC 5626 pong (CRLF), or a CRLF before a message (RFC 3261 §7.5).
    Pong,
    Incomplete,
    /// The stream cannot be read further (framing lost or limits exceeded).
    Invalid(&'static str),
}

/// Frames the next message off a stream (RFC 3261 §18.3: by `Content-Length`), never holding
/// more than [`MAX_STREAM_MESSAGE`] bytes of one message.
fn frame(buffer: &mut BytesMut) -> Frame {
    if buffer.starts_with(KEEPALIVE_REQUEST) {
        buffer.advance(KEEPALIVE_REQUEST.len());
        return Frame::Ping;
    }
    if buffer.starts_with(KEEPALIVE_RESPONSE) {
        if KEEPALIVE_REQUEST.starts_with(buffer) {
            // Perhaps a ping still arriving.
            return Frame::Incomplete;
        }
        buffer.advance(KEEPALIVE_RESPONSE.len());
        return Frame::Pong;
    }
    let window = &buffer[..buffer.len().min(MAX_STREAM_MESSAGE)];
    let Some(end) = find(window, b"\r\n\r\n") else {
        return if buffer.len() >= MAX_STREAM_MESSAGE {
            Frame::Invalid("headers longer than the message limit")
        } else {
            Frame::Incomplete
        };
    };
    let head_len = end + 4;
    let body_len = match content_length(&buffer[..end]) {
        Ok(length) => length,
        Err(why) => return Frame::Invalid(why),
    };
    let total = match usize::try_from(body_len)
        .ok()
        .and_then(|body| head_len.checked_add(body))
    {
        Some(total) if total <= MAX_STREAM_MESSAGE => total,
        _ => return Frame::Invalid("message longer than the message limit"),
    };
    if buffer.len() < total {
        return Frame::Incomplete;
    }
    Frame::Message(buffer.split_to(total))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The `Content-Length` (or compact `l`) of a header block: 0 when absent; every such header
/// must agree and be plain digits.
fn content_length(head: &[u8]) -> Result<u64, &'static str> {
    let mut found: Option<u64> = None;
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = line[colon + 1..].trim_ascii();
        if value.is_empty() || value.len() > 10 || !value.iter().all(u8::is_ascii_digit) {
            return Err("invalid Content-Length");
        }
        let length: u64 = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or("invalid Content-Length")?;
        if found.is_some_and(|previous| previous != length) {
            return Err("conflicting Content-Length headers");
        }
        found = Some(length);
    }
    Ok(found.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn options(extra: &str, body: &str) -> String {
        format!(
            "OPTIONS sip:t@127.0.0.1 SIP/2.0\r\n\
             Via: SIP/2.0/TCP 127.0.0.1:4000;branch=z9hG4bK{}\r\n\
             Max-Forwards: 70\r\nTo: <sip:t@127.0.0.1>\r\nFrom: <sip:f@127.0.0.1>;tag=1\r\n\
             Call-ID: {}@test\r\nCSeq: 1 OPTIONS\r\n{extra}\r\n{body}",
            rand::random::<u64>(),
            rand::random::<u64>(),
        )
    }

    fn buffer(text: &str) -> BytesMut {
        BytesMut::from(text.as_bytes())
    }

    #[test]
    fn frames_by_content_length_across_reads() {
        let message = options("Content-Length: 5\r\n", "hello");
        let mut buf = BytesMut::new();
        for (i, byte) in message.bytes().enumerate() {
            buf.extend_from_slice(&[byte]);
            let framed = frame(&mut buf);
            if i + 1 < message.len() {
                assert_eq!(framed, Frame::Incomplete, "at {i}");
            } else {
                assert_eq!(framed, Frame::Message(buffer(&message)));
            }
        }
        // Two at once, compact form, spaces before the colon, no Content-Length at all.
        let first = options("l:3\r\n", "abc");
        let second = options("Content-Length :  0 \r\n", "");
        let third = options("", "");
        let mut buf = buffer(&format!("{first}{second}{third}"));
        assert_eq!(frame(&mut buf), Frame::Message(buffer(&first)));
        assert_eq!(frame(&mut buf), Frame::Message(buffer(&second)));
        assert_eq!(frame(&mut buf), Frame::Message(buffer(&third)));
        assert!(buf.is_empty());
    }

    #[test]
    fn keepalives() {
        let mut buf = buffer("\r\n\r\n\r\n");
        assert_eq!(frame(&mut buf), Frame::Ping);
        assert_eq!(frame(&mut buf), Frame::Incomplete, "CRLF: perhaps a ping");
        buf.extend_from_slice(b"\r\n");
        assert_eq!(frame(&mut buf), Frame::Ping);
        let message = options("", "");
        let mut buf = buffer(&format!("\r\n{message}"));
        assert_eq!(frame(&mut buf), Frame::Pong);
        assert_eq!(frame(&mut buf), Frame::Message(buffer(&message)));
    }

    #[test]
    fn absurd_lengths_end_the_stream_instead_of_overflowing() {
        for value in [
            "18446744073709551615",
            "18446744073709551600",
            "99999999999",
            "65536",
            "-1",
            "+5",
            "0x10",
            "1 2",
            "",
        ] {
            let mut buf = buffer(&options(&format!("Content-Length: {value}\r\n"), ""));
            assert!(
                matches!(frame(&mut buf), Frame::Invalid(_)),
                "Content-Length: {value}"
            );
        }
        let mut buf = buffer(&options("Content-Length: 1\r\nl: 2\r\n", "ab"));
        assert_eq!(
            frame(&mut buf),
            Frame::Invalid("conflicting Content-Length headers")
        );
        // A body that would take the message over the limit.
        let mut buf = buffer(&options("Content-Length: 65500\r\n", ""));
        assert!(matches!(frame(&mut buf), Frame::Invalid(_)));
    }

    #[test]
    fn an_endless_header_is_cut_off_at_the_limit() {
        let mut buf = buffer("OPTIONS sip:t@127.0.0.1 SIP/2.0\r\nX-Long: ");
        while buf.len() < MAX_STREAM_MESSAGE - 1 {
            buf.extend_from_slice(&[b'a'; 1000]);
            if buf.len() < MAX_STREAM_MESSAGE {
                assert_eq!(frame(&mut buf), Frame::Incomplete);
            }
        }
        buf.extend_from_slice(b"aaaa");
        assert_eq!(
            frame(&mut buf),
            Frame::Invalid("headers longer than the message limit")
        );
    }

    #[test]
    fn random_bytes_never_panic_the_framer_or_the_parser() {
        let seed = options("Content-Length: 4\r\n", "abcd");
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut bytes = seed.as_bytes().to_vec();
            for _ in 0..(next() % 8) {
                let at = (next() as usize) % (bytes.len() + 1);
                match next() % 4 {
                    0 if at < bytes.len() => bytes[at] = next() as u8,
                    1 => bytes.truncate(at),
                    2 => bytes.splice(at..at, *b"\r\n").for_each(drop),
                    _ => bytes.splice(at..at, *b"9999999999:").for_each(drop),
                }
            }
            let mut buf = BytesMut::from(&bytes[..]);
            while let Frame::Message(message) = frame(&mut buf) {
                let _ = parse(&message, "127.0.0.1:5000".parse().unwrap());
            }
            assert!(buf.len() <= bytes.len());
        }
    }

    fn settings() -> TransportSettings {
        TransportSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            ca_file: None,
            public_addr: None,
            dns_servers: Vec::new(),
            deny_networks: Vec::new(),
            http_listen: None,
        }
    }

    async fn answer(stream: &mut TcpStream) -> String {
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
                .await
                .expect("an answer within 5 s")
                .unwrap();
            assert!(n > 0, "closed without an answer");
            got.extend_from_slice(&chunk[..n]);
            if got.windows(4).any(|w| w == b"\r\n\r\n") {
                return String::from_utf8_lossy(&got).into_owned();
            }
        }
    }

    #[tokio::test]
    async fn an_overflowing_content_length_closes_that_connection_only() {
        let (sip, _closed) = SipEndpoint::bind(&settings()).await.unwrap();
        // What the node's dispatcher does for OPTIONS.
        let mut incoming = sip.endpoint.incoming_transactions().unwrap();
        tokio::spawn(async move {
            while let Some(mut tx) = incoming.recv().await {
                let _ = tx.reply(rsipstack::sip::StatusCode::OK).await;
            }
        });
        let mut hostile = TcpStream::connect(sip.tcp).await.unwrap();
        hostile
            .write_all(options("Content-Length: 18446744073709551615\r\n", "").as_bytes())
            .await
            .unwrap();
        // rsipstack's own framing overflowed here: its read task died and the socket stayed
        // open for good. Ours says no and closes the connection.
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), hostile.read_to_end(&mut rest))
            .await
            .expect("the hostile connection is closed");
        assert!(read.is_ok() && rest.is_empty(), "{read:?} {rest:?}");
        // Everyone else is still answered, over a connection that sent a keepalive first.
        let mut client = TcpStream::connect(sip.tcp).await.unwrap();
        client.write_all(b"\r\n\r\n").await.unwrap();
        let mut pong = [0u8; 2];
        client.read_exact(&mut pong).await.unwrap();
        assert_eq!(&pong, b"\r\n");
        client
            .write_all(options("Content-Length: 0\r\n", "").as_bytes())
            .await
            .unwrap();
        let reply = answer(&mut client).await;
        assert!(reply.starts_with("SIP/2.0 200"), "{reply}");
        sip.shutdown();
    }
}
