// Framework-free RPC transport: calls `/rpc/{name}`, parses `{data, eventId}` / `{error}`, and
// shares identical in-flight requests. See docs/protocol.md for the wire format.

import { canonicalJson, globalOf, queryKey, str } from './util.js';

/** How the client authenticates and reaches the server. */
export interface TransportOptions {
  /** Where the reactive router is mounted, e.g. `""` (same origin) or `"https://api.example.com/api"`. */
  baseUrl?: string | undefined;
  /** Returns a bearer token (sent as `Authorization: Bearer …`), or nothing for cookie auth. */
  getToken?: () => string | null | undefined | Promise<string | null | undefined>;
  /** Extra headers for every request. */
  headers?: Record<string, string> | undefined;
  /** `fetch` credentials mode; `"include"` sends cookies cross-origin. Default `"same-origin"`. */
  credentials?: 'omit' | 'same-origin' | 'include' | undefined;
  /** `fetch` to use (tests, server rendering). Default: the global one. */
  fetch?: typeof fetch | undefined;
  /** Send queries as `GET /rpc/{name}?input=…` instead of `POST`. Default `false`. */
  getQueries?: boolean | undefined;
}

/** A server result: the value and the newest event id it reflects (its watermark). */
export interface RpcResult<T = unknown> {
  data: T;
  eventId?: string | undefined;
}

/** An error the server returned (`{"error": {code, message, path}}`) or a network failure. */
export class RpcError extends Error {
  /** Machine-readable code, e.g. `bad_input`, `unauthorized`, `network`. */
  readonly code: string;
  /** HTTP status, or 0 when the request never got an answer. */
  readonly status: number;
  /** JSON path of the bad input field, for 400 errors. */
  readonly path?: string | undefined;
  constructor(code: string, message: string, status: number, path?: string) {
    super(message);
    this.name = 'RpcError';
    this.code = code;
    this.status = status;
    this.path = path;
  }
}

/** Joins the base URL and a path (`/rpc/x`). */
export function joinUrl(baseUrl: string | undefined, path: string): string {
  return (baseUrl ?? '').replace(/\/+$/, '') + path;
}

/** The RPC transport. One per client. */
export class Transport {
  private readonly opts: TransportOptions;
  private readonly inflight = new Map<string, Promise<RpcResult>>();

  constructor(opts: TransportOptions = {}) {
    this.opts = opts;
  }

  /** Absolute URL of a path under the base URL. */
  url(path: string): string {
    return joinUrl(this.opts.baseUrl, path);
  }

  /** Raw JSON request; throws `RpcError` on an error answer. */
  async request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    let res: Response;
    try {
      const headers: Record<string, string> = { accept: 'application/json', ...this.opts.headers };
      if (body !== undefined) headers['content-type'] = 'application/json';
      const token = await this.opts.getToken?.();
      if (token) headers['authorization'] = 'Bearer ' + token;
      res = await (this.opts.fetch ?? globalOf<typeof fetch>('fetch'))!(this.url(path), {
        method,
        headers,
        credentials: this.opts.credentials!, // (`undefined`: fetch's default, `same-origin`)
        body: body === undefined ? null : JSON.stringify(body),
      });
    } catch (e) {
      throw new RpcError('network', e instanceof Error ? e.message : String(e), 0);
    }
    let json: unknown;
    try {
      json = await res.json();
    } catch {
      /* not JSON: undefined */
    }
    const err = (json as { error?: { code?: unknown; message?: unknown; path?: unknown } } | undefined)?.error;
    if (!res.ok || err) {
      throw new RpcError(
        str(err?.code) ?? 'http_' + res.status,
        str(err?.message) ?? (res.statusText || 'request failed'),
        res.status,
        str(err?.path),
      );
    }
    return json;
  }

  /** Calls a procedure once (no sharing); a query (`isQuery`) may be sent as GET. */
  async call(name: string, input: unknown, isQuery?: boolean): Promise<RpcResult> {
    const path = '/rpc/' + encodeURIComponent(name);
    const json =
      isQuery && this.opts.getQueries
        ? await this.request('GET', path + '?input=' + encodeURIComponent(canonicalJson(input ?? null)))
        : await this.request('POST', path, input ?? null);
    const r = json as { data?: unknown; eventId?: unknown };
    if (!(r && typeof r === 'object' && 'data' in r)) throw new RpcError('bad_response', 'no data', 200);
    const out: RpcResult = { data: r.data };
    if (typeof r.eventId === 'string' || typeof r.eventId === 'number') out.eventId = String(r.eventId);
    return out;
  }

  /**
   * Runs a query; identical queries (same procedure and canonical input, same `scope`, e.g. the
   * tenant) in flight share one request.
   */
  query(name: string, input: unknown, scope = ''): Promise<RpcResult> {
    const key = scope + '\n' + queryKey(name, input);
    const running = this.inflight.get(key);
    if (running) return running;
    const p = this.call(name, input, true).finally(() => {
      if (this.inflight.get(key) === p) this.inflight.delete(key);
    });
    this.inflight.set(key, p);
    return p;
  }

  /** Runs a mutation (never shared). */
  mutate(name: string, input: unknown): Promise<RpcResult> {
    return this.call(name, input);
  }
}
