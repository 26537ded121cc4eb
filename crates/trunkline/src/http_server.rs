//! The HTTP server loop: accepts connections and serves the router over HTTP/1.1 with a
//! header read timeout, and at shutdown drains for at most a deadline.
//!
//! `axum::serve` offers neither: it configures no timer, so hyper's header read timeout is
//! off (a client that sends half a request line holds its connection for ever), and its
//! graceful shutdown waits for every connection, so one stalled client held the process. This
//! is the same loop over hyper-util's connection builder and graceful-shutdown watcher, with
//! those two knobs set.

use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How long a client may take to send a request's headers (also an idle keep-alive
/// connection's next request) before its connection is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` completes; the connections still open are
/// handed back to be drained ([`Drain::within`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
) -> Drain {
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(error = %err, "cannot accept an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(
            app.clone()
                .map_request(|request: hyper::Request<Incoming>| request.map(Body::new)),
        );
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    Drain(graceful)
}

/// The connections open when the server stopped accepting.
pub struct Drain(GracefulShutdown);

impl Drain {
    /// Lets requests in flight finish for at most `deadline` (idle keep-alive connections
    /// close at once); what is still running then is abandoned.
    pub async fn within(self, deadline: Duration) {
        if tokio::time::timeout(deadline, self.0.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                deadline_secs = deadline.as_secs(),
                "HTTP requests still running at the shutdown deadline; closing them"
            );
        }
    }
}
