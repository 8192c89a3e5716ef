import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test, type TestContext } from 'node:test';
import { isLanesError } from '../../src/errors.js';
import { laneLedger, LANES_FILE } from '../../src/lanes/records/lane-ledger.js';
import { PortAllocator, PORTS_FILE } from '../../src/ports/index.js';
import { OutputSink } from '../../src/servers/output.js';
import { newOwner } from '../../src/state/index.js';

// Ports 6800-6899: this file's block.
const PORTS = [6800, 6899] as const;

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const FIXTURE = join(REPO_ROOT, 'test/fixtures/ports/allocate-or-fail.ts');
const NOBODY = 65_534;
const isRoot = process.getuid?.() === 0;

interface Workspace {
  /** A temporary folder every user may enter; `host` in it is the test's host-wide folder. */
  dir: string;
  /** Adds a cleanup step; they run last-added first, before the folder is removed. */
  defer(step: () => unknown): void;
}

/**
 * The test's folder, with its own host-wide folder (children inherit it through the environment).
 * One after hook runs every cleanup step in reverse order, then removes the folder, whatever failed.
 */
async function workspace(t: TestContext): Promise<Workspace> {
  const dir = await mkdtemp(join(tmpdir(), 'e2e-lanes-fs-'));
  await chmod(dir, 0o755);
  const steps: Array<() => unknown> = [];
  const previous = process.env.E2E_LANES_HOST_STATE_DIR;
  process.env.E2E_LANES_HOST_STATE_DIR = join(dir, 'host');
  t.after(async () => {
    const errors: unknown[] = [];
    for (const step of steps.reverse()) await Promise.resolve().then(step).catch((error: unknown) => errors.push(error));
    if (previous === undefined) delete process.env.E2E_LANES_HOST_STATE_DIR;
    else process.env.E2E_LANES_HOST_STATE_DIR = previous;
    await rm(dir, { recursive: true, force: true });
    if (errors.length > 0) throw errors[0];
  });
  return { dir, defer: (step) => steps.push(step) };
}

/** A state folder owned by `uid`. */
async function stateDirOf(parent: string, name: string, uid: number): Promise<string> {
  const dir = join(parent, name);
  await mkdir(dir);
  chownSync(dir, uid, uid);
  return dir;
}

interface ChildResult {
  ok: boolean;
  ports?: number[];
  code?: string;
  message?: string;
}

/**
 * Runs the allocation fixture as `uid` (through `setpriv`, which execs: the child is the owner pid),
 * resolving with its JSON line; the child then holds its lane for `holdMs` and is killed when the test ends.
 */
function allocateAs(ws: Workspace, uid: number, args: { stateDir: string; runId: string; project: string; range: readonly [number, number]; holdMs?: number }): Promise<ChildResult> {
  const argv = [args.stateDir, args.runId, args.project, `${args.range[0]}-${args.range[1]}`, String(args.holdMs ?? 0)];
  const command = process.execPath;
  const nodeArgs = ['--import', 'tsx', FIXTURE, ...argv];
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: '/tmp' };
  delete env.E2E_LANES_OWNER_PID;
  const child: ChildProcess =
    uid === process.getuid?.()
      ? spawn(command, nodeArgs, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', command, ...nodeArgs], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  ws.defer(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((done) => child.once('exit', done));
    child.kill('SIGKILL');
    await gone;
  });
  return new Promise((resolvePromise, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`allocation as uid ${uid} printed nothing within 60 s: ${err}`)), 60_000);
    child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const newline = out.indexOf('\n');
      if (newline >= 0) {
        clearTimeout(timer);
        resolvePromise(JSON.parse(out.slice(0, newline)) as ChildResult);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`allocation as uid ${uid} exited (${code}) before printing: ${err}`));
    });
  });
}

/** Mounts a tmpfs of `size` in the workspace; unmounted when the test ends (after the later cleanup steps). */
async function tmpfs(ws: Workspace, size: string): Promise<string> {
  const dir = join(ws.dir, 'mnt');
  await mkdir(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
  ws.defer(() => {
    try {
      execFileSync('umount', [dir]);
    } catch {
      execFileSync('umount', ['-l', dir]);
    }
  });
  return dir;
}

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

const MOUNT = canMount();

describe('file-system faults around the state folders', { concurrency: false }, () => {
  test('a second user allocates after root did, and never gets a port a live lane of the other user holds', { timeout: 120_000 }, async (t) => {
    if (!isRoot) return t.skip('needs root to run a child as user nobody');
    const ws = await workspace(t);
    const hostDir = process.env.E2E_LANES_HOST_STATE_DIR!;
    const parent = ws.dir;
    const range = [PORTS[0], PORTS[0] + 29] as const;

    const rootAllocator = new PortAllocator({ stateDir: await stateDirOf(parent, 'root-state', 0), runId: 'fs-root', range });
    ws.defer(() => rootAllocator.releaseRun());
    const rootLane = await rootAllocator.allocatePortsForProject('web');

    const nobody = await allocateAs(ws, NOBODY, { stateDir: await stateDirOf(parent, 'nobody-state', NOBODY), runId: 'fs-nobody', project: 'web', range, holdMs: 30_000 });
    assert.equal(nobody.ok, true, `nobody's allocation failed: ${nobody.message}`);
    const overlap = nobody.ports!.filter((port) => Object.values(rootLane.ports).includes(port));
    assert.deepEqual(overlap, [], 'nobody got a port of the live root lane');
    assert.equal((await stat(hostDir)).mode & 0o7777, 0o1777, 'the host-wide folder is shared like /tmp');

    // Four lanes of each user at once, each in its own state folder: no port twice.
    const racers = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const uid = i % 2 === 0 ? 0 : NOBODY;
        return allocateAs(ws, uid, { stateDir: await stateDirOf(parent, `race-${i}`, uid), runId: `fs-race-${i}`, project: 'web', range, holdMs: 30_000 });
      }),
    );
    for (const racer of racers) assert.equal(racer.ok, true, `a racer failed: ${racer.message}`);
    const all = [...Object.values(rootLane.ports), ...nobody.ports!, ...racers.flatMap((racer) => racer.ports!)];
    assert.equal(new Set(all).size, all.length, `a port was handed out twice: ${all.sort().join(',')}`);
  });

  test('a host-wide folder another user may not write in gives STATE_UNWRITABLE naming it; its owner makes it shared', { timeout: 60_000 }, async (t) => {
    if (!isRoot) return t.skip('needs root to run a child as user nobody');
    const ws = await workspace(t);
    const hostDir = process.env.E2E_LANES_HOST_STATE_DIR!;
    const parent = ws.dir;
    const range = [PORTS[0] + 30, PORTS[0] + 39] as const;
    // What older versions left behind after a run as root: a private folder with a claims file.
    await mkdir(hostDir, { mode: 0o755 });
    chmodSync(hostDir, 0o755);
    await writeFile(join(hostDir, 'port-claims.json'), '{"kind":"e2e-lanes/port-claims","version":1,"updatedAt":"","entries":[]}\n');

    const nobodyState = await stateDirOf(parent, 'nobody-state', NOBODY);
    const refused = await allocateAs(ws, NOBODY, { stateDir: nobodyState, runId: 'fs-nobody-1', project: 'web', range });
    assert.equal(refused.ok, false);
    assert.equal(refused.code, 'STATE_UNWRITABLE', refused.message);
    assert.ok(refused.message!.includes(hostDir), refused.message);
    assert.match(refused.message!, /permission denied/);
    assert.match(refused.message!, /chmod 1777/);

    const rootAllocator = new PortAllocator({ stateDir: await stateDirOf(parent, 'root-state', 0), runId: 'fs-root', range });
    ws.defer(() => rootAllocator.releaseRun());
    await rootAllocator.allocatePortsForProject('web');
    assert.equal((await stat(hostDir)).mode & 0o7777, 0o1777);
    const allowed = await allocateAs(ws, NOBODY, { stateDir: nobodyState, runId: 'fs-nobody-2', project: 'web', range });
    assert.equal(allowed.ok, true, allowed.message);
  });

  test('a state folder the user may not write in gives STATE_UNWRITABLE saying permission denied, not a lock timeout', { timeout: 60_000 }, async (t) => {
    if (!isRoot) return t.skip('needs root to run a child as user nobody');
    const ws = await workspace(t);
    const stateDir = await stateDirOf(ws.dir, 'roots-state', 0); // mode 0755, root's
    const refused = await allocateAs(ws, NOBODY, { stateDir, runId: 'fs-nobody', project: 'web', range: [PORTS[0] + 80, PORTS[0] + 89] });
    assert.equal(refused.ok, false);
    assert.equal(refused.code, 'STATE_UNWRITABLE', refused.message);
    assert.ok(refused.message!.includes(join(stateDir, PORTS_FILE)), refused.message);
    assert.match(refused.message!, /permission denied \(EACCES\) for user nobody \(uid 65534\)/);
    assert.match(refused.message!, /Hint: Give nobody \(uid 65534\) write access/);
  });

  test('a state file that is a symbolic link is refused, and the file it points at keeps its bytes', async (t) => {
    const ws = await workspace(t);
    const parent = ws.dir;
    const range = [PORTS[0] + 40, PORTS[0] + 49] as const;
    // Another suite's state folder with valid ledgers.
    const foreign = join(parent, 'other-suite');
    const other = new PortAllocator({ stateDir: foreign, runId: 'fs-other', range });
    ws.defer(() => other.releaseRun());
    await other.allocatePortsForProject('api');
    await laneLedger(foreign).update((doc) => {
      doc.entries.push({ runId: 'fs-other', project: 'api', owner: newOwner('fs-other'), status: 'up', ports: {}, servers: [], logDir: foreign } as never);
    });
    const mine = join(parent, 'this-suite');
    await mkdir(mine);
    for (const name of [PORTS_FILE, LANES_FILE]) await symlink(join(foreign, name), join(mine, name));
    const before = await Promise.all([PORTS_FILE, LANES_FILE].map((name) => readFile(join(foreign, name))));

    const allocator = new PortAllocator({ stateDir: mine, runId: 'fs-mine', range });
    const attempts: Array<[string, () => Promise<unknown>]> = [
      [PORTS_FILE, () => allocator.allocatePortsForProject('web')],
      [PORTS_FILE, () => allocator.list()],
      [LANES_FILE, () => laneLedger(mine).update((doc) => void doc.entries.splice(0))],
    ];
    for (const [name, attempt] of attempts) {
      await assert.rejects(attempt(), (error) => {
        assert.ok(isLanesError(error, 'STATE_NOT_A_FILE'), String(error));
        assert.ok(error.message.includes(join(mine, name)), error.message);
        assert.ok(error.message.includes(`symbolic link to ${join(foreign, name)}`), error.message);
        assert.match(error.hint ?? '', /Remove the link/);
        return true;
      });
    }
    const after = await Promise.all([PORTS_FILE, LANES_FILE].map((name) => readFile(join(foreign, name))));
    assert.deepEqual(after, before, "the other suite's files are unchanged");
    for (const name of [PORTS_FILE, LANES_FILE]) assert.equal(await readlink(join(mine, name)), join(foreign, name), 'the link is left as it was');
  });

  test('a directory in place of a state file or a log file gives a coded error naming it, not a bare EISDIR', async (t) => {
    const stateDir = (await workspace(t)).dir;
    await mkdir(join(stateDir, PORTS_FILE));
    await writeFile(join(stateDir, PORTS_FILE, 'kept.txt'), 'something someone put here\n');
    const allocator = new PortAllocator({ stateDir, runId: 'fs-dir', range: [PORTS[0] + 50, PORTS[0] + 59] });
    await assert.rejects(allocator.allocatePortsForProject('web'), (error) => {
      assert.ok(isLanesError(error, 'STATE_NOT_A_FILE'), String(error));
      assert.match(error.message, new RegExp(`State file ${escape(join(stateDir, PORTS_FILE))} is a directory, not a file`));
      assert.match(error.hint ?? '', /rmdir|mount/);
      return true;
    });
    assert.equal(await readFile(join(stateDir, PORTS_FILE, 'kept.txt'), 'utf8'), 'something someone put here\n', 'nothing in it was touched');

    // A log folder that is a file, and a log file that is a folder.
    await writeFile(join(stateDir, 'lanes'), 'not a folder\n');
    assert.throws(
      () => new OutputSink({ logFile: join(stateDir, 'lanes', 'r1', 'web', 'backend.log'), label: '[web:backend]', secrets: [], debug: false }),
      (error) => isLanesError(error, 'STATE_UNWRITABLE') && /Could not create log folder .*lanes\/r1\/web/.test(error.message),
    );
    await mkdir(join(stateDir, 'logs', 'backend.log'), { recursive: true });
    assert.throws(
      () => new OutputSink({ logFile: join(stateDir, 'logs', 'backend.log'), label: '[web:backend]', secrets: [], debug: false }),
      (error) => isLanesError(error, 'STATE_UNWRITABLE') && error.message.includes(`Could not open log file ${join(stateDir, 'logs', 'backend.log')}`),
    );
  });

  test('a read-only state folder gives STATE_UNWRITABLE naming the path; what was recorded stays readable', { skip: !MOUNT && 'mounting a tmpfs is not permitted here' }, async (t) => {
    const ws = await workspace(t);
    const stateDir = await tmpfs(ws, '1m');
    const allocator = new PortAllocator({ stateDir, runId: 'fs-ro', range: [PORTS[0] + 60, PORTS[0] + 69] });
    const first = await allocator.allocatePortsForProject('web');
    ws.defer(() => allocator.releaseRun());
    const recorded = await readFile(join(stateDir, PORTS_FILE), 'utf8');
    execFileSync('mount', ['-o', 'remount,ro', stateDir]);
    ws.defer(() => execFileSync('mount', ['-o', 'remount,rw', stateDir]));

    await assert.rejects(allocator.allocatePortsForProject('api'), (error) => {
      assert.ok(isLanesError(error, 'STATE_UNWRITABLE'), String(error));
      assert.ok(error.message.includes(join(stateDir, PORTS_FILE)), error.message);
      assert.match(error.message, /read-only \(EROFS\)/);
      assert.match(error.hint ?? '', /read-write|writable folder/);
      return true;
    });
    assert.throws(
      () => new OutputSink({ logFile: join(stateDir, 'lanes', 'r1', 'web', 'backend.log'), label: '[web:backend]', secrets: [], debug: false }),
      (error) => isLanesError(error, 'STATE_UNWRITABLE') && error.message.includes(join(stateDir, 'lanes', 'r1', 'web')) && /read-only \(EROFS\)/.test(error.message),
    );
    assert.equal(await readFile(join(stateDir, PORTS_FILE), 'utf8'), recorded);
    assert.deepEqual((await allocator.list()).map((entry) => entry.ports), [first.ports]);
  });

  test('a full disk gives STATE_UNWRITABLE with ENOSPC; the recorded state is intact and allocation works once there is space', { skip: !MOUNT && 'mounting a tmpfs is not permitted here' }, async (t) => {
    const ws = await workspace(t);
    const stateDir = await tmpfs(ws, '64k');
    const allocator = new PortAllocator({ stateDir, runId: 'fs-full', range: [PORTS[0] + 70, PORTS[0] + 79] });
    ws.defer(() => allocator.releaseRun());
    const first = await allocator.allocatePortsForProject('web');
    const recorded = await readFile(join(stateDir, PORTS_FILE), 'utf8');
    const filler = join(stateDir, 'filler');
    ws.defer(() => rm(filler, { force: true }));
    await writeFile(filler, Buffer.alloc(1024 * 1024)).then(
      () => assert.fail('the 64 KiB tmpfs took 1 MiB'),
      (error: NodeJS.ErrnoException) => assert.equal(error.code, 'ENOSPC'),
    );

    await assert.rejects(allocator.allocatePortsForProject('api'), (error) => {
      assert.ok(isLanesError(error, 'STATE_UNWRITABLE'), String(error));
      assert.ok(error.message.includes(join(stateDir, PORTS_FILE)), error.message);
      assert.match(error.message, /no space left on the device \(ENOSPC\)/);
      assert.match(error.hint ?? '', /Free space .*What was recorded before is unchanged/);
      return true;
    });
    assert.equal(await readFile(join(stateDir, PORTS_FILE), 'utf8'), recorded, 'the recorded document is byte for byte the same');
    assert.deepEqual((await allocator.list()).map((entry) => entry.ports), [first.ports]);
    assert.deepEqual((await readdir(stateDir)).sort(), [PORTS_FILE, 'filler'].sort(), 'no temp file or lock is left behind');
    const hostClaims = (await readdir(process.env.E2E_LANES_HOST_STATE_DIR!)).filter((name) => name.endsWith('.json'));
    assert.equal(hostClaims.length, Object.keys(first.ports).length, 'the claims of the failed allocation were withdrawn');

    await rm(filler);
    const second = await allocator.allocatePortsForProject('api');
    assert.deepEqual((await allocator.list()).map((entry) => entry.ports), [first.ports, second.ports]);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
