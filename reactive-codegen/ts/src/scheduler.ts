// Revalidation scheduler: queries of mounted hooks first, at once; page hints
// (`useReactivePriorities`) after 1 s; everything else held in the registry after 2 s.

import { jitter, type Clock } from './util';

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
  hintDelay?: number;
  /** Delay before background revalidation runs. Default 2000 ms. */
  backgroundDelay?: number;
  /** How many hint/background revalidations run at once. Default 4. */
  concurrency?: number;
}

/**
 * Queues revalidations by priority. A key queued at several levels runs once, at the most urgent;
 * a key that was revalidated by other means after it was queued is dropped with `cancel`.
 */
export class Scheduler {
  private readonly o: Required<SchedulerOptions>;
  private readonly queued = new Map<string, Priority>();
  private readonly readyAt: [number, number, number] = [0, 0, 0];
  private timer: unknown;
  private timerAt = Infinity;
  private running = 0;

  constructor(opts: SchedulerOptions) {
    this.o = { hintDelay: 1000, backgroundDelay: 2000, concurrency: 4, ...opts };
  }

  /**
   * Queues `key` at `priority`. Mounted keys run now; hints and background keys run once their
   * delay (counted from this call, or from an earlier pending batch) has passed.
   */
  schedule(key: string, priority: Priority): void {
    const prev = this.queued.get(key);
    if (prev !== undefined && prev <= priority) return;
    // A level's delay counts from the first key of a batch: later keys join the waiting batch.
    if (priority !== MOUNTED && !this.pendingAt(priority))
      this.readyAt[priority] = this.o.clock.now() + jitter(priority === HINT ? this.o.hintDelay : this.o.backgroundDelay);
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
    this.clearTimer();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private pendingAt(p: Priority): boolean {
    for (const v of this.queued.values()) if (v === p) return true;
    return false;
  }

  private pump(): void {
    const now = this.o.clock.now();
    // Mounted keys: all at once, no concurrency limit (the page is waiting for them).
    for (const [k, p] of [...this.queued]) {
      if (p === MOUNTED) {
        this.queued.delete(k);
        void this.o.run(k).catch(() => undefined);
      }
    }
    let next = Infinity;
    for (const level of [HINT, BACKGROUND] as const) {
      if (!this.pendingAt(level)) continue;
      if (this.readyAt[level] > now) {
        next = Math.min(next, this.readyAt[level]);
        continue;
      }
      // Hints go before background work: don't start background work while hints wait.
      if (level === BACKGROUND && this.pendingAt(HINT)) continue;
      for (const [k, p] of [...this.queued]) {
        if (this.running >= this.o.concurrency) break;
        if (p !== level) continue;
        this.queued.delete(k);
        this.running++;
        void this.o
          .run(k)
          .catch(() => undefined)
          .finally(() => {
            this.running--;
            this.pump();
          });
      }
    }
    if (next < this.timerAt) {
      this.clearTimer();
      this.timerAt = next;
      this.timer = this.o.clock.setTimeout(() => {
        this.timer = undefined;
        this.timerAt = Infinity;
        this.pump();
      }, next - now);
    }
  }
}
