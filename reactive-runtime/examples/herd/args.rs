//! Command line and environment of the herd tool, and the names both processes derive
//! from them (query key, markers).

use std::time::Duration;

/// How a client gets the new value after a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Subscribes to `bench.channel`: each `invalidate` frame is followed by
    /// `POST /rpc/bench.channel`.
    Refetch,
    /// Subscribes to `bench.channelPushed`: the value arrives in the frame's `results`.
    Push,
}

impl Mode {
    fn parse(text: &str) -> Result<Mode, String> {
        match text {
            "refetch" => Ok(Mode::Refetch),
            "push" => Ok(Mode::Push),
            other => Err(format!("mode must be refetch or push, not {other:?}")),
        }
    }

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Refetch => "refetch",
            Mode::Push => "push",
        }
    }

    /// The query function the clients subscribe to (and refetch).
    pub fn function(self) -> &'static str {
        match self {
            Mode::Refetch => "bench.channel",
            Mode::Push => "bench.channelPushed",
        }
    }
}

/// What one run does.
#[derive(Debug, Clone)]
pub struct Args {
    /// The bench server, `host:port`.
    pub addr: String,
    /// Clients (of this process, for a child).
    pub clients: usize,
    pub mode: Mode,
    /// Writes, one after the other.
    pub writes: usize,
    /// Pause before each write (after every client held the previous one).
    pub interval: Duration,
    pub channel: String,
    /// Client processes (each holds at most a share of the file descriptors).
    pub procs: usize,
    /// How long a write may take to reach every client before the rest count as missing.
    pub timeout: Duration,
    /// Name of the run in the report.
    pub label: String,
    /// Set in a child process: the run's id (its markers).
    pub child: Option<String>,
}

const USAGE: &str = "usage: herd [--addr HOST:PORT] [--clients N] [--mode refetch|push] \
[--writes W] [--interval-ms MS] [--channel CH] [--procs P] [--timeout-s S] [--label L]
environment: HERD_ADDR, HERD_CLIENTS, HERD_MODE, HERD_WRITES, HERD_INTERVAL_MS, HERD_CHANNEL, \
HERD_PROCS, HERD_TIMEOUT_S, HERD_LABEL (flags win)";

/// Clients one process holds at most by default: refetch clients hold two sockets
/// each, and the descriptor limit is per process.
const CLIENTS_PER_PROC: usize = 4_000;

impl Args {
    /// Flags, then `HERD_*` variables, then defaults.
    pub fn parse() -> Result<Args, String> {
        let mut flags = std::collections::HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let Some(name) = flag.strip_prefix("--") else {
                return Err(format!("unexpected {flag:?}\n{USAGE}"));
            };
            if name == "help" {
                return Err(USAGE.into());
            }
            let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            flags.insert(name.to_string(), value);
        }
        let get = |name: &str| -> Option<String> {
            flags.get(name).cloned().or_else(|| {
                std::env::var(format!("HERD_{}", name.replace('-', "_").to_uppercase())).ok()
            })
        };
        let number = |name: &str, default: u64| -> Result<u64, String> {
            get(name).map_or(Ok(default), |v| {
                v.parse()
                    .map_err(|_| format!("--{name}: not a number: {v:?}"))
            })
        };
        let clients = usize::try_from(number("clients", 1)?).map_err(|e| e.to_string())?;
        let mode = Mode::parse(&get("mode").unwrap_or_else(|| "refetch".into()))?;
        let procs = match get("procs") {
            Some(_) => number("procs", 1)?.max(1) as usize,
            None => clients.div_ceil(CLIENTS_PER_PROC).max(1),
        };
        Ok(Args {
            addr: get("addr").unwrap_or_else(|| "127.0.0.1:8091".into()),
            clients,
            mode,
            writes: number("writes", 5)? as usize,
            interval: Duration::from_millis(number("interval-ms", 500)?),
            channel: get("channel").unwrap_or_else(|| "c".into()),
            procs,
            timeout: Duration::from_secs(number("timeout-s", 30)?),
            label: get("label").unwrap_or_else(|| format!("{}-{clients}", mode.name())),
            child: get("child"),
        })
    }

    /// The flags that make a child process with `clients` clients of run `run`.
    pub fn child_flags(&self, clients: usize, run: &str) -> Vec<String> {
        [
            ("addr", self.addr.clone()),
            ("clients", clients.to_string()),
            ("mode", self.mode.name().into()),
            ("writes", self.writes.to_string()),
            ("channel", self.channel.clone()),
            ("timeout-s", self.timeout.as_secs().to_string()),
            ("child", run.into()),
        ]
        .into_iter()
        .flat_map(|(k, v)| [format!("--{k}"), v])
        .collect()
    }

    /// The query key every client subscribes to, canonical (`name:{"channel":".."}`).
    pub fn key(&self) -> String {
        format!(
            "{}:{{\"channel\":{}}}",
            self.mode.function(),
            serde_json::Value::from(self.channel.as_str())
        )
    }

    /// The RPC input of that key.
    pub fn input(&self) -> String {
        serde_json::json!({ "channel": self.channel }).to_string()
    }
}

/// The text write `write` of run `run` puts in its row: unique within the run, and no
/// marker is a prefix of another (the `~`), so finding it in a value proves the value
/// reflects that write.
pub fn marker(run: &str, write: usize) -> String {
    format!("herd-{run}-w{write}~")
}

/// Microseconds since the Unix epoch: the clock both processes stamp with.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
