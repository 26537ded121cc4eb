//! The process's one SIP endpoint: UDP and TCP listeners on `sip.listen` (same port), an
//! optional TLS listener on `sip.tls_listen`, and a TLS client configuration that trusts the
//! system roots plus `sip.ca_file`. rsipstack provides the transports, connection reuse (one
//! connection per remote address, shared by every registration to it) and transactions.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rsipstack::transaction::endpoint::{EndpointInnerRef, EndpointOption, TransportEventInspector};
use rsipstack::transport::connection::{TransportEvent, KEEPALIVE_REQUEST};
use rsipstack::transport::stream::StreamConnection;
use rsipstack::transport::tcp_listener::TcpListenerConnection;
use rsipstack::transport::tls::{TlsConfig, TlsListenerConnection};
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::TransportLayer;
use rsipstack::transport::{SipAddr, SipConnection};
use rsipstack::EndpointBuilder;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use trunkline_core::model::Transport;

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
}

/// The running endpoint and the addresses it is reachable at.
pub struct SipEndpoint {
    pub endpoint: Arc<rsipstack::transaction::endpoint::Endpoint>,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub tls: Option<SocketAddr>,
    /// RFC 3263 resolver (SRV, then A/AAAA).
    pub resolver: rsipstack::resolver::SipResolver,
    public_addr: Option<String>,
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
        let udp =
            UdpConnection::create_connection(settings.listen, None, Some(cancel.child_token()))
                .await
                .map_err(bind_error("UDP", settings.listen))?;
        let udp_addr = udp
            .get_addr()
            .get_socketaddr()
            .map_err(bind_error("UDP", settings.listen))?;
        layer.add_transport(udp.into());
        // TCP shares the UDP port (so `sip.listen` with port 0 still gives one port for both).
        let tcp_addr = udp_addr;
        let tcp = TcpListenerConnection::new(tcp_addr, None)
            .await
            .map_err(bind_error("TCP", tcp_addr))?;
        layer.add_transport(tcp.into());

        let ca_certs = Some(trust_anchors(settings.ca_file.as_ref())?);
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
        // Client side of TLS: system roots plus the configured CA file.
        layer.set_tls_config(TlsConfig {
            ca_certs,
            ..TlsConfig::default()
        });

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
        answer_incoming_requests(&endpoint);
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
                public_addr: settings.public_addr.clone(),
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

    /// Sends an RFC 5626 CRLF keepalive on the cached TCP/TLS connection to `remote` (none is
    /// opened for it).
    pub async fn keepalive(&self, transport: trunkline_core::model::Transport, remote: SocketAddr) {
        let target = SipAddr {
            r#type: Some(match transport {
                trunkline_core::model::Transport::Tls => rsipstack::sip::Transport::Tls,
                _ => rsipstack::sip::Transport::Tcp,
            }),
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
        let sent = match &connection {
            SipConnection::Tcp(stream) => stream.send_raw(KEEPALIVE_REQUEST).await,
            SipConnection::Tls(stream) => stream.send_raw(KEEPALIVE_REQUEST).await,
            _ => Ok(()),
        };
        if let Err(err) = sent {
            tracing::debug!(%remote, error = %err, "keepalive failed");
        }
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

/// Requests sent to us (OPTIONS keepalives from registrars, stray INVITEs): OPTIONS gets
/// `200 OK`, everything else `501 Not Implemented` until the inbound registrar exists.
fn answer_incoming_requests(endpoint: &Arc<rsipstack::transaction::endpoint::Endpoint>) {
    let Ok(mut incoming) = endpoint.incoming_transactions() else {
        return;
    };
    tokio::spawn(async move {
        while let Some(mut tx) = incoming.recv().await {
            let code = if tx.original.method == rsipstack::sip::Method::Options {
                rsipstack::sip::StatusCode::OK
            } else {
                rsipstack::sip::StatusCode::NotImplemented
            };
            if let Err(err) = tx.reply(code).await {
                tracing::debug!(error = %err, "cannot answer an incoming SIP request");
            }
        }
    });
}
