//! Counters for `GET /metrics`, kept in atomics so that counting costs no lock on the hot path.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the request-duration histogram, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// Request counters since start-up.
#[derive(Debug)]
pub struct Metrics {
    by_status: [AtomicU64; 600],
    buckets: [AtomicU64; BUCKETS.len()],
    duration_micros: AtomicU64,
    count: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            by_status: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            duration_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn observe(&self, status: u16, took: Duration) {
        if let Some(counter) = self.by_status.get(usize::from(status)) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let seconds = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.duration_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The request counters in the Prometheus text format.
    pub fn render_requests(&self, out: &mut String) {
        out.push_str("# HELP pregonero_http_requests_total HTTP requests answered, by status.\n");
        out.push_str("# TYPE pregonero_http_requests_total counter\n");
        for (status, counter) in self.by_status.iter().enumerate() {
            let n = counter.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "pregonero_http_requests_total{{status=\"{status}\"}} {n}"
                );
            }
        }

        out.push_str("# HELP pregonero_http_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE pregonero_http_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (bound, counter) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += counter.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "pregonero_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let sum = self.duration_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "pregonero_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             pregonero_http_request_duration_seconds_sum {sum}\n\
             pregonero_http_request_duration_seconds_count {count}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_status_and_duration() {
        let metrics = Metrics::default();
        metrics.observe(201, Duration::from_millis(2));
        metrics.observe(201, Duration::from_millis(20));
        metrics.observe(422, Duration::from_secs(10));

        let mut out = String::new();
        metrics.render_requests(&mut out);
        assert!(out.contains("pregonero_http_requests_total{status=\"201\"} 2\n"));
        assert!(out.contains("pregonero_http_requests_total{status=\"422\"} 1\n"));
        assert!(out.contains("pregonero_http_request_duration_seconds_bucket{le=\"0.0025\"} 1\n"));
        assert!(out.contains("pregonero_http_request_duration_seconds_bucket{le=\"0.025\"} 2\n"));
        assert!(out.contains("pregonero_http_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
    }
}
