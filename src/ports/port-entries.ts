/**
 * The ports ledger's shapes: an entry of `allocated-ports.json`, what an allocation returns and
 * what `list()` shows, the file's format, and the small pure helpers on entries.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { LanesError } from '../errors.js';
import { ledgerSpec, type LedgerEntry, type Owner } from '../state/index.js';

/** The ports of one lane as stored in `allocated-ports.json`. */
export interface PortEntry extends LedgerEntry {
  ports: Record<string, number>;
}

/** What `allocatePortsForProject` returns. */
export interface PortAllocation {
  project: string;
  runId: string;
  worker?: number;
  /** Every named port of the lane, e.g. `{ backend: 3100, frontend: 3101 }`. */
  ports: Record<string, number>;
  /** `ports.backend`, when a port of that name exists. */
  backendPort?: number;
  /** `ports.frontend`, when a port of that name exists. */
  frontendPort?: number;
}

/** An entry as shown by `list()`: with its owner's liveness. */
export interface PortListing extends PortEntry {
  alive: boolean;
  /** Why the entry counts as stale, when it does. */
  staleReason?: string;
}

export interface AllocateOptions {
  /** For per-worker lanes: the worker's parallel index. */
  worker?: number;
  /** Override the allocator's port names for this lane. */
  names?: readonly string[];
  /** Record another owner than this run's (e.g. a shared server process). @internal */
  owner?: Owner;
}

export const PORTS_FILE = 'allocated-ports.json';
const PORTS_KIND = 'e2e-lanes/ports';

/** The format of `allocated-ports.json`. */
export const portsSpec = ledgerSpec<PortEntry>(PORTS_KIND, (raw) => {
  const ports = raw.ports;
  if (typeof ports !== 'object' || ports === null) throw new Error('an entry lacks "ports"');
  for (const [name, port] of Object.entries(ports)) {
    if (!Number.isInteger(port)) throw new Error(`port "${name}" is not an integer`);
  }
  return raw as unknown as PortEntry;
});

/** A worker's parallel index, checked. */
export function validateWorker(worker: number): number {
  if (!Number.isInteger(worker) || worker < 0) {
    throw new LanesError('INVALID_OPTION', `Invalid worker index ${JSON.stringify(worker)}.`, { hint: 'Use the worker parallelIndex, a whole number ≥ 0.' });
  }
  return worker;
}

/** Every port the given lanes hold. */
export function heldPorts(entries: readonly PortEntry[]): Set<number> {
  const held = new Set<number>();
  for (const entry of entries) for (const port of Object.values(entry.ports)) held.add(port);
  return held;
}

/**
 * The text of `path` if it is a regular file, else undefined (missing, a link, which is never read
 * through, a folder, a pipe, unreadable): the state file then says what it is, with its coded error.
 */
export async function regularFileText(path: string): Promise<string | undefined> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => undefined);
  if (!handle) return undefined;
  try {
    return (await handle.stat()).isFile() ? await handle.readFile('utf8') : undefined;
  } catch {
    return undefined;
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** The allocation an entry stands for. */
export function toAllocation(entry: PortEntry): PortAllocation {
  const allocation: PortAllocation = { project: entry.project, runId: entry.runId, ports: { ...entry.ports } };
  if (entry.worker !== undefined) allocation.worker = entry.worker;
  if (entry.ports.backend !== undefined) allocation.backendPort = entry.ports.backend;
  if (entry.ports.frontend !== undefined) allocation.frontendPort = entry.ports.frontend;
  return allocation;
}

