// The Svelte stores (`src/svelte.ts`) in a Svelte 5 component (compiled here, mounted in happy-dom).
import { agent, domPage, renameOverTheStream, win } from './dom';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createSvelteStores } from '../src/svelte';
import { FakeEventSource, flush } from './helpers';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

test('svelte: $store in a component: loading, data, live update, optimistic mutation; unsubscribed when unmounted', async (t) => {
  const svelteCompiler = 'svelte/compiler';
  // Svelte's browser build by path (Node resolves `svelte` to its server build): the same modules
  // as the compiled component's `svelte/internal/client`.
  const svelte = pathToFileURL(join(root, 'node_modules/svelte/src/index-client.js')).href;
  const { compile } = (await import(svelteCompiler)) as { compile: (src: string, o: object) => { js: { code: string } } };
  const { mount, unmount, flushSync } = (await import(svelte)) as {
    mount: (c: unknown, o: { target: Element; props: object }) => object;
    unmount: (c: object) => void;
    flushSync: () => void;
  };
  // Compiled next to node_modules, so that its `svelte/internal/client` import resolves.
  const out = join(root, '.tmp/svelte/Agents.mjs');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, compile(readFileSync(join(root, 'test/fixtures/Agents.svelte'), 'utf8'), { generate: 'client', filename: 'Agents.svelte' }).js.code);
  const Agents = ((await import(pathToFileURL(out).href)) as { default: unknown }).default;

  const page = domPage(t);
  const { server, clock, client } = page;
  const stores = createSvelteStores(client);
  const agents = stores.query('agents.findMany', { organizationId: 'o1' });
  const create = stores.mutation('agents.create', {
    optimistic: (input, cache) =>
      cache.update('agents.findMany', { organizationId: input.organizationId }, (old) => [...(old ?? []), agent('tmp', input.name)]),
  });
  const target = win.document.createElement('div');
  const app = mount(Agents, { target, props: { agents, create } });
  flushSync();
  const text = () => target.querySelector('p')!.textContent;
  assert.equal(text(), 'loading');
  await clock.advance(50);
  flushSync();
  assert.equal(text(), 'a1');
  const es = await renameOverTheStream(page);
  flushSync();
  assert.equal(text(), 'Ada');
  server.hold();
  (target.querySelector('button') as unknown as { click(): void }).click();
  flushSync();
  assert.equal(text(), 'Ada,Bo', 'optimistic');
  assert.equal(target.querySelector('i')!.textContent, 'saving');
  server.release();
  await flush();
  await clock.advance(2500);
  flushSync();
  assert.equal(text(), 'Ada,Bo');
  assert.equal(target.querySelector('i')!.textContent, '');
  unmount(app);
  await clock.advance(300);
  assert.ok(es.closed, 'unmounted: unsubscribed, stream closed');
});
