// One event stream per browser, not per tab. The tabs of one app, tenant and user elect a leader
// with a Web Lock; the leader holds the `Realtime` (EventSource, or polling) for the union of
// every tab's subscription and relays what it delivers (invalidations, resets, mode, coverage) to
// the other tabs over a BroadcastChannel. The leader acks: the server re-sends an unacked event on
// the leader's connection only. When the leader goes (tab closed, tenant or user switched, signed
// out), the next tab waiting for the lock opens the stream, resuming from the last event id it saw
// (replay fills the gap). Without Web Locks or BroadcastChannel: a stream per tab, as `Realtime`.
//
// Optional entry (not in the core bundle): `createReactiveClient({ stream: SharedStream })`; the
// generated `createClient` passes it.

import type { ChannelLike, LockManagerLike, SharedResult } from './core.js';
import { Realtime, type InvalidateEvent, type RealtimeMode, type StreamOptions } from './realtime.js';
import { entriesOf, globalOf, maxEventId, procedureOf } from './util.js';

/**
 * Channel messages. Leader → followers: `e` an invalidation, `r` a reset, `s` the stream's mode,
 * last id and coverage (per entry, the id from which its events are delivered), `h` hello (a new
 * leader: announce your subscriptions). Followers → leader: `u` a tab's subscription (`[]`: gone),
 * `w` a page came back (the leader, maybe hidden with its timers throttled, checks its stream).
 * Any tab → all: `q` a result it fetched (shown by tabs that hold the query).
 */
type Msg =
  | { t: 'q'; r: SharedResult }
  | { t: 'e'; ev: InvalidateEvent }
  | { t: 'r'; id?: string | undefined }
  | { t: 's'; m: RealtimeMode; id?: string | undefined; c: Record<string, string> }
  | { t: 'h' }
  | { t: 'w' }
  | { t: 'u'; id: string; e: string[] };

/**
 * Page events after which a follower leaves the union (`pagehide`) or rejoins it (`pageshow`), and
 * after which (page shown) the leader checks its stream, as it does for its own page.
 */
const PRESENCE = ['pagehide', 'pageshow', 'visibilitychange'];
let seq = 0;

/** Real time shared by the tabs of a browser: a `Realtime` in the leader, a relay in the others. */
export class SharedStream {
  private readonly o: StreamOptions;
  /** The stream, while this tab leads. */
  private rt?: Realtime | undefined;
  private ch?: ChannelLike | undefined;
  /** This tab's id (random: tabs don't share module state; `seq`: clients of one page). */
  private readonly id = Math.random() + '/' + ++seq;
  /** Subscriptions by tab: this tab's and, while it leads, the others'. */
  private subs = new Map<string, string[]>();
  /** Releases the lock (hands the stream over). */
  private release?: (() => void) | undefined;
  private stopped?: boolean | undefined;
  /** A follower's view of the leader's stream. */
  private m: RealtimeMode = 'off';
  private cov: Record<string, string> = {};
  /** Newest event id seen (own stream or relayed): where a new leader resumes. */
  private last?: string | undefined;

  constructor(o: StreamOptions) {
    this.o = o;
  }

  get mode(): RealtimeMode {
    return this.rt ? this.rt.mode : this.m;
  }

  start(lastEventId?: string): void {
    const o = this.o;
    this.see(lastEventId);
    // As the client's own cross-tab coordination: `null` turns it off, default the browser's.
    const locks = o.locks === null ? undefined : (o.locks ?? globalOf<{ locks?: LockManagerLike }>('navigator')?.locks);
    const BC = globalOf<new (n: string) => ChannelLike>('BroadcastChannel');
    // Per app (the stream's URL), tenant and user.
    const n = o.name + ' ' + o.transport.url('/events');
    const ch = (this.ch = o.channel ? o.channel(n) : o.channel !== null && BC ? new BC(n) : undefined);
    if (ch) ch.onmessage = (ev) => this.receive(ev.data as Msg);
    // Without either: a stream of our own (results still reach the other tabs if there is a channel).
    if (!ch || !locks) return this.lead();
    for (const t of PRESENCE) globalOf<EventTarget>('window')?.addEventListener?.(t, this.presence);
    this.announce();
    // Held until `stop` (or until the tab closes: the browser releases it). A stopped client's
    // request still waiting when the lock comes free lets it go at once.
    locks
      .request(n, () =>
        this.stopped
          ? Promise.resolve()
          : new Promise<void>((r) => {
              this.release = r;
              this.lead();
            }),
      )
      // Web Locks refused (e.g. an opaque origin): a stream of our own.
      .catch(() => this.stopped || this.rt || this.lead());
  }

  stop(): void {
    this.stopped = true;
    for (const t of PRESENCE) globalOf<EventTarget>('window')?.removeEventListener?.(t, this.presence);
    // Leaving: out of the union; as leader, followers wait for the next leader's stream.
    this.post({ t: 'u', id: this.id, e: [] });
    if (this.rt) this.post({ t: 's', m: 'connecting', id: this.last, c: {} });
    this.ch?.close();
    this.ch = undefined;
    this.rt?.stop();
    this.rt = undefined;
    this.release?.();
  }

  setSubscription(entries: string[]): void {
    this.subs.set(this.id, entries);
    if (this.rt) this.union();
    else this.announce();
  }

  share(r: SharedResult): void {
    this.post({ t: 'q', r });
  }

  coveredFrom(entry: string): string | undefined {
    return this.rt ? this.rt.coveredFrom(entry) : this.cov[entry];
  }

  catchUp(since: string | undefined, entries: string[]): ReturnType<Realtime['catchUp']> {
    // A one-off `/poll` needs no stream: an unstarted `Realtime` makes the request.
    return (this.rt ?? new Realtime(this.o)).catchUp(since, entries);
  }

  private see(id: string | undefined): void {
    this.last = maxEventId(this.last, id);
  }

  private post(m: Msg): void {
    try {
      this.ch?.postMessage(m);
    } catch {
      /* not cloneable (e.g. `setData` with functions): the other tabs refetch it when they need it */
    }
  }

  private announce(): void {
    this.post({ t: 'u', id: this.id, e: this.subs.get(this.id) ?? [] });
  }

  private presence = (ev: Event): void => {
    if (ev.type == 'pagehide') return this.post({ t: 'u', id: this.id, e: [] });
    if (ev.type == 'pageshow') this.announce();
    if (!this.rt && !globalOf<{ hidden?: boolean }>('document')?.hidden) this.post({ t: 'w' });
  };

  /** This tab got the lock: open the stream for everyone, from the last id seen. */
  private lead(): void {
    const o = this.o;
    this.subs = new Map([[this.id, this.subs.get(this.id) ?? []]]);
    const rt = (this.rt = new Realtime({
      ...o,
      // Here first, then the other tabs.
      onInvalidate: (ev) => {
        this.see(ev.eventId);
        o.onInvalidate(ev);
        this.post({ t: 'e', ev });
      },
      onReset: (id) => {
        this.see(id);
        o.onReset(id);
        this.post({ t: 'r', id });
      },
      onReady: () => {
        o.onReady?.();
        this.status();
      },
      onStatus: (m, id) => {
        this.see(id);
        o.onStatus?.(m, id);
        this.status();
      },
    }));
    this.union();
    rt.start(this.last);
    this.post({ t: 'h' }); // the others announce their subscriptions (within the connect debounce)
  }

  /** The stream subscribes to every tab's entries (compacted as one tab's are). */
  private union(): void {
    this.rt!.setSubscription(this.entries());
    this.status();
  }

  /** Tells followers the stream's mode, last id and coverage. */
  private status(): void {
    const rt = this.rt;
    if (!rt) return;
    const c: Record<string, string> = {};
    for (const e of this.entries()) {
      const from = rt.coveredFrom(e);
      if (from) c[e] = from;
    }
    this.post({ t: 's', m: rt.mode, id: rt.lastEventId, c });
  }

  /**
   * The union: every tab's entries, without the keys of a procedure some tab subscribes to whole
   * (its entry already receives their events; mixed, a tab could not tell which of its keys an
   * event names), compacted as one tab's are.
   */
  private entries(): string[] {
    const all = new Set([...this.subs.values()].flat());
    return entriesOf([...all].filter((e) => procedureOf(e) == e || !all.has(procedureOf(e))));
  }

  private receive(m: Msg): void {
    const o = this.o;
    if (m.t == 'q') return o.onShared?.(m.r);
    if (this.rt) {
      // The leader (holding the lock): a tab's subscription changed; it learns the stream's state in return.
      if (!this.release) return;
      if (m.t == 'w') this.rt.wake(true);
      if (m.t == 'u') {
        if (m.e.length) this.subs.set(m.id, m.e);
        else this.subs.delete(m.id);
        this.union();
      }
      return;
    }
    if (m.t == 'h') this.announce();
    else if (m.t == 'e') {
      this.see(m.ev.eventId);
      o.onInvalidate(m.ev);
    } else if (m.t == 'r') {
      this.see(m.id);
      o.onReset(m.id);
    } else if (m.t == 's') {
      this.see(m.id);
      this.cov = m.c;
      if (m.m != this.m) o.onStatus?.((this.m = m.m), this.last);
      // Coverage may have grown: results older than it get their gap closed.
      o.onReady?.();
    }
  }
}
