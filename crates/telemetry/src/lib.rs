//! `molecule-telemetry`: process-wide logging and tracing for the binaries.
//!
//! Owns: the `tracing` subscriber (env filter, pretty or JSON lines on stderr, gathered and
//! written by a thread of their own, `writer`, so that no request waits on stderr) and, when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, an OTLP/HTTP span exporter (blocking reqwest client
//! with the SDK's batch processor: the pairing that does not panic inside tokio); and the
//! process's `metrics` recorder, rendered in the Prometheus text format on demand.
//!
//! Must not know: what the binaries do. Libraries only emit `tracing` events and spans.

use std::io::IsTerminal as _;
use std::sync::Arc;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// `molecule_http_request_duration_seconds`' buckets, in seconds.
pub const HTTP_DURATION_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
use molecule_config::{LogFormat, Telemetry};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};
pub use writer::LogFlush;

pub mod writer;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("RUST_LOG is not a valid filter: {0}")]
    Filter(String),
    #[error("OTEL_EXPORTER_OTLP_ENDPOINT: cannot build the OTLP exporter: {0}")]
    Exporter(String),
    #[error("a global tracing subscriber is already installed: {0}")]
    AlreadyInstalled(String),
}

/// Keeps the exporter and the log writer alive; call [`Guard::shutdown`] from a blocking
/// context at exit to flush pending spans, and drop what it returns last, to write the log
/// lines still queued.
pub struct Guard {
    provider: Option<SdkTracerProvider>,
    metrics: Option<PrometheusHandle>,
    logs: LogFlush,
    dropped_lines: writer::Dropped,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("exporting_spans", &self.provider.is_some())
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

/// Renders every metric recorded so far in the Prometheus text exposition format.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

impl Guard {
    /// Flushes and stops the exporter. Blocking: run it in `spawn_blocking`. Lines logged
    /// until the returned [`LogFlush`] is dropped are still written.
    pub fn shutdown(self) -> LogFlush {
        if let Some(p) = self.provider
            && let Err(e) = p.shutdown()
        {
            tracing::warn!(error = %e, "OpenTelemetry shutdown failed; some spans may be lost");
        }
        self.logs
    }

    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// The renderer for `/metrics`, when this process's recorder could be installed. It also
    /// reports `molecule_log_lines_dropped_total`: lines dropped because stderr's reader fell
    /// [`LOG_QUEUE_BYTES`] behind.
    pub fn metrics(&self) -> Option<MetricsRender> {
        let handle = self.metrics.clone()?;
        let dropped = self.dropped_lines.clone();
        Some(Arc::new(move || {
            metrics::counter!("molecule_log_lines_dropped_total").absolute(dropped.count());
            handle.render()
        }))
    }
}

/// Dependencies whose `info` lines describe their own plumbing once per request, quietened
/// unless `RUST_LOG` names them: rmcp logs three lines for every stateless MCP call ("Service
/// initialized", "input stream terminated", "serve finished").
const QUIET: &[(&str, &str)] = &[("rmcp", "warn")];

/// `RUST_LOG` plus a directive for each [`QUIET`] target the filter does not name itself.
fn filter_directives(rust_log: &str) -> String {
    let named = |target: &str| {
        rust_log.split(',').any(|d| {
            d.trim()
                .split(['=', ':', '['])
                .next()
                .is_some_and(|t| t == target || t.starts_with(&format!("{target}::")))
        })
    };
    let mut out = rust_log.trim().to_owned();
    for (target, level) in QUIET {
        if !named(target) {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(&format!("{target}={level}"));
        }
    }
    out
}

/// How many bytes of formatted lines may wait for stderr. Beyond that a line is dropped (and
/// counted) rather than stall the thread that logs it: a log reader that stops reading (a
/// full pipe, a stuck log shipper) must not stop the API.
pub const LOG_QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// Installs the global subscriber for `service`.
pub fn init(service: &str, cfg: &Telemetry) -> Result<Guard, TelemetryError> {
    let filter =
        EnvFilter::try_new(filter_directives(&cfg.rust_log)).map_err(|e| TelemetryError::Filter(e.to_string()))?;
    // Lines gather in a bounded buffer that a thread of their own writes (see `writer`): a
    // busy server makes one write for many lines, never one on the request's own thread.
    let (writer, dropped_lines, logs) = writer::spawn(std::io::stderr(), LOG_QUEUE_BYTES);
    let fmt = match cfg.molecule_log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_writer(writer)
            .boxed(),
        // Colour only for a person at a terminal: piped into a file, journald or
        // `cargo xtask up`, escape codes would end up in the stored lines.
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(writer)
            .boxed(),
    };
    let (otel, provider) = match &cfg.otel_exporter_otlp_endpoint {
        Some(endpoint) => {
            let name = cfg.otel_service_name.clone().unwrap_or_else(|| service.to_owned());
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
                .build()
                .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(Resource::builder().with_service_name(name.clone()).build())
                .build();
            let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer(name));
            (Some(layer), Some(provider))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|e| TelemetryError::AlreadyInstalled(e.to_string()))?;
    // Request durations as a histogram (aggregatable across replicas), not a summary.
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("molecule_http_request_duration_seconds".into()),
            HTTP_DURATION_BUCKETS,
        )
        .unwrap_or_else(|_| PrometheusBuilder::new());
    let metrics = match builder.install_recorder() {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "no metrics recorder: /metrics will answer 503");
            None
        }
    };
    Ok(Guard {
        provider,
        metrics,
        logs,
        dropped_lines,
    })
}

#[cfg(test)]
mod tests {
    use super::filter_directives;

    #[test]
    fn noisy_dependencies_are_quiet_unless_named() {
        assert_eq!(filter_directives("info"), "info,rmcp=warn");
        assert_eq!(filter_directives(""), "rmcp=warn");
        assert_eq!(filter_directives("debug,rmcp=trace"), "debug,rmcp=trace");
        assert_eq!(
            filter_directives("info, rmcp::service=debug"),
            "info, rmcp::service=debug"
        );
        assert_eq!(filter_directives("rmcp_macros=debug"), "rmcp_macros=debug,rmcp=warn");
        // Every result is a filter the subscriber accepts.
        for raw in ["info", "", "warn,molecule_http::access=info"] {
            tracing_subscriber::EnvFilter::try_new(filter_directives(raw)).unwrap();
        }
    }
}
