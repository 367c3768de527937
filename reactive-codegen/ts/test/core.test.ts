import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { ReactiveClient, type ClientOptions } from '../src/core';
import type { RpcError } from '../src/client';
import type { InputOf, QueryName } from '../src/types';
import { createClient, procedures, version, type Procedures, type Agent } from './fixtures/procedures';
import { queryKey } from '../src/util';
import { QueryClient } from '../src/query';
import { FakeChannels, FakeClock, FakeEventSource, FakeLocks, FakeServer, MemoryStorage, flush, installWindow, ok } from './helpers';

installWindow();
beforeEach(() => FakeEventSource.reset());

const agent = (id: string, name = id): Agent => ({ id, organizationId: 'o1', name, active: true });

/** A fake backend with a tenant-wide event counter and agents per org. */
function backend() {
  const server = new FakeServer();
  const state = { eventId: 100, agents: [agent('a1')] as Agent[], fail: false };
  server.on('/rpc/agents.findMany', () => ok([...state.agents], String(state.eventId)));
  server.on('/rpc/agents.get', (c) =>
    ok(state.agents.find((a) => a.id === (c.body as { id: string }).id) ?? null, String(state.eventId)),
  );
  server.on('/rpc/agents.create', (c) => {
    if (state.fail) return { status: 500, body: { error: { code: 'internal', message: 'boom', path: null } } };
    const b = c.body as { name: string };
    state.agents.push(agent('a' + (state.agents.length + 1), b.name));
    state.eventId++;
    return ok(state.agents[state.agents.length - 1], String(state.eventId));
  });
  server.on('/events/ack', () => ({ status: 204, body: undefined }));
  return { server, state };
}

function client(server: FakeServer, extra: Partial<ClientOptions<Procedures>> = {}, Client = ReactiveClient) {
  const clock = (extra.clock as FakeClock | undefined) ?? new FakeClock();
  const storage = (extra.storage as MemoryStorage | undefined) ?? new MemoryStorage();
  const c = new Client<Procedures>({
    fetch: server.fetch,
    clock,
    storage,
    EventSource: FakeEventSource,
    locks: null,
    channel: null,
    procedures,
    tenant: 'o1',
    ...extra,
  });
  return { c, clock, storage };
}

const ORG = { organizationId: 'o1' };
const FIND = queryKey('agents.findMany', ORG);

function mount<K extends QueryName<Procedures>>(c: ReactiveClient<Procedures>, name: K, input: InputOf<Procedures, K>) {
  let renders = 0;
  const un = c.subscribe(name, input, () => renders++);
  return { un, renders: () => renders, snap: () => c.getSnapshot(name, input) };
}

test('first load: isLoading, then data with its watermark; no flash of stale', async () => {
  const { server } = backend();
  const { c } = client(server);
  assert.deepEqual(c.getSnapshot('agents.findMany', ORG), { data: undefined, error: undefined, isLoading: true, isStale: false });
  const m = mount(c, 'agents.findMany', ORG);
  await flush();
  assert.deepEqual(m.snap(), { data: [agent('a1')], error: undefined, isLoading: false, isStale: false });
  assert.equal(c.cache.read(FIND)?.eventId, '100');
});

test('cache first: registry data renders at once as stale, then revalidates', async () => {
  const { server, state } = backend();
  const storage = new MemoryStorage();
  const first = client(server, { storage });
  mount(first.c, 'agents.findMany', ORG);
  await flush();
  first.c.stop();
  state.agents.push(agent('a2'));
  state.eventId = 101;
  server.hold();
  // "Reload": a new client on the same storage.
  const { c } = client(server, { storage });
  const snap0 = c.getSnapshot('agents.findMany', ORG);
  assert.deepEqual(snap0, { data: [agent('a1')], error: undefined, isLoading: false, isStale: true });
  mount(c, 'agents.findMany', ORG);
  server.release();
  await flush();
  assert.deepEqual(c.getSnapshot('agents.findMany', ORG).data, [agent('a1'), agent('a2')]);
  assert.equal(c.getSnapshot('agents.findMany', ORG).isStale, false);
});

test('revalidation priority: mounted at once, page hints after 1 s, the rest of the registry after 2 s', async () => {
  const { server } = backend();
  const storage = new MemoryStorage();
  const seed = client(server, { storage });
  for (const id of ['h1', 'bg1', 'bg2', 'm1']) await seed.c.fetch('agents.get', { id });
  seed.c.stop();
  server.calls = [];
  const { c, clock } = client(server, { storage });
  const t0 = clock.t;
  const order: [string, number][] = [];
  server.on('/rpc/agents.get', (call) => {
    order.push([(call.body as { id: string }).id, clock.t - t0]);
    return ok(null, '100');
  });
  c.setPriorities({}, [['agents.get', { id: 'h1' }]]);
  mount(c, 'agents.get', { id: 'm1' });
  await flush();
  assert.deepEqual(order, [['m1', 0]]);
  await clock.advance(999);
  assert.equal(order.length, 1);
  await clock.advance(1);
  assert.deepEqual(order[1], ['h1', 1000]);
  await clock.advance(1000);
  assert.deepEqual(order.slice(2).map((o) => o[0]).sort(), ['bg1', 'bg2']);
  assert.ok(order.slice(2).every((o) => o[1] === 2000));
  await clock.advance(10000);
  assert.equal(order.length, 4, 'each revalidated exactly once');
});

test('identical queries from several hooks share one request (coalescing)', async () => {
  const { server } = backend();
  const { c } = client(server);
  server.hold();
  mount(c, 'agents.findMany', ORG);
  mount(c, 'agents.findMany', { organizationId: 'o1' });
  const p = c.fetch('agents.findMany', ORG);
  await flush();
  assert.equal(server.count('/rpc/agents.findMany'), 1);
  server.release();
  assert.deepEqual(await p, [agent('a1')]);
});

test('invalidate refetches affected mounted queries now and marks held ones stale', async () => {
  const { server, state } = backend();
  const { c, clock } = client(server);
  const list = mount(c, 'agents.findMany', ORG);
  await c.fetch('agents.get', { id: 'a9' }); // held, not mounted
  await clock.advance(50);
  const es = FakeEventSource.last;
  assert.deepEqual(es.params().getAll('subscribe'), [FIND]);
  es.ready('100');
  state.agents.push(agent('a2'));
  state.eventId = 101;
  const before = server.count('/rpc/');
  es.emit('invalidate', { eventId: '101', tables: ['agent'], keys: { agent: null }, requiresAck: true, queries: [FIND] });
  await flush();
  assert.equal(server.count('/rpc/agents.findMany'), 2, 'mounted query refetched');
  assert.equal(server.count('/rpc/agents.get'), 1, 'unmounted query not refetched');
  assert.equal(server.count('/rpc/') - before, 1);
  assert.equal(server.count('/events/ack'), 1, 'acked');
  assert.deepEqual(list.snap().data, [agent('a1'), agent('a2')]);
  assert.equal(c.getSnapshot('agents.get', { id: 'a9' }).isStale, true, 'held query marked stale');
  assert.equal(c.cache.read(queryKey('agents.get', { id: 'a9' }))?.stale, true);
  assert.equal(c.cache.getSession().lastEventId, '101');
});

test('selective: a mounted query the event does not name is not refetched; dependent held entries go stale', async () => {
  const { server } = backend();
  const { c, clock } = client(server);
  const other = mount(c, 'agents.findMany', { organizationId: 'o2' });
  await c.fetch('agents.getWithStats', { id: 'a1' }); // held; depends on `message`
  await c.fetch('agents.get', { id: 'a1' }); // held; does not depend on `message`
  await clock.advance(50);
  const es = FakeEventSource.last;
  es.ready('100');
  const n = server.calls.length;
  // Subscribed entries the event affects: none of the o2 list (another org's agent changed).
  es.emit('invalidate', { eventId: '101', tables: ['agent', 'message'], keys: {}, requiresAck: false, queries: [FIND] });
  await flush();
  assert.equal(server.calls.length, n, 'nothing refetched');
  assert.equal(other.snap().isStale, false);
  assert.equal(c.getSnapshot('agents.getWithStats', { id: 'a1' }).isStale, true, 'depends on a changed table');
  assert.equal(c.getSnapshot('agents.get', { id: 'a1' }).isStale, true, 'depends on `agent`');
  es.emit('invalidate', { eventId: '102', tables: ['memory'], keys: {}, requiresAck: false, queries: [FIND] });
  await flush();
  assert.ok(!c.cache.read(queryKey('agents.findMany', { organizationId: 'o2' }))?.stale, 'unrelated table');
  assert.equal(server.calls.length, n);
  // `["*"]`: any table may have changed.
  await c.fetch('agents.get', { id: 'a2' });
  es.emit('invalidate', { eventId: '103', tables: ['*'], keys: {}, requiresAck: false, queries: [FIND] });
  await flush();
  assert.equal(c.getSnapshot('agents.get', { id: 'a2' }).isStale, true, 'unknown write marks everything held stale');
  assert.equal(other.snap().isStale, false, 'mounted: only what the server names is refetched');
});

test('pushed results: applied without a request, stored, and only a newer one replaces the data', async () => {
  const { server, state } = backend();
  const { c, clock } = client(server);
  const m = mount(c, 'agents.findMany', ORG);
  await clock.advance(50);
  const es = FakeEventSource.last;
  es.ready('100', 'c');
  await flush();
  const n = server.count('/rpc/agents.findMany');
  // The write's event carries the new value (watermark 101): nothing is fetched.
  const pushed = [agent('a1'), agent('a2')];
  es.emit('invalidate', {
    eventId: '101', tables: ['agent'], requiresAck: false, queries: [FIND],
    results: { [FIND]: { eventId: '101', data: pushed } },
  });
  await flush();
  assert.equal(server.count('/rpc/agents.findMany'), n, 'no refetch');
  assert.deepEqual(m.snap(), { data: pushed, error: undefined, isLoading: false, isStale: false });
  assert.equal(c.cache.read(FIND)?.eventId, '101', 'kept in the registry with its watermark');
  assert.deepEqual(c.cache.read(FIND)?.data, pushed);
  // A pushed value older than what is held (another round raced it) is ignored; the event it
  // rides on (103) is newer than the data, so the query is refetched as usual.
  state.agents = [agent('a9')];
  state.eventId = 103;
  es.emit('invalidate', {
    eventId: '103', tables: ['agent'], requiresAck: false, queries: [FIND],
    results: { [FIND]: { eventId: '100', data: [] } },
  });
  await flush();
  assert.equal(server.count('/rpc/agents.findMany'), n + 1, 'not covered: refetched');
  assert.deepEqual(m.snap().data, [agent('a9')]);
  // An event whose value was already pushed with an earlier frame (same round) needs nothing.
  es.emit('invalidate', {
    eventId: '104', tables: ['agent'], requiresAck: false, queries: [FIND],
    results: { [FIND]: { eventId: '105', data: [agent('a5')] } },
  });
  es.emit('invalidate', { eventId: '105', tables: ['agent'], requiresAck: false, queries: [FIND] });
  await flush();
  assert.equal(server.count('/rpc/agents.findMany'), n + 1, 'covered by the value pushed with 104');
  assert.deepEqual(m.snap().data, [agent('a5')]);
});

test('events at or below a result watermark are ignored', async () => {
  const { server, state } = backend();
  const { c, clock } = client(server);
  state.eventId = 150;
  mount(c, 'agents.findMany', ORG);
  await clock.advance(50);
  const es = FakeEventSource.last;
  es.ready('140', 'c');
  // Replayed events the data (watermark 150) already reflects.
  es.emit('invalidate', { eventId: '145', tables: ['agent'], keys: {}, requiresAck: false, queries: [FIND] });
  es.emit('invalidate', { eventId: '150', tables: ['agent'], keys: {}, requiresAck: false, queries: [FIND] });
  await flush();
  assert.equal(server.count('/rpc/agents.findMany'), 1);
  es.emit('invalidate', { eventId: '151', tables: ['agent'], keys: {}, requiresAck: false, queries: [FIND] });
  await flush();
  assert.equal(server.count('/rpc/agents.findMany'), 2);
});

test('an invalidation during an in-flight request refetches after it if the result is older', async () => {
  const { server, state } = backend();
  const { c, clock } = client(server);
  mount(c, 'agents.findMany', ORG);
  await flush();
  await clock.advance(50);
  const es = FakeEventSource.last;
  es.ready('100');
  server.hold();
  es.emit('invalidate', { eventId: '101', tables: ['agent'], keys: {}, requiresAck: false, queries: [FIND] });
  await flush();
  // A second event arrives while the refetch for 101 is in flight (its result will say 101).
  state.eventId = 101;
  es.emit('invalidate', { eventId: '102', tables: ['agent'], keys: {}, requiresAck: false, queries: [FIND] });
  await flush();
  assert.equal(server.count('/rpc/agents.findMany'), 2, 'shares the in-flight request');
  await server.releaseNext();
  assert.equal(server.count('/rpc/agents.findMany'), 3, 'refetched for 102 after the older result');
  state.eventId = 102;
  server.release();
  await flush();
  assert.equal(server.count('/rpc/agents.findMany'), 3);
  assert.equal(c.cache.read(FIND)?.eventId, '102');
});

test('gap recovery: the first connect resumes from the registry, and reset revalidates older data', async () => {
  const { server, state } = backend();
  const storage = new MemoryStorage();
  const first = client(server, { storage });
  mount(first.c, 'agents.findMany', ORG);
  await first.clock.advance(50);
  FakeEventSource.last.ready('100');
  FakeEventSource.last.emit('invalidate', { eventId: '100', tables: [], keys: {}, requiresAck: false, queries: [FIND] });
  await first.c.fetch('agents.get', { id: 'a1' });
  first.c.stop();
  // Page reload.
  state.eventId = 300;
  const { c, clock } = client(server, { storage });
  mount(c, 'agents.findMany', ORG);
  await clock.advance(50);
  const es = FakeEventSource.last;
  assert.equal(es.params().get('lastEventId'), '100', 'lastEventId from the registry');
  es.ready('300');
  const n = server.count('/rpc/agents.get');
  es.emit('reset', { eventId: '300' });
  await clock.advance(2000);
  assert.equal(server.count('/rpc/agents.get'), n + 1, 'held data older than the reset revalidated');
  assert.equal(server.count('/rpc/agents.findMany'), 2, 'the mounted query already fetched at 300 is not refetched');
});

test('gap between a result watermark and the stream start is fetched from /poll once', async () => {
  const { server, state } = backend();
  const { c, clock } = client(server);
  server.on('/poll', () => ({
    body: { eventId: '120', reset: false, events: [{ eventId: '110', tables: ['agent'], keys: {}, requiresAck: false, queries: [FIND] }] },
  }));
  server.hold();
  mount(c, 'agents.findMany', ORG); // the read reflects events up to 100
  await clock.advance(50);
  FakeEventSource.last.ready('120'); // the stream covers from 120: 101..120 would be missed
  await server.releaseNext();
  assert.equal(server.count('/poll?subscribe=' + encodeURIComponent(FIND) + '&since=100'), 1);
  state.eventId = 120;
  await server.releaseNext(); // the poll answer: event 110 affects the query
  assert.equal(server.count('/rpc/agents.findMany'), 2, 'the missed event 110 triggered a refetch');
  server.release();
  await flush();
  assert.equal(server.count('/poll'), 1, 'checked once');
  assert.equal(c.cache.read(FIND)?.eventId, '120');
  assert.equal(c.getSnapshot('agents.findMany', ORG).isStale, false);
});

test('gap: a paged /poll answer (more: true) is followed to its end, so an event on a later page is not missed', async () => {
  const { server, state } = backend();
  const { c, clock } = client(server);
  const seen: string[] = [];
  const ev = (id: string, queries: string[]) => ({ eventId: id, tables: ['agent'], keys: {}, requiresAck: false, queries });
  server.on('/poll', (call) => {
    seen.push(new URLSearchParams(call.path.split('?')[1]).get('since')!);
    return call.path.includes('since=100')
      ? { body: { eventId: '110', reset: false, more: true, events: [ev('110', ['other'])] } }
      : { body: { eventId: '130', reset: false, more: false, events: [ev('125', [FIND])] } };
  });
  mount(c, 'agents.findMany', ORG);
  await flush(); // the result reflects up to 100
  state.eventId = 130;
  await clock.advance(50);
  FakeEventSource.last.ready('130');
  await flush();
  assert.deepEqual(seen, ['100', '110'], 'the second page is asked from where the first ended');
  assert.equal(server.count('/rpc/agents.findMany'), 2, 'the event on the second page refetched the query');
});

test('gap: a result that arrived before the stream was ready is checked when it becomes ready', async () => {
  const { server, state } = backend();
  const { c, clock } = client(server);
  const seen: string[] = [];
  server.on('/poll', (call) => {
    seen.push(call.path);
    return { body: { eventId: '130', reset: false, events: [{ eventId: '125', tables: ['agent'], keys: {}, requiresAck: false, queries: [FIND] }] } };
  });
  mount(c, 'agents.findMany', ORG);
  mount(c, 'agents.get', { id: 'a1' });
  await flush(); // both results reflect up to 100
  state.eventId = 130;
  await clock.advance(50);
  FakeEventSource.last.ready('130'); // first visit: the stream covers from 130
  await flush();
  assert.equal(seen.length, 1, 'one /poll for all gapped queries');
  const q = new URLSearchParams(seen[0]!.split('?')[1]);
  assert.equal(q.get('since'), '100');
  assert.deepEqual(q.getAll('subscribe').sort(), [FIND, queryKey('agents.get', { id: 'a1' })].sort());
  assert.equal(server.count('/rpc/agents.findMany'), 2, 'the missed event refetched the affected query');
  assert.equal(server.count('/rpc/agents.get'), 1, 'the other was not affected');
});

test('optimistic update shows at once and stays until the invalidation for it is applied (no flicker)', async () => {
  const { server, state } = backend();
  const { c, clock } = client(server);
  const list = mount(c, 'agents.findMany', ORG);
  await clock.advance(50);
  const es = FakeEventSource.last;
  es.ready('100');
  const seen: (string[] | undefined)[] = [];
  c.subscribe('agents.findMany', ORG, () => seen.push(list.snap().data?.map((a) => a.name)));
  const p = c.mutate('agents.create', { organizationId: 'o1', name: 'new' }, {
    optimistic: (input, cache) =>
      cache.update('agents.findMany', { organizationId: input.organizationId }, (old) => [
        ...(old ?? []),
        { id: 'tmp', organizationId: input.organizationId, name: input.name, active: true },
      ]),
  });
  assert.deepEqual(list.snap().data?.map((a) => a.name), ['a1', 'new'], 'shown at once');
  const created = await p;
  assert.equal(created.name, 'new');
  await flush();
  assert.deepEqual(list.snap().data?.map((a) => a.id), ['a1', 'tmp'], 'kept after the mutation returned');
  // The server's invalidation for the mutation (id 101) arrives; the refetch replaces the layer.
  es.emit('invalidate', { eventId: '101', tables: ['agent'], keys: {}, requiresAck: false, queries: [FIND] });
  await flush();
  assert.deepEqual(list.snap().data?.map((a) => a.id), ['a1', 'a2']);
  assert.ok(
    seen.every((names) => names?.includes('new')),
    'never flickered back to the list without the new agent: ' + JSON.stringify(seen),
  );
  assert.equal(state.agents.length, 2);
});

test('optimistic update rolls back on error', async () => {
  const { server, state } = backend();
  const { c } = client(server);
  const list = mount(c, 'agents.findMany', ORG);
  await flush();
  state.fail = true;
  const p = c.mutate('agents.create', { organizationId: 'o1', name: 'bad' }, {
    optimistic: (_i, cache) => cache.update('agents.findMany', ORG, (old) => [...(old ?? []), agent('tmp', 'bad')]),
  });
  assert.equal(list.snap().data?.length, 2);
  await assert.rejects(p, (e: RpcError) => e.status === 500 && e.code === 'internal');
  assert.deepEqual(list.snap().data, [agent('a1')]);
});

test('optimistic update without real time is confirmed by a refetch', async () => {
  const { server } = backend();
  const { c } = client(server, { realtime: false });
  const list = mount(c, 'agents.findMany', ORG);
  await flush();
  await c.mutate('agents.create', { organizationId: 'o1', name: 'x' }, {
    optimistic: (_i, cache) => cache.update('agents.findMany', ORG, (old) => [...(old ?? []), agent('tmp', 'x')]),
  });
  await flush();
  assert.deepEqual(list.snap().data?.map((a) => a.id), ['a1', 'a2']);
});

test('tenant keying: switching organization never shows the other tenant data', async () => {
  const { server, state } = backend();
  const { c, storage } = client(server);
  const list = mount(c, 'agents.findMany', ORG);
  await flush();
  assert.equal(list.snap().data?.length, 1);
  state.agents = [];
  server.hold();
  c.setTenant('o2');
  assert.deepEqual(list.snap(), { data: undefined, error: undefined, isLoading: true, isStale: false }, 'nothing of o1');
  assert.ok(list.renders() > 0, 'mounted hooks notified');
  server.release();
  await flush();
  assert.deepEqual(list.snap().data, []);
  // Back to o1: its cached data shows (stale) again.
  server.hold();
  c.setTenant('o1');
  assert.equal(list.snap().data?.length, 1);
  assert.equal(list.snap().isStale, true);
  server.release();
  await flush();
  assert.ok([...storage.map.keys()].some((k) => k.startsWith('rq:o2:')));
});

test('a late response for the previous tenant is dropped', async () => {
  const { server } = backend();
  const { c } = client(server);
  server.hold();
  const list = mount(c, 'agents.findMany', ORG);
  c.setTenant('o2');
  server.release(); // o1 answer arrives after the switch
  await flush();
  server.release();
  await flush();
  assert.equal(server.count('/rpc/agents.findMany'), 2, 'o2 did not share o1 in-flight request');
  assert.equal(c.cache.tenant, 'o2');
  assert.equal(c.cache.read(FIND)?.eventId, '100');
  list.un();
});

test('several tabs fetch a change once per browser (locks + shared registry)', async () => {
  const { server, state } = backend();
  const storage = new MemoryStorage();
  const locks = new FakeLocks();
  const channels = new FakeChannels();
  const clock = new FakeClock();
  const tab1 = client(server, { storage, locks, channel: channels.make, clock });
  const tab2 = client(server, { storage, locks, channel: channels.make, clock });
  const l1 = mount(tab1.c, 'agents.findMany', ORG);
  await flush();
  const l2 = mount(tab2.c, 'agents.findMany', ORG);
  await clock.advance(50);
  const [es1, es2] = FakeEventSource.instances;
  es1!.ready('100');
  es2!.ready('100');
  const n = server.count('/rpc/agents.findMany');
  state.agents.push(agent('a2'));
  state.eventId = 101;
  const ev = { eventId: '101', tables: ['agent'], keys: {}, requiresAck: false, queries: [FIND] };
  es1!.emit('invalidate', ev);
  es2!.emit('invalidate', ev);
  await flush(10);
  assert.equal(server.count('/rpc/agents.findMany') - n, 1, 'one fetch for two tabs');
  assert.equal(l1.snap().data?.length, 2);
  assert.equal(l2.snap().data?.length, 2);
});

test('does nothing in the background without window (server rendering)', async () => {
  const w = (globalThis as Record<string, unknown>).window;
  delete (globalThis as Record<string, unknown>).window;
  try {
    const { server } = backend();
    const { c, clock } = client(server);
    c.subscribe('agents.findMany', ORG, () => undefined);
    await clock.advance(5000);
    assert.equal(server.calls.length, 0);
    assert.equal(FakeEventSource.instances.length, 0);
    assert.equal(c.getSnapshot('agents.findMany', ORG).isLoading, true);
  } finally {
    (globalThis as Record<string, unknown>).window = w;
  }
});

test('idle queries are dropped from memory past 500, mounted ones never', async () => {
  const { server } = backend();
  const { c } = client(server);
  const m = mount(c, 'agents.findMany', ORG);
  await flush();
  for (let i = 0; i < 600; i++) c.getSnapshot('agents.get', { id: 'x' + i });
  const size = (c as unknown as { queries: Map<string, unknown> }).queries.size;
  assert.ok(size <= 500 && size >= 400, String(size));
  assert.equal(m.snap().data?.length, 1, 'mounted query kept');
  assert.ok((c as unknown as { queries: Map<string, unknown> }).queries.has(FIND));
});

test('storage option: sessionStorage, or memory only', async () => {
  const session = new MemoryStorage();
  const local = new MemoryStorage();
  const g = globalThis as Record<string, unknown>;
  g.sessionStorage = session;
  g.localStorage = local;
  try {
    const { server } = backend();
    const s = new ReactiveClient<Procedures>({ fetch: server.fetch, storage: 'session', EventSource: null, realtime: false, tenant: 'o1' });
    await s.fetch('agents.findMany', ORG);
    assert.ok(session.getItem('rq:o1:e:' + FIND));
    assert.equal(local.getItem('rq:o1:e:' + FIND), null);
    const d = new ReactiveClient<Procedures>({ fetch: server.fetch, realtime: false, tenant: 'o1' });
    await d.fetch('agents.get', { id: 'a1' });
    assert.ok(local.getItem('rq:o1:e:' + queryKey('agents.get', { id: 'a1' })), 'localStorage by default');
    const m = new ReactiveClient<Procedures>({ fetch: server.fetch, storage: 'memory', realtime: false, tenant: 'o9' });
    await m.fetch('agents.findMany', ORG);
    assert.ok(![...local.map.keys(), ...session.map.keys()].some((k) => k.startsWith('rq:o9:')));
  } finally {
    delete g.sessionStorage;
    delete g.localStorage;
  }
});

test('token auth polls (EventSource cannot send headers) and sends the bearer token', async () => {
  const { server } = backend();
  server.on('/poll', () => ({ body: { eventId: '100', reset: false, events: [] } }));
  const clock = new FakeClock();
  const g = globalThis as Record<string, unknown>;
  g.EventSource = FakeEventSource; // a browser has one; token auth must not use it
  const c = new ReactiveClient<Procedures>({
    fetch: server.fetch,
    clock,
    storage: 'memory',
    getToken: () => 'secret',
    locks: null,
    channel: null,
  });
  c.subscribe('agents.findMany', ORG, () => undefined);
  await clock.advance(50);
  delete g.EventSource;
  assert.equal(c.realtimeMode, 'poll');
  assert.equal(FakeEventSource.instances.length, 0);
  const poll = server.calls.find((x) => x.path.startsWith('/poll'))!;
  assert.equal(poll.headers.authorization, 'Bearer secret');
  await clock.advance(5000);
  assert.equal(server.count('/poll'), 2);
  c.stop();
});

test('clear forgets the tenant data in memory and storage (logout)', async () => {
  const { server } = backend();
  const { c, storage } = client(server, { realtime: false });
  const m = mount(c, 'agents.findMany', ORG);
  await flush();
  assert.ok([...storage.map.keys()].some((k) => k.startsWith('rq:o1:e:')));
  c.clear();
  assert.equal(m.snap().isLoading, true);
  assert.ok(![...storage.map.keys()].some((k) => k.startsWith('rq:o1:e:')));
});

test('background revalidation drops registry entries the server no longer accepts', async () => {
  const { server } = backend();
  const storage = new MemoryStorage();
  const seed = client(server, { storage, realtime: false });
  await seed.c.fetch('agents.get', { id: 'a1' });
  await seed.c.fetch('agents.getWithStats', { id: 'a1' });
  seed.c.stop();
  const { c, clock } = client(server, { storage, realtime: false });
  server.on('/rpc/agents.getWithStats', () => ({ status: 404, body: { error: { code: 'not_found', message: 'unknown procedure', path: null } } }));
  mount(c, 'agents.findMany', ORG);
  await clock.advance(2000);
  assert.equal(c.cache.read(queryKey('agents.getWithStats', { id: 'a1' })), undefined);
  assert.ok(c.cache.read(queryKey('agents.get', { id: 'a1' })));
});

test('lastServerChange moves only when the data changed; lastRevalidated on every fetch', async () => {
  const { server, state } = backend();
  const { c, clock } = client(server, { realtime: false });
  const t0 = clock.t;
  await c.fetch('agents.findMany', ORG);
  await clock.advance(1000);
  await c.fetch('agents.findMany', ORG);
  let e = c.cache.read(FIND)!;
  assert.equal(e.lastRevalidated, t0 + 1000);
  assert.equal(e.lastServerChange, t0);
  state.agents.push(agent('a2'));
  await clock.advance(1000);
  await c.fetch('agents.findMany', ORG);
  e = c.cache.read(FIND)!;
  assert.equal(e.lastServerChange, t0 + 2000);
});

// ---- reopen: learn what changed while the page was closed, refetch only that ----

const B_IN = { id: 'a1' };
const B = queryKey('agents.get', B_IN);
const HINT = queryKey('agents.getWithStats', { id: 'a1' });
const BG = queryKey('agents.get', { id: 'a2' });
const NOWM = queryKey('agents.get', { id: 'a3' });

/**
 * A first visit leaves in the registry: A (agents.findMany) and B (agents.get a1), mounted; a
 * page hint and a background entry, fetched; an entry without a watermark; the session's
 * lastEventId 100. Then the page closes, and a second client opens on the same storage.
 */
async function reopen(poll: (call: { path: string }) => { status?: number; body: unknown }) {
  const { server, state } = backend();
  server.on('/rpc/agents.getWithStats', () => ok({ agent: agent('a1'), messageCount: 0, memoryCount: 0 }, String(state.eventId)));
  const storage = new MemoryStorage();
  const first = client(server, { storage });
  mount(first.c, 'agents.findMany', ORG);
  mount(first.c, 'agents.get', B_IN);
  await first.c.fetch('agents.getWithStats', { id: 'a1' });
  await first.c.fetch('agents.get', { id: 'a2' });
  first.c.cache.write(NOWM, { procedure: 'agents.get', input: { id: 'a3' }, data: null, lastRevalidated: 1, lastServerChange: 1 });
  await first.clock.advance(50);
  FakeEventSource.last.ready('100');
  first.c.stop();
  await flush(); // (the page's task ends: the registry's meta record is written)
  assert.equal(first.c.cache.getSession().lastEventId, '100');
  // While closed: agent a2 joins the list (event 103 affects A only).
  state.agents.push(agent('a2'));
  state.eventId = 105;
  server.on('/poll', poll);
  server.calls = [];
  const { c, clock } = client(server, { storage });
  const rpc = (): string[] => server.calls.filter((x) => x.path.startsWith('/rpc/')).map((x) => x.path.slice(5) + ':' + JSON.stringify(x.body));
  const polls = (): string[] => server.calls.filter((x) => x.path.startsWith('/poll')).map((x) => x.path);
  return { server, state, c, clock, polls, rpc };
}

const EV103 = { eventId: '103', tables: ['agent'], keys: { agent: { id: ['a2'] } }, requiresAck: false, queries: [FIND] };

test('reopen: one /poll from the oldest watermark; only the key a missed event names is refetched, the rest shows fresh', async () => {
  const r = await reopen(() => ({ body: { eventId: '105', reset: false, events: [EV103] } }));
  const { c, clock, server } = r;
  server.hold(); // the poll answer waits
  c.setPriorities({}, [['agents.getWithStats', { id: 'a1' }]]);
  const a = mount(c, 'agents.findMany', ORG);
  const b = mount(c, 'agents.get', B_IN);
  assert.deepEqual(a.snap(), { data: [agent('a1')], error: undefined, isLoading: false, isStale: true }, 'cached, stale');
  assert.equal(b.snap().isStale, true);
  await clock.advance(50);
  // The stream resumes from the stored id and replays event 103 before the poll answers.
  const es = FakeEventSource.last;
  assert.equal(es.params().get('lastEventId'), '100');
  es.ready('105');
  es.emit('invalidate', EV103);
  await flush();
  assert.deepEqual(r.rpc(), [], 'nothing refetched before the check answers');
  assert.equal(r.polls().length, 1);
  const q = new URLSearchParams(r.polls()[0]!.split('?')[1]);
  assert.equal(q.get('since'), '100', 'from the oldest watermark');
  assert.deepEqual(q.getAll('subscribe').sort(), [FIND, B, HINT, BG].sort(), 'every entry with a watermark');
  server.release();
  await flush();
  assert.deepEqual(r.rpc(), ['agents.findMany:' + JSON.stringify(ORG)], 'exactly A refetched');
  assert.deepEqual(a.snap(), { data: [agent('a1'), agent('a2')], error: undefined, isLoading: false, isStale: false });
  assert.deepEqual(b.snap(), { data: agent('a1'), error: undefined, isLoading: false, isStale: false }, 'B fresh, no request');
  await clock.advance(3000);
  assert.deepEqual(
    r.rpc().map((x) => x.split(':')[0]),
    ['agents.findMany', 'agents.get'],
    'hints and background not refetched; only the entry without a watermark',
  );
  assert.equal(r.rpc()[1], 'agents.get:' + JSON.stringify({ id: 'a3' }));
  assert.equal(c.getSnapshot('agents.getWithStats', { id: 'a1' }).isStale, false);
  assert.equal(c.getSnapshot('agents.get', { id: 'a2' }).isStale, false);
  assert.equal(r.polls().length, 1, 'one poll (no second gap poll for the stream start)');
  // B's watermark moved to the head (105): an event at or below it is ignored, a newer one is not.
  es.emit('invalidate', { eventId: '104', tables: ['agent'], keys: {}, requiresAck: false, queries: [B] });
  await flush();
  assert.equal(server.count('/rpc/agents.get'), 1);
  es.emit('invalidate', { eventId: '106', tables: ['agent'], keys: {}, requiresAck: false, queries: [B] });
  await flush();
  assert.equal(server.count('/rpc/agents.get'), 2);
});

test('reopen: an event newer than the poll head that arrives during the check is refetched', async () => {
  const r = await reopen(() => ({ body: { eventId: '105', reset: false, events: [] } }));
  r.server.hold();
  mount(r.c, 'agents.findMany', ORG);
  mount(r.c, 'agents.get', B_IN);
  await r.clock.advance(50);
  FakeEventSource.last.ready('105');
  FakeEventSource.last.emit('invalidate', { eventId: '106', tables: ['agent'], keys: {}, requiresAck: false, queries: [B] });
  await flush();
  assert.deepEqual(r.rpc(), []);
  r.server.release();
  await flush();
  assert.deepEqual(r.rpc(), ['agents.get:' + JSON.stringify(B_IN)]);
});

for (const [name, poll] of [
  ['reset', () => ({ body: { eventId: '105', reset: true, events: [] } })],
  ['a failing poll', () => ({ status: 500, body: { error: { code: 'internal', message: 'boom', path: null } } })],
] as const) {
  test(`reopen: with ${name}, everything held is refetched, by priority`, async () => {
    const r = await reopen(poll);
    const t0 = r.clock.t;
    const at: [string, number][] = [];
    for (const p of ['agents.findMany', 'agents.get', 'agents.getWithStats'])
      r.server.on('/rpc/' + p, (call) => {
        at.push([call.path.slice(5) + ':' + JSON.stringify(call.body), r.clock.t - t0]);
        return ok(null, '105');
      });
    r.c.setPriorities({}, [['agents.getWithStats', { id: 'a1' }]]);
    const a = mount(r.c, 'agents.findMany', ORG);
    const b = mount(r.c, 'agents.get', B_IN);
    await flush();
    assert.equal(r.polls().length, 1);
    assert.deepEqual(at.map((x) => x[0]).sort(), ['agents.findMany:' + JSON.stringify(ORG), 'agents.get:' + JSON.stringify(B_IN)].sort());
    assert.ok(at.every((x) => x[1] === 0), 'mounted at once');
    assert.equal(a.snap().isStale, false);
    assert.equal(b.snap().isStale, false);
    await r.clock.advance(1000);
    assert.deepEqual(at[2], ['agents.getWithStats:' + JSON.stringify({ id: 'a1' }), 1000], 'hint after 1 s');
    await r.clock.advance(1000);
    assert.deepEqual(at.slice(3).map((x) => x[0]).sort(), ['agents.get:{"id":"a2"}', 'agents.get:{"id":"a3"}']);
    assert.ok(at.slice(3).every((x) => x[1] === 2000), 'the rest after 2 s');
  });
}

test('reopen: a poll that does not answer in time refetches everything (timeout)', async () => {
  const r = await reopen(() => ({ body: { eventId: '105', reset: false, events: [] } }));
  r.server.hold();
  const a = mount(r.c, 'agents.findMany', ORG);
  mount(r.c, 'agents.get', B_IN);
  await r.clock.advance(4999);
  assert.deepEqual(r.rpc(), ['agents.get:{"id":"a3"}'], 'only the entry without a watermark (background, 2 s)');
  assert.equal(a.snap().isStale, true, 'cached data stays shown, stale');
  await r.clock.advance(1);
  assert.deepEqual(r.rpc().slice(1).sort(), ['agents.findMany:' + JSON.stringify(ORG), 'agents.get:' + JSON.stringify(B_IN)].sort());
  r.server.release(); // the late poll answer changes nothing
  await r.clock.advance(3000);
  assert.deepEqual(r.rpc().slice(3).sort(), ['agents.get:{"id":"a2"}', 'agents.getWithStats:{"id":"a1"}'], 'then the background entries');
  assert.equal(a.snap().isStale, false);
  assert.equal(r.server.count('/rpc/agents.findMany'), 1);
});

test("an event naming a procedure, or '*', refetches every mounted query it covers", async () => {
  const { server, state } = backend();
  const { c, clock } = client(server);
  mount(c, 'agents.findMany', ORG);
  mount(c, 'agents.get', { id: 'a1' });
  mount(c, 'agents.get', { id: 'a2' });
  await clock.advance(50);
  const es = FakeEventSource.last;
  es.ready('100');
  await flush();
  assert.equal(server.count('/rpc/agents.get'), 2);
  state.eventId = 101;
  es.emit('invalidate', { eventId: '101', tables: ['agent'], keys: {}, requiresAck: false, queries: ['agents.get'] });
  await flush();
  assert.equal(server.count('/rpc/agents.get'), 4, 'both agents.get keys refetched');
  assert.equal(server.count('/rpc/agents.findMany'), 1, 'the list is not named');
  state.eventId = 102;
  es.emit('invalidate', { eventId: '102', tables: ['agent'], keys: {}, requiresAck: false, queries: ['*'] });
  await flush();
  assert.equal(server.count('/rpc/agents.get'), 6);
  assert.equal(server.count('/rpc/agents.findMany'), 2);
});

// ---- races, retries, tenants and caching: a result is never shown stale or twice ----

const invEv = (eventId: string, queries = [FIND]) => ({ eventId, tables: ['agent'], keys: {}, requiresAck: false, queries });

test('a reset (or invalidation) that arrives during a fetch causes one more fetch; the result stays stale until then', async () => {
  const { server, state } = backend();
  const { c, clock } = client(server);
  const list = mount(c, 'agents.findMany', ORG);
  await clock.advance(50);
  const es = FakeEventSource.last;
  es.ready('100');
  await flush();
  server.hold();
  es.emit('invalidate', invEv('101')); // refetch #2 in flight
  await flush();
  assert.equal(list.snap().isStale, true, 'invalidated: stale at once');
  state.agents.push(agent('a2'));
  es.emit('reset', { eventId: null }); // the server restarted its log after #2 was sent
  await flush();
  assert.equal(server.count('/rpc/agents.findMany'), 2, 'joins the in-flight request');
  state.eventId = 101;
  await server.releaseNext();
  assert.equal(list.snap().isStale, true, 'the result of a request sent before the reset is not fresh');
  assert.equal(server.count('/rpc/agents.findMany'), 3, 'one more fetch');
  server.release();
  await flush();
  assert.equal(list.snap().isStale, false);
  assert.equal(server.count('/rpc/agents.findMany'), 3);
  // The same for an id-less revalidation on the first load.
  const { c: c2 } = client(server);
  server.hold();
  const m2 = mount(c2, 'agents.findMany', ORG);
  await flush();
  c2.revalidateAll();
  await server.releaseNext();
  assert.equal(m2.snap().isStale, true);
  server.release();
  await flush();
  assert.equal(m2.snap().isStale, false);
});

test('retry: a failed refetch keeps the query stale and is retried with backoff; 4xx is not retried', async () => {
  const { server, state } = backend();
  const { c, clock } = client(server, { retryDelay: 1000 });
  const list = mount(c, 'agents.findMany', ORG);
  await clock.advance(50);
  const es = FakeEventSource.last;
  es.ready('100');
  let status = 503;
  server.on('/rpc/agents.findMany', () =>
    status === 200 ? ok([...state.agents], String(state.eventId)) : { status, body: { error: { code: 'unavailable', message: 'down', path: null } } },
  );
  es.emit('invalidate', invEv('101'));
  await flush();
  assert.equal(server.count('/rpc/agents.findMany'), 2);
  assert.equal(list.snap().isStale, true, 'outdated data is never shown as fresh');
  assert.equal(list.snap().error?.status, 503);
  await clock.advance(999);
  assert.equal(server.count('/rpc/agents.findMany'), 2);
  await clock.advance(1);
  assert.equal(server.count('/rpc/agents.findMany'), 3, 'retried after 1 s');
  await clock.advance(1999);
  assert.equal(server.count('/rpc/agents.findMany'), 3);
  await clock.advance(1);
  assert.equal(server.count('/rpc/agents.findMany'), 4, 'then after 2 s');
  status = 200;
  state.eventId = 101;
  await clock.advance(4000);
  assert.equal(server.count('/rpc/agents.findMany'), 5);
  assert.equal(list.snap().isStale, false);
  assert.equal(list.snap().error, undefined);
  // 4xx: the request is wrong; retrying won't help.
  status = 403;
  es.emit('invalidate', invEv('102'));
  await clock.advance(60000);
  assert.equal(server.count('/rpc/agents.findMany'), 6);
  assert.equal(list.snap().error?.status, 403);
  assert.equal(list.snap().isStale, true);
});

test('retry delays have jitter and the retry count is configurable', async () => {
  const { server } = backend();
  server.on('/rpc/agents.findMany', () => ({ status: 500, body: { error: { code: 'internal', message: 'x', path: null } } }));
  const { c, clock } = client(server, { retry: 1, retryDelay: 1000, realtime: false });
  Math.random = () => 0.9; // 1.4 × the delay
  try {
    mount(c, 'agents.findMany', ORG);
    await flush();
    await clock.advance(1399);
    assert.equal(server.count('/rpc/agents.findMany'), 1);
    await clock.advance(1);
    assert.equal(server.count('/rpc/agents.findMany'), 2);
    await clock.advance(60000);
    assert.equal(server.count('/rpc/agents.findMany'), 2, 'retry: 1');
  } finally {
    Math.random = () => 0.5;
  }
});

test('unmount during a fetch: the result is kept but stays stale, and a remount refetches', async () => {
  const { server, state } = backend();
  const { c, clock } = client(server);
  const first = mount(c, 'agents.findMany', ORG);
  await clock.advance(50);
  FakeEventSource.last.ready('100');
  await flush();
  server.hold();
  c.revalidateAll(); // a refetch in flight
  await flush();
  first.un(); // unwatched from now on: events for it are no longer delivered
  await clock.advance(50);
  server.release();
  await flush();
  assert.equal(c.getSnapshot('agents.findMany', ORG).isStale, true);
  state.agents.push(agent('a2'));
  state.eventId = 101; // missed while unmounted
  const n = server.count('/rpc/agents.findMany');
  const again = mount(c, 'agents.findMany', ORG);
  assert.equal(again.snap().isStale, true);
  await flush();
  assert.equal(server.count('/rpc/agents.findMany'), n + 1, 'remount refetches');
  assert.equal(again.snap().data?.length, 2);
  assert.equal(again.snap().isStale, false);
});

test('tenant switch: a fetch started under the previous tenant rejects instead of resolving with its data', async () => {
  const { server } = backend();
  const { c } = client(server);
  await c.fetch('agents.findMany', ORG); // o1 data cached
  server.hold();
  c.revalidateAll();
  const p = c.fetch('agents.findMany', ORG);
  const fresh = c.fetch('agents.get', { id: 'a1' }); // nothing cached: would resolve undefined
  c.setTenant('o2');
  server.release();
  await assert.rejects(p, (e: RpcError) => e.code === 'tenant_changed');
  await assert.rejects(fresh, (e: RpcError) => e.code === 'tenant_changed');
});

test('the registry is keyed by tenant and user; signOut forgets the user data and drops late answers', async () => {
  const { server } = backend();
  const storage = new MemoryStorage();
  const { c } = client(server, { storage, user: 'u1', realtime: false });
  const m = mount(c, 'agents.findMany', ORG);
  await flush();
  assert.equal(m.snap().data?.length, 1);
  // Another user of the same organization on this browser sees nothing of u1.
  const { c: other } = client(server, { storage, user: 'u2', realtime: false });
  assert.equal(other.getSnapshot('agents.findMany', ORG).isLoading, true);
  assert.equal(other.cache.read(FIND), undefined);
  c.setTenant('o1', 'u2');
  assert.equal(m.snap().isLoading, true, 'switching user shows nothing of the previous one');
  c.setTenant('o1', 'u1');
  assert.equal(m.snap().data?.length, 1);
  // Sign out while a request is in flight: storage is emptied and the late answer not written back.
  server.hold();
  const p = c.fetch('agents.get', { id: 'a1' });
  c.signOut();
  assert.equal(m.snap().isLoading, true);
  server.release();
  await assert.rejects(p);
  await flush();
  assert.ok(![...storage.map.keys()].some((k) => k.includes('u1') && k.includes(':e:')), [...storage.map.keys()].join());
});

test('corrupt registry data (valid JSON, wrong shape) never throws in subscribe', async () => {
  const { server } = backend();
  const storage = new MemoryStorage();
  storage.setItem('rq:o1:m', JSON.stringify({ v: 1, session: { lastEventId: 7 }, lru: { [FIND]: null, x: 'y' } }));
  storage.setItem('rq:o1:e:' + FIND, JSON.stringify({ procedure: 'agents.findMany', input: ORG, data: 1, lastRevalidated: 'soon' }));
  const { c } = client(server, { storage });
  let m!: ReturnType<typeof mount>;
  assert.doesNotThrow(() => (m = mount(c, 'agents.findMany', ORG)));
  await flush();
  assert.deepEqual(m.snap().data, [agent('a1')]);
});

test('optimistic: an invalidation and refetch that beat the mutation response never show the write twice', async () => {
  const { server, state } = backend();
  const { c, clock } = client(server);
  const list = mount(c, 'agents.findMany', ORG);
  await clock.advance(50);
  const es = FakeEventSource.last;
  es.ready('100');
  await flush();
  const seen: string[][] = [];
  c.subscribe('agents.findMany', ORG, () => seen.push(list.snap().data!.map((a) => a.id)));
  // The mutation commits (event 101) but its HTTP response is slow.
  let respond!: () => void;
  server.on('/rpc/agents.create', async () => {
    state.agents.push(agent('a2', 'new'));
    state.eventId = 101;
    await new Promise<void>((r) => (respond = r));
    return ok(state.agents[1], '101');
  });
  const p = c.mutate('agents.create', { organizationId: 'o1', name: 'new' }, {
    optimistic: (i, cache) => cache.update('agents.findMany', ORG, (old) => [...(old ?? []), { ...agent('tmp', i.name) }]),
  });
  await flush();
  es.emit('invalidate', invEv('101'));
  await flush();
  assert.equal(server.count('/rpc/agents.findMany'), 2, 'refetched before the mutation answered');
  assert.deepEqual(list.snap().data?.map((a) => a.id), ['a1', 'tmp'], 'not [a1, a2, tmp]');
  respond();
  await p;
  await flush();
  assert.deepEqual(list.snap().data?.map((a) => a.id), ['a1', 'a2']);
  assert.ok(seen.length > 0);
  for (const ids of seen) assert.equal(ids.filter((id) => id === 'tmp' || id === 'a2').length, 1, JSON.stringify(seen));
  await clock.advance(5000);
  assert.equal(server.count('/rpc/agents.findMany'), 2, 'no extra refetch');
});

test('an optimistic callback that throws leaves no layer behind and the mutation is not sent', async () => {
  const { server } = backend();
  const { c } = client(server);
  const list = mount(c, 'agents.findMany', ORG);
  await flush();
  await assert.rejects(
    c.mutate('agents.create', { organizationId: 'o1', name: 'x' }, {
      optimistic: (_i, cache) => {
        cache.update('agents.findMany', ORG, (old) => [...(old ?? []), agent('tmp')]);
        throw new Error('bug in optimistic');
      },
    }),
    /bug in optimistic/,
  );
  assert.deepEqual(list.snap().data?.map((a) => a.id), ['a1']);
  assert.equal(server.count('/rpc/agents.create'), 0);
});

test('an identical result keeps the same data object and snapshot: no re-render', async () => {
  const { server, state } = backend();
  const { c } = client(server, { realtime: false });
  const m = mount(c, 'agents.findMany', ORG);
  await flush();
  const before = m.snap();
  const renders = m.renders();
  await c.fetch('agents.findMany', ORG);
  assert.equal(m.snap(), before, 'same snapshot object (useSyncExternalStore does not re-render)');
  // (Told when the request starts, when its result arrives and when it ends.)
  assert.equal(m.renders(), renders + 3, 'listeners are told; the snapshot they read is unchanged');
  state.agents.push(agent('a2'));
  await c.fetch('agents.findMany', ORG);
  assert.notEqual(m.snap().data, before.data);
  assert.equal(m.snap().data?.length, 2);
});

test('events without keys (the server may bound or omit them) work from queries and table names alone', async () => {
  const { server } = backend();
  const { c, clock } = client(server);
  mount(c, 'agents.findMany', ORG);
  await c.fetch('agents.get', { id: 'a1' }); // held, not mounted: depends on table agent
  await clock.advance(50);
  const es = FakeEventSource.last;
  es.ready('100');
  es.emit('invalidate', { eventId: '101', tables: ['agent'], requiresAck: false, queries: [FIND] });
  await flush();
  assert.equal(server.count('/rpc/agents.findMany'), 2, 'the mounted query the event names is refetched');
  assert.equal(c.getSnapshot('agents.get', { id: 'a1' }).isStale, true, 'a held entry of a changed table may match: stale');
  es.emit('invalidate', { eventId: '102', tables: ['agent'], keys: { agent: { id: ['zz'] } }, queries: [FIND] });
  await flush();
  assert.equal(server.count('/rpc/agents.findMany'), 3);
});

test('cache buster: entries cached under another output-types version are never shown, and are evicted first', async () => {
  const { server } = backend();
  const storage = new MemoryStorage();
  const v1 = client(server, { storage, version: 'h1', realtime: false });
  await v1.c.fetch('agents.findMany', ORG);
  assert.equal(v1.c.getSnapshot('agents.findMany', ORG).isLoading, false);
  // A deploy changed an output type: the generator's hash changed.
  const { c } = client(server, { storage, version: 'h2', realtime: false });
  assert.equal(c.getSnapshot('agents.findMany', ORG).isLoading, true, 'old-shape data is not rendered as the new type');
  assert.equal(c.cache.read(FIND), undefined);
  storage.quota = storage.used() + 50; // full: the old version's data goes first
  await c.fetch('agents.findMany', ORG);
  assert.ok(![...storage.map.keys()].some((k) => k.includes('h1') && k.includes(':e:')), 'old version evicted');
  assert.ok(c.cache.read(FIND));
});

test('the generated createClient passes the output-types version by default: data cached under another is dropped', async () => {
  const { server } = backend();
  const storage = new MemoryStorage();
  const base = { fetch: server.fetch, storage, realtime: false, locks: null, channel: null, clock: new FakeClock(), tenant: 'o1' };
  const before = client(server, { storage, version: 'before-the-deploy', realtime: false });
  await before.c.fetch('agents.findMany', ORG);
  const same = client(server, { storage, version, realtime: false });
  await same.c.fetch('agents.findMany', ORG);
  const c = createClient(base);
  assert.equal(c.getSnapshot('agents.findMany', ORG).isLoading, false, 'same version: cached data is read');
  assert.equal(c.cache.read(FIND)?.data !== undefined, true);
  const other = createClient({ ...base, tenant: 'o1', version: 'another' });
  assert.equal(other.getSnapshot('agents.findMany', ORG).isLoading, true, 'another version: nothing cached is read');
});

test('imperative API: invalidate(name, input) refetches a mounted query; invalidate(name) marks the whole procedure stale', async () => {
  const { server, state } = backend();
  const c = client(server, { realtime: false }, QueryClient).c as QueryClient<Procedures>;
  const list = mount(c, 'agents.findMany', ORG);
  await flush();
  await c.fetch('agents.get', { id: 'a1' }); // held, not mounted
  assert.equal(server.count('/rpc/agents.findMany'), 1);
  state.agents.push(agent('a2'));
  c.invalidate('agents.findMany', ORG);
  assert.equal(list.snap().isStale, true, 'stale at once');
  await flush();
  assert.equal(server.count('/rpc/agents.findMany'), 2, 'mounted: refetched now');
  assert.equal(list.snap().data?.length, 2);
  assert.equal(list.snap().isStale, false);
  c.invalidate('agents.get');
  assert.equal(c.getSnapshot('agents.get', { id: 'a1' }).isStale, true, 'every key of the procedure');
  assert.equal(list.snap().isStale, false, 'other procedures untouched');
  // An invalidation while a request is in flight: one more fetch after it.
  server.hold();
  const p = c.fetch('agents.findMany', ORG);
  c.invalidate('agents.findMany', ORG);
  server.release();
  await p;
  server.release();
  await flush();
  assert.equal(server.count('/rpc/agents.findMany'), 4);
  list.un();
});

test('imperative API: setData / getData, and cancel ignores the result in flight; isFetching tells listeners', async () => {
  const { server } = backend();
  const c = client(server, { realtime: false }, QueryClient).c as QueryClient<Procedures>;
  const list = mount(c, 'agents.findMany', ORG);
  assert.equal(c.isFetching('agents.findMany', ORG), true);
  await flush();
  assert.equal(c.isFetching('agents.findMany', ORG), false);
  c.setData('agents.findMany', ORG, (old) => [...(old ?? []), agent('local')]);
  assert.deepEqual(c.getData('agents.findMany', ORG)?.map((a) => a.id), ['a1', 'local']);
  assert.deepEqual((c.cache.read(FIND)?.data as Agent[]).map((a) => a.id), ['a1', 'local'], 'stored');
  c.setData('agents.get', { id: 'x' }, agent('x'));
  assert.equal(c.getSnapshot('agents.get', { id: 'x' }).data?.id, 'x');
  // cancel: the answer of the request in flight is ignored.
  server.hold();
  const told = list.renders();
  c.invalidate('agents.findMany', ORG);
  await flush();
  assert.equal(c.isFetching('agents.findMany', ORG), true);
  assert.ok(list.renders() > told, 'listeners told when the fetch starts');
  c.cancel('agents.findMany');
  assert.equal(c.isFetching('agents.findMany', ORG), false);
  server.release();
  await flush();
  assert.deepEqual(c.getData('agents.findMany', ORG)?.map((a) => a.id), ['a1', 'local'], 'cancelled result ignored');
  list.un();
});
