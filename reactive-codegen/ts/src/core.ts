// The framework-free reactive client: ties the transport, the registry, the scheduler and real
// time together, and keeps one observable state per query key. The React binding is a thin layer
// over `subscribe` / `getSnapshot` / `mutate`.

import { RpcError, Transport, type TransportOptions } from './client.js';
import { Realtime, type EventSourceCtor, type InvalidateEvent, type PollResult, type RealtimeLike, type RealtimeMode, type StreamCtor } from './realtime.js';
import { QueryRegistry, type StorageLike } from './registry.js';
import { BACKGROUND, HINT, MOUNTED, Scheduler } from './scheduler.js';
import type { AnyProcedures, InputOf, MutationName, OutputOf, QueryName, QueryRef } from './types.js';
import { compareEventIds, entriesOf, globalOf, jitter, maxEventId, procedureOf, queryKey, realClock, type Clock } from './util.js';

/** What a hook shows for one query. */
export interface QuerySnapshot<T = unknown> {
  /** The data: server result with pending optimistic updates applied; cached data while stale. */
  data: T | undefined;
  /** The last error, if the last revalidation failed. */
  error: RpcError | undefined;
  /** No data yet (first load, or server rendering). */
  isLoading: boolean;
  /** The data may be outdated: from the registry and not yet revalidated, or invalidated. */
  isStale: boolean;
}

/** The snapshot every query has during server rendering and before it has data. */
export const LOADING: QuerySnapshot<never> = {
  data: undefined,
  error: undefined,
  isLoading: true,
  isStale: false,
};

/** `navigator.locks` subset used to fetch a change once per browser. */
export interface LockManagerLike {
  request<T>(name: string, cb: () => Promise<T>): Promise<T>;
}

/** `BroadcastChannel` subset. */
export interface ChannelLike {
  postMessage(msg: unknown): void;
  close(): void;
  onmessage: ((ev: { data: unknown }) => void) | null;
}

export interface ClientOptions<P> extends TransportOptions {
  /** The tenant (organization) whose data the registry holds. Default `"default"`. */
  tenant?: string | undefined;
  /** The signed-in user: the registry, channels and locks are keyed by tenant and user. */
  user?: string | undefined;
  /**
   * Cache buster: a hash of the procedures' output types. Data cached under another version is
   * never read (after a deploy that changed a type, old-shape data is not rendered as the new
   * type) and is the first to go when storage is full.
   */
  version?: string | undefined;
  /** `"local"` (default), `"session"`, `"memory"`, or a `Storage`-like object. */
  storage?: 'local' | 'session' | 'memory' | StorageLike | null | undefined;
  /** Registry size cap in bytes. Default 2 MB. */
  maxBytes?: number | undefined;
  /** Generated runtime metadata (`procedures`): dependencies let invalidations mark more entries stale. */
  procedures?: { readonly [K in keyof P]?: { readonly dependencies: readonly string[] } } | undefined;
  /** Real time: `false` turns it off. Default on where `EventSource` or `fetch` exists. */
  realtime?: boolean | undefined;
  /**
   * `EventSource` implementation; `null` polls only. Default: the global one with cookie auth;
   * with `getToken`, polling (EventSource cannot send an `Authorization` header).
   */
  EventSource?: EventSourceCtor | null | undefined;
  /** Tuning of real time (see `RealtimeOptions`). */
  pollInterval?: number | undefined;
  sseRetryDelay?: number | undefined;
  maxFailures?: number | undefined;
  heartbeat?: number | undefined;
  /** Clock (tests). */
  clock?: Clock | undefined;
  /**
   * Cross-tab coordination; `null` turns it off. Default `navigator.locks` (a refetch once per
   * browser; `SharedStream`'s leader), `BroadcastChannel` (used by `SharedStream`).
   */
  locks?: LockManagerLike | null | undefined;
  channel?: (((name: string) => ChannelLike) | null) | undefined;
  /**
   * The class that holds real time: default `Realtime`, a stream per tab; `SharedStream` (optional
   * entry `./tabs`, passed by the generated `createClient`): one stream per browser.
   */
  stream?: StreamCtor | undefined;
  /** How long a confirmed optimistic update waits for its invalidation before revalidating. Default 2000 ms. */
  optimisticTimeout?: number | undefined;
  /** Retries of a mounted query whose fetch failed (network or 5xx; never 4xx). Default 3. */
  retry?: number | undefined;
  /** First retry delay, doubled for each further retry (at most 30 s), with jitter. Default 1000 ms. */
  retryDelay?: number | undefined;
}

/** Optimistic update context: edit cached query data for the duration of a mutation. */
export interface OptimisticCache<P> {
  update<K extends QueryName<P>>(
    name: K,
    input: InputOf<P, K>,
    fn: (old: OutputOf<P, K> | undefined) => OutputOf<P, K> | undefined,
  ): void;
  get<K extends QueryName<P>>(name: K, input: InputOf<P, K>): OutputOf<P, K> | undefined;
}

export interface MutateOptions<P, K extends MutationName<P>> {
  /** Applies optimistic changes; they show at once and are undone on error. */
  optimistic?: ((input: InputOf<P, K>, cache: OptimisticCache<P>) => void) | undefined;
}

interface Layer {
  fn: (d: unknown) => unknown;
  /** The mutation's event id once it succeeded: dropped when the data reflects it. */
  until?: string | undefined;
}

/** One query's state (for subclasses: `QueryClient`). */
export interface Query {
  key: string;
  procedure: string;
  input: unknown;
  /** The server data; absent (not `in` the query) until there is some. */
  data?: unknown | undefined;
  eventId?: string | undefined;
  /** When last revalidated from the server (absent: never in this page). */
  revalidatedAt?: number | undefined;
  /** May be outdated: not revalidated in this page yet, or invalidated since. */
  stale: boolean;
  error?: RpcError | undefined;
  fetching?: Promise<void> | undefined;
  /**
   * Invalidations that arrived while a request was in flight: the newest event id, or `null` for
   * one without an id (`reset`, unmount): its result can't be fresh.
   */
  again?: string | null | undefined;
  /** Failed attempts in a row (retries). */
  tries?: number | undefined;
  /** Retry options of this query's hooks (`useQuery`), over the client's. */
  retry?: { retry?: number | undefined; retryDelay?: number | undefined } | undefined;
  layers: Layer[];
  /**
   * While a mutation with a layer here has not answered (its event id unknown), the data and
   * watermark the layers apply to: a result arriving meanwhile may already contain the write.
   */
  pin?: [unknown, string | undefined] | undefined;
  /** Stream start already checked for a gap. */
  gapFrom?: string | undefined;
  listeners: Set<() => void>;
  mounts: number;
  snapshot: QuerySnapshot;
}

/** A result another tab fetched (posted by the shared stream of `./tabs`). */
export interface SharedResult {
  key: string;
  d: unknown;
  e?: string | undefined;
  at: number;
}

/** An invalidation the last result may not include arrived while it was in flight. */
const missed = (q: Query): boolean => q.again === null || compareEventIds(q.eventId, q.again) < 0;

/** Real time delivers invalidations in this mode. */
const isLive = (mode: RealtimeMode | undefined): boolean => mode == 'sse' || mode == 'poll';

/** Whether an event for these subscription entries affects query `key`. */
const affects = (entries: string[] | undefined, key: string): boolean | undefined =>
  entries?.some((x) => x == key || x == '*' || x == procedureOf(key));

function resolveStorage(s: ClientOptions<unknown>['storage'] = 'local'): StorageLike | null {
  // The registry probes it and falls back to memory when access throws (privacy modes).
  return s === 'memory' || !s ? null : typeof s === 'string' ? (globalOf<StorageLike>(s + 'Storage') ?? null) : s;
}

/** The reactive client. One per app (per page). */
export class ReactiveClient<P = AnyProcedures> {
  readonly transport: Transport;
  readonly clock: Clock;
  private readonly opts: ClientOptions<P>;
  private readonly storage: StorageLike | null;
  private registry!: QueryRegistry;
  protected readonly scheduler: Scheduler;
  private realtime: RealtimeLike | undefined;
  protected readonly queries = new Map<string, Query>();
  private readonly hints = new Map<object, string[]>();
  private readonly locks: LockManagerLike | undefined;
  private tenantName!: string;
  private userName: string | undefined;
  /** Tenant and user, encoded: what the registry, channels, locks and in-flight sharing are keyed by. */
  private scope?: string | undefined;
  private generation = 0;
  private started?: boolean | undefined;
  private statusListeners = new Set<(mode: RealtimeMode) => void>();
  /**
   * Reopen check in flight: registry entries waiting for the `/poll` that tells which of them
   * missed events, with the newest event the stream delivered for each meanwhile.
   */
  private checking: Map<string, string | undefined> | undefined;

  constructor(opts: ClientOptions<P> = {}) {
    this.opts = opts;
    this.clock = opts.clock ?? realClock;
    this.transport = new Transport(opts);
    this.storage = resolveStorage(opts.storage as ClientOptions<unknown>['storage']);
    this.scheduler = new Scheduler({
      clock: this.clock,
      run: async (k) => {
        const q = this.needsRevalidation(k) && this.held(k);
        if (q) await this.revalidate(q);
      },
    });
    this.locks =
      opts.locks === null
        ? undefined
        : (opts.locks ?? globalOf<{ locks?: LockManagerLike }>('navigator')?.locks);
    this.setTenant(opts.tenant ?? 'default', opts.user);
  }

  /** The current tenant. */
  get tenant(): string {
    return this.tenantName;
  }

  /** Real-time state. */
  get realtimeMode(): RealtimeMode {
    return this.realtime?.mode ?? 'off';
  }

  /** Listens to real-time state changes. */
  onRealtimeStatus(fn: (mode: RealtimeMode) => void): () => void {
    this.statusListeners.add(fn);
    return () => this.statusListeners.delete(fn);
  }

  /** The registry of the current tenant (tests, debugging). */
  get cache(): QueryRegistry {
    return this.registry;
  }

  /**
   * Switches tenant (and user, if given): forgets the previous one's data in memory (it stays in
   * its own registry), rejects its `fetch`es still in flight, reconnects real time, and reloads
   * every mounted query from the new registry.
   */
  setTenant(tenant: string, user = this.userName): void {
    const v = this.opts.version;
    const scope =
      encodeURIComponent(tenant) +
      (user === undefined ? '' : '/' + encodeURIComponent(user)) +
      (v ? '@' + encodeURIComponent(v) : '');
    if (scope == this.scope) return;
    const started = this.started;
    this.stop();
    this.generation++;
    this.tenantName = tenant;
    this.userName = user;
    this.scope = scope;
    this.registry = new QueryRegistry({
      storage: this.storage,
      tenant: scope,
      maxBytes: this.opts.maxBytes,
      now: () => this.clock.now(),
    });
    const old = [...this.queries.values()];
    this.queries.clear();
    for (const o of old)
      if (o.mounts) {
        const q = this.ensure(o.procedure, o.input);
        q.listeners = o.listeners;
        q.mounts = o.mounts;
        this.notify(q);
      }
    if (started) this.start();
  }

  /** Starts background work (first mount): real time (shared with other tabs by `SharedStream`), registry revalidation. */
  start(): void {
    if (this.started || !globalOf('window')) return;
    this.started = true;
    const o = this.opts;
    const gen = this.generation;
    // Callbacks of this tenant's stream: ignored once the tenant changed.
    const live =
      <A extends unknown[]>(fn: (...a: A) => void) =>
      (...a: A): void => {
        if (gen == this.generation) fn(...a);
      };
    const last = this.registry.getSession().lastEventId;
    const name = 'reactive:' + this.scope;
    // EventSource can't send an Authorization header: token auth polls (protocol section 1).
    if (o.realtime !== false) {
      this.realtime = new (o.stream ?? Realtime)({
        ...o,
        name,
        transport: this.transport,
        clock: this.clock,
        EventSource: o.EventSource ?? (o.getToken ? null : undefined),
        withCredentials: o.credentials === 'include',
        onInvalidate: live((ev) => this.onInvalidate(ev)),
        onReset: live((id) => this.revalidateAll(id)),
        onReady: live(() => this.closeGaps(this.queries.values())),
        onShared: live((m) => this.onShared(m)),
        onStatus: live((mode, last) => {
          this.registry.updateSession({ lastEventId: last });
          for (const fn of this.statusListeners) fn(mode);
        }),
      });
      this.realtime.start(last);
      this.updateSubscription();
    }
    // Reopened page: cached entries with a watermark are not revalidated blindly. One `/poll` from
    // the oldest watermark tells which missed events; until it answers they show cached (stale).
    const check = new Map<string, string | undefined>();
    let since: string | undefined;
    if (this.realtime && last)
      for (const k of this.registry.keys()) {
        const e = this.registry.read(k, false);
        if (e?.eventId && !e.stale) {
          check.set(k, undefined);
          if (compareEventIds(e.eventId, since ?? e.eventId) <= 0) since = e.eventId;
        }
      }
    this.checking = since ? check : undefined;
    if (since) {
      // Timeout or error (a value without `eventId`): everything is revalidated.
      const end = (r?: PollResult): void => this.endCheck(check, r);
      this.clock.setTimeout(end, 5000);
      this.realtime!.catchUp(since, entriesOf(check.keys())).then(end, end);
    }
    // Everything the registry holds: revalidate in the background (mounted ones go first anyway).
    for (const k of this.registry.keys()) this.scheduler.schedule(k, BACKGROUND);
    for (const k of [...this.hints.values()].flat()) if (this.needsRevalidation(k)) this.scheduler.schedule(k, HINT);
    for (const q of this.queries.values()) if (q.mounts > 0) this.scheduler.schedule(q.key, MOUNTED);
  }

  /** Forgets this tenant and user's data, in memory and in storage; answers in flight are dropped. */
  clear(): void {
    this.registry.clear();
    this.scope = undefined; // (forces `setTenant` to start over)
    this.setTenant(this.tenantName);
  }

  /** Signs out: forgets the user's data (`clear`) and continues without a user. */
  signOut(): void {
    this.userName = undefined;
    this.clear();
  }

  /** Stops real time and timers. */
  stop(): void {
    this.started = false;
    this.checking = undefined;
    this.realtime?.stop();
    this.realtime = undefined;
    this.scheduler.clear();
  }

  // ---- queries ----

  protected ensure(procedure: string, input: unknown): Query {
    const key = queryKey(procedure, input);
    let q = this.queries.get(key);
    if (q) return q;
    q = {
      key,
      procedure,
      input,
      stale: true,
      layers: [],
      listeners: new Set(),
      mounts: 0,
      snapshot: LOADING,
    };
    const e = this.registry.read(key);
    if (e) {
      // Cached: shown at once (stale), revalidated next.
      q.data = e.data;
      q.eventId = e.eventId;
    }
    this.queries.set(key, q);
    this.snap(q);
    // Bound memory: forget idle queries (oldest first); the registry still holds their data.
    if (this.queries.size > 500)
      for (const [k, o] of this.queries)
        if (this.queries.size > 400 && o !== q && !o.listeners.size && !o.fetching && !o.layers.length)
          this.queries.delete(k);
    return q;
  }

  protected snap(q: Query): void {
    if (!q.layers.some((l) => !l.until)) q.pin = undefined;
    const [base, wm] = q.pin ?? [q.data, q.eventId];
    // A layer ends exactly when data whose watermark reaches its mutation's event id is shown.
    q.layers = q.layers.filter((l) => !(l.until && compareEventIds(wm, l.until) >= 0));
    let data = base;
    for (const l of q.layers) data = l.fn(data);
    const hasData = 'data' in q || q.layers.length > 0;
    const next: QuerySnapshot = { data, error: q.error, isLoading: !hasData && !q.error, isStale: hasData && q.stale };
    // A new snapshot object only when something changed (React re-renders on a new one).
    for (const k in next) if (next[k as 'data'] !== q.snapshot[k as 'data']) q.snapshot = next;
  }

  protected notify(q: Query): void {
    this.snap(q);
    for (const l of [...q.listeners]) l();
  }

  /**
   * The current snapshot of a query (stable object until it changes). `server`: the snapshot of
   * server rendering and hydration: data fetched or hydrated in this page, never the registry's.
   */
  getSnapshot<K extends QueryName<P>>(name: K, input: InputOf<P, K>, server?: unknown): QuerySnapshot<OutputOf<P, K>> {
    const q = this.ensure(name, input);
    return (server && !q.revalidatedAt ? LOADING : q.snapshot) as QuerySnapshot<OutputOf<P, K>>;
  }

  /**
   * Mounts a query: listens to changes, revalidates it at once and subscribes to its
   * invalidations. Returns the unmount function.
   */
  subscribe<K extends QueryName<P>>(name: K, input: InputOf<P, K>, listener: () => void): () => void {
    const q = this.ensure(name, input);
    q.listeners.add(listener);
    q.mounts++;
    this.start();
    if (this.started && this.needsRevalidation(q.key) && !q.fetching)
      this.scheduler.schedule(q.key, MOUNTED);
    this.updateSubscription();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const cur = this.queries.get(q.key) ?? q;
      cur.listeners.delete(listener);
      cur.mounts--;
      // Unwatched from now on: invalidations may be missed, so a later mount revalidates.
      if (!cur.mounts) {
        cur.stale = true;
        this.snap(cur);
      }
      this.updateSubscription();
    };
  }

  /** Fetches a query (shared with identical requests in flight) and returns its data. */
  async fetch<K extends QueryName<P>>(name: K, input: InputOf<P, K>): Promise<OutputOf<P, K>> {
    const q = this.ensure(name, input);
    const gen = this.generation;
    await this.revalidate(q);
    if (gen != this.generation) throw new RpcError('tenant_changed', 'tenant changed', 0);
    if (q.error) throw q.error;
    return q.snapshot.data as OutputOf<P, K>;
  }

  /** Page hints: queries the page will likely need, revalidated (or prefetched) after 1 s. */
  setPriorities(owner: object, refs: ReadonlyArray<QueryRef<P> | string>): () => void {
    const keys = refs.map((r) => (typeof r === 'string' ? r : this.ensure(r[0], r[1]).key));
    this.hints.set(owner, keys);
    for (const k of keys) if (this.started && this.needsRevalidation(k)) this.scheduler.schedule(k, HINT);
    return () => this.hints.delete(owner);
  }

  private needsRevalidation(key: string): boolean {
    const q = this.queries.get(key);
    return !this.checking?.has(key) && (!q || q.stale);
  }

  /** The query of a key, loaded from the registry if needed. */
  private held(key: string): Query | undefined {
    const e = this.queries.get(key) ? undefined : this.registry.read(key, false);
    return e ? this.ensure(e.procedure, e.input) : this.queries.get(key);
  }

  /** Revalidates one query; concurrent calls share the request. */
  private revalidate(q: Query, retry?: boolean): Promise<void> {
    if (q.fetching) return q.fetching;
    this.scheduler.cancel(q.key);
    const gen = this.generation;
    const wantedAt = this.clock.now();
    const locks = this.storage ? this.locks : undefined;
    const watched = q.mounts > 0;
    q.again = undefined;
    if (!retry) q.tries = 0;
    const run = async (): Promise<void> => {
      // Another tab may have fetched it meanwhile (we waited for its lock): use its result.
      const shared = locks && this.registry.read(q.key, false);
      if (shared && !shared.stale && shared.lastRevalidated >= wantedAt)
        return this.applyResult(q, shared.data, shared.eventId, shared.lastRevalidated, false);
      try {
        // Shared with identical requests of this generation (a new one per tenant or user).
        const r = await this.transport.query(q.procedure, q.input, '' + gen);
        // Unmounted meanwhile: its invalidations may no longer reach us, so the result isn't fresh.
        if (watched && !q.mounts) q.again = null;
        // (Not after a tenant switch or a `cancel`.)
        if (gen == this.generation && q.fetching == p) this.applyResult(q, r.data, r.eventId, this.clock.now(), true);
      } catch (e) {
        if (gen != this.generation || q.fetching != p) return;
        let r;
        const err = (q.error = e instanceof RpcError ? e : new RpcError('network', String(e), 0));
        const s = err.status;
        // 4xx: retrying won't help. An entry the server no longer accepts (procedure removed or
        // input changed by a deploy) is dropped.
        if (s > 399 && s < 500) {
          if (!q.mounts && (s == 400 || s == 404)) this.registry.delete(q.key);
        } else if (q.mounts && ++q.tries! <= ((r = q.retry ?? this.opts).retry ?? 3))
          this.clock.setTimeout(
            () => q.error && q.mounts && gen == this.generation && void this.revalidate(q, true),
            jitter(Math.min((r.retryDelay ?? 1000) * 2 ** (q.tries! - 1), 30000)),
          );
        this.notify(q);
      }
    };
    const locked = locks ? locks.request('rq:' + this.scope + ':' + q.key, run).catch(() => run()) : run();
    const p: Promise<void> = locked.finally(() => {
      if (q.fetching != p) return; // cancelled
      q.fetching = undefined;
      // An invalidation the result may not include arrived meanwhile: one more fetch.
      if (gen == this.generation && missed(q) && q.mounts && !q.error) void this.revalidate(q);
      q.again = undefined;
      this.notify(q);
    });
    q.fetching = p;
    this.notify(q);
    return p;
  }

  /**
   * An invalidation of `q` (the event's id, or none: whatever was fetched so far may be outdated):
   * stale at once, one more fetch if a request is in flight, and a refetch now if `fetch`.
   */
  private outdate(q: Query, id?: string, fetch?: boolean): void {
    if (id && compareEventIds(q.eventId, id) >= 0) return;
    if (q.fetching) q.again = id && q.again !== null ? maxEventId(q.again, id) : null;
    q.stale = true;
    this.notify(q);
    if (fetch) void this.revalidate(q);
  }

  protected applyResult(q: Query, data: unknown, eventId: string | undefined, at: number, fromServer: boolean): void {
    // An older result (e.g. another tab's) never replaces a newer one.
    if (q.revalidatedAt && compareEventIds(eventId, q.eventId) < 0) return;
    const prev = fromServer ? this.registry.read(q.key, false) : undefined;
    const json = JSON.stringify(data);
    const changed = !prev || JSON.stringify(prev.data) != json;
    // An identical result keeps the data object: the snapshot stays the same, nothing re-renders.
    if (!('data' in q) || JSON.stringify(q.data) != json) q.data = data;
    q.eventId = eventId;
    q.revalidatedAt = at;
    q.stale = missed(q);
    q.error = undefined;
    if (fromServer) {
      const lastServerChange = changed ? at : prev.lastServerChange;
      this.registry.write(q.key, {
        procedure: q.procedure,
        input: q.input,
        data,
        lastRevalidated: at,
        lastServerChange,
        eventId,
        stale: q.stale,
      });
      this.registry.updateSession({ lastSync: at });
      // Other tabs show it too (the shared stream of `./tabs` posts it).
      this.realtime?.share?.({ key: q.key, d: data, e: eventId, at });
      this.closeGaps([q]);
    }
    this.notify(q);
  }

  /**
   * A result reflects events up to its watermark; the live stream delivers events for it from
   * `coveredFrom`. For results older than that, fetch the events in between once (one `/poll`
   * for all of them). Runs when a result arrives and when a stream becomes ready.
   */
  private closeGaps(qs: Iterable<Query>): void {
    const rt = this.realtime;
    if (!rt) return;
    const gapped: Query[] = [];
    const entries = new Set<string>();
    let since: string | undefined;
    for (const q of qs) {
      if (!q.eventId || q.mounts <= 0 || this.checking?.has(q.key)) continue;
      // Subscribed by key, or by procedure (`entriesOf`).
      const entry = rt.coveredFrom(q.key) ? q.key : q.procedure;
      const from = rt.coveredFrom(entry);
      if (!from || compareEventIds(q.eventId, from) >= 0 || q.gapFrom === from) continue;
      q.gapFrom = from; // once per stream start: never loops
      gapped.push(q);
      entries.add(entry);
      if (!since || compareEventIds(q.eventId, since) < 0) since = q.eventId;
    }
    if (!since) return;
    const gen = this.generation;
    rt.catchUp(since, [...entries]).then(
      (r) => {
        if (gen != this.generation) return;
        if (r.reset) for (const q of gapped) this.outdate(q, undefined, true);
        else for (const ev of r.events ?? []) this.onInvalidate(ev);
      },
      () => undefined,
    );
  }

  private onShared(m: SharedResult | undefined): void {
    const q = this.queries.get(m?.key!);
    if (q) this.applyResult(q, m!.d, m!.e, m!.at, false);
  }

  // ---- real time ----

  /** Subscription entries for mounted queries: their keys, or the procedure when it has many. */
  private updateSubscription(): void {
    const rt = this.realtime;
    if (!rt) return;
    rt.setSubscription(entriesOf([...this.queries.values()].filter((q) => q.mounts > 0).map((q) => q.key)));
  }

  protected heldKeys(): Set<string> {
    return new Set([...this.registry.keys(), ...this.queries.keys()]);
  }

  /**
   * Applies an invalidation: pushed values, then refetch the affected mounted queries now, mark the others stale.
   * `ev.queries` (what this page subscribed to) is authoritative for mounted queries; the tables
   * changed, matched against generated dependencies, additionally mark unwatched entries stale.
   */
  onInvalidate(ev: InvalidateEvent): void {
    const now = this.clock.now();
    const t = ev.tables;

    // A procedure reading a changed table (generated dependencies), or any with `*`.
    const reads = (key: string) =>
      (this.opts.procedures as Record<string, { dependencies: readonly string[] } | undefined> | undefined)?.[
        procedureOf(key)
      ]?.dependencies.some((d) => t.includes(d) || t.includes('*'));
    for (const key of this.heldKeys()) {
      const isDirect = affects(ev.queries, key);
      if (!isDirect && !reads(key)) continue;
      // A pushed value: applied first, so that a query it brings up to the event is not refetched.
      const r = ev.results?.[key];
      const q = this.queries.get(key);
      if (q && r) this.applyResult(q, r.data, r.eventId, now, true);
      // Reopen check in flight: it decides (the poll answer holds every event up to the server's head).
      const c = this.checking;
      if (c?.has(key) && (isDirect || !q?.mounts)) {
        c.set(key, maxEventId(c.get(key), ev.eventId));
        continue;
      }
      if (q?.mounts) {
        if (isDirect) this.outdate(q, ev.eventId, true);
        continue;
      }
      if (q) this.outdate(q, ev.eventId);
      const e = this.registry.read(key, false);
      if (e && compareEventIds(e.eventId, ev.eventId) < 0) this.registry.markStale(key, now);
    }
    this.registry.updateSession({ lastSync: now, lastEventId: ev.eventId });
  }

  /** Revalidates everything held whose watermark is older than `eventId` (`reset`, gap recovery). */
  revalidateAll(eventId?: string): void {
    if (this.checking) this.endCheck(this.checking); // a reset makes the reopen check moot
    this.recheck(
      [...this.heldKeys()].filter((key) => {
        const wm = (this.queries.get(key) ?? this.registry.read(key, false))?.eventId;
        return !eventId || compareEventIds(wm, eventId) < 0;
      }),
      eventId,
    );
  }

  /** Marks entries stale and revalidates them: mounted at once, page hints after 1 s, the rest after 2 s. */
  protected recheck(keys: string[], eventId?: string): void {
    const hinted = [...this.hints.values()].flat();
    for (const key of keys) {
      const q = this.queries.get(key);
      if (q) this.outdate(q, eventId);
      else this.registry.markStale(key, this.clock.now());
      this.scheduler.schedule(
        key,
        q && q.mounts > 0 ? MOUNTED : hinted.includes(key) ? HINT : BACKGROUND,
      );
    }
  }

  /**
   * Ends the reopen check. Without a usable answer (error, timeout, `reset`) every entry checked is
   * revalidated; otherwise only those a missed event (from the poll, or from the stream past the
   * poll's head) affects. The others are current as of the head: shown fresh, watermark moved up.
   */
  private endCheck(check: Map<string, string | undefined>, r?: PollResult): void {
    if (this.checking !== check) return;
    this.checking = undefined;
    const head = r?.reset ? undefined : r?.eventId;
    const redo: string[] = [];
    for (const [key, live] of check) {
      let hit = compareEventIds(live, head) > 0 ? live : undefined;
      for (const ev of r?.events ?? [])
        if (affects(ev.queries, key)) hit = maxEventId(hit, ev.eventId);
      const q = this.held(key);
      if (!head || !(q && 'data' in q) || compareEventIds(hit, q.eventId) > 0) redo.push(key);
      else {
        q.eventId = maxEventId(q.eventId, head);
        q.stale = false;
        q.revalidatedAt = this.clock.now();
        this.notify(q);
      }
    }
    this.recheck(redo);
  }

  // ---- mutations ----

  /** Runs a mutation with optional optimistic updates. */
  async mutate<K extends MutationName<P>>(
    name: K,
    input: InputOf<P, K>,
    options: MutateOptions<P, K> = {},
  ): Promise<OutputOf<P, K>> {
    const layers: { q: Query; l: Layer }[] = [];
    const cache: OptimisticCache<P> = {
      update: (qn, qi, fn) => {
        const q = this.ensure(qn, qi);
        const l: Layer = { fn: fn as (d: unknown) => unknown };
        q.pin ??= [q.data, q.eventId];
        q.layers.push(l);
        layers.push({ q, l });
        this.notify(q);
      },
      get: (qn, qi) => this.ensure(qn, qi).snapshot.data as never,
    };
    let r;
    try {
      // A throwing `optimistic` callback: its layers are dropped and the mutation is not sent.
      options.optimistic?.(input, cache);
      r = await this.transport.mutate(name, input);
    } catch (e) {
      // Roll back: drop this mutation's layers; the server data underneath never changed.
      for (const { q, l } of layers) this.dropLayer(q, l);
      throw e;
    }
    if (r.eventId) this.registry.updateSession({ lastSync: this.clock.now() });
    for (const { q, l } of layers) {
      // Kept until data whose watermark reaches the mutation's event id is shown (maybe already).
      if (!(l.until = r.eventId)) this.dropLayer(q, l);
      else this.notify(q);
      const check = (): void => {
        if (q.layers.includes(l)) this.outdate(q, r.eventId, true);
      };
      if (isLive(this.realtime?.mode)) this.clock.setTimeout(check, this.opts.optimisticTimeout ?? 2000);
      else check();
    }
    return r.data as OutputOf<P, K>;
  }

  private dropLayer(q: Query, l: Layer): void {
    q.layers = q.layers.filter((x) => x !== l);
    this.notify(q);
  }
}

/** Creates a client. Safe to call during server rendering (nothing starts until a hook mounts in a browser). */
export function createReactiveClient<P = AnyProcedures>(opts: ClientOptions<P> = {}): ReactiveClient<P> {
  return new ReactiveClient<P>(opts);
}
