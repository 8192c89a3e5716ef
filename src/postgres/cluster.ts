import { randomBytes } from 'node:crypto';
import { open, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Result } from 'execa';
import { loadExeca } from '../lazy-execa.js';
import writeFileAtomic from 'write-file-atomic';
import { DATABASE_URL_ENV } from '../env-vars.js';
import { LanesError, messageOf } from '../errors.js';
import { debugLogger } from '../log.js';
import { redactText } from '../redact.js';
import { isPidAlive } from '../state/owner.js';
import { procStat } from '../state/proc.js';
import type { PostgresBinaries } from './binaries.js';
import type { EmbeddedLayout } from './layout.js';
import { giveTo, runAs, type ServerUser } from './os-user.js';

const debug = debugLogger('postgres');

/** Everything needed to run the programs of one cluster (data directory). */
export interface Cluster {
  binaries: PostgresBinaries;
  user: ServerUser | undefined;
  layout: EmbeddedLayout;
}

/** The superuser created by `initdb`. */
export const SUPERUSER = 'postgres';

/** Server settings: loopback only, no Unix socket, durability traded for speed (the data is a cache). */
const SERVER_SETTINGS = [
  '-c listen_addresses=127.0.0.1',
  "-c unix_socket_directories=''",
  '-c fsync=off',
  '-c synchronous_commit=off',
  '-c full_page_writes=off',
  '-c max_connections=200',
];

/** A new random password for the superuser (URL-safe, so it needs no escaping in URLs or SQL). */
export function generatePassword(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * Creates the cluster with `initdb` in a temporary folder and renames it into place when complete,
 * so an interrupted `initdb` never leaves a half-made data directory behind. Writes the superuser's
 * password to the password file (mode 0600) first.
 */
export async function initCluster(cluster: Cluster, password: string, timeoutMs: number): Promise<void> {
  const execa = await loadExeca();
  const { layout, user, binaries } = cluster;
  const name = basename(layout.dataDir);
  await removeLeftovers(layout.parentDir, `.${name}.initdb-`);
  const suffix = randomBytes(4).toString('hex');
  const staging = join(layout.parentDir, `.${name}.initdb-${suffix}`);
  const pwfile = join(layout.parentDir, `.${name}.initdb-${suffix}.pw`);
  await writeFileAtomic(layout.passwordFile, `${password}\n`, { mode: 0o600 });
  await mkdir(staging, { mode: 0o700 });
  await giveTo(user, staging);
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  await giveTo(user, pwfile);
  debug('initdb %s (PostgreSQL %s)', layout.dataDir, binaries.release);
  try {
    await execa(
      binaries.initdb,
      [
        `--pgdata=${staging}`,
        '--auth=scram-sha-256',
        `--username=${SUPERUSER}`,
        `--pwfile=${pwfile}`,
        '--encoding=UTF8',
        '--locale=C',
        '--no-sync',
        '--no-instructions',
      ],
      { ...runAs(user), cwd: layout.parentDir, timeout: timeoutMs, env: { LC_ALL: 'C' } },
    );
    await rename(staging, layout.dataDir);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw failed(`initdb of ${layout.dataDir} failed: ${outputOf(error)}`, cluster, error);
  } finally {
    await rm(pwfile, { force: true });
  }
}

/**
 * Sets the superuser's password of a stopped cluster in single-user mode (used when the password
 * file was lost). The password travels on stdin only.
 */
export async function resetPassword(cluster: Cluster, password: string, timeoutMs: number): Promise<void> {
  const execa = await loadExeca();
  const { layout, user, binaries } = cluster;
  debug('resetting the password of %s', layout.dataDir);
  try {
    await execa(binaries.postgres, ['--single', '-D', layout.dataDir, '-c', 'exit_on_error=true', 'postgres'], {
      ...runAs(user),
      cwd: layout.parentDir,
      timeout: timeoutMs,
      input: `ALTER ROLE ${SUPERUSER} PASSWORD '${password}';\n`,
      env: { LC_ALL: 'C' },
    });
  } catch (error) {
    // No cause: the raw output may quote the statement, password included.
    throw failed(`Could not reset the password of the embedded server in ${layout.dataDir}: ${outputOf(error, [password])}`, cluster);
  }
  await writeFileAtomic(layout.passwordFile, `${password}\n`, { mode: 0o600 });
}

/** The superuser's password from the password file, or undefined if there is none. */
export async function readPassword(layout: EmbeddedLayout): Promise<string | undefined> {
  try {
    const password = (await readFile(layout.passwordFile, 'utf8')).trim();
    return password === '' ? undefined : password;
  } catch {
    return undefined;
  }
}

/**
 * Starts the server detached with `pg_ctl start -w`: it runs in its own session (pg_ctl calls
 * setsid), outlives this process and ignores Ctrl-C in this terminal. Resolves with the postmaster pid.
 */
export async function startCluster(cluster: Cluster, port: number, timeoutMs: number): Promise<number> {
  const execa = await loadExeca();
  const { layout, user, binaries } = cluster;
  const log = await open(layout.logFile, 'a', 0o600);
  const logOffset = (await log.stat()).size;
  await log.close();
  await giveTo(user, layout.logFile);
  const options = [`-p ${port}`, ...SERVER_SETTINGS].join(' ');
  debug('starting %s on port %d', layout.dataDir, port);
  try {
    await execa(
      binaries.pg_ctl,
      ['start', '-D', layout.dataDir, '-l', layout.logFile, '-w', '-t', String(Math.ceil(timeoutMs / 1000)), '-s', '-o', options],
      { ...runAs(user), cwd: layout.parentDir, detached: true, stdin: 'ignore', timeout: timeoutMs + 5_000, env: { LC_ALL: 'C' } },
    );
  } catch (error) {
    throw failed(`The embedded PostgreSQL server in ${layout.dataDir} did not start on port ${port}: ${outputOf(error)}`, cluster, error, await logTail(layout.logFile, logOffset));
  }
  const pid = (await readPostmasterPid(layout.dataDir))?.pid;
  if (pid === undefined) throw failed(`pg_ctl reported a start, but ${layout.dataDir}/postmaster.pid is missing.`, cluster);
  return pid;
}

/** Stops the server with `pg_ctl stop -w` (`fast`: roll back and disconnect; `immediate`: abort). True on success. */
export async function stopCluster(cluster: Cluster, mode: 'fast' | 'immediate', timeoutMs: number): Promise<boolean> {
  const execa = await loadExeca();
  const { layout, user, binaries } = cluster;
  const result: Result = await execa(
    binaries.pg_ctl,
    ['stop', '-D', layout.dataDir, '-m', mode, '-w', '-t', String(Math.ceil(timeoutMs / 1000)), '-s'],
    { ...runAs(user), cwd: layout.parentDir, stdin: 'ignore', reject: false, timeout: timeoutMs + 5_000, env: { LC_ALL: 'C' } },
  );
  if (result.exitCode !== 0) debug('pg_ctl stop -m %s of %s failed: %s', mode, layout.dataDir, result.stderr);
  return result.exitCode === 0;
}

/** The facts of `postmaster.pid`: pid, port and status (`ready`, `starting`, `stopping`…). */
export interface PostmasterInfo {
  pid: number;
  port: number | undefined;
  status: string | undefined;
}

/** Reads `<dataDir>/postmaster.pid`; undefined when there is none (the server is not running). */
export async function readPostmasterPid(dataDir: string): Promise<PostmasterInfo | undefined> {
  let text: string;
  try {
    text = await readFile(join(dataDir, 'postmaster.pid'), 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const port = Number(lines[3]);
  return { pid, port: Number.isInteger(port) && port > 0 ? port : undefined, status: lines[7]?.trim() || undefined };
}

/**
 * Whether `pid` is a running PostgreSQL process (the postmaster of `dataDir`, when given): `gone`
 * when it does not exist or is a zombie (a SIGKILLed postmaster not yet reaped), `foreign` when the
 * pid now belongs to another program. Without `/proc` (macOS), only existence is checked.
 */
export async function postmasterState(pid: number, dataDir?: string): Promise<'running' | 'gone' | 'foreign'> {
  const stat = procStat(pid);
  if (!stat) return process.platform === 'linux' || !isPidAlive(pid) ? 'gone' : 'running';
  try {
    if (stat.state === 'Z' || stat.state === 'X') return 'gone';
    if (stat.comm !== 'postgres') return 'foreign';
    if (dataDir === undefined) return 'running';
    // pg_ctl starts the postmaster as `postgres -D <dataDir> …`; a backend of another cluster never matches.
    const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    return args.includes(dataDir) ? 'running' : 'foreign';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return process.platform === 'linux' || !isPidAlive(pid) ? 'gone' : 'running';
    }
    return isPidAlive(pid) ? 'running' : 'gone';
  }
}

/** The last lines of a log file written after byte `offset`, for error messages. */
export async function logTail(path: string, offset = 0, lines = 20): Promise<string> {
  try {
    const text = (await readFile(path)).subarray(offset).toString('utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

async function removeLeftovers(folder: string, prefix: string): Promise<void> {
  for (const entry of await readdir(folder)) {
    if (!entry.startsWith(prefix)) continue;
    debug('removing %s, left by an interrupted initdb', join(folder, entry));
    await rm(join(folder, entry), { recursive: true, force: true });
  }
}

function outputOf(error: unknown, secrets: string[] = []): string {
  const { stderr, stdout, shortMessage } = error as { stderr?: unknown; stdout?: unknown; shortMessage?: unknown };
  const text = [stderr, stdout].filter((part) => typeof part === 'string' && part.trim() !== '').join('\n').trim();
  return redactText(text || (typeof shortMessage === 'string' ? shortMessage : messageOf(error)), secrets);
}

function failed(message: string, cluster: Cluster, cause?: unknown, tail = ''): LanesError {
  const { layout, user } = cluster;
  const asUser = user ? ` It runs as the OS user ${JSON.stringify(user.name)}, which must be able to read ${cluster.binaries.binDir} and write ${layout.parentDir}.` : '';
  return new LanesError('EMBEDDED_POSTGRES_FAILED', `${message}${tail ? `\nLast lines of ${layout.logFile}:\n${tail}` : ''}`, {
    hint: `See ${layout.logFile}.${asUser} If the data directory is damaged, stop every run and delete ${layout.dataDir} (it is a cache), or set ${DATABASE_URL_ENV}.`,
    cause,
    details: { dataDir: layout.dataDir, logFile: layout.logFile },
  });
}
