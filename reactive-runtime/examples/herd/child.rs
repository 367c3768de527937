//! A client process: connects its share of the clients, then reports to the
//! coordinator (stdout lines) when they all hold each write, reading the coordinator's
//! commands from stdin.
//!
//! Lines out: `READY <connected> <failed> <first error>`, then per write
//! `HELD <write> <fallbacks> <missing> <hold times, µs since the epoch, comma-separated>`,
//! and after `QUIT`: `DONE <stale> <reconnects> <gone>`. Lines in: `WRITE <w>` (write `w`
//! is being made: its timeout starts), `QUIT`.

use std::io::{BufRead, Write};
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::time::{Instant, sleep_until};

use crate::args::Args;
use crate::client::{Client, Note, Shared};

/// Clients connecting at once: more overflows the server's accept backlog, and a
/// dropped SYN costs a second.
const CONNECTING_AT_ONCE: usize = 256;

/// Runs the child process `run` of `args` to the end.
pub fn main(args: Args, run: String) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(clients(args, run))
}

async fn clients(args: Args, run: String) -> std::io::Result<()> {
    let (notes, mut note_rx) = unbounded_channel();
    let commands = read_commands();
    let shared = Arc::new(Shared::new(args.clone(), &run, notes));
    let connecting = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let (ready_tx, mut ready_rx) = unbounded_channel::<Result<usize, String>>();
    for index in 0..args.clients {
        let (shared, connecting, ready_tx) = (shared.clone(), connecting.clone(), ready_tx.clone());
        tokio::spawn(async move {
            let permit = connecting.acquire_owned().await;
            let client = Client::connect(index, shared).await;
            drop(permit);
            match client {
                Ok(client) => {
                    let _ = ready_tx.send(Ok(index));
                    client.run().await;
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                }
            }
        });
    }
    drop(ready_tx);
    let mut connected = vec![false; args.clients];
    let (mut failed, mut first_error) = (0, String::from("-"));
    for _ in 0..args.clients {
        match ready_rx.recv().await {
            Some(Ok(index)) => connected[index] = true,
            Some(Err(e)) => {
                if failed == 0 {
                    first_error = e.replace(char::is_whitespace, "_");
                }
                failed += 1;
            }
            None => break,
        }
    }
    say(&format!(
        "READY {} {failed} {first_error}",
        args.clients - failed
    ));
    Tally::new(&args, connected)
        .follow(&mut note_rx, commands)
        .await;
    Ok(())
}

/// The coordinator's commands, read on a thread of their own (stdin blocks).
fn read_commands() -> UnboundedReceiver<String> {
    let (tx, rx) = unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Hold times per write, until every live client holds it or its time is up.
struct Tally {
    timeout: std::time::Duration,
    /// Clients that can still hold a value (connected, not gone), and how many.
    live: Vec<bool>,
    live_count: usize,
    /// Per write: each client's hold time, if it holds it.
    holds: Vec<Vec<Option<u64>>>,
    fallbacks: Vec<usize>,
    /// Per write: how many hold it, and whether its line was said.
    counts: Vec<usize>,
    reported: Vec<bool>,
    /// Writes being made, with their deadlines.
    pending: Vec<(usize, Instant)>,
    stale: usize,
    reconnects: usize,
    gone: usize,
}

impl Tally {
    fn new(args: &Args, live: Vec<bool>) -> Tally {
        Tally {
            timeout: args.timeout,
            holds: vec![vec![None; live.len()]; args.writes],
            live_count: live.iter().filter(|l| **l).count(),
            live,
            fallbacks: vec![0; args.writes],
            counts: vec![0; args.writes],
            reported: vec![false; args.writes],
            pending: Vec::new(),
            stale: 0,
            reconnects: 0,
            gone: 0,
        }
    }

    async fn follow(
        mut self,
        notes: &mut UnboundedReceiver<Note>,
        mut commands: UnboundedReceiver<String>,
    ) {
        loop {
            let deadline = self.pending.iter().map(|p| p.1).min();
            let timer = async {
                match deadline {
                    Some(at) => sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(note) = notes.recv() => self.note(note),
                command = commands.recv() => match command.as_deref().map(str::split_whitespace).map(|mut c| (c.next(), c.next())) {
                    Some((Some("WRITE"), Some(w))) => {
                        if let Ok(w) = w.parse::<usize>() && w < self.holds.len() && !self.reported[w] {
                            self.pending.push((w, Instant::now() + self.timeout));
                        }
                    }
                    // QUIT, or the coordinator is gone.
                    _ => break,
                },
                () = timer => {
                    let now = Instant::now();
                    let due: Vec<usize> = self.pending.iter().filter(|p| p.1 <= now).map(|p| p.0).collect();
                    for w in due {
                        self.report(w);
                    }
                }
            }
        }
        say(&format!(
            "DONE {} {} {}",
            self.stale, self.reconnects, self.gone
        ));
    }

    fn note(&mut self, note: Note) {
        match note {
            Note::Hold {
                client,
                write,
                at_us,
                fallback,
            } => {
                if self.holds[write][client].is_none() {
                    self.holds[write][client] = Some(at_us);
                    self.counts[write] += 1;
                    self.fallbacks[write] += usize::from(fallback);
                }
                self.check(write);
            }
            Note::Stale => self.stale += 1,
            Note::Reconnect => self.reconnects += 1,
            Note::Gone { client, error } => {
                if self.live[client] {
                    self.live[client] = false;
                    self.live_count -= 1;
                    self.gone += 1;
                    eprintln!("herd: client {client} stopped: {error}");
                }
                for w in 0..self.holds.len() {
                    self.check(w);
                }
            }
        }
    }

    /// Says the line of `write` once every live client holds it.
    fn check(&mut self, write: usize) {
        if self.reported[write] {
            return;
        }
        // The scan only when the count says it may be complete (gone clients may have
        // held it before they went).
        if self.counts[write] >= self.live_count
            && (0..self.live.len()).all(|c| !self.live[c] || self.holds[write][c].is_some())
        {
            self.report(write);
        }
    }

    fn report(&mut self, write: usize) {
        if self.reported[write] {
            return;
        }
        self.reported[write] = true;
        self.pending.retain(|p| p.0 != write);
        let times: Vec<String> = self.holds[write]
            .iter()
            .flatten()
            .map(u64::to_string)
            .collect();
        let missing = self.live.len() - times.len();
        say(&format!(
            "HELD {write} {} {missing} {}",
            self.fallbacks[write],
            if times.is_empty() {
                "-".to_string()
            } else {
                times.join(",")
            }
        ));
    }
}
