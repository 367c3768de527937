// Optional: an EventSource built on `fetch` streaming, for bearer-token auth (the browser's
// EventSource cannot send an `Authorization` header). Not imported by the runtime itself, so it
// costs nothing unless an app passes it:
//
//   createReactiveClient({ getToken, EventSource: createFetchEventSource({ getToken }) })

import type { EventSourceCtor, EventSourceLike } from './realtime.js';
import { globalOf, jitter } from './util.js';

export interface FetchEventSourceOptions {
  /** Bearer token for each (re)connect. */
  getToken?: () => string | null | undefined | Promise<string | null | undefined>;
  /** Extra headers. */
  headers?: Record<string, string> | undefined;
  /** `fetch` to use. Default: the global one. */
  fetch?: typeof fetch | undefined;
  /** Reconnect delay until the server's `retry:` says otherwise. Default 3000 ms. */
  retry?: number | undefined;
}

type Listener = (ev: { data: string; lastEventId?: string }) => void;

/** Returns an `EventSource`-compatible constructor that connects with `fetch` and the token. */
export function createFetchEventSource(opts: FetchEventSourceOptions = {}): EventSourceCtor {
  return class FetchEventSource implements EventSourceLike {
    readyState = 0;
    onerror: ((ev: unknown) => void) | null = null;
    private readonly listeners = new Map<string, Listener[]>();
    private readonly abort = new AbortController();
    private lastId = '';
    private retry = opts.retry ?? 3000;
    private readonly url: string;
    private readonly credentials: RequestCredentials;

    constructor(url: string, init?: { withCredentials?: boolean }) {
      this.url = url;
      this.credentials = init?.withCredentials ? 'include' : 'same-origin';
      void this.connect();
    }

    addEventListener(type: string, listener: Listener): void {
      this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
    }

    close(): void {
      this.readyState = 2;
      this.abort.abort();
    }

    private async connect(): Promise<void> {
      const f = opts.fetch ?? globalOf<typeof fetch>('fetch');
      let res: Response | undefined;
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream', ...opts.headers };
        const token = opts.getToken ? await opts.getToken() : undefined;
        if (token) headers['authorization'] = 'Bearer ' + token;
        if (this.lastId) headers['last-event-id'] = this.lastId;
        res = await f!(this.url, { headers, credentials: this.credentials, signal: this.abort.signal });
      } catch {
        res = undefined;
      }
      if (this.readyState === 2) return;
      if (!res || !res.ok || !res.body) {
        // Like EventSource: an HTTP error closes for good; a network error retries.
        if (res) this.readyState = 2;
        this.onerror?.({ status: res?.status });
        if (!res) this.reconnect();
        return;
      }
      this.readyState = 1;
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buf = '';
      let data: string[] = [];
      let type = '';
      let id: string | undefined;
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buf += decoder.decode(value, { stream: true });
          let nl: number;
          while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
            if (line === '') {
              if (id !== undefined) this.lastId = id;
              if (data.length) {
                const ev = { data: data.join('\n'), lastEventId: this.lastId };
                for (const l of this.listeners.get(type || 'message') ?? []) l(ev);
              }
              data = [];
              type = '';
              id = undefined;
              continue;
            }
            if (line.startsWith(':')) {
              // A comment (the server's heartbeat): reported as `ping`, which the runtime's dead
              // stream detection counts as a sign of life (the browser's EventSource hides them).
              for (const l of this.listeners.get('ping') ?? []) l({ data: '' });
              continue;
            }
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'data') data.push(value);
            else if (field === 'event') type = value;
            else if (field === 'id') id = value;
            else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
          }
        }
      } catch {
        /* aborted or network error */
      }
      if (this.readyState === 2) return;
      this.readyState = 0;
      this.onerror?.({});
      this.reconnect();
    }

    private reconnect(): void {
      setTimeout(() => {
        if (this.readyState !== 2) void this.connect();
      }, jitter(this.retry));
    }
  };
}
