/**
 * `embedded-postgres.json`, next to the embedded server's data folders: which servers run and which
 * runs use each of them (the last user to leave stops the server).
 */
import { EMBEDDED_DIR_ENV } from '../env-vars.js';
import { isOwner, type Owner } from '../state/owner.js';
import { expectArray, StateFile, type StateDocument, type StateFileSpec } from '../state/state-file.js';

/** One run using a shared embedded server; `id` tells apart several handles of one process. */
export interface EmbeddedUser extends Owner {
  id: string;
}

/** Where the server's port is recorded, so that whoever stops the server can release it. */
export interface PortLedgerRef {
  stateDir: string;
  runId: string;
  project: string;
}

/** A running embedded server as recorded in `embedded-postgres.json`. Never holds the password. */
export interface EmbeddedServerRecord {
  dataDir: string;
  port: number;
  postmasterPid: number;
  /** Kernel start time of the postmaster (Linux), to tell a recycled pid from it. */
  postmasterStart?: number;
  /** When the server was started or adopted (ISO 8601). */
  startedAt: string;
  /** PostgreSQL release of the binaries, e.g. `18.4`. */
  release: string;
  binDir: string;
  /** The OS user the server runs as (when it is not the user who started it). */
  runAs?: string;
  portLedger?: PortLedgerRef;
  users: EmbeddedUser[];
}

/** The document of `embedded-postgres.json`: every embedded server with a data dir in this folder, and its users. */
export interface EmbeddedUsersDocument extends StateDocument {
  servers: EmbeddedServerRecord[];
}

const KIND = 'e2e-lanes/embedded-postgres';
const VERSION = 1;

/** The spec of `embedded-postgres.json`. */
export const embeddedUsersSpec: StateFileSpec<EmbeddedUsersDocument> = {
  kind: KIND,
  version: VERSION,
  empty: () => ({ kind: KIND, version: VERSION, updatedAt: new Date().toISOString(), servers: [] }),
  parse: (raw) => ({
    kind: KIND,
    version: VERSION,
    updatedAt: String(raw.updatedAt ?? ''),
    servers: expectArray(raw.servers, 'servers').map((item, index) => parseServer(item, index)),
  }),
};

/** The users file at `path`, locked long enough for another process to initialise and start a server. */
export function openEmbeddedUsers(path: string, startTimeoutMs: number): StateFile<EmbeddedUsersDocument> {
  return new StateFile(path, embeddedUsersSpec, { lockTimeoutMs: startTimeoutMs + 30_000, configuredBy: `the embedded server's option dataDir or ${EMBEDDED_DIR_ENV}` });
}

function parseServer(item: unknown, index: number): EmbeddedServerRecord {
  if (typeof item !== 'object' || item === null) throw new Error(`servers[${index}] is not an object`);
  const server = item as Record<string, unknown>;
  const ok =
    typeof server.dataDir === 'string' &&
    Number.isInteger(server.port) &&
    Number.isInteger(server.postmasterPid) &&
    typeof server.startedAt === 'string' &&
    typeof server.release === 'string' &&
    typeof server.binDir === 'string' &&
    Array.isArray(server.users) &&
    server.users.every((user) => isOwner(user) && typeof (user as { id?: unknown }).id === 'string');
  if (!ok) throw new Error(`servers[${index}] lacks dataDir, port, postmasterPid, startedAt, release, binDir or valid users`);
  return server as unknown as EmbeddedServerRecord;
}
