import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { Transport } from '../src/client';
import { Realtime, type InvalidateEvent, type RealtimeMode } from '../src/realtime';
import { FakeClock, FakeEventSource, FakeServer, flush } from './helpers';

function setup(opts: Partial<ConstructorParameters<typeof Realtime>[0]> = {}) {
  const clock = new FakeClock();
  const server = new FakeServer();
  const events: InvalidateEvent[] = [];
  const resets: (string | undefined)[] = [];
  const modes: RealtimeMode[] = [];
  const rt = new Realtime({
    transport: new Transport({ baseUrl: '/api', fetch: server.fetch }),
    clock,
    EventSource: FakeEventSource,
    onInvalidate: (e) => events.push(e),
    onReset: (id) => resets.push(id),
    onStatus: (m) => modes.push(m),
    ...opts,
  });
  return { clock, server, events, resets, modes, rt };
}

const inv = (eventId: string, queries: string[], requiresAck = false) => ({
  eventId,
  tables: ['agent'],
  keys: { agent: null },
  requiresAck,
  queries,
});

beforeEach(() => FakeEventSource.reset());

test('one EventSource with the subscription and lastEventId from the registry on first connect', async () => {
  const { clock, rt } = setup();
  rt.start('41');
  rt.setSubscription(['agents.get:{"id":"a1"}', 'agents.findMany']);
  rt.setSubscription(['agents.findMany', 'agents.get:{"id":"a1"}']); // same set: no reconnect
  await clock.advance(50);
  assert.equal(FakeEventSource.instances.length, 1);
  const es = FakeEventSource.last;
  assert.ok(es.url.startsWith('/api/events?'));
  assert.deepEqual(es.params().getAll('subscribe'), ['agents.findMany', 'agents.get:{"id":"a1"}']);
  assert.equal(es.params().get('lastEventId'), '41');
});

test('subscription changes are debounced into one reconnect that resumes from the last id', async () => {
  const { clock, rt, events } = setup();
  rt.start();
  rt.setSubscription(['a']);
  await clock.advance(50);
  const first = FakeEventSource.last;
  assert.equal(first.params().get('lastEventId'), null, 'nothing to resume on a first visit');
  first.ready('100');
  first.emit('invalidate', inv('105', ['a']));
  rt.setSubscription(['a', 'b']);
  await clock.advance(10);
  rt.setSubscription(['a', 'b', 'c']);
  await clock.advance(49);
  assert.equal(FakeEventSource.instances.length, 1, 'still debouncing');
  await clock.advance(1);
  assert.equal(FakeEventSource.instances.length, 2);
  assert.ok(first.closed, 'old stream closed');
  const second = FakeEventSource.last;
  assert.deepEqual(second.params().getAll('subscribe'), ['a', 'b', 'c']);
  assert.equal(second.params().get('lastEventId'), '105');
  assert.equal(events.length, 1);
  // Events of the old stream are ignored once it is replaced.
  first.emit('invalidate', inv('106', ['a']));
  assert.equal(events.length, 1);
  rt.setSubscription([]);
  await clock.advance(50);
  assert.ok(second.closed, 'no entries: no stream');
  assert.equal(rt.mode, 'off');
});

test('invalidations are delivered once: replays and ack re-sends are deduplicated by id', async () => {
  const { clock, rt, events, server } = setup();
  server.on('/api/events/ack', () => ({ status: 204, body: undefined }));
  rt.start('10');
  rt.setSubscription(['a']);
  await clock.advance(50);
  const es = FakeEventSource.last;
  es.ready('12', 'conn-7');
  es.emit('invalidate', inv('11', ['a']));
  es.emit('invalidate', inv('12', ['a'], true));
  es.emit('invalidate', inv('12', ['a'], true)); // re-sent without id: deduplicated but acked again
  es.emit('invalidate', inv('11', ['a'])); // replayed twice
  await flush();
  assert.deepEqual(events.map((e) => e.eventId), ['11', '12']);
  const acks = server.calls.filter((c) => c.path === '/api/events/ack');
  assert.equal(acks.length, 2);
  assert.deepEqual(acks[0]!.body, { eventId: '12', connectionId: 'conn-7' });
  assert.equal(acks[0]!.method, 'POST');
  assert.equal(rt.lastEventId, '12');
  // Across instances events can arrive slightly out of order: a smaller new id still counts.
  es.emit('invalidate', inv('15', ['a']));
  es.emit('invalidate', inv('14', ['a']));
  assert.deepEqual(events.map((e) => e.eventId), ['11', '12', '15', '14']);
  assert.equal(rt.lastEventId, '15', 'keeps the largest id seen');
});

test('reset asks to revalidate and moves the resume point', async () => {
  const { clock, rt, resets } = setup();
  rt.start('5');
  rt.setSubscription(['a']);
  await clock.advance(50);
  FakeEventSource.last.ready('900');
  FakeEventSource.last.emit('reset', { eventId: '900' });
  assert.deepEqual(resets, ['900']);
  // A reset without an id (the server could not log an event) still revalidates.
  FakeEventSource.last.emit('reset', { eventId: null });
  assert.deepEqual(resets, ['900', undefined]);
  assert.equal(rt.lastEventId, '900');
});

test('after 3 failures it polls /poll?since=…, then returns to SSE when it can', async () => {
  const { clock, rt, events, server, modes, resets } = setup({ pollInterval: 5000, sseRetryDelay: 30000 });
  let pollN = 0;
  server.on('/api/poll', () => {
    pollN++;
    if (pollN === 1) return { body: { eventId: '20', reset: false, events: [inv('20', ['a'])] } };
    if (pollN === 2) return { body: { eventId: '30', reset: true, events: [] } };
    return { body: { eventId: '30', reset: false, events: [] } };
  });
  rt.start('10');
  rt.setSubscription(['a']);
  await clock.advance(50);
  FakeEventSource.last.ready('10');
  assert.equal(rt.mode, 'sse');
  // The browser retries by itself after an error; count consecutive failures.
  FakeEventSource.last.fail();
  FakeEventSource.last.fail();
  assert.equal(server.count('/api/poll'), 0);
  FakeEventSource.last.fail();
  await flush();
  assert.equal(rt.mode, 'poll');
  assert.ok(FakeEventSource.last.closed);
  const polls = server.calls.filter((c) => c.path.startsWith('/api/poll'));
  assert.equal(polls.length, 1);
  assert.equal(polls[0]!.path, '/api/poll?subscribe=a&since=10');
  assert.deepEqual(events.map((e) => e.eventId), ['20']);
  await clock.advance(5000);
  assert.equal(server.count('/api/poll?subscribe=a&since=20'), 1, 'next poll continues from the returned id');
  assert.deepEqual(resets, ['30']);
  await clock.advance(5000);
  assert.equal(server.count('/api/poll?subscribe=a&since=30'), 1);
  // 30 s after switching: try SSE again (polling continues until it is ready).
  const before = FakeEventSource.instances.length;
  await clock.advance(20000);
  assert.equal(FakeEventSource.instances.length, before + 1);
  const probe = FakeEventSource.last;
  assert.equal(probe.params().get('lastEventId'), '30');
  probe.fail(true); // still failing: keep polling, try later
  assert.equal(rt.mode, 'poll');
  const pollsBefore = server.count('/api/poll');
  await clock.advance(30000);
  assert.ok(server.count('/api/poll') > pollsBefore, 'still polling');
  const probe2 = FakeEventSource.last;
  assert.notEqual(probe2, probe);
  probe2.ready('30');
  assert.equal(rt.mode, 'sse');
  const n = server.count('/api/poll');
  await clock.advance(50000); // (under 2 heartbeats: a silent stream is reopened after 60 s)
  assert.equal(server.count('/api/poll'), n, 'polling stopped once SSE is back');
  assert.deepEqual(modes.slice(0, 3), ['connecting', 'sse', 'connecting']);
  assert.ok(modes.includes('poll'));
  assert.equal(modes[modes.length - 1], 'sse');
});

test('without EventSource it polls from the start', async () => {
  const { clock, rt, server } = setup({ EventSource: null });
  server.on('/api/poll', () => ({ body: { eventId: '3', reset: false, events: [] } }));
  rt.start();
  rt.setSubscription(['a']);
  await clock.advance(50);
  assert.equal(rt.mode, 'poll');
  assert.equal(server.calls[0]!.path, '/api/poll?subscribe=a');
  assert.equal(rt.coveredFrom('a'), '3');
});

test('a closed stream (credentials expired) reconnects with backoff', async () => {
  const { clock, rt } = setup();
  rt.start();
  rt.setSubscription(['a']);
  await clock.advance(50);
  FakeEventSource.last.ready('1');
  FakeEventSource.last.emit('close', { reason: 'unauthorized' });
  assert.ok(FakeEventSource.last.closed);
  await clock.advance(1999);
  assert.equal(FakeEventSource.instances.length, 1);
  await clock.advance(1);
  assert.equal(FakeEventSource.instances.length, 2);
  assert.equal(FakeEventSource.last.params().get('lastEventId'), '1');
});

test('coverage tells from which id a subscribed entry is delivered', async () => {
  const { clock, rt } = setup();
  rt.start();
  rt.setSubscription(['a']);
  assert.equal(rt.coveredFrom('a'), undefined);
  await clock.advance(50);
  FakeEventSource.last.ready('77');
  assert.equal(rt.coveredFrom('a'), '77');
  assert.equal(rt.coveredFrom('b'), undefined);
  FakeEventSource.last.fail();
  assert.equal(rt.coveredFrom('a'), undefined, 'not covered while disconnected');
});

test('malformed stream data is ignored', async () => {
  const { clock, rt, events } = setup();
  rt.start('5');
  rt.setSubscription(['a']);
  await clock.advance(50);
  const es = FakeEventSource.last;
  for (const fn of es.listeners.get('invalidate') ?? []) fn({ data: 'not json' });
  es.emit('invalidate', 7);
  es.emit('invalidate', 'x');
  es.emit('invalidate', null);
  es.emit('invalidate', { tables: ['agent'], queries: ['a'] }); // no eventId
  assert.equal(events.length, 0);
  es.emit('ready', 'x'); // no connectionId, no eventId: covered from the id it resumed from
  assert.equal(rt.mode, 'sse');
  assert.equal(rt.coveredFrom('a'), '5');
  // Missing tables and queries are normalized; `keys` (informational: the server may bound
  // or omit it) is never relied on.
  es.emit('invalidate', { eventId: '6', queries: ['a'] });
  assert.deepEqual(events, [{ eventId: '6', tables: [], queries: ['a'] }]);
});

test('while polling, entries added to the subscription are covered from the last id', async () => {
  const { clock, rt, server } = setup({ EventSource: null });
  server.on('/api/poll', () => ({ body: { eventId: '3', reset: false, events: [] } }));
  rt.start();
  rt.setSubscription(['a']);
  await clock.advance(50);
  assert.equal(rt.coveredFrom('a'), '3');
  rt.setSubscription(['a', 'b']);
  assert.equal(rt.coveredFrom('b'), '3');
  rt.setSubscription(['b']);
  assert.equal(rt.coveredFrom('a'), undefined, 'unsubscribed');
  await clock.advance(50);
  assert.equal(server.calls[server.calls.length - 1]!.path, '/api/poll?subscribe=b&since=3');
});

// ---- never stuck: a dead stream is noticed and replaced ----

test('a silent stream (no event or heartbeat for 2x the heartbeat interval) is dead: reconnect', async () => {
  const { clock, rt } = setup({ heartbeat: 1000 });
  rt.start('5');
  rt.setSubscription(['a']);
  await clock.advance(50);
  const es1 = FakeEventSource.last;
  es1.ready('5');
  await clock.advance(1500);
  es1.emit('ping', ''); // a heartbeat comment (fetch-based EventSource) keeps it alive
  await clock.advance(1999);
  assert.equal(FakeEventSource.instances.length, 1);
  await clock.advance(1);
  assert.ok(es1.closed, 'dead stream closed');
  await clock.advance(2000); // first reconnect backoff
  assert.equal(FakeEventSource.instances.length, 2);
  assert.equal(FakeEventSource.last.params().get('lastEventId'), '5');
  // A stream that never opens is dead too.
  await clock.advance(2000);
  assert.ok(FakeEventSource.last.closed);
});

test('reconnects at once when the page comes back (visibilitychange, pageshow, online), unless the stream is known alive', async () => {
  const g = globalThis as Record<string, unknown>;
  const win = new EventTarget();
  const doc = { hidden: false };
  g.window = win;
  g.document = doc;
  try {
    const { clock, rt, server } = setup({ heartbeat: 10000 });
    rt.start('5');
    rt.setSubscription(['a']);
    await clock.advance(50);
    FakeEventSource.last.ready('5');
    win.dispatchEvent(new Event('online'));
    await clock.advance(0);
    assert.equal(FakeEventSource.instances.length, 1, 'alive a moment ago: kept');
    await clock.advance(15000);
    doc.hidden = true;
    win.dispatchEvent(new Event('visibilitychange'));
    await clock.advance(0);
    assert.equal(FakeEventSource.instances.length, 1, 'hidden: nothing');
    doc.hidden = false;
    win.dispatchEvent(new Event('visibilitychange'));
    await clock.advance(0);
    assert.equal(FakeEventSource.instances.length, 2, 'visible again: reconnected at once');
    assert.ok(FakeEventSource.instances[0]!.closed);
    FakeEventSource.last.ready('5');
    await clock.advance(15000);
    win.dispatchEvent(new Event('pageshow'));
    await clock.advance(0);
    assert.equal(FakeEventSource.instances.length, 3);
    // Polling: the page coming back tries SSE again at once (and polls).
    server.on('/api/poll', () => ({ body: { eventId: '5', reset: false, events: [] } }));
    for (let i = 0; i < 3; i++) FakeEventSource.last.fail(true), await clock.advance(10000);
    assert.equal(rt.mode, 'poll');
    const n = FakeEventSource.instances.length;
    win.dispatchEvent(new Event('online'));
    await clock.advance(0);
    assert.equal(FakeEventSource.instances.length, n + 1);
    FakeEventSource.last.ready('5');
    assert.equal(rt.mode, 'sse');
    rt.stop();
    win.dispatchEvent(new Event('online'));
    await clock.advance(0);
    assert.equal(FakeEventSource.instances.length, n + 1, 'stopped: listeners removed');
  } finally {
    delete g.window;
    delete g.document;
  }
});

test('every real-time timer has jitter, and polling backs off while polls fail', async () => {
  Math.random = () => 0.9; // 1.4 x
  try {
    const { clock, rt, server } = setup({ pollInterval: 1000 });
    rt.start('5');
    rt.setSubscription(['a']);
    await clock.advance(50);
    FakeEventSource.last.fail(true); // closed: reconnect after 2 s x 1.4
    await clock.advance(2799);
    assert.equal(FakeEventSource.instances.length, 1);
    await clock.advance(1);
    assert.equal(FakeEventSource.instances.length, 2);
    const p = setup({ EventSource: null, pollInterval: 1000 });
    let fail = true;
    p.server.on('/api/poll', () => (fail ? { status: 503, body: {} } : { body: { eventId: '5', reset: false, events: [] } }));
    p.rt.start('5');
    p.rt.setSubscription(['a']);
    await p.clock.advance(50);
    assert.equal(p.server.count('/api/poll'), 1);
    const at: number[] = [];
    const t0 = p.clock.t;
    for (let i = 0; i < 4; i++) {
      const n = p.server.count('/api/poll');
      while (p.server.count('/api/poll') === n) await p.clock.advance(100);
      at.push(p.clock.t - t0);
    }
    // 1000 x 2^failures x 1.4 between polls: 2.8 s, 5.6 s, 11.2 s, 22.4 s
    assert.deepEqual(at, [2800, 8400, 19600, 42000]);
    fail = false;
    await p.clock.advance(50000);
    const n = p.server.count('/api/poll');
    await p.clock.advance(1400);
    assert.equal(p.server.count('/api/poll'), n + 1, 'back to the normal interval once a poll succeeds');
    void server;
  } finally {
    Math.random = () => 0.5;
  }
});
