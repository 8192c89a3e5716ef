/**
 * The URLs a lane's processes connect with: with lane roles (option `laneRoles`), the lane role's
 * of each lane database, its password derived from the run's key; else the admin's.
 * Private to the databases module.
 * @internal
 */
import { withDatabase } from '../postgres/index.js';
import { laneRoleKey, laneRoleUrl, serverBaseUrl } from './sql/roles.js';
import type { ServerAccess } from './sql/server-access.js';

export class LaneUrls {
  readonly #session: ServerAccess;
  readonly #options: { laneRoles: boolean; runId: string };
  /** The same server for the allocator's life. */
  #roleAccess: Promise<{ baseUrl: string; key: string }> | undefined;

  constructor(session: ServerAccess, options: { laneRoles: boolean; runId: string }) {
    this.#session = session;
    this.#options = options;
  }

  /** The server's URL without credentials and this run's lane role key; undefined without lane roles. */
  roles(): Promise<{ baseUrl: string; key: string } | undefined> {
    if (!this.#options.laneRoles) return Promise.resolve(undefined);
    this.#roleAccess ??= this.#session.server().then(
      ({ adminUrl }) => ({ baseUrl: serverBaseUrl(adminUrl), key: laneRoleKey(adminUrl, this.#options.runId) }),
      (error: unknown) => {
        this.#roleAccess = undefined;
        throw error;
      },
    );
    return this.#roleAccess;
  }

  /** The URL of lane database `databaseName`. It holds a password: never log it. */
  async databaseUrl(databaseName: string): Promise<string> {
    const roles = await this.roles();
    return roles ? laneRoleUrl(roles.baseUrl, roles.key, databaseName) : withDatabase((await this.#session.server()).adminUrl, databaseName);
  }

  /** The server's URL and the run's lane role key, else the admin URL. It holds a secret: never log it. */
  async access(): Promise<{ baseUrl: string; roleKey?: string }> {
    const roles = await this.roles();
    return roles ? { baseUrl: roles.baseUrl, roleKey: roles.key } : { baseUrl: (await this.#session.server()).adminUrl };
  }
}
