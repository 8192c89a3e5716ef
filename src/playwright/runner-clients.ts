import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { withClient } from '../postgres/index.js';
import { targetOf } from '../postgres/url.js';
import { debugLogger } from '../log.js';

/**
 * The database clients of the runner that `withLanes` could not redirect: a client (a pool, an ORM)
 * created while the config was still being imported, before `withLanes` pointed the runner's
 * variables away, keeps the URL it read. Such a client cannot be changed, but its connections can
 * be seen: global setup looks for this process's TCP connections to the lanes' server (Linux:
 * `/proc/self/fd` and `/proc/self/net/tcp*`) and asks `pg_stat_activity` which database each one
 * is on. One that is neither the toolkit's own nor a lane's is reported in one line.
 */

const debug = debugLogger('runner-clients');

/** A connection of this process to a database that is not a lane's. */
export interface ForeignConnection {
  database: string;
  user: string;
  applicationName: string;
  clientPort: number;
}

/**
 * This process's connections to the server of `adminUrl` on a database that is not a lane's
 * (`<prefix>_…`) and not the toolkit's own (`application_name` e2e-lanes…). Empty where it cannot
 * be seen (not Linux, a Unix socket, a server elsewhere).
 */
export async function foreignRunnerConnections(adminUrl: string, prefix: string): Promise<ForeignConnection[]> {
  if (process.platform !== 'linux') return [];
  const { port } = targetOf(adminUrl);
  const own = ownTcpConnectionsTo(port);
  if (own.length === 0) return [];
  const rows = await withClient(adminUrl, async (client) =>
    (
      await client.query<{ database: string; user: string; applicationName: string; clientPort: number; clientAddr: string | null }>(
        `SELECT datname AS database, usename AS "user", application_name AS "applicationName", client_port AS "clientPort", host(client_addr) AS "clientAddr"
           FROM pg_stat_activity
          WHERE client_port = ANY($1::int[]) AND datname IS NOT NULL AND pid <> pg_backend_pid()`,
        [own.map((connection) => connection.port)],
      )
    ).rows,
  );
  // The same port from another host is someone else's: where the address is known, it must match too.
  const ours = (row: { clientPort: number; clientAddr: string | null }): boolean =>
    own.some((connection) => connection.port === row.clientPort && (connection.address === undefined || row.clientAddr === null || connection.address === row.clientAddr.replace(/^::ffff:/, '')));
  return rows.filter((row) => ours(row) && !row.applicationName.startsWith('e2e-lanes') && !row.database.startsWith(`${prefix}_`));
}

/** The line global setup prints for them, or undefined. */
export function describeForeignConnections(found: readonly ForeignConnection[]): string | undefined {
  if (found.length === 0) return undefined;
  const databases = [...new Set(found.map((row) => JSON.stringify(row.database)))].join(', ');
  return (
    `the Playwright runner (pid ${process.pid}) holds ${found.length} connection(s) to ${databases}, not a lane's database: a client created while the config was imported, before withLanes redirected DATABASE_URL and PG*, ` +
    'so e2e-lanes cannot redirect it and your globalSetup/globalTeardown would write there through it. Create it later, from the lane\'s URL (see "Database clients in tests" in docs/databases-in-tests.md).'
  );
}

/** The local end (port, and IPv4 address when it is one) of this process's established TCP connections to `remotePort`. */
function ownTcpConnectionsTo(remotePort: number): Array<{ port: number; address: string | undefined }> {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        const target = readlinkSync(`/proc/self/fd/${fd}`);
        const match = /^socket:\[(\d+)\]$/.exec(target);
        if (match) inodes.add(match[1]!);
      } catch {
        // closed meanwhile
      }
    }
  } catch (error) {
    debug('cannot list /proc/self/fd: %O', error);
    return [];
  }
  const found: Array<{ port: number; address: string | undefined }> = [];
  for (const table of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      if (fields.length < 10 || fields[3] !== '01' || !inodes.has(fields[9]!)) continue;
      const [localAddress, localPort] = fields[1]!.split(':');
      const remote = Number.parseInt(fields[2]!.split(':')[1]!, 16);
      if (remote === remotePort) found.push({ port: Number.parseInt(localPort!, 16), address: ipv4Of(localAddress!) });
    }
  }
  return found;
}

/** An IPv4 address (or IPv4-mapped IPv6 one) of /proc/net/tcp*, as `host(client_addr)` shows it. */
function ipv4Of(hex: string): string | undefined {
  const word = hex.length === 8 ? hex : hex.length === 32 && hex.slice(0, 24) === '0000000000000000FFFF0000' ? hex.slice(24) : undefined;
  if (!word) return undefined;
  // Stored in host byte order (little-endian on the machines this runs on).
  return [6, 4, 2, 0].map((at) => Number.parseInt(word.slice(at, at + 2), 16)).join('.');
}
