/**
 * How many lanes start their servers at once. A server's boot is mostly CPU (a dev server compiles,
 * a backend type-checks) on a machine whose cores also run the browsers: lanes that boot side by
 * side multiply each other's boot time, and the first test waits for the slowest of them. The gate
 * lets `limit` lanes start their servers at a time, first come first served, except that a lane a
 * test waits for goes before lanes booted ahead of need. It also keeps what the boots took, for the
 * run's time report.
 */
import { availableParallelism } from 'node:os';

/** One lane's pass through the gate. */
export interface BootTiming {
  /** The lane (its id in the run). */
  id: string;
  /** How many servers it started. */
  servers: number;
  /** Waiting for a slot. */
  waitedMs: number;
  /** Starting its servers (until all were healthy, or one failed). */
  bootMs: number;
  /** When its servers were up (or failed), in ms since the gate was made. */
  doneAtMs: number;
}

/** The default `bootConcurrency`: half the cores (at least one), the other half for the tests. */
export function defaultBootConcurrency(cores = availableParallelism()): number {
  return Math.max(1, Math.floor(cores / 2));
}

interface Waiter {
  id: string;
  admit(): void;
}

export class BootGate {
  readonly limit: number;
  readonly #createdAt = performance.now();
  #active = 0;
  #peak = 0;
  #open = false;
  readonly #waiting: Waiter[] = [];
  /** Lanes a test waits for (they go first). */
  readonly #urgent = new Set<string>();
  readonly #timings: BootTiming[] = [];

  constructor(limit = defaultBootConcurrency()) {
    this.limit = Math.max(1, Math.floor(limit));
  }

  /** Lanes starting their servers now. */
  get active(): number {
    return this.#active;
  }

  /** The lane `id` is awaited by a test: if it waits for a slot, it goes before lanes booted ahead. */
  hurry(id: string): void {
    this.#urgent.add(id);
    const index = this.#waiting.findIndex((waiter) => waiter.id === id);
    if (index <= 0) return;
    const [waiter] = this.#waiting.splice(index, 1);
    this.#waiting.splice(this.#firstNotUrgent(), 0, waiter!);
  }

  /**
   * Runs `start` (the lane's server starts, resolving the servers it started) once a slot is free,
   * and records its timing.
   */
  async run<T extends readonly unknown[]>(id: string, start: () => Promise<T>): Promise<T> {
    const asked = performance.now();
    await this.#enter(id);
    const entered = performance.now();
    let servers = 0;
    try {
      const started = await start();
      servers = started.length;
      return started;
    } finally {
      const now = performance.now();
      this.#timings.push({ id, servers, waitedMs: entered - asked, bootMs: now - entered, doneAtMs: now - this.#createdAt });
      this.#leave();
    }
  }

  /** No more waiting: every waiter goes in now (a run being torn down, whose boots stop at once). */
  open(): void {
    this.#open = true;
    for (const waiter of this.#waiting.splice(0)) {
      this.#active++;
      waiter.admit();
    }
  }

  /** What the boots took so far, the most lanes that booted at once, and the time since the gate was made (the run's start). */
  report(): { timings: BootTiming[]; peak: number; elapsedMs: number } {
    return { timings: this.#timings.map((timing) => ({ ...timing })), peak: this.#peak, elapsedMs: performance.now() - this.#createdAt };
  }

  #enter(id: string): Promise<void> {
    if (this.#open || this.#active < this.limit) {
      this.#active++;
      this.#peak = Math.max(this.#peak, this.#active);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const waiter: Waiter = { id, admit: resolve };
      if (this.#urgent.has(id)) this.#waiting.splice(this.#firstNotUrgent(), 0, waiter);
      else this.#waiting.push(waiter);
    });
  }

  #leave(): void {
    this.#active--;
    const next = this.#waiting.shift();
    if (!next) return;
    this.#active++;
    this.#peak = Math.max(this.#peak, this.#active);
    next.admit();
  }

  #firstNotUrgent(): number {
    const index = this.#waiting.findIndex((waiter) => !this.#urgent.has(waiter.id));
    return index < 0 ? this.#waiting.length : index;
  }
}
