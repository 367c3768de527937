// The client-side query registry: what this browser knows, per tenant, kept in localStorage (or
// sessionStorage). Each entry has its own storage key so one entry can be read or written without
// touching the others; a small per-tenant meta record holds the session and the LRU index.
//
// Storage keys (prefix `rq`, tenant URI-encoded; the client's "tenant" here is tenant + user):
//   rq:<tenant>:m          {"session":{…},"lru":{"<queryKey>":[lastAccess,size]}}
//   rq:<tenant>:e:<key>    a RegistryEntry as JSON
//
// Every storage access is guarded: missing storage (server rendering, privacy mode), a full quota
// and corrupt JSON degrade to an in-memory registry instead of throwing. What is read back is
// validated in depth (valid JSON of the wrong shape included): what is malformed is dropped.

import { compareEventIds, maxEventId, parseJson, procedureOf, str } from './util.js';

/** A cached query result. */
export interface RegistryEntry {
  /** Procedure name. */
  procedure: string;
  /** The input it was called with. */
  input: unknown;
  /** The last result. */
  data: unknown;
  /** When it was last fetched from the server (ms since epoch). */
  lastRevalidated: number;
  /** When the server last reported a change to it (fetch that changed the data, or an invalidation). */
  lastServerChange: number;
  /** The newest event id the data reflects: older invalidations are already included. */
  eventId?: string | undefined;
  /** An invalidation arrived after `data` was fetched. */
  stale?: boolean | undefined;
}

/** What the registry remembers about the browser's session with the server. */
export interface RegistrySession {
  /** When data or events were last received from the server. */
  lastSync: number;
  /** The newest event id seen; sent as `lastEventId` on the first connect so missed events replay. */
  lastEventId?: string | undefined;
}

/** Minimal `Storage` surface (localStorage, sessionStorage, or a test double). */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
  readonly length: number;
  key(index: number): string | null;
}

export interface RegistryOptions {
  /** Storage to persist to; `null` keeps everything in memory. */
  storage: StorageLike | null;
  /** Tenant (organization) the data belongs to. Different tenants never share entries. */
  tenant: string;
  /** Size cap in bytes of stored JSON (UTF-16 code units, as browsers count quota). Default 2 MB. */
  maxBytes?: number | undefined;
  /** Clock for `now`. */
  now?: (() => number) | undefined;
}

interface Meta {
  session: RegistrySession;
  lru: Record<string, [number, number]>;
}

const PREFIX = 'rq:';
/** Default size cap: 2 MB. */
export const DEFAULT_MAX_BYTES = 2 ** 21;

/** Prefix of every storage key of one tenant. */
export function tenantPrefix(tenant: string): string {
  return PREFIX + encodeURIComponent(tenant) + ':';
}

const num = (x: unknown): x is number => typeof x === 'number';
const obj = (x: unknown): x is Record<string, unknown> => !!x && typeof x === 'object';

/** The meta record, validated in depth: what is malformed is dropped, the rest kept. */
function readMeta(raw: string | null): Meta {
  const m = parseJson(raw);
  const s = obj(m) && obj(m['session']) ? m['session'] : {};
  const lru: Meta['lru'] = {};
  if (obj(m) && obj(m['lru']))
    for (const [k, v] of Object.entries(m['lru']))
      if (Array.isArray(v) && num(v[0]) && num(v[1])) lru[k] = v as [number, number];
  return {
    session: {
      lastSync: num(s['lastSync']) ? s['lastSync'] : 0,
      lastEventId: str(s['lastEventId']),
    },
    lru,
  };
}

/** Whether `x` is a well-formed entry for `key`. */
function isEntry(x: unknown, key: string): x is RegistryEntry {
  return (
    obj(x) &&
    x['procedure'] === procedureOf(key) &&
    num(x['lastRevalidated']) &&
    num(x['lastServerChange']) &&
    'data' in x &&
    x['eventId'] === str(x['eventId']) // absent or a string
  );
}

/** The per-tenant registry. */
export class QueryRegistry {
  readonly tenant: string;
  readonly maxBytes: number;
  private storage: StorageLike | null;
  private readonly now: () => number;
  private readonly entries = new Map<string, RegistryEntry>();
  private lru: Record<string, [number, number]> = {};
  private session: RegistrySession;
  private readonly pfx: string;
  /** A meta write is scheduled. */
  private dirty?: boolean | undefined;

  constructor(opts: RegistryOptions) {
    this.tenant = opts.tenant;
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
    this.storage = opts.storage;
    try {
      this.storage?.getItem(PREFIX);
    } catch {
      this.storage = null; // unusable (privacy mode, sandboxed frame): memory only
    }
    this.now = opts.now ?? Date.now;
    this.pfx = tenantPrefix(opts.tenant);
    const meta = readMeta(this.get(this.pfx + 'm'));
    this.lru = meta.lru;
    this.session = meta.session;
  }

  // ---- guarded storage access ----

  private get(k: string): string | null {
    if (!this.storage) return null;
    try {
      return this.storage.getItem(k);
    } catch {
      return null;
    }
  }

  private remove(k: string): void {
    try {
      this.storage?.removeItem(k);
    } catch {
      /* ignore */
    }
  }

  /**
   * Writes, making room when the quota is full: other tenants' data first (each tenant's entries,
   * then its meta record), then this tenant's least recently used entries other than `keep`. If
   * the value does not fit even then, everything removed is put back: a write that can never fit
   * evicts nothing.
   */
  private set(k: string, v: string, keep?: string): boolean {
    const st = this.storage!;
    const removed: [string, string][] = [];
    let victims: string[] | undefined;
    try {
      for (;;)
        try {
          st.setItem(k, v);
          break;
        } catch {
          const x = (victims ??= this.victims(keep)).shift();
          if (x === undefined) throw 0; // nothing left to remove: put everything back
          const old = st.getItem(x);
          if (old !== null) removed.push([x, old]);
          st.removeItem(x);
        }
    } catch {
      try {
        for (const [a, b] of removed) st.setItem(a, b);
      } catch {
        /* storage unusable */
      }
      return false;
    }
    for (const [x] of removed)
      if (x.startsWith(this.pfx)) {
        const key = x.slice(this.pfx.length + 2);
        delete this.lru[key];
        this.entries.delete(key);
      }
    return true;
  }

  /** Storage keys that may be removed to make room, in that order. */
  private victims(keep: string | undefined): string[] {
    const st = this.storage!;
    const other: string[] = [];
    for (let i = 0; i < st.length; i++) {
      const k = st.key(i)!;
      if (k.startsWith(PREFIX) && !k.startsWith(this.pfx)) other.push(k);
    }
    return [
      ...other.sort((a, b) => +a.endsWith(':m') - +b.endsWith(':m')),
      ...this.keys()
        .filter((k) => k !== keep && this.lru[k]![1]) // (size 0: in memory only)
        .map((k) => this.pfx + 'e:' + k),
    ];
  }

  // ---- meta ----

  /**
   * Writes the meta record, merged with what other tabs wrote meanwhile: once per task (in a
   * microtask), however many writes and events changed it, not once per change. (Its eviction
   * spares the newest entries longest: they are last in LRU order.)
   */
  private writeMeta(): void {
    if (this.storage && !this.dirty) {
      this.dirty = true;
      queueMicrotask(() => {
        this.dirty = false;
        const other = readMeta(this.get(this.pfx + 'm'));
        for (const [k, v] of Object.entries(other.lru)) {
          const mine = this.lru[k];
          if (!mine ? this.get(this.pfx + 'e:' + k) !== null : mine[0] < v[0]) this.lru[k] = v;
        }
        this.session.lastEventId = maxEventId(this.session.lastEventId, other.session.lastEventId);
        this.session.lastSync = Math.max(this.session.lastSync, other.session.lastSync);
        const meta: Meta = { session: this.session, lru: this.lru };
        this.set(this.pfx + 'm', JSON.stringify(meta));
      });
    }
  }

  /** The session record. */
  getSession(): RegistrySession {
    return { ...this.session };
  }

  /** Updates the session record. `lastEventId` only moves forward. */
  updateSession(patch: Partial<RegistrySession>): void {
    const lastEventId = maxEventId(this.session.lastEventId, patch.lastEventId);
    Object.assign(this.session, patch, { lastEventId });
    this.writeMeta();
  }

  // ---- entries ----

  /** Total bytes the registry holds (entries as stored). */
  size(): number {
    return Object.values(this.lru).reduce((n, v) => n + v[1], 0);
  }

  /** Query keys held, least recently used first. */
  keys(): string[] {
    return Object.keys(this.lru).sort((a, b) => this.lru[a]![0] - this.lru[b]![0]);
  }

  /** Reads an entry (from storage, so another tab's newer write is seen). Marks it used. */
  read(key: string, touch = true): RegistryEntry | undefined {
    let e = this.entries.get(key);
    if (this.storage) {
      const raw = this.get(this.pfx + 'e:' + key);
      const parsed = parseJson(raw);
      if (isEntry(parsed, key)) {
        const fromStore = parsed;
        if (!e || compareEventIds(fromStore.eventId, e.eventId) > 0 || fromStore.lastRevalidated > e.lastRevalidated) {
          e = fromStore;
          this.entries.set(key, e);
        }
        if (!this.lru[key]) this.lru[key] = [this.now(), raw!.length + key.length];
      } else if (raw !== null) this.dropStored(key);
    }
    if (e && touch && this.lru[key]) this.lru[key]![0] = this.now();
    return e;
  }

  /** Stores an entry, evicting least recently used entries past the size cap. */
  write(key: string, entry: RegistryEntry): void {
    this.entries.set(key, entry);
    const json = JSON.stringify(entry);
    const size = json.length + key.length;
    this.lru[key] = [this.now(), size];
    const fits = size <= this.maxBytes;
    while (fits && this.size() > this.maxBytes && this.evictOne(key)) {
      /* keep evicting */
    }
    if (!fits) this.remove(this.pfx + 'e:' + key); // (an older, smaller version)
    // Too big to keep at all, or refused by storage: memory only for this page (size 0; a
    // memory-only registry keeps counting).
    if (!fits || (!this.set(this.pfx + 'e:' + key, json, key) && this.storage)) this.lru[key] = [this.now(), 0];
    this.writeMeta();
  }

  /** Marks an entry stale (an invalidation arrived that its data doesn't include). */
  markStale(key: string, now: number): void {
    const e = this.read(key, false);
    if (e) this.write(key, { ...e, stale: true, lastServerChange: now });
  }

  /** Removes an entry. */
  delete(key: string): void {
    this.entries.delete(key);
    this.dropStored(key);
    this.writeMeta();
  }

  private dropStored(key: string): void {
    delete this.lru[key];
    this.remove(this.pfx + 'e:' + key);
  }

  /** Evicts the least recently used entry other than `keep`. */
  private evictOne(keep: string | undefined): boolean {
    const victim = this.keys().find((k) => k !== keep);
    if (!victim) return false;
    this.entries.delete(victim);
    this.dropStored(victim);
    return true;
  }

  /** Removes all of this tenant's data. */
  clear(): void {
    for (const k in this.lru) this.dropStored(k);
    this.entries.clear();
    this.remove(this.pfx + 'm');
    this.session = readMeta(null).session;
  }
}
