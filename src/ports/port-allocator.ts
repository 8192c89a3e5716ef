import { join } from 'node:path';
import { PORT_RANGE_ENV } from '../env-vars.js';
import { LanesError } from '../errors.js';
import { debugLogger } from '../log.js';
import {
  describeLane,
  keepAlive,
  ledgerSpec,
  newOwner,
  sameLane,
  splitByLiveness,
  withLiveness,
  keepRunEntries,
  handOverRunEntries,
  stopKeepingAlive,
  StateFile,
  validateProjectName,
  type LaneKey,
  type LedgerDocument,
  type LedgerEntry,
  type Owner,
  type StaleEntry,
} from '../state/index.js';
import { instanceFor } from '../state/instances.js';
import { resolvePortAllocatorOptions, validateNames, type PortAllocatorOptions, type ResolvedPortAllocatorOptions } from './options.js';
import { hostClaims, type HostClaims } from './host-claims.js';
import { isPortFree } from './probe.js';

const debug = debugLogger('ports');

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

const portsSpec = ledgerSpec<PortEntry>(PORTS_KIND, (raw) => {
  const ports = raw.ports;
  if (typeof ports !== 'object' || ports === null) throw new Error('an entry lacks "ports"');
  for (const [name, port] of Object.entries(ports)) {
    if (!Number.isInteger(port)) throw new Error(`port "${name}" is not an integer`);
  }
  return raw as unknown as PortEntry;
});

/**
 * Hands out free ports per lane such that no two live owners ever get the same port, across
 * processes on one host. Allocations are idempotent per (run, project[, worker]) and persisted in
 * `<stateDir>/allocated-ports.json` under a cross-process lock.
 */
export class PortAllocator {
  static readonly #instances = new Map<string, PortAllocator>();

  /** One allocator per state folder. Options of a later call must agree with the first. */
  static getInstance(options: PortAllocatorOptions = {}): PortAllocator {
    const resolved = resolvePortAllocatorOptions(options);
    return instanceFor(PortAllocator.#instances, resolved.stateDir, () => new PortAllocator(options), (existing) => existing.#assertCompatible(resolved));
  }

  /** Forgets every singleton (for tests). */
  static resetInstances(): void {
    PortAllocator.#instances.clear();
  }

  readonly options: ResolvedPortAllocatorOptions;
  readonly file: StateFile<LedgerDocument<PortEntry>>;
  readonly #claims: HostClaims;

  constructor(options: PortAllocatorOptions = {}) {
    this.options = resolvePortAllocatorOptions(options);
    this.file = new StateFile(join(this.options.stateDir, PORTS_FILE), portsSpec);
    this.#claims = hostClaims();
  }

  get runId(): string {
    return this.options.runId;
  }

  /**
   * The ports of `project` in this run: the same ports every time the same lane asks, from any
   * process; new free ports otherwise.
   */
  async allocatePortsForProject(project: string, options: AllocateOptions = {}): Promise<PortAllocation> {
    const key: LaneKey = { runId: options.owner?.runId ?? this.runId, project: validateProjectName(project) };
    if (options.worker !== undefined) key.worker = validateWorker(options.worker);
    const names = options.names ? validateNames(options.names) : this.options.names;

    // Claims made by this call, withdrawn if the ledger cannot record them.
    const claimed: string[] = [];
    const entry = await this.file
      .update(async (doc) => {
        const { live, stale } = splitByLiveness(doc.entries, this.options.leaseMs);
        logReaped(stale);
        doc.entries = live;
        let mine = live.find((candidate) => sameLane(candidate, key));
        const missing = names.filter((name) => mine?.ports[name] === undefined);
        if (missing.length > 0) {
          const lane = mine ?? { ...key, owner: options.owner ?? newOwner(key.runId), ports: {} };
          // Lock order: the state folder's ledger, then the host-wide claims (which take no lock).
          const foreign = await this.#claims.foreign(this.options.stateDir, this.options.leaseMs, live);
          const picked = await this.#pickFreePorts(missing.length, live, key, foreign, lane.owner, claimed);
          missing.forEach((name, index) => {
            lane.ports[name] = picked[index]!;
          });
          if (!mine) doc.entries.push(lane);
          mine = lane;
          debug('allocated %o to %s', mine.ports, describeLane(key));
        }
        mine!.owner.heartbeatAt = new Date().toISOString();
        return structuredClone(mine!);
      })
      .catch(async (error: unknown) => {
        await this.#claims.withdraw(claimed);
        throw error;
      });
    if (!options.owner) {
      keepAlive(this.file as never, key.runId, this.options.leaseMs);
      keepAlive(this.#claims, key.runId, this.options.leaseMs);
    }
    return toAllocation(entry);
  }

  /** Releases the ports of `project` in this run. Resolves true if something was released. */
  async releasePortsForProject(project: string, options: { worker?: number; runId?: string } = {}): Promise<boolean> {
    const key: LaneKey = { runId: options.runId ?? this.runId, project };
    if (options.worker !== undefined) key.worker = options.worker;
    const released = await this.file.update((doc) => {
      const before = doc.entries.length;
      doc.entries = doc.entries.filter((entry) => !sameLane(entry, key));
      return doc.entries.length < before;
    });
    if (released) await this.#unclaim([key]);
    return released;
  }

  /**
   * Keeps the ports of a run (this run by default) after its owner exits, for lanes kept for
   * debugging: they count as held until `releaseRun` (`e2e-lanes down`).
   */
  async keepRun(runId: string = this.runId): Promise<void> {
    await this.file.update((doc) => void keepRunEntries(doc.entries, runId));
    await this.#claims.keepRun(this.options.stateDir, runId);
    stopKeepingAlive(this.file, runId);
    stopKeepingAlive(this.#claims, runId);
  }

  /**
   * Records `owner` as the holder of the ports of `project` in this run (in the state file): a
   * process other than the allocating one that outlives it, e.g. the embedded server's postmaster.
   */
  async setPortsOwner(project: string, owner: Owner): Promise<void> {
    await this.file.update((doc) => {
      for (const entry of doc.entries) if (entry.runId === this.runId && entry.project === project) entry.owner = { ...owner, runId: this.runId };
    });
  }

  /** Refreshes the heartbeat of the ports of `project` in this run, for an owner that cannot do it itself. */
  async touchPortsOf(project: string, now = new Date()): Promise<void> {
    await this.file.update((doc) => {
      for (const entry of doc.entries) if (entry.runId === this.runId && entry.project === project) entry.owner.heartbeatAt = now.toISOString();
    });
  }

  /**
   * Gives the ports of a run to `owner`: a warm run's watchdog (its deadline, not heartbeats, keeps
   * them), or this process taking a warm run over (it keeps their heartbeat fresh from then on).
   */
  async handOverRun(runId: string, owner: Owner): Promise<void> {
    await this.file.update((doc) => void handOverRunEntries(doc.entries, runId, owner));
    await this.#claims.handOverRun(this.options.stateDir, runId, owner);
    if (owner.warmUntil === undefined) {
      keepAlive(this.file as never, runId, this.options.leaseMs);
      keepAlive(this.#claims, runId, this.options.leaseMs);
    } else {
      stopKeepingAlive(this.file, runId);
      stopKeepingAlive(this.#claims, runId);
    }
  }

  /** Releases every port of a run (this run by default); returns the released entries. */
  async releaseRun(runId: string = this.runId): Promise<PortEntry[]> {
    const released = await this.file.update((doc) => {
      const gone = doc.entries.filter((entry) => entry.runId === runId);
      doc.entries = doc.entries.filter((entry) => entry.runId !== runId);
      return gone;
    });
    stopKeepingAlive(this.file, runId);
    stopKeepingAlive(this.#claims, runId);
    await this.#unclaim(released);
    return released;
  }

  /** The runs that hold ports in this state folder. */
  async runIds(): Promise<Set<string>> {
    return new Set((await this.file.read()).entries.map((entry) => entry.runId));
  }

  /** What `reapStale()` would remove, without changing anything. */
  async listStale(): Promise<StaleEntry<PortEntry>[]> {
    return splitByLiveness((await this.file.read()).entries, this.options.leaseMs).stale;
  }

  /** Every entry with its owner's liveness, without changing anything. */
  async list(): Promise<PortListing[]> {
    return withLiveness((await this.file.read()).entries, this.options.leaseMs);
  }

  /** Removes entries whose owner is dead or whose lease expired; returns what was removed. */
  async reapStale(): Promise<StaleEntry<PortEntry>[]> {
    const stale = await this.file.update((doc) => {
      const split = splitByLiveness(doc.entries, this.options.leaseMs);
      doc.entries = split.live;
      logReaped(split.stale);
      return split.stale;
    });
    await this.#unclaim(stale.map((item) => item.entry));
    return stale;
  }

  /** Forgets the host-wide claims of released lanes (dead owners' claims are pruned anyway). */
  async #unclaim(keys: readonly LaneKey[]): Promise<void> {
    if (keys.length === 0) return;
    await this.#claims.drop(this.options.stateDir, keys).catch((error: unknown) => {
      debug('could not drop host claims: %O', error);
    });
  }

  async #pickFreePorts(
    count: number,
    live: readonly PortEntry[],
    key: LaneKey,
    foreign: ReadonlySet<number>,
    owner: Owner,
    claimed: string[],
  ): Promise<number[]> {
    const held = new Map<number, PortEntry>();
    for (const entry of live) for (const port of Object.values(entry.ports)) held.set(port, entry);
    const [first, last] = this.options.range;
    const picked: number[] = [];
    let busy = 0;
    let claimedElsewhere = 0;
    for (let port = first; port <= last && picked.length < count; port++) {
      if (held.has(port)) continue;
      if (foreign.has(port)) claimedElsewhere++;
      else if (!(await isPortFree(port))) busy++;
      else {
        const file = await this.#claims.claim(port, this.options.stateDir, key, owner, this.options.leaseMs);
        if (file === undefined) claimedElsewhere++;
        else {
          claimed.push(file);
          picked.push(port);
        }
      }
    }
    if (picked.length < count) throw this.#exhausted(key, count, held, busy, claimedElsewhere);
    return picked;
  }

  #exhausted(key: LaneKey, count: number, held: Map<number, PortEntry>, busy: number, claimed: number): LanesError {
    const [first, last] = this.options.range;
    const holders = new Map<string, number>();
    for (const entry of held.values()) {
      const label = `${entry.project}${entry.worker === undefined ? '' : `#${entry.worker}`} (run ${entry.runId}, pid ${entry.owner.pid})`;
      holders.set(label, (holders.get(label) ?? 0) + 1);
    }
    const byWhom = [...holders].slice(0, 8).map(([label, n]) => `${n} by ${label}`).join(', ');
    return new LanesError(
      'PORT_RANGE_EXHAUSTED',
      `No ${count} free port(s) in range ${first}-${last} for ${describeLane(key)}: ` +
        `${held.size} held by live lanes${byWhom ? ` (${byWhom}${holders.size > 8 ? ', …' : ''})` : ''}, ` +
        `${claimed} claimed by lanes of other state folders on this host, ${busy} in use by other processes.`,
      {
        hint: `Widen the range (option \`range\`, or ${PORT_RANGE_ENV}=3100-5500), stop the processes using those ports, or run \`npx e2e-lanes gc\` to reap lanes of dead runs.`,
        details: { range: [first, last], held: held.size, claimed, busy },
      },
    );
  }

  #assertCompatible(resolved: ResolvedPortAllocatorOptions): void {
    const same =
      resolved.range[0] === this.options.range[0] &&
      resolved.range[1] === this.options.range[1] &&
      resolved.names.join(',') === this.options.names.join(',') &&
      resolved.runId === this.options.runId;
    if (!same) {
      throw new LanesError(
        'INVALID_OPTION',
        `PortAllocator.getInstance() for ${resolved.stateDir} was already created with other options ` +
          `(range ${this.options.range.join('-')}, names ${this.options.names.join(',')}, run ${this.options.runId}).`,
        { hint: 'Pass the same options on every call, or use `new PortAllocator(options)` for a separate allocator.' },
      );
    }
  }
}

function validateWorker(worker: number): number {
  if (!Number.isInteger(worker) || worker < 0) {
    throw new LanesError('INVALID_OPTION', `Invalid worker index ${JSON.stringify(worker)}.`, { hint: 'Use the worker parallelIndex, a whole number ≥ 0.' });
  }
  return worker;
}

function toAllocation(entry: PortEntry): PortAllocation {
  const allocation: PortAllocation = { project: entry.project, runId: entry.runId, ports: { ...entry.ports } };
  if (entry.worker !== undefined) allocation.worker = entry.worker;
  if (entry.ports.backend !== undefined) allocation.backendPort = entry.ports.backend;
  if (entry.ports.frontend !== undefined) allocation.frontendPort = entry.ports.frontend;
  return allocation;
}

function logReaped(stale: readonly StaleEntry<PortEntry>[]): void {
  for (const { entry, reason } of stale) debug('reaped ports %o of %s: %s', entry.ports, describeLane(entry), reason);
}
