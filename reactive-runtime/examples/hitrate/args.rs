//! Command line and environment of the hit-rate tool.

use std::time::Duration;

/// What one run does.
#[derive(Debug, Clone)]
pub struct Args {
    /// The TeamHub server, `host:port` (its API under `/api`, `/metrics` at the root).
    pub addr: String,
    /// Simulated users, spread evenly over the demo organizations.
    pub clients: usize,
    /// Length of the measured window.
    pub duration: Duration,
    /// User operations per second, all clients together (a fixed schedule).
    pub rate: f64,
    /// Agents per organization (the seeded ones, topped up with `agents.create`).
    pub agents: usize,
    /// Exponent of the Zipf law that picks agents (rank r has weight 1/r^s).
    pub zipf: f64,
    /// Share of operations that are writes (the rest are navigations).
    pub write_share: f64,
    /// Seed of the operation schedule (the same seed, the same operations).
    pub seed: u64,
    /// The server's process id, for its CPU time (optional).
    pub server_pid: Option<String>,
    /// Name of the run in the report.
    pub label: String,
}

const USAGE: &str = "usage: hitrate [--addr HOST:PORT] [--clients N] [--seconds S] [--rate OPS] \
[--agents A] [--zipf S] [--write-share F] [--seed N] [--server-pid PID] [--label L]
environment: HITRATE_ADDR, HITRATE_CLIENTS, ... (the flag's name in capitals; flags win)";

impl Args {
    /// Flags, then `HITRATE_*` variables, then defaults.
    pub fn parse() -> Result<Args, String> {
        let mut flags = std::collections::HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            match flag.strip_prefix("--") {
                Some("help") | None => return Err(USAGE.into()),
                Some(name) => {
                    let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
                    flags.insert(name.to_string(), value);
                }
            }
        }
        let get = |name: &str| {
            flags.get(name).cloned().or_else(|| {
                let var = format!("HITRATE_{}", name.replace('-', "_").to_uppercase());
                std::env::var(var).ok()
            })
        };
        fn num<T: std::str::FromStr>(
            name: &str,
            v: Option<String>,
            default: T,
        ) -> Result<T, String> {
            v.map_or(Ok(default), |v| {
                v.parse()
                    .map_err(|_| format!("--{name}: not a number: {v:?}"))
            })
        }
        let args = Args {
            addr: get("addr").unwrap_or_else(|| "127.0.0.1:3100".into()),
            clients: num("clients", get("clients"), 400)?,
            duration: Duration::from_secs_f64(num("seconds", get("seconds"), 30.0)?),
            rate: num("rate", get("rate"), 40.0)?,
            agents: num("agents", get("agents"), 40)?,
            zipf: num("zipf", get("zipf"), 1.0)?,
            write_share: num("write-share", get("write-share"), 0.1)?,
            seed: num("seed", get("seed"), 1)?,
            server_pid: get("server-pid"),
            label: get("label").unwrap_or_else(|| "run".into()),
        };
        if args.clients == 0 || args.agents < 2 || args.rate <= 0.0 {
            return Err(format!("need clients ≥ 1, agents ≥ 2, rate > 0\n{USAGE}"));
        }
        Ok(args)
    }
}
