//! One simulated TeamHub user: the agent screen's five queries, an event stream
//! subscribed to them, and the reactions of the real client (`core.ts` `onInvalidate`):
//! a pushed value is applied; an event newer than the value held makes a refetch; an
//! older one nothing. A navigation fetches the new agent's queries and reopens the
//! stream with the new subscription from the last event id (as `setSubscription` does).

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

use crate::http::{Conn, Frame, encode};
use crate::workload::{Op, Org, Query, READS, detail, panel};

/// What clients count, all together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Navigations,
    Writes,
    /// Reads of a navigation (three per navigation).
    Reads,
    /// Reads of a query no client had read before in the run (a certain miss).
    ColdReads,
    /// Refetches on `invalidate` or `reset`.
    Refetches,
    /// Refetches whose answer was the value already held.
    Unnecessary,
    /// Values applied from an event's `results`.
    Pushed,
    /// Invalidations of a held query whose value was already as new as the event.
    Skipped,
    /// `reset` frames.
    Resets,
    StreamOpens,
    Errors,
}

const COUNTS: usize = 11;

/// The counters every client adds to, and the queries read so far.
#[derive(Default)]
pub struct Tally {
    counts: [AtomicU64; COUNTS],
    /// Refetches per read function (index in [`READS`]), and of those the unnecessary.
    refetches: [AtomicU64; READS.len()],
    unnecessary: [AtomicU64; READS.len()],
    seen: Mutex<HashSet<String>>,
    first_error: Mutex<Option<String>>,
}

/// A copy of the counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub counts: [u64; COUNTS],
    pub refetches: [u64; READS.len()],
    pub unnecessary: [u64; READS.len()],
}

impl Snapshot {
    pub fn get(&self, c: Count) -> u64 {
        self.counts[c as usize]
    }

    /// `self - before`, counter by counter.
    pub fn since(&self, before: &Snapshot) -> Snapshot {
        let mut out = *self;
        let sub = |a: &mut [u64], b: &[u64]| a.iter_mut().zip(b).for_each(|(a, b)| *a -= b);
        sub(&mut out.counts, &before.counts);
        sub(&mut out.refetches, &before.refetches);
        sub(&mut out.unnecessary, &before.unnecessary);
        out
    }
}

impl Tally {
    fn add(&self, c: Count) {
        self.counts[c as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn error(&self, e: &io::Error) {
        self.add(Count::Errors);
        self.first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(|| e.to_string());
    }

    pub fn first_error(&self) -> Option<String> {
        self.first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn snapshot(&self) -> Snapshot {
        let load = |a: &[AtomicU64], out: &mut [u64]| {
            for (o, a) in out.iter_mut().zip(a) {
                *o = a.load(Ordering::Relaxed);
            }
        };
        let mut s = Snapshot::default();
        load(&self.counts, &mut s.counts);
        load(&self.refetches, &mut s.refetches);
        load(&self.unnecessary, &mut s.unnecessary);
        s
    }
}

/// A query's value as the client holds it.
struct Held {
    query: Query,
    data: Value,
    /// The event id it reflects (`0`: unknown, older than any event).
    event_id: u64,
}

/// A user's session.
pub struct Client {
    addr: String,
    org: Arc<Org>,
    auth: String,
    tally: Arc<Tally>,
    rpc: Option<Conn>,
    /// By key: the screen's queries.
    held: HashMap<String, Held>,
    agent: usize,
    last_event: u64,
    /// The stream's reader, its generation, and where it sends frames.
    reader: Option<JoinHandle<()>>,
    generation: u64,
    frames_tx: UnboundedSender<(u64, Option<Frame>)>,
    frames: UnboundedReceiver<(u64, Option<Frame>)>,
}

impl Client {
    /// Signs in as `user` of `org`, loads the screen of `agent` and opens its stream.
    pub async fn start(
        addr: &str,
        org: Arc<Org>,
        user: &str,
        agent: usize,
        tally: Arc<Tally>,
    ) -> io::Result<Client> {
        let (frames_tx, frames) = unbounded_channel();
        let mut client = Client {
            addr: addr.to_string(),
            auth: format!("Bearer {}.{user}", org.token),
            org,
            tally,
            rpc: None,
            held: HashMap::new(),
            agent,
            last_event: 0,
            reader: None,
            generation: 0,
            frames_tx,
            frames,
        };
        for q in panel(&client.org) {
            client.load(q).await?;
        }
        client.open(agent).await?;
        Ok(client)
    }

    /// Follows operations and events until the operations end.
    pub async fn run(mut self, mut ops: UnboundedReceiver<Op>) {
        loop {
            let result = tokio::select! {
                op = ops.recv() => match op {
                    Some(op) => self.operate(op).await,
                    None => break,
                },
                Some((generation, frame)) = self.frames.recv() => {
                    if generation == self.generation {
                        self.on_frame(frame).await
                    } else {
                        Ok(())
                    }
                }
            };
            if let Err(e) = result {
                self.tally.error(&e);
            }
        }
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
    }

    async fn operate(&mut self, op: Op) -> io::Result<()> {
        match op {
            Op::Navigate(agent) => {
                self.tally.add(Count::Navigations);
                self.open(agent).await
            }
            Op::Write(function, input) => {
                self.tally.add(Count::Writes);
                self.call(function, &input.to_string()).await.map(drop)
            }
        }
    }

    /// Shows agent `agent`: fetches its three queries (always: this client keeps no
    /// copy of screens it left), then, if the agent changed, reopens the stream.
    async fn open(&mut self, agent: usize) -> io::Result<()> {
        let changed = agent != self.agent || self.reader.is_none();
        if changed {
            let old: HashSet<String> = detail(&self.org, &self.org.agents[self.agent])
                .iter()
                .map(Query::key)
                .collect();
            self.held.retain(|k, _| !old.contains(k));
            self.agent = agent;
        }
        for q in detail(&self.org, &self.org.agents[agent]) {
            self.tally.add(Count::Reads);
            self.load(q).await?;
        }
        if changed {
            self.subscribe().await?;
        }
        Ok(())
    }

    /// Reads `q` and holds its value.
    async fn load(&mut self, q: Query) -> io::Result<()> {
        let key = q.key();
        let cold = self
            .tally
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone());
        if cold {
            self.tally.add(Count::ColdReads);
        }
        let (data, event_id) = self.call(q.function, &q.input).await?;
        self.held.insert(
            key,
            Held {
                query: q,
                data,
                event_id,
            },
        );
        Ok(())
    }

    /// Opens a stream subscribed to the held queries, replaying from the last event id.
    async fn subscribe(&mut self) -> io::Result<()> {
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
        self.generation += 1;
        let mut target = String::from("/api/events?");
        if self.last_event > 0 {
            target.push_str(&format!("lastEventId={}&", self.last_event));
        }
        let keys: Vec<String> = self
            .held
            .keys()
            .map(|k| format!("subscribe={}", encode(k)))
            .collect();
        target.push_str(&keys.join("&"));
        let mut events = Conn::connect(&self.addr)
            .await?
            .with_header("authorization", &self.auth)
            .open_events(&target)
            .await?;
        loop {
            match events.next_frame().await? {
                Some(f) if f.event == "ready" => {
                    if self.last_event == 0 {
                        self.last_event = event_id_of(&f.data);
                    }
                    break;
                }
                Some(_) => {}
                None => return Err(io::ErrorKind::UnexpectedEof.into()),
            }
        }
        self.tally.add(Count::StreamOpens);
        let (tx, generation) = (self.frames_tx.clone(), self.generation);
        self.reader = Some(tokio::spawn(async move {
            loop {
                let frame = events.next_frame().await.ok().flatten();
                let end = frame.is_none();
                if tx.send((generation, frame)).is_err() || end {
                    return;
                }
            }
        }));
        Ok(())
    }

    async fn on_frame(&mut self, frame: Option<Frame>) -> io::Result<()> {
        let Some(frame) = frame else {
            // The stream ended (the server closed it): reopen, as the browser does.
            self.reader = None;
            return self.subscribe().await;
        };
        match frame.event.as_str() {
            "invalidate" => self.on_invalidate(&frame.data).await,
            "reset" => {
                self.tally.add(Count::Resets);
                let keys: Vec<String> = self.held.keys().cloned().collect();
                for key in keys {
                    self.refetch(&key).await?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn on_invalidate(&mut self, data: &str) -> io::Result<()> {
        let event: Value = serde_json::from_str(data)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let id = event_id_of_value(&event["eventId"]);
        self.last_event = self.last_event.max(id);
        let named: Vec<String> = event["queries"]
            .as_array()
            .map(|qs| {
                qs.iter()
                    .filter_map(|q| q.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for key in named {
            let Some(held) = self.held.get_mut(&key) else {
                continue;
            };
            let pushed = event.get("results").and_then(|r| r.get(&key));
            if let Some(pushed) = pushed {
                held.data = pushed["data"].clone();
                held.event_id = event_id_of_value(&pushed["eventId"]);
                self.tally.add(Count::Pushed);
            }
            if held.event_id != 0 && held.event_id >= id {
                if pushed.is_none() {
                    self.tally.add(Count::Skipped);
                }
                continue;
            }
            self.refetch(&key).await?;
        }
        Ok(())
    }

    async fn refetch(&mut self, key: &str) -> io::Result<()> {
        let Some(held) = self.held.get(key) else {
            return Ok(());
        };
        let query = held.query.clone();
        let (data, event_id) = self.call(query.function, &query.input).await?;
        let f = READS.iter().position(|r| *r == query.function).unwrap_or(0);
        self.tally.add(Count::Refetches);
        self.tally.refetches[f].fetch_add(1, Ordering::Relaxed);
        if let Some(held) = self.held.get_mut(key) {
            if held.data == data {
                self.tally.add(Count::Unnecessary);
                self.tally.unnecessary[f].fetch_add(1, Ordering::Relaxed);
            }
            held.data = data;
            held.event_id = event_id;
        }
        Ok(())
    }

    /// `POST /api/rpc/<function>` over the keep-alive connection: the answer's data and
    /// event id.
    async fn call(&mut self, function: &str, input: &str) -> io::Result<(Value, u64)> {
        let path = format!("/api/rpc/{function}");
        for attempt in 0..2 {
            let conn = match &mut self.rpc {
                Some(conn) => conn,
                None => self.rpc.insert(
                    Conn::connect(&self.addr)
                        .await?
                        .with_header("authorization", &self.auth),
                ),
            };
            match conn.request("POST", &path, Some(input)).await {
                Ok(r) if r.status == 200 => {
                    let mut body: Value = serde_json::from_slice(&r.body)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    let id = event_id_of_value(&body["eventId"]);
                    return Ok((body["data"].take(), id));
                }
                Ok(r) => {
                    return Err(io::Error::other(format!(
                        "{path} answered {}: {}",
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
}

fn event_id_of_value(v: &Value) -> u64 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The `eventId` of a frame's JSON data (`0` when absent or unknown).
fn event_id_of(data: &str) -> u64 {
    serde_json::from_str::<Value>(data).map_or(0, |v| event_id_of_value(&v["eventId"]))
}
