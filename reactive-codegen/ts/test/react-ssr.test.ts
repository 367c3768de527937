// Server rendering: no `window`, no storage, no EventSource. Importing must not crash and the
// hook renders `isLoading`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as React from 'react';
import { renderToString } from 'react-dom/server';

test('imports and renders isLoading without window', async () => {
  assert.equal(typeof (globalThis as Record<string, unknown>).window, 'undefined');
  const { createReactiveClient, ReactiveProvider } = await import('../src/react');
  const { useReactive, procedures } = await import('./fixtures/procedures');
  let fetched = 0;
  const client = createReactiveClient({
    procedures,
    fetch: (async () => {
      fetched++;
      throw new Error('no fetch during SSR');
    }) as unknown as typeof fetch,
  });
  function Agents() {
    const { data, isLoading, isStale } = useReactive('agents.findMany', { organizationId: 'o1' });
    return React.createElement('p', null, isLoading ? 'loading' : `${data?.length} agents${isStale ? ' (stale)' : ''}`);
  }
  const html = renderToString(React.createElement(ReactiveProvider, { client }, React.createElement(Agents)));
  assert.equal(html, '<p>loading</p>');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(fetched, 0, 'nothing fetched on the server');
});

test('without a provider or default client the hook says how to fix it', async () => {
  const { useReactive } = await import('../src/react');
  function C() {
    useReactive('x', null);
    return null;
  }
  assert.throws(() => renderToString(React.createElement(C)), /ReactiveProvider/);
});
