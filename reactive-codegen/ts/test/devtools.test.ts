// The devtools entry: what it shows of a client, its bound on events, and detach.
import { agent, domPage, renameOverTheStream, win } from './dom';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect, renderPanel } from '../src/devtools';
import { queryKey } from '../src/util';
import { FakeEventSource, flush } from './helpers';

const ORG = { organizationId: 'o1' };
const FIND = queryKey('agents.findMany', ORG);

test('shows queries, the subscription and the events with the keys they affected; the panel renders them', async (t) => {
  const page = domPage(t);
  const ins = inspect(page.client, { global: true });
  assert.equal((globalThis as { __REACTIVE_DEVTOOLS__?: unknown }).__REACTIVE_DEVTOOLS__, ins);
  const un = page.client.subscribe('agents.findMany', ORG, () => {});
  await flush();
  await page.clock.advance(50);
  let notified = 0;
  ins.subscribe(() => notified++);
  const el = win.document.createElement('div');
  const stop = renderPanel(ins, el as unknown as HTMLElement);

  const before = ins.snapshot();
  assert.equal(before.tenant, 'default');
  assert.deepEqual(before.subscription, [FIND]);
  assert.equal(before.queries.length, 1);
  assert.deepEqual(
    { key: before.queries[0]!.key, hasData: before.queries[0]!.hasData, stale: before.queries[0]!.stale, mounts: before.queries[0]!.mounts },
    { key: FIND, hasData: true, stale: false, mounts: 1 },
  );
  assert.deepEqual(before.events, []);

  await renameOverTheStream(page);
  await flush();
  const after = ins.snapshot();
  assert.equal(notified, 1);
  assert.equal(after.events.length, 1);
  assert.deepEqual(
    { eventId: after.events[0]!.eventId, tables: after.events[0]!.tables, affected: after.events[0]!.affected },
    { eventId: '101', tables: ['agent'], affected: [FIND] },
  );
  assert.equal(after.queries[0]!.eventId, '101', 'the client applied the event (refetched through the original handler)');
  assert.deepEqual(page.client.getSnapshot('agents.findMany', ORG).data, [agent('a1', 'Ada')]);
  assert.match(el.textContent ?? '', /101/);
  assert.match(el.textContent ?? '', /agents\.findMany/);

  stop();
  un();
  ins.detach();
  assert.equal((globalThis as { __REACTIVE_DEVTOOLS__?: unknown }).__REACTIVE_DEVTOOLS__, undefined);
  FakeEventSource.last.emit('invalidate', { eventId: '102', tables: ['agent'], keys: {}, requiresAck: false, queries: [FIND] });
  await flush();
  assert.equal(ins.snapshot().events.length, 1, 'detached: no longer records');
  assert.equal(Object.prototype.hasOwnProperty.call(page.client, 'onInvalidate'), false, 'the client is restored');
});

test('keeps at most `events` events, the newest', async (t) => {
  const page = domPage(t);
  const ins = inspect(page.client, { events: 3 });
  page.client.subscribe('agents.findMany', ORG, () => {});
  await flush();
  await page.clock.advance(50);
  FakeEventSource.last.ready('100');
  for (let id = 101; id <= 110; id++)
    page.client.onInvalidate({ eventId: String(id), tables: ['agent'], requiresAck: false, queries: ['agents.findMany'] });
  assert.deepEqual(
    ins.snapshot().events.map((e) => [e.eventId, e.affected]),
    [['108', [FIND]], ['109', [FIND]], ['110', [FIND]]],
  );
  ins.detach();
});
