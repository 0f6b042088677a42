//! [`serve_prometheus`]: one call to serve `/metrics` (feature
//! `prometheus`).

use std::net::SocketAddr;
use std::thread;

use cache_core::{Error, ErrorKind, Result};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};
use tokio::runtime;

use crate::emit::describe_metrics;

/// Installs the Prometheus recorder as the process's `metrics` recorder and
/// serves its text format over HTTP on `addr` (any path answers, `/metrics`
/// included), returning a handle that can also
/// [`render`](PrometheusHandle::render) it directly.
///
/// The listener is a Tokio task. Called inside a Tokio runtime, it is
/// spawned onto that runtime, which must keep running for scrapes to be
/// answered (a current-thread runtime blocked elsewhere answers none);
/// called outside one, a background thread runs a runtime of its own for
/// it. Metrics reach the endpoint only when written: call
/// [`Analytics::emit`](crate::Analytics::emit) or
/// [`emit_metrics`](crate::emit_metrics) before scrapes, or on a timer.
///
/// # Errors
///
/// [`ErrorKind::Unavailable`] if `addr` cannot be bound or the runtime
/// cannot start, and [`ErrorKind::InvalidConfig`] if a `metrics` recorder
/// is already installed (there is one per process; the listener started
/// for this call then stays up, serving an empty page).
pub fn serve_prometheus(addr: SocketAddr) -> Result<PrometheusHandle> {
    let builder = PrometheusBuilder::new().with_http_listener(addr);
    let recorder = if let Ok(handle) = runtime::Handle::try_current() {
        let (recorder, exporter) = {
            let _entered = handle.enter();
            builder.build().map_err(|e| build_error(e, addr))?
        };
        handle.spawn(exporter);
        recorder
    } else {
        let rt = runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| unavailable("start the Prometheus exporter's runtime", e))?;
        let (recorder, exporter) = {
            let _entered = rt.enter();
            builder.build().map_err(|e| build_error(e, addr))?
        };
        thread::Builder::new()
            .name("tiercache-prometheus".into())
            .spawn(move || rt.block_on(exporter))
            .map_err(|e| unavailable("start the Prometheus exporter's thread", e))?;
        recorder
    };
    let handle = recorder.handle();
    // The error holds the refused recorder, which is not worth keeping
    // alive as a cause: the message says all there is.
    metrics::set_global_recorder(recorder).map_err(|_| {
        Error::new(
            ErrorKind::InvalidConfig,
            "a metrics recorder is already installed in this process",
        )
    })?;
    describe_metrics();
    Ok(handle)
}

fn build_error(e: BuildError, addr: SocketAddr) -> Error {
    unavailable(format!("serve Prometheus metrics on {addr}"), e)
}

fn unavailable(
    what: impl Into<String>,
    e: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::new(ErrorKind::Unavailable, format!("could not {}", what.into())).with_source(e)
}
