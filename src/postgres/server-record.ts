import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { EMBEDDED_DIR_ENV } from '../env-vars.js';
import { LanesError, isLanesError, messageOf } from '../errors.js';
import { debugLogger } from '../log.js';
import { PortAllocator } from '../ports/port-allocator.js';
import { isPidAlive, newOwner, pidStartTime } from '../state/owner.js';
import {
  generatePassword,
  initCluster,
  postmasterState,
  readPassword,
  readPostmasterPid,
  resetPassword,
  startCluster,
  stopCluster,
  type Cluster,
} from './cluster.js';
import { clusterMajor } from './layout.js';
import type { EmbeddedServerRecord, PortLedgerRef } from './embedded-users.js';

const debug = debugLogger('postgres');

/** The run id under which embedded servers record their port in a port ledger. */
export const PORT_LEDGER_RUN_ID = 'embedded-postgres';

/** Where a new server of `cluster` records its port. */
export interface StartContext {
  stateDir: string;
  startTimeoutMs: number;
}

/** True while the postmaster of `record` runs (the same process, not a recycled pid). */
export async function isRecordedServerRunning(record: EmbeddedServerRecord): Promise<boolean> {
  if ((await postmasterState(record.postmasterPid, record.dataDir)) !== 'running') return false;
  if (record.postmasterStart === undefined) return true;
  const start = pidStartTime(record.postmasterPid);
  return start === undefined || start === record.postmasterStart;
}

/**
 * A record for a server that already runs on the cluster's data dir without being registered
 * (the users file was lost or quarantined), or undefined. Clears a `postmaster.pid` left by a
 * killed server so that the next start does not trip over it.
 */
export async function adoptRunningServer(cluster: Cluster): Promise<EmbeddedServerRecord | undefined> {
  const { dataDir } = cluster.layout;
  const info = await readPostmasterPid(dataDir);
  if (!info) return undefined;
  let state = await postmasterState(info.pid, dataDir);
  if (state === 'running' && info.port !== undefined && info.status !== 'stopping') {
    debug('adopting the running server %d of %s on port %d', info.pid, dataDir, info.port);
    return recordOf(cluster, info.port, info.pid);
  }
  // A SIGKILLed postmaster may linger as a zombie until init reaps it, and PostgreSQL counts a
  // zombie as alive. Give init a moment; then clear the lock file (the backends of a dead
  // postmaster exit at once). A pid that is fully gone is left to PostgreSQL, whose own check of
  // the shared memory segment is the safer one.
  for (let waited = 0; state === 'gone' && isPidAlive(info.pid) && waited < 1_000; waited += 100) {
    await sleep(100);
    state = await postmasterState(info.pid, dataDir);
  }
  const zombie = state === 'gone' && isPidAlive(info.pid);
  // A pid now used by another program is safe to ignore; a PostgreSQL process started some other way is not.
  const foreign = state === 'foreign' && (await postmasterState(info.pid)) === 'foreign';
  if (zombie || foreign) {
    debug('removing stale %s/postmaster.pid of pid %d (%s)', dataDir, info.pid, zombie ? 'zombie' : 'pid reused');
    await rm(join(dataDir, 'postmaster.pid'), { force: true });
  }
  return undefined;
}

/**
 * Initialises the cluster when needed, allocates a port in the ledger of `context.stateDir`,
 * starts the server and hands the port entry over to the postmaster (so it is reaped when the
 * postmaster is gone). Leaves nothing running and no port held when it fails.
 */
export async function startEmbeddedServer(cluster: Cluster, context: StartContext): Promise<EmbeddedServerRecord> {
  await prepareCluster(cluster, context.startTimeoutMs);
  const ledger: PortLedgerRef = { stateDir: context.stateDir, runId: PORT_LEDGER_RUN_ID, project: cluster.layout.dataDir };
  const allocator = new PortAllocator({ stateDir: ledger.stateDir, runId: ledger.runId });
  let port: number;
  let pid: number;
  for (let attempt = 1; ; attempt++) {
    const { ports } = await allocator.allocatePortsForProject(ledger.project, { names: ['postgres'], owner: newOwner(ledger.runId) });
    port = ports.postgres!;
    try {
      pid = await startWithRetries(cluster, port, context.startTimeoutMs);
      break;
    } catch (error) {
      await releasePortEntry(ledger);
      // Another program (e.g. a run with another state folder) took the port since it was probed.
      const taken = isLanesError(error) && /could not bind|address already in use/i.test(error.message);
      if (!taken || attempt >= 8) throw error;
      debug('port %d was taken meanwhile: allocating another', port);
      await sleep(Math.random() * 100 * attempt);
    }
  }
  await allocator.setPortsOwner(ledger.project, newOwner(ledger.runId, pid));
  return { ...recordOf(cluster, port, pid), portLedger: ledger };
}

/** Stops the server of `record` (fast, then immediate, then SIGKILL) and releases its port entry. */
export async function stopEmbeddedServer(cluster: Cluster, record: EmbeddedServerRecord): Promise<void> {
  if (await isRecordedServerRunning(record)) {
    debug('stopping the embedded server %d of %s', record.postmasterPid, record.dataDir);
    const stopped = (await stopCluster(cluster, 'fast', 30_000)) || (await stopCluster(cluster, 'immediate', 10_000));
    if (!stopped) {
      try {
        process.kill(record.postmasterPid, 'SIGKILL');
      } catch (error) {
        debug('SIGKILL of %d failed: %s', record.postmasterPid, messageOf(error));
      }
    }
  }
  if (record.portLedger) await releasePortEntry(record.portLedger);
}

/** Refreshes the heartbeat of the server's port entry (its owner, the postmaster, cannot). */
export async function touchPortEntry(ledger: PortLedgerRef): Promise<void> {
  if (!existsSync(ledger.stateDir)) return;
  await new PortAllocator({ stateDir: ledger.stateDir, runId: ledger.runId }).touchPortsOf(ledger.project);
}

async function releasePortEntry(ledger: PortLedgerRef): Promise<void> {
  // The state folder of the run that started the server may be gone (a temporary one): its entry
  // went with it, and writing the release would only create the folder again.
  if (!existsSync(ledger.stateDir)) return;
  try {
    await new PortAllocator({ stateDir: ledger.stateDir, runId: ledger.runId }).releasePortsForProject(ledger.project, { runId: ledger.runId });
  } catch (error) {
    debug('releasing the port entry of %s in %s failed: %s', ledger.project, ledger.stateDir, messageOf(error));
  }
}

async function prepareCluster(cluster: Cluster, timeoutMs: number): Promise<void> {
  const { dataDir } = cluster.layout;
  if ((await clusterMajor(dataDir)) === undefined) {
    const entries = await readdir(dataDir).catch(() => []);
    if (entries.length > 0) {
      throw new LanesError('EMBEDDED_POSTGRES_FAILED', `${dataDir} exists but is not a PostgreSQL data directory (no PG_VERSION).`, {
        hint: `Point the embedded option dataDir (or ${EMBEDDED_DIR_ENV}) at an empty or missing folder, or delete this one.`,
      });
    }
    await rm(dataDir, { recursive: true, force: true });
    await initCluster(cluster, generatePassword(), timeoutMs);
  } else if ((await readPassword(cluster.layout)) === undefined) {
    await resetPassword(cluster, generatePassword(), timeoutMs);
  }
}

async function startWithRetries(cluster: Cluster, port: number, timeoutMs: number): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startCluster(cluster, port, timeoutMs);
    } catch (error) {
      // Right after a crash the old postmaster's lock file or shared memory may still be in use.
      const retriable = isLanesError(error) && /postmaster\.pid|shared memory block is still in use/.test(error.message);
      if (!retriable || attempt >= 5) throw error;
      debug('start attempt %d failed, retrying: %s', attempt, messageOf(error));
      await sleep(200 * attempt);
    }
  }
}

function recordOf(cluster: Cluster, port: number, pid: number): EmbeddedServerRecord {
  const record: EmbeddedServerRecord = {
    dataDir: cluster.layout.dataDir,
    port,
    postmasterPid: pid,
    startedAt: new Date().toISOString(),
    release: cluster.binaries.release,
    binDir: cluster.binaries.binDir,
    users: [],
  };
  const start = pidStartTime(pid);
  if (start !== undefined) record.postmasterStart = start;
  if (cluster.user) record.runAs = cluster.user.name;
  return record;
}
