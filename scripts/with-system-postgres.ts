// Runs a command against a separately started PostgreSQL from the system's packages (Debian's
// /usr/lib/postgresql/<major>/bin), handed to the tests by URL in E2E_LANES_TEST_DATABASE_URL.
// Usage: node --import tsx scripts/with-system-postgres.ts <command> [args…]
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { acquireEmbeddedPostgres, describeTarget } from '../src/postgres/index.js';

const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error('usage: with-system-postgres <command> [args…]');
  process.exit(2);
}

const root = '/usr/lib/postgresql';
const majors = existsSync(root) ? readdirSync(root).filter((name) => existsSync(join(root, name, 'bin', 'postgres'))) : [];
const major = majors.sort((a, b) => Number(b) - Number(a))[0];
if (!major) {
  console.error(`No system PostgreSQL under ${root}/<major>/bin: install one (Debian: apt-get install -y postgresql) to run this.`);
  process.exit(1);
}

const work = await mkdtemp(join(tmpdir(), 'e2e-lanes-system-pg-'));
let exitCode = 1;
try {
  const server = await acquireEmbeddedPostgres({
    binDir: join(root, major, 'bin'),
    dataDir: join(work, 'data'),
    stateDir: join(work, 'state'),
    runId: 'system-postgres',
  });
  try {
    console.log(`PostgreSQL ${major} from ${root}/${major}/bin at ${describeTarget(server.adminUrl)}`);
    const result = await execa(command, args, {
      stdio: 'inherit',
      reject: false,
      env: { E2E_LANES_TEST_DATABASE_URL: server.adminUrl },
    });
    exitCode = result.exitCode ?? 1;
  } finally {
    await server.release();
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
process.exit(exitCode);
