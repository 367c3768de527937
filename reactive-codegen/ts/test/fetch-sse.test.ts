import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFetchEventSource } from '../src/fetch-sse';
import { flush } from './helpers';

/** A fetch whose responses are streams the test writes to. */
function streamingFetch() {
  const calls: { url: string; headers: Record<string, string> }[] = [];
  const writers: ReadableStreamDefaultController<Uint8Array>[] = [];
  let status = 200;
  const f = (async (url: string, init: { headers: Record<string, string> }) => {
    calls.push({ url, headers: init.headers });
    if (status !== 200) return new Response('{"error":{"code":"unauthorized"}}', { status });
    const body = new ReadableStream<Uint8Array>({ start: (c) => void writers.push(c) });
    return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
  }) as unknown as typeof fetch;
  const enc = new TextEncoder();
  return {
    f,
    calls,
    write: (s: string) => writers[writers.length - 1]!.enqueue(enc.encode(s)),
    end: () => writers[writers.length - 1]!.close(),
    setStatus: (s: number) => (status = s),
  };
}

test('parses SSE frames over fetch, sends the token and resumes with Last-Event-ID', async () => {
  const s = streamingFetch();
  const ES = createFetchEventSource({ getToken: () => 'tok', fetch: s.f, retry: 5 });
  const es = new ES('/events?subscribe=a');
  const got: [string, string, string | undefined][] = [];
  for (const t of ['ready', 'invalidate', 'reset']) es.addEventListener(t, (ev) => got.push([t, ev.data, ev.lastEventId]));
  let errors = 0;
  es.onerror = () => errors++;
  await flush();
  assert.equal(s.calls[0]!.headers.authorization, 'Bearer tok');
  assert.equal(s.calls[0]!.headers.accept, 'text/event-stream');
  s.write('retry: 10\n\nevent: ready\ndata: {"connectionId":"c1","eventId":"5"}\n\n: ping\n\n');
  s.write('id: 7\nevent: invalidate\ndata: {"eventId":"7",');
  await flush();
  assert.equal(es.readyState, 1);
  assert.deepEqual(got, [['ready', '{"connectionId":"c1","eventId":"5"}', '']]);
  s.write('"queries":["a"]}\r\n\r\nevent: invalidate\ndata: {"eventId":"7"}\n\n');
  await flush();
  assert.deepEqual(got.slice(1), [
    ['invalidate', '{"eventId":"7","queries":["a"]}', '7'],
    ['invalidate', '{"eventId":"7"}', '7'], // a re-send without id keeps the last id
  ]);
  s.end();
  await flush();
  assert.equal(errors, 1);
  assert.equal(es.readyState, 0, 'reconnecting');
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(s.calls.length, 2);
  assert.equal(s.calls[1]!.headers['last-event-id'], '7');
  es.close();
});

test('an HTTP error closes the stream (the runtime decides when to retry)', async () => {
  const s = streamingFetch();
  s.setStatus(401);
  const ES = createFetchEventSource({ fetch: s.f, retry: 5 });
  const es = new ES('/events');
  let errors = 0;
  es.onerror = () => errors++;
  await flush();
  assert.equal(errors, 1);
  assert.equal(es.readyState, 2);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(s.calls.length, 1, 'no automatic retry after an HTTP error');
});

test('heartbeat comments are reported as `ping` events, so the runtime can tell a live stream from a dead one', async () => {
  const s = streamingFetch();
  const ES = createFetchEventSource({ fetch: s.f });
  const es = new ES('/events');
  let pings = 0;
  es.addEventListener('ping', () => pings++);
  await flush();
  s.write(': ping\n\n');
  await flush();
  assert.equal(pings, 1);
  es.close();
});
