// TeamHub in a real browser (Debian's Chromium through playwright-core) against the real server,
// which `run.sh` starts on a fresh SQLite file. Two smoke tests of the page (sign-in, screenshot
// for the README, organization switch; create / message / remember / delete), then numbered
// scenarios: 1–6 the client's promises (live rename, tenant isolation, cache-first reload, gap
// recovery, polling fallback, optimistic rename), 7 three tabs of one browser sharing one event
// stream, 8–10 a dropped connection, a hidden tab that comes back, an optimistic create racing its
// own event, 11 the dev tools page, 12 pushed results. Each test makes its own agents through the API.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  BASE,
  agentName,
  agentNameText,
  api,
  call,
  connectionState,
  holdRequests,
  launch,
  newContext,
  openPage,
  queryKey,
  readTexts,
  recordRpc,
  recordSse,
  recordStreams,
  recordTexts,
  signInCookie,
  sleep,
  startProxy,
  unique,
  waitForConnection,
  waitFresh,
  waitUntil,
} from './helpers.mjs';

const SCREENSHOT = fileURLToPath(new URL('../web/screenshot.png', import.meta.url));
const DEVTOOLS_SCREENSHOT = fileURLToPath(new URL('../web/devtools.png', import.meta.url));
const ORG1_SEEDED = ['Ada', 'Babbage', 'Curie'];

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** An agent of its own for a test, so tests never depend on each other's changes. */
function freshAgent(org, prefix) {
  return call(org, 'agents.create', { organizationId: org, name: unique(prefix) });
}

test('sign in through the page, see the seeded organization, save the screenshot, switch organization', { timeout: 60000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 560 }, baseURL: BASE });
  try {
    const page = await context.newPage();
    await page.goto('/');
    await page.locator('[data-testid="signin-org-1"]').click();
    await page.locator('[data-testid="agent-item"]').first().waitFor();
    const names = await page.locator('[data-testid="agent-name"]').allTextContents();
    for (const n of ORG1_SEEDED) assert.ok(names.includes(n), `seeded agent ${n} listed (got ${names})`);
    assert.deepEqual((await page.locator('[data-testid="tool"]').allTextContents()).sort(), ['code-runner', 'web-search']);
    await page.locator('[data-testid="agent-item"][data-agent-id="agent-1"]').click();
    await page.locator('[data-testid="message"]').first().waitFor();
    await waitForConnection(page, 'live');
    await waitFresh(page);
    await waitUntil(async () => (await page.locator('[data-testid="stat-memories"]').textContent()) === '2', {
      message: 'Ada has 2 memories',
    });
    assert.equal(await page.locator('[data-testid="stat-messages"]').textContent(), '3');
    await page.locator('[data-testid="memory"]').first().waitFor();
    await waitFresh(page);
    await page.screenshot({ path: SCREENSHOT });

    // The switcher: the other organization's data only, and back.
    await page.locator('[data-testid="org-switcher"]').selectOption('org-2');
    await waitUntil(async () => (await page.locator('[data-testid="agent-name"]').allTextContents()).includes('Dijkstra'), {
      message: 'org-2 agents',
    });
    const org2Names = await page.locator('[data-testid="agent-name"]').allTextContents();
    for (const n of ORG1_SEEDED) assert.ok(!org2Names.includes(n), `org-2 must not list ${n}`);
    assert.deepEqual(await page.locator('[data-testid="tool"]').allTextContents(), ['calculator']);
    await page.locator('[data-testid="org-switcher"]').selectOption('org-1');
    await waitUntil(async () => (await page.locator('[data-testid="agent-name"]').allTextContents()).includes('Ada'), {
      message: 'org-1 agents again',
    });
    assert.ok(!(await page.locator('[data-testid="agent-name"]').allTextContents()).includes('Dijkstra'));
  } finally {
    await context.close();
  }
});

test('create an agent, message it, remember something, delete it: all through the page', { timeout: 60000 }, async () => {
  const context = await newContext(browser);
  try {
    const page = await openPage(context, 'org-1');
    await waitForConnection(page, 'live');
    const name = unique('Hopper');
    await page.locator('[data-testid="new-agent-name"]').fill(name);
    await page.locator('[data-testid="create-agent"]').click();
    // Created: listed, and selected once the server answered (the detail uses the real id).
    await page.locator('[data-testid="agent-detail"]').getByText(name).first().waitFor({ timeout: 5000 });
    const id = await page.locator('[data-testid="agent-detail"]').getAttribute('data-agent-id');
    assert.ok(id && !id.startsWith('pending-'), `real id selected: ${id}`);
    await waitUntil(async () => (await agentNameText(page, id)) === name, { message: 'listed with its real id' });

    await page.locator('[data-testid="message-to"]').selectOption('agent-1');
    await page.locator('[data-testid="message-body"]').fill('Hello from the page');
    await page.locator('[data-testid="message-send"]').click();
    await page.locator('[data-testid="memory-content"]').fill('Likes compilers');
    await page.locator('[data-testid="memory-add"]').click();
    await waitUntil(async () => (await page.locator('[data-testid="stat-messages"]').textContent()) === '1', {
      message: 'message count 1',
    });
    await waitUntil(async () => (await page.locator('[data-testid="stat-memories"]').textContent()) === '1', {
      message: 'memory count 1',
    });
    // The optimistic entries give way to the server's once it reflects both writes.
    await waitUntil(async () => (await page.locator('.feed li.pending').count()) === 0, {
      message: 'the optimistic message and memory confirmed',
    });
    await waitFresh(page);
    assert.deepEqual(await page.locator('[data-testid="memory"]').allTextContents(), ['Likes compilers']);
    assert.equal(await page.locator('[data-testid="stat-messages"]').textContent(), '1');
    const stats = await call('org-1', 'agents.getWithStats', { organizationId: 'org-1', agentId: id });
    assert.equal(Number(stats.messageCount), 1);
    assert.equal(Number(stats.memoryCount), 1);

    await page.locator('[data-testid="delete-agent"]').click();
    await page.locator('[data-testid="no-selection"]').waitFor();
    await waitUntil(async () => (await agentNameText(page, id)) === undefined, { message: 'removed from the list' });
    const gone = await call('org-1', 'agents.getWithStats', { organizationId: 'org-1', agentId: id });
    assert.equal(gone.agent, null, 'deleted on the server');
  } finally {
    await context.close();
  }
});

test('1. a rename in one org-1 context appears in another within 1 s, without reload', { timeout: 60000 }, async () => {
  const agent = await freshAgent('org-1', 'Sync');
  const ctxA = await newContext(browser);
  const ctxB = await newContext(browser);
  try {
    const a = await openPage(ctxA, 'org-1', `#agent=${agent.id}`);
    const b = await openPage(ctxB, 'org-1', `#agent=${agent.id}`);
    await Promise.all([waitForConnection(a, 'live'), waitForConnection(b, 'live')]);
    await Promise.all([waitFresh(a), waitFresh(b)]);
    await b.evaluate(() => (window.__noReload = true));

    const newName = unique('Renamed');
    await a.locator('[data-testid="rename-input"]').fill(newName);
    const t0 = Date.now();
    await a.locator('[data-testid="rename-submit"]').click();
    await waitUntil(async () => (await agentNameText(b, agent.id)) === newName, {
      timeout: 1000,
      interval: 10,
      message: 'the rename in the other context',
    });
    const elapsed = Date.now() - t0;
    await waitUntil(async () => (await b.locator('[data-testid="detail-name"]').textContent()) === newName, {
      timeout: 1000,
      message: 'the detail header in the other context',
    });
    assert.equal(await b.evaluate(() => window.__noReload), true, 'the other page was not reloaded');
    console.log(`    rename visible in the other context after ${elapsed} ms`);
  } finally {
    await Promise.all([ctxA.close(), ctxB.close()]);
  }
});

test('2. an org-2 context sees none of org-1, and its event stream carries no org-1 event', { timeout: 60000 }, async () => {
  const ctx1 = await newContext(browser);
  const ctx2 = await newContext(browser);
  try {
    const org2 = await ctx2.newPage();
    const sse = await recordSse(org2);
    await signInCookie(ctx2, 'org-2');
    await org2.goto('/');
    await org2.locator('[data-testid="agent-item"]').first().waitFor();
    await waitForConnection(org2, 'live');
    await waitFresh(org2);

    // org-1 works: create, rename through its page, add memory and a message through the API.
    const agent = await freshAgent('org-1', 'Secret');
    const org1 = await openPage(ctx1, 'org-1', `#agent=${agent.id}`);
    await waitForConnection(org1, 'live');
    const secret = unique('Classified');
    await org1.locator('[data-testid="rename-input"]').fill(secret);
    await org1.locator('[data-testid="rename-submit"]').click();
    await call('org-1', 'memory.add', { organizationId: 'org-1', agentId: agent.id, content: 'org-1 only' });
    await call('org-1', 'messages.send', {
      organizationId: 'org-1',
      fromAgentId: agent.id,
      toAgentId: 'agent-1',
      body: 'org-1 only',
    });
    // The org-1 page saw its own changes live, so the events exist.
    await waitUntil(async () => (await agentNameText(org1, agent.id)) === secret, { message: 'org-1 rename' });
    await waitUntil(async () => (await org1.locator('[data-testid="stat-memories"]').textContent()) === '1', {
      message: 'org-1 memory count',
    });
    await sleep(1000);

    const names = await org2.locator('[data-testid="agent-name"]').allTextContents();
    for (const n of [...ORG1_SEEDED, agent.name, secret]) assert.ok(!names.includes(n), `org-2 must not list ${n}`);
    assert.ok(names.includes('Dijkstra') && names.includes('Euler'), `org-2 lists its own agents (got ${names})`);
    assert.deepEqual(sse.invalidations(), [], 'org-2 received no invalidation while only org-1 wrote');
    for (const f of sse.frames) assert.ok(!f.data.includes('org-1'), `org-2 frame mentions org-1: ${f.data}`);
    assert.ok(sse.frames.some((f) => f.event === 'ready'), 'the org-2 stream was open');

    // Control: an org-2 write does reach the org-2 stream and page.
    const own = await call('org-2', 'agents.create', { organizationId: 'org-2', name: unique('Own') });
    await waitUntil(async () => (await agentNameText(org2, own.id)) === own.name, { message: 'org-2 live update' });
    assert.ok(sse.invalidations().length > 0, 'the org-2 stream carries org-2 events');

    // And the API refuses org-2 credentials for org-1 data.
    const forbidden = await api('org-2', 'agents.findMany', { organizationId: 'org-1' });
    assert.equal(forbidden.status, 403);
  } finally {
    await Promise.all([ctx1.close(), ctx2.close()]);
  }
});

test('3. reload with RPC responses held: cached list at once, marked stale, then refreshed', { timeout: 60000 }, async () => {
  const agent = await freshAgent('org-1', 'Cached');
  const ctx = await newContext(browser);
  try {
    const page = await openPage(ctx, 'org-1');
    await waitUntil(async () => (await agentNameText(page, agent.id)) === agent.name, { message: 'agent listed' });
    await waitForConnection(page, 'live');
    await waitFresh(page);

    const hold = await holdRequests(ctx, '**/api/rpc/**');
    const renamed = unique('Refreshed');
    await call('org-1', 'agents.update', { organizationId: 'org-1', id: agent.id, data: { name: renamed } });
    await page.reload();
    // Before any RPC answer: the list is on screen from the browser cache, marked stale.
    await agentName(page, agent.id).waitFor({ timeout: 5000 });
    assert.equal(await agentNameText(page, agent.id), agent.name, 'cached (old) name shown first');
    assert.equal(await page.locator('[data-testid="agents-syncing"]').count(), 1, '"Syncing…" shown');
    await waitUntil(() => hold.count() > 0, { message: 'the revalidation request to leave the page' });
    assert.ok(hold.count() > 0, 'RPC requests are being held');

    await hold.release();
    await waitUntil(async () => (await agentNameText(page, agent.id)) === renamed, { message: 'refreshed name' });
    await waitUntil(async () => (await page.locator('[data-testid="agents-syncing"]').count()) === 0, {
      message: '"Syncing…" gone',
    });
  } finally {
    await ctx.close();
  }
});

describe('4. close the page, change data through the API, open it again', () => {
  let ctx, page, sse, rpc, agent, content;
  before(async () => {
    agent = await freshAgent('org-1', 'Gap');
    ctx = await newContext(browser);
    const first = await openPage(ctx, 'org-1', `#agent=${agent.id}`);
    await waitForConnection(first, 'live');
    await waitFresh(first);
    await sleep(2500); // page hints and background revalidation have settled into the registry
    await first.close();

    // While no page is open: a memory for the agent (table `memory` only).
    content = unique('Remembered while away');
    await call('org-1', 'memory.add', { organizationId: 'org-1', agentId: agent.id, content });

    page = await ctx.newPage();
    sse = await recordSse(page);
    rpc = recordRpc(page);
    await page.goto(`/#agent=${agent.id}`);
  });
  after(async () => {
    await ctx?.close();
  });

  test('the changes show (gap recovery from the last event id)', { timeout: 30000 }, async () => {
    await waitUntil(async () => (await page.locator('[data-testid="memory"]').allTextContents()).includes(content), {
      message: 'the memory added while away',
    });
    await waitUntil(async () => (await page.locator('[data-testid="stat-memories"]').textContent()) === '1', {
      message: 'memory count 1',
    });
    await waitFresh(page);
    assert.ok(sse.urls.length > 0, 'an event stream was opened');
    assert.ok(new URL(sse.urls[0]).searchParams.get('lastEventId'), `resumed with lastEventId: ${sse.urls[0]}`);
    const memoryKey = queryKey('memory.recent', { organizationId: 'org-1', agentId: agent.id });
    await waitUntil(() => sse.invalidations().some((e) => e.queries.includes(memoryKey) || e.queries.includes('memory.recent')), {
      message: `the replayed invalidation of ${memoryKey}`,
    });
  });

  test('only affected queries were refetched', { timeout: 30000 }, async () => {
    await waitFresh(page);
    await sleep(2500); // past the page hints (1 s) and background revalidation (2 s)
    // Affected = what the server's invalidations (replayed, live, or answered by `/poll`) name for this page.
    const named = new Set(sse.allInvalidations().flatMap((e) => e.queries));
    const isAffected = (c) => named.has('*') || named.has(c.name) || named.has(queryKey(c.name, c.input));
    const memoryKey = queryKey('memory.recent', { organizationId: 'org-1', agentId: agent.id });
    assert.ok(rpc.some((c) => queryKey(c.name, c.input) === memoryKey), 'memory.recent was refetched');
    const needless = rpc.filter((c) => !isAffected(c)).map((c) => queryKey(c.name, c.input));
    assert.deepEqual(needless, [], 'queries no invalidation named were refetched after the reopen');
  });
});

test('5. /api/events blocked: falls back to polling and still updates; unblocked: back to SSE', { timeout: 90000 }, async () => {
  const agent = await freshAgent('org-1', 'Poll');
  const ctx = await newContext(browser);
  try {
    const page = await openPage(ctx, 'org-1');
    await waitForConnection(page, 'live');
    const sse = await recordSse(page);
    const block = (route) => route.abort('connectionrefused');
    await page.route('**/api/events?**', block);
    // Opening an agent changes the subscription: the page reconnects, into the blocked route.
    await page.locator(`[data-testid="agent-item"][data-agent-id="${agent.id}"]`).click();
    await waitForConnection(page, 'polling', 30000);

    const polled = unique('Polled');
    await call('org-1', 'agents.update', { organizationId: 'org-1', id: agent.id, data: { name: polled } });
    await waitUntil(async () => (await agentNameText(page, agent.id)) === polled, {
      timeout: 6000,
      message: 'an update while polling',
    });
    assert.equal(await connectionState(page), 'polling');

    await page.unroute('**/api/events?**', block);
    const opened = sse.frames.length;
    await waitForConnection(page, 'live', 30000);
    assert.ok(sse.frames.slice(opened).some((f) => f.event === 'ready'), 'a new event stream is ready');
    const liveSince = Date.now();
    const live = unique('Live-again');
    await call('org-1', 'agents.update', { organizationId: 'org-1', id: agent.id, data: { name: live } });
    await waitUntil(async () => (await agentNameText(page, agent.id)) === live, {
      timeout: 1500,
      message: 'an update over SSE again',
    });
    assert.ok(
      sse.invalidations().some((e) => e.at >= liveSince && JSON.stringify(e.queries).includes('agents.findMany')),
      'the update arrived as an SSE invalidation',
    );
  } finally {
    await ctx.close();
  }
});

test('6. optimistic rename: at once, no flicker; a rejected rename rolls back with an error', { timeout: 60000 }, async () => {
  const agent = await freshAgent('org-1', 'Quick');
  const ctx = await newContext(browser);
  try {
    const page = await openPage(ctx, 'org-1', `#agent=${agent.id}`);
    await waitForConnection(page, 'live');
    await waitFresh(page);
    await waitUntil(async () => (await page.locator('[data-testid="detail-name"]').textContent()) === agent.name, {
      message: 'the detail loaded',
    });
    const listSel = `[data-testid="agent-item"][data-agent-id="${agent.id}"] [data-testid="agent-name"]`;
    await recordTexts(page, listSel);
    await recordTexts(page, '[data-testid="detail-name"]');

    // Accepted: shows while the request is still held, survives the round trip without flicker.
    const hold = await holdRequests(page, '**/api/rpc/agents.update');
    const renamed = unique('Optimistic');
    await page.locator('[data-testid="rename-input"]').fill(renamed);
    await page.locator('[data-testid="rename-submit"]').click();
    await waitUntil(async () => (await agentNameText(page, agent.id)) === renamed, {
      timeout: 300,
      interval: 10,
      message: 'the optimistic name',
    });
    assert.equal(await page.locator('[data-testid="detail-name"]').textContent(), renamed);
    await waitUntil(() => hold.count() === 1, { message: 'the held update request' });
    await hold.release();
    await waitFresh(page);
    await sleep(2500); // past the invalidation and the optimistic timeout
    for (const sel of [listSel, '[data-testid="detail-name"]']) {
      const texts = await readTexts(page, sel);
      assert.deepEqual(texts, [agent.name, renamed], `${sel} went straight from old to new: ${JSON.stringify(texts)}`);
    }

    // Rejected by the server (names are 1 to 80 characters): rolled back, error shown.
    const tooLong = 'x'.repeat(81);
    await page.locator('[data-testid="rename-input"]').fill(tooLong);
    await page.locator('[data-testid="rename-submit"]').click();
    await page.locator('[data-testid="error"]').waitFor({ timeout: 5000 });
    assert.match(await page.locator('[data-testid="error"]').first().textContent(), /1 to 80 characters/);
    await waitUntil(async () => (await agentNameText(page, agent.id)) === renamed, { message: 'the rollback' });
    const texts = await readTexts(page, listSel);
    assert.deepEqual(texts.slice(-2), [tooLong, renamed], `shown, then rolled back: ${JSON.stringify(texts)}`);
    assert.equal(await page.locator('[data-testid="detail-name"]').textContent(), renamed);
    const stored = await call('org-1', 'agents.getWithStats', { organizationId: 'org-1', agentId: agent.id });
    assert.equal(stored.agent.name, renamed, 'the server kept the accepted name');
  } finally {
    await ctx.close();
  }
});

test('7. three tabs share one event stream: one /events connection, every tab updated; closing the leader hands it over', { timeout: 90000 }, async () => {
  const a1 = await freshAgent('org-1', 'TabB');
  const a2 = await freshAgent('org-1', 'TabC');
  const ctx = await newContext(browser); // one browser profile: its tabs share locks, channels, storage
  try {
    await signInCookie(ctx, 'org-1');
    const tabs = [];
    for (const hash of ['', `#agent=${a1.id}`, `#agent=${a2.id}`]) {
      const page = await ctx.newPage();
      const streams = await recordStreams(page);
      await page.goto(`/${hash}`);
      await page.locator('[data-testid="agent-item"]').first().waitFor({ timeout: 15000 });
      tabs.push({ page, streams });
    }
    const open = (ts) => ts.reduce((n, t) => n + t.streams.open(), 0);
    await Promise.all(tabs.map((t) => waitForConnection(t.page, 'live')));
    await waitUntil(() => open(tabs) === 1, { timeout: 10000, message: 'one open event stream for three tabs' });
    for (let i = 0; i < 10; i++) {
      await sleep(100);
      assert.equal(open(tabs), 1, 'still one open event stream');
    }
    const leader = tabs.find((t) => t.streams.open() === 1);
    assert.ok(
      tabs.every((t) => t === leader || t.streams.urls.length === 0),
      'the followers never opened a stream of their own',
    );
    // The stream carries the union of the tabs' subscriptions: the followers' agent details too.
    const subs = new URL(leader.streams.openUrls()[0]).searchParams.getAll('subscribe');
    for (const a of [a1, a2]) assert.ok(subs.some((s) => s.includes(a.id)), `subscribed for ${a.id}: ${subs}`);
    await Promise.all(tabs.map((t) => waitFresh(t.page)));

    // One invalidation, three tabs updated (list everywhere, detail in the third tab).
    const renamed = unique('Shared');
    await call('org-1', 'agents.update', { organizationId: 'org-1', id: a2.id, data: { name: renamed } });
    for (const t of tabs)
      await waitUntil(async () => (await agentNameText(t.page, a2.id)) === renamed, {
        timeout: 3000,
        message: `the rename in tab ${tabs.indexOf(t) + 1}`,
      });
    await waitUntil(async () => (await tabs[2].page.locator('[data-testid="detail-name"]').textContent()) === renamed, {
      timeout: 3000,
      message: "the rename in the third tab's detail",
    });
    assert.equal(open(tabs), 1);

    // The leader closes: a remaining tab takes the lock and opens the stream, resuming from the last id.
    await leader.page.close();
    const rest = tabs.filter((t) => t !== leader);
    await waitUntil(() => open(rest) === 1, { timeout: 10000, message: 'a remaining tab opened the stream' });
    const next = rest.find((t) => t.streams.open() === 1);
    const resumed = new URL(next.streams.openUrls()[0]);
    assert.ok(resumed.searchParams.get('lastEventId'), `resumes from the last id seen: ${resumed}`);
    await Promise.all(rest.map((t) => waitForConnection(t.page, 'live')));
    const again = unique('Handover');
    await call('org-1', 'agents.update', { organizationId: 'org-1', id: a1.id, data: { name: again } });
    for (const t of rest)
      await waitUntil(async () => (await agentNameText(t.page, a1.id)) === again, {
        timeout: 3000,
        message: 'the rename after the handover in every remaining tab',
      });
    assert.equal(open(rest), 1, 'still one stream after the handover');
    console.log(`    leader was tab ${tabs.indexOf(leader) + 1}, tab ${tabs.indexOf(next) + 1} took over`);
  } finally {
    await ctx.close();
  }
});

test('11. the dev tools page: a rename shows in the live trace with the cached key it invalidated, the tenant\'s cached entries are listed; org-2 is refused', { timeout: 60000 }, async () => {
  const context = await newContext(browser);
  const other = await newContext(browser);
  try {
    await signInCookie(context, 'org-1');
    const page = await context.newPage();
    const agent = await freshAgent('org-1', 'Traced');
    await call('org-1', 'agents.findMany', { organizationId: 'org-1' });
    await page.goto('/api/devtools');
    await waitUntil(async () => (await page.locator('#status').textContent()) === 'live', { message: 'the page is live' });
    await call('org-1', 'agents.update', { organizationId: 'org-1', id: agent.id, data: { name: unique('Renamed') } });
    const row = page.locator('[data-testid="trace-row"]', { hasText: 'org-1 agents.findMany {"organizationId":"org-1"}' }).first();
    await row.waitFor({ timeout: 5000 });
    assert.match(await row.textContent(), /agent\.organization_id = "org-1"/);
    await waitUntil(async () => (await page.locator('#timings tr').count()) > 0, { message: 'per-procedure timings' });

    // The cached entries of one tenant: the list, cached again after the rename, is there; org-2's are not.
    await call('org-1', 'agents.findMany', { organizationId: 'org-1' });
    await call('org-2', 'agents.findMany', { organizationId: 'org-2' });
    await page.locator('#cache-tenant').fill('org-1');
    await page.locator('#cache-go').click();
    const cached = page.locator('#cache tr', { hasText: 'agents.findMany' }).first();
    await cached.waitFor({ timeout: 5000 });
    assert.match(await cached.textContent(), /\{"organizationId":"org-1"\}/);
    const listed = await page.locator('#cache').textContent();
    assert.ok(listed.includes('tenant org-1') && !listed.includes('org-2'), `only org-1's entries: ${listed}`);
    await page.screenshot({ path: DEVTOOLS_SCREENSHOT });

    await signInCookie(other, 'org-2');
    const refused = await (await other.newPage()).goto('/api/devtools');
    assert.equal(refused.status(), 403, 'org-2 is no administrator of the demo');
  } finally {
    await context.close();
    await other.close();
  }
});

// The server's heartbeat: an `event: ping` every 15 s. Recovering a dropped connection must not
// wait for it (nor for the client's dead-stream detection, which needs two missed heartbeats).
const HEARTBEAT_MS = 15000;

/** A page loaded through a TCP proxy that can cut its connections, live and fresh. */
test('12. push: a message sent in one context shows in another from its event stream, with no refetch', { timeout: 60000 }, async () => {
  const agent = await freshAgent('org-1', 'Pushed');
  const ctxA = await newContext(browser);
  const ctxB = await newContext(browser);
  try {
    const a = await openPage(ctxA, 'org-1', `#agent=${agent.id}`);
    const b = await openPage(ctxB, 'org-1', `#agent=${agent.id}`);
    await Promise.all([waitForConnection(a, 'live'), waitForConnection(b, 'live')]);
    await Promise.all([waitFresh(a), waitFresh(b)]);
    await sleep(2500); // past the page hints and background revalidation: later requests are the write's
    const sse = await recordSse(b);
    const rpc = recordRpc(b);
    const body = unique('pushed hello');
    await a.locator('[data-testid="message-to"]').selectOption('agent-1');
    await a.locator('[data-testid="message-body"]').fill(body);
    const t0 = Date.now();
    await a.locator('[data-testid="message-send"]').click();
    await waitUntil(async () => (await b.locator('[data-testid="message"]').allTextContents()).some((t) => t.includes(body)), {
      timeout: 2000,
      interval: 10,
      message: 'the message in the other context',
    });
    const elapsed = Date.now() - t0;
    // `messages.getAll` is `#[reactive_function(push)]`: its new value rode in the event frame.
    const key = queryKey('messages.getAll', { organizationId: 'org-1', agentId: agent.id });
    const pushed = sse.invalidations().filter((e) => e.results?.[key]);
    assert.ok(pushed.length > 0, `an event carried the new value of ${key}: ${JSON.stringify(sse.invalidations())}`);
    assert.ok(
      pushed.some((e) => JSON.stringify(e.results[key].data).includes(body)),
      'the pushed value holds the message',
    );
    await waitFresh(b);
    await sleep(500);
    const refetched = rpc.filter((c) => c.name === 'messages.getAll');
    assert.deepEqual(refetched, [], 'the other context did not refetch the pushed query');
    console.log(`    pushed message visible in the other context after ${elapsed} ms`);
  } finally {
    await Promise.all([ctxA.close(), ctxB.close()]);
  }
});

async function proxiedPage(org) {
  const proxy = await startProxy();
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, baseURL: proxy.url });
  const page = await openPage(ctx, org);
  const streams = await recordStreams(page);
  await waitForConnection(page, 'live');
  await waitFresh(page);
  return { proxy, ctx, page, streams };
}

test('8. a dropped connection is recovered within the heartbeat interval, with the event missed meanwhile', { timeout: 60000 }, async () => {
  const agent = await freshAgent('org-1', 'Drop');
  const { proxy, ctx, page, streams } = await proxiedPage('org-1');
  try {
    // Every connection cut (a network change, a proxy restart); a write lands while it is down.
    const renamed = unique('Dropped');
    const before = streams.urls.length;
    const dropped = Date.now();
    proxy.drop();
    await call('org-1', 'agents.update', { organizationId: 'org-1', id: agent.id, data: { name: renamed } });
    await waitUntil(async () => (await agentNameText(page, agent.id)) === renamed, {
      timeout: HEARTBEAT_MS,
      message: 'the write made while the connection was down',
    });
    const took = Date.now() - dropped;
    await waitForConnection(page, 'live');
    // (The browser's EventSource reconnects to the same URL and sends Last-Event-ID as a header.)
    await waitUntil(() => streams.open() === 1, { message: 'an event stream open again' });
    assert.ok(streams.urls.length > before, 'the stream was reopened');
    assert.ok(took < HEARTBEAT_MS, `recovered in ${took} ms`);
    console.log(`    recovered in ${took} ms`);
  } finally {
    await ctx.close();
    await proxy.close();
  }
});

test('9. a hidden tab whose connection dropped meanwhile comes back: reconnected and updated at once', { timeout: 60000 }, async () => {
  const agent = await freshAgent('org-1', 'Hidden');
  const { proxy, ctx, page, streams } = await proxiedPage('org-1');
  try {
    // Hidden and frozen, as a browser does with a background tab: no script runs.
    const cdp = await ctx.newCDPSession(page);
    await page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await cdp.send('Page.setWebLifecycleState', { state: 'frozen' });
    const before = streams.urls.length;
    proxy.drop();
    const renamed = unique('Back');
    await call('org-1', 'agents.update', { organizationId: 'org-1', id: agent.id, data: { name: renamed } });
    await sleep(1000);
    // Back: active and visible.
    const back = Date.now();
    await cdp.send('Page.setWebLifecycleState', { state: 'active' });
    await page.evaluate(() => {
      delete document.visibilityState;
      delete document.hidden;
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await waitUntil(async () => (await agentNameText(page, agent.id)) === renamed, {
      timeout: 5000,
      message: 'the write made while the tab was hidden',
    });
    console.log(`    updated ${Date.now() - back} ms after coming back`);
    await waitForConnection(page, 'live');
    assert.ok(streams.urls.length > before, 'a new event stream');
  } finally {
    await ctx.close();
    await proxy.close();
  }
});

test('10. an optimistic create whose own event and refetch beat its response: never shown twice, no flicker', { timeout: 60000 }, async () => {
  const ctx = await newContext(browser);
  try {
    const page = await openPage(ctx, 'org-1');
    await waitForConnection(page, 'live');
    await waitFresh(page);
    const sse = await recordSse(page);
    const rpc = recordRpc(page);
    const name = unique('Racer');
    // The create reaches the server at once; its response is held until the event and the
    // refetched list (which already holds the new agent) have arrived.
    let release;
    const gate = new Promise((r) => (release = r));
    let fulfilled;
    const done = new Promise((r) => (fulfilled = r));
    let sent = 0;
    await page.route('**/api/rpc/agents.create', async (route) => {
      const response = await route.fetch();
      sent++;
      await gate;
      await route.fulfill({ response });
      fulfilled();
    });
    await page.evaluate((n) => {
      const w = window;
      w.__counts = [];
      const count = () =>
        [...document.querySelectorAll('[data-testid="agent-name"]')].filter((e) => e.textContent === n).length;
      const push = () => {
        const c = count();
        if (w.__counts[w.__counts.length - 1] !== c) w.__counts.push(c);
      };
      push();
      new MutationObserver(push).observe(document.body, { subtree: true, childList: true, characterData: true });
    }, name);
    await page.locator('[data-testid="new-agent-name"]').fill(name);
    await page.locator('[data-testid="create-agent"]').click();
    await waitUntil(() => sent === 1, { message: 'the create answered by the server (response held)' });
    await waitUntil(() => sse.invalidations().some((e) => JSON.stringify(e.queries).includes('agents.findMany')), {
      message: "the create's own invalidation",
    });
    const since = sse.invalidations().at(-1).at;
    await waitUntil(() => rpc.some((c) => c.name === 'agents.findMany' && c.at >= since), {
      message: 'the list refetched after the event',
    });
    await sleep(500); // the refetch answered and rendered
    release();
    await done;
    await page.unroute('**/api/rpc/agents.create');
    await waitFresh(page);
    await sleep(2500); // past the optimistic timeout
    const counts = await page.evaluate(() => window.__counts);
    assert.deepEqual(counts, [0, 1], `the new agent shown once, at once, and never twice: ${JSON.stringify(counts)}`);
    const listed = await call('org-1', 'agents.findMany', { organizationId: 'org-1' });
    assert.equal(listed.filter((a) => a.name === name).length, 1, 'created once on the server');
  } finally {
    await ctx.close();
  }
});
