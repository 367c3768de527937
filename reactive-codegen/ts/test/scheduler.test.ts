import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Priority, Scheduler } from '../src/scheduler';
import { FakeClock } from './helpers';

test('mounted at once, hints after 1 s, background after 2 s', async () => {
  const clock = new FakeClock();
  const start = clock.t;
  const ran: [string, number][] = [];
  const s = new Scheduler({ clock, run: async (k) => void ran.push([k, clock.t - start]) });
  s.schedule('bg1', Priority.Background);
  s.schedule('hint1', Priority.Hint);
  s.schedule('m1', Priority.Mounted);
  s.schedule('bg2', Priority.Background);
  assert.deepEqual(ran, [['m1', 0]]);
  await clock.advance(999);
  assert.equal(ran.length, 1);
  await clock.advance(1);
  assert.deepEqual(ran.slice(1), [['hint1', 1000]]);
  await clock.advance(999);
  assert.equal(ran.length, 2);
  await clock.advance(1);
  assert.deepEqual(ran.slice(2), [['bg1', 2000], ['bg2', 2000]]);
});

test('a key queued at several levels runs once, at the most urgent', async () => {
  const clock = new FakeClock();
  const ran: string[] = [];
  const s = new Scheduler({ clock, run: async (k) => void ran.push(k) });
  s.schedule('a', Priority.Background);
  s.schedule('a', Priority.Hint);
  s.schedule('a', Priority.Background);
  await clock.advance(1000);
  assert.deepEqual(ran, ['a']);
  await clock.advance(5000);
  assert.deepEqual(ran, ['a']);
  s.schedule('b', Priority.Background);
  s.schedule('b', Priority.Mounted);
  assert.deepEqual(ran, ['a', 'b']);
  await clock.advance(5000);
  assert.deepEqual(ran, ['a', 'b']);
});

test('cancel drops a queued key; background waits for hints; concurrency is bounded', async () => {
  const clock = new FakeClock();
  const ran: string[] = [];
  const gates: (() => void)[] = [];
  const s = new Scheduler({
    clock,
    concurrency: 2,
    run: (k) => {
      ran.push(k);
      return new Promise<void>((r) => gates.push(r));
    },
  });
  s.schedule('x', Priority.Background);
  s.cancel('x');
  for (const k of ['h1', 'h2', 'h3']) s.schedule(k, Priority.Hint);
  s.schedule('b1', Priority.Background);
  await clock.advance(2000);
  assert.deepEqual(ran, ['h1', 'h2'], 'two at a time');
  gates.shift()!();
  await clock.advance(0);
  assert.deepEqual(ran, ['h1', 'h2', 'h3'], 'hint before background');
  gates.shift()!();
  await clock.advance(0);
  assert.deepEqual(ran, ['h1', 'h2', 'h3', 'b1']);
  assert.ok(!ran.includes('x'));
});

test('hint and background delays (the revalidation after a reset included) have jitter', async () => {
  Math.random = () => 0.9;
  try {
    const clock = new FakeClock();
    const ran: [string, number][] = [];
    const s = new Scheduler({ clock, run: async (k) => void ran.push([k, clock.t - t0]) });
    const t0 = clock.t;
    s.schedule('b', Priority.Background);
    await clock.advance(2799);
    assert.equal(ran.length, 0);
    await clock.advance(1);
    assert.deepEqual(ran, [['b', 2800]]);
  } finally {
    Math.random = () => 0.5;
  }
});
