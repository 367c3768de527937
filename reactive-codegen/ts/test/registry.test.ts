import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QueryRegistry, tenantPrefix, type RegistryEntry } from '../src/registry';
import { MemoryStorage, flush } from './helpers';

const entry = (data: unknown, eventId = '1', at = 1): RegistryEntry => ({
  procedure: 'p',
  input: null,
  data,
  lastRevalidated: at,
  lastServerChange: at,
  eventId,
});

test('entries and session survive a reload (a new registry on the same storage)', async () => {
  const st = new MemoryStorage();
  let t = 100;
  const a = new QueryRegistry({ storage: st, tenant: 'org1', now: () => t });
  a.write('p:1', entry({ x: 1 }, '7', 50));
  a.updateSession({ lastEventId: '9', lastSync: 60 });
  a.updateSession({ lastEventId: '8' }); // never moves backwards
  await flush(); // (the meta record is written once per task)
  t = 200;
  const b = new QueryRegistry({ storage: st, tenant: 'org1', now: () => t });
  assert.deepEqual(b.read('p:1'), entry({ x: 1 }, '7', 50));
  const s = b.getSession();
  assert.equal(s.lastEventId, '9');
  assert.equal(s.lastSync, 60);
  assert.deepEqual(b.keys(), ['p:1']);
});

test('tenants are isolated: another tenant never sees the data', () => {
  const st = new MemoryStorage();
  const a = new QueryRegistry({ storage: st, tenant: 'org:a', now: () => 1 });
  a.write('p:1', entry('secret-of-a'));
  const b = new QueryRegistry({ storage: st, tenant: 'org:b', now: () => 1 });
  assert.equal(b.read('p:1'), undefined);
  assert.deepEqual(b.keys(), []);
  assert.ok([...st.map.keys()].some((k) => k.startsWith(tenantPrefix('org:a'))));
  assert.ok(![...st.map.keys()].some((k) => k.startsWith(tenantPrefix('org:b') + 'e:')));
  // A tenant name that is a prefix of another does not leak either.
  const c = new QueryRegistry({ storage: st, tenant: 'org', now: () => 1 });
  assert.equal(c.read('p:1'), undefined);
});

test('size cap evicts least recently used entries', () => {
  const st = new MemoryStorage();
  let t = 0;
  const big = 'x'.repeat(60);
  const probe = new QueryRegistry({ storage: null, tenant: 't' });
  probe.write('p:1', entry(big));
  const cap = probe.size() * 3 + 10; // room for three entries
  const r = new QueryRegistry({ storage: st, tenant: 't', maxBytes: cap, now: () => ++t });
  r.write('p:1', entry(big));
  r.write('p:2', entry(big));
  r.write('p:3', entry(big));
  r.read('p:1'); // p:1 is now more recent than p:2
  r.write('p:4', entry(big));
  assert.ok(r.size() <= cap, `size ${r.size()}`);
  assert.deepEqual(r.keys(), ['p:3', 'p:1', 'p:4'], 'LRU order');
  assert.equal(r.read('p:2', false), undefined, 'least recently used evicted');
  assert.ok(r.read('p:1', false));
  assert.ok(r.read('p:4', false));
  assert.equal(st.getItem(tenantPrefix('t') + 'e:p:2'), null, 'evicted from storage too');
  // An entry larger than the cap is kept in memory only.
  r.write('p:huge', entry('y'.repeat(cap)));
  assert.ok(r.size() <= cap);
  assert.equal(st.getItem(tenantPrefix('t') + 'e:p:huge'), null);
  assert.ok(r.read('p:4', false), 'a too-big entry does not wipe the others');
});

test('a full storage quota evicts other tenants first, then LRU entries, and never throws', async () => {
  const st = new MemoryStorage();
  const other = new QueryRegistry({ storage: st, tenant: 'old', now: () => 1 });
  other.write('p:1', entry('z'.repeat(300)));
  await flush(); // (each write in a task of its own: its meta record is written before the next)
  st.quota = st.used() + 250;
  let t = 10;
  const r = new QueryRegistry({ storage: st, tenant: 'new', now: () => ++t });
  r.write('p:a', entry('a'.repeat(120)));
  await flush();
  assert.ok(r.read('p:a', false));
  assert.equal(st.getItem(tenantPrefix('old') + 'e:p:1'), null, 'other tenant evicted to make room');
  st.quota = st.used() + 230;
  r.write('p:b', entry('b'.repeat(120)));
  await flush();
  r.write('p:c', entry('c'.repeat(120)));
  await flush();
  assert.ok(st.used() <= st.quota);
  assert.ok(st.getItem(tenantPrefix('new') + 'e:p:c') !== null, 'newest write stored');
  assert.equal(st.getItem(tenantPrefix('new') + 'e:p:a'), null, 'oldest evicted');
  st.quota = 0;
  assert.doesNotThrow(() => r.write('p:d', entry('d')));
  assert.equal(r.read('p:d', false)?.data, 'd', 'kept in memory when storage refuses');
});

test('corrupt or missing storage degrades to memory without throwing', () => {
  const st = new MemoryStorage();
  st.setItem(tenantPrefix('t') + 'm', '{not json');
  st.setItem(tenantPrefix('t') + 'e:p:1', '{"garbage":');
  const r = new QueryRegistry({ storage: st, tenant: 't', now: () => 1 });
  assert.equal(r.read('p:1'), undefined);
  assert.equal(st.getItem(tenantPrefix('t') + 'e:p:1'), null, 'corrupt entry removed');
  r.write('p:1', entry(1));
  assert.equal(r.read('p:1')?.data, 1);

  const throwing = {
    getItem() { throw new Error('SecurityError'); },
    setItem() { throw new Error('SecurityError'); },
    removeItem() { throw new Error('SecurityError'); },
    key() { throw new Error('SecurityError'); },
    get length(): number { throw new Error('SecurityError'); },
  };
  const r2 = new QueryRegistry({ storage: throwing, tenant: 't', now: () => 1 });
  r2.write('p:1', entry(2));
  assert.equal(r2.read('p:1')?.data, 2);

  const mem = new QueryRegistry({ storage: null, tenant: 't', now: () => 1 });
  mem.write('p:1', entry(3));
  assert.equal(mem.read('p:1')?.data, 3);
  for (let i = 0; i < 50; i++) mem.write('p:' + i, entry('z'.repeat(100_000)));
  assert.ok(mem.size() <= 2 * 1024 * 1024, 'the cap bounds a memory-only registry too');
  mem.updateSession({ lastEventId: '5' });
  assert.equal(mem.getSession().lastEventId, '5');
});

test('a newer entry written by another tab is seen on read', async () => {
  const st = new MemoryStorage();
  const tab1 = new QueryRegistry({ storage: st, tenant: 't', now: () => 1 });
  const tab2 = new QueryRegistry({ storage: st, tenant: 't', now: () => 1 });
  tab1.write('p:1', entry('old', '1', 1));
  assert.equal(tab2.read('p:1')?.data, 'old');
  tab2.write('p:1', entry('new', '2', 2));
  assert.equal(tab1.read('p:1')?.data, 'new');
  tab1.write('p:2', entry('x'));
  await flush(); // (tabs run in separate tasks)
  tab2.updateSession({ lastSync: 5 });
  await flush();
  // tab2's meta write merges tab1's LRU index instead of dropping it.
  const tab3 = new QueryRegistry({ storage: st, tenant: 't', now: () => 1 });
  assert.deepEqual(tab3.keys().sort(), ['p:1', 'p:2']);
});

test('markStale and clear', () => {
  const st = new MemoryStorage();
  const r = new QueryRegistry({ storage: st, tenant: 't', now: () => 1 });
  r.write('p:1', entry(1));
  r.markStale('p:1', 9);
  const again = new QueryRegistry({ storage: st, tenant: 't', now: () => 1 });
  assert.equal(again.read('p:1')?.stale, true);
  assert.equal(again.read('p:1')?.lastServerChange, 9);
  again.clear();
  assert.equal([...st.map.keys()].filter((k) => k.startsWith(tenantPrefix('t'))).length, 0);
});

test('valid JSON of the wrong shape is discarded piece by piece, never thrown', () => {
  const st = new MemoryStorage();
  const pfx = tenantPrefix('t');
  st.setItem(pfx + 'm', JSON.stringify({ v: 1, session: { lastEventId: { x: 1 }, lastSync: 'x' }, lru: { 'p:1': null, 'p:2': [1, 2], 'p:3': ['a'], 'p:4': [3, 4] } }));
  st.setItem(pfx + 'e:p:2', JSON.stringify({ procedure: 'p', input: null, data: 1, lastRevalidated: 1, lastServerChange: 1, eventId: { bad: true } }));
  st.setItem(pfx + 'e:p:4', JSON.stringify({ procedure: 'other', input: null, data: 1, lastRevalidated: 1, lastServerChange: 1 }));
  st.setItem(pfx + 'e:p:5', JSON.stringify({ ...entry(5), lastServerChange: 'yesterday' }));
  st.setItem(pfx + 'e:p:6', JSON.stringify(entry(6, '6')));
  const r = new QueryRegistry({ storage: st, tenant: 't', now: () => 10 });
  assert.doesNotThrow(() => r.keys());
  assert.deepEqual(r.keys(), ['p:2', 'p:4']);
  assert.equal(r.getSession().lastEventId, undefined);
  assert.equal(r.getSession().lastSync, 0);
  assert.equal(r.read('p:2'), undefined, 'an eventId that is not a string');
  assert.equal(r.read('p:4'), undefined, 'an entry of another procedure than its key says');
  assert.equal(r.read('p:5'), undefined);
  assert.equal(st.getItem(pfx + 'e:p:2'), null, 'removed');
  assert.deepEqual(r.read('p:6'), entry(6, '6'));
  assert.ok(r.size() >= 0);
  r.write('p:7', entry(7));
  assert.ok(r.read('p:7'));
  st.setItem(pfx + 'm', JSON.stringify({ v: 1, session: null, lru: [] }));
  assert.doesNotThrow(() => new QueryRegistry({ storage: st, tenant: 't', now: () => 10 }).keys());
});

test('a write that can never fit the quota evicts nothing', () => {
  const st = new MemoryStorage();
  const old = new QueryRegistry({ storage: st, tenant: 'old', now: () => 1 });
  old.write('p:1', entry('o'.repeat(100)));
  let t = 10;
  const r = new QueryRegistry({ storage: st, tenant: 'new', now: () => ++t });
  for (const k of ['p:a', 'p:b', 'p:c']) r.write(k, entry(k.repeat(30)));
  st.quota = st.used() + 100;
  const before = new Map(st.map);
  r.write('p:huge', entry('h'.repeat(5000)));
  for (const [k, v] of before) if (k.includes(':e:')) assert.equal(st.getItem(k), v, k + ' kept');
  assert.equal(r.read('p:huge', false)?.data, 'h'.repeat(5000), 'kept in memory for this page');
  assert.ok(r.read('p:a', false) && r.read('p:b', false) && r.read('p:c', false));
  // One that fits once the least recently used entry is gone still evicts it.
  r.write('p:d', entry('d'.repeat(150)));
  assert.ok(st.getItem(tenantPrefix('new') + 'e:p:d'));
});

test('the meta record (session and LRU index) is read and written once per task, not on every write and event', async () => {
  const st = new MemoryStorage();
  const meta = tenantPrefix('t') + 'm';
  const counts = { get: 0, set: 0 };
  const getItem = st.getItem.bind(st);
  const setItem = st.setItem.bind(st);
  st.getItem = (k) => (k === meta && counts.get++, getItem(k));
  st.setItem = (k, v) => (k === meta && counts.set++, setItem(k, v));
  const r = new QueryRegistry({ storage: st, tenant: 't', now: () => 1 });
  counts.get = 0;
  // One event's worth of work: results written, entries marked stale, the session updated.
  for (let i = 0; i < 20; i++) {
    r.write('p:' + i, entry(i, String(i)));
    r.markStale('p:' + i, 2);
    r.updateSession({ lastEventId: String(i), lastSync: i });
  }
  assert.deepEqual(counts, { get: 0, set: 0 }, 'nothing yet');
  await flush();
  assert.deepEqual(counts, { get: 1, set: 1 }, 'one merge and one write');
  const again = new QueryRegistry({ storage: st, tenant: 't', now: () => 1 });
  assert.equal(again.keys().length, 20);
  assert.equal(again.getSession().lastEventId, '19');
});
