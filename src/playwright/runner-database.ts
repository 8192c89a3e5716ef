import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LANE_NOT_READY_URL } from '../postgres/app-env.js';
import { identityOf, judgeProcess } from '../state/index.js';

/**
 * The database the runner process is given: none. `withLanes` points `DATABASE_URL`, the `PG*`
 * variables and every variable holding a PostgreSQL URL of the runner (where the user's
 * `globalSetup` and `globalTeardown` run) at a tiny endpoint of the runner itself (a Unix socket),
 * which answers every connection attempt with a PostgreSQL error saying where a lane's URL is. A
 * client created there fails at once with that message, instead of reaching the developer's
 * database that a `.env` named. Where the endpoint cannot listen, the not-ready address is used.
 */

/** The user the runner's URL names: how the endpoint and its URL are recognised. */
const RUNNER_USER = 'no-database-in-the-runner';

/** What a client in the runner gets (as the server's FATAL message, and its hint). */
export const RUNNER_DATABASE_MESSAGE =
  "e2e-lanes: no database in the Playwright runner (config, globalSetup, globalTeardown): DATABASE_URL and PG* point here on purpose. A lane's database URL is lane.databaseUrl of the `lane` fixture (DATABASE_URL in workers and lane servers), or (await manager.ensureLane(project)).databaseUrl of a LaneManager.";
export const RUNNER_DATABASE_HINT = 'See "Database clients in tests" in docs/databases-in-tests.md.';

const KEY = Symbol.for('e2e-lanes.runner-database');

/** SSLRequest and GSSENCRequest codes: answered 'N' (not supported), then the startup packet follows. */
const ENCRYPTION_REQUESTS = new Set([80877103, 80877104]);
const MAX_PACKET_BYTES = 10_000;

/**
 * The URL the runner's database variables hold: its endpoint's, started on first call (once per
 * process), or {@link LANE_NOT_READY_URL} when it cannot listen.
 */
export function runnerDatabaseUrl(): string {
  const holder = globalThis as unknown as Record<symbol, string | undefined>;
  return (holder[KEY] ??= startEndpoint());
}

/** True when `url` is what the runner's variables were pointed at (this process's or any runner's). */
export function isRunnerDatabaseUrl(url: string | undefined): boolean {
  return url !== undefined && (url === LANE_NOT_READY_URL || url.startsWith(`postgresql://${RUNNER_USER}@`));
}

/**
 * The runner's database variables, pointing at `url` ({@link runnerDatabaseUrl}): `DATABASE_URL`,
 * the `PG*` parts (the endpoint's socket folder and port, no password), and the names of the other
 * variables holding a PostgreSQL URL.
 */
export function runnerDatabaseEnv(url: string): { set: Record<string, string>; unset: string[] } {
  if (url === LANE_NOT_READY_URL) return { set: {}, unset: ['PGPASSWORD'] };
  const parsed = new URL(url);
  return {
    set: { PGHOST: parsed.searchParams.get('host') ?? '', PGPORT: parsed.port || '5432', PGUSER: RUNNER_USER, PGDATABASE: parsed.pathname.slice(1) },
    unset: ['PGPASSWORD', 'PGHOSTADDR', 'PGSERVICE', 'PGSERVICEFILE'],
  };
}

/**
 * Listens on a Unix socket in a folder of its own (bound at once, so the URL is known before any
 * user code runs; libpq and node-postgres reach it through `?host=`, `PGHOST`).
 */
function startEndpoint(): string {
  if (process.platform === 'win32') return LANE_NOT_READY_URL;
  reapEndpointFolders();
  let dir: string | undefined;
  try {
    const { pidNs, pidStart } = identityOf(process.pid);
    dir = mkdtempSync(join(tmpdir(), `${FOLDER_PREFIX}${process.pid}-${pidNs ?? ''}-${pidStart ?? ''}-`));
    const server = createServer(refuse);
    server.on('error', () => undefined);
    server.listen(join(dir, '.s.PGSQL.5432'));
    server.unref();
    const folder = dir;
    process.once('exit', () => rmSync(folder, { recursive: true, force: true }));
    return `postgresql://${RUNNER_USER}@localhost:5432/use_the_lane_fixture?host=${encodeURIComponent(dir)}`;
  } catch {
    if (dir) rmSync(dir, { recursive: true, force: true });
    return LANE_NOT_READY_URL;
  }
}

/**
 * Folders of the endpoints: `<tmp>/e2e-lanes-runner-<pid>-<pid namespace>-<start time>-<random>`,
 * removed when their runner exits. The namespace and start time let another runner tell a dead
 * runner's folder from that of a live runner in another PID namespace sharing the temp folder.
 */
const FOLDER_PREFIX = 'e2e-lanes-runner-';

/** Removes the folders of runners that died without removing theirs (SIGKILL). */
function reapEndpointFolders(): void {
  let entries: string[];
  try {
    entries = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const entry of entries) {
    const match = /^e2e-lanes-runner-(\d+)-(?:(\d*)-(\d*)-)?/.exec(entry);
    const pid = Number(match?.[1]);
    if (!match || !Number.isInteger(pid) || pid <= 0) continue;
    const record = { pid, ...(match[2] ? { pidNs: Number(match[2]) } : {}), ...(match[3] ? { pidStart: Number(match[3]) } : {}) };
    // Only a provably dead runner's folder goes: never one whose runner cannot be judged from here.
    if (judgeProcess(record).state !== 'gone') continue;
    try {
      rmSync(join(tmpdir(), entry), { recursive: true, force: true });
    } catch {
      // another user's, or gone meanwhile
    }
  }
}

/** Reads the client's first packets and answers with an ErrorResponse (FATAL, 08004), then closes. */
function refuse(socket: Socket): void {
  socket.unref();
  socket.setTimeout(5_000, () => socket.destroy());
  socket.on('error', () => undefined);
  let buffered = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 8) {
      const length = buffered.readInt32BE(0);
      if (length < 8 || length > MAX_PACKET_BYTES) return void socket.destroy();
      if (buffered.length < length) return;
      const code = buffered.readInt32BE(4);
      buffered = buffered.subarray(length);
      if (ENCRYPTION_REQUESTS.has(code)) {
        socket.write('N');
        continue;
      }
      socket.end(errorResponse());
      return;
    }
  });
}

function errorResponse(): Buffer {
  const field = (type: string, value: string): Buffer => Buffer.concat([Buffer.from(type), Buffer.from(value, 'utf8'), Buffer.from([0])]);
  const body = Buffer.concat([field('S', 'FATAL'), field('V', 'FATAL'), field('C', '08004'), field('M', RUNNER_DATABASE_MESSAGE), field('H', RUNNER_DATABASE_HINT), Buffer.from([0])]);
  const header = Buffer.alloc(5);
  header.write('E', 0);
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}
