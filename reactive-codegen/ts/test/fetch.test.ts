// The plain fetch client (`src/fetch.ts`) against a real HTTP server in this process (Node's own
// `fetch`, as a script would use it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createFetchClient, RpcError } from '../src/fetch';
import type { Procedures } from './fixtures/procedures';

test('createFetchClient: typed query and mutate over HTTP, errors as RpcError, the watermark on call', async (t) => {
  const seen: { url: string; auth: string | undefined; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ url: req.url!, auth: req.headers.authorization, body });
      res.setHeader('content-type', 'application/json');
      if (req.url == '/api/rpc/agents.get' && JSON.parse(body).id == 'missing') {
        res.statusCode = 404;
        return res.end(JSON.stringify({ error: { code: 'not_found', message: 'no such agent', path: null } }));
      }
      if (req.url == '/api/rpc/agents.findMany')
        return res.end(JSON.stringify({ data: [{ id: 'a1', organizationId: 'o1', name: 'Ada', active: true }], eventId: '7' }));
      res.end(JSON.stringify({ data: { id: 'a2', organizationId: 'o1', name: JSON.parse(body).name, active: true }, eventId: '8' }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const api = createFetchClient<Procedures>({
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`,
    getToken: () => 'token-1',
  });
  const agents = await api.query('agents.findMany', { organizationId: 'o1' });
  assert.equal(agents[0]!.name, 'Ada');
  const created = await api.mutate('agents.create', { organizationId: 'o1', name: 'Bo' });
  assert.equal(created.name, 'Bo');
  assert.deepEqual(await api.call('agents.findMany', { organizationId: 'o1' }), {
    data: [{ id: 'a1', organizationId: 'o1', name: 'Ada', active: true }],
    eventId: '7',
  });
  await assert.rejects(api.query('agents.get', { id: 'missing' }), (e) => {
    assert.ok(e instanceof RpcError);
    assert.equal(e.code, 'not_found');
    assert.equal(e.status, 404);
    return true;
  });
  assert.equal(seen[0]!.auth, 'Bearer token-1');
  assert.deepEqual(JSON.parse(seen[1]!.body), { organizationId: 'o1', name: 'Bo' });
  // Types: a mutation is not a query, inputs are checked.
  // @ts-expect-error agents.create is a mutation
  void (() => api.query('agents.create', { organizationId: 'o1', name: 'x' }));
  // @ts-expect-error wrong input
  void (() => api.mutate('agents.create', { organizationId: 'o1' }));
});
