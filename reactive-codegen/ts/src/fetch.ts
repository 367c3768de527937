// Entry point `@reactive/client/fetch`: a plain fetch client for code that is not a React page:
// Node scripts, server-side calls, tests. No cache, no real time: one request per call, typed by
// the procedure map, failing with the hooks' `RpcError`.

import { RpcError, Transport, type RpcResult, type TransportOptions } from './client.js';
import type { AnyProcedures, InputOf, MutationName, OutputOf, QueryName } from './types.js';

export { RpcError, type TransportOptions };

/** A typed RPC client. */
export interface FetchClient<P> {
  /** Runs a query; resolves with its output, rejects with an `RpcError`. */
  query<K extends QueryName<P>>(name: K, input: InputOf<P, K>): Promise<OutputOf<P, K>>;
  /** Runs a mutation; resolves with its output, rejects with an `RpcError`. */
  mutate<K extends MutationName<P>>(name: K, input: InputOf<P, K>): Promise<OutputOf<P, K>>;
  /** Runs a procedure and returns its output with the watermark (`eventId`) the server sent. */
  call<K extends QueryName<P> | MutationName<P>>(name: K, input: InputOf<P, K>): Promise<RpcResult<OutputOf<P, K>>>;
}

/**
 * A plain fetch client: `createFetchClient<Procedures>({ baseUrl: 'http://127.0.0.1:3000/api',
 * getToken })`. In Node `baseUrl` must be absolute; `fetch` defaults to the global one.
 */
export function createFetchClient<P = AnyProcedures>(opts: TransportOptions = {}): FetchClient<P> {
  const t = new Transport(opts);
  return {
    query: async (name, input) => (await t.call(name, input, true)).data as never,
    mutate: async (name, input) => (await t.mutate(name, input)).data as never,
    call: (name, input) => t.call(name, input) as never,
  };
}
