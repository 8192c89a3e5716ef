import { PORT_RANGE_ENV } from '../env-vars.js';
import { LanesError } from '../errors.js';
import { describeLane, type LaneKey, type LedgerEntry, type Owner } from '../state/index.js';
import type { HostClaims, PortClaim } from './host-claims.js';
import { isPortFree } from './probe.js';
import { isBrowserRestrictedPort, restrictedPortsIn } from './restricted.js';
import type { AllocationTiming } from './timing.js';

/** Why ports of the range were not taken, for `PORT_RANGE_EXHAUSTED`. */
export interface Tally {
  /** Something else listens on them. */
  busy: number;
  /** Claimed by live lanes of other state folders. */
  elsewhere: number;
  /** Claimed by live lanes of this state folder not yet in its ledger (being allocated). */
  here: number;
  /** Refused by browsers. */
  restricted: number;
}

interface Scope {
  claims: HostClaims;
  range: readonly [number, number];
  stateDir: string;
  leaseMs: number;
  timing?: AllocationTiming;
}

interface Wanted {
  count: number;
  /** Ports that lanes of this state folder hold (from its ledger). */
  held: ReadonlySet<number>;
  key: LaneKey;
  owner: Owner;
  /** Where the claims go, lowest port first; the caller withdraws them if they are not recorded. */
  into: PortClaim[];
  /** Start at a random place among the unclaimed ports instead of the lowest (the allocator met others lately). */
  spread?: boolean;
  /** Called when a port was lost to another process claiming it at the same moment. */
  onContention?: () => void;
}

/**
 * Claims `count` free ports of the range into `into`: skipping ports browsers refuse, ports lanes of
 * this state folder hold, ports claimed by live lanes anywhere on the host, and ports something else
 * listens on (the bind probe, made once the port is claimed).
 * @throws {LanesError} `PORT_RANGE_EXHAUSTED` (made by `exhausted`) when the range has no `count` such ports.
 */
export async function claimFreePorts(scope: Scope, wanted: Wanted, exhausted: (tally: Tally) => Promise<LanesError>): Promise<void> {
  const { claims, stateDir, leaseMs, timing } = scope;
  const [first, last] = scope.range;
  const { count, held, key, owner, into } = wanted;
  const tally: Tally = { busy: 0, elsewhere: 0, here: 0, restricted: 0 };
  let picked = 0;
  /** Tries a port that had a claim (or was lost to one): its claim is read, a dead owner's taken over. */
  const tryPort = async (port: number): Promise<void> => {
    if (timing) timing.tried++;
    const claim = await claims.claim(port, stateDir, key, owner, leaseMs);
    if (claim === 'contended') return;
    const probed = performance.now();
    if (claim === 'other-folder') tally.elsewhere++;
    else if (claim === 'this-folder') tally.here++;
    else if (!(await isPortFree(port).finally(() => timing && (timing.probe += performance.now() - probed)))) {
      tally.busy++;
      await claims.withdraw([claim]);
    } else {
      into.push(claim);
      picked++;
    }
  };
  // First the ports without a claim at one listing of the claims: side by side, lowest first for an
  // allocator that met nobody lately. Losing a port to a process claiming it at the same moment means
  // others scan the same ports: jump to a random place among the ports not tried yet, so that
  // concurrent allocators spread over the range instead of all meeting on every port (an allocator
  // that met others lately starts at a random place). The ports lost come next, then (if still
  // short) the claimed ports, whose claims are read: a dead owner's claim is taken over.
  const listed = performance.now();
  const claimed = await claims.claimedPorts();
  if (timing) timing.list += performance.now() - listed;
  const untried: number[] = [];
  for (let port = first; port <= last; port++) {
    if (isBrowserRestrictedPort(port)) tally.restricted++;
    else if (!held.has(port) && !claimed.has(port)) untried.push(port);
  }
  const later: number[] = [];
  let lost = 0;
  let at = wanted.spread ? randomIndex(untried.length) : 0;
  while (picked < count && untried.length > 0) {
    // As many ports as are still missing, side by side, then one bind probe of them all: a port lost
    // is replaced at once (creating a claim is a few synchronous calls), not after a probe.
    const batch: PortClaim[] = [];
    while (batch.length < count - picked && untried.length > 0) {
      if (at >= untried.length) at = 0;
      const port = untried.splice(at, 1)[0]!;
      if (timing) timing.tried++;
      const claim = await claims.claim(port, stateDir, key, owner, leaseMs, { unclaimed: true });
      if (typeof claim !== 'string') {
        batch.push(claim);
        continue;
      }
      if (timing) timing.lost++;
      later.push(port);
      lost++;
      at = randomIndex(untried.length);
    }
    const probed = performance.now();
    const free = await Promise.all(batch.map((claim) => isPortFree(claim.port))).catch(async (error: unknown) => {
      await claims.withdraw(batch);
      throw error;
    });
    if (timing) timing.probe += performance.now() - probed;
    const busy = batch.filter((_, index) => !free[index]);
    into.push(...batch.filter((_, index) => free[index]));
    picked += batch.length - busy.length;
    tally.busy += busy.length;
    await claims.withdraw(busy);
  }
  if (lost > 0) wanted.onContention?.();
  for (const port of later) {
    if (picked >= count) break;
    await tryPort(port);
  }
  for (let port = first; port <= last && picked < count; port++) {
    if (!isBrowserRestrictedPort(port) && !held.has(port) && claimed.has(port)) await tryPort(port);
  }
  if (picked < count) throw await exhausted(tally);
  // Lowest port to the first name, whatever order the claims finished in.
  into.splice(into.length - picked, picked, ...into.slice(into.length - picked).sort((a, b) => a.port - b.port));
}

function randomIndex(length: number): number {
  return Math.floor(Math.random() * length);
}

/** `PORT_RANGE_EXHAUSTED` for `key`, naming the range, who holds its ports (`live`: the ledger's live lanes) and why the rest were not taken. */
export function exhaustedError(range: readonly [number, number], key: LaneKey, count: number, tally: Tally, live: readonly (LedgerEntry & { ports: Record<string, number> })[]): LanesError {
  const [first, last] = range;
  const holders = new Map<string, number>();
  let held = 0;
  for (const entry of live) {
    const inRange = Object.values(entry.ports).filter((port) => port >= first && port <= last).length;
    if (inRange === 0) continue;
    held += inRange;
    const label = `${entry.project}${entry.worker === undefined ? '' : `#${entry.worker}`} (run ${entry.runId}, pid ${entry.owner.pid})`;
    holders.set(label, (holders.get(label) ?? 0) + inRange);
  }
  const byWhom = [...holders].slice(0, 8).map(([label, n]) => `${n} by ${label}`).join(', ');
  const restricted = restrictedPortsIn(first, last);
  return new LanesError(
    'PORT_RANGE_EXHAUSTED',
    `No ${count} free port(s) in range ${first}-${last} for ${describeLane(key)}: ` +
      `${held} held by live lanes${byWhom ? ` (${byWhom}${holders.size > 8 ? ', …' : ''})` : ''}, ` +
      (tally.here > 0 ? `${tally.here} being allocated by other processes of this state folder, ` : '') +
      `${tally.elsewhere} claimed by lanes of other state folders on this host, ${tally.busy} in use by other processes` +
      (restricted.length > 0 ? `, ${restricted.length} refused by browsers (${restricted.join(', ')}).` : '.'),
    {
      hint: `Widen the range (option \`range\`, or ${PORT_RANGE_ENV}=3100-5500), stop the processes using those ports, or run \`npx e2e-lanes gc\` to reap lanes of dead runs.`,
      details: { range: [first, last], held, claimed: tally.elsewhere, busy: tally.busy, restricted: restricted.length },
    },
  );
}
