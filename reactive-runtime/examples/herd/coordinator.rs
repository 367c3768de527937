//! The coordinating process: starts the client processes, makes the writes through
//! `POST /pub`, reads the server's counters around each, and collects the hold times.

use std::io::{self, BufRead, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::args::{Args, marker, now_us};
use crate::cpu;
use crate::http::{Conn, encode};
use crate::report::{Summary, WriteResult, print};

/// Time for every client process to connect its clients.
const SETUP_TIMEOUT: Duration = Duration::from_secs(600);
/// Settling time between the last client's `ready` and the first write.
const SETTLE: Duration = Duration::from_secs(1);

/// Runs the whole measurement and prints its summary.
pub fn main(args: Args) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

/// A client process and its command pipe.
struct Child {
    process: std::process::Child,
    stdin: ChildStdin,
}

/// The counters of `GET /stats` a write moves.
#[derive(Debug, Clone, Copy)]
struct Counters {
    executions: i64,
    /// Requests other than `/pub` and `/stats`.
    requests: i64,
    cpu_s: f64,
}

async fn run(args: Args) -> io::Result<()> {
    let run_id = format!("{:x}", now_us());
    let (lines_tx, mut lines) = unbounded_channel::<String>();
    let started = Instant::now();
    let mut children = Vec::new();
    for p in 0..args.procs {
        // An even share, the remainder to the first ones.
        let share = args.clients / args.procs + usize::from(p < args.clients % args.procs);
        let mut process = Command::new(std::env::current_exe()?)
            .args(args.child_flags(share, &run_id))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = process.stdout.take().expect("piped");
        let stdin = process.stdin.take().expect("piped");
        let tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        children.push(Child { process, stdin });
    }
    drop(lines_tx);

    let mut connected = 0;
    for _ in 0..args.procs {
        let line = next_line(&mut lines, "READY", SETUP_TIMEOUT).await?;
        let mut f = line.split(' ').skip(1);
        connected += f.next().and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
        let failed: usize = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        if failed > 0 {
            eprintln!(
                "herd: {failed} clients failed to connect, first error: {}",
                f.next().unwrap_or("-")
            );
        }
    }
    let setup_s = started.elapsed().as_secs_f64();
    eprintln!(
        "herd: {connected}/{} {} clients ready in {setup_s:.1} s ({} processes)",
        args.clients,
        args.mode.name(),
        args.procs
    );
    tokio::time::sleep(SETTLE).await;

    let client_cpu_before = client_cpu(&children);
    let mut control = Conn::connect(&args.addr).await?;
    let publish = format!("/pub?id={}", encode(&args.channel));
    let mut writes = Vec::new();
    for w in 0..args.writes {
        tokio::time::sleep(args.interval).await;
        let before = counters(&mut control, &args.addr).await?;
        tell(&mut children, &format!("WRITE {w}"))?;
        let body = format!("herd write {w} {}", marker(&run_id, w));
        let t0_us = now_us();
        let answer = control.request("POST", &publish, Some(&body)).await?;
        if answer.status / 100 != 2 {
            return Err(io::Error::other(format!(
                "/pub answered {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            )));
        }
        let mut result = WriteResult {
            t0_us,
            ..WriteResult::default()
        };
        for _ in 0..args.procs {
            let line = next_line(&mut lines, "HELD", args.timeout * 2).await?;
            let f: Vec<&str> = line.split(' ').collect();
            let number = |i: usize| f.get(i).and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
            result.fallbacks += number(2);
            result.missing += number(3);
            if let Some(times) = f.get(4).filter(|t| **t != "-") {
                result
                    .holds_us
                    .extend(times.split(',').filter_map(|t| t.parse::<u64>().ok()));
            }
        }
        let after = counters(&mut control, &args.addr).await?;
        result.executions = after.executions - before.executions;
        result.requests = after.requests - before.requests;
        result.cpu_s = after.cpu_s - before.cpu_s;
        writes.push(result);
    }

    let client_cpu_s = client_cpu(&children) - client_cpu_before;
    tell(&mut children, "QUIT")?;
    let mut summary = Summary {
        label: args.label.clone(),
        mode: args.mode.name(),
        clients: args.clients,
        connected,
        setup_s,
        client_cpu_s,
        stale: 0,
        reconnects: 0,
        gone: 0,
    };
    for _ in 0..args.procs {
        let line = next_line(&mut lines, "DONE", Duration::from_secs(30)).await?;
        let f: Vec<usize> = line
            .split(' ')
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        summary.stale += f.first().copied().unwrap_or(0);
        summary.reconnects += f.get(1).copied().unwrap_or(0);
        summary.gone += f.get(2).copied().unwrap_or(0);
    }
    for mut child in children {
        let _ = child.process.kill();
        let _ = child.process.wait();
    }
    print(&summary.to_json(&writes));
    Ok(())
}

/// The next line of a client process starting with `word` (others are not expected).
async fn next_line(
    lines: &mut UnboundedReceiver<String>,
    word: &str,
    timeout: Duration,
) -> io::Result<String> {
    loop {
        let line = tokio::time::timeout(timeout, lines.recv())
            .await
            .map_err(|_| io::Error::other(format!("no {word} from a client process in time")))?
            .ok_or_else(|| io::Error::other(format!("a client process ended before {word}")))?;
        if line.starts_with(word) {
            return Ok(line);
        }
        eprintln!("herd: unexpected line from a client process: {line}");
    }
}

/// CPU seconds of the client processes so far.
fn client_cpu(children: &[Child]) -> f64 {
    children
        .iter()
        .filter_map(|c| cpu::seconds(&c.process.id().to_string()))
        .sum()
}

fn tell(children: &mut [Child], command: &str) -> io::Result<()> {
    for child in children {
        writeln!(child.stdin, "{command}")?;
        child.stdin.flush()?;
    }
    Ok(())
}

/// `GET /stats`, over `control` (opened again if the server closed it while idle).
async fn counters(control: &mut Conn, addr: &str) -> io::Result<Counters> {
    let answer = match control.request("GET", "/stats", None).await {
        Ok(a) => a,
        Err(_) => {
            *control = Conn::connect(addr).await?;
            control.request("GET", "/stats", None).await?
        }
    };
    let stats: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let int = |name: &str| stats[name].as_i64().unwrap_or(0);
    Ok(Counters {
        executions: int("query_executions"),
        requests: int("http_requests") - int("pub_requests") - int("stats_requests"),
        cpu_s: stats["cpu_seconds"].as_f64().unwrap_or(f64::NAN),
    })
}
