// The optional TanStack-style hooks (`src/query.ts`) and the core hook's `enabled`.
import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import * as React from 'react';
import TestRenderer, { act } from 'react-test-renderer';
import { ReactiveProvider, type RpcError } from '../src/react';
import { createQueryHooks, keepPreviousData, type QueryResult } from '../src/query';
import { useReactive, type Agent, type Procedures } from './fixtures/procedures';
import { FakeClock, FakeEventSource, FakeServer, flush, installWindow, ok, pageClient } from './helpers';

installWindow();
const consoleError = console.error;
console.error = (...args: unknown[]) => {
  if (typeof args[0] === 'string' && args[0].startsWith('react-test-renderer is deprecated')) return;
  consoleError(...args);
};
(globalThis as Record<string, unknown>).IS_REACT_ACT_ENVIRONMENT = true;
beforeEach(() => FakeEventSource.reset());

const { useQuery, useMutation } = createQueryHooks<Procedures>();
const agent = (id: string, name = id): Agent => ({ id, organizationId: 'o1', name, active: true });

function setup() {
  const server = new FakeServer();
  const state = { agents: [agent('a1'), agent('a2')], eventId: 100, fail: false };
  server.on('/rpc/agents.findMany', () => ok(state.agents, String(state.eventId)));
  server.on('/rpc/agents.get', (c) => ok(state.agents.find((a) => a.id === (c.body as { id: string }).id) ?? null, String(state.eventId)));
  server.on('/rpc/agents.create', (c) => {
    if (state.fail) return { status: 500, body: { error: { code: 'internal', message: 'failed', path: null } } };
    const a = agent('a' + (state.agents.length + 1), (c.body as { name: string }).name);
    state.agents = [...state.agents, a];
    return ok(a, String(++state.eventId));
  });
  const clock = new FakeClock();
  const client = pageClient(server, clock);
  return { server, state, clock, client };
}

async function settle(): Promise<void> {
  await act(async () => {
    await flush();
  });
}

function render(client: ReturnType<typeof setup>['client'], el: React.ReactElement) {
  let r!: TestRenderer.ReactTestRenderer;
  act(() => {
    r = TestRenderer.create(React.createElement(ReactiveProvider, { client }, el));
  });
  return r;
}

test('enabled: false: a disabled query is not loading and fetches nothing (core hook and useQuery)', async () => {
  const { server, client } = setup();
  let core!: ReturnType<typeof useReactive<'agents.findMany'>>;
  let q!: QueryResult<Agent[]>;
  function App(props: { on: boolean }) {
    core = useReactive('agents.findMany', { organizationId: 'o1' }, { enabled: props.on });
    q = useQuery('agents.findMany', { organizationId: 'o1' }, { enabled: props.on });
    return null;
  }
  const r = render(client, React.createElement(App, { on: false }));
  await settle();
  assert.equal(core.isLoading, false, 'disabled: not loading');
  assert.equal(q.isLoading, false);
  assert.equal(q.status, 'pending');
  assert.equal(q.isFetching, false);
  assert.equal(server.count('/rpc/'), 0);
  await act(async () => r.update(React.createElement(ReactiveProvider, { client }, React.createElement(App, { on: true }))));
  await settle();
  assert.equal(server.count('/rpc/agents.findMany'), 1);
  assert.equal(q.status, 'success');
  assert.equal(core.data?.length, 2);
  await act(async () => r.unmount());
});

test('useQuery: isFetching, status, select, refetch()', async () => {
  const { server, state, client } = setup();
  const seen: string[] = [];
  let q!: QueryResult<string[]>;
  const names = (as: Agent[]) => as.map((a) => a.name);
  function App() {
    q = useQuery('agents.findMany', { organizationId: 'o1' }, { select: names });
    seen.push(`${q.status}:${q.isFetching}:${q.isLoading}:${q.data?.join(',') ?? '-'}`);
    return null;
  }
  server.hold();
  const r = render(client, React.createElement(App));
  await settle();
  assert.equal(seen.at(-1), 'pending:true:true:-');
  server.release();
  await settle();
  assert.equal(seen.at(-1), 'success:false:false:a1,a2');
  assert.equal(q.isSuccess, true);
  state.agents = [agent('a1')];
  server.hold();
  let p!: Promise<string[]>;
  await act(async () => {
    p = q.refetch();
    await flush();
  });
  assert.equal(q.isFetching, true, 'refetch: fetching, data still shown');
  assert.deepEqual(q.data, ['a1', 'a2']);
  server.release();
  await settle();
  assert.deepEqual(await p, ['a1'], 'refetch resolves with the selected data');
  assert.deepEqual(q.data, ['a1']);
  assert.equal(q.isFetching, false);
  assert.equal(server.count('/rpc/agents.findMany'), 2);
  await act(async () => r.unmount());
});

test('useQuery: error status; keepPreviousData while the input changes; placeholderData; initialData', async () => {
  const { server, client } = setup();
  let q!: QueryResult<Agent | null>;
  let init!: QueryResult<Agent | null>;
  let ph!: QueryResult<Agent | null>;
  function App(props: { id: string }) {
    q = useQuery('agents.get', { id: props.id }, { placeholderData: keepPreviousData });
    init = useQuery('agents.get', { id: 'init-' + props.id }, { initialData: () => agent('i') });
    ph = useQuery('agents.get', { id: 'ph-' + props.id }, { placeholderData: agent('p') });
    return null;
  }
  server.hold();
  const r = render(client, React.createElement(App, { id: 'a1' }));
  await settle();
  assert.equal(init.data?.id, 'i', 'initialData shown at once');
  assert.equal(init.isStale, true);
  assert.equal(init.status, 'success');
  assert.equal(ph.data?.id, 'p');
  assert.equal(ph.isPlaceholderData, true);
  assert.equal(ph.isLoading, false);
  assert.equal(q.isLoading, true, 'no previous data yet');
  server.release();
  await settle();
  assert.equal(q.data?.id, 'a1');
  assert.equal(ph.isPlaceholderData, false);
  assert.equal(ph.data, null, 'the server answer replaces the placeholder');
  server.hold();
  await act(async () => r.update(React.createElement(ReactiveProvider, { client }, React.createElement(App, { id: 'a2' }))));
  assert.equal(q.data?.id, 'a1', 'previous data kept while the new input loads');
  assert.equal(q.isPlaceholderData, true);
  assert.equal(q.isFetching, true);
  server.release();
  await settle();
  assert.equal(q.data?.id, 'a2');
  assert.equal(q.isPlaceholderData, false);
  // A failing fetch: status error.
  server.on('/rpc/agents.get', () => ({ status: 403, body: { error: { code: 'forbidden', message: 'no', path: null } } }));
  await act(async () => r.update(React.createElement(ReactiveProvider, { client }, React.createElement(App, { id: 'a3' }))));
  await settle();
  assert.equal(q.status, 'error');
  assert.equal(q.isError, true);
  assert.equal(q.error?.code, 'forbidden');
  await act(async () => r.unmount());
});

test('useQuery: refetchOnWindowFocus refetches once per focus (off by default)', async () => {
  const { server, client } = setup();
  const target = new EventTarget();
  const g = globalThis as unknown as Record<string, unknown>;
  g.addEventListener = target.addEventListener.bind(target);
  g.removeEventListener = target.removeEventListener.bind(target);
  function App() {
    useQuery('agents.findMany', { organizationId: 'o1' }, { refetchOnWindowFocus: true });
    useQuery('agents.get', { id: 'a1' });
    return null;
  }
  const r = render(client, React.createElement(App));
  await settle();
  assert.equal(server.count('/rpc/agents.findMany'), 1);
  await act(async () => {
    target.dispatchEvent(new Event('visibilitychange'));
    target.dispatchEvent(new Event('focus'));
    await flush();
  });
  assert.equal(server.count('/rpc/agents.findMany'), 2, 'one refetch for focus + visibilitychange');
  assert.equal(server.count('/rpc/agents.get'), 1, 'off by default');
  await act(async () => r.unmount());
  target.dispatchEvent(new Event('focus'));
  await flush();
  assert.equal(server.count('/rpc/agents.findMany'), 2, 'listener removed on unmount');
  delete g.addEventListener;
  delete g.removeEventListener;
});

test('useMutation: onMutate context, onSuccess/onError/onSettled (hook and call), variables, status, reset', async () => {
  const { state, client } = setup();
  const log: string[] = [];
  let m!: ReturnType<typeof useMutation<'agents.create', string>>;
  function App() {
    m = useMutation('agents.create', {
      onMutate: (v) => (log.push('mutate:' + v.name), 'ctx-' + v.name),
      onSuccess: (d, v, c) => void log.push(`success:${d.name}:${v.name}:${c}`),
      onError: (e, v, c) => void log.push(`error:${e.code}:${v.name}:${c}`),
      onSettled: (d, e, v, c) => void log.push(`settled:${d?.name ?? '-'}:${e?.code ?? '-'}:${v.name}:${c}`),
    });
    return null;
  }
  const r = render(client, React.createElement(App));
  assert.equal(m.status, 'idle');
  assert.equal(m.isIdle, true);
  await act(async () => {
    m.mutate({ organizationId: 'o1', name: 'x' }, { onSuccess: (d) => void log.push('call-success:' + d.id) });
    await flush();
  });
  assert.deepEqual(log, ['mutate:x', 'success:x:x:ctx-x', 'call-success:a3', 'settled:x:-:x:ctx-x']);
  assert.equal(m.status, 'success');
  assert.equal(m.data?.name, 'x');
  assert.deepEqual(m.variables, { organizationId: 'o1', name: 'x' });
  log.length = 0;
  state.fail = true;
  let err: unknown;
  await act(async () => {
    err = await m.mutateAsync({ organizationId: 'o1', name: 'y' }).catch((e: unknown) => e);
  });
  assert.equal((err as RpcError).code, 'internal');
  assert.deepEqual(log, ['mutate:y', 'error:internal:y:ctx-y', 'settled:-:internal:y:ctx-y']);
  assert.equal(m.status, 'error');
  assert.equal(m.isError, true);
  assert.equal(m.data, undefined);
  assert.equal(m.variables?.name, 'y');
  await act(async () => m.reset());
  assert.equal(m.status, 'idle');
  assert.equal(m.error, undefined);
  assert.equal(m.variables, undefined);
  await act(async () => r.unmount());
});

test('useQuery: initialData seeds the cache: other hooks and getData see it, stale, and the first fetch replaces it', async () => {
  const { server, client } = setup();
  const { QueryClient } = await import('../src/query');
  let seeded!: QueryResult<Agent | null>;
  let plain!: ReturnType<typeof useReactive<'agents.get'>>;
  function App() {
    seeded = useQuery('agents.get', { id: 'a2' }, { initialData: () => agent('a2', 'initial') });
    plain = useReactive('agents.get', { id: 'a2' });
    return null;
  }
  server.hold();
  const r = render(client, React.createElement(App));
  await settle();
  assert.equal(plain.data?.name, 'initial', 'a hook without initialData shows the seeded data');
  assert.equal(plain.isStale, true);
  assert.equal(plain.isLoading, false);
  assert.equal((QueryClient.prototype.getData.call(client, 'agents.get', { id: 'a2' }) as Agent).name, 'initial');
  assert.equal(server.count('/rpc/agents.get'), 1, 'seeded data is stale: fetched on mount');
  server.release();
  await settle();
  assert.equal(plain.data?.name, 'a2');
  assert.equal(seeded.data?.name, 'a2');
  assert.equal(seeded.isStale, false);
  assert.equal(client.cache.read('agents.get:{"id":"a2"}')?.data && true, true);
  await act(async () => r.unmount());
  // Data from the registry wins over initialData.
  function Again() {
    seeded = useQuery('agents.get', { id: 'a2' }, { initialData: agent('a2', 'initial') });
    return null;
  }
  const r2 = render(client, React.createElement(Again));
  await settle();
  assert.equal(seeded.data?.name, 'a2');
  await act(async () => r2.unmount());
});

test('useQuery: per-hook retry and retryDelay over the client default', async () => {
  const { server, clock, client } = setup();
  server.on('/rpc/agents.get', () => ({ status: 503, body: { error: { code: 'retry', message: 'busy', path: null } } }));
  function App() {
    useQuery('agents.get', { id: 'none' }, { retry: false });
    useQuery('agents.get', { id: 'five' }, { retry: 5, retryDelay: 10 });
    useQuery('agents.get', { id: 'default' });
    return null;
  }
  const r = render(client, React.createElement(App));
  await settle();
  await act(async () => {
    await clock.advance(10 * 60_000);
  });
  const calls = (id: string) => server.calls.filter((c) => (c.body as { id?: string })?.id === id).length;
  assert.equal(calls('none'), 1, 'retry: false: no retry');
  assert.equal(calls('five'), 6, 'retry: 5: five retries');
  assert.equal(calls('default'), 4, 'the client default: three retries');
  await act(async () => r.unmount());
});
