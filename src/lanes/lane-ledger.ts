import { join } from 'node:path';
import { ledgerSpec, StateFile, type LedgerDocument, type LedgerEntry } from '../state/index.js';

/** A server process of a lane, as recorded for status and reaping. */
export interface LaneServerRecord {
  name: string;
  /** Process-group leader pid (the group id is the same number). */
  pid: number;
  port?: number;
  url?: string;
  logFile: string;
}

/** A lane as recorded in `allocated-lanes.json`. */
export interface LaneEntry extends LedgerEntry {
  status: 'starting' | 'up';
  ports: Record<string, number>;
  databaseName?: string;
  servers: LaneServerRecord[];
  logDir: string;
  /** Kept up after its run for debugging: only `e2e-lanes down` removes it. */
  kept?: boolean;
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
