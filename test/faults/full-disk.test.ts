import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { isLanesError } from '../../src/errors.js';
import { LaneManager } from '../../src/lanes/lane-manager.js';
import { configBridge } from '../../src/playwright/config-bridge.js';
import globalTeardown from '../../src/playwright/global-teardown.js';
import { startServer } from '../../src/servers/index.js';

// Ports 8300-8399: this file's block.
const PORTS = [8300, 8399] as const;
const isRoot = process.getuid?.() === 0;

/** Whether this process may mount a tmpfs (root in a restricted container may not). */
function canMount(): boolean {
  if (!isRoot) return false;
  try {
    execFileSync('sh', ['-c', 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d"; r=$?; rmdir "$d"; exit $r'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const SKIP = !canMount() && 'mounting a tmpfs needs root where mounts are permitted';

/**
 * A tmpfs of `size`, unmounted (and its mount point removed) when the test ends, whatever failed.
 * `cleanup` steps run before the unmount, last added first.
 */
async function smallDisk(t: TestContext, size: string): Promise<{ dir: string; cleanup(step: () => unknown): void }> {
  const root = await mkdtemp(join(tmpdir(), 'e2e-lanes-full-disk-'));
  const dir = join(root, 'mnt');
  await mkdir(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
  const steps: Array<() => unknown> = [];
  t.after(async () => {
    for (const step of steps.reverse()) await Promise.resolve().then(step).catch(() => undefined);
    try {
      execFileSync('umount', [dir]);
    } catch {
      execFileSync('umount', ['-l', dir]);
    }
    await rm(root, { recursive: true, force: true });
  });
  return { dir, cleanup: (step) => steps.push(step) };
}

/** Fills the device of `dir` to the last byte (the filler is removed by `cleanup`). */
async function fill(disk: { dir: string; cleanup(step: () => unknown): void }): Promise<string> {
  const filler = join(disk.dir, 'filler');
  disk.cleanup(() => rm(filler, { force: true }));
  await writeFile(filler, Buffer.alloc(8 * 1024 * 1024)).then(
    () => assert.fail('the small tmpfs took 8 MiB'),
    (error: NodeJS.ErrnoException) => assert.equal(error.code, 'ENOSPC'),
  );
  return filler;
}

/** Collects the warnings printed meanwhile. */
function warnings(t: TestContext): string[] {
  const lines: string[] = [];
  t.mock.method(console, 'warn', (line: unknown) => lines.push(String(line)));
  return lines;
}

// Prints about 400 KB of numbered lines, then its last line, then exits 3 (so its start fails and quotes its log).
const CHATTY = `for (let i = 0; i < 4000; i++) console.log('line ' + i + ' ' + 'x'.repeat(100)); console.log('THE LAST LINE'); setTimeout(() => process.exit(3), 200);`;

describe('a full disk', { skip: SKIP }, () => {
  test('a server log cut short by a full disk says so: one coded warning, and the error quotes the real last lines and says the log is incomplete', { timeout: 60_000 }, async (t) => {
    const disk = await smallDisk(t, '128k');
    const logDir = join(disk.dir, 'lanes');
    const said = warnings(t);
    await assert.rejects(
      startServer({ name: 'chatty', command: [process.execPath, '-e', CHATTY], health: '/health', timeout: 30_000 }, { project: 'disk', ports: { chatty: PORTS[0] }, urls: {} }, { logDir }),
      (error) => {
        assert.ok(isLanesError(error, 'SERVER_EXITED'), String(error));
        // The tail comes from memory: the real last lines, then the note that the file is incomplete.
        assert.match(error.message, /THE LAST LINE/);
        assert.match(error.message, new RegExp(`\\[e2e-lanes\\] ${escape(join(logDir, 'chatty.log'))} is incomplete: nothing was written to it from \\S+ on \\(\\[STATE_UNWRITABLE\\] Could not write log file .*no space left on the device \\(ENOSPC\\)`));
        return true;
      },
    );
    const warning = said.find((line) => line.includes('[STATE_UNWRITABLE]'));
    assert.ok(warning, `a coded warning was printed: ${said.join('\n')}`);
    assert.match(warning, /\[disk:chatty\] \[STATE_UNWRITABLE\] Could not write log file .*chatty\.log: no space left on the device \(ENOSPC\)/);
    assert.match(warning, /later output is not in its log/);
    assert.equal(said.filter((line) => line.includes('[STATE_UNWRITABLE]')).length, 1, 'one warning, not one per line');
    const log = await readFile(join(logDir, 'chatty.log'), 'utf8');
    assert.doesNotMatch(log, /THE LAST LINE/, 'the disk really cut the log short');
  });

  test("a running lane server whose log the disk cut short: the lane's server status says so, for the failing test's attached log", { timeout: 60_000 }, async (t) => {
    const disk = await smallDisk(t, '256k');
    // Healthy at once; prints about 400 KB on GET /talk (after the lane is up), then keeps running.
    const talker = `const http = require('node:http'); http.createServer((req, res) => { if (req.url === '/talk') for (let i = 0; i < 4000; i++) console.log('line ' + i + ' ' + 'x'.repeat(100)); res.end('ok'); }).listen(Number(process.env.PORT), '127.0.0.1');`;
    const manager = new LaneManager({ runId: 'full-disk-status', stateDir: disk.dir, servers: [{ name: 'talker', command: [process.execPath, '-e', talker], health: '/health' }], database: false, portRange: [PORTS[0] + 20, PORTS[0] + 29] });
    disk.cleanup(() => manager.teardown({ keep: false }));
    warnings(t);
    const lane = await manager.ensureLane('talk');
    assert.equal((await manager.serverStatus('talk'))?.[0]?.logProblem, undefined, 'a whole log has no problem');
    await fetch(`${lane.urls['talker']}/talk`).then((response) => response.text());
    let problem: string | undefined;
    for (let i = 0; i < 50 && !problem; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      problem = (await manager.serverStatus('talk'))?.[0]?.logProblem;
    }
    assert.match(problem ?? '', /talker\.log is incomplete: nothing was written to it from \S+ on \(\[STATE_UNWRITABLE\]/);
  });

  test("global teardown's failure on a full state folder carries its code: [STATE_UNWRITABLE]", { timeout: 60_000 }, async (t) => {
    const disk = await smallDisk(t, '256k');
    const manager = new LaneManager({ runId: 'full-disk-teardown', stateDir: disk.dir, servers: [], database: false, portRange: [PORTS[0] + 10, PORTS[0] + 19] });
    // Whatever happens, the run's records go once there is room again.
    disk.cleanup(() => manager.teardown({ keep: false }));
    await manager.ensureLane('full');
    const filler = await fill(disk);
    const bridge = configBridge();
    bridge.active = { manager, control: undefined as never, dispose: () => manager.teardown({ keep: false }) };
    t.after(() => {
      bridge.active = undefined;
    });

    await assert.rejects(globalTeardown(), (error) => {
      assert.ok(isLanesError(error, 'STATE_UNWRITABLE'), String(error));
      assert.match(error.message, /^\[STATE_UNWRITABLE\] Could not write state file .*: no space left on the device \(ENOSPC\)/);
      assert.match(String(error.stack), /^LanesError: \[STATE_UNWRITABLE\] /, 'as Playwright prints it');
      return true;
    });
    await rm(filler);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
