import { chown } from 'node:fs/promises';
import { loadExeca } from '../lazy-execa.js';
import { DATABASE_URL_ENV } from '../env-vars.js';
import { LanesError, messageOf } from '../errors.js';
import { debugLogger } from '../log.js';

const debug = debugLogger('postgres');

/** The operating-system user the embedded server runs as, when it is not the current one. */
export interface ServerUser {
  name: string;
  uid: number;
  gid: number;
}

/** The user PostgreSQL runs as when this process is root (PostgreSQL refuses to run as root). */
export const SERVER_USER_NAME = 'postgres';

/** True when this process runs as root. */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * The user to run `initdb`, `pg_ctl` and the server as: undefined (this process's user) unless
 * this process is root; then the user `postgres`, created with `useradd --system --user-group`
 * when missing and `create` is true.
 *
 * @throws {LanesError} `EMBEDDED_POSTGRES_FAILED` when root and the user is missing and may not be created.
 */
export async function resolveServerUser(create: boolean): Promise<ServerUser | undefined> {
  if (!isRoot()) return undefined;
  const execa = await loadExeca();
  const existing = await lookupUser(SERVER_USER_NAME);
  if (existing) return existing;
  if (!create) {
    throw new LanesError(
      'EMBEDDED_POSTGRES_FAILED',
      `PostgreSQL refuses to run as root, and there is no user ${JSON.stringify(SERVER_USER_NAME)} to run the embedded server as.`,
      {
        hint: `Create it (useradd --system --user-group ${SERVER_USER_NAME}), set the embedded option createPostgresUser: true, run the tests as a non-root user, or set ${DATABASE_URL_ENV}.`,
      },
    );
  }
  debug('creating system user %s to run the embedded server', SERVER_USER_NAME);
  const created = await execa('useradd', ['--system', '--user-group', SERVER_USER_NAME], { reject: false });
  // Exit code 9: another process created it meanwhile.
  const user = await lookupUser(SERVER_USER_NAME);
  if (user) return user;
  throw new LanesError('EMBEDDED_POSTGRES_FAILED', `Could not create the user ${JSON.stringify(SERVER_USER_NAME)} to run the embedded server as root: ${created.stderr || created.message}`, {
    hint: `Create it yourself (useradd --system --user-group ${SERVER_USER_NAME}, or adduser -S ${SERVER_USER_NAME} on Alpine), run as a non-root user, or set ${DATABASE_URL_ENV}.`,
  });
}

async function lookupUser(name: string): Promise<ServerUser | undefined> {
  const execa = await loadExeca();
  const [uid, gid] = await Promise.all([
    execa('id', ['-u', name], { reject: false }),
    execa('id', ['-g', name], { reject: false }),
  ]);
  if (uid.exitCode !== 0 || gid.exitCode !== 0) return undefined;
  return { name, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Spawn options that run a child as `user` (or as this process's user when undefined). */
export function runAs(user: ServerUser | undefined): { uid?: number; gid?: number } {
  return user ? { uid: user.uid, gid: user.gid } : {};
}

/**
 * True when `user` can reach `path` (search permission on it and on every ancestor), checked by
 * running `test -x` as that user. Always true for the current user.
 */
export async function userCanReach(user: ServerUser | undefined, path: string): Promise<boolean> {
  if (!user) return true;
  const execa = await loadExeca();
  try {
    const result = await execa('test', ['-x', path], { ...runAs(user), reject: false, cwd: '/' });
    return result.exitCode === 0;
  } catch (error) {
    debug('checking access of %s to %s failed: %s', user.name, path, messageOf(error));
    return false;
  }
}

/** Gives `path` to `user` (no-op for the current user). */
export async function giveTo(user: ServerUser | undefined, path: string): Promise<void> {
  if (user) await chown(path, user.uid, user.gid);
}
