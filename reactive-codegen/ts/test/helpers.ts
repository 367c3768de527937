// Test doubles: fake clock, storage, fetch server, EventSource, locks and BroadcastChannel.

import type { Clock } from '../src/util';
import type { StorageLike } from '../src/registry';
import type { EventSourceLike } from '../src/realtime';
import { createReactiveClient, type ChannelLike, type LockManagerLike, type ReactiveClient } from '../src/core';
import { procedures, type Procedures } from './fixtures/procedures';

/** Lets pending promise callbacks run. */
export async function flush(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}

/** A manual clock: timers run only when `advance` passes their time. */
export class FakeClock implements Clock {
  t = 1_000_000;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void; seq: number }>();
  now = (): number => this.t;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn, seq: id });
    return id;
  };
  clearTimeout = (h: unknown): void => {
    this.timers.delete(h as number);
  };
  /** Moves time forward, running due timers in order and letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void; seq: number }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[1].seq < next[1].seq))) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
      await flush();
    }
    this.t = end;
    await flush();
  }
  pendingTimers(): number {
    return this.timers.size;
  }
}

/** In-memory `Storage` with an optional quota (in UTF-16 code units of keys + values). */
export class MemoryStorage implements StorageLike {
  map = new Map<string, string>();
  quota = Infinity;
  getItem(k: string): string | null {
    return this.map.has(k) ? this.map.get(k)! : null;
  }
  setItem(k: string, v: string): void {
    const used = this.used() - (this.map.has(k) ? k.length + this.map.get(k)!.length : 0);
    if (used + k.length + v.length > this.quota) {
      const e = new Error('QuotaExceededError');
      e.name = 'QuotaExceededError';
      throw e;
    }
    this.map.set(k, v);
  }
  removeItem(k: string): void {
    this.map.delete(k);
  }
  get length(): number {
    return this.map.size;
  }
  key(i: number): string | null {
    return [...this.map.keys()][i] ?? null;
  }
  used(): number {
    let n = 0;
    for (const [k, v] of this.map) n += k.length + v.length;
    return n;
  }
}

export interface Call {
  method: string;
  path: string;
  body: unknown;
  headers: Record<string, string>;
}

type Handler = (call: Call) => { status?: number; body: unknown } | Promise<{ status?: number; body: unknown }>;

/**
 * A fake server behind `fetch`. `hold()` makes requests wait until `release()`, to test sharing
 * and races.
 */
export class FakeServer {
  calls: Call[] = [];
  handlers = new Map<string, Handler>();
  held: { resolve: () => void; path: string }[] = [];
  holding = false;

  on(pathPrefix: string, h: Handler): this {
    this.handlers.set(pathPrefix, h);
    return this;
  }
  hold(): void {
    this.holding = true;
  }
  release(): void {
    this.holding = false;
    const h = this.held;
    this.held = [];
    for (const x of h) x.resolve();
  }
  /** Lets the oldest held request through (others stay held). */
  async releaseNext(): Promise<void> {
    this.held.shift()?.resolve();
    await flush();
  }
  count(pathPrefix: string): number {
    return this.calls.filter((c) => c.path.startsWith(pathPrefix)).length;
  }
  fetch = (async (url: string, init: { method: string; body?: string; headers: Record<string, string> }) => {
    const path = String(url);
    const call: Call = {
      method: init.method,
      path,
      body: init.body === undefined ? undefined : JSON.parse(init.body),
      headers: init.headers,
    };
    this.calls.push(call);
    if (this.holding) await new Promise<void>((resolve) => this.held.push({ resolve, path }));
    let best: Handler | undefined;
    let bestLen = -1;
    for (const [p, h] of this.handlers) if (path.startsWith(p) && p.length > bestLen) (best = h), (bestLen = p.length);
    const r = best ? await best(call) : { status: 404, body: { error: { code: 'not_found', message: 'no route', path: null } } };
    const status = r.status ?? 200;
    return {
      ok: status >= 200 && status < 300,
      status,
      statusText: '',
      json: async () => r.body,
    } as unknown as Response;
  }) as unknown as typeof fetch;
}

/** A fake EventSource; tests drive it with `emit`, `fail`. */
export class FakeEventSource implements EventSourceLike {
  static instances: FakeEventSource[] = [];
  static reset(): void {
    FakeEventSource.instances = [];
  }
  static get last(): FakeEventSource {
    return FakeEventSource.instances[FakeEventSource.instances.length - 1]!;
  }
  static open(): FakeEventSource[] {
    return FakeEventSource.instances.filter((e) => !e.closed);
  }
  readyState = 0;
  closed = false;
  onerror: ((ev: unknown) => void) | null = null;
  listeners = new Map<string, ((ev: { data: string }) => void)[]>();
  constructor(
    public url: string,
    public init?: { withCredentials?: boolean },
  ) {
    FakeEventSource.instances.push(this);
  }
  addEventListener(type: string, fn: (ev: { data: string }) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }
  close(): void {
    this.closed = true;
    this.readyState = 2;
  }
  emit(type: string, data: unknown): void {
    this.readyState = 1;
    for (const fn of this.listeners.get(type) ?? []) fn({ data: JSON.stringify(data) });
  }
  ready(eventId: string, connectionId = 'c1'): void {
    this.emit('ready', { connectionId, eventId });
  }
  fail(closed = false): void {
    this.readyState = closed ? 2 : 0;
    this.onerror?.({});
  }
  params(): URLSearchParams {
    return new URLSearchParams(this.url.split('?')[1] ?? '');
  }
}

/** Locks shared by several clients (like `navigator.locks` across tabs of one browser). */
export class FakeLocks implements LockManagerLike {
  private tails = new Map<string, Promise<unknown>>();
  async request<T>(name: string, cb: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(name) ?? Promise.resolve();
    const run = prev.then(cb, cb);
    this.tails.set(
      name,
      run.catch(() => undefined),
    );
    return run;
  }
}

/** BroadcastChannels of one browser. */
export class FakeChannels {
  private members = new Map<string, Set<ChannelLike>>();
  /** Every message posted, with its channel's name. */
  log: { name: string; msg: unknown }[] = [];
  /** Posts `msg` from outside (another tab) to every channel whose name starts with `prefix`. */
  post(prefix: string, msg: unknown): void {
    for (const [name, set] of this.members)
      if (name.startsWith(prefix)) for (const ch of set) queueMicrotask(() => ch.onmessage?.({ data: msg }));
  }
  make = (name: string): ChannelLike => {
    const set = this.members.get(name) ?? new Set<ChannelLike>();
    this.members.set(name, set);
    const ch: ChannelLike = {
      onmessage: null,
      postMessage: (msg: unknown) => {
        this.log.push({ name, msg });
        const copy = structuredClone(msg) as unknown; // (throws DataCloneError as browsers do)
        for (const other of set) if (other !== ch) queueMicrotask(() => other.onmessage?.({ data: copy }));
      },
      close: () => set.delete(ch),
    };
    set.add(ch);
    return ch;
  };
}

/** Pretends to be a browser page (the runtime starts background work only where `window` exists). */
export function installWindow(): void {
  (globalThis as Record<string, unknown>).window = globalThis;
}

export function ok(data: unknown, eventId: string): { body: unknown } {
  return { body: { data, eventId } };
}

// Jitter multiplies delays by 0.5 + Math.random(): 0.5 makes every delay exact in tests that
// don't test jitter itself.
Math.random = () => 0.5;

/** A page's client of the fixture procedures: fake server, clock and EventSource, memory storage, no tabs. */
export function pageClient(server: FakeServer, clock: FakeClock): ReactiveClient<Procedures> {
  return createReactiveClient<Procedures>({
    fetch: server.fetch,
    clock,
    storage: new MemoryStorage(),
    EventSource: FakeEventSource,
    locks: null,
    channel: null,
    procedures,
  });
}
