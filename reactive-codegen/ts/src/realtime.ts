// Real-time invalidations: one EventSource per page on `/events`, selective subscription,
// replay from `lastEventId`, acks, and a polling fallback (`/poll`) after repeated failures,
// with periodic attempts to return to SSE. See docs/protocol.md sections 4, 5, 7 and 8.

import type { Transport } from './client';
import { compareEventIds, globalOf, type Clock } from './util';

/** An `invalidate` event (protocol section 5). */
export interface InvalidateEvent {
  eventId: string;
  tables: string[];
  keys?: Record<string, Record<string, (string | null)[]> | null>;
  requiresAck: boolean;
  /** Subscription entries (verbatim) the event affects. */
  queries: string[];
}

/** A `/poll` answer (protocol section 8). */
export interface PollResult {
  eventId?: string;
  reset?: boolean;
  events?: InvalidateEvent[];
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
  EventSource?: EventSourceCtor | null;
  /** Send cookies cross-origin on the stream. */
  withCredentials?: boolean;
  /** An invalidation to apply (already deduplicated and acked). */
  onInvalidate: (ev: InvalidateEvent) => void;
  /** The server can't replay the gap: revalidate everything held with a watermark below `eventId`. */
  onReset: (eventId: string | undefined) => void;
  /** A stream is ready: `coveredFrom` is known for its entries. */
  onReady?: () => void;
  /** Connection state changes. */
  onStatus?: (mode: RealtimeMode, lastEventId: string | undefined) => void;
  /** Delay before a changed subscription reconnects, to batch mounts. Default 50 ms. */
  debounce?: number;
  /** Consecutive SSE failures before polling. Default 3. */
  maxFailures?: number;
  /** Poll interval. Default 5000 ms. */
  pollInterval?: number;
  /** How long to poll before trying SSE again. Default 30000 ms. */
  sseRetryDelay?: number;
}

/** One real-time connection for the page. */
export class Realtime {
  private readonly o: RealtimeOptions;
  private entries: string[] = [];
  private es: EventSourceLike | undefined;
  private connectionId: string | undefined;
  private debounceTimer: unknown;
  private retryTimer: unknown;
  private pollTimer: unknown;
  private failures = 0;
  private polling = false;
  private pollInFlight = false;
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

  private get ES(): EventSourceCtor | undefined {
    return this.o.EventSource === null ? undefined : (this.o.EventSource ?? globalOf<EventSourceCtor>('EventSource'));
  }

  /** Starts (or resumes) with the id to replay from (the registry's, after a reload). */
  start(lastEventId?: string): void {
    if (compareEventIds(lastEventId, this.lastEventId) > 0) this.lastEventId = lastEventId;
    this.stopped = false;
    this.reconnectSoon();
  }

  /** Closes everything. */
  stop(): void {
    this.stopped = true;
    this.closeEs();
    this.stopPolling();
    for (const t of [this.debounceTimer, this.retryTimer]) if (t !== undefined) this.o.clock.clearTimeout(t);
    this.debounceTimer = this.retryTimer = undefined;
    this.coverage.clear();
    this.setMode('off');
  }

  /** Sets the subscription entries (procedure names and query keys); reconnects if they changed. */
  setSubscription(entries: string[]): void {
    const next = [...new Set(entries)].sort();
    if (next.join('\n') === this.entries.join('\n')) return;
    this.entries = next;
    for (const k of [...this.coverage.keys()]) if (!next.includes(k)) this.coverage.delete(k);
    if (this.polling && !this.es) {
      // Polling covers new entries from the next `since`.
      for (const e of next) if (!this.coverage.has(e) && this.lastEventId) this.coverage.set(e, this.lastEventId);
    }
    this.reconnectSoon();
  }

  /** The subscription entries. */
  subscription(): string[] {
    return this.entries;
  }

  /** The event id from which events for `entry` are guaranteed to reach us, if it is subscribed and live. */
  coveredFrom(entry: string): string | undefined {
    return this.coverage.get(entry);
  }

  private reconnectSoon(): void {
    if (this.stopped) return;
    if (this.debounceTimer !== undefined) this.o.clock.clearTimeout(this.debounceTimer);
    this.debounceTimer = this.o.clock.setTimeout(() => {
      this.debounceTimer = undefined;
      this.connect();
    }, this.o.debounce ?? 50);
  }

  private setMode(m: RealtimeMode): void {
    if (m === this.mode) return;
    this.mode = m;
    this.o.onStatus?.(m, this.lastEventId);
  }

  private connect(): void {
    if (this.stopped) return;
    if (this.entries.length === 0) {
      this.closeEs();
      this.stopPolling();
      this.setMode('off');
      return;
    }
    if (this.polling) {
      // Stay on polling until the retry timer tries SSE again; poll the new set right away.
      void this.pollOnce();
      return;
    }
    this.openEs();
  }

  private query(extra: Record<string, string | undefined>, entries = this.entries): string {
    const parts = entries.map((e) => 'subscribe=' + encodeURIComponent(e));
    for (const [k, v] of Object.entries(extra)) if (v !== undefined) parts.push(k + '=' + encodeURIComponent(v));
    return parts.join('&');
  }

  private openEs(): void {
    const ES = this.ES;
    if (!ES) {
      this.startPolling();
      return;
    }
    this.closeEs();
    const from = this.lastEventId;
    const entries = this.entries;
    let es: EventSourceLike;
    try {
      es = new ES(this.o.transport.url('/events?' + this.query({ lastEventId: from })), {
        withCredentials: !!this.o.withCredentials,
      });
    } catch {
      this.fail();
      return;
    }
    this.es = es;
    if (!this.polling) this.setMode('connecting');
    const parse = (data: string): Record<string, unknown> | undefined => {
      try {
        const v = JSON.parse(data) as unknown;
        return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
      } catch {
        return undefined;
      }
    };
    es.addEventListener('ready', (ev) => {
      if (this.es !== es) return;
      const d = parse(ev.data);
      this.connectionId = typeof d?.connectionId === 'string' ? d.connectionId : undefined;
      const start = from ?? (typeof d?.eventId === 'string' ? d.eventId : undefined);
      if (!this.lastEventId && start) this.lastEventId = start;
      this.coverage.clear();
      if (start) for (const e of entries) this.coverage.set(e, start);
      this.failures = 0;
      this.stopPolling();
      this.setMode('sse');
      this.o.onReady?.();
    });
    es.addEventListener('invalidate', (ev) => {
      if (this.es !== es) return;
      const d = parse(ev.data);
      if (d) this.deliver(d as unknown as InvalidateEvent, true);
    });
    es.addEventListener('reset', (ev) => {
      if (this.es !== es) return;
      // `eventId: null` (the server could not log an event): revalidate all, keep the last id.
      const id = parse(ev.data)?.eventId;
      this.reset(typeof id === 'string' ? id : undefined);
    });
    es.addEventListener('close', () => {
      if (this.es !== es) return;
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
    if (this.polling) {
      // A probe back to SSE failed: keep polling, probe again later.
      this.closeEs();
      this.scheduleRetry(this.o.sseRetryDelay ?? 30000);
      return;
    }
    if (this.failures >= (this.o.maxFailures ?? 3)) {
      this.closeEs();
      this.startPolling();
      this.scheduleRetry(this.o.sseRetryDelay ?? 30000);
    } else if (!this.es) {
      this.scheduleRetry(Math.min(1000 * 2 ** this.failures, 10000));
    }
  }

  private scheduleRetry(ms: number): void {
    if (this.retryTimer !== undefined) this.o.clock.clearTimeout(this.retryTimer);
    this.retryTimer = this.o.clock.setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.stopped && this.entries.length) this.openEs();
    }, ms);
  }

  private deliver(ev: InvalidateEvent, fromStream: boolean): void {
    if (typeof ev.eventId !== 'string') return;
    if (fromStream && ev.requiresAck) void this.ack(ev.eventId);
    // Re-sent events (no `id:` line) and replays already seen are deduplicated by id. Ids are
    // not checked for order: across instances events may arrive slightly out of order.
    if (this.seen.has(ev.eventId)) return;
    this.seen.add(ev.eventId);
    if (this.seen.size > 512) this.seen.delete(this.seen.values().next().value!);
    if (compareEventIds(ev.eventId, this.lastEventId) > 0) this.lastEventId = ev.eventId;
    this.o.onInvalidate({
      eventId: ev.eventId,
      tables: Array.isArray(ev.tables) ? ev.tables : [],
      keys: ev.keys ?? {},
      requiresAck: !!ev.requiresAck,
      queries: Array.isArray(ev.queries) ? ev.queries : [],
    });
  }

  private reset(eventId: string | undefined): void {
    if (eventId && (compareEventIds(eventId, this.lastEventId) > 0 || !this.lastEventId)) this.lastEventId = eventId;
    this.o.onReset(eventId);
  }

  private async ack(eventId: string): Promise<void> {
    try {
      const body: Record<string, string> = { eventId };
      if (this.connectionId) body.connectionId = this.connectionId;
      await this.o.transport.request('POST', '/events/ack', body);
    } catch {
      /* the server re-sends; nothing else to do */
    }
  }

  // ---- polling ----

  private startPolling(): void {
    if (this.polling) return;
    this.polling = true;
    if (this.lastEventId) for (const e of this.entries) if (!this.coverage.has(e)) this.coverage.set(e, this.lastEventId);
    this.setMode('poll');
    void this.pollOnce();
  }

  private stopPolling(): void {
    this.polling = false;
    if (this.pollTimer !== undefined) this.o.clock.clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
  }

  /** One poll of `/poll?since=…`. */
  async pollOnce(): Promise<void> {
    if (this.pollInFlight || this.stopped) return;
    this.pollInFlight = true;
    if (this.pollTimer !== undefined) this.o.clock.clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    try {
      const r = (await this.o.transport.request('GET', '/poll?' + this.query({ since: this.lastEventId }))) as PollResult;
      if (!this.polling) return;
      if (r.reset) this.reset(typeof r.eventId === 'string' ? r.eventId : undefined);
      for (const ev of r.events ?? []) this.deliver(ev, false);
      if (typeof r.eventId === 'string') {
        if (!this.lastEventId) for (const e of this.entries) this.coverage.set(e, r.eventId);
        if (compareEventIds(r.eventId, this.lastEventId) > 0) this.lastEventId = r.eventId;
        this.o.onReady?.();
      }
    } catch {
      /* try again next interval */
    } finally {
      this.pollInFlight = false;
      if (this.polling && !this.stopped)
        this.pollTimer = this.o.clock.setTimeout(() => void this.pollOnce(), this.o.pollInterval ?? 5000);
    }
  }

  /**
   * Fetches the events after `since` for some entries once (`/poll`): closes a gap between a
   * result's watermark and the point from which the live stream covers it, or checks what changed
   * while the page was closed. Returns the poll answer (`eventId` is the server's head).
   */
  catchUp(since: string, entries: string[]): Promise<PollResult> {
    return this.o.transport.request('GET', '/poll?' + this.query({ since }, entries)) as Promise<PollResult>;
  }
}
