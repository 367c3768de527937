// `useReactiveSuspense` (`src/suspense.ts`) in a simulated browser page.
import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import * as React from 'react';
import TestRenderer, { act } from 'react-test-renderer';
import { ReactiveProvider } from '../src/react';
import { createSuspenseHooks } from '../src/suspense';
import { type Agent, type Procedures } from './fixtures/procedures';
import { FakeClock, FakeEventSource, FakeServer, flush, installWindow, ok, pageClient } from './helpers';

installWindow();
const consoleError = console.error;
console.error = (...args: unknown[]) => {
  const m = String(args[0]);
  if (m.startsWith('react-test-renderer is deprecated') || m.includes('error boundary') || m.includes('forbidden')) return;
  consoleError(...args);
};
(globalThis as Record<string, unknown>).IS_REACT_ACT_ENVIRONMENT = true;
beforeEach(() => FakeEventSource.reset());

const { useReactiveSuspense } = createSuspenseHooks<Procedures>();
const agent = (id: string, name = id): Agent => ({ id, organizationId: 'o1', name, active: true });

class Boundary extends React.Component<{ children?: React.ReactNode }, { error?: string }> {
  override state: { error?: string } = {};
  static getDerivedStateFromError(e: Error) {
    return { error: (e as { code?: string }).code ?? e.message };
  }
  override render() {
    return this.state.error ? React.createElement('em', null, 'boundary: ' + this.state.error) : this.props.children;
  }
}

function setup() {
  const server = new FakeServer();
  server.on('/rpc/agents.get', (c) => {
    const id = (c.body as { id: string }).id;
    if (id == 'secret') return { status: 403, body: { error: { code: 'forbidden', message: 'no', path: null } } };
    return ok(agent(id), '100');
  });
  const clock = new FakeClock();
  const client = pageClient(server, clock);
  return { server, clock, client };
}

function Name(props: { id: string }) {
  const { data, isStale } = useReactiveSuspense('agents.get', { id: props.id });
  // `data` is typed `Agent | null`, never undefined.
  return React.createElement('b', null, (data?.name ?? 'none') + (isStale ? '*' : ''));
}

function page(client: ReturnType<typeof setup>['client'], id: string) {
  return React.createElement(
    ReactiveProvider,
    { client },
    React.createElement(Boundary, null, React.createElement(React.Suspense, { fallback: 'wait' }, React.createElement(Name, { id }))),
  );
}

test('useReactiveSuspense: the fallback until the data is there, then the data; fetched once', async () => {
  const { server, client } = setup();
  server.hold();
  let r!: TestRenderer.ReactTestRenderer;
  await act(async () => {
    r = TestRenderer.create(page(client, 'a1'));
    await flush();
  });
  assert.equal(r.toJSON(), 'wait');
  await act(async () => {
    server.release();
    await flush();
  });
  assert.deepEqual((r.toJSON() as TestRenderer.ReactTestRendererJSON).children, ['a1']);
  assert.equal(server.count('/rpc/agents.get'), 1, 'mounting after the suspension does not fetch again');
  // Cached data: no suspension.
  await act(async () => {
    r.update(page(client, 'a1'));
    await flush();
  });
  assert.deepEqual((r.toJSON() as TestRenderer.ReactTestRendererJSON).children, ['a1']);
  await act(async () => r.unmount());
});

test('useReactiveSuspense: a first load that fails goes to the error boundary', async () => {
  const { client } = setup();
  let r!: TestRenderer.ReactTestRenderer;
  await act(async () => {
    r = TestRenderer.create(page(client, 'secret'));
    await flush();
  });
  await act(async () => {
    await flush();
  });
  assert.deepEqual((r.toJSON() as TestRenderer.ReactTestRendererJSON).children, ['boundary: forbidden']);
  await act(async () => r.unmount());
});
