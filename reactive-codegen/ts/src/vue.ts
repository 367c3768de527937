// Entry point `@reactive/client/vue`: the Vue 3 binding on the same core as the React one
// (`subscribe` / `getSnapshot`). `useReactive` returns refs; the input may be a ref or a getter,
// and a new input (by canonical key) moves the subscription. Typed by the procedure map through
// `createVueHooks<Procedures>()`.

import {
  computed,
  inject,
  shallowRef,
  toValue,
  watch,
  type App,
  type ComputedRef,
  type InjectionKey,
  type MaybeRefOrGetter,
} from 'vue';
import type { RpcError } from './client.js';
import { LOADING, type MutateOptions, type QuerySnapshot, type ReactiveClient } from './core.js';
import type { AnyProcedures, InputOf, MutationName, OutputOf, QueryName } from './types.js';
import { queryKey } from './util.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyClient = ReactiveClient<any>;
const KEY: InjectionKey<AnyClient> = Symbol('reactive');

/** A Vue plugin providing the client: `app.use(reactivePlugin(client))`. */
export const reactivePlugin = (client: AnyClient) => ({
  install: (app: App) => void app.provide(KEY, client),
});

function useClient(): AnyClient {
  const c = inject(KEY, null);
  if (!c) throw new Error('reactive: no client: app.use(reactivePlugin(client))');
  return c;
}

/** What `useReactive` returns: the snapshot's fields as refs. */
export interface VueReactiveResult<T> {
  data: ComputedRef<T | undefined>;
  error: ComputedRef<RpcError | undefined>;
  isLoading: ComputedRef<boolean>;
  isStale: ComputedRef<boolean>;
}

/** Live data of a query (untyped form; prefer `createVueHooks<Procedures>()`). */
export function useReactive<P = AnyProcedures, K extends QueryName<P> = QueryName<P>>(
  name: K,
  input: MaybeRefOrGetter<InputOf<P, K>>,
): VueReactiveResult<OutputOf<P, K>> {
  const client = useClient() as ReactiveClient<P>;
  const snap = shallowRef<QuerySnapshot<OutputOf<P, K>>>(LOADING);
  // Mounted while the component's scope lives; moved when the input's canonical key changes.
  watch(
    () => queryKey(name, toValue(input)),
    (_key, _old, onCleanup) => {
      const i = toValue(input);
      const update = (): void => void (snap.value = client.getSnapshot(name, i));
      update();
      onCleanup(client.subscribe(name, i, update));
    },
    { immediate: true },
  );
  return {
    data: computed(() => snap.value.data),
    error: computed(() => snap.value.error),
    isLoading: computed(() => snap.value.isLoading),
    isStale: computed(() => snap.value.isStale),
  };
}

/** What `useReactiveMutation` returns. */
export interface VueMutationResult<I, O> {
  mutateAsync: (input: I) => Promise<O>;
  /** Errors go to `error`, not thrown. */
  mutate: (input: I) => void;
  data: ComputedRef<O | undefined>;
  error: ComputedRef<RpcError | undefined>;
  isPending: ComputedRef<boolean>;
}

/** A mutation with optional optimistic updates (untyped form). */
export function useReactiveMutation<P = AnyProcedures, K extends MutationName<P> = MutationName<P>>(
  name: K,
  options?: MutateOptions<P, K>,
): VueMutationResult<InputOf<P, K>, OutputOf<P, K>> {
  const client = useClient() as ReactiveClient<P>;
  const state = shallowRef<{ data?: OutputOf<P, K> | undefined; error?: RpcError | undefined; pending: number }>({
    pending: 0,
  });
  const mutateAsync = async (input: InputOf<P, K>): Promise<OutputOf<P, K>> => {
    state.value = { ...state.value, pending: state.value.pending + 1 };
    try {
      const data = await client.mutate(name, input, options);
      state.value = { data, pending: state.value.pending - 1 };
      return data;
    } catch (e) {
      state.value = { data: state.value.data, error: e as RpcError, pending: state.value.pending - 1 };
      throw e;
    }
  };
  return {
    mutateAsync,
    mutate: (input) => void mutateAsync(input).catch(() => undefined),
    data: computed(() => state.value.data),
    error: computed(() => state.value.error),
    isPending: computed(() => state.value.pending > 0),
  };
}

/** The Vue composables typed by a procedure map. */
export interface VueHooks<P> {
  useReactive<K extends QueryName<P>>(name: K, input: MaybeRefOrGetter<InputOf<P, K>>): VueReactiveResult<OutputOf<P, K>>;
  useReactiveMutation<K extends MutationName<P>>(
    name: K,
    options?: MutateOptions<P, K>,
  ): VueMutationResult<InputOf<P, K>, OutputOf<P, K>>;
}

/** `export const { useReactive, useReactiveMutation } = createVueHooks<Procedures>();` */
export function createVueHooks<P>(): VueHooks<P> {
  return { useReactive, useReactiveMutation } as VueHooks<P>;
}
