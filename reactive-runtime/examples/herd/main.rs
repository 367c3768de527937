//! The herd: one write to a query held by N connected clients, and the time until every
//! client holds the new value, with invalidate + refetch (`bench.channel`) or pushed
//! results (`bench.channelPushed`), against the `sse_bench` example server.
//!
//! ```text
//! cargo run --release -p reactive-runtime --example sse_bench &
//! cargo run --release -p reactive-runtime --example herd -- --clients 1000 --mode push
//! ```
//!
//! Each client opens `GET /events?subscribe=<key>` and waits for `ready`; in refetch
//! mode it also opens a keep-alive connection of its own. For each write the tool takes
//! t0 just before sending `POST /pub?id=<channel>` (a body with a marker unique to the
//! write), and each client notes when it holds a value showing that marker: from the
//! `invalidate` frame's `results` (push), or from the answer of the `POST /rpc/<function>`
//! it sends on the frame (refetch, and a push frame without the value: a fallback). A
//! value without the marker does not count. Between writes the tool reads `GET /stats`:
//! query executions, HTTP requests and server CPU per write; the client processes' CPU
//! is read too (they share the machine with the server).
//!
//! Clients are spread over child processes (`--procs`, default one per 4,000 clients):
//! the file descriptor limit is per process. Both processes stamp with the system
//! clock. See `scripts/herd-bench.sh` and `docs/benchmarks.md`.

mod args;
mod child;
mod client;
mod coordinator;
mod cpu;
mod http;
mod report;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match args::Args::parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let result = match args.child.clone() {
        Some(run) => child::main(args, run),
        None => coordinator::main(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herd: {e}");
            ExitCode::FAILURE
        }
    }
}
