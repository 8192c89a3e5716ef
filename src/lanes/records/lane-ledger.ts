import { join } from 'node:path';
import { ledgerSpec, sameLane, StateFile, type LaneKey, type LedgerDocument, type LedgerEntry } from '../../state/index.js';

/** The lanes ledger `allocated-lanes.json` of a state folder: its entries and the updates of one lane's. */

/** A server process of a lane, as recorded for status and reaping. */
export interface LaneServerRecord {
  name: string;
  /** Process-group leader pid (the group id is the same number). */
  pid: number;
  port?: number;
  url?: string;
  logFile: string;
  /** How it is stopped (its definition's `stopSignal` and `stopTimeout`), so `down` and the watchdog stop it as the teardown does. */
  stopSignal?: NodeJS.Signals;
  stopTimeout?: number;
}

/** A lane as recorded in `allocated-lanes.json`. */
export interface LaneEntry extends LedgerEntry {
  status: 'starting' | 'up';
  ports: Record<string, number>;
  databaseName?: string;
  servers: LaneServerRecord[];
  logDir: string;
  /** What the lane must still match to be reused warm by a later run (option `reuse`). */
  fingerprint?: LaneFingerprint;
  /** The template its database was cloned from. */
  template?: string;
  /** Since when the lane waits warm for the next run (ISO 8601; set while it does). */
  warmSince?: string;
}

/** Short hashes of what a lane was booted with (see `laneFingerprint`). */
export interface LaneFingerprint {
  /** The Playwright config file (or '' without one): warm lanes serve only runs of the same config. */
  config: string;
  /**
   * Per server: its command, cwd, env and other options; and the environment it was started with,
   * a keyed digest per variable name (see `serverEnvironment`), never a value.
   */
  servers: Record<string, { command: string; cwd: string; env: string; rest: string; environment?: Record<string, string> }>;
  /** The lane's port names. */
  ports: string;
}

export const LANES_FILE = 'allocated-lanes.json';

const lanesSpec = ledgerSpec<LaneEntry>('e2e-lanes/lanes', (raw) => {
  if (!Array.isArray(raw.servers)) throw new Error('an entry lacks "servers"');
  return raw as unknown as LaneEntry;
});

/** The lanes ledger of a state folder. */
export function laneLedger(stateDir: string): StateFile<LedgerDocument<LaneEntry>> {
  return new StateFile(join(stateDir, LANES_FILE), lanesSpec);
}

/** Puts `entry` in the ledger in place of the lane's earlier entry. */
export async function recordLane(ledger: StateFile<LedgerDocument<LaneEntry>>, entry: LaneEntry): Promise<void> {
  await ledger.update((doc) => {
    doc.entries = doc.entries.filter((other) => !sameLane(other, entry));
    doc.entries.push(structuredClone(entry));
  });
}

/** Points the record of the lane's server `server.name` at a new process of it (a restart). */
export async function recordServerProcess(ledger: StateFile<LedgerDocument<LaneEntry>>, key: LaneKey, server: { name: string; pid: number; logFile: string }): Promise<void> {
  await ledger.update((doc) => {
    const record = doc.entries.find((entry) => sameLane(entry, key))?.servers.find((one) => one.name === server.name);
    if (!record) return;
    record.pid = server.pid;
    record.logFile = server.logFile;
  });
}
