// Optional entry point: the API of TanStack Query / SWR over the same client: an imperative
// client (`QueryClient`: `invalidate`, `setData`, `getData`, `cancel`, `isFetching`) and hooks with
// their options and results (`useQuery`, `useMutation`). Not imported by the runtime: an app that
// does not import it does not ship it.

import * as React from 'react';
import type { RpcError } from './client.js';
import { ReactiveClient, type ClientOptions, type MutateOptions, type QuerySnapshot } from './core.js';
import { createReactiveHooks, useReactive } from './react.js';
import type { AnyProcedures, InputOf, MutationName, OutputOf, QueryName } from './types.js';
import { procedureOf, queryKey } from './util.js';

/** The reactive client with the imperative API of TanStack Query's `QueryClient`. */
export class QueryClient<P = AnyProcedures> extends ReactiveClient<P> {
  /** Whether a request for this query is in flight (listeners are told when it starts and ends). */
  isFetching<K extends QueryName<P>>(name: K, input: InputOf<P, K>): boolean {
    return !!this.queries.get(queryKey(name, input))?.fetching;
  }

  /** The data a query shows (optimistic updates applied), or `undefined`. */
  getData<K extends QueryName<P>>(name: K, input: InputOf<P, K>): OutputOf<P, K> | undefined {
    return this.getSnapshot(name, input).data;
  }

  /**
   * Sets a query's data as if the server had sent it (a value, or a function of the current
   * one): shown at once, stored, shared with other tabs; replaced by the next invalidation's refetch.
   */
  setData<K extends QueryName<P>>(
    name: K,
    input: InputOf<P, K>,
    data: OutputOf<P, K> | ((old: OutputOf<P, K> | undefined) => OutputOf<P, K>),
  ): void {
    const q = this.ensure(name, input);
    const d = typeof data == 'function' ? (data as (o: unknown) => unknown)(q.data) : data;
    this.applyResult(q, d, q.eventId, this.clock.now(), true);
  }

  /**
   * Invalidates a query, or every query of a procedure when `input` is omitted: stale at once,
   * mounted ones refetched now (a request in flight is followed by one more), the others
   * revalidated in the background (or when next used).
   */
  invalidate<K extends QueryName<P>>(name: K, input?: InputOf<P, K>): void {
    const key = input === undefined ? 0 : queryKey(name, input);
    this.recheck([...this.heldKeys()].filter((k) => (key ? k == key : procedureOf(k) == name)));
  }

  /**
   * `initialData`: a query that has no data (none fetched, none in the registry) shows this, as
   * stale data, until its first fetch replaces it. Not stored. Listeners are not told (it runs
   * during a render); hooks of the same query rendered next show it.
   */
  seed<K extends QueryName<P>>(name: K, input: InputOf<P, K>, data: OutputOf<P, K> | (() => OutputOf<P, K>)): void {
    const q = this.ensure(name, input);
    if ('data' in q || (data = call(data)) === undefined) return;
    q.data = data;
    q.stale = true;
    this.snap(q);
  }

  /** Retry options of one query (over the client's `retry`/`retryDelay`); `undefined` resets them. */
  setRetry<K extends QueryName<P>>(name: K, input: InputOf<P, K>, retry: RetryOptions | undefined): void {
    const q = this.ensure(name, input);
    const r = retry?.retry;
    q.retry = retry && { retry: r === false ? 0 : r === true ? Infinity : r, retryDelay: retry.retryDelay };
  }

  /** Cancels the requests in flight of a query, or of a procedure: their results are ignored. */
  cancel<K extends QueryName<P>>(name: K, input?: InputOf<P, K>): void {
    const key = input === undefined ? 0 : queryKey(name, input);
    for (const q of this.queries.values())
      if (q.fetching && (key ? q.key == key : q.procedure == name)) {
        q.fetching = undefined;
        this.notify(q);
      }
  }
}

/** Creates a `QueryClient` (the generated `createClient` makes a plain `ReactiveClient`). */
export function createQueryClient<P = AnyProcedures>(opts: ClientOptions<P> = {}): QueryClient<P> {
  return new QueryClient<P>(opts);
}

/** The imperative API, for any client (hooks get a plain `ReactiveClient` from the provider). */
const api = QueryClient.prototype as QueryClient<AnyProcedures>;

/** `placeholderData: keepPreviousData`: while the input changes, show the previous input's data. */
export const keepPreviousData = <T>(previous: T | undefined): T | undefined => previous;

/** How a failed fetch of a mounted query is retried (network errors and 5xx; never 4xx). */
export interface RetryOptions {
  /** Retries after a failure: a number, `false` (none) or `true` (no limit). Default: the client's (3). */
  retry?: number | boolean | undefined;
  /** First delay in ms, doubled for each further retry (at most 30 s), with jitter. Default: the client's (1000). */
  retryDelay?: number | undefined;
}

/** Options of `useQuery` (TanStack Query names). */
export interface QueryOptions<T, S = T> extends RetryOptions {
  /** `false`: nothing is fetched or subscribed; the query is not loading (`status: 'pending'`). */
  enabled?: boolean | undefined;
  /** Derives what the hook returns from the data (re-run when the data or the function changes). */
  select?: ((data: T) => S) | undefined;
  /**
   * Shown while the query has no data (`isPlaceholderData: true`), not stored: a value, or a
   * function of the data this hook showed before (for another input); `keepPreviousData`.
   */
  placeholderData?: T | ((previous: T | undefined) => T | undefined);
  /**
   * Seeds the client's cache when the query has no data: shown (stale) by every hook of the query,
   * also during server rendering, until the first fetch replaces it; not stored in the registry.
   */
  initialData?: (T | (() => T)) | undefined;
  /** Refetch when the window regains focus. Default `false`: the data is live already. */
  refetchOnWindowFocus?: boolean | undefined;
}

/** What `useQuery` returns. */
export interface QueryResult<S> extends QuerySnapshot<S> {
  /** `'pending'`: no data yet; `'error'`: the last fetch failed (data may still be shown); `'success'`. */
  status: 'pending' | 'error' | 'success';
  isPending: boolean;
  isSuccess: boolean;
  isError: boolean;
  /** A request for this query is in flight (first load, revalidation, refetch). */
  isFetching: boolean;
  /** `data` is `placeholderData`. */
  isPlaceholderData: boolean;
  /**
   * Invalidates the query and fetches it (a request in flight is followed by one more): resolves
   * with the data of the request it started or joined, rejects with an `RpcError`.
   */
  refetch: () => Promise<S>;
}

/** Callbacks of a mutation (TanStack Query names); `C` is what `onMutate` returns. */
export interface MutationCallbacks<I, O, C = unknown> {
  onSuccess?: ((data: O, variables: I, context: C | undefined) => unknown) | undefined;
  onError?: ((error: RpcError, variables: I, context: C | undefined) => unknown) | undefined;
  onSettled?: ((data: O | undefined, error: RpcError | undefined, variables: I, context: C | undefined) => unknown) | undefined;
}

/** Options of `useMutation`: `optimistic` updates and the callbacks. */
export interface MutationOptions<P, K extends MutationName<P>, C = unknown>
  extends MutateOptions<P, K>,
    MutationCallbacks<InputOf<P, K>, OutputOf<P, K>, C> {
  /** Runs before the mutation is sent; what it returns (or resolves to) is the callbacks' `context`. */
  onMutate?: ((variables: InputOf<P, K>) => C | Promise<C>) | undefined;
}

/** What `useMutation` returns (the state of the latest call). */
export interface MutationResult<I, O, C = unknown> {
  /** Runs the mutation; errors go to `error` and the callbacks, not thrown. */
  mutate: (variables: I, callbacks?: MutationCallbacks<I, O, C>) => void;
  /** Runs the mutation; resolves with its output, rejects with an `RpcError`. */
  mutateAsync: (variables: I, callbacks?: MutationCallbacks<I, O, C>) => Promise<O>;
  data: O | undefined;
  error: RpcError | undefined;
  /** The input of the latest call. */
  variables: I | undefined;
  status: 'idle' | 'pending' | 'success' | 'error';
  isIdle: boolean;
  isPending: boolean;
  isSuccess: boolean;
  isError: boolean;
  /** Back to `idle` (a call still running no longer updates the state). */
  reset: () => void;
}

const useClient = createReactiveHooks<AnyProcedures>().useReactiveClient;
const FOCUS = ['focus', 'visibilitychange'];
const call = <T>(v: T | (() => T)): T => (typeof v == 'function' ? (v as () => T)() : v);

/** A query with TanStack Query options (untyped form; prefer `createQueryHooks<Procedures>()`). */
export function useQuery<P = AnyProcedures, K extends QueryName<P> = QueryName<P>, S = OutputOf<P, K>>(
  name: K,
  input: InputOf<P, K>,
  options: QueryOptions<OutputOf<P, K>, S> = {},
): QueryResult<S> {
  type T = OutputOf<P, K>;
  const client = useClient();
  const { enabled = true, select, placeholderData, initialData, refetchOnWindowFocus, retry, retryDelay } = options;
  const key = queryKey(name, input);
  // Before the snapshot is read: the hook shows the seeded data in this very render.
  if (initialData !== undefined && enabled) api.seed.call(client, name, input, initialData);
  React.useEffect(() => {
    if (retry === undefined && retryDelay === undefined) return;
    api.setRetry.call(client, name, input, { retry, retryDelay });
    return () => api.setRetry.call(client, name, input, undefined);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, key, retry, retryDelay]);
  const snap = useReactive<P, K>(name, input, { enabled });
  const subscribe = React.useCallback(
    (cb: () => void) => (enabled ? client.subscribe(name, input, cb) : () => undefined),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [client, key, enabled],
  );
  const isFetching = React.useSyncExternalStore(
    subscribe,
    () => enabled && api.isFetching.call(client, name, input),
    () => false,
  );
  // The data this hook showed last (for `keepPreviousData`).
  const previous = React.useRef<T | undefined>(undefined);
  let data = snap.data as T | undefined;
  let isStale = snap.isStale;
  let isPlaceholderData = false;
  if (data !== undefined) previous.current = data;
  else if (initialData !== undefined) {
    data = call(initialData);
    isStale = true;
  } else if (placeholderData !== undefined) {
    data =
      typeof placeholderData == 'function'
        ? (placeholderData as (p: T | undefined) => T | undefined)(previous.current)
        : placeholderData;
    isPlaceholderData = data !== undefined;
  }
  const selected = React.useMemo(
    () => (select && data !== undefined ? select(data) : (data as S | undefined)),
    [data, select],
  );
  const refetch = React.useCallback(
    () => (api.invalidate.call(client, name, input), client.fetch(name, input)) as Promise<unknown>,
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [client, key],
  );
  React.useEffect(() => {
    if (!refetchOnWindowFocus || !enabled) return;
    // (`visibilitychange` bubbles from the document to the window. Focus often comes with it:
    // one refetch.)
    const onFocus = () =>
      globalThis.document?.visibilityState != 'hidden' &&
      !api.isFetching.call(client, name, input) &&
      void refetch().catch(() => undefined);
    for (const t of FOCUS) window.addEventListener(t, onFocus);
    return () => {
      for (const t of FOCUS) window.removeEventListener(t, onFocus);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [refetchOnWindowFocus, enabled, refetch]);
  const selectedRefetch = React.useCallback(
    async () => {
      const d = (await refetch()) as T;
      return select ? select(d) : (d as unknown as S);
    },
    [refetch, select],
  );
  const status = snap.error ? 'error' : data === undefined ? 'pending' : 'success';
  return {
    data: selected,
    error: snap.error,
    isLoading: snap.isLoading && data === undefined,
    isStale,
    status,
    isPending: status == 'pending',
    isSuccess: status == 'success',
    isError: status == 'error',
    isFetching,
    isPlaceholderData,
    refetch: selectedRefetch,
  };
}

interface MutationState {
  status: 'idle' | 'pending' | 'success' | 'error';
  data?: unknown | undefined;
  error?: RpcError | undefined;
  variables?: unknown | undefined;
}

/** A mutation with TanStack Query callbacks and state (untyped form; prefer `createQueryHooks`). */
export function useMutation<P = AnyProcedures, K extends MutationName<P> = MutationName<P>, C = unknown>(
  name: K,
  options?: MutationOptions<P, K, C>,
): MutationResult<InputOf<P, K>, OutputOf<P, K>, C> {
  type I = InputOf<P, K>;
  type O = OutputOf<P, K>;
  const client = useClient();
  const opts = React.useRef(options);
  opts.current = options;
  const [state, setState] = React.useState<MutationState>({ status: 'idle' });
  // The latest call: only it updates the state (`reset` moves past it).
  const latest = React.useRef(0);
  const mutateAsync = React.useCallback(
    async (variables: I, callbacks: MutationCallbacks<I, O, C> = {}): Promise<O> => {
      const id = ++latest.current;
      const set = (s: MutationState) => id == latest.current && setState(s);
      const o = opts.current ?? {};
      set({ status: 'pending', variables });
      let context: C | undefined;
      let data: O | undefined;
      let error: RpcError | undefined;
      try {
        context = await o.onMutate?.(variables);
        data = (await client.mutate(name, variables as never, o as MutateOptions<AnyProcedures, string>)) as O;
        await o.onSuccess?.(data, variables, context);
        await callbacks.onSuccess?.(data, variables, context);
        set({ status: 'success', data, variables });
        return data;
      } catch (e) {
        error = e as RpcError;
        data = undefined;
        set({ status: 'error', error, variables });
        await o.onError?.(error, variables, context);
        await callbacks.onError?.(error, variables, context);
        throw e;
      } finally {
        await o.onSettled?.(data, error, variables, context);
        await callbacks.onSettled?.(data, error, variables, context);
      }
    },
    [client, name],
  );
  const mutate = React.useCallback(
    (variables: I, callbacks?: MutationCallbacks<I, O, C>) => void mutateAsync(variables, callbacks).catch(() => undefined),
    [mutateAsync],
  );
  const reset = React.useCallback(() => {
    latest.current++;
    setState({ status: 'idle' });
  }, []);
  const { status } = state;
  return {
    mutate,
    mutateAsync,
    data: state.data as O | undefined,
    error: state.error,
    variables: state.variables as I | undefined,
    status,
    isIdle: status == 'idle',
    isPending: status == 'pending',
    isSuccess: status == 'success',
    isError: status == 'error',
    reset,
  };
}

/** `useQuery` and `useMutation` typed by a procedure map. */
export interface QueryHooks<P> {
  useQuery<K extends QueryName<P>, S = OutputOf<P, K>>(
    name: K,
    input: InputOf<P, K>,
    options?: QueryOptions<OutputOf<P, K>, S>,
  ): QueryResult<S>;
  useMutation<K extends MutationName<P>, C = unknown>(
    name: K,
    options?: MutationOptions<P, K, C>,
  ): MutationResult<InputOf<P, K>, OutputOf<P, K>, C>;
}

/** Typed `useQuery` / `useMutation`: `export const { useQuery, useMutation } = createQueryHooks<Procedures>();` */
export function createQueryHooks<P>(): QueryHooks<P> {
  return { useQuery, useMutation } as QueryHooks<P>;
}
