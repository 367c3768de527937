import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RpcError, Transport } from '../src/client';
import { FakeServer, flush, ok } from './helpers';

test('queries POST the input to /rpc/{name} and parse {data, eventId}', async () => {
  const s = new FakeServer().on('/api/rpc/agents.get', (c) => ok({ echo: c.body }, '42'));
  const t = new Transport({ baseUrl: '/api/', fetch: s.fetch, getToken: () => 'tok', headers: { 'x-a': '1' } });
  const r = await t.query('agents.get', { id: 'a1' });
  assert.deepEqual(r, { data: { echo: { id: 'a1' } }, eventId: '42' });
  const c = s.calls[0]!;
  assert.equal(c.method, 'POST');
  assert.equal(c.headers['content-type'], 'application/json');
  assert.equal(c.headers.authorization, 'Bearer tok');
  assert.equal(c.headers['x-a'], '1');
});

test('getQueries sends GET /rpc/{name}?input=<canonical json>', async () => {
  const s = new FakeServer().on('/rpc/a', () => ok(1, '1'));
  const t = new Transport({ fetch: s.fetch, getQueries: true });
  await t.query('a', { b: 1, a: 2 });
  assert.equal(s.calls[0]!.method, 'GET');
  assert.equal(s.calls[0]!.path, '/rpc/a?input=' + encodeURIComponent('{"a":2,"b":1}'));
  await t.mutate('a', { x: 1 });
  assert.equal(s.calls[1]!.method, 'POST', 'mutations are always POST');
});

test('error bodies become RpcError with code, status and path', async () => {
  const s = new FakeServer().on('/rpc/bad', () => ({
    status: 400,
    body: { error: { code: 'bad_request', message: 'invalid input at `id`', path: 'id' } },
  }));
  const t = new Transport({ fetch: s.fetch });
  await assert.rejects(t.query('bad', {}), (e: unknown) => {
    assert.ok(e instanceof RpcError);
    assert.equal(e.code, 'bad_request');
    assert.equal(e.status, 400);
    assert.equal(e.path, 'id');
    return true;
  });
  await assert.rejects(t.query('missing', {}), (e: RpcError) => e.status === 404 && e.code === 'not_found');
  const down = new Transport({ fetch: (async () => { throw new TypeError('offline'); }) as unknown as typeof fetch });
  await assert.rejects(down.query('x', 1), (e: RpcError) => e.code === 'network' && e.status === 0);
});

test('identical in-flight queries share one request; different inputs or scopes do not', async () => {
  const s = new FakeServer().on('/rpc/q', (c) => ok(c.body, '1'));
  s.hold();
  const t = new Transport({ fetch: s.fetch });
  const a = t.query('q', { x: 1, y: 2 });
  const b = t.query('q', { y: 2, x: 1 });
  const c = t.query('q', { x: 2 });
  const d = t.query('q', { x: 1, y: 2 }, 'other-tenant');
  await flush();
  assert.equal(s.calls.length, 3);
  s.release();
  assert.equal(await a, await b);
  await c;
  await d;
  // Once settled, a new call goes to the server again.
  await t.query('q', { x: 1, y: 2 });
  assert.equal(s.calls.length, 4);
});
