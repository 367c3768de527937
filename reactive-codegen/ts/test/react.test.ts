// The React binding in a simulated browser page (react-test-renderer, fake clock, fake server).
import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import * as React from 'react';
import TestRenderer, { act } from 'react-test-renderer';
import { ReactiveProvider, setDefaultClient } from '../src/react';
import { useReactive, useReactiveMutation, useReactivePriorities, type Agent, type Procedures } from './fixtures/procedures';
import { FakeClock, FakeEventSource, FakeServer, flush, installWindow, ok, pageClient } from './helpers';

installWindow();
// react-test-renderer still works with React 19 but warns once per render root; keep output readable.
const consoleError = console.error;
console.error = (...args: unknown[]) => {
  if (typeof args[0] === 'string' && args[0].startsWith('react-test-renderer is deprecated')) return;
  consoleError(...args);
};
(globalThis as Record<string, unknown>).IS_REACT_ACT_ENVIRONMENT = true;
beforeEach(() => FakeEventSource.reset());

const agent = (id: string, name = id): Agent => ({ id, organizationId: 'o1', name, active: true });

function setup() {
  const server = new FakeServer();
  const state = { agents: [agent('a1')], eventId: 100, fail: false };
  server.on('/rpc/agents.findMany', () => ok(state.agents, String(state.eventId)));
  server.on('/rpc/agents.get', () => ok(state.agents[0], String(state.eventId)));
  server.on('/rpc/agents.create', (c) => {
    if (state.fail) return { status: 500, body: { error: { code: 'internal', message: 'failed', path: null } } };
    state.agents = [...state.agents, agent('a' + (state.agents.length + 1), (c.body as { name: string }).name)];
    state.eventId++;
    return ok(state.agents[state.agents.length - 1], String(state.eventId));
  });
  const clock = new FakeClock();
  const client = pageClient(server, clock);
  return { server, state, clock, client };
}

async function settle(clock?: FakeClock, ms = 0): Promise<void> {
  await act(async () => {
    if (clock) await clock.advance(ms);
    await flush();
  });
}

test('useReactive: loading, data, real-time update, and unmount unsubscribes', async () => {
  const { server, state, clock, client } = setup();
  const renders: string[] = [];
  function Agents(props: { org: string }) {
    // A new input object each render must not refetch.
    const { data, isLoading, isStale, error } = useReactive('agents.findMany', { organizationId: props.org });
    const text = isLoading ? 'loading' : error ? 'error' : `${data!.map((a) => a.name).join(',')}${isStale ? '*' : ''}`;
    renders.push(text);
    return React.createElement('p', null, text);
  }
  let r!: TestRenderer.ReactTestRenderer;
  await act(async () => {
    r = TestRenderer.create(React.createElement(ReactiveProvider, { client }, React.createElement(Agents, { org: 'o1' })));
  });
  await settle();
  assert.equal(renders[0], 'loading');
  assert.equal(r.root.findByType('p').children[0], 'a1');
  await settle(clock, 50);
  const es = FakeEventSource.last;
  es.ready('100');
  state.agents = [agent('a1'), agent('a2')];
  state.eventId = 101;
  await act(async () => {
    es.emit('invalidate', { eventId: '101', tables: ['agent'], keys: {}, requiresAck: false, queries: ['agents.findMany:{"organizationId":"o1"}'] });
    await flush();
  });
  assert.equal(r.root.findByType('p').children[0], 'a1,a2');
  assert.equal(server.count('/rpc/agents.findMany'), 2);
  await act(async () => r.unmount());
  await settle(clock, 50);
  assert.ok(es.closed, 'no mounted hooks: stream closed');
});

test('useReactiveMutation: optimistic at once, rolled back on error', async () => {
  const { state, client } = setup();
  setDefaultClient(client);
  let mutation!: ReturnType<typeof useReactiveMutation<'agents.create'>>;
  function App() {
    const { data } = useReactive('agents.findMany', { organizationId: 'o1' });
    mutation = useReactiveMutation('agents.create', {
      optimistic: (input, cache) =>
        cache.update('agents.findMany', { organizationId: input.organizationId }, (old) => [
          ...(old ?? []),
          agent('tmp', input.name),
        ]),
    });
    return React.createElement('p', null, (data ?? []).map((a) => a.name).join(',') + (mutation.isPending ? ' …' : ''));
  }
  let r!: TestRenderer.ReactTestRenderer;
  await act(async () => {
    r = TestRenderer.create(React.createElement(App));
  });
  await settle();
  assert.equal(r.root.findByType('p').children[0], 'a1');
  state.fail = true;
  let p!: Promise<unknown>;
  await act(async () => {
    p = mutation.mutateAsync({ organizationId: 'o1', name: 'new' }).catch((e: unknown) => e);
  });
  // (The fake server answers at once; check the optimistic render happened via the rollback result.)
  const err = (await p) as { code: string };
  await settle();
  assert.equal(err.code, 'internal');
  assert.equal(r.root.findByType('p').children[0], 'a1', 'rolled back');
  assert.equal(mutation.error?.code, 'internal');
  assert.equal(mutation.isPending, false);
  setDefaultClient(null);
  await act(async () => r.unmount());
});

test('useReactiveMutation: optimistic update is visible while the server works', async () => {
  const { server, client } = setup();
  let mutation!: ReturnType<typeof useReactiveMutation<'agents.create'>>;
  function App() {
    const { data } = useReactive('agents.findMany', { organizationId: 'o1' });
    mutation = useReactiveMutation('agents.create', {
      optimistic: (input, cache) =>
        cache.update('agents.findMany', { organizationId: 'o1' }, (old) => [...(old ?? []), agent('tmp', input.name)]),
    });
    return React.createElement('p', null, (data ?? []).map((a) => a.name).join(',') + (mutation.isPending ? ' …' : ''));
  }
  let r!: TestRenderer.ReactTestRenderer;
  await act(async () => {
    r = TestRenderer.create(React.createElement(ReactiveProvider, { client }, React.createElement(App)));
  });
  await settle();
  server.hold();
  await act(async () => {
    mutation.mutate({ organizationId: 'o1', name: 'new' });
  });
  assert.equal(r.root.findByType('p').children[0], 'a1,new …');
  server.release();
  await settle();
  server.release();
  await settle();
  assert.equal(r.root.findByType('p').children[0], 'a1,new');
  await act(async () => r.unmount());
});

test('useReactivePriorities prefetches hinted queries after 1 s', async () => {
  const { server, clock, client } = setup();
  function App() {
    useReactivePriorities([['agents.get', { id: 'a1' }]]);
    const { data } = useReactive('agents.findMany', { organizationId: 'o1' });
    return React.createElement('p', null, String(data?.length));
  }
  let r!: TestRenderer.ReactTestRenderer;
  await act(async () => {
    r = TestRenderer.create(React.createElement(ReactiveProvider, { client }, React.createElement(App)));
  });
  await settle(clock, 999);
  assert.equal(server.count('/rpc/agents.findMany'), 1);
  assert.equal(server.count('/rpc/agents.get'), 0);
  await settle(clock, 1);
  assert.equal(server.count('/rpc/agents.get'), 1);
  assert.deepEqual(client.getSnapshot('agents.get', { id: 'a1' }).data, agent('a1'));
  await act(async () => r.unmount());
});

test('StrictMode double mount fetches once and keeps one subscription', async () => {
  const { server, clock, client } = setup();
  function Agents() {
    const { data } = useReactive('agents.findMany', { organizationId: 'o1' });
    return React.createElement('p', null, String(data?.length ?? '-'));
  }
  let r!: TestRenderer.ReactTestRenderer;
  await act(async () => {
    r = TestRenderer.create(
      React.createElement(React.StrictMode, null, React.createElement(ReactiveProvider, { client }, React.createElement(Agents))),
    );
  });
  await settle(clock, 100);
  assert.equal(r.root.findByType('p').children[0], '1');
  assert.equal(server.count('/rpc/agents.findMany'), 1);
  assert.equal(FakeEventSource.open().length, 1);
  assert.deepEqual(FakeEventSource.last.params().getAll('subscribe'), ['agents.findMany:{"organizationId":"o1"}']);
  await act(async () => r.unmount());
});
