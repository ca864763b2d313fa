//! `Listen "<address>" { }` as Momentum writes it, parsed into a typed
//! address, bound with the listener's socket options, and served as one stream
//! of connections however many sockets there are.
//!
//! Address forms: `*:p` and `:p` (every IPv4 address), `ip:p`, `[v6]:p`,
//! `[*]:p` and `[::]:p` (every IPv6 address, IPv6 only so it can sit beside
//! `*:p`), and an absolute path (a Unix socket).

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use futures::stream::{SelectAll, StreamExt};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::task::JoinSet;
use tonic::transport::server::Connected;

use crate::tls::{ClientAuth, ListenerTlsFiles, PeerIdentity, ServerTls, TlsError};

/// Where one `Listen` binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP socket address (`0.0.0.0:p` and `[::]:p` for the wildcard forms).
    Tcp(SocketAddr),
    /// A Unix domain socket at this absolute path.
    Unix(PathBuf),
}

/// Why a `Listen` address could not be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("bad listen address `{address}`: {reason}")]
pub struct AddrError {
    /// The address as written.
    pub address: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl ListenAddr {
    /// Parses a Momentum listen address.
    pub fn parse(text: &str) -> Result<Self, AddrError> {
        let bad = |reason| AddrError {
            address: text.to_owned(),
            reason,
        };
        if text.starts_with('/') {
            return Ok(Self::Unix(PathBuf::from(text)));
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, port) = rest
                .split_once("]:")
                .ok_or_else(|| bad("expected `[address]:port`"))?;
            let ip = match host {
                "*" | "::" => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                _ => IpAddr::V6(host.parse().map_err(|_| bad("not an IPv6 address"))?),
            };
            (ip, port)
        } else {
            let (host, port) = text
                .rsplit_once(':')
                .ok_or_else(|| bad("expected `address:port`, `:port` or an absolute path"))?;
            let ip = match host {
                "" | "*" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                _ => host
                    .parse()
                    .map_err(|_| bad("not an IP address (host names are not bound)"))?,
            };
            (ip, port)
        };
        let port: u16 = port
            .parse()
            .map_err(|_| bad("port is not a number from 0 to 65535"))?;
        Ok(Self::Tcp(SocketAddr::new(host, port)))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "{addr}"),
            Self::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Socket options of one `Listen` (after scope fallback from its listener).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenOptions {
    /// `listen(2)` backlog (`listen_backlog`, default 500).
    pub backlog: u32,
    /// Set TCP_NODELAY on accepted sockets (`disable_nagle_algorithm`; default
    /// true, unlike Momentum: Nagle with delayed ACKs stalls HTTP/2 for 40 ms).
    pub nodelay: bool,
    /// SO_RCVBUF in bytes; 0 leaves the OS default (`tcp_recv_buffer_size`).
    pub recv_buffer: usize,
    /// SO_SNDBUF in bytes; 0 leaves the OS default (`tcp_send_buffer_size`).
    pub send_buffer: usize,
    /// Permission bits of a Unix socket file (`file_mode`, default 0660).
    pub file_mode: u32,
}

impl Default for ListenOptions {
    fn default() -> Self {
        Self {
            backlog: 500,
            nodelay: true,
            recv_buffer: 0,
            send_buffer: 0,
            file_mode: 0o660,
        }
    }
}

/// A socket could not be bound; the message names the address.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The address that failed.
    pub addr: ListenAddr,
    /// The operating system's reason.
    #[source]
    pub source: io::Error,
}

/// One bound listening socket, plaintext or TLS.
#[derive(Debug)]
pub struct BoundListener {
    kind: ListenerKind,
    nodelay: bool,
    tls: Option<ServerTls>,
}

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS handshakes in progress on one listener before it stops accepting
/// until one ends (so a flood of silent connections cannot grow memory).
const MAX_HANDSHAKES: usize = 1024;

#[derive(Debug)]
enum ListenerKind {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl BoundListener {
    /// The address actually bound (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> io::Result<ListenAddr> {
        match &self.kind {
            ListenerKind::Tcp(l) => l.local_addr().map(ListenAddr::Tcp),
            ListenerKind::Unix(_, path) => Ok(ListenAddr::Unix(path.clone())),
        }
    }

    /// Wraps an already bound TCP listener (tests bind port 0 themselves).
    pub fn from_tcp(listener: TcpListener) -> Self {
        Self {
            kind: ListenerKind::Tcp(listener),
            nodelay: true,
            tls: None,
        }
    }

    /// Serves TLS on this socket: every connection is handshaken with `tls`
    /// before gRPC sees it.
    pub fn with_tls(self, tls: ServerTls) -> Self {
        Self {
            tls: Some(tls),
            ..self
        }
    }

    /// Whether this socket serves TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    async fn accept_plain(&self) -> io::Result<Conn> {
        match &self.kind {
            ListenerKind::Tcp(l) => l.accept().await.map(|(stream, _)| {
                if self.nodelay {
                    let _ = stream.set_nodelay(true);
                }
                Conn::Tcp(stream)
            }),
            ListenerKind::Unix(l, _path) => l.accept().await.map(|(stream, _)| Conn::Unix(stream)),
        }
    }

    fn into_stream(self) -> Pin<Box<dyn Stream<Item = io::Result<Conn>> + Send>> {
        match self.tls.clone() {
            None => Box::pin(futures::stream::unfold(self, |l| async move {
                let conn = l.accept_plain().await;
                Some((conn, l))
            })),
            Some(tls) => {
                let state = (self, tls, JoinSet::new());
                Box::pin(futures::stream::unfold(
                    state,
                    |(l, tls, mut handshakes)| async move {
                        let conn = l.accept_tls(&tls, &mut handshakes).await;
                        Some((conn, (l, tls, handshakes)))
                    },
                ))
            }
        }
    }

    /// The next connection whose TLS handshake succeeded. Handshakes run
    /// concurrently (a slow client holds up no one); a failed one is logged
    /// with the client's address and reason, and the connection closed.
    async fn accept_tls(
        &self,
        tls: &ServerTls,
        handshakes: &mut JoinSet<Result<Conn, HandshakeFailure>>,
    ) -> io::Result<Conn> {
        loop {
            tokio::select! {
                accepted = self.accept_plain(), if handshakes.len() < MAX_HANDSHAKES => {
                    let raw = accepted?;
                    let acceptor = tls.acceptor().clone();
                    handshakes.spawn(async move {
                        let remote = raw.remote();
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(raw)).await {
                            Ok(Ok(stream)) => Ok(Conn::Tls(Box::new(stream))),
                            Ok(Err(err)) => Err(HandshakeFailure { remote, reason: err.to_string() }),
                            Err(_) => Err(HandshakeFailure {
                                remote,
                                reason: format!("no handshake within {HANDSHAKE_TIMEOUT:?}"),
                            }),
                        }
                    });
                }
                Some(done) = handshakes.join_next(), if !handshakes.is_empty() => match done {
                    Ok(Ok(conn)) => return Ok(conn),
                    Ok(Err(failure)) => tracing::info!(
                        remote = ?failure.remote,
                        reason = %failure.reason,
                        "TLS handshake refused"
                    ),
                    Err(join) => tracing::warn!(error = %join, "TLS handshake task failed"),
                },
            }
        }
    }
}

/// A TLS handshake that did not complete.
#[derive(Debug)]
struct HandshakeFailure {
    remote: Option<SocketAddr>,
    reason: String,
}

/// Binds one listen address with its options.
pub fn bind(addr: &ListenAddr, options: &ListenOptions) -> Result<BoundListener, BindError> {
    let fail = |source| BindError {
        addr: addr.clone(),
        source,
    };
    match addr {
        ListenAddr::Tcp(sock) => {
            let socket = Socket::new(
                Domain::for_address(*sock),
                Type::STREAM,
                Some(Protocol::TCP),
            )
            .map_err(fail)?;
            if sock.is_ipv6() {
                socket.set_only_v6(true).map_err(fail)?;
            }
            socket.set_reuse_address(true).map_err(fail)?;
            socket.set_nonblocking(true).map_err(fail)?;
            if options.recv_buffer > 0 {
                socket
                    .set_recv_buffer_size(options.recv_buffer)
                    .map_err(fail)?;
            }
            if options.send_buffer > 0 {
                socket
                    .set_send_buffer_size(options.send_buffer)
                    .map_err(fail)?;
            }
            socket.bind(&(*sock).into()).map_err(fail)?;
            let backlog = i32::try_from(options.backlog.max(1)).unwrap_or(i32::MAX);
            socket.listen(backlog).map_err(fail)?;
            let listener = TcpListener::from_std(socket.into()).map_err(fail)?;
            Ok(BoundListener {
                kind: ListenerKind::Tcp(listener),
                nodelay: options.nodelay,
                tls: None,
            })
        }
        ListenAddr::Unix(path) => {
            // A stale socket file from an earlier run would make bind fail.
            if let Ok(meta) = std::fs::symlink_metadata(path) {
                use std::os::unix::fs::FileTypeExt;
                if meta.file_type().is_socket() {
                    let _ = std::fs::remove_file(path);
                }
            }
            let listener = UnixListener::bind(path).map_err(fail)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(options.file_mode))
                .map_err(fail)?;
            Ok(BoundListener {
                kind: ListenerKind::Unix(listener, path.clone()),
                nodelay: false,
                tls: None,
            })
        }
    }
}

/// Every connection accepted on any of `listeners`, as one stream for
/// `serve_with_incoming_shutdown`. Accept errors are yielded and logged by tonic.
pub fn incoming(listeners: Vec<BoundListener>) -> impl Stream<Item = io::Result<Conn>> + Send {
    let mut all = SelectAll::new();
    for listener in listeners {
        all.push(listener.into_stream());
    }
    all.filter_map(|conn| async move {
        match conn {
            Ok(conn) => Some(Ok(conn)),
            Err(err) => {
                // A failed accept (e.g. EMFILE) must not end the server.
                tracing::warn!(error = %err, "accept failed");
                None
            }
        }
    })
}

/// An accepted connection on a TCP or Unix socket, plaintext or TLS.
#[derive(Debug)]
pub enum Conn {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix socket connection.
    Unix(UnixStream),
    /// A TLS session over either (handshake done).
    Tls(Box<tokio_rustls::server::TlsStream<Conn>>),
}

impl Conn {
    fn remote(&self) -> Option<SocketAddr> {
        match self {
            Conn::Tcp(s) => s.peer_addr().ok(),
            Conn::Unix(_) => None,
            Conn::Tls(s) => s.get_ref().0.remote(),
        }
    }
}

/// What tonic learns about a connection's peer (in each request's
/// extensions; [`PeerIdentity::of`] reads it).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The remote address of a TCP peer (`None` on a Unix socket).
    pub remote: Option<SocketAddr>,
    /// Plaintext, or TLS with or without a verified client certificate.
    pub identity: PeerIdentity,
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;
    fn connect_info(&self) -> ConnInfo {
        let identity = match self {
            Conn::Tcp(_) | Conn::Unix(_) => PeerIdentity::Plaintext,
            Conn::Tls(s) => match s.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                Some(leaf) => PeerIdentity::Certificate(leaf.clone().into_owned()),
                None => PeerIdentity::Anonymous,
            },
        };
        ConnInfo {
            remote: self.remote(),
            identity,
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Tcp(s) => s.is_write_vectored(),
            Conn::Unix(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_flush(cx),
            Conn::Unix(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(s: &str) -> ListenAddr {
        ListenAddr::Tcp(s.parse().unwrap())
    }

    #[test]
    fn parses_every_momentum_form() {
        assert_eq!(ListenAddr::parse("*:4802").unwrap(), tcp("0.0.0.0:4802"));
        assert_eq!(ListenAddr::parse(":4809").unwrap(), tcp("0.0.0.0:4809"));
        assert_eq!(
            ListenAddr::parse("10.0.0.1:25").unwrap(),
            tcp("10.0.0.1:25")
        );
        assert_eq!(ListenAddr::parse("[::1]:4802").unwrap(), tcp("[::1]:4802"));
        assert_eq!(ListenAddr::parse("[*]:4802").unwrap(), tcp("[::]:4802"));
        assert_eq!(ListenAddr::parse("[::]:4802").unwrap(), tcp("[::]:4802"));
        assert_eq!(
            ListenAddr::parse("/tmp/ec.sock").unwrap(),
            ListenAddr::Unix(PathBuf::from("/tmp/ec.sock"))
        );
    }

    #[test]
    fn refuses_malformed_addresses_with_a_reason() {
        for bad in [
            "4802",
            "host:4802",
            "*:port",
            "*:70000",
            "[::1]4802",
            "[zz]:1",
            "",
        ] {
            let err = ListenAddr::parse(bad).unwrap_err();
            assert_eq!(err.address, bad);
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[tokio::test]
    async fn bind_reports_the_address_in_use() {
        let first = bind(&tcp("127.0.0.1:0"), &ListenOptions::default()).unwrap();
        let taken = first.local_addr().unwrap();
        let err = bind(&taken, &ListenOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&taken.to_string()), "{msg}");
        assert!(msg.to_lowercase().contains("in use"), "{msg}");
    }

    #[tokio::test]
    async fn unix_socket_gets_its_file_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("service-kit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("l.sock");
        let opts = ListenOptions {
            file_mode: 0o600,
            ..Default::default()
        };
        let bound = bind(&ListenAddr::Unix(path.clone()), &opts).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(bound);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// One `Listen` as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpec {
    /// Where it binds.
    pub addr: ListenAddr,
    /// Its socket options.
    pub options: ListenOptions,
    /// `enable`: a disabled Listen is parsed and checked but not bound.
    pub enabled: bool,
    /// `tls_certificate`, `tls_key`, `tls_ca`, `tls_verify`: `None` is plaintext.
    pub tls: Option<ListenerTlsFiles>,
}

impl ListenSpec {
    /// A plaintext, enabled `Listen` on `addr` with default options.
    pub fn plain(addr: ListenAddr) -> Self {
        Self {
            addr,
            options: ListenOptions::default(),
            enabled: true,
            tls: None,
        }
    }
}

/// The TLS options of one `Listen` (or its listener scope): TLS is on when
/// `tls_certificate` and `tls_key` are set; `tls_verify` (default
/// `require`) needs `tls_ca` unless it is `no`.
fn read_listen_tls(
    listen: confparse::ScopeRef<'_>,
) -> Result<Option<ListenerTlsFiles>, confparse::Diagnostic> {
    use crate::tls::{located, non_empty, read_identity};
    let Some(identity) = read_identity(listen)? else {
        return Ok(None);
    };
    let verify_text = non_empty(listen, "tls_verify")?.unwrap_or_else(|| "require".to_owned());
    let verify = ClientAuth::parse(&verify_text).ok_or_else(|| {
        located(
            listen,
            "tls_verify",
            format!("tls_verify {verify_text:?} is not one of no, optional, require"),
        )
    })?;
    let ca = non_empty(listen, "tls_ca")?.map(PathBuf::from);
    if ca.is_none() && verify != ClientAuth::No {
        return Err(located(
            listen,
            "tls_certificate",
            format!(
                "TLS on Listen {:?} verifies client certificates (tls_verify = {}) but tls_ca is not set: \
                 set tls_ca to the CA of the client certificates, or tls_verify = no",
                listen.instance().unwrap_or_default(),
                verify_text.to_ascii_lowercase()
            ),
        ));
    }
    Ok(Some(ListenerTlsFiles {
        identity,
        ca,
        verify,
    }))
}

/// Reads every `Listen` of the listener scope `scope` (e.g.
/// `ECCluster_Listener`), with scope fallback for options. Errors point at the
/// offending value.
pub fn read_listens(
    root: confparse::ScopeRef<'_>,
    scope: &str,
) -> Result<Vec<ListenSpec>, confparse::Diagnostics> {
    use confparse::{Diagnostic, Diagnostics};
    let Some(listener) = root.scope(scope) else {
        return Ok(Vec::new());
    };
    let mut specs = Vec::new();
    let mut errors = Vec::new();
    for listen in listener.scopes("Listen") {
        let instance = listen.instance().unwrap_or_default();
        let addr = match ListenAddr::parse(instance) {
            Ok(addr) => addr,
            Err(err) => {
                errors.push(Diagnostic::error(err.to_string()).at(listen.location().clone()));
                continue;
            }
        };
        let read = || -> Result<ListenSpec, Diagnostic> {
            let size = |v: Option<i64>| v.map_or(0, |n| usize::try_from(n).unwrap_or(0));
            Ok(ListenSpec {
                addr: addr.clone(),
                enabled: listen.get_bool("enable")?.unwrap_or(true),
                options: ListenOptions {
                    backlog: listen
                        .get_int("listen_backlog")?
                        .map_or(500, |n| u32::try_from(n).unwrap_or(500)),
                    nodelay: listen.get_bool("disable_nagle_algorithm")?.unwrap_or(true),
                    recv_buffer: size(listen.get_int("tcp_recv_buffer_size")?),
                    send_buffer: size(listen.get_int("tcp_send_buffer_size")?),
                    file_mode: listen.get_octal("file_mode")?.unwrap_or(0o660),
                },
                tls: read_listen_tls(listen)?,
            })
        };
        match read() {
            Ok(spec) => specs.push(spec),
            Err(diag) => errors.push(diag),
        }
    }
    if errors.is_empty() {
        Ok(specs)
    } else {
        Err(Diagnostics(errors))
    }
}

/// Why a configured `Listen` could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The socket could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// Its TLS files could not be loaded.
    #[error("TLS for Listen {addr}: {source}")]
    Tls {
        /// The `Listen`.
        addr: ListenAddr,
        /// Which file, and why.
        #[source]
        source: TlsError,
    },
}

/// Binds one `Listen` and loads its TLS files, if any.
pub fn bind_spec(spec: &ListenSpec) -> Result<BoundListener, ListenError> {
    let tls = spec
        .tls
        .as_ref()
        .map(ServerTls::load)
        .transpose()
        .map_err(|source| ListenError::Tls {
            addr: spec.addr.clone(),
            source,
        })?;
    let bound = bind(&spec.addr, &spec.options)?;
    Ok(match tls {
        Some(tls) => bound.with_tls(tls),
        None => bound,
    })
}

/// Binds every enabled `Listen`; the first failure names its address (and
/// for TLS, the file).
pub fn bind_all(specs: &[ListenSpec]) -> Result<Vec<BoundListener>, ListenError> {
    specs.iter().filter(|s| s.enabled).map(bind_spec).collect()
}

/// A TLS `Listen` whose files a service also dials with has no `tls_ca`.
#[derive(Debug, thiserror::Error)]
#[error(
    "{scope} Listen {addr} has TLS but no tls_ca: this service dials its peers with the \
     same files and needs tls_ca to verify them"
)]
pub struct NoDialCa {
    /// The listener scope.
    pub scope: String,
    /// The `Listen`.
    pub addr: ListenAddr,
}

/// The client side of dialling as this listener is dialled: the TLS of the
/// first enabled TCP `Listen` as client files ([`ListenerTlsFiles::as_client`]),
/// `None` when that `Listen` is plaintext. Refused when it is TLS but has no
/// `tls_ca` to verify the other side with.
pub fn dial_tls(
    specs: &[ListenSpec],
    scope: &str,
) -> Result<Option<crate::tls::ClientTlsFiles>, NoDialCa> {
    let Some(first) = specs
        .iter()
        .find(|s| s.enabled && matches!(s.addr, ListenAddr::Tcp(_)))
    else {
        return Ok(None);
    };
    match &first.tls {
        None => Ok(None),
        Some(tls) => tls.as_client().map(Some).ok_or_else(|| NoDialCa {
            scope: scope.to_owned(),
            addr: first.addr.clone(),
        }),
    }
}
