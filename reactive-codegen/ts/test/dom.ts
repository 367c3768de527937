// A DOM (happy-dom) installed as globals before anything that reads them at load time (Vue's DOM
// renderer keeps `document` when it loads): import this module first.
// (Untyped import: happy-dom's declarations need newer Node types than the tests use.)
import type { Agent } from './fixtures/procedures';
import { FakeClock, FakeEventSource, FakeServer, ok, pageClient } from './helpers';

const happyDom = 'happy-dom';
const { Window } = (await import(happyDom)) as { Window: new (o: { url: string }) => HappyWindow };

export interface HappyWindow {
  document: Document;
  happyDOM: { abort(): Promise<void>; close(): Promise<void> };
}

export const win = new Window({ url: 'http://localhost/' });
const names = ['window', 'document', 'navigator', 'Node', 'Element', 'HTMLElement', 'SVGElement', 'Text', 'Comment'];
for (const k of [...names, 'HTMLTemplateElement', 'DocumentFragment', 'Event', 'MouseEvent'])
  Object.defineProperty(globalThis, k, {
    value: k == 'window' ? win : (win as unknown as Record<string, unknown>)[k],
    configurable: true,
    writable: true,
  });

/**
 * A page's client against a fake server of org `o1`'s agents (`agents.findMany`, `agents.create`),
 * stopped with the DOM when the test ends.
 */
export function domPage(t: { after(fn: () => Promise<void>): void }) {
  const server = new FakeServer();
  const state = { agents: [agent('a1')], eventId: 100 };
  server.on('/rpc/agents.findMany', (c) =>
    ok((c.body as { organizationId: string }).organizationId == 'o1' ? state.agents : [], String(state.eventId)),
  );
  server.on('/rpc/agents.create', (c) => {
    state.agents = [...state.agents, agent('a2', (c.body as { name: string }).name)];
    return ok(state.agents[1], String(++state.eventId));
  });
  const clock = new FakeClock();
  const client = pageClient(server, clock);
  t.after(async () => {
    client.stop();
    await win.happyDOM.abort();
    await win.happyDOM.close();
  });
  return { server, state, clock, client };
}

export const agent = (id: string, name = id): Agent => ({ id, organizationId: 'o1', name, active: true });

/** The stream opens; a1 is renamed Ada and the list's invalidation arrives. Returns the stream. */
export async function renameOverTheStream(page: ReturnType<typeof domPage>): Promise<FakeEventSource> {
  const es = FakeEventSource.last;
  es.ready('100');
  page.state.agents = [agent('a1', 'Ada')];
  page.state.eventId = 101;
  es.emit('invalidate', { eventId: '101', tables: ['agent'], keys: {}, requiresAck: false, queries: ['agents.findMany:{"organizationId":"o1"}'] });
  await page.clock.advance(10);
  return es;
}
