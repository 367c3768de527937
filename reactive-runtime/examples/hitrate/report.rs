//! The figures of a run: the server's counters over the window and what the clients
//! counted, printed for a reader and as one `JSON ` line for the script.

use serde_json::{Value, json};

use crate::args::Args;
use crate::client::{Count, Snapshot};
use crate::server::Counters;
use crate::workload::READS;

/// A run's figures.
pub struct Summary<'a> {
    pub args: &'a Args,
    /// Server counters over the window.
    pub server: &'a Counters,
    /// Client counters over the window.
    pub clients: &'a Snapshot,
    pub first_error: Option<String>,
    /// The probability of the most popular agent.
    pub top_share: f64,
    /// How far the schedule ended behind its plan, in seconds.
    pub schedule_lag_s: f64,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        (a / b * 10_000.0).round() / 10_000.0
    } else {
        f64::NAN
    }
}

impl Summary<'_> {
    pub fn to_json(&self) -> Value {
        let s = |name: &str| self.server.get(name);
        let c = |count: Count| self.clients.get(count);
        let (hits, misses, coalesced) = (
            s("reactive_cache_hits_total"),
            s("reactive_cache_misses_total"),
            s("reactive_cache_coalesced_waits_total"),
        );
        let by_function = |counts: &[u64]| -> Value {
            READS
                .iter()
                .zip(counts)
                .map(|(f, n)| ((*f).to_string(), json!(n)))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        let a = self.args;
        json!({
            "label": a.label,
            "clients": a.clients,
            "seconds": a.duration.as_secs_f64(),
            "rate": a.rate,
            "agents": a.agents,
            "zipf": a.zipf,
            "top_share": (self.top_share * 1000.0).round() / 1000.0,
            "write_share": a.write_share,
            "navigations": c(Count::Navigations),
            "writes": c(Count::Writes),
            "hit_rate": ratio(hits, hits + misses),
            "served_from_cache": ratio(hits + coalesced, hits + misses + coalesced),
            "hits": hits,
            "misses": misses,
            "coalesced": coalesced,
            "entries_invalidated": s("reactive_cache_invalidated_total"),
            "invalidations": s("reactive_invalidations_total"),
            "events_sent": s("reactive_events_sent_total"),
            "push_results": s("reactive_push_results_total"),
            "push_fallbacks": s("reactive_push_fallbacks_total"),
            "http_requests": s("teamhub_http_requests_total"),
            "server_cpu_s": (self.server.cpu_s * 100.0).round() / 100.0,
            "reads": c(Count::Reads),
            "cold_reads": c(Count::ColdReads),
            "refetches": c(Count::Refetches),
            "unnecessary_refetches": c(Count::Unnecessary),
            "pushed_values": c(Count::Pushed),
            "skipped": c(Count::Skipped),
            "resets": c(Count::Resets),
            "stream_opens": c(Count::StreamOpens),
            "errors": c(Count::Errors),
            "first_error": self.first_error,
            "refetches_by_function": by_function(&self.clients.refetches),
            "unnecessary_by_function": by_function(&self.clients.unnecessary),
            "schedule_lag_s": (self.schedule_lag_s * 100.0).round() / 100.0,
        })
    }
}

/// Prints the summary for a reader, then as one `JSON ` line.
pub fn print(s: &Value) {
    println!(
        "{}: {} users, {} navigations + {} writes in {} s: hit rate {} (hits {}, misses {}, \
         coalesced {}); {} HTTP requests, {} refetches ({} unnecessary), {} pushed values, \
         {} push fallbacks; server CPU {} s; errors {}",
        s["label"].as_str().unwrap_or(""),
        s["clients"],
        s["navigations"],
        s["writes"],
        s["seconds"],
        s["hit_rate"],
        s["hits"],
        s["misses"],
        s["coalesced"],
        s["http_requests"],
        s["refetches"],
        s["unnecessary_refetches"],
        s["pushed_values"],
        s["push_fallbacks"],
        s["server_cpu_s"],
        s["errors"],
    );
    println!("JSON {s}");
}
