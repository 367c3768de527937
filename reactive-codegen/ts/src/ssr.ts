// Optional entry point: server rendering with data. On the server, a client per request fetches
// what the page needs (`prefetch`, or `useReactiveSuspense` under a streaming renderer) and
// `dehydrate` turns the results into JSON sent with the HTML; in the browser `hydrate` puts them
// into the client before `hydrateRoot`. The hooks render hydrated data during hydration (their
// server snapshot), so the markup matches, and it counts as fresh: nothing is fetched again. What
// changed between the render and the event stream's start is found from each result's watermark
// (one `/poll`, the gap recovery every fresh result gets).

import { ReactiveClient } from './core.js';
import type { AnyProcedures, InputOf, QueryName, QueryRef } from './types.js';
import { compareEventIds } from './util.js';

/** Query results rendered on the server: JSON-safe, sent with the HTML. */
export interface DehydratedState {
  /** `[procedure, input, data, eventId]` of each query the server fetched. */
  queries: [string, unknown, unknown, string | undefined][];
}

/** Access to the client's queries (protected members of `ReactiveClient`). */
class Hydration extends ReactiveClient<AnyProcedures> {
  dehydrate(): DehydratedState {
    const queries: DehydratedState['queries'] = [];
    for (const q of this.queries.values())
      if ('data' in q && q.revalidatedAt && !q.error) queries.push([q.procedure, q.input, q.data, q.eventId]);
    return { queries };
  }

  hydrate(state: DehydratedState | null | undefined): void {
    for (const [procedure, input, data, eventId] of state?.queries ?? []) {
      const q = this.ensure(procedure, input);
      // What this page fetched itself is at least as new: keep it.
      if (q.revalidatedAt && compareEventIds(q.eventId, eventId) >= 0) continue;
      this.applyResult(q, data, eventId, this.clock.now(), true);
    }
  }
}

const api = Hydration.prototype;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyClient = ReactiveClient<any>;

/** The results a client fetched (on the server: for this request), to send with the HTML. */
export function dehydrate(client: AnyClient): DehydratedState {
  return api.dehydrate.call(client as Hydration);
}

/**
 * Puts server-rendered results into a browser client, before `hydrateRoot`: the hooks render
 * them during hydration and do not fetch them again. Newer data the client already has is kept.
 */
export function hydrate(client: AnyClient, state: DehydratedState | null | undefined): void {
  api.hydrate.call(client as Hydration, state);
}

/** Fetches queries (in parallel) so that a render and `dehydrate` have them; failures are left to the hooks. */
export async function prefetch<P>(client: ReactiveClient<P>, refs: ReadonlyArray<QueryRef<P>>): Promise<void> {
  await Promise.all(
    refs.map(([name, input]) =>
      client.fetch(name as QueryName<P>, input as InputOf<P, QueryName<P>>).catch(() => undefined),
    ),
  );
}

/**
 * Embeds a dehydrated state in HTML (`<script>window.__REACTIVE__ = …</script>`): JSON with `<`
 * escaped, so data can't close the script element.
 */
export function serializeState(state: DehydratedState): string {
  return JSON.stringify(state).replace(/</g, '\\u003c');
}
