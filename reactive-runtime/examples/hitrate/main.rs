//! The cache hit rate of a TeamHub-shaped workload, measured on the real TeamHub
//! server (`examples/teamhub`), with push on or off (`TEAMHUB_PUSH=off` on the server).
//!
//! ```text
//! TEAMHUB_SKIP_WEB_BUILD=1 DATABASE_URL=sqlite:///dev/shm/hr.db?mode=rwc \
//!   cargo run --release -p teamhub -- --port 3100 &
//! cargo run --release -p reactive-runtime --example hitrate -- --clients 400 --seconds 30
//! ```
//!
//! Setup (not measured): each demo organization is topped up to `--agents` agents, each
//! with a few messages and a memory, through TeamHub's mutations; then `--clients`
//! users (half per organization, each a principal of its own: `token-org-1.u7`) open
//! the agent screen of `AgentDetail.tsx`: the agent list and tools of their
//! organization and the stats, messages and memories of one agent, and an event stream
//! subscribed to those five queries. Agents are picked with a Zipf law (`--zipf`).
//!
//! The measured window: `--rate` operations per second on a fixed schedule (seeded:
//! both modes replay the same operations) for `--seconds`, each by a uniformly picked
//! user: a navigation (to a Zipf-picked agent: its three queries fetched, the stream
//! reopened with the new subscription) or, with probability `--write-share`, a write
//! (see [`workload::write`]). Users react to events as the real client does (see
//! `client`). The server's counters (`/metrics`) are read before and after the window
//! (after in-flight reactions settle): cache hits, misses (handler runs), coalesced
//! waits, pushed results, HTTP requests served; the clients count their reads,
//! refetches, unnecessary refetches (the answer was the value held) and pushed values.
//! See `scripts/hitrate-bench.sh` and `docs/benchmarks.md` ("Cache hit rate").

mod args;
mod client;
#[path = "../herd/cpu.rs"]
mod cpu;
#[path = "../herd/http.rs"]
mod http;
mod report;
mod server;
mod setup;
mod workload;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use crate::args::Args;
use crate::client::{Client, Tally};
use crate::workload::{Op, Rng, Zipf};

/// Users starting at once (each makes five reads and opens a stream).
const STARTING_AT_ONCE: usize = 32;
/// Time after the last operation for the reactions to it (refetches) to end.
const SETTLE: Duration = Duration::from_secs(3);

fn main() -> ExitCode {
    let args = match Args::parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hitrate: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hitrate: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> std::io::Result<()> {
    let zipf = Zipf::new(args.agents, args.zipf);
    let mut rng = Rng::new(args.seed);
    let orgs = setup::prepare(&args.addr, args.agents, &zipf, &mut rng).await?;
    let orgs: Vec<Arc<workload::Org>> = orgs.into_iter().map(Arc::new).collect();

    // Users: their organization, their first agent, their operations' channel.
    let tally = Arc::new(Tally::default());
    let starting = Arc::new(Semaphore::new(STARTING_AT_ONCE));
    let started = Instant::now();
    let mut users: Vec<(usize, usize)> = Vec::new();
    let mut ready = Vec::new();
    for i in 0..args.clients {
        let org = orgs[i % orgs.len()].clone();
        let agent = zipf.sample(&mut rng);
        users.push((i % orgs.len(), agent));
        let (tally, starting, addr) = (tally.clone(), starting.clone(), args.addr.clone());
        ready.push(tokio::spawn(async move {
            let _permit = starting.acquire_owned().await;
            Client::start(&addr, org, &format!("u{i}"), agent, tally).await
        }));
    }
    let mut ops: Vec<UnboundedSender<Op>> = Vec::new();
    for (i, handle) in ready.into_iter().enumerate() {
        let client = handle
            .await
            .map_err(std::io::Error::other)?
            .map_err(|e| std::io::Error::other(format!("user {i} did not start: {e}")))?;
        let (tx, rx) = unbounded_channel();
        tokio::spawn(client.run(rx));
        ops.push(tx);
    }
    eprintln!(
        "hitrate: {} users ready in {:.1} s",
        args.clients,
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    let server_before = server::read(&args.addr, args.server_pid.as_deref()).await?;
    let clients_before = tally.snapshot();
    let window = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let total = (args.rate * args.duration.as_secs_f64()).round() as u64;
    for n in 0..total {
        tick.tick().await;
        let user = rng.below(users.len());
        let (org, own) = users[user];
        let op = if rng.unit() < args.write_share {
            workload::write(&orgs[org], own, &zipf, &mut rng, n)
        } else {
            let agent = zipf.sample(&mut rng);
            users[user].1 = agent;
            Op::Navigate(agent)
        };
        // A user that stopped has no receiver: its operations are not made.
        let _ = ops[user].send(op);
    }
    let lag = window.elapsed().as_secs_f64() - args.duration.as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    let server = server::read(&args.addr, args.server_pid.as_deref())
        .await?
        .since(&server_before);
    let clients = tally.snapshot().since(&clients_before);
    let summary = report::Summary {
        args: &args,
        server: &server,
        clients: &clients,
        first_error: tally.first_error(),
        top_share: zipf.top(),
        schedule_lag_s: lag,
    };
    report::print(&summary.to_json());
    Ok(())
}
