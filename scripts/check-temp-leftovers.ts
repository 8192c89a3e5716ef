// Runs a command with a private temporary folder (TMPDIR, which Node's os.tmpdir() and most tools
// honour) and lists what the command left in it: the entries that were not there before, split into
// the caches kept on purpose and the leftovers.
// Usage: node --import tsx scripts/check-temp-leftovers.ts [--tmpdir <dir>] [--keep] <command> [args…]
//   --tmpdir <dir>  use this folder (created if missing, kept afterwards): several commands run one
//                   after the other share the caches, and each reports only what it added
//   --keep          keep the private folder (by default it is removed afterwards)
// Exits 1 when something other than a cache was left, else with the command's exit code.
// Example: node --import tsx scripts/check-temp-leftovers.ts node --import tsx --test --test-concurrency=1 test/ports/*.test.ts
import { chmod, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';

/** Entries of the temporary folder that are kept on purpose between runs (see test/helpers/README.md). */
const CACHES: Array<[RegExp, string]> = [
  [/^e2e-lanes$/, 'host-wide port claims of every run on this host (E2E_LANES_HOST_STATE_DIR)'],
  [/^e2e-lanes-faults-shared$/, 'the registry of the embedded PostgreSQL the fault test files share (test/faults/helpers.ts)'],
  [/^e2e-lanes-test-pg$/, 'the embedded PostgreSQL the test files share (test/helpers/postgres.ts)'],
  [/^e2e-lanes-postgres-[0-9a-f]+$/, 'an embedded PostgreSQL data folder moved out of a folder its server user cannot reach'],
  [/^tsx-\d+$/, "tsx's compile cache"],
  [/^playwright-transform-cache-\d+$/, "Playwright's compile cache"],
];

const argv = process.argv.slice(2);
let given: string | undefined;
let keep = false;
for (;;) {
  if (argv[0] === '--tmpdir' && argv[1] !== undefined) [, given] = argv.splice(0, 2);
  else if (argv[0] === '--keep') keep = Boolean(argv.splice(0, 1));
  else break;
}
const [command, ...args] = argv;
if (!command) {
  console.error('usage: check-temp-leftovers [--tmpdir <dir>] [--keep] <command> [args…]');
  process.exit(2);
}

const dir = given ? resolve(given) : await mkdtemp(join(tmpdir(), 'e2e-lanes-leftovers-'));
await mkdir(dir, { recursive: true });
await chmod(dir, 0o1777); // like /tmp: the embedded server runs as another user when we are root
const before = new Set(await readdir(dir));

const result = await execa(command, args, { env: { TMPDIR: dir }, stdio: 'inherit', reject: false });

const added = (await readdir(dir)).filter((name) => !before.has(name)).sort();
const caches = added.flatMap((name) => CACHES.filter(([pattern]) => pattern.test(name)).map(([, why]) => ({ name, why })));
const leftovers = added.filter((name) => !CACHES.some(([pattern]) => pattern.test(name)));
console.log(`\n${command} ${args.join(' ')}: exit ${result.exitCode ?? result.signal}; temporary folder ${dir}`);
console.log(`  kept on purpose (${caches.length}):${caches.map(({ name, why }) => `\n    ${name}  ${why}`).join('') || ' none'}`);
console.log(`  left behind (${leftovers.length}):${leftovers.map((name) => `\n    ${name}`).join('') || ' none'}`);

// A folder still holding a running embedded server is not removed under it.
const running = ['e2e-lanes-test-pg/postgres/postmaster.pid'].map((path) => join(dir, path)).filter(existsSync);
if (!given && !keep) {
  if (running.length > 0) console.log(`  not removed: a PostgreSQL server still runs from it (${running.join(', ')})`);
  else await rm(dir, { recursive: true, force: true });
}
process.exitCode = leftovers.length > 0 ? 1 : (result.exitCode ?? 1);
