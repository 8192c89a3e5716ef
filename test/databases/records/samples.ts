import type { DatabaseEntry } from '../../../src/databases/index.js';
import type { RegistryRow } from '../../../src/databases/records/registry.js';
import { currentHost } from '../../../src/state/index.js';

/** An admin URL (never connected to) for the records' pure functions. */
export const ADMIN = 'postgres://admin:secret@127.0.0.1:5432/postgres';
/** The lane of the samples. */
export const key = { runId: 'run-1', project: 'chromium' };

/** A registry row of the sample lane, owned by this process on this host, with `overrides`. */
export function row(overrides: Partial<RegistryRow> = {}): RegistryRow {
  return {
    databaseName: 'e2e_run1_chromium_0badf00d',
    prefix: 'e2e',
    ...key,
    host: currentHost(),
    pid: process.pid,
    stateDir: '/repo/test-results',
    template: 'e2e_tpl_0123456789ab',
    createdAt: '2026-11-22T00:00:00.000Z',
    heartbeatAt: '2026-11-22T00:00:00.000Z',
    expiresAt: '2026-11-22T00:02:00.000Z',
    expired: false,
    ...overrides,
  };
}

/** A ledger entry of the sample lane for `databaseName`, owned by `pid` on this host, fresh. */
export function entry(databaseName: string, pid = process.pid): DatabaseEntry {
  const now = new Date().toISOString();
  return { ...key, databaseName, databaseUrl: 'postgres://x', template: 't', owner: { runId: key.runId, pid, host: currentHost(), createdAt: now, heartbeatAt: now } };
}
