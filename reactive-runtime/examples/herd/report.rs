//! The figures of a run: latencies from each write to each client holding its value,
//! and the server's counters per write.

use serde_json::{Value, json};

/// One write and what followed it.
#[derive(Debug, Default)]
pub struct WriteResult {
    /// Just before the write's request was sent, µs since the epoch.
    pub t0_us: u64,
    /// When each client held the value (µs since the epoch).
    pub holds_us: Vec<u64>,
    /// Push clients that had to refetch.
    pub fallbacks: usize,
    /// Clients that did not hold it in time (or were not connected).
    pub missing: usize,
    /// Server counters, after minus before: query executions, requests other than the
    /// write and the probes, CPU seconds.
    pub executions: i64,
    pub requests: i64,
    pub cpu_s: f64,
}

impl WriteResult {
    fn latencies_ms(&self) -> impl Iterator<Item = f64> + '_ {
        self.holds_us
            .iter()
            .map(|t| t.saturating_sub(self.t0_us) as f64 / 1000.0)
    }
}

/// The `p` quantile (0..=1) of sorted values (nearest rank).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// The run's summary, as printed and as the script reads it (`JSON ` line).
pub struct Summary {
    pub label: String,
    pub mode: &'static str,
    pub clients: usize,
    pub connected: usize,
    pub setup_s: f64,
    /// CPU seconds of the client processes from the first write to the last hold.
    pub client_cpu_s: f64,
    /// Refetch answers without the awaited write, re-opened keep-alive connections,
    /// clients whose stream ended early.
    pub stale: usize,
    pub reconnects: usize,
    pub gone: usize,
}

impl Summary {
    /// The summary as JSON, figures over every (client, write) pair.
    pub fn to_json(&self, writes: &[WriteResult]) -> Value {
        let all = sorted(writes.iter().flat_map(WriteResult::latencies_ms).collect());
        let last = sorted(
            writes
                .iter()
                .map(|w| w.latencies_ms().fold(f64::NAN, f64::max))
                .filter(|x| !x.is_nan())
                .collect(),
        );
        let n = writes.len().max(1) as f64;
        let mean = |f: &dyn Fn(&WriteResult) -> f64| writes.iter().map(f).sum::<f64>() / n;
        json!({
            "label": self.label,
            "mode": self.mode,
            "clients": self.clients,
            "connected": self.connected,
            "setup_s": round(self.setup_s, 1),
            "writes": writes.len(),
            "p50_ms": round(quantile(&all, 0.5), 2),
            "p99_ms": round(quantile(&all, 0.99), 2),
            "max_ms": round(all.last().copied().unwrap_or(f64::NAN), 2),
            "last_p50_ms": round(quantile(&last, 0.5), 2),
            "holds": all.len(),
            "expected": self.clients * writes.len(),
            "fallbacks": writes.iter().map(|w| w.fallbacks).sum::<usize>(),
            "missing": writes.iter().map(|w| w.missing).sum::<usize>(),
            "stale": self.stale,
            "reconnects": self.reconnects,
            "gone": self.gone,
            "executions_per_write": round(mean(&|w| w.executions as f64), 2),
            "requests_per_write": round(mean(&|w| w.requests as f64), 2),
            "cpu_s_per_write": round(mean(&|w| w.cpu_s), 3),
            "client_cpu_s_per_write": round(self.client_cpu_s / n, 3),
            "executions": writes.iter().map(|w| w.executions).collect::<Vec<_>>(),
            "requests": writes.iter().map(|w| w.requests).collect::<Vec<_>>(),
            "cpu_s": writes.iter().map(|w| round(w.cpu_s, 2)).collect::<Vec<_>>(),
            "write_p50_ms": writes
                .iter()
                .map(|w| round(quantile(&sorted(w.latencies_ms().collect()), 0.5), 1))
                .collect::<Vec<_>>(),
            "write_last_ms": writes
                .iter()
                .map(|w| round(w.latencies_ms().fold(f64::NAN, f64::max), 1))
                .collect::<Vec<_>>(),
        })
    }
}

/// Prints the summary for a reader, then as one `JSON ` line.
pub fn print(summary: &Value) {
    let s = summary;
    println!(
        "{}: {}/{} clients, {} writes: write -> value held p50 {} ms, p99 {} ms, max {} ms, last client p50 {} ms; \
         held {}/{}, fallbacks {}, missing {}, stale answers {}, reconnects {}; per write: \
         {} query executions, {} other HTTP requests, {} s server CPU ({} s client CPU)",
        s["label"].as_str().unwrap_or(""),
        s["connected"],
        s["clients"],
        s["writes"],
        s["p50_ms"],
        s["p99_ms"],
        s["max_ms"],
        s["last_p50_ms"],
        s["holds"],
        s["expected"],
        s["fallbacks"],
        s["missing"],
        s["stale"],
        s["reconnects"],
        s["executions_per_write"],
        s["requests_per_write"],
        s["cpu_s_per_write"],
        s["client_cpu_s_per_write"],
    );
    println!("JSON {summary}");
}
