// Server rendering with data (`src/ssr.ts`): the server fetches, renders and dehydrates; the
// browser hydrates the client and React hydrates the markup (happy-dom) without a mismatch and
// without fetching the server's results again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as React from 'react';
import { renderToString } from 'react-dom/server';
import { prerenderToNodeStream } from 'react-dom/static';
import { createReactiveClient, ReactiveProvider } from '../src/react';
import { dehydrate, hydrate, prefetch, serializeState, type DehydratedState } from '../src/ssr';
import { createSuspenseHooks } from '../src/suspense';
import { procedures, useReactive, type Agent, type Procedures } from './fixtures/procedures';
import { FakeClock, FakeEventSource, FakeServer, MemoryStorage, flush, ok } from './helpers';

// The server renderers and the DOM renderer share the provider's context object in this one
// process (never in an app): React says so once per render.
const consoleError = console.error;
console.error = (...args: unknown[]) => {
  if (typeof args[0] === 'string' && args[0].startsWith('Detected multiple renderers')) return;
  consoleError(...args);
};

const { useReactiveSuspense } = createSuspenseHooks<Procedures>();
const agent = (id: string, name = id): Agent => ({ id, organizationId: 'o1', name, active: true });

function server() {
  const s = new FakeServer();
  s.on('/rpc/agents.findMany', () => ok([agent('a1'), agent('a2', '</script>')], '100'));
  s.on('/rpc/agents.get', () => ok(agent('a1'), '100'));
  return s;
}

function Agents() {
  const { data, isLoading } = useReactive('agents.findMany', { organizationId: 'o1' });
  return React.createElement('p', null, isLoading ? 'loading' : `${data!.length} agents`);
}
function Other() {
  // Not fetched on the server: renders loading there, and so during hydration.
  const { data, isLoading } = useReactive('agents.get', { id: 'a1' });
  return React.createElement('i', null, isLoading ? 'loading' : data!.name);
}
const Page = () => React.createElement('div', null, React.createElement(Agents), React.createElement(Other));

interface HappyWindow {
  document: Document;
  happyDOM: { abort(): Promise<void>; close(): Promise<void> };
}

let state!: DehydratedState;
let html!: string;

test('server: prefetch, render with data, dehydrate (no window)', async () => {
  assert.equal(typeof (globalThis as Record<string, unknown>).window, 'undefined');
  const s = server();
  // One client per request on the server.
  const client = createReactiveClient<Procedures>({ fetch: s.fetch, procedures });
  await prefetch(client, [['agents.findMany', { organizationId: 'o1' }]]);
  html = renderToString(React.createElement(ReactiveProvider, { client }, React.createElement(Page)));
  assert.equal(html, '<div><p>2 agents</p><i>loading</i></div>');
  state = JSON.parse(JSON.stringify(dehydrate(client)));
  assert.deepEqual(state.queries, [['agents.findMany', { organizationId: 'o1' }, [agent('a1'), agent('a2', '</script>')], '100']]);
  assert.ok(!serializeState(state).includes('</script>'), 'safe inside a <script> element');
  assert.deepEqual(JSON.parse(serializeState(state)), state);
  assert.equal(s.count('/rpc/'), 1);
});

test('server: useReactiveSuspense fetches under a streaming renderer and the result dehydrates', { timeout: 5000 }, async () => {
  const s = server();
  // A hook that suspends again and again fails the test instead of spinning.
  const answer = s.handlers.get('/rpc/agents.get')!;
  s.on('/rpc/agents.get', (c) => (s.count('/rpc/agents.get') > 3 ? new Promise(() => undefined) : answer(c)));
  const client = createReactiveClient<Procedures>({ fetch: s.fetch, procedures });
  function Name() {
    const { data } = useReactiveSuspense('agents.get', { id: 'a1' });
    return React.createElement('b', null, data?.name);
  }
  const el = React.createElement(
    ReactiveProvider,
    { client },
    React.createElement(React.Suspense, { fallback: 'wait' }, React.createElement(Name)),
  );
  const { prelude } = await prerenderToNodeStream(el);
  let out = '';
  for await (const chunk of prelude) out += chunk;
  assert.match(out, /<b>a1<\/b>/);
  assert.doesNotMatch(out, /wait/);
  assert.deepEqual(dehydrate(client).queries, [['agents.get', { id: 'a1' }, agent('a1'), '100']]);
  assert.equal(s.count('/rpc/agents.get'), 1);
});

test('browser: hydrate, then hydrateRoot: same markup, no refetch of server results, the registry shown after', async (t) => {
  // (Untyped import: happy-dom's declarations need newer Node types than the runtime's tests use.)
  const happyDom = 'happy-dom';
  const { Window } = (await import(happyDom)) as { Window: new (o: { url: string }) => HappyWindow };
  const win = new Window({ url: 'http://localhost/' });
  let client!: ReturnType<typeof createReactiveClient<Procedures>>;
  t.after(async () => {
    client?.stop();
    await win.happyDOM.abort();
    await win.happyDOM.close();
  });
  const g = globalThis as Record<string, unknown>;
  for (const k of ['window', 'document', 'navigator', 'HTMLElement', 'Node', 'Element', 'Text', 'Event', 'MutationObserver'])
    Object.defineProperty(globalThis, k, { value: k == 'window' ? win : (win as unknown as Record<string, unknown>)[k], configurable: true, writable: true });
  g.IS_REACT_ACT_ENVIRONMENT = true;
  FakeEventSource.reset();
  const s = server();
  // The browser's registry holds data of another query: not rendered during hydration (the
  // server had none), shown right after.
  const storage = new MemoryStorage();
  const seed = createReactiveClient<Procedures>({ fetch: s.fetch, storage, procedures, realtime: false, locks: null, channel: null });
  await seed.fetch('agents.get', { id: 'a1' });
  s.calls = [];
  const clock = new FakeClock();
  client = createReactiveClient<Procedures>({
    clock,
    fetch: s.fetch,
    storage,
    EventSource: FakeEventSource,
    locks: null,
    channel: null,
    procedures,
  });
  hydrate(client, state);
  const container = win.document.createElement('div');
  container.innerHTML = html;
  const errors: string[] = [];
  const { hydrateRoot } = await import('react-dom/client');
  const { act } = await import('react');
  await act(async () => {
    hydrateRoot(container, React.createElement(ReactiveProvider, { client }, React.createElement(Page)), {
      onRecoverableError: (e) => errors.push(String(e)),
    });
    await flush();
  });
  assert.deepEqual(errors, [], 'no hydration mismatch');
  assert.equal(container.querySelector('p')!.textContent, '2 agents');
  assert.equal(container.querySelector('i')!.textContent, 'a1', 'registry data after hydration');
  assert.equal(s.count('/rpc/agents.findMany'), 0, 'the hydrated result is not fetched again');
  assert.equal(client.getSnapshot('agents.findMany', { organizationId: 'o1' }).isStale, false);
  // Newer data the client already has is kept by a later `hydrate`.
  hydrate(client, { queries: [['agents.findMany', { organizationId: 'o1' }, [], '99']] });
  assert.equal(client.getSnapshot('agents.findMany', { organizationId: 'o1' }).data?.length, 2);
  // The stream resumes gap recovery from the hydrated watermark: events after the render are not lost.
  await clock.advance(50);
  FakeEventSource.last.ready('105');
  await flush();
  assert.ok(s.calls.some((c) => c.path.startsWith('/poll') && c.path.includes('since=100')), 'one /poll from the watermark');
});
