// Entry point `@reactive/client/svelte`: Svelte stores on the same core as the React binding
// (`subscribe` / `getSnapshot`), for Svelte 5 (and 4): `$agents` in a component subscribes, and the
// query is mounted while the store has subscribers. No dependency on Svelte: a store is its
// `subscribe` contract. Typed by the procedure map through `createSvelteStores<Procedures>(client)`.

import type { RpcError } from './client.js';
import type { MutateOptions, QuerySnapshot, ReactiveClient } from './core.js';
import type { InputOf, MutationName, OutputOf, QueryName } from './types.js';

/** Svelte's store contract. */
export interface Readable<T> {
  subscribe(run: (value: T) => void): () => void;
}

/** A mutation's state, as a store, and its functions. */
export interface MutationStore<I, O> extends Readable<{ data: O | undefined; error: RpcError | undefined; isPending: boolean }> {
  mutateAsync(input: I): Promise<O>;
  /** Errors go to `error`, not thrown. */
  mutate(input: I): void;
}

/** The stores of a client, typed by its procedure map. */
export interface SvelteStores<P> {
  /** Live data of a query: a store of its snapshot, mounted while subscribed. */
  query<K extends QueryName<P>>(name: K, input: InputOf<P, K>): Readable<QuerySnapshot<OutputOf<P, K>>>;
  mutation<K extends MutationName<P>>(name: K, options?: MutateOptions<P, K>): MutationStore<InputOf<P, K>, OutputOf<P, K>>;
}

/** `export const stores = createSvelteStores(client);` then `const agents = stores.query(...)`. */
export function createSvelteStores<P>(client: ReactiveClient<P>): SvelteStores<P> {
  return {
    query: (name, input) => ({
      subscribe(run) {
        const update = (): void => run(client.getSnapshot(name, input));
        update();
        return client.subscribe(name, input, update);
      },
    }),
    mutation: (name, options) => {
      type S = { data: OutputOf<P, typeof name> | undefined; error: RpcError | undefined; isPending: boolean };
      let state: S = { data: undefined, error: undefined, isPending: false };
      let pending = 0;
      const runs = new Set<(s: S) => void>();
      const set = (s: Partial<S>): void => {
        state = { ...state, ...s, isPending: pending > 0 };
        for (const run of runs) run(state);
      };
      const mutateAsync = async (input: InputOf<P, typeof name>) => {
        pending++;
        set({});
        try {
          const data = await client.mutate(name, input, options);
          pending--;
          set({ data, error: undefined });
          return data;
        } catch (e) {
          pending--;
          set({ error: e as RpcError });
          throw e;
        }
      };
      return {
        subscribe(run) {
          runs.add(run);
          run(state);
          return () => void runs.delete(run);
        },
        mutateAsync,
        mutate: (input) => void mutateAsync(input).catch(() => undefined),
      };
    },
  };
}
