import { randomUUID } from 'node:crypto';
import { LanesError, messageOf } from '../errors.js';
import { passwordOf } from '../redact.js';
import { debugLogger } from '../log.js';
import { judgeOwner, newOwner, type Owner } from '../state/owner.js';
import type { StateFile } from '../state/state-file.js';
import { renewalInterval } from '../state/heartbeat.js';
import { resolveBinaries } from './binaries.js';
import { readPassword, SUPERUSER, type Cluster } from './cluster.js';
import { serverVersionNum, withClient } from './connect.js';
import { resolveLayout } from './layout.js';
import { resolveEmbeddedOptions, type AcquireEmbeddedPostgresOptions, type ResolvedEmbeddedOptions } from './options.js';
import { resolveServerUser } from './os-user.js';
import { openEmbeddedUsers, type EmbeddedUsersDocument, type EmbeddedServerRecord, type EmbeddedUser } from './embedded-users.js';
import { forgetDeadServer, watchEmbeddedServer } from './watch.js';
import { adoptRunningServer, isRecordedServerRunning, startEmbeddedServer, stopEmbeddedServer, touchPortEntry } from './server-record.js';
import { askServer, isUser, openPresence } from './embedded-evidence.js';

const debug = debugLogger('postgres');

/** A run's hold on a PostgreSQL server: where to reach it, and how to let go of it. */
export interface ServerHold extends AsyncDisposable {
  /** The admin URL (`postgres://…@127.0.0.1:<port>/postgres`). Holds the password: never log it. */
  readonly adminUrl: string;
  /** `server_version_num`, e.g. `180004` for 18.4. */
  readonly version: number;
  /** Lets go of the server: the embedded one stops when this was its last user. Safe to call twice. */
  release(): Promise<void>;
  /**
   * Keeps the hold after the process exits (lanes kept for debugging): it counts as alive until
   * `releaseEmbeddedRuns` (`e2e-lanes down`) removes it. With `owner` (a warm run's watchdog), it
   * counts as alive as long as that owner does. `release()` is a no-op afterwards. Nothing to keep
   * on a given server.
   */
  keep(owner?: Owner): Promise<void>;
}

/** A reference to the shared embedded server, held by one run until `release()`. */
export interface EmbeddedPostgres extends ServerHold {
  readonly port: number;
  readonly dataDir: string;
  /** The server's main process. */
  readonly postmasterPid: number;
  /** The server's log file. */
  readonly logFile: string;
  /** True when this call started the server, false when it joined a running one. */
  readonly started: boolean;
}

/** What {@link reapEmbeddedPostgres} did. */
export interface EmbeddedReapResult {
  /** Users whose process was gone or whose heartbeat had expired. */
  reaped: number;
  /** Live users left. */
  users: number;
  /** True when the server was stopped because no live user was left. */
  stopped: boolean;
}

/**
 * A reference to the embedded PostgreSQL server of the data directory, shared by every run on
 * this host: starts it (detached, so it outlives this process) if it is not running, else joins
 * it. Users are recorded with their owner in `embedded-postgres.json` next to the data directory,
 * under a cross-process lock, so two runs never start two servers on one data directory. Users
 * whose process died are reaped at the next acquire or release; the last live user stops the server.
 *
 * @throws {LanesError} `EMBEDDED_POSTGRES_UNAVAILABLE` when `embedded-postgres` is not installed;
 *   `EMBEDDED_POSTGRES_FAILED` when the server cannot be initialised, started or reached.
 */
export async function acquireEmbeddedPostgres(options: AcquireEmbeddedPostgresOptions = {}): Promise<EmbeddedPostgres> {
  const resolved = resolveEmbeddedOptions(options);
  const cluster = await resolveCluster(resolved);
  const usersFile = openEmbeddedUsers(cluster.layout.registryFile, resolved.startTimeoutMs);
  const me: EmbeddedUser = { id: randomUUID(), ...newOwner(resolved.runId) };

  const joined = await usersFile.update(async (doc) => {
    let record = doc.servers.find((server) => server.dataDir === cluster.layout.dataDir);
    let started = false;
    let version: ServerFacts | undefined;
    if (record) {
      reapUsers(record, resolved.leaseMs);
      if (await isRecordedServerRunning(record)) {
        version = await probe(cluster, record, resolved).catch(async (error: unknown) => {
          if (record!.users.length > 0) throw unusable(cluster, record!, error);
          debug('the unused server %d does not answer (%s): restarting it', record!.postmasterPid, messageOf(error));
          await stopEmbeddedServer(cluster, record!);
          return undefined;
        });
      } else {
        debug('the server %d of %s is gone', record.postmasterPid, record.dataDir);
        await stopEmbeddedServer(cluster, record);
      }
      if (version === undefined) {
        doc.servers = doc.servers.filter((server) => server !== record);
        record = undefined;
      }
    }
    if (!record) {
      const adopted = await adoptRunningServer(cluster);
      if (adopted) {
        // Not recorded, so maybe not ours: never stopped here, even when it does not let us in.
        version = await probe(cluster, adopted, resolved).catch((error: unknown) => {
          throw unusable(cluster, adopted, error);
        });
        record = adopted;
      }
    }
    if (!record) {
      record = await startEmbeddedServer(cluster, { stateDir: resolved.stateDir, startTimeoutMs: resolved.startTimeoutMs });
      started = true;
      try {
        version = await probe(cluster, record, resolved);
      } catch (error) {
        await stopEmbeddedServer(cluster, record);
        throw unusable(cluster, record, error);
      }
    }
    record.users.push(me);
    if (!doc.servers.includes(record)) doc.servers.push(record);
    return { record: structuredClone(record), started, facts: version! };
  });

  const password = (await readPassword(cluster.layout))!;
  debug('%s the embedded server %d on port %d (user %s)', joined.started ? 'started' : 'joined', joined.record.postmasterPid, joined.record.port, me.id);
  const adminUrl = adminUrlOf(password, joined.record.port);
  return createHandle(cluster, usersFile, joined.record, me, resolved.leaseMs, await openPresence(adminUrl, me), {
    adminUrl,
    version: joined.facts.version,
    systemIdentifier: joined.facts.systemIdentifier,
    started: joined.started,
  });
}

/**
 * Removes the users of the embedded server whose process is gone (or whose heartbeat expired) and
 * stops the server when no live user is left. Used by `e2e-lanes gc`; never starts a server.
 */
export async function reapEmbeddedPostgres(options: AcquireEmbeddedPostgresOptions = {}): Promise<EmbeddedReapResult> {
  return releaseEmbeddedRuns([], options);
}

/**
 * Removes the users of the given runs (kept ones included) and those whose process is gone, and
 * stops the server when no live user is left. Used by `e2e-lanes down`; never starts a server.
 */
export async function releaseEmbeddedRuns(runIds: readonly string[], options: AcquireEmbeddedPostgresOptions = {}): Promise<EmbeddedReapResult> {
  const resolved = resolveEmbeddedOptions(options);
  const cluster = await resolveCluster(resolved);
  const usersFile = openEmbeddedUsers(cluster.layout.registryFile, resolved.startTimeoutMs);
  return usersFile.update(async (doc) => {
    const record = doc.servers.find((server) => server.dataDir === cluster.layout.dataDir);
    if (!record) return { reaped: 0, users: 0, stopped: false };
    const before = record.users.length;
    record.users = record.users.filter((user) => !runIds.includes(user.runId));
    const released = before - record.users.length;
    const reaped = reapUsers(record, resolved.leaseMs) + released;
    const running = await isRecordedServerRunning(record);
    if (running && record.users.length > 0) return { reaped, users: record.users.length, stopped: false };
    if (running && (await othersHold(cluster, record, []))) return { reaped, users: record.users.length, stopped: false };
    await stopEmbeddedServer(cluster, record);
    doc.servers = doc.servers.filter((server) => server !== record);
    return { reaped, users: 0, stopped: running };
  });
}

async function resolveCluster(resolved: ResolvedEmbeddedOptions): Promise<Cluster> {
  const binaries = await resolveBinaries(resolved.binDir);
  const user = await resolveServerUser(resolved.createPostgresUser);
  const layout = await resolveLayout(resolved.dataDir, binaries.major, user);
  return { binaries, user, layout };
}

/** Removes users whose owner is dead; returns how many. */
function reapUsers(record: EmbeddedServerRecord, leaseMs: number): number {
  const before = record.users.length;
  record.users = record.users.filter((user) => {
    const verdict = judgeOwner(user, leaseMs);
    if (!verdict.alive) debug('reaped user %s (run %s) of the embedded server: %s', user.id, user.runId, verdict.reason);
    return verdict.alive;
  });
  return before - record.users.length;
}

/** What a connection tells of the server: its version and the identity of its cluster. */
interface ServerFacts {
  version: number;
  systemIdentifier: string;
}

async function probe(cluster: Cluster, record: EmbeddedServerRecord, resolved: ResolvedEmbeddedOptions): Promise<ServerFacts> {
  const password = await readPassword(cluster.layout);
  if (password === undefined) throw new Error(`the password file ${cluster.layout.passwordFile} is missing`);
  // A server that died on this port while this process watched it is not the one started or joined now.
  forgetDeadServer(record.port, password);
  return withClient(
    adminUrlOf(password, record.port),
    async (client) => {
      const { rows } = await client.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()');
      return { version: await serverVersionNum(client), systemIdentifier: rows[0]!.id };
    },
    { timeoutMs: resolved.connectTimeoutMs },
  );
}

/**
 * Whether anyone but the users file's users (and `except`) uses the running server of `record`: a
 * live run's presence session, or a lane kept or waiting warm (see embedded-evidence.ts). The users
 * it shows are written back into `record`. A server that cannot be asked is not held.
 */
async function othersHold(cluster: Cluster, record: EmbeddedServerRecord, except: readonly string[]): Promise<boolean> {
  const password = await readPassword(cluster.layout);
  if (password === undefined) return false;
  const evidence = await askServer(adminUrlOf(password, record.port), except).catch((error: unknown) => {
    debug('could not ask the server %d who uses it: %s', record.postmasterPid, messageOf(error));
    return undefined;
  });
  if (!evidence || (evidence.users.length === 0 && evidence.heldLanes.length === 0)) return false;
  for (const user of evidence.users) if (!record.users.some((known) => isUser(known, user.id) || isUser(user, known.id))) record.users.push(user);
  debug('the server %d is still used (users file lost or stale): sessions of %o, held lanes %o', record.postmasterPid, evidence.users.map((user) => user.runId), evidence.heldLanes);
  return true;
}

function adminUrlOf(password: string, port: number): string {
  return `postgres://${SUPERUSER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
}

function createHandle(
  cluster: Cluster,
  usersFile: StateFile<EmbeddedUsersDocument>,
  record: EmbeddedServerRecord,
  me: EmbeddedUser,
  leaseMs: number,
  closePresence: () => Promise<void>,
  facts: { adminUrl: string; version: number; systemIdentifier: string; started: boolean },
): EmbeddedPostgres {
  const { dataDir } = cluster.layout;
  // From now on a death of the server, or another server on its port, is noticed at once.
  const unwatch = watchEmbeddedServer({ port: record.port, password: passwordOf(facts.adminUrl)!, postmasterPid: record.postmasterPid, dataDir, logFile: cluster.layout.logFile, systemIdentifier: facts.systemIdentifier });
  const beat = async (): Promise<void> => {
    try {
      await usersFile.update((doc) => {
        const server = doc.servers.find((candidate) => candidate.dataDir === dataDir && candidate.postmasterPid === record.postmasterPid);
        if (!server) return;
        const user = server.users.find((candidate) => isUser(candidate, me.id));
        if (user) user.heartbeatAt = new Date().toISOString();
        else server.users.push({ ...me, heartbeatAt: new Date().toISOString() });
      });
      if (record.portLedger) await touchPortEntry(record.portLedger);
    } catch (error) {
      debug('heartbeat of %s failed: %s', me.id, messageOf(error));
    }
  };
  const timer = setInterval(() => void beat(), renewalInterval(leaseMs));
  timer.unref();

  let releasing: Promise<void> | undefined;
  const release = (): Promise<void> => {
    releasing ??= (async () => {
      clearInterval(timer);
      unwatch();
      await closePresence();
      await usersFile.update(async (doc) => {
        const server = doc.servers.find((candidate) => candidate.dataDir === dataDir && candidate.postmasterPid === record.postmasterPid);
        if (!server) return;
        server.users = server.users.filter((user) => !isUser(user, me.id));
        reapUsers(server, leaseMs);
        if (server.users.length > 0 || (await othersHold(cluster, server, [me.id]))) {
          debug('released user %s; %d user(s) keep the server %d', me.id, server.users.length, server.postmasterPid);
          return;
        }
        await stopEmbeddedServer(cluster, server);
        doc.servers = doc.servers.filter((candidate) => candidate !== server);
        debug('released user %s; stopped the server %d', me.id, server.postmasterPid);
      });
    })();
    return releasing;
  };

  const keep = (owner?: Owner): Promise<void> => {
    releasing ??= (async () => {
      clearInterval(timer);
      unwatch();
      await closePresence();
      await usersFile.update((doc) => {
        const server = doc.servers.find((candidate) => candidate.dataDir === dataDir && candidate.postmasterPid === record.postmasterPid);
        const user = server?.users.find((candidate) => isUser(candidate, me.id));
        // Handed to a warm run's watchdog (alive while it lives, until its deadline), else kept.
        if (user && owner) Object.assign(user, { pid: owner.pid, host: owner.host, heartbeatAt: owner.heartbeatAt, ...(owner.pidStart !== undefined ? { pidStart: owner.pidStart } : {}), ...(owner.pidNs !== undefined ? { pidNs: owner.pidNs } : {}), ...(owner.bootId !== undefined ? { bootId: owner.bootId } : {}), ...(owner.warmUntil !== undefined ? { warmUntil: owner.warmUntil } : {}) });
        else if (user) user.kept = true;
      });
    })();
    return releasing;
  };

  return {
    keep,
    adminUrl: facts.adminUrl,
    port: record.port,
    dataDir,
    version: facts.version,
    postmasterPid: record.postmasterPid,
    logFile: cluster.layout.logFile,
    started: facts.started,
    release,
    [Symbol.asyncDispose]: release,
  };
}

function unusable(cluster: Cluster, record: EmbeddedServerRecord, cause: unknown): LanesError {
  return new LanesError(
    'EMBEDDED_POSTGRES_FAILED',
    `The embedded PostgreSQL server ${record.postmasterPid} of ${record.dataDir} runs on port ${record.port} but cannot be used: ${messageOf(cause)}`,
    {
      hint: `See ${cluster.layout.logFile}. Stop the runs that use it, or stop it with \`pg_ctl stop -D ${record.dataDir}\`, then try again.`,
      cause,
      details: { dataDir: record.dataDir, port: record.port, logFile: cluster.layout.logFile },
    },
  );
}
