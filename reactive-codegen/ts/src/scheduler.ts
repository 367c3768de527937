// Revalidation scheduler: queries of mounted hooks first, at once; page hints
// (`useReactivePriorities`) after 1 s; everything else held in the registry after 2 s.

import { jitter, type Clock } from './util.js';

// The levels as constants (inlined by bundlers), for the runtime's own use.
export const MOUNTED = 0;
export const HINT = 1;
export const BACKGROUND = 2;

/** Priority levels, most urgent first. */
export const Priority = { Mounted: MOUNTED, Hint: HINT, Background: BACKGROUND } as const;
export type Priority = (typeof Priority)[keyof typeof Priority];

export interface SchedulerOptions {
  clock: Clock;
  /** Runs one revalidation; the scheduler waits for it before counting the slot free. */
  run: (key: string) => Promise<unknown>;
  /** Delay before page hints run. Default 1000 ms. */
  hintDelay?: number | undefined;
  /** Delay before background revalidation runs. Default 2000 ms. */
  backgroundDelay?: number | undefined;
  /** How many hint/background revalidations run at once. Default 4. */
  concurrency?: number | undefined;
}

/**
 * Queues revalidations by priority. A key queued at several levels runs once, at the most urgent;
 * a key that was revalidated by other means after it was queued is dropped with `cancel`.
 */
export class Scheduler {
  private readonly o: SchedulerOptions;
  private readonly queued = new Map<string, Priority>();
  /** When each level's batch may run. */
  private readonly readyAt = [0, 0, 0];
  private timer: unknown;
  private running = 0;

  constructor(opts: SchedulerOptions) {
    this.o = opts;
  }

  /**
   * Queues `key` at `priority`. Mounted keys run now; hints and background keys run once their
   * delay (counted from this call, or from an earlier pending batch, with jitter) has passed.
   */
  schedule(key: string, priority: Priority): void {
    if (this.queued.get(key)! <= priority) return;
    // A level's delay counts from the first key of a batch: later keys join the waiting batch.
    if (!this.pending(priority))
      this.readyAt[priority] =
        this.o.clock.now() +
        (priority && jitter(priority === HINT ? (this.o.hintDelay ?? 1000) : (this.o.backgroundDelay ?? 2000)));
    this.queued.set(key, priority);
    this.pump();
  }

  /** Drops a queued key (it was revalidated some other way). */
  cancel(key: string): void {
    this.queued.delete(key);
  }

  /** Drops everything (tenant switch). */
  clear(): void {
    this.queued.clear();
    this.o.clock.clearTimeout(this.timer);
  }

  private pending(p: Priority): boolean {
    return [...this.queued.values()].includes(p);
  }

  private pump(): void {
    const now = this.o.clock.now();
    let next = Infinity;
    for (const [k, p] of this.queued) {
      if (this.readyAt[p]! > now) next = Math.min(next, this.readyAt[p]!);
      // Mounted keys: all at once (the page is waiting for them). The others: bounded
      // concurrency, and background work waits while hints are queued.
      else if (!p || (this.running < (this.o.concurrency ?? 4) && (p === HINT || !this.pending(HINT)))) {
        this.queued.delete(k);
        if (p) this.running++;
        void this.o
          .run(k)
          .catch(() => undefined)
          .finally(() => p && (this.running--, this.pump()));
      }
    }
    this.o.clock.clearTimeout(this.timer);
    if (next < Infinity) this.timer = this.o.clock.setTimeout(() => this.pump(), next - now);
  }
}
