// Optional devtools entry (`@reactive/client/devtools`): the browser side of the server's dev
// tools page. It reads a client's state and records the invalidation events it receives, from
// outside the core (nothing here is in the core bundle): an app imports it only in development.
import type { ReactiveClient, Query } from './core.js';
import type { InvalidateEvent, RealtimeMode } from './realtime.js';
import { procedureOf } from './util.js';

/** One query the client holds, as the devtools show it. */
export interface DevtoolsQuery {
  key: string;
  procedure: string;
  input: unknown;
  /** Server data is present (from this page or the local cache). */
  hasData: boolean;
  /** May be outdated: will be (or is being) revalidated. */
  stale: boolean;
  /** The event id the data reflects (its watermark). */
  eventId: string | undefined;
  /** When last revalidated from the server (ms, client clock). */
  revalidatedAt: number | undefined;
  /** Mounted hooks; a mounted query is in the stream's subscription. */
  mounts: number;
  fetching: boolean;
  /** The last error's message, while the query is in error. */
  error: string | undefined;
  /** Failed attempts in a row. */
  tries: number;
}

/** One invalidation event the client received. */
export interface DevtoolsEvent {
  /** When it arrived (ms, client clock). */
  at: number;
  eventId: string;
  tables: string[];
  /** The subscription entries the server matched. */
  queries: string[];
  /** The keys of held queries the event affects (what the client marked stale). */
  affected: string[];
}

/** What the client knows now. */
export interface DevtoolsSnapshot {
  tenant: string;
  mode: RealtimeMode;
  /** The stream's subscription entries (query keys and procedure names). */
  subscription: string[];
  queries: DevtoolsQuery[];
  /** The newest events last, at most `events` of them (see {@link inspect}). */
  events: DevtoolsEvent[];
}

/** A window on one client (see {@link inspect}). */
export interface Inspector {
  snapshot(): DevtoolsSnapshot;
  /** Called after each event the client receives. */
  subscribe(listener: () => void): () => void;
  /** Stops recording and restores the client. */
  detach(): void;
}

/** The parts of the client the devtools read (private to the core's API). */
interface Internals {
  readonly queries: Map<string, Query>;
  readonly realtime?: { readonly entries?: string[] } | undefined;
  readonly clock: { now(): number };
  onInvalidate(ev: InvalidateEvent): void;
}

/**
 * Starts recording what `client` receives and returns a window on its state. `events` bounds the
 * events kept (default 50); `global: true` also puts the inspector on `globalThis.__REACTIVE_DEVTOOLS__`
 * for the browser console.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function inspect(client: ReactiveClient<any>, opts: { events?: number; global?: boolean } = {}): Inspector {
  const c = client as unknown as Internals;
  const limit = Math.max(1, opts.events ?? 50);
  const events: DevtoolsEvent[] = [];
  const listeners = new Set<() => void>();
  const own = Object.prototype.hasOwnProperty.call(c, 'onInvalidate');
  const original = c.onInvalidate;
  const receive = function (this: unknown, ev: InvalidateEvent): void {
    const affected = [...c.queries.keys()].filter(
      (k) => ev.queries.includes(k) || ev.queries.includes('*') || ev.queries.includes(procedureOf(k)),
    );
    events.push({ at: c.clock.now(), eventId: ev.eventId, tables: [...ev.tables], queries: [...ev.queries], affected });
    if (events.length > limit) events.splice(0, events.length - limit);
    original.call(c, ev);
    for (const l of [...listeners]) l();
  };
  (c as { onInvalidate: (ev: InvalidateEvent) => void }).onInvalidate = receive;
  const inspector: Inspector = {
    snapshot: () => ({
      tenant: client.tenant,
      mode: client.realtimeMode,
      subscription: [...(c.realtime?.entries ?? [])],
      queries: [...c.queries.values()].map((q) => ({
        key: q.key,
        procedure: q.procedure,
        input: q.input,
        hasData: 'data' in q,
        stale: q.stale,
        eventId: q.eventId,
        revalidatedAt: q.revalidatedAt,
        mounts: q.mounts,
        fetching: q.fetching !== undefined,
        error: q.error?.message,
        tries: q.tries ?? 0,
      })),
      events: events.map((e) => ({ ...e })),
    }),
    subscribe: (l) => {
      listeners.add(l);
      return () => void listeners.delete(l);
    },
    detach: () => {
      const target = c as { onInvalidate?: (ev: InvalidateEvent) => void };
      if (own) target.onInvalidate = original;
      else delete target.onInvalidate;
      listeners.clear();
      const g = globalThis as { __REACTIVE_DEVTOOLS__?: Inspector };
      if (g.__REACTIVE_DEVTOOLS__ === inspector) delete g.__REACTIVE_DEVTOOLS__;
    },
  };
  if (opts.global) (globalThis as { __REACTIVE_DEVTOOLS__?: Inspector }).__REACTIVE_DEVTOOLS__ = inspector;
  return inspector;
}

/**
 * Renders the inspector's snapshot into `element` (a plain table, no framework), again after
 * every event and every `refreshMs` (default 1000). Returns a function that stops it.
 */
export function renderPanel(inspector: Inspector, element: HTMLElement, refreshMs = 1000): () => void {
  const doc = element.ownerDocument;
  const cell = (tag: string, text: string): HTMLElement => {
    const el = doc.createElement(tag);
    el.textContent = text;
    return el;
  };
  const table = (title: string, head: string[], rows: string[][]): HTMLElement => {
    const t = doc.createElement('table');
    t.append(cell('caption', title));
    const h = doc.createElement('tr');
    h.append(...head.map((x) => cell('th', x)));
    t.append(h);
    for (const r of rows) {
      const tr = doc.createElement('tr');
      tr.append(...r.map((x) => cell('td', x)));
      t.append(tr);
    }
    return t;
  };
  const draw = (): void => {
    const s = inspector.snapshot();
    element.replaceChildren(
      cell('p', `tenant ${s.tenant} · ${s.mode} · subscribed: ${s.subscription.join(', ') || 'nothing'}`),
      table(
        'Queries',
        ['key', 'state', 'event id', 'mounts'],
        s.queries.map((q) => [
          q.key,
          q.error ? 'error: ' + q.error : q.fetching ? 'fetching' : q.stale ? 'stale' : q.hasData ? 'fresh' : 'empty',
          q.eventId ?? '',
          String(q.mounts),
        ]),
      ),
      table(
        'Events',
        ['event id', 'tables', 'affected here'],
        [...s.events].reverse().map((e) => [e.eventId, e.tables.join(', '), e.affected.join(', ') || '—']),
      ),
    );
  };
  draw();
  const un = inspector.subscribe(draw);
  const timer = setInterval(draw, refreshMs);
  return () => {
    un();
    clearInterval(timer);
  };
}
