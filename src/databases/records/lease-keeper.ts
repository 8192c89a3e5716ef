/**
 * Renews the registry leases of the lane databases this process holds, on a timer that never
 * keeps the process alive. A lease found lost (expired, then reaped by another machine) is
 * reported once and forgotten.
 * @internal
 */
import type { Client } from 'pg';
import { messageOf } from '../../errors.js';
import { debugLogger, warn } from '../../log.js';
import { renewalInterval } from '../../state/heartbeat.js';
import { currentHost } from '../../state/owner.js';
import { renewLeases } from './registry.js';

const debug = debugLogger('registry');

export class LeaseKeeper {
  readonly #held = new Set<string>();
  readonly #connect: () => Promise<Client>;
  readonly #leaseMs: number;
  #timer: NodeJS.Timeout | undefined;
  #beating: Promise<void> | undefined;

  /** `connect` opens a client on the maintenance database; leases last `leaseMs`, renewed every quarter of it. */
  constructor(connect: () => Promise<Client>, leaseMs: number) {
    this.#connect = connect;
    this.#leaseMs = leaseMs;
  }

  /** The databases whose leases this keeper renews. */
  get held(): readonly string[] {
    return [...this.#held];
  }

  /** Starts renewing the lease of `databaseName`. */
  hold(databaseName: string): void {
    this.#held.add(databaseName);
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.renew(), renewalInterval(this.#leaseMs, 250));
    this.#timer.unref();
  }

  /** Stops renewing these leases (their databases were released). */
  forget(names: Iterable<string>): void {
    for (const name of names) this.#held.delete(name);
    if (this.#held.size === 0) this.stop();
  }

  /** Stops the timer; the leases then run out by themselves. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Renews every held lease now (one at a time: a beat still running is joined). */
  renew(): Promise<void> {
    this.#beating ??= this.#renew().finally(() => (this.#beating = undefined));
    return this.#beating;
  }

  async #renew(): Promise<void> {
    const names = [...this.#held];
    if (names.length === 0) return;
    let client: Client | undefined;
    try {
      client = await this.#connect();
      const renewed = new Set(await renewLeases(client, names, currentHost(), this.#leaseMs));
      const lost = names.filter((name) => !renewed.has(name) && this.#held.has(name));
      if (lost.length > 0) {
        warn(
          `lost the lease of lane database(s) ${lost.join(', ')}: it expired (this process did not renew it for ${Math.round(this.#leaseMs / 1000)} s) ` +
            'or the registry row was removed, so another machine may drop the database. Raise leaseMs if this process is often paused.',
        );
        this.forget(lost);
      }
    } catch (error) {
      debug('renewing leases of %o failed: %s', names, messageOf(error));
    } finally {
      await client?.end().catch(() => undefined);
    }
  }
}
