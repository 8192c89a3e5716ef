/**
 * The lanes of a run as its manager holds them: one record per lane (its boot, its remembered
 * failure, whether a test failed in it, its last reset), in the order their boots began.
 */
import type { RunningLane } from './boot/restart.js';

/** Everything a manager keeps about one lane of its run. */
export interface LaneRecord {
  /** Its boot (or its reuse), while it is up or booting. */
  running?: Promise<RunningLane>;
  /** Why its boot failed: every later request gets that error at once (it is not booted again). */
  failure?: { error: unknown; at: Date };
  /** Whether a test failed in it (for `keep: 'on-failure'`). */
  testFailed?: boolean;
  /** Its last reset: resets of a lane run one after another. */
  lastReset?: Promise<unknown>;
}

/** The records of a run's lanes, by lane id (see `laneId`). */
export class LaneTable {
  readonly #records = new Map<string, LaneRecord>();

  /** The record of lane `id`, if it has one. */
  get(id: string): LaneRecord | undefined {
    return this.#records.get(id);
  }

  /** The record of lane `id`, created on first use. */
  record(id: string): LaneRecord {
    let record = this.#records.get(id);
    if (!record) this.#records.set(id, (record = {}));
    return record;
  }

  /** Sets the lane's boot (or reuse); its record moves last, so lanes are listed in the order their boots began. */
  setRunning(id: string, running: Promise<RunningLane>): LaneRecord {
    const record = this.record(id);
    this.#records.delete(id);
    this.#records.set(id, record);
    record.running = running;
    return record;
  }

  /** The lane once up, or undefined when it is not (or failed to boot). */
  async up(id: string): Promise<RunningLane | undefined> {
    return this.#records.get(id)?.running?.catch(() => undefined);
  }

  /** Whether lane `id` is booting or up. */
  isRunning(id: string): boolean {
    return this.#records.get(id)?.running !== undefined;
  }

  /** The lanes booting or up, with their ids and records. */
  runningEntries(): Array<{ id: string; record: LaneRecord; running: Promise<RunningLane> }> {
    return [...this.#records].flatMap(([id, record]) => (record.running ? [{ id, record, running: record.running }] : []));
  }

  /** The boots of the lanes booting or up. */
  running(): Array<Promise<RunningLane>> {
    return this.runningEntries().map((entry) => entry.running);
  }

  /** Whether a test failed in any lane. */
  anyTestFailed(): boolean {
    return [...this.#records.values()].some((record) => record.testFailed);
  }

  /** Forgets every lane's boot (their servers were stopped or handed over); failures and the rest stay. */
  forgetRunning(): void {
    for (const record of this.#records.values()) delete record.running;
  }
}
