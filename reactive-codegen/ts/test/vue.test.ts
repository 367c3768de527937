// The Vue 3 binding (`src/vue.ts`): components mounted in happy-dom with a fake server and stream.
import { agent, domPage, renameOverTheStream, win } from './dom';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createApp, defineComponent, h, nextTick, ref } from 'vue';
import { createVueHooks, reactivePlugin } from '../src/vue';
import type { Procedures } from './fixtures/procedures';
import { FakeEventSource, flush } from './helpers';

const { useReactive, useReactiveMutation } = createVueHooks<Procedures>();

test('vue: useReactive refs: loading, data, live update, input change; useReactiveMutation optimistic', async (t) => {
  const page = domPage(t);
  const { server, clock, client } = page;
  const org = ref('o1');
  let create!: ReturnType<typeof useReactiveMutation<'agents.create'>>;
  const Agents = defineComponent({
    setup() {
      const { data, isLoading, isStale } = useReactive('agents.findMany', () => ({ organizationId: org.value }));
      create = useReactiveMutation('agents.create', {
        optimistic: (input, cache) =>
          cache.update('agents.findMany', { organizationId: input.organizationId }, (old) => [...(old ?? []), agent('tmp', input.name)]),
      });
      return () => h('p', isLoading.value ? 'loading' : data.value!.map((a) => a.name).join(',') + (isStale.value ? '*' : ''));
    },
  });
  const el = win.document.createElement('div');
  const app = createApp(Agents).use(reactivePlugin(client));
  app.mount(el);
  assert.equal(el.textContent, 'loading');
  await clock.advance(50);
  await nextTick();
  assert.equal(el.textContent, 'a1');
  // A live update from the stream.
  const es = await renameOverTheStream(page);
  await nextTick();
  assert.equal(el.textContent, 'Ada');
  // Optimistic create: shown at once, then the server's.
  server.hold();
  const done = create.mutateAsync({ organizationId: 'o1', name: 'Bo' });
  await nextTick();
  assert.equal(el.textContent, 'Ada,Bo');
  assert.equal(create.isPending.value, true);
  server.release();
  await done;
  await clock.advance(2500);
  await nextTick();
  assert.equal(el.textContent, 'Ada,Bo');
  assert.equal(create.data.value?.id, 'a2');
  // A new input moves the subscription.
  org.value = 'o2';
  await nextTick();
  await clock.advance(50);
  await flush();
  await nextTick();
  assert.equal(el.textContent, '');
  assert.equal(server.calls.filter((c) => (c.body as { organizationId?: string })?.organizationId == 'o2').length, 1);
  app.unmount();
  await clock.advance(300);
  assert.ok(FakeEventSource.instances.every((e) => e.closed), 'unmounted: stream closed');
});
