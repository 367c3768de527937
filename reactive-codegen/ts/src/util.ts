// Small helpers shared by the runtime modules. No dependencies, safe to import without `window`.

/** Timer functions the runtime uses; injectable so tests can drive a fake clock. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The real clock of the environment. */
export const realClock: Clock = {
  now: Date.now, // (uses no `this`; the timer functions below do, hence the arrows)
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/**
 * JSON with object keys sorted at every level, so equal inputs give equal strings whatever the
 * order their keys were written in. `undefined` members are dropped, as `JSON.stringify` does.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value)) ?? 'null';
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return v;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeys(v[k]);
    return out;
  }
  return value;
}

/** The key a query result is cached, shared and subscribed under: procedure + canonical input. */
export function queryKey(procedure: string, input: unknown): string {
  return procedure + ':' + canonicalJson(input === undefined ? null : input);
}

/** The procedure part of a query key. */
export function procedureOf(key: string): string {
  return key.split(':')[0]!; // (procedure names have no colon)
}

/**
 * Orders event ids: decimal numbers that fit in 53 bits (protocol section 2), compared
 * numerically, never as strings. Missing ids sort first.
 */
export function compareEventIds(a: string | null | undefined, b: string | null | undefined): number {
  return a ? (b ? Math.sign(+a - +b) : 1) : b ? -1 : 0;
}

/** The larger of two event ids. */
export function maxEventId(a: string | undefined, b: string | undefined): string | undefined {
  return compareEventIds(a, b) >= 0 ? a : b;
}

/** `JSON.parse`, or `undefined` for a malformed value (or `undefined`); `null` for `null`. */
export function parseJson(s: string | null | undefined): unknown {
  try {
    return JSON.parse(s!);
  } catch {
    return undefined;
  }
}

/** The value if it is a string. */
export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** `globalThis` members that may be absent (server rendering, workers, old browsers). */
export function globalOf<T>(name: string): T | undefined {
  try {
    return (globalThis as Record<string, unknown>)[name] as T | undefined;
  } catch {
    return undefined;
  }
}

/** `ms` times a random factor in [0.5, 1.5): timers of many clients don't fire in lockstep. */
export const jitter = (ms: number): number => ms * (0.5 + Math.random());

/**
 * Subscription entries for query keys (procedure names among them pass through): the keys, or
 * the procedure when it has more than 8, or every procedure when the URL would get long
 * (protocol section 4: keep URLs under about 8 KiB).
 */
export function entriesOf(keys: Iterable<string>): string[] {
  const byProc = new Map<string, string[]>();
  for (const k of keys) byProc.set(procedureOf(k), [...(byProc.get(procedureOf(k)) ?? []), k]);
  const entries = [...byProc].flatMap(([proc, ks]) => (ks.length > 8 ? [proc] : ks));
  return encodeURIComponent(entries.join('')).length + 11 * entries.length > 7000 ? [...byProc.keys()] : entries;
}
