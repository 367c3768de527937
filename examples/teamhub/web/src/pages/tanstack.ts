// `tanstack.html`: the agents list of the signed-in organization as a TanStack Query query
// (`@tanstack/query-core`, no framework), kept live by the reactive bridge. Exercised in
// Chromium by the e2e suite.
import { QueryClient, QueryObserver } from '@tanstack/query-core';
import { createTanstackBridge } from '@reactive/client/tanstack';
import { client, org } from './client';

const queryClient = new QueryClient();
const bridge = createTanstackBridge(client);
bridge.connect(queryClient);

const root = document.getElementById('root')!;
const list = document.createElement('ul');
list.dataset.testid = 'agents';
root.append(list);

// The DOM shows only what the QueryClient holds: a live update must reach TanStack's cache.
new QueryObserver(queryClient, bridge.options('agents.findMany', { organizationId: org })).subscribe(({ data }) => {
  list.replaceChildren(
    ...(data ?? []).map((a) => {
      const li = document.createElement('li');
      li.dataset.testid = 'agent-item';
      li.dataset.agentId = a.id;
      const name = document.createElement('span');
      name.dataset.testid = 'agent-name';
      name.textContent = a.name;
      li.append(name);
      return li;
    }),
  );
});
