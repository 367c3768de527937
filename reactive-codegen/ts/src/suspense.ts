// Optional entry point: `useReactiveSuspense`, a query hook for React Suspense. The component
// suspends until the query has data and then always has it (`data: T`); a first load that fails
// goes to the nearest error boundary. Under a streaming server renderer it fetches on the server
// (pair it with `dehydrate`/`hydrate` of `./ssr`).

import type { RpcError } from './client.js';
import { createReactiveHooks, useReactive } from './react.js';
import type { AnyProcedures, InputOf, OutputOf, QueryName } from './types.js';

/** What `useReactiveSuspense` returns: the data is there. */
export interface UseReactiveSuspenseResult<T> {
  data: T;
  /** The data may be outdated (cached, invalidated and being refetched). */
  isStale: boolean;
  /** The last revalidation failed (the data shown is the previous one). */
  error: RpcError | undefined;
}

const useClient = createReactiveHooks<AnyProcedures>().useReactiveClient;
const ignore = (): void => undefined;

/** Live data of a query, suspending while it has none (untyped form; prefer `createSuspenseHooks`). */
export function useReactiveSuspense<P = AnyProcedures, K extends QueryName<P> = QueryName<P>>(
  name: K,
  input: InputOf<P, K>,
): UseReactiveSuspenseResult<OutputOf<P, K>> {
  const client = useClient();
  const snap = useReactive<P, K>(name, input);
  if (!snap.isLoading) {
    if (snap.data === undefined && snap.error) throw snap.error;
    return { data: snap.data as OutputOf<P, K>, isStale: snap.isStale, error: snap.error };
  }
  // Suspends: React renders again when the fetch settles (shared with any request in flight).
  throw client.fetch(name as QueryName<AnyProcedures>, input).then(ignore, ignore);
}

/** `useReactiveSuspense` typed by a procedure map. */
export interface SuspenseHooks<P> {
  useReactiveSuspense<K extends QueryName<P>>(name: K, input: InputOf<P, K>): UseReactiveSuspenseResult<OutputOf<P, K>>;
}

/** Typed hook: `export const { useReactiveSuspense } = createSuspenseHooks<Procedures>();` */
export function createSuspenseHooks<P>(): SuspenseHooks<P> {
  return { useReactiveSuspense } as SuspenseHooks<P>;
}
