// An app's use of the generated client and the package, compiled by scripts/strict.mjs under
// strict settings with `moduleResolution` Bundler and NodeNext (next to the generated files).
import * as React from 'react';
import { RpcError, type QuerySnapshot } from '@reactive/client';
import { createFetchClient } from '@reactive/client/fetch';
import { createQueryHooks, keepPreviousData } from '@reactive/client/query';
import { dehydrate, hydrate } from '@reactive/client/ssr';
import { createSuspenseHooks } from '@reactive/client/suspense';
import { createTanstackBridge } from '@reactive/client/tanstack';
import { createVueHooks } from '@reactive/client/vue';
import { createSvelteStores } from '@reactive/client/svelte';
import { ReactiveProvider, createClient, useReactive, useReactiveMutation, type Procedures } from './generated/index.js';

const client = createClient({ baseUrl: '/api', tenant: 'org-1' });
const { useQuery } = createQueryHooks<Procedures>();
const { useReactiveSuspense } = createSuspenseHooks<Procedures>();

export function Agents(props: { org: string }): React.ReactElement {
  const list: QuerySnapshot<unknown> = useReactive('agents.findMany', { organizationId: props.org });
  const q = useQuery('agents.findMany', { organizationId: props.org }, { placeholderData: keepPreviousData, retry: 2 });
  const s = useReactiveSuspense('tools.available', { organizationId: props.org });
  const create = useReactiveMutation('agents.create', {
    optimistic: (input, cache) => cache.update('agents.findMany', { organizationId: input.organizationId }, (old) => old),
  });
  const names = q.data?.map((a) => a.name).join(', ') ?? '';
  const error = list.error instanceof RpcError ? list.error.code : '';
  return React.createElement('p', { onClick: () => create.mutate({ organizationId: props.org, name: 'x' }) }, names, error, s.data.length);
}

export const App = (): React.ReactElement => React.createElement(ReactiveProvider, { client }, React.createElement(Agents, { org: 'org-1' }));
hydrate(client, dehydrate(client));

export async function script(): Promise<number> {
  const api = createFetchClient<Procedures>({ baseUrl: 'http://127.0.0.1:3000/api', getToken: () => 'token-org-1' });
  const agents = await api.query('agents.findMany', { organizationId: 'org-1' });
  return agents.length;
}

export const bridge = createTanstackBridge(client);
export const listOptions = bridge.options('agents.findMany', { organizationId: 'org-1' });

// Vue: the composables typed by the same map.
const vue = createVueHooks<Procedures>();
export function useAgentNames(org: () => string) {
  const { data } = vue.useReactive('agents.findMany', () => ({ organizationId: org() }));
  return () => data.value?.map((a) => a.name) ?? [];
}

// Svelte: stores typed by the same map.
const stores = createSvelteStores(client);
export const tools = stores.query('tools.available', { organizationId: 'org-1' });
export const createAgent = stores.mutation('agents.create');
