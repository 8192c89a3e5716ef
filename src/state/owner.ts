import { HOST_ENV, OWNER_PID_ENV, RUN_ID_ENV } from '../env-vars.js';
import { LanesError } from '../errors.js';
import { randomBytes } from 'node:crypto';
import { procStat } from './proc.js';
import { identityOf, pidNotJudgeable, type ProcessRecord, type ProcessVerdict } from './identity.js';
import { hostname } from 'node:os';
import { ciRunId } from './ci.js';

/** Who holds an allocation: recorded with every entry of every state file. */
export interface Owner {
  /** The run the entry belongs to. */
  runId: string;
  /** The long-lived process of the run (the Playwright runner), not the worker that asked. */
  pid: number;
  /** Host name of the owner's machine: a pid is only meaningful on its own host. */
  host: string;
  /** Kernel start time of `pid` (Linux), to tell a recycled pid from the real owner. */
  pidStart?: number;
  /** The PID namespace `pid` is a number of (inode of `/proc/self/ns/pid` of the recorder, Linux). */
  pidNs?: number;
  /** The boot the owner ran in (`/proc/sys/kernel/random/boot_id`, Linux). */
  bootId?: string;
  /** When the entry was created (ISO 8601). */
  createdAt: string;
  /** Last time a live process of the run refreshed the entry (ISO 8601). */
  heartbeatAt: string;
  /**
   * Kept after its run ended, for debugging (`E2E_LANES_KEEP=1`): counts as alive whatever its pid
   * and heartbeat, until `e2e-lanes down` removes it.
   */
  kept?: boolean;
  /**
   * Set on the entries of a warm run (option `reuse`): the owner is the run's watchdog process, and
   * the entries count as alive until this moment (ISO 8601) while that process lives, whatever the
   * heartbeat. The next run of the same config takes them over; the watchdog stops them then.
   */
  warmUntil?: string;
}

/** Whether two records name the same owner: the same process on the same host, recorded at the same moment. */
export function sameOwner(a: Owner, b: Owner): boolean {
  return a.host === b.host && a.pid === b.pid && a.createdAt === b.createdAt;
}

/** This machine's identity as recorded in owners (overridable for multi-host simulations). */
export function currentHost(): string {
  return process.env[HOST_ENV] || hostname();
}

/**
 * The run id: the explicit option, else `E2E_LANES_RUN_ID`, else on CI an id derived from the
 * vendor's run variables and the Playwright shard (see {@link ciRunId}), else a new random id.
 * A derived or generated id is exported to `E2E_LANES_RUN_ID` so child processes (Playwright
 * workers) share it.
 */
export function resolveRunId(explicit?: string): string {
  if (explicit !== undefined) return validateRunId(explicit);
  const fromEnv = process.env[RUN_ID_ENV];
  if (fromEnv) return validateRunId(fromEnv);
  const fromCi = ciRunId();
  const generated = fromCi ? uniqueInvocation(fromCi) : generateRunId();
  process.env[RUN_ID_ENV] = validateRunId(generated);
  return generated;
}

/**
 * A CI id names the pipeline, job and shard, but one job may start several runs (a monorepo's
 * packages in parallel, a retry loop): a short random part keeps each invocation's lanes apart.
 * It goes before the shard, so `…-s2of4` stays readable at the end.
 */
function uniqueInvocation(ciId: string): string {
  const random = randomBytes(3).toString('hex');
  const shard = /-s\d+of\d+$/.exec(ciId)?.[0] ?? '';
  const head = ciId.slice(0, ciId.length - shard.length).slice(0, 64 - shard.length - random.length - 1);
  return `${head}-${random}${shard}`;
}

/** A short, sortable, random run id such as `r20261121t2330-4f9a1c`. */
export function generateRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', 't').toLowerCase();
  return `r${stamp}-${randomBytes(3).toString('hex')}`;
}

/** Accepts 1-64 characters of `[A-Za-z0-9._-]` starting with a letter or digit. */
export function validateRunId(runId: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(runId)) {
    throw new LanesError('INVALID_OPTION', `Invalid run id ${JSON.stringify(runId)} (set by the runId option or ${RUN_ID_ENV}).`, {
      hint: `Set option \`runId\` (or ${RUN_ID_ENV}) to 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit.`,
    });
  }
  return runId;
}

/**
 * The pid that owns this process's allocations: `E2E_LANES_OWNER_PID` when it names a live
 * process (the run's long-lived parent), else this process.
 */
export function resolveOwnerPid(): number {
  const fromEnv = Number(process.env[OWNER_PID_ENV]);
  if (Number.isInteger(fromEnv) && fromEnv > 0 && isPidAlive(fromEnv)) return fromEnv;
  return process.pid;
}

/** Makes this process the owner of its run for itself and every child it starts. */
export function claimRunOwnership(): number {
  const existing = Number(process.env[OWNER_PID_ENV]);
  if (Number.isInteger(existing) && existing > 0 && isPidAlive(existing)) return existing;
  process.env[OWNER_PID_ENV] = String(process.pid);
  return process.pid;
}

/** A fresh owner record for `runId`, owned by {@link resolveOwnerPid}. */
export function newOwner(runId: string, pid = resolveOwnerPid(), now = new Date()): Owner {
  const owner: Owner = {
    runId,
    pid,
    host: currentHost(),
    createdAt: now.toISOString(),
    heartbeatAt: now.toISOString(),
  };
  return Object.assign(owner, identityOf(pid));
}

/**
 * True while a process with this pid exists on this host and is not a zombie (EPERM counts as
 * alive). Zombies count as dead: where PID 1 does not reap orphans (containers without an init), a
 * killed process stays a zombie forever, yet runs no code and holds nothing.
 */
export function isPidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // Without /proc (not Linux), or when it exited just now, kill() had the last word.
  return procStat(pid)?.state !== 'Z';
}

/** The kernel start time of a process (Linux `/proc/<pid>/stat` field 22), or undefined elsewhere. */
export function pidStartTime(pid: number): number | undefined {
  return procStat(pid)?.startTime;
}

export type OwnerVerdict = { alive: true } | { alive: false; reason: string };

/**
 * The one judge of a recorded process (state files' owners, the registry's rows, databases'
 * marks, the environment marks of server processes): by its pid only when the record is of this
 * host, this boot and this PID namespace; then it is alive, or gone (its pid is gone, or now
 * belongs to another process). Otherwise it cannot be judged here: a lease decides, never the pid.
 */
export function judgeProcess(record: ProcessRecord, here = currentHost()): ProcessVerdict {
  if (record.host !== undefined && record.host !== here) return { state: 'unknown', reason: `owner pid ${record.pid} is on host ${record.host}` };
  const elsewhere = pidNotJudgeable(record);
  if (elsewhere) return { state: 'unknown', reason: `owner pid ${record.pid} is ${elsewhere}` };
  const where = record.host ? ` on ${record.host}` : '';
  if (!isPidAlive(record.pid)) return { state: 'gone', reason: `owner pid ${record.pid}${where} is gone` };
  if (record.pidStart !== undefined) {
    const start = pidStartTime(record.pid);
    if (start !== undefined && start !== record.pidStart) return { state: 'gone', reason: `owner pid ${record.pid} now belongs to another process` };
  }
  return { state: 'alive' };
}

/**
 * Why the process of `record` is provably gone, or undefined while it lives or cannot be judged
 * here (see {@link judgeProcess}): then only a lease may decide.
 */
export function processGone(record: ProcessRecord, here = currentHost()): string | undefined {
  const verdict = judgeProcess(record, here);
  return verdict.state === 'gone' ? verdict.reason : undefined;
}

/**
 * Decides whether an owner still holds its entries: where its pid can be judged (this host, boot and
 * PID namespace) it must be alive (and be the same process, not a recycled pid); anywhere its
 * heartbeat must be younger than the lease.
 */
export function judgeOwner(owner: Owner, leaseMs: number, now = Date.now()): OwnerVerdict {
  if (owner.kept) return { alive: true };
  if (owner.warmUntil !== undefined && !(now < Date.parse(owner.warmUntil))) {
    return { alive: false, reason: `warm lane idle until ${owner.warmUntil} (option reuse.idleMs)` };
  }
  if (owner.host === currentHost()) {
    const gone = processGone({ pid: owner.pid, pidStart: owner.pidStart, pidNs: owner.pidNs, bootId: owner.bootId });
    if (gone) return { alive: false, reason: gone };
  }
  // A warm run's watchdog does not beat: its pid and its deadline decide.
  if (owner.warmUntil !== undefined) return { alive: true };
  const age = now - Date.parse(owner.heartbeatAt);
  if (!(age <= leaseMs)) {
    return { alive: false, reason: `heartbeat is ${Math.round(age / 1000)} s old (lease ${Math.round(leaseMs / 1000)} s)` };
  }
  return { alive: true };
}

/** Structural check used when reading state files. */
export function isOwner(value: unknown): value is Owner {
  if (typeof value !== 'object' || value === null) return false;
  const o = value as Record<string, unknown>;
  return (
    typeof o.runId === 'string' &&
    typeof o.pid === 'number' &&
    typeof o.host === 'string' &&
    typeof o.createdAt === 'string' &&
    typeof o.heartbeatAt === 'string' &&
    (o.pidStart === undefined || typeof o.pidStart === 'number') &&
    (o.pidNs === undefined || typeof o.pidNs === 'number') &&
    (o.bootId === undefined || typeof o.bootId === 'string') &&
    (o.kept === undefined || typeof o.kept === 'boolean') &&
    (o.warmUntil === undefined || typeof o.warmUntil === 'string')
  );
}
