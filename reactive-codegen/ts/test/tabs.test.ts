// One event stream per browser (src/tabs.ts): tabs share the leader's stream over fake Web Locks
// and BroadcastChannels, as tabs of one browser profile do.
import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { ReactiveClient, type ClientOptions } from '../src/core';
import { SharedStream } from '../src/tabs';
import { createClient, procedures, type Procedures, type Agent } from './fixtures/procedures';
import { queryKey } from '../src/util';
import { QueryClient } from '../src/query';
import { FakeChannels, FakeClock, FakeEventSource, FakeLocks, FakeServer, MemoryStorage, flush, installWindow, ok } from './helpers';

installWindow();
beforeEach(() => FakeEventSource.reset());

const agent = (id: string, name = id): Agent => ({ id, organizationId: 'o1', name, active: true });
const ORG = { organizationId: 'o1' };
const FIND = queryKey('agents.findMany', ORG);
const GET = (id: string) => queryKey('agents.get', { id });

/** One browser: a server, a clock, localStorage, locks and channels shared by its tabs. */
function browser() {
  const server = new FakeServer();
  const state = { eventId: 100, agents: [agent('a1'), agent('a2'), agent('a3')] };
  server.on('/rpc/agents.findMany', () => ok([...state.agents], String(state.eventId)));
  server.on('/rpc/agents.get', (c) =>
    ok(state.agents.find((a) => a.id === (c.body as { id: string }).id) ?? null, String(state.eventId)),
  );
  server.on('/events/ack', () => ({ status: 204, body: undefined }));
  server.on('/poll', () => ({ body: { eventId: String(state.eventId), reset: false, events: [] } }));
  const clock = new FakeClock();
  const storage = new MemoryStorage();
  const locks = new FakeLocks();
  const channels = new FakeChannels();
  const tab = (extra: Partial<ClientOptions<Procedures>> = {}) =>
    new ReactiveClient<Procedures>({
      fetch: server.fetch,
      clock,
      storage,
      EventSource: FakeEventSource,
      locks,
      channel: channels.make,
      stream: SharedStream,
      procedures,
      tenant: 'o1',
      ...extra,
    });
  return { server, state, clock, storage, locks, channels, tab };
}

/** Mounts a query; returns its snapshot reader and unmount. */
function mount(c: ReactiveClient<Procedures>, name: 'agents.findMany' | 'agents.get', input: unknown) {
  const un = c.subscribe(name as 'agents.get', input as { id: string }, () => undefined);
  return { un, snap: () => c.getSnapshot(name as 'agents.get', input as { id: string }) };
}

const subscribed = (es: FakeEventSource) => es.params().getAll('subscribe').sort();
const invalidate = (eventId: string, queries: string[], requiresAck = false) => ({
  eventId,
  tables: ['agent'],
  requiresAck,
  queries,
});

/** Three tabs, each with its own query on screen, and the leader's stream ready. */
async function threeTabs() {
  const b = browser();
  const tabs = [b.tab({ user: 'u1' }), b.tab({ user: 'u1' }), b.tab({ user: 'u1' })];
  const views = [
    mount(tabs[0]!, 'agents.findMany', ORG),
    mount(tabs[1]!, 'agents.get', { id: 'a2' }),
    mount(tabs[2]!, 'agents.get', { id: 'a3' }),
  ];
  await flush();
  await b.clock.advance(100);
  assert.equal(FakeEventSource.open().length, 1, 'one stream for three tabs');
  const es = FakeEventSource.open()[0]!;
  es.ready('100', 'conn-1');
  await flush(10);
  return { ...b, tabs, views, es };
}

test('three tabs share one stream subscribed to the union of their queries; every tab gets its invalidations', async () => {
  const { server, state, tabs, views, es } = await threeTabs();
  assert.deepEqual(subscribed(es), [FIND, GET('a2'), GET('a3')].sort(), 'the union of every tab');
  for (const t of tabs) assert.equal(t.realtimeMode, 'sse', 'followers see the leader as live');
  for (const v of views) assert.equal(v.snap().isStale, false);

  // A change to a3 (on screen in the third tab only): that tab refetches it.
  state.agents[2] = agent('a3', 'Renamed');
  state.eventId = 101;
  const before = server.count('/rpc/agents.get');
  es.emit('invalidate', invalidate('101', [GET('a3')]));
  await flush(10);
  assert.equal(views[2]!.snap().data?.name, 'Renamed', 'the third tab shows the change');
  assert.equal(server.count('/rpc/agents.get') - before, 1, 'fetched once, by the tab that shows it');
  assert.equal(tabs[2]!.cache.getSession().lastEventId, '101');

  // A change every tab shows: each refetches its own query.
  state.eventId = 102;
  es.emit('invalidate', invalidate('102', [FIND, GET('a2')]));
  await flush(10);
  assert.equal(server.calls.filter((c) => c.path.includes('/rpc/') && c.path.endsWith('agents.findMany')).length >= 2, true);
  assert.equal(FakeEventSource.instances.length, 1, 'no stream was opened by a follower');
});

test('the leader acks events that require it, once, with its connection id; followers do not', async () => {
  const { server, es } = await threeTabs();
  es.emit('invalidate', invalidate('101', [GET('a3')], true));
  await flush(10);
  const acks = server.calls.filter((c) => c.path.endsWith('/events/ack'));
  assert.deepEqual(
    acks.map((c) => c.body),
    [{ eventId: '101', connectionId: 'conn-1' }],
  );
});

test('a follower that mounts or unmounts a query changes the leader subscription (debounced reconnect, resuming)', async () => {
  const { tabs, clock, es } = await threeTabs();
  es.emit('invalidate', invalidate('105', [FIND]));
  await flush(10);
  const extra = mount(tabs[1]!, 'agents.get', { id: 'a1' });
  const gone = mount(tabs[2]!, 'agents.get', { id: 'a9' });
  await clock.advance(10);
  assert.equal(FakeEventSource.open().length, 1, 'not yet: debounced');
  await flush();
  await clock.advance(100);
  const open = FakeEventSource.open();
  assert.equal(open.length, 1, 'still one stream');
  const es2 = open[0]!;
  assert.notEqual(es2, es, 'reopened with the new union (protocol section 4)');
  assert.deepEqual(subscribed(es2), [FIND, GET('a1'), GET('a2'), GET('a3'), GET('a9')].sort());
  assert.equal(es2.params().get('lastEventId'), '105', 'resumes from the last id: replay fills the gap');
  extra.un();
  gone.un();
  await flush();
  await clock.advance(100);
  assert.deepEqual(subscribed(FakeEventSource.open()[0]!), [FIND, GET('a2'), GET('a3')].sort());
  assert.equal(FakeEventSource.open().length, 1);
});

test('the leader leaves: the next tab takes the lock and opens the stream from the last id seen, for the remaining tabs', async () => {
  const { tabs, views, state, clock, es } = await threeTabs();
  es.emit('invalidate', invalidate('107', [FIND]));
  es.emit('reset', { eventId: '108' });
  await flush(10);
  tabs[0]!.stop(); // (a closed tab: the browser releases its lock and closes its channel)
  await flush();
  await clock.advance(100);
  assert.ok(es.closed, "the old leader's stream is closed");
  const open = FakeEventSource.open();
  assert.equal(open.length, 1, 'exactly one new stream');
  const es2 = open[0]!;
  assert.equal(es2.params().get('lastEventId'), '108', 'resumes from the last id the new leader saw');
  assert.deepEqual(subscribed(es2), [GET('a2'), GET('a3')].sort(), 'only the remaining tabs');
  es2.ready('108', 'conn-2');
  await flush(10);
  assert.equal(tabs[1]!.realtimeMode, 'sse');
  assert.equal(tabs[2]!.realtimeMode, 'sse');

  // The third tab (a follower of the new leader) still gets its invalidations.
  state.agents[2] = agent('a3', 'After handover');
  state.eventId = 109;
  es2.emit('invalidate', invalidate('109', [GET('a3')]));
  await flush(10);
  assert.equal(views[2]!.snap().data?.name, 'After handover');

  // And the second leader leaves too: the last tab leads.
  tabs[1]!.stop();
  await flush();
  await clock.advance(100);
  const es3 = FakeEventSource.open()[0]!;
  assert.equal(FakeEventSource.open().length, 1);
  assert.equal(es3.params().get('lastEventId'), '109');
  assert.deepEqual(subscribed(es3), [GET('a3')]);
});

test('followers see the leader fall back to polling and come back', async () => {
  const { tabs, es, clock } = await threeTabs();
  es.fail(true);
  await clock.advance(2000);
  FakeEventSource.open()[0]?.fail(true);
  await clock.advance(4000);
  FakeEventSource.open()[0]?.fail(true);
  await flush(10);
  assert.equal(tabs[0]!.realtimeMode, 'poll');
  assert.equal(tabs[1]!.realtimeMode, 'poll', 'a follower knows the shared stream polls');
  assert.equal(tabs[2]!.realtimeMode, 'poll');
});

test('tenant switch and sign-out drop a tab out of the shared stream', async () => {
  const { tabs, clock } = await threeTabs();
  // A follower switches organization: it leaves o1's union and leads its own scope's stream.
  tabs[2]!.setTenant('o2');
  await flush();
  await clock.advance(100);
  let open = FakeEventSource.open();
  assert.equal(open.length, 2, "o1's shared stream and o2's");
  const o1 = open.find((e) => subscribed(e).includes(FIND))!;
  assert.deepEqual(subscribed(o1), [FIND, GET('a2')].sort(), 'the switched tab left the o1 union');
  const o2 = open.find((e) => e !== o1)!;
  assert.deepEqual(subscribed(o2), [GET('a3')]);

  // The o1 leader signs out (o1 without a user: another scope): the remaining o1 tab leads o1.
  tabs[0]!.signOut();
  await flush();
  await clock.advance(100);
  open = FakeEventSource.open();
  assert.equal(open.length, 3, "o1 (new leader), o2, and the signed-out tab's own");
  assert.ok(o1.closed, "the signed-out tab's old stream is closed");
  assert.ok(open.some((e) => subscribed(e).join() === GET('a2')), 'the second tab leads o1 now, for its own query');
  // A tab back in o1 joins o1's stream again instead of opening one.
  tabs[2]!.setTenant('o1');
  await flush();
  await clock.advance(100);
  open = FakeEventSource.open();
  assert.equal(open.length, 2, 'o2 has no tab left; o1 is shared again');
  assert.ok(open.some((e) => subscribed(e).join() === [GET('a2'), GET('a3')].sort().join()));
});

test('without Web Locks or BroadcastChannel each tab keeps its own stream (fallback)', async () => {
  const b = browser();
  const tabs = [b.tab({ locks: null }), b.tab({ locks: null })];
  mount(tabs[0]!, 'agents.findMany', ORG);
  mount(tabs[1]!, 'agents.get', { id: 'a2' });
  await flush();
  await b.clock.advance(100);
  assert.equal(FakeEventSource.open().length, 2);
  const noChannel = [b.tab({ channel: null }), b.tab({ channel: null })];
  mount(noChannel[0]!, 'agents.findMany', ORG);
  mount(noChannel[1]!, 'agents.get', { id: 'a2' });
  await flush();
  await b.clock.advance(100);
  assert.equal(FakeEventSource.open().length, 4);
  for (const es of FakeEventSource.open()) es.ready('100');
  await flush(10);
  for (const t of [...tabs, ...noChannel]) assert.equal(t.realtimeMode, 'sse');
});

test('a follower closes the gap of a result older than the shared stream (coverage is relayed)', async () => {
  const { server, state, tab, clock, es } = await threeTabs();
  // The leader's stream is at 103 when a fourth tab loads a query the server answers at 100 (a
  // lagging instance): the stream reopened for it covers it from 103, so 101..103 is polled.
  es.emit('invalidate', invalidate('103', [GET('a3')]));
  await flush(10);
  state.eventId = 100;
  const v = mount(tab({ user: 'u1' }), 'agents.get', { id: 'a1' });
  await flush();
  await clock.advance(100);
  const es2 = FakeEventSource.open()[0]!;
  assert.ok(subscribed(es2).includes(GET('a1')));
  assert.equal(v.snap().data?.name, 'a1');
  server.on('/poll', () => ({ body: { eventId: '103', reset: false, events: [invalidate('102', [GET('a1')])] } }));
  state.agents[0] = agent('a1', 'Changed in the gap');
  state.eventId = 103;
  const polls = server.count('/poll');
  es2.ready('103', 'conn-2');
  await flush(20);
  const gapPolls = server.calls
    .slice(0)
    .filter((c) => c.path.startsWith('/poll') && new URLSearchParams(c.path.split('?')[1]).getAll('subscribe').includes(GET('a1')));
  assert.equal(gapPolls.length, 1, 'the follower polled its gap once');
  assert.equal(new URLSearchParams(gapPolls[0]!.path.split('?')[1]).get('since'), '100');
  assert.ok(server.count('/poll') > polls);
  assert.equal(v.snap().data?.name, 'Changed in the gap');
});

test('the generated createClient shares the stream by default', async () => {
  const b = browser();
  const base = { fetch: b.server.fetch, clock: b.clock, storage: b.storage, EventSource: FakeEventSource, locks: b.locks, channel: b.channels.make, tenant: 'o1' };
  const t1 = createClient(base);
  const t2 = createClient(base);
  t1.subscribe('agents.findMany', ORG, () => undefined);
  t2.subscribe('agents.get', { id: 'a2' }, () => undefined);
  await flush();
  await b.clock.advance(100);
  assert.equal(FakeEventSource.open().length, 1);
});

test("a result one tab fetched is shown by the other tabs that hold the query (posted on the stream's channel)", async () => {
  const { state, tabs, views, server, clock } = await threeTabs();
  // The first tab also shows a3 (second reader of the third tab's query): both hold it.
  const inFirst = mount(tabs[0]!, 'agents.get', { id: 'a3' });
  await flush(10);
  state.agents[2] = agent('a3', 'Fetched once');
  state.eventId = 101;
  const before = server.count('/rpc/agents.get');
  await clock.advance(1);
  // Only the third tab refetches (e.g. `refetch`); the first shows its result without a request.
  await tabs[2]!.fetch('agents.get', { id: 'a3' });
  await flush(10);
  assert.equal(server.count('/rpc/agents.get') - before, 1);
  assert.equal(views[2]!.snap().data?.name, 'Fetched once');
  assert.equal(inFirst.snap().data?.name, 'Fetched once', 'the other tab shows it too');
});

test("the union leaves out keys of a procedure another tab subscribes to whole (its entry gets their events)", async () => {
  const { tabs, clock, server, state } = await threeTabs();
  // The first tab shows 9 agents: its keys of agents.get become the procedure entry.
  const many = ['b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b7', 'b8', 'b9'].map((id) => mount(tabs[0]!, 'agents.get', { id }));
  await flush();
  await clock.advance(100);
  const es = FakeEventSource.open()[0]!;
  assert.equal(FakeEventSource.open().length, 1);
  assert.deepEqual(subscribed(es), [FIND, 'agents.get'].sort(), 'the other tabs\u2019 agents.get keys are left out');
  // An event for the procedure entry reaches the tabs whose keys it subsumes.
  es.ready('100', 'conn-2');
  await flush(10);
  const gets = () => server.calls.filter((c) => c.path.endsWith('/rpc/agents.get')).map((c) => (c.body as { id: string }).id);
  const before = gets().length;
  state.eventId = 101;
  es.emit('invalidate', invalidate('101', ['agents.get']));
  await flush(10);
  const refetched = gets().slice(before);
  assert.ok(refetched.includes('a2') && refetched.includes('a3'), `the other tabs' agents refetched: ${refetched}`);
  for (const m of many) m.un();
});

test('a page coming back in a follower makes the (maybe hidden) leader check its stream', async () => {
  const g = globalThis as Record<string, unknown>;
  const win = new EventTarget();
  const doc = { hidden: false };
  const saved = g.window;
  const b = browser();
  g.window = win;
  g.document = doc;
  try {
    const leader = b.tab();
    const follower = b.tab();
    mount(leader, 'agents.findMany', ORG);
    mount(follower, 'agents.get', { id: 'a2' });
    await flush();
    await b.clock.advance(100);
    const es = FakeEventSource.open()[0]!;
    es.ready('100');
    await flush(10);
    // The follower's page is shown: it tells the leader.
    b.channels.log = [];
    win.dispatchEvent(new Event('visibilitychange'));
    await flush();
    assert.ok(b.channels.log.some((x) => (x.msg as { t: string }).t == 'w'), 'the follower posted "w"');
    assert.equal(FakeEventSource.open()[0], es, 'alive a moment ago: kept');
    // Later, with the leader's page hidden (its own wake does nothing), a follower's page comes back.
    await b.clock.advance(40000);
    doc.hidden = true;
    win.dispatchEvent(new Event('visibilitychange'));
    await flush();
    assert.equal(FakeEventSource.open()[0], es, 'the hidden leader did not reconnect by itself');
    b.channels.post('reactive:', { t: 'w' });
    await flush();
    await b.clock.advance(0);
    assert.ok(es.closed, 'the stream not known alive is closed');
    assert.equal(FakeEventSource.open().length, 1, 'and reopened at once');
    assert.equal(FakeEventSource.open()[0]!.params().get('lastEventId'), '100');
  } finally {
    g.window = saved;
    delete g.document;
  }
});

test('a result that cannot be posted (not cloneable) is still set here; the other tabs just do not get it', async () => {
  const b = browser();
  const qc = new QueryClient<Procedures>({ fetch: b.server.fetch, clock: b.clock, storage: b.storage, EventSource: FakeEventSource, locks: b.locks, channel: b.channels.make, stream: SharedStream, procedures, tenant: 'o1' });
  const other = b.tab();
  const view = mount(qc, 'agents.get', { id: 'a1' });
  mount(other, 'agents.get', { id: 'a1' });
  await flush();
  await b.clock.advance(100);
  const odd = { ...agent('a1', 'odd'), format: () => 'not cloneable' };
  assert.doesNotThrow(() => qc.setData('agents.get', { id: 'a1' }, odd));
  assert.equal(view.snap().data?.name, 'odd');
});
