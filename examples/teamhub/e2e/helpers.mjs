// Helpers of the TeamHub browser tests: the browser, signed-in pages, the API, waiting, and
// recorders for RPC requests and Server-Sent Events (read from the DevTools protocol, so the
// page itself is not instrumented).
import { chromium } from 'playwright-core';

export const BASE = process.env.TEAMHUB_URL ?? 'http://127.0.0.1:3000';
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const TOKENS = { 'org-1': 'token-org-1', 'org-2': 'token-org-2' };

/** Debian's Chromium, headless, no browser download. */
export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A fresh browser context (its own cookies and localStorage, like another browser profile). */
export function newContext(browser) {
  return browser.newContext({ viewport: { width: 1280, height: 800 }, baseURL: BASE });
}

/** Signs a context in the way the page does (the `reactive_token` cookie). */
export async function signInCookie(context, org) {
  const { hostname } = new URL(BASE);
  await context.addCookies([{ name: 'reactive_token', value: TOKENS[org], domain: hostname, path: '/' }]);
}

/** Calls a procedure as an organization, outside any browser. */
export async function api(org, name, input) {
  const res = await fetch(`${BASE}/api/rpc/${name}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS[org]}` },
    body: JSON.stringify(input),
  });
  const body = await res.json().catch(() => undefined);
  return { status: res.status, body };
}

/** Like `api`, but fails unless the call succeeds; returns `data`. */
export async function call(org, name, input) {
  const r = await api(org, name, input);
  if (r.status !== 200) throw new Error(`${name} → ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.data;
}

let seq = 0;
/** A name no other test uses. */
export function unique(prefix) {
  return `${prefix} ${Date.now().toString(36).slice(-4)}${++seq}`;
}

/** Polls `fn` until it returns a truthy value; throws `message` after `timeout` ms. */
export async function waitUntil(fn, { timeout = 5000, interval = 25, message = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${message} (last: ${String(last)})`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Locator of an agent's name in the list. */
export function agentName(page, id) {
  return page.locator(`[data-testid="agent-item"][data-agent-id="${id}"] [data-testid="agent-name"]`);
}

/** Current text of an agent's name in the list, or undefined when it is not shown. */
export async function agentNameText(page, id) {
  const loc = agentName(page, id);
  return (await loc.count()) ? ((await loc.first().textContent()) ?? undefined) : undefined;
}

/** The connection indicator's state: live, polling, connecting or offline. */
export function connectionState(page) {
  return page.locator('[data-testid="connection"]').getAttribute('data-state');
}

export async function waitForConnection(page, state, timeout = 10000) {
  await waitUntil(async () => (await connectionState(page)) === state, {
    timeout,
    message: `connection indicator "${state}"`,
  });
}

/** Records the page's Server-Sent Events frames and EventSource URLs (DevTools protocol). */
export async function recordSse(page) {
  const cdp = await page.context().newCDPSession(page);
  const rec = { frames: [], urls: [] };
  cdp.on('Network.eventSourceMessageReceived', (e) =>
    rec.frames.push({ event: e.eventName, id: e.eventId, data: e.data, at: Date.now() }),
  );
  cdp.on('Network.requestWillBeSent', (e) => {
    if (e.type === 'EventSource' || e.request.url.includes('/api/events?')) rec.urls.push(e.request.url);
  });
  await cdp.send('Network.enable');
  // `/poll` answers (the reopen check, polling mode) invalidate too: their events, and a reset as `*`.
  rec.polled = [];
  page.on('response', async (res) => {
    if (!res.url().includes('/api/poll')) return;
    try {
      const body = await res.json();
      for (const e of body.events ?? []) rec.polled.push({ ...e, at: Date.now() });
      if (body.reset) rec.polled.push({ queries: ['*'], reset: true, at: Date.now() });
    } catch {
      /* not JSON, or the page went away */
    }
  });
  rec.invalidations = () =>
    rec.frames.filter((f) => f.event === 'invalidate').map((f) => ({ ...JSON.parse(f.data), at: f.at }));
  rec.allInvalidations = () => [...rec.invalidations(), ...rec.polled];
  return rec;
}

/** Records the page's RPC requests: `{name, input, at}`. */
export function recordRpc(page) {
  const calls = [];
  page.on('request', (req) => {
    const m = /\/api\/rpc\/([^?]+)/.exec(req.url());
    if (!m) return;
    let input = null;
    try {
      input = JSON.parse(req.postData() ?? 'null');
    } catch {
      /* GET queries */
    }
    calls.push({ name: decodeURIComponent(m[1]), input, at: Date.now() });
  });
  return calls;
}

/**
 * Holds matching requests of a page or context until `release()`: the request has left the
 * page, but its response does not arrive. After `release()` everything passes through.
 */
export async function holdRequests(target, pattern) {
  const held = [];
  let open = false;
  const handler = async (route) => {
    if (open) return route.continue().catch(() => undefined);
    await new Promise((resolve) => held.push({ route, resolve }));
    await route.continue().catch(() => undefined);
  };
  await target.route(pattern, handler);
  return {
    held,
    count: () => held.length,
    async release() {
      open = true;
      for (const h of held.splice(0)) h.resolve();
      await target.unroute(pattern, handler);
    },
  };
}

/** A page signed in to `org`, opened at `hash`, with its list loaded. */
export async function openPage(context, org, hash = '') {
  await signInCookie(context, org);
  const page = await context.newPage();
  await page.goto(`/${hash}`);
  await page.locator('[data-testid="agent-item"]').first().waitFor({ timeout: 15000 });
  return page;
}

/** Waits until no "Syncing…" mark is on the page (every shown query is fresh). */
export async function waitFresh(page, timeout = 10000) {
  await waitUntil(async () => (await page.locator('.syncing').count()) === 0, { timeout, message: 'fresh data' });
}

/**
 * Starts recording every text an element matching `selector` shows (a MutationObserver in the
 * page, so every committed DOM state is seen, not a sample). Read with `readTexts`.
 */
export async function recordTexts(page, selector) {
  await page.evaluate((sel) => {
    const w = window;
    w.__texts = w.__texts ?? {};
    const seen = (w.__texts[sel] = []);
    const push = () => {
      const el = document.querySelector(sel);
      const t = el ? el.textContent : null;
      if (seen[seen.length - 1] !== t) seen.push(t);
    };
    push();
    new MutationObserver(push).observe(document.body, { subtree: true, childList: true, characterData: true });
  }, selector);
}

export function readTexts(page, selector) {
  return page.evaluate((sel) => window.__texts[sel], selector);
}

/** The runtime's query key: procedure, colon, JSON of the input with keys sorted at every level. */
export function queryKey(name, input) {
  const sort = (v) =>
    Array.isArray(v)
      ? v.map(sort)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort(v[k])]))
        : v;
  return `${name}:${JSON.stringify(sort(input ?? null))}`;
}

/**
 * Records the event streams (`/api/events`) a page holds open, from the DevTools protocol: a
 * stream is open from its request until its load finishes or fails. `open()` counts them.
 */
export async function recordStreams(page) {
  const cdp = await page.context().newCDPSession(page);
  const open = new Map();
  const rec = { urls: [], open: () => (page.isClosed() ? 0 : open.size), openUrls: () => [...open.values()] };
  cdp.on('Network.requestWillBeSent', (e) => {
    if (e.type === 'EventSource' || e.request.url.includes('/api/events?')) {
      open.set(e.requestId, e.request.url);
      rec.urls.push(e.request.url);
    }
  });
  cdp.on('Network.loadingFinished', (e) => open.delete(e.requestId));
  cdp.on('Network.loadingFailed', (e) => open.delete(e.requestId));
  await cdp.send('Network.enable');
  return rec;
}

/**
 * A TCP proxy in front of the server, to cut a page's connections as a network would: `drop()`
 * destroys every connection open through it (the page's event stream among them); new
 * connections pass. `url` serves the same page and API as `BASE`.
 */
export async function startProxy() {
  const { createServer, connect } = await import('node:net');
  const target = new URL(BASE);
  const open = new Set();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    const pair = [client, upstream];
    open.add(pair);
    const end = () => {
      open.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** How many connections are open through the proxy. */
    count: () => open.size,
    drop() {
      for (const [client, upstream] of [...open]) {
        client.resetAndDestroy?.() ?? client.destroy();
        upstream.destroy();
      }
    },
    close: () =>
      new Promise((r) => {
        for (const [c, u] of open) c.destroy(), u.destroy();
        server.close(r);
      }),
  };
}
