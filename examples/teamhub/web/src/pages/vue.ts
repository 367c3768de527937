// `vue.html`: the agents list of the signed-in organization through the Vue 3 binding, live
// from the event stream. Exercised in Chromium by the e2e suite. A render function, so the page
// needs no Vue compiler plugin.
import { createApp, defineComponent, h } from 'vue';
import { createVueHooks, reactivePlugin } from '@reactive/client/vue';
import type { Procedures } from '../generated/procedures';
import { client, org } from './client';

const { useReactive } = createVueHooks<Procedures>();

const Agents = defineComponent(() => {
  const agents = useReactive('agents.findMany', { organizationId: org });
  return () =>
    h(
      'ul',
      { 'data-testid': 'agents' },
      (agents.data.value ?? []).map((a) =>
        h('li', { key: a.id, 'data-testid': 'agent-item', 'data-agent-id': a.id }, [
          h('span', { 'data-testid': 'agent-name' }, a.name),
        ]),
      ),
    );
});

createApp(Agents).use(reactivePlugin(client)).mount('#root');
