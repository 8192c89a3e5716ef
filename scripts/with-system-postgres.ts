// Runs a command against a separately started PostgreSQL from the system's packages (Debian's
// /usr/lib/postgresql/<major>/bin), handed to the tests by URL in E2E_LANES_TEST_DATABASE_URL.
// Usage: node --import tsx scripts/with-system-postgres.ts [--password <pw>] [--lanes] <command> [args…]
//   --password <pw>  give the superuser `postgres` this password (e.g. `postgres`, as CI services do)
//   --lanes          also hand the server to e2e-lanes itself, in E2E_LANES_DATABASE_URL
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import pg from 'pg';
import { acquireEmbeddedPostgres, describeTarget, withClient } from '../src/postgres/index.js';

const escapeLiteral = (value: string): string => pg.escapeLiteral(value);

const argv = process.argv.slice(2);
let password: string | undefined;
let lanes = false;
for (;;) {
  if (argv[0] === '--password' && argv[1] !== undefined) [, password] = argv.splice(0, 2);
  else if (argv[0] === '--lanes') lanes = Boolean(argv.splice(0, 1));
  else break;
}
const [command, ...args] = argv;
if (!command) {
  console.error('usage: with-system-postgres [--password <pw>] [--lanes] <command> [args…]');
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
    let adminUrl = server.adminUrl;
    if (password !== undefined) {
      await withClient(adminUrl, (client) => client.query(`ALTER ROLE postgres PASSWORD ${escapeLiteral(password!)}`));
      const url = new URL(adminUrl);
      url.password = encodeURIComponent(password);
      adminUrl = url.toString();
    }
    console.log(`PostgreSQL ${major} from ${root}/${major}/bin at ${describeTarget(adminUrl)}${lanes ? ' (E2E_LANES_DATABASE_URL)' : ''}`);
    const result = await execa(command, args, {
      stdio: 'inherit',
      reject: false,
      env: { E2E_LANES_TEST_DATABASE_URL: adminUrl, ...(lanes ? { E2E_LANES_DATABASE_URL: adminUrl } : {}) },
    });
    exitCode = result.exitCode ?? 1;
  } finally {
    await server.release();
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
process.exit(exitCode);
