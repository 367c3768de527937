//! The server's own counters: TeamHub's `/metrics` (Prometheus text) and, given its
//! process id, its CPU time.

use std::collections::HashMap;
use std::io;

use crate::cpu;
use crate::http::Conn;

/// The counters a run reads, by Prometheus name (labelled series summed).
pub const NAMES: [&str; 9] = [
    "reactive_cache_hits_total",
    "reactive_cache_misses_total",
    "reactive_cache_coalesced_waits_total",
    "reactive_cache_invalidated_total",
    "reactive_invalidations_total",
    "reactive_events_sent_total",
    "reactive_push_results_total",
    "reactive_push_fallbacks_total",
    "teamhub_http_requests_total",
];

/// One reading of the counters (absent ones are 0: never incremented yet).
#[derive(Debug, Clone, Default)]
pub struct Counters {
    values: HashMap<&'static str, f64>,
    pub cpu_s: f64,
}

impl Counters {
    pub fn get(&self, name: &str) -> f64 {
        self.values.get(name).copied().unwrap_or(0.0)
    }

    /// `self - before`, counter by counter.
    pub fn since(&self, before: &Counters) -> Counters {
        Counters {
            values: NAMES
                .iter()
                .map(|n| (*n, self.get(n) - before.get(n)))
                .collect(),
            cpu_s: self.cpu_s - before.cpu_s,
        }
    }
}

/// Reads `GET /metrics` (and the CPU time of `pid`).
pub async fn read(addr: &str, pid: Option<&str>) -> io::Result<Counters> {
    let answer = Conn::connect(addr)
        .await?
        .request("GET", "/metrics", None)
        .await?;
    if answer.status != 200 {
        return Err(io::Error::other(format!(
            "/metrics answered {}",
            answer.status
        )));
    }
    let mut values = HashMap::new();
    for line in String::from_utf8_lossy(&answer.body).lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        if let (Some(known), Ok(value)) = (NAMES.iter().find(|n| **n == name), value.parse::<f64>())
        {
            *values.entry(*known).or_insert(0.0) += value;
        }
    }
    Ok(Counters {
        values,
        cpu_s: pid.and_then(cpu::seconds).unwrap_or(f64::NAN),
    })
}
