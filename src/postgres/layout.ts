import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { debugLogger } from '../log.js';
import { userCanReach, type ServerUser } from './os-user.js';

const debug = debugLogger('postgres');

/** Where the files of one embedded server live: the data dir and its siblings. */
export interface EmbeddedLayout {
  /** The PostgreSQL data directory. */
  dataDir: string;
  /** The folder holding the data dir, its log, password and the registry. */
  parentDir: string;
  /** Server log: `<parent>/<name>.log`. */
  logFile: string;
  /** Password of the `postgres` superuser, mode 0600: `<parent>/<name>.password`. */
  passwordFile: string;
  /** Who uses which server: `<parent>/embedded-postgres.json`. */
  registryFile: string;
}

/** The registry's file name, next to the data directories. */
export const REGISTRY_FILE = 'embedded-postgres.json';

/** The default data directory for a major version, relative to `cwd`. */
export function defaultDataDir(major: number, cwd = process.cwd()): string {
  return join(cwd, 'node_modules', '.cache', 'e2e-lanes', `postgres-${major}`);
}

/**
 * The layout for `requested` (or the default data dir): another folder when `requested` holds a
 * cluster of another major version, or when the server user cannot reach it.
 */
export async function resolveLayout(requested: string | undefined, major: number, user: ServerUser | undefined): Promise<EmbeddedLayout> {
  let dataDir = resolve(requested ?? defaultDataDir(major));
  const found = await clusterMajor(dataDir);
  if (found !== undefined && found !== major) {
    const sibling = `${dataDir}-pg${major}`;
    debug('%s holds a PostgreSQL %d cluster; PostgreSQL %d uses %s', dataDir, found, major, sibling);
    dataDir = sibling;
  }
  await mkdir(dirname(dataDir), { recursive: true });
  // One cluster has one name: reached through a symlinked folder (a linked node_modules, a
  // worktree), its path is still the real one, so runs from either path share the same record.
  dataDir = join(await realpath(dirname(dataDir)), basename(dataDir));
  if (!(await userCanReach(user, dirname(dataDir)))) {
    const fallback = join(tmpdir(), `e2e-lanes-postgres-${shortHash(dataDir)}`);
    debug('user %s cannot reach %s; using %s instead', user?.name, dirname(dataDir), fallback);
    await mkdir(fallback, { recursive: true });
    await chmod(fallback, 0o755);
    dataDir = join(fallback, basename(dataDir));
  }
  return layoutOf(dataDir);
}

/** The layout around a given data dir. */
export function layoutOf(dataDir: string): EmbeddedLayout {
  const parentDir = dirname(dataDir);
  const name = basename(dataDir);
  return {
    dataDir,
    parentDir,
    logFile: join(parentDir, `${name}.log`),
    passwordFile: join(parentDir, `${name}.password`),
    registryFile: join(parentDir, REGISTRY_FILE),
  };
}

/** The major version of the cluster in `dataDir` (its `PG_VERSION`), or undefined if it holds none. */
export async function clusterMajor(dataDir: string): Promise<number | undefined> {
  try {
    const text = await readFile(join(dataDir, 'PG_VERSION'), 'utf8');
    const major = Number.parseInt(text.trim(), 10);
    return Number.isFinite(major) ? major : undefined;
  } catch {
    return undefined;
  }
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}
