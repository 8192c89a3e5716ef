import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LanesError } from '../errors.js';
import { debugLogger } from '../log.js';
import {
  describeLane,
  keepAlive,
  newOwner,
  sameLane,
  withLiveness,
  keepRunEntries,
  handOverRunEntries,
  stopKeepingAlive,
  StateFile,
  validateProjectName,
  type LaneKey,
  type LedgerDocument,
  type Owner,
  type StaleEntry,
  type Refreshable,
} from '../state/index.js';
import { isFsError, mkdirCause, unwritable } from '../state/fs-errors.js';
import { instanceFor } from '../state/instances.js';
import { resolvePortAllocatorOptions, validateNames, type PortAllocatorOptions, type ResolvedPortAllocatorOptions } from './options.js';
import { hostClaims, type HostClaims, type PortClaim } from './host-claims.js';
import { claimFreePorts, exhaustedError } from './free-ports.js';
import { recordLane } from './lane-requests.js';
import { splitLive } from './liveness.js';
import { describeTiming, endLap, newTiming, startLap, type AllocationTiming } from './timing.js';
import { heldPorts, PORTS_FILE, portsSpec, regularFileText, toAllocation, validateWorker, type AllocateOptions, type PortAllocation, type PortEntry, type PortListing } from './port-entries.js';

export { PORTS_FILE, type AllocateOptions, type PortAllocation, type PortEntry, type PortListing } from './port-entries.js';

const debug = debugLogger('ports');
/** One line per allocation with where its time went: `DEBUG=e2e-lanes:ports:trace`. */
const trace = debugLogger('ports:trace');

/** How long an allocation waits for the ledger's lock. */
const LOCK_TIMEOUT_MS = 30_000;
/** Rounds of claiming before the lane is recorded under the lock by this process alone. */
const CLAIM_ROUNDS = 3;
/**
 * For this long after losing a port to another process, an allocator starts its search at a random
 * place among the free ports instead of at the lowest: the others are likely still allocating.
 */
const SPREAD_MS = 10_000;


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
  /** The same file, locked with one attempt only: for recording pending requests when the lock is free. */
  readonly #tryFile: StateFile<LedgerDocument<PortEntry>>;
  readonly #claims: HostClaims;
  /** Refreshes the host-wide claims of a run's lanes of this state folder (the ports its ledger holds). */
  readonly #beat: Refreshable;
  #writable: Promise<void> | undefined;
  /** When this allocator last lost a port to another process claiming it at the same moment. */
  #contendedAt = Number.NEGATIVE_INFINITY;

  constructor(options: PortAllocatorOptions = {}) {
    this.options = resolvePortAllocatorOptions(options);
    this.file = new StateFile(join(this.options.stateDir, PORTS_FILE), portsSpec, { lockTimeoutMs: LOCK_TIMEOUT_MS });
    this.#tryFile = new StateFile(this.file.path, portsSpec, { lockTimeoutMs: 0 });
    this.#claims = hostClaims();
    this.#beat = {
      path: `${this.#claims.path}\0${this.options.stateDir}`,
      touchRun: async (runId: string) => {
        const entries = (await this.file.read()).entries.filter((entry) => entry.runId === runId);
        return this.#claims.touchPorts(this.options.stateDir, runId, entries.flatMap((entry) => Object.values(entry.ports)));
      },
    };
  }

  get runId(): string {
    return this.options.runId;
  }

  /**
   * The ports of `project` in this run: the same ports every time the same lane asks, from any
   * process; new free ports otherwise.
   *
   * The ports are claimed host-wide first, without any shared lock (one file per port, see
   * {@link HostClaims}), and probed; only then is the state file locked, for one short update that
   * records the lane. A port a browser refuses is never handed out.
   */
  async allocatePortsForProject(project: string, options: AllocateOptions = {}): Promise<PortAllocation> {
    const key: LaneKey = { runId: options.owner?.runId ?? this.runId, project: validateProjectName(project) };
    if (options.worker !== undefined) key.worker = validateWorker(options.worker);
    const names = options.names ? validateNames(options.names) : this.options.names;

    // Claims made by this call; those the ledger does not record are withdrawn.
    const claims: PortClaim[] = [];
    let entry: PortEntry | undefined;
    const timing = trace.enabled ? newTiming() : undefined;
    await this.#assertLedgerWritable();
    try {
      for (let attempt = 1; attempt <= CLAIM_ROUNDS && !entry; attempt++) {
        // Outside the lock: a snapshot (atomic writes make it consistent) says which ports lanes hold.
        let lap = timing && startLap();
        const snapshot = await this.#snapshot(key.project, attempt > 1);
        if (timing) lap = endLap(timing, 'read', lap!);
        const known = snapshot.find((candidate) => sameLane(candidate, key));
        const owner = known?.owner ?? options.owner ?? newOwner(key.runId);
        const mine: PortClaim[] = [];
        const wanted = names.filter((name) => known?.ports[name] === undefined).length;
        if (wanted > 0) await this.#claimFree(wanted, heldPorts(snapshot), key, owner, mine, timing);
        claims.push(...mine);
        if (timing) lap = endLap(timing, 'claim', lap!);
        const recorded =
          attempt === CLAIM_ROUNDS
            ? 'unwritten'
            : await recordLane(this.file, this.#tryFile, { key, names: [...names], owner, ports: mine.map((claim) => claim.port) }, {
                leaseMs: this.options.leaseMs,
                timeoutMs: LOCK_TIMEOUT_MS,
                onReaped: logReaped,
                ...(timing ? { timing } : {}),
              });
        // The request could not be written (a full disk, say), or claims keep being overtaken: record
        // under the lock in this process, claiming more there if needed.
        entry = recorded === 'unwritten' ? await this.#recordLocked(key, names, options, owner, mine, claims) : recorded;
        if (timing) [lap, timing.rounds] = [endLap(timing, 'record', lap!), attempt];
        if (!entry) debug('ports %o of %s were taken meanwhile; claiming again', mine.map((claim) => claim.port), describeLane(key));
        await this.#claims.withdraw(mine.filter((claim) => !entry || !Object.values(entry.ports).includes(claim.port)));
      }
    } catch (error) {
      await this.#claims.withdraw(claims).catch((withdrawal: unknown) => debug('could not withdraw claims: %O', withdrawal));
      throw error;
    }
    if (timing) trace('%s: %s', describeLane(key), describeTiming(timing));
    if (!options.owner) {
      keepAlive(this.file as never, key.runId, this.options.leaseMs);
      keepAlive(this.#beat, key.runId, this.options.leaseMs);
    }
    return toAllocation(entry!);
  }

  /**
   * The live lanes of the ledger, read without the lock, or none at all when its text does not name
   * `project`: then no lane of it is recorded, and parsing the whole ledger (hundreds of lanes under
   * load) would only say which ports its lanes hold, which their claims say too. Either way the
   * commit decides: a lane recorded meanwhile keeps its ports, and a port a lane holds is never
   * recorded for another. With `whole` (claiming again after a commit refused the claimed ports),
   * the ledger is always parsed.
   */
  async #snapshot(project: string, whole: boolean): Promise<PortEntry[]> {
    const text = whole ? undefined : await regularFileText(this.file.path);
    if (text !== undefined && !text.includes(JSON.stringify(project))) return [];
    // Named, or not readable as text: the state file reads it (missing: empty; else its coded errors).
    return splitLive((await this.file.read()).entries, this.options.leaseMs).live;
  }

  /**
   * A state folder this user may not write in fails before any port is claimed, with the ledger's
   * path in the error (once per allocator).
   */
  async #assertLedgerWritable(): Promise<void> {
    this.#writable ??= (async () => {
      const folder = dirname(this.file.path);
      try {
        await mkdir(folder, { recursive: true });
        await access(folder, constants.W_OK);
      } catch (error) {
        const cause = mkdirCause(error, folder);
        if (isFsError(cause)) throw unwritable(cause, 'write state file', this.file.path);
        throw cause;
      }
    })().catch((error: unknown) => {
      this.#writable = undefined;
      throw error;
    });
    return this.#writable;
  }

  /** Records the lane in one locked update of the ledger, with `claims` (and more claimed there if short). */
  async #recordLocked(key: LaneKey, names: readonly string[], options: AllocateOptions, owner: Owner, claims: PortClaim[], made: PortClaim[]): Promise<PortEntry> {
    return this.file.update(async (doc) => {
      const { live, stale } = splitLive(doc.entries, this.options.leaseMs);
      logReaped(stale);
      doc.entries = live;
      let mine = live.find((candidate) => sameLane(candidate, key));
      const missing = names.filter((name) => mine?.ports[name] === undefined);
      if (missing.length > 0) {
        const lane = mine ?? { ...key, owner: options.owner ?? owner, ports: {} };
        const taken = heldPorts(live);
        const usable = claims.filter((claim) => !taken.has(claim.port));
        if (usable.length < missing.length) {
          const more: PortClaim[] = [];
          await this.#claimFree(missing.length - usable.length, new Set([...taken, ...usable.map((claim) => claim.port)]), key, lane.owner, more).finally(() => made.push(...more));
          claims.push(...more);
          usable.push(...more);
        }
        missing.forEach((name, index) => {
          lane.ports[name] = usable[index]!.port;
        });
        if (!mine) doc.entries.push(lane);
        mine = lane;
        debug('allocated %o to %s', mine.ports, describeLane(key));
      }
      mine!.owner.heartbeatAt = new Date().toISOString();
      return structuredClone(mine!);
    });
  }

  /** Releases the ports of `project` in this run. Resolves true if something was released. */
  async releasePortsForProject(project: string, options: { worker?: number; runId?: string } = {}): Promise<boolean> {
    const key: LaneKey = { runId: options.runId ?? this.runId, project };
    if (options.worker !== undefined) key.worker = options.worker;
    const released = await this.file.update((doc) => {
      const gone = doc.entries.filter((entry) => sameLane(entry, key));
      doc.entries = doc.entries.filter((entry) => !sameLane(entry, key));
      return gone;
    });
    await this.#unclaim(released);
    return released.length > 0;
  }

  /**
   * Keeps the ports of a run (this run by default) after its owner exits, for lanes kept for
   * debugging: they count as held until `releaseRun` (`e2e-lanes down`).
   */
  async keepRun(runId: string = this.runId): Promise<void> {
    await this.file.update((doc) => void keepRunEntries(doc.entries, runId));
    await this.#claims.keepRun(this.options.stateDir, runId);
    stopKeepingAlive(this.file, runId);
    stopKeepingAlive(this.#beat, runId);
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
      keepAlive(this.#beat, runId, this.options.leaseMs);
    } else {
      stopKeepingAlive(this.file, runId);
      stopKeepingAlive(this.#beat, runId);
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
    stopKeepingAlive(this.#beat, runId);
    await this.#unclaim(released);
    return released;
  }

  /** The runs that hold ports in this state folder. */
  async runIds(): Promise<Set<string>> {
    return new Set((await this.file.read()).entries.map((entry) => entry.runId));
  }

  /** What `reapStale()` would remove, without changing anything. */
  async listStale(): Promise<StaleEntry<PortEntry>[]> {
    return splitLive((await this.file.read()).entries, this.options.leaseMs).stale;
  }

  /** Every entry with its owner's liveness, without changing anything. */
  async list(): Promise<PortListing[]> {
    return withLiveness((await this.file.read()).entries, this.options.leaseMs);
  }

  /** Removes entries whose owner is dead or whose lease expired; returns what was removed. */
  async reapStale(): Promise<StaleEntry<PortEntry>[]> {
    const stale = await this.file.update((doc) => {
      const split = splitLive(doc.entries, this.options.leaseMs);
      doc.entries = split.live;
      logReaped(split.stale);
      return split.stale;
    });
    await this.#unclaim(stale.map((item) => item.entry));
    await this.#claims.prune(this.options.leaseMs).catch((error: unknown) => debug('could not prune host claims: %O', error));
    return stale;
  }

  /** Forgets the host-wide claims of released lanes (dead owners' claims are taken over anyway). */
  async #unclaim(lanes: readonly PortEntry[]): Promise<void> {
    if (lanes.length === 0) return;
    await this.#claims.drop(this.options.stateDir, lanes).catch((error: unknown) => {
      debug('could not drop host claims: %O', error);
    });
  }

  /** See {@link claimFreePorts}. */
  async #claimFree(count: number, held: ReadonlySet<number>, key: LaneKey, owner: Owner, into: PortClaim[], timing?: AllocationTiming): Promise<void> {
    const { range, stateDir, leaseMs } = this.options;
    const wanted = { count, held, key, owner, into, spread: Date.now() - this.#contendedAt < SPREAD_MS, onContention: () => void (this.#contendedAt = Date.now()) };
    await claimFreePorts({ claims: this.#claims, range, stateDir, leaseMs, ...(timing ? { timing } : {}) }, wanted, async (tally) =>
      exhaustedError(range, key, count, tally, splitLive((await this.file.read()).entries, leaseMs).live),
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

function logReaped(stale: readonly StaleEntry<PortEntry>[]): void {
  for (const { entry, reason } of stale) debug('reaped ports %o of %s: %s', entry.ports, describeLane(entry), reason);
}
