//! Logging set-up, the id of the request being served, and the service's
//! Prometheus metrics. The HTTP middleware that feeds them lives in the
//! api crate.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder};

use crate::config::Config;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Runs `f` as the request `id`: [`current_request_id`] answers it inside.
pub async fn with_request_id<F: std::future::Future>(id: String, f: F) -> F::Output {
    REQUEST_ID.scope(id, f).await
}

/// The id of the request being served, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    // A second initialisation (tests start many servers) is harmless.
    let _ = if config.log_format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Most distinct label sets the HTTP metrics hold. Routes are a fixed
/// list and methods and statuses are folded to a few values, so a running
/// service stays far below it; it is the backstop should anything
/// client-controlled slip into a label again.
pub const MAX_SERIES: usize = 2000;

/// Every label value of the HTTP metrics comes through here, so their
/// cardinality is bounded in one place.
#[derive(Default)]
pub struct Labels {
    seen: Mutex<HashSet<(&'static str, String, u16)>>,
}

impl Labels {
    /// The method label: the standard methods by name, anything a client
    /// made up as `other`.
    pub fn method(method: &str) -> &'static str {
        match method {
            "GET" => "GET",
            "HEAD" => "HEAD",
            "POST" => "POST",
            "PUT" => "PUT",
            "PATCH" => "PATCH",
            "DELETE" => "DELETE",
            "OPTIONS" => "OPTIONS",
            "TRACE" => "TRACE",
            "CONNECT" => "CONNECT",
            _ => "other",
        }
    }

    /// The label set for one request; past [`MAX_SERIES`] distinct sets, a
    /// new one is counted as `other` throughout.
    fn of(&self, method: &str, route: &str, status: u16) -> (&'static str, String, String) {
        let method = Self::method(method);
        // Statuses are three digits; anything else (none today) folds too.
        let status = if (100..600).contains(&status) { status } else { 0 };
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let key = (method, route.to_owned(), status);
        if seen.contains(&key) || seen.len() < MAX_SERIES {
            seen.insert(key);
            let status = if status == 0 {
                "other".to_owned()
            } else {
                status.to_string()
            };
            (method, route.to_owned(), status)
        } else {
            ("other", "other".to_owned(), "other".to_owned())
        }
    }
}

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    labels: Arc<Labels>,
    /// MQTT readings messages that could not be read (not JSON, or not a
    /// reading or batch): acknowledged, recorded on the device, counted here.
    pub mqtt_rejected_payloads: IntCounter,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new_custom(Some("vitalfarm".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests served, by route pattern, method and status.",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to produce the response head, by route pattern, method and status.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route", "status"],
        )?;
        let mqtt_rejected_payloads = IntCounter::new(
            "mqtt_rejected_payloads_total",
            "MQTT readings messages that were not a reading or batch of readings (acknowledged and dropped; the device's last_error says why).",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(mqtt_rejected_payloads.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            labels: Arc::new(Labels::default()),
            mqtt_rejected_payloads,
        })
    }

    /// Counts one HTTP request.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let (method, route, status) = self.labels.of(method, route, status);
        let labels = [method, route.as_str(), status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.latency.with_label_values(&labels).observe(seconds);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> anyhow::Result<String> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(String::from_utf8(buf)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_fold_and_label_sets_are_capped() {
        assert_eq!(Labels::method("GET"), "GET");
        assert_eq!(Labels::method("BREW"), "other");
        let labels = Labels::default();
        for i in 0..MAX_SERIES + 50 {
            labels.of("GET", &format!("/r{i}"), 200);
        }
        assert_eq!(
            labels.of("GET", "/new", 200),
            ("other", "other".to_owned(), "other".to_owned())
        );
        assert_eq!(labels.of("GET", "/r1", 200).1, "/r1", "known sets keep their labels");
    }
}
