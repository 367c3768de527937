// Real-time invalidations: one EventSource per page on `/events`, selective subscription,
// replay from `lastEventId`, acks, and a polling fallback (`/poll`) after repeated failures,
// with periodic attempts to return to SSE. See docs/protocol.md sections 4, 5, 7 and 8.

import type { Transport } from './client.js';
import type { ChannelLike, LockManagerLike, SharedResult } from './core.js';
import { globalOf, jitter, maxEventId, parseJson, str, type Clock } from './util.js';

/** An `invalidate` event (protocol section 5). */
export interface InvalidateEvent {
  eventId: string;
  tables: string[];
  /** Informational, and may be absent or shrink (the server already matched): never relied on. */
  keys?: Record<string, Record<string, (string | null)[]> | null> | undefined;
  requiresAck: boolean;
  /** Subscription entries (verbatim) the event affects. */
  queries: string[];
  /** New values of pushed queries (`push` functions), by entry: applied like fetched results. */
  results?: Record<string, { eventId: string; data: unknown }> | undefined;
}

/** A `/poll` answer (protocol section 8). */
export interface PollResult {
  eventId?: string | undefined;
  reset?: boolean | undefined;
  /** Events after this page exist: ask again from `eventId`. */
  more?: boolean | undefined;
  events?: InvalidateEvent[] | undefined;
}

/** The part of `EventSource` the runtime uses. */
export interface EventSourceLike {
  readonly readyState: number;
  onerror: ((ev: unknown) => void) | null;
  addEventListener(type: string, listener: (ev: { data: string; lastEventId?: string }) => void): void;
  close(): void;
}

/** An `EventSource` constructor. */
export type EventSourceCtor = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike;

/** Where real time stands. */
export type RealtimeMode = 'off' | 'connecting' | 'sse' | 'poll';

export interface RealtimeOptions {
  transport: Transport;
  clock: Clock;
  /** `EventSource` implementation; default the global one; `null` polls only. */
  EventSource?: EventSourceCtor | null | undefined;
  /** Send cookies cross-origin on the stream. */
  withCredentials?: boolean | undefined;
  /** An invalidation to apply (already deduplicated and acked). */
  onInvalidate: (ev: InvalidateEvent) => void;
  /** The server can't replay the gap: revalidate everything held with a watermark below `eventId`. */
  onReset: (eventId: string | undefined) => void;
  /** A stream is ready: `coveredFrom` is known for its entries. */
  onReady?: (() => void) | undefined;
  /** Connection state changes. */
  onStatus?: ((mode: RealtimeMode, lastEventId: string | undefined) => void) | undefined;
  /** Delay before a changed subscription reconnects, to batch mounts. Default 50 ms. */
  debounce?: number | undefined;
  /** Consecutive SSE failures before polling. Default 3. */
  maxFailures?: number | undefined;
  /** Poll interval. Default 5000 ms. */
  pollInterval?: number | undefined;
  /** How long to poll before trying SSE again. Default 30000 ms. */
  sseRetryDelay?: number | undefined;
  /**
   * The server's heartbeat interval (`: ping` comments). A stream that delivers nothing for twice
   * this long is dead and is reopened. Default 30000 ms; 0 turns detection off.
   */
  heartbeat?: number | undefined;
}

/** What the client uses of real time (`Realtime`, or `SharedStream` of `./tabs`). */
export type RealtimeLike = Pick<Realtime, 'mode' | 'start' | 'stop' | 'setSubscription' | 'coveredFrom' | 'catchUp'> & {
  /** Posts a result to the other tabs (`SharedStream`). */
  share?(m: SharedResult): void;
};

/**
 * What the client gives the class that holds real time: the options, the client's `locks` and
 * `channel` options (`null`: no cross-tab coordination), and the scope's name.
 */
export interface StreamOptions extends RealtimeOptions {
  /** `reactive:` + tenant, user and version: streams are shared within it. */
  name: string;
  locks?: LockManagerLike | null | undefined;
  channel?: (((name: string) => ChannelLike) | null) | undefined;
  /** A result another tab posted. */
  onShared?: ((m: SharedResult) => void) | undefined;
}

/** A class that holds real time. */
export type StreamCtor = new (o: StreamOptions) => RealtimeLike;

/** Window events after which a stream may be dead: reconnect at once. */
const WAKE = ['online', 'pageshow', 'visibilitychange'];

/** One real-time connection for the page. */
export class Realtime {
  private readonly o: RealtimeOptions;
  private entries: string[] = [];
  private es: EventSourceLike | undefined;
  private connectionId: string | undefined;
  /**
   * Pending timers: `d` the debounced reconnect, `r` the next SSE attempt, `p` the next poll, `h`
   * the stream's death (reset by everything it delivers).
   */
  private readonly timers: { d?: unknown; r?: unknown; p?: unknown; h?: unknown } = {};
  private failures = 0;
  private pollFailures = 0;
  /** When the stream last delivered something (or was opened). */
  private aliveAt?: number | undefined;
  private polling?: boolean | undefined;
  private pollInFlight?: boolean | undefined;
  private stopped = true;
  /** Newest event id received (stream, replay or poll). */
  lastEventId: string | undefined;
  /** Current state. */
  mode: RealtimeMode = 'off';
  /** Recently delivered event ids (deduplication). */
  private readonly seen = new Set<string>();
  /** Per subscription entry, the event id from which delivery is guaranteed. */
  private readonly coverage = new Map<string, string>();

  constructor(opts: RealtimeOptions) {
    this.o = opts;
  }

  /** Starts (or resumes) with the id to replay from (the registry's, after a reload). */
  start(lastEventId?: string): void {
    this.advance(lastEventId);
    this.stopped = false;
    for (const t of WAKE) globalOf<EventTarget>('window')?.addEventListener?.(t, this.wake);
    this.reconnectSoon();
  }

  /** Closes everything. */
  stop(): void {
    for (const t of WAKE) globalOf<EventTarget>('window')?.removeEventListener?.(t, this.wake);
    this.stopped = true;
    this.timer('d');
    this.timer('r');
    this.coverage.clear();
    this.halt();
  }

  /** Sets the subscription entries (procedure names and query keys); reconnects if they changed. */
  setSubscription(entries: string[]): void {
    const next = [...new Set(entries)].sort();
    if (next.join('\n') === this.entries.join('\n')) return;
    this.entries = next;
    for (const k of [...this.coverage.keys()]) if (!next.includes(k)) this.coverage.delete(k);
    // Polling covers new entries from the next `since`.
    if (this.polling && !this.es) this.cover();
    this.reconnectSoon();
  }

  /** The event id from which events for `entry` are guaranteed to reach us, if it is subscribed and live. */
  coveredFrom(entry: string): string | undefined {
    return this.coverage.get(entry);
  }

  /** Moves `lastEventId` forward to `id`. */
  private advance(id: string | undefined): void {
    this.lastEventId = maxEventId(this.lastEventId, id);
  }

  /** Entries not yet covered are covered from `lastEventId` (polling asks from there). */
  private cover(): void {
    const from = this.lastEventId;
    if (from) for (const e of this.entries) if (!this.coverage.has(e)) this.coverage.set(e, from);
  }

  /** Clears timer `k` and, given `fn`, sets it to run `fn` after `ms`. */
  private timer(k: 'd' | 'r' | 'p' | 'h', ms?: number, fn?: () => void): void {
    const t = this.timers;
    if (t[k] !== undefined) this.o.clock.clearTimeout(t[k]);
    t[k] = fn
      ? this.o.clock.setTimeout(() => {
          t[k] = undefined;
          fn();
        }, ms!)
      : undefined;
  }

  private reconnectSoon(): void {
    if (!this.stopped) this.timer('d', this.o.debounce ?? 50, () => this.connect());
  }

  private setMode(m: RealtimeMode): void {
    if (m === this.mode) return;
    this.mode = m;
    this.o.onStatus?.(m, this.lastEventId);
  }

  /** No stream, no polling: off. */
  private halt(): void {
    this.closeEs();
    this.stopPolling();
    this.setMode('off');
  }

  private connect(): void {
    if (this.stopped) return;
    if (!this.entries.length) this.halt();
    // Stay on polling until the retry timer tries SSE again; poll the new set right away.
    else if (this.polling) void this.pollOnce();
    else this.openEs();
  }

  private query(name: string, value: string | undefined, entries = this.entries): string {
    const parts = entries.map((e) => 'subscribe=' + encodeURIComponent(e));
    if (value) parts.push(name + '=' + encodeURIComponent(value));
    return parts.join('&');
  }

  /** The stream delivered something (or opened): it is alive for another two heartbeats. */
  private alive(): void {
    const hb = this.o.heartbeat ?? 30000;
    this.aliveAt = this.o.clock.now();
    if (hb)
      this.timer('h', 2 * hb, () => {
        this.closeEs();
        this.fail();
      });
  }

  /**
   * The page came back (visible, restored from the back/forward cache, online): a stream not
   * known to be alive may be dead, so reconnect at once (and poll at once when polling).
   * `shown` (`true`): another tab's page came back, this one may be hidden (a shared stream).
   */
  wake = (shown?: unknown): void => {
    if (
      this.timers.d === undefined && // (a connect is coming anyway)
      (shown === true || !globalOf<{ hidden?: boolean }>('document')?.hidden) &&
      !(this.es && this.o.clock.now() - this.aliveAt! < (this.o.heartbeat ?? 30000))
    ) {
      this.failures = 0;
      if (this.polling) void this.pollOnce();
      this.scheduleRetry(0);
    }
  };

  private openEs(): void {
    this.timer('r');
    const ES = this.o.EventSource === null ? undefined : (this.o.EventSource ?? globalOf<EventSourceCtor>('EventSource'));
    if (!ES) {
      this.startPolling();
      return;
    }
    this.closeEs();
    const from = this.lastEventId;
    const entries = this.entries;
    let es: EventSourceLike;
    try {
      es = new ES(this.o.transport.url('/events?' + this.query('lastEventId', from)), {
        withCredentials: !!this.o.withCredentials,
      });
    } catch {
      this.fail();
      return;
    }
    this.es = es;
    this.alive();
    if (!this.polling) this.setMode('connecting');
    // Listens to an event of this stream only (not of one that replaced it), with its parsed data.
    const on = (type: string, fn: (d: Record<string, unknown> | undefined) => void): void =>
      es.addEventListener(type, (ev) => {
        if (this.es === es) {
          this.alive();
          fn(parseJson(ev.data) as Record<string, unknown> | undefined);
        }
      });
    // Heartbeat comments, as a fetch-based EventSource reports them (the browser's hides them).
    on('ping', () => undefined);
    on('ready', (d) => {
      this.connectionId = str(d?.['connectionId']);
      const start = from ?? str(d?.['eventId']);
      if (!this.lastEventId && start) this.lastEventId = start;
      this.coverage.clear();
      if (start) for (const e of entries) this.coverage.set(e, start);
      this.failures = 0;
      this.stopPolling();
      this.setMode('sse');
      this.o.onReady?.();
    });
    on('invalidate', (d) => d && this.deliver(d as unknown as InvalidateEvent, true));
    // `eventId: null` (the server could not log an event): revalidate all, keep the last id.
    on('reset', (d) => this.reset(str(d?.['eventId'])));
    on('close', () => {
      this.closeEs();
      this.fail();
    });
    es.onerror = () => {
      if (this.es !== es) return;
      this.coverage.clear();
      // The browser retries by itself (readyState CONNECTING = 0) unless the server refused (CLOSED = 2).
      if (es.readyState === 2) this.closeEs();
      this.fail();
    };
  }

  private closeEs(): void {
    this.timer('h');
    if (this.es) {
      this.es.onerror = null;
      this.es.close();
    }
    this.es = undefined;
    this.connectionId = undefined;
  }

  private fail(): void {
    this.failures++;
    if (this.mode === 'sse') this.setMode('connecting');
    // Polling (a probe back to SSE failed: keep polling), or failed too often: poll, and probe again later.
    if (this.polling || this.failures >= (this.o.maxFailures ?? 3)) {
      this.closeEs();
      this.startPolling();
      this.scheduleRetry(this.o.sseRetryDelay ?? 30000);
    } else if (!this.es) {
      this.scheduleRetry(Math.min(1000 * 2 ** this.failures, 10000));
    }
  }

  private scheduleRetry(ms: number): void {
    this.timer('r', jitter(ms), () => {
      if (!this.stopped && this.entries.length) this.openEs();
    });
  }

  private deliver(ev: InvalidateEvent, fromStream: boolean): void {
    const id = ev.eventId;
    if (typeof id !== 'string') return;
    // Ack (the server re-sends on failure; nothing else to do). `connectionId` is left out when unknown.
    if (fromStream && ev.requiresAck)
      this.o.transport
        .request('POST', '/events/ack', { eventId: id, connectionId: this.connectionId })
        .catch(() => undefined);
    // Re-sent events (no `id:` line) and replays already seen are deduplicated by id. Ids are
    // not checked for order: across instances events may arrive slightly out of order.
    if (this.seen.has(id)) return;
    this.seen.add(id);
    if (this.seen.size > 512) this.seen.delete(this.seen.values().next().value!);
    this.advance(id);
    // `keys` may be absent or bounded (the server already matched): only tables and queries count.
    const list = (x: unknown): string[] => (Array.isArray(x) ? x : []);
    this.o.onInvalidate({ ...ev, tables: list(ev.tables), queries: list(ev.queries) });
  }

  private reset(eventId: string | undefined): void {
    this.advance(eventId);
    this.o.onReset(eventId);
  }

  // ---- polling ----

  private startPolling(): void {
    if (this.polling) return;
    this.polling = true;
    this.cover();
    this.setMode('poll');
    void this.pollOnce();
  }

  private stopPolling(): void {
    this.polling = false;
    this.timer('p');
  }

  /** One poll of `/poll?since=…`. */
  async pollOnce(): Promise<void> {
    if (this.pollInFlight || this.stopped) return;
    this.pollInFlight = true;
    this.timer('p');
    try {
      const r = await this.catchUp(this.lastEventId, this.entries);
      this.pollFailures = 0;
      if (!this.polling) return;
      const head = str(r.eventId);
      if (r.reset) this.reset(head);
      for (const ev of r.events ?? []) this.deliver(ev, false);
      if (head) {
        const first = !this.lastEventId;
        this.advance(head);
        if (first) this.cover();
        this.o.onReady?.();
      }
    } catch {
      this.pollFailures++; // try again later: the interval doubles while polls fail (up to 16x)
    } finally {
      this.pollInFlight = false;
      if (this.polling && !this.stopped)
        this.timer(
          'p',
          jitter((this.o.pollInterval ?? 5000) * 2 ** Math.min(this.pollFailures, 4)),
          () => void this.pollOnce(),
        );
    }
  }

  /**
   * Fetches the events after `since` for some entries once (`/poll`): closes a gap between a
   * result's watermark and the point from which the live stream covers it, or checks what changed
   * while the page was closed. Returns the poll answer (`eventId` is the server's head).
   */
  async catchUp(since: string | undefined, entries: string[], events: InvalidateEvent[] = []): Promise<PollResult> {
    const r = (await this.o.transport.request('GET', '/poll?' + this.query('since', since, entries))) as PollResult;
    events.push(...(r.events ?? []));
    // Every page of the gap: a later one may hold the event that matters (the log is bounded).
    return r.more && !r.reset ? this.catchUp(r.eventId, entries, events) : { ...r, events };
  }

}
