// The Vue binding and the TanStack Query bridge in a real browser against the TeamHub server:
// `vue.html` (a Vue 3 component on `@reactive/client/vue`) and `tanstack.html` (a
// `@tanstack/query-core` query kept live by `@reactive/client/tanstack`) each list org-1's agents.
// One scenario each: a rename made in the React page of another browser context shows up in the
// page live, from its event stream, without reload.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  agentNameText,
  call,
  launch,
  newContext,
  openPage,
  queryKey,
  recordSse,
  signInCookie,
  unique,
  waitForConnection,
  waitFresh,
  waitUntil,
} from './helpers.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

for (const [label, file] of [
  ['Vue binding', 'vue.html'],
  ['TanStack Query bridge', 'tanstack.html'],
]) {
  test(`${label} (${file}): a rename in the React page of another context shows up live, without reload`, { timeout: 60000 }, async () => {
    const agent = await call('org-1', 'agents.create', { organizationId: 'org-1', name: unique('Bound') });
    const ctxA = await newContext(browser);
    const ctxB = await newContext(browser);
    try {
      const react = await openPage(ctxA, 'org-1', `#agent=${agent.id}`);
      await waitForConnection(react, 'live');
      await waitFresh(react);

      const page = await ctxB.newPage();
      const sse = await recordSse(page);
      await signInCookie(ctxB, 'org-1');
      await page.goto(`/${file}`);
      await waitUntil(async () => (await agentNameText(page, agent.id)) === agent.name, {
        timeout: 15000,
        message: `${file} lists the new agent`,
      });
      // The stream is open (and subscribed to the list) before the write.
      await waitUntil(() => sse.frames.some((f) => f.event === 'ready'), { timeout: 10000, message: 'the event stream open' });
      await page.evaluate(() => (window.__noReload = true));

      const renamed = unique('Renamed');
      await react.locator('[data-testid="rename-input"]').fill(renamed);
      await react.locator('[data-testid="rename-submit"]').click();
      await waitUntil(async () => (await agentNameText(page, agent.id)) === renamed, {
        timeout: 3000,
        interval: 10,
        message: `the rename in ${file}`,
      });
      assert.equal(await page.evaluate(() => window.__noReload), true, `${file} was not reloaded`);
      const listKey = queryKey('agents.findMany', { organizationId: 'org-1' });
      const named = sse.invalidations().flatMap((e) => e.queries);
      assert.ok(
        named.some((q) => q === listKey || q === 'agents.findMany' || q === '*'),
        `the list's invalidation came on the page's stream (got ${JSON.stringify(named)})`,
      );
    } finally {
      await Promise.all([ctxA.close(), ctxB.close()]);
    }
  });
}
