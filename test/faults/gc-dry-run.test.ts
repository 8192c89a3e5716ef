/**
 * `gc --dry-run` changes nothing and lists what the real `gc` removes. The embedded server it has to
 * start to look at its databases is started for the look alone: no port is allocated in the state
 * folder (an allocation would reap the stale entries the dry run is there to list).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { PortAllocator } from '../../src/ports/index.js';
import { reapEmbeddedPostgres } from '../../src/postgres/index.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const CONFIG = 'test/fixtures/cli/gc-databases.config.ts';

/** Every file of a folder (not its subfolders) with its contents. */
function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isFile()) files[name] = readFileSync(path, 'utf8');
  }
  return files;
}

/** The items a `gc` run listed, the same words for a dry run and a real one. */
function items(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('  '))
    .map((line) => line.trim().replace(/^would kill /, 'killed '))
    .sort();
}

test('gc --dry-run with the embedded server stopped writes nothing in the state folder, and lists what gc then removes', { timeout: 120_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const postgres = await tempDir(t);
  chmodSync(postgres, 0o755); // the server's own user (postgres, when run as root) must reach its data
  const dataDir = join(postgres, 'data');
  const prefix = `gcd${randomBytes(3).toString('hex')}`;
  const env = { GC_TEST_PREFIX: prefix, E2E_LANES_DATABASE_URL: '', E2E_LANES_EMBEDDED_DIR: dataDir, E2E_LANES_REGISTRY: 'file', E2E_LANES_OWNER_PID: '' };
  t.after(async () => {
    await reapEmbeddedPostgres({ dataDir, stateDir }).catch(() => undefined);
  });
  // Two port entries of a run whose owner is gone (allocated, then their owner's pid replaced by one that is gone).
  const ports = new PortAllocator({ stateDir, runId: 'gone-run', range: [34_280, 34_299] });
  for (const project of ['one', 'two']) await ports.allocatePortsForProject(project, { names: ['web'] });
  const file = join(stateDir, 'allocated-ports.json');
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { entries: Array<{ owner: Record<string, unknown> }> };
  for (const entry of doc.entries) Object.assign(entry.owner, { pid: 999_999, pidStart: undefined });
  writeFileSync(file, JSON.stringify(doc, null, 2));
  const before = snapshot(stateDir);

  const dry = await runCli(['--config', CONFIG, '--state-dir', stateDir, 'gc', '--dry-run'], env);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /would remove .* 2 port entr\(ies\)/);
  assert.deepEqual(snapshot(stateDir), before, `the dry run changed the state folder:\n${dry.stdout}`);

  const real = await runCli(['--config', CONFIG, '--state-dir', stateDir, 'gc'], env);
  assert.equal(real.code, 0, real.stderr);
  assert.match(real.stdout, /removed .* 2 port entr\(ies\)/);
  assert.deepEqual(items(real.stdout), items(dry.stdout), `dry run:\n${dry.stdout}\nreal run:\n${real.stdout}`);
  assert.equal(real.stdout.split('\n')[0]!.replace('removed', ''), dry.stdout.split('\n')[0]!.replace('would remove', ''));
});
