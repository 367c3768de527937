//! One herd client: an event stream subscribed to the bench key, and (refetch mode, or a
//! push that came without a value) its own keep-alive connection for `POST /rpc/..`.
//! It reports when it holds the value of each write, proven by the write's marker.

use std::io;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::args::{Args, Mode, now_us};
use crate::http::{Conn, encode};

/// Attempts of a refetch whose answer does not show the write yet.
const STALE_RETRIES: usize = 20;

/// What a client tells its process.
#[derive(Debug)]
pub enum Note {
    /// Client `client` holds the value of write `write` since `at_us`; `fallback`: a push
    /// client that had to refetch.
    Hold {
        client: usize,
        write: usize,
        at_us: u64,
        fallback: bool,
    },
    /// A refetch answered a value without the awaited write (asked again).
    Stale,
    /// The keep-alive connection had been closed and was opened again.
    Reconnect,
    /// The client stopped (its stream ended or failed).
    Gone { client: usize, error: String },
}

/// What every client of a process shares.
pub struct Shared {
    pub args: Args,
    pub key: String,
    pub input: String,
    pub rpc_path: String,
    /// The markers of the run's writes, in order.
    pub markers: Vec<String>,
    pub notes: UnboundedSender<Note>,
}

impl Shared {
    pub fn new(args: Args, run: &str, notes: UnboundedSender<Note>) -> Shared {
        Shared {
            key: args.key(),
            input: args.input(),
            rpc_path: format!("/rpc/{}", args.mode.function()),
            markers: (0..args.writes)
                .map(|w| crate::args::marker(run, w))
                .collect(),
            args,
            notes,
        }
    }
}

/// A connected client, its stream past `ready`.
pub struct Client {
    index: usize,
    shared: Arc<Shared>,
    events: Conn,
    rpc: Option<Conn>,
    /// The first write whose value it does not hold yet.
    next: usize,
}

impl Client {
    /// Opens the stream, waits for `ready`, and in refetch mode opens the keep-alive
    /// connection for refetches.
    pub async fn connect(index: usize, shared: Arc<Shared>) -> io::Result<Client> {
        let target = format!("/events?subscribe={}", encode(&shared.key));
        let mut events = Conn::connect(&shared.args.addr)
            .await?
            .open_events(&target)
            .await?;
        loop {
            match events.next_frame().await? {
                Some(f) if f.event == "ready" => break,
                Some(_) => {}
                None => return Err(io::ErrorKind::UnexpectedEof.into()),
            }
        }
        let rpc = match shared.args.mode {
            Mode::Refetch => Some(Conn::connect(&shared.args.addr).await?),
            Mode::Push => None,
        };
        Ok(Client {
            index,
            shared,
            events,
            rpc,
            next: 0,
        })
    }

    /// Follows the stream until every write is held, then keeps its connections open
    /// until the process ends: closing them would load the server while other clients
    /// still wait for the same write.
    pub async fn run(mut self) {
        let error = match self.follow().await {
            Ok(()) => return std::future::pending().await,
            Err(e) => e.to_string(),
        };
        let _ = self.shared.notes.send(Note::Gone {
            client: self.index,
            error,
        });
    }

    async fn follow(&mut self) -> io::Result<()> {
        while self.next < self.shared.markers.len() {
            let Some(frame) = self.events.next_frame().await? else {
                return Err(io::Error::other("the event stream ended"));
            };
            match frame.event.as_str() {
                "invalidate" => self.on_invalidate(&frame.data).await?,
                "reset" => self.refetch(self.shared.args.mode == Mode::Push).await?,
                _ => {}
            }
        }
        Ok(())
    }

    async fn on_invalidate(&mut self, data: &str) -> io::Result<()> {
        let event: Value = serde_json::from_str(data)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if self.shared.args.mode == Mode::Push
            && let Some(value) = event
                .get("results")
                .and_then(|r| r.get(&self.shared.key))
                .and_then(|r| r.get("data"))
        {
            // The value as text: the marker sits in a row's body.
            let text = value.to_string();
            if self.held(&text, false) {
                return Ok(());
            }
        }
        let named = event
            .get("queries")
            .and_then(Value::as_array)
            .is_some_and(|qs| qs.iter().any(|q| q.as_str() == Some(&self.shared.key)));
        if named {
            self.refetch(self.shared.args.mode == Mode::Push).await?;
        }
        Ok(())
    }

    /// Asks `POST /rpc/<function>` over the keep-alive connection until the answer shows
    /// the next write (a few times at most).
    async fn refetch(&mut self, fallback: bool) -> io::Result<()> {
        for _ in 0..STALE_RETRIES {
            let body = self.call().await?;
            if self.held(&String::from_utf8_lossy(&body), fallback) {
                return Ok(());
            }
            let _ = self.shared.notes.send(Note::Stale);
        }
        Ok(())
    }

    async fn call(&mut self) -> io::Result<Vec<u8>> {
        let shared = Arc::clone(&self.shared);
        for attempt in 0..2 {
            if self.rpc.is_none() {
                if attempt > 0 || shared.args.mode == Mode::Refetch {
                    let _ = shared.notes.send(Note::Reconnect);
                }
                self.rpc = Some(Conn::connect(&shared.args.addr).await?);
            }
            let conn = self.rpc.as_mut().expect("just opened");
            match conn
                .request("POST", &shared.rpc_path, Some(&shared.input))
                .await
            {
                Ok(r) if r.status == 200 => return Ok(r.body),
                Ok(r) => {
                    return Err(io::Error::other(format!(
                        "{} answered {}: {}",
                        shared.rpc_path,
                        r.status,
                        String::from_utf8_lossy(&r.body)
                    )));
                }
                // The server closes a keep-alive connection left idle too long.
                Err(_) if attempt == 0 => self.rpc = None,
                Err(e) => return Err(e),
            }
        }
        unreachable!("the second attempt returns")
    }

    /// Records every write from `next` on whose marker `value` shows; whether it showed
    /// any (a value without one is stale).
    fn held(&mut self, value: &str, fallback: bool) -> bool {
        let at_us = now_us();
        let shown: Vec<usize> = (self.next..self.shared.markers.len())
            .filter(|&w| value.contains(&self.shared.markers[w]))
            .collect();
        let Some(&last) = shown.last() else {
            return false;
        };
        for write in shown {
            let _ = self.shared.notes.send(Note::Hold {
                client: self.index,
                write,
                at_us,
                fallback,
            });
        }
        self.next = last + 1;
        true
    }
}
