// React binding: `useReactive`, `useReactiveMutation`, `useReactivePriorities` and a provider.
// Safe to import and render on the server: hooks render `isLoading` there and nothing starts.

import * as React from 'react';
import type { RpcError } from './client.js';
import { LOADING, ReactiveClient, type MutateOptions, type QuerySnapshot } from './core.js';
import type { AnyProcedures, InputOf, MutationName, OutputOf, QueryName, QueryRef } from './types.js';
import { canonicalJson, queryKey } from './util.js';

export { createReactiveClient, ReactiveClient } from './core.js';
export type { ClientOptions, QuerySnapshot, OptimisticCache, MutateOptions } from './core.js';
export { RpcError } from './client.js';

/** What `useReactive` returns. */
export type UseReactiveResult<T> = QuerySnapshot<T>;

/** What `useReactiveMutation` returns. */
export interface UseReactiveMutationResult<I, O> {
  /** Runs the mutation; resolves with its output, rejects with an `RpcError`. */
  mutateAsync: (input: I) => Promise<O>;
  /** Runs the mutation; errors are reported in `error` instead of thrown. */
  mutate: (input: I) => void;
  data: O | undefined;
  error: RpcError | undefined;
  isPending: boolean;
}

const ClientContext = React.createContext<ReactiveClient<unknown> | null>(null);
let defaultClient: ReactiveClient<unknown> | null = null;

/** A client of any procedure map (`ReactiveClient<P>` is invariant in `P`). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyReactiveClient = ReactiveClient<any>;

/** Sets the client hooks use when no `ReactiveProvider` is above them. */
export function setDefaultClient(client: AnyReactiveClient | null): void {
  defaultClient = client as ReactiveClient<unknown> | null;
}

/** Provides a client to the hooks below it. */
export function ReactiveProvider(props: { client: AnyReactiveClient; children?: React.ReactNode }) {
  return React.createElement(ClientContext.Provider, { value: props.client as ReactiveClient<unknown> }, props.children);
}

function useClient<P>(): ReactiveClient<P> {
  const c = React.useContext(ClientContext) ?? defaultClient;
  if (!c) throw new Error('reactive: no ReactiveProvider');
  return c as unknown as ReactiveClient<P>;
}

/** A disabled query: not loading, nothing fetched. */
const IDLE: QuerySnapshot<never> = { ...LOADING, isLoading: false };

/** The hooks, typed by a procedure map. Generated code exports `createReactiveHooks<Procedures>()`. */
export interface ReactiveHooks<P> {
  /**
   * Live data of a query: cached data at once (stale), then revalidated and kept fresh in real
   * time. `enabled: false`: nothing is fetched or subscribed, and the query is not loading.
   */
  useReactive<K extends QueryName<P>>(
    name: K,
    input: InputOf<P, K>,
    options?: { enabled?: boolean },
  ): UseReactiveResult<OutputOf<P, K>>;
  /** A mutation with optional optimistic updates (kept until the server's invalidation arrives). */
  useReactiveMutation<K extends MutationName<P>>(
    name: K,
    options?: MutateOptions<P, K>,
  ): UseReactiveMutationResult<InputOf<P, K>, OutputOf<P, K>>;
  /** Page hints: queries this page will likely need, revalidated after the mounted ones (1 s). */
  useReactivePriorities(refs: ReadonlyArray<QueryRef<P>>): void;
  /** The client in context. */
  useReactiveClient(): ReactiveClient<P>;
}

/** Live data of a query (untyped form; prefer the typed hooks of `createReactiveHooks`). */
export function useReactive<P = AnyProcedures, K extends QueryName<P> = QueryName<P>>(
  name: K,
  input: InputOf<P, K>,
  options?: { enabled?: boolean },
): UseReactiveResult<OutputOf<P, K>> {
  const client = useClient<P>();
  const key = queryKey(name, input);
  const enabled = options?.enabled !== false;
  // The input object may be a new one each render: everything below depends on its canonical key.
  const subscribe = React.useCallback(
    (cb: () => void) => (enabled ? client.subscribe(name, input, cb) : () => undefined),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [client, key, enabled],
  );
  // Server rendering and hydration (`server` set) show only data fetched or hydrated in this page
  // (`./ssr`), so both render the same: never the browser's registry.
  const getSnapshot = React.useCallback(
    (server?: unknown) => (enabled ? client.getSnapshot(name, input, server) : IDLE),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [client, key, enabled],
  );
  return React.useSyncExternalStore(subscribe, getSnapshot, () => getSnapshot(1));
}

/** A mutation (untyped form; prefer the typed hooks of `createReactiveHooks`). */
export function useReactiveMutation<P = AnyProcedures, K extends MutationName<P> = MutationName<P>>(
  name: K,
  options?: MutateOptions<P, K>,
): UseReactiveMutationResult<InputOf<P, K>, OutputOf<P, K>> {
  const client = useClient<P>();
  const opts = React.useRef(options);
  opts.current = options;
  const [state, setState] = React.useState<{ data?: OutputOf<P, K> | undefined; error?: RpcError | undefined; pending: number }>({
    pending: 0,
  });
  const mutateAsync = React.useCallback(
    async (input: InputOf<P, K>) => {
      setState((s) => ({ ...s, pending: s.pending + 1 }));
      try {
        const data = await client.mutate(name, input, opts.current);
        setState((s) => ({ data, pending: s.pending - 1 }));
        return data;
      } catch (e) {
        setState((s) => ({ data: s.data, error: e as RpcError, pending: s.pending - 1 }));
        throw e;
      }
    },
    [client, name],
  );
  const mutate = React.useCallback((input: InputOf<P, K>) => void mutateAsync(input).catch(() => undefined), [mutateAsync]);
  return { mutateAsync, mutate, data: state.data, error: state.error, isPending: state.pending > 0 };
}

/** Page hints (untyped form). */
export function useReactivePriorities<P = AnyProcedures>(refs: ReadonlyArray<QueryRef<P>>): void {
  const client = useClient<P>();
  const sig = canonicalJson(refs);
  React.useEffect(
    // A new owner object per effect: its hints are removed on cleanup.
    () => client.setPriorities({}, refs),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [client, sig],
  );
}

/** Typed hooks for a procedure map (the same functions, typed by `P`). */
export function createReactiveHooks<P>(): ReactiveHooks<P> {
  return { useReactive, useReactiveMutation, useReactivePriorities, useReactiveClient: useClient } as ReactiveHooks<P>;
}
