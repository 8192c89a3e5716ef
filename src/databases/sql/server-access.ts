/**
 * An allocator's hold on its PostgreSQL server: the handle from `ensurePostgres` (the given server,
 * or a reference to the embedded one), joined on first use, and the maintenance connections. Every
 * statement the allocator runs outside lane databases goes through {@link ServerAccess.withAdmin}.
 * Private to the databases module.
 * @internal
 */
import type { Client } from 'pg';
import { ensurePostgres, type EnsurePostgresOptions, type PostgresHandle } from '../../postgres/index.js';
import { AdminPool } from './admin-pool.js';
import type { Owner } from '../../state/index.js';

export class ServerAccess {
  readonly #options: EnsurePostgresOptions & { connectTimeoutMs: number };
  #server: Promise<PostgresHandle> | undefined;
  #admin: AdminPool | undefined;
  /** Where maintenance connections go once the registry is used: its database (see {@link maintainIn}). */
  #maintenanceUrl: string | undefined;

  constructor(options: EnsurePostgresOptions & { connectTimeoutMs: number }) {
    this.#options = options;
  }

  /** True once the server was joined (or is being joined) and not let go since. */
  get joined(): boolean {
    return this.#server !== undefined;
  }

  /** The server, joined on first use; a failed join is tried again by the next call. */
  server(): Promise<PostgresHandle> {
    this.#server ??= ensurePostgres(this.#options).catch((error: unknown) => {
      this.#server = undefined;
      throw error;
    });
    return this.#server;
  }

  /**
   * From now on, maintenance connections go to the database at `url` (on the same server) instead
   * of the admin URL's: the registry's database, whose advisory locks every machine shares.
   */
  maintainIn(url: string): void {
    this.#maintenanceUrl = url;
  }

  /**
   * The URL maintenance connections go to: the registry's database when one is used, else the
   * admin URL. It holds the password: for connections only, never for messages.
   */
  async maintenanceUrl(): Promise<string> {
    const server = await this.server();
    return this.#maintenanceUrl ?? server.adminUrl;
  }

  /**
   * Runs `fn` with one of the maintenance connections, which it has to itself until `fn` settles
   * (its transactions and advisory locks never mix with another caller's). Connections are opened
   * on demand (up to a few, for lanes that clone side by side), reused while calls keep coming,
   * closed after a second unused, and all closed when the server is let go.
   */
  async withAdmin<T>(fn: (client: Client, serverVersion: number) => Promise<T>): Promise<T> {
    const server = await this.server();
    const url = this.#maintenanceUrl ?? server.adminUrl;
    let admin = this.#admin;
    if (admin?.url !== url) {
      void admin?.close();
      admin = this.#admin = new AdminPool(url, this.#options.connectTimeoutMs);
    }
    return admin.use((client) => fn(client, server.version));
  }

  /** Lets go of the server (the embedded one stops when its last user leaves); a later call joins it again. */
  async release(): Promise<void> {
    await (await this.#letGo())?.release();
  }

  /**
   * Lets go of the server but keeps this run's hold on the embedded one: kept (lanes kept for
   * debugging), or given to `owner` (a warm run's watchdog).
   */
  async keep(owner?: Owner): Promise<void> {
    await (await this.#letGo())?.keep(owner);
  }

  async #letGo(): Promise<PostgresHandle | undefined> {
    const server = this.#server;
    this.#server = undefined;
    const admin = this.#admin;
    this.#admin = undefined;
    await admin?.close();
    return server?.catch(() => undefined);
  }
}
