// The TanStack Query bridge (`src/tanstack.ts`) with a real `QueryClient` (@tanstack/query-core).
import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { QueryClient, QueryObserver } from '@tanstack/query-core';
import { createTanstackBridge } from '../src/tanstack';
import type { Agent } from './fixtures/procedures';
import { FakeClock, FakeEventSource, FakeServer, flush, installWindow, ok, pageClient } from './helpers';

installWindow();
beforeEach(() => FakeEventSource.reset());
const agent = (id: string, name = id): Agent => ({ id, organizationId: 'o1', name, active: true });

test('bridge: typed options, the event stream updates exactly the matching TanStack queries, one fetch each', async () => {
  const server = new FakeServer();
  const state = { agents: [agent('a1')], eventId: 100 };
  server.on('/rpc/agents.findMany', () => ok(state.agents, String(state.eventId)));
  server.on('/rpc/agents.get', (c) => ok(agent((c.body as { id: string }).id), String(state.eventId)));
  const clock = new FakeClock();
  const client = pageClient(server, clock);
  const bridge = createTanstackBridge(client);
  const queryClient = new QueryClient({ defaultOptions: { queries: { staleTime: Infinity, retry: false } } });
  queryClient.mount();
  const disconnect = bridge.connect(queryClient);
  let plainFetches = 0;
  const list = new QueryObserver(queryClient, bridge.options('agents.findMany', { organizationId: 'o1' }));
  const other = new QueryObserver(queryClient, bridge.options('agents.get', { id: 'a9' }));
  const plain = new QueryObserver(queryClient, { queryKey: ['plain'], queryFn: async () => ++plainFetches });
  const seen: string[][] = [];
  const offs = [
    list.subscribe((r) => r.data && seen.push(r.data.map((a) => a.name))),
    other.subscribe(() => undefined),
    plain.subscribe(() => undefined),
  ];
  await clock.advance(50);
  assert.deepEqual(list.getCurrentResult().data, [agent('a1')]);
  assert.equal(other.getCurrentResult().data?.id, 'a9');
  assert.equal(server.count('/rpc/agents.findMany'), 1, "TanStack's fetch and the client's mount share one request");
  // The stream subscribes to the observed reactive queries.
  const es = FakeEventSource.last;
  assert.match(decodeURIComponent(es.url), /agents\.findMany/);
  es.ready('100');
  await flush();
  // An invalidation of the list: refetched once by the client, set into the QueryClient.
  state.agents = [agent('a1'), agent('a2')];
  state.eventId = 101;
  es.emit('invalidate', { eventId: '101', tables: ['agent'], keys: {}, requiresAck: false, queries: ['agents.findMany:{"organizationId":"o1"}'] });
  await clock.advance(10);
  assert.deepEqual(seen.at(-1), ['a1', 'a2']);
  assert.equal(server.count('/rpc/agents.findMany'), 2);
  assert.equal(server.count('/rpc/agents.get'), 1, 'a query the event does not name is not refetched');
  assert.equal(plainFetches, 1, 'a plain TanStack query is untouched');
  // No observer: the client unmounts it (off the subscription).
  for (const off of offs) off();
  await clock.advance(300);
  assert.ok(es.closed, 'no observed reactive query: stream closed');
  disconnect();
  queryClient.unmount();
  client.stop();
  // Types: a mutation is not a query option; inputs are checked.
  // @ts-expect-error agents.create is a mutation
  void (() => bridge.options('agents.create', { organizationId: 'o1', name: 'x' }));
});
