/**
 * Where an allocator records its lanes and their owners, chosen once per allocator (option
 * `registry`, open-records.ts): the state file only ({@link FileRecords}), or the registry in the server plus the
 * state file ({@link RegistryRecords}), which lets machines sharing the server see and reap each
 * other's lanes. The claim and removal protocols speak to {@link LaneRecords} alone; with the state
 * file only, every step on the server's side is a no-op. Private to the databases module.
 * @internal
 */
import type { Client } from 'pg';
import type { LaneKey, Owner } from '../../state/index.js';
import type { DatabaseLedger } from './ledger.js';
import type { RegistryRow } from './registry.js';
import type { RemovalPick, RemovalTarget } from './decisions.js';

/** The lane an allocation claims. */
export interface LaneClaim {
  key: LaneKey;
  databaseName: string;
  /** The template it is cloned from. */
  template: string;
}

export interface LaneRecords {
  /** `'postgres'`: the registry and the state file; `'file'`: the state file only. */
  readonly kind: 'postgres' | 'file';
  /** The state file, in both kinds. */
  readonly ledger: DatabaseLedger;
  /**
   * Records this process as the owner of the lane before `create` makes its database (so a crash
   * right after still leaves a record to reap), under the lane's lock; undoes a record it added
   * when `create` fails.
   * @throws {LanesError} `RUN_ID_CONFLICT` when a live owner of another run holds the lane; `REGISTRY_FAILED`.
   */
  claim(client: Client, lane: LaneClaim, create: () => Promise<void>): Promise<void>;
  /** Keeps this process's claim on an allocated lane alive while the process lives. */
  hold(databaseName: string): void;
  /**
   * Gives the rows of these databases to `owner`: a warm run's watchdog (the lease lasts until its
   * deadline, this process stops renewing it), or this process taking a warm run over (it holds them).
   */
  handOver(client: Client, databaseNames: readonly string[], owner: Owner): Promise<void>;
  /**
   * The registry's rows of `prefix` (and of one run), from every machine; none with the state file only.
   * @throws {LanesError} `REGISTRY_FAILED`
   */
  rows(filter: { prefix: string; runId?: string }): Promise<RegistryRow[]>;
  /**
   * Drops one database a release or reap chose and forgets its row: under the lane's lock, once
   * `pick` still chooses the row (with `wait: false`, a lane someone else is working on is
   * skipped). Resolves what `drop` resolved: whether the database existed, or undefined when it was kept.
   */
  remove(client: Client, target: RemovalTarget, pick: RemovalPick, lock: { wait: boolean }, drop: () => Promise<boolean | undefined>): Promise<boolean | undefined>;
  /**
   * Runs `drop` for a database that neither the state file nor the registry listed, unless the
   * registry knows it by now (or someone else holds its lock).
   */
  removeUnrecorded(client: Client, databaseName: string, drop: () => Promise<void>): Promise<void>;
}

/** The state file is the only record: nothing on the server's side. */
export class FileRecords implements LaneRecords {
  readonly kind = 'file';
  readonly ledger: DatabaseLedger;

  constructor(ledger: DatabaseLedger) {
    this.ledger = ledger;
  }

  claim(_client: Client, _lane: LaneClaim, create: () => Promise<void>): Promise<void> {
    return create();
  }

  hold(): void {}

  handOver(): Promise<void> {
    return Promise.resolve();
  }

  rows(): Promise<RegistryRow[]> {
    return Promise.resolve([]);
  }

  remove(_client: Client, _target: RemovalTarget, _pick: RemovalPick, _lock: { wait: boolean }, drop: () => Promise<boolean | undefined>): Promise<boolean | undefined> {
    return drop();
  }

  removeUnrecorded(_client: Client, _databaseName: string, drop: () => Promise<void>): Promise<void> {
    return drop();
  }
}
