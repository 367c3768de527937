// Entry point `@reactive/client/tanstack`: a bridge for apps that keep TanStack Query. A reactive
// query is an ordinary TanStack query (`useQuery(queries.options('agents.findMany', input))`)
// whose data comes through the reactive client, so its cache, watermarks, gap recovery, acks and
// polling all apply; `connect` makes every such query with observers live: when the event stream
// changes it, the client refetches it once and the new data is set into the `QueryClient`. Other
// TanStack queries are untouched, so an app adopts procedure by procedure. No dependency on
// TanStack: the `QueryClient` is used through the few methods below.

import type { ReactiveClient } from './core.js';
import type { InputOf, OutputOf, QueryName } from './types.js';

/** The first element of the keys of reactive queries in a `QueryClient`. */
export const REACTIVE_KEY = 'reactive';

/** The TanStack query key of a reactive query. */
export type ReactiveQueryKey<K extends string, I> = readonly [typeof REACTIVE_KEY, K, I];

/** A query of TanStack's `QueryCache`, as the bridge uses it. */
export interface TanstackQueryLike {
  queryKey: readonly unknown[];
  getObserversCount(): number;
  state: { data?: unknown };
}

/** TanStack's `QueryClient`, as the bridge uses it (`@tanstack/query-core` v5). */
export interface QueryClientLike {
  getQueryCache(): {
    getAll(): TanstackQueryLike[];
    subscribe(listener: (event: { type: string; query: TanstackQueryLike }) => void): () => void;
  };
  setQueryData(queryKey: readonly unknown[], data: unknown): unknown;
}

/** What `createTanstackBridge` returns. */
export interface TanstackBridge<P> {
  /** `{queryKey, queryFn}` of a reactive query, typed by the procedure map, for `useQuery`/`fetchQuery`. */
  options<K extends QueryName<P>>(
    name: K,
    input: InputOf<P, K>,
  ): { queryKey: ReactiveQueryKey<K, InputOf<P, K>>; queryFn: () => Promise<OutputOf<P, K>> };
  /** Keeps the reactive queries of `queryClient` that have observers live; returns the disconnect function. */
  connect(queryClient: QueryClientLike): () => void;
}

/** The bridge between a reactive client and TanStack Query. */
export function createTanstackBridge<P>(client: ReactiveClient<P>): TanstackBridge<P> {
  return {
    options: (name, input) => ({
      queryKey: [REACTIVE_KEY, name, input] as const,
      // Through the client: shared with its own revalidation in flight, stored with its watermark.
      queryFn: () => client.fetch(name, input),
    }),
    connect: (queryClient) => {
      const live = new Map<TanstackQueryLike, () => void>();
      const sync = (query: TanstackQueryLike, removed?: boolean): void => {
        const [tag, name, input] = query.queryKey as [unknown, QueryName<P>, InputOf<P, QueryName<P>>];
        if (tag !== REACTIVE_KEY) return;
        const watched = !removed && query.getObserversCount() > 0;
        const unmount = live.get(query);
        if (watched && !unmount)
          // Mounted in the client: subscribed on the stream, refetched on its invalidations.
          live.set(
            query,
            client.subscribe(name, input, () => {
              const { data } = client.getSnapshot(name, input);
              if (data !== undefined && data !== query.state.data) queryClient.setQueryData(query.queryKey, data);
            }),
          );
        else if (!watched && unmount) {
          unmount();
          live.delete(query);
        }
      };
      const cache = queryClient.getQueryCache();
      for (const query of cache.getAll()) sync(query);
      const off = cache.subscribe((event) => {
        if (event.type == 'observerAdded' || event.type == 'observerRemoved' || event.type == 'removed')
          sync(event.query, event.type == 'removed');
      });
      return () => {
        off();
        for (const unmount of live.values()) unmount();
        live.clear();
      };
    },
  };
}
