import { debugLogger } from '../log.js';
import type { LedgerDocument, LedgerEntry } from './ledger.js';
import { touchRun } from './ledger.js';
import type { StateFile } from './state-file.js';

const debug = debugLogger('heartbeat');

type AnyLedger = StateFile<LedgerDocument<LedgerEntry>>;

/** Something with its own way of refreshing the heartbeat of a run's entries (e.g. the host-wide port claims). */
export interface Refreshable {
  readonly path: string;
  touchRun(runId: string): Promise<unknown>;
}

interface Beat {
  file: AnyLedger | Refreshable;
  runId: string;
}

const beats = new Map<string, Beat>();
let timer: NodeJS.Timeout | undefined;
let intervalMs = Number.POSITIVE_INFINITY;

/**
 * How often a lease of `leaseMs` is renewed: four times per lease, so three renewals may fail (a
 * busy machine, a slow disk) before it runs out; never more often than every `floorMs`.
 */
export function renewalInterval(leaseMs: number, floorMs = 1_000): number {
  return Math.max(floorMs, Math.floor(leaseMs / 4));
}

/**
 * Keeps the heartbeat of `runId`'s entries in `file` fresh while this process lives, so a long
 * suite is never reaped while it runs. The timer is unref'd: it never keeps a process alive.
 */
export function keepAlive(file: StateFile<LedgerDocument<LedgerEntry>> | Refreshable, runId: string, leaseMs: number): void {
  beats.set(`${file.path}\0${runId}`, { file, runId });
  const wanted = renewalInterval(leaseMs);
  if (timer && wanted >= intervalMs) return;
  if (timer) clearInterval(timer);
  intervalMs = wanted;
  timer = setInterval(() => void beatAll(), intervalMs);
  timer.unref();
}

/** Stops refreshing `runId` in `file` (after its entries were released). */
export function stopKeepingAlive(file: { path: string }, runId: string): void {
  beats.delete(`${file.path}\0${runId}`);
  if (beats.size === 0 && timer) {
    clearInterval(timer);
    timer = undefined;
    intervalMs = Number.POSITIVE_INFINITY;
  }
}

/** Refreshes every registered run now (also used by tests). */
export async function beatAll(): Promise<void> {
  await Promise.all(
    [...beats.values()].map(async ({ file, runId }) => {
      try {
        if ('touchRun' in file) await file.touchRun(runId);
        else
          await file.update((doc) => {
            touchRun(doc.entries, runId);
          });
      } catch (error) {
        debug('heartbeat of %s in %s failed: %O', runId, file.path, error);
      }
    }),
  );
}
