/**
 * Lanes recorded in the server's registry as well as the state file: an allocation claims the
 * lane's row under the lane's advisory lock, a lease kept fresh by this process lets any machine
 * reap the lanes of a dead one, and a removal checks the row again under the lock before it drops
 * anything. Private to the databases module.
 * @internal
 */
import type { Client } from 'pg';
import { debugLogger, warn } from '../../log.js';
import { currentHost, describeLane, newOwner, type Owner } from '../../state/index.js';
import type { DatabaseLedger } from './ledger.js';
import type { LaneClaim, LaneRecords } from './lane-records.js';
import type { LeaseKeeper } from './lease-keeper.js';
import { deleteRow, findRow, handOverRow, registryFailed, selectRows, withLaneLock, writeRow, type RegistryRow } from './registry.js';
import { claimFor, staleReason, type RemovalPick, type RemovalTarget } from './decisions.js';
import type { ServerAccess } from '../sql/server-access.js';

const debug = debugLogger('databases');

export class RegistryRecords implements LaneRecords {
  readonly kind = 'postgres';
  readonly ledger: DatabaseLedger;
  readonly #session: ServerAccess;
  readonly #leases: LeaseKeeper;
  readonly #prefix: string;
  readonly #stateDir: string;
  readonly #leaseMs: number;
  readonly #shard: string | undefined;

  constructor(options: { ledger: DatabaseLedger; session: ServerAccess; leases: LeaseKeeper; prefix: string; stateDir: string; leaseMs: number; shard: string | undefined }) {
    this.ledger = options.ledger;
    this.#session = options.session;
    this.#leases = options.leases;
    this.#prefix = options.prefix;
    this.#stateDir = options.stateDir;
    this.#leaseMs = options.leaseMs;
    this.#shard = options.shard;
  }

  async claim(client: Client, lane: LaneClaim, create: () => Promise<void>): Promise<void> {
    await withLaneLock(client, lane.databaseName, { wait: true }, () => this.#claimRow(client, lane, create));
  }

  hold(databaseName: string): void {
    this.#leases.hold(databaseName);
  }

  async handOver(client: Client, databaseNames: readonly string[], owner: Owner): Promise<void> {
    for (const databaseName of databaseNames) {
      try {
        await handOverRow(client, databaseName, owner, this.#leaseMs);
      } catch (error) {
        throw registryFailed(`hand ${databaseName} over in the lane registry`, error);
      }
    }
    if (owner.warmUntil === undefined) for (const databaseName of databaseNames) this.#leases.hold(databaseName);
    else this.#leases.forget(databaseNames);
  }

  rows(filter: { prefix: string; runId?: string }): Promise<RegistryRow[]> {
    return this.#session.withAdmin(async (client) => {
      try {
        return await selectRows(client, filter);
      } catch (error) {
        throw registryFailed('read the lane registry', error);
      }
    });
  }

  async remove(client: Client, target: RemovalTarget, pick: RemovalPick, lock: { wait: boolean }, drop: () => Promise<boolean | undefined>): Promise<boolean | undefined> {
    if (!target.row) return drop(); // allocated without the registry: the state file decides
    const outcome = await withLaneLock(client, target.databaseName, lock, async () => {
      const fresh = await findRow(client, target.databaseName);
      if (fresh && pick.row(fresh) === undefined) return undefined; // renewed or taken over meanwhile
      this.#leases.forget([target.databaseName]);
      const dropped = await drop();
      if (dropped === undefined) {
        if (fresh?.host === currentHost()) this.#leases.hold(target.databaseName);
        return undefined;
      }
      if (fresh) await deleteRow(client, target.databaseName);
      return dropped;
    });
    if (!outcome.locked) debug('skipping %s: another process is working on it', target.databaseName);
    return outcome.locked ? outcome.value : undefined;
  }

  async removeUnrecorded(client: Client, databaseName: string, drop: () => Promise<void>): Promise<void> {
    await withLaneLock(client, databaseName, { wait: false }, async () => {
      if (await findRow(client, databaseName)) return; // registered meanwhile: the registry decides
      await drop();
    });
  }

  /**
   * Under the lane's lock: records this process as the owner in the registry first, then
   * creates the database if needed; a row this call inserted goes again when that fails.
   */
  async #claimRow(client: Client, { key, databaseName, template }: LaneClaim, create: () => Promise<void>): Promise<void> {
    let row: RegistryRow | undefined;
    try {
      row = await findRow(client, databaseName);
    } catch (error) {
      throw registryFailed(`read the lane registry for ${databaseName}`, error);
    }
    const claim = claimFor(row, key, currentHost(), this.#stateDir);
    if (claim === 'take' && row) {
      const message = `taking over lane database ${databaseName} of ${describeLane(key)}: ${staleReason(row)}`;
      if (row.host === currentHost()) debug(message);
      else warn(`${message}. Another machine ran with the same run id before.`);
    }
    // A live owner of this run on this host keeps the row; anyone else writes itself in.
    const mine = newOwner(key.runId);
    const holder: Pick<RegistryRow, 'host' | 'pid' | 'pidStart' | 'pidNs' | 'bootId' | 'stateDir'> =
      claim === 'renew' && row
        ? { host: row.host, pid: row.pid, pidStart: row.pidStart, pidNs: row.pidNs, bootId: row.bootId, stateDir: row.stateDir }
        : { host: mine.host, pid: mine.pid, pidStart: mine.pidStart, pidNs: mine.pidNs, bootId: mine.bootId, stateDir: this.#stateDir };
    try {
      await writeRow(client, { databaseName, prefix: this.#prefix, ...key, shard: this.#shard, ...holder, template }, this.#leaseMs);
    } catch (error) {
      throw registryFailed(`record ${databaseName} in the lane registry`, error);
    }
    try {
      await create();
    } catch (error) {
      if (claim === 'insert') await deleteRow(client, databaseName).catch(() => undefined);
      throw error;
    }
  }
}
