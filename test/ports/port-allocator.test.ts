import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { beforeEach, test } from 'node:test';
import { isLanesError } from '../../src/errors.js';
import { canBind, hasIpv6Loopback } from '../../src/ports/probe.js';
import { PortAllocator, PORTS_FILE } from '../../src/ports/index.js';
import { beatAll } from '../../src/state/index.js';
import { exited, runFixture, startFixture } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';

const FIXTURE = new URL('../fixtures/ports/allocate.ts', import.meta.url).pathname;

// Every test gets its own host-wide claims file, so claims of earlier tests (owned by this live
// process) do not shape later ones. Child processes inherit it through the environment.
beforeEach(async (t) => {
  process.env.E2E_LANES_HOST_STATE_DIR = await tempDir(t as never, 'e2e-lanes-host-');
});

function listen(t: { after(fn: () => unknown): void }, port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ port, host, exclusive: true }, () => resolve(server));
    t.after(() => new Promise<void>((done) => server.close(() => done())));
  });
}

/** A small range of ports that are all free right now, so tests do not depend on the host. */
async function freeRange(size: number, from = 21_000): Promise<[number, number]> {
  for (let start = from; start < from + 5_000; start += size) {
    let ok = true;
    for (let port = start; port < start + size && ok; port++) ok = await canBind(port, '127.0.0.1');
    if (ok) return [start, start + size - 1];
  }
  throw new Error('no free range found');
}

test('reuses the same ports when the same project asks twice, from two allocators', async (t) => {
  const stateDir = await tempDir(t);
  const range = await freeRange(20);
  const first = await new PortAllocator({ stateDir, runId: 'run-a', range }).allocatePortsForProject('auth');
  const again = await new PortAllocator({ stateDir, runId: 'run-a', range }).allocatePortsForProject('auth');
  assert.deepEqual(again, first);
  assert.equal(first.backendPort, first.ports.backend);
  assert.equal(first.frontendPort, first.ports.frontend);
  assert.notEqual(first.backendPort, first.frontendPort);
});

test('gives different projects disjoint ports', async (t) => {
  const stateDir = await tempDir(t);
  const allocator = new PortAllocator({ stateDir, runId: 'run-a', range: await freeRange(20) });
  const a = await allocator.allocatePortsForProject('a');
  const b = await allocator.allocatePortsForProject('b');
  const all = [...Object.values(a.ports), ...Object.values(b.ports)];
  assert.equal(new Set(all).size, 4);
});

test('hands out the named ports a project asks for', async (t) => {
  const stateDir = await tempDir(t);
  const allocator = new PortAllocator({ stateDir, runId: 'run-a', range: await freeRange(20), names: ['api', 'web', 'mail'] });
  const lane = await allocator.allocatePortsForProject('x');
  assert.deepEqual(Object.keys(lane.ports), ['api', 'web', 'mail']);
  assert.equal(lane.backendPort, undefined);
});

test('never hands one port to two of 24 processes allocating at once', { timeout: 120_000 }, async (t) => {
  const stateDir = await tempDir(t);
  // The test process is the long-lived owner of the runs, as a Playwright runner is for its workers:
  // the entries outlive the short-lived processes that asked for them.
  const env = { E2E_LANES_OWNER_PID: String(process.pid) };
  const outputs = await Promise.all(
    Array.from({ length: 24 }, (_, i) => runFixture(FIXTURE, [stateDir, `run-${i % 3}`, `project-${i}`], { env, timeoutMs: 90_000 })),
  );
  const ports = outputs.flatMap((out) => Object.values(JSON.parse(out).ports as Record<string, number>));
  assert.equal(ports.length, 48);
  assert.equal(new Set(ports).size, 48, `duplicate ports: ${ports.sort().join(',')}`);
  for (const port of ports) assert.ok(await canBind(port, '127.0.0.1'), `port ${port} is not bindable`);
  const doc = JSON.parse(await readFile(join(stateDir, PORTS_FILE), 'utf8'));
  assert.equal(doc.kind, 'e2e-lanes/ports');
  assert.equal(doc.entries.length, 24);
  assert.ok(doc.entries.every((entry: { owner: { pid: number } }) => entry.owner.pid === process.pid));
});

test('skips a port held by an unrelated IPv4-only listener', async (t) => {
  const stateDir = await tempDir(t);
  const [first, last] = await freeRange(6);
  await listen(t, first, '127.0.0.1');
  const lane = await new PortAllocator({ stateDir, runId: 'r', range: [first, last] }).allocatePortsForProject('p');
  assert.ok(!Object.values(lane.ports).includes(first));
});

test('skips a port held by an unrelated IPv6-only listener', async (t) => {
  if (!(await hasIpv6Loopback())) {
    t.skip('this host has no IPv6 loopback');
    return;
  }
  const stateDir = await tempDir(t);
  const [first, last] = await freeRange(6, 22_000);
  await listen(t, first, '::1');
  const lane = await new PortAllocator({ stateDir, runId: 'r', range: [first, last] }).allocatePortsForProject('p');
  assert.ok(!Object.values(lane.ports).includes(first));
});

test('skips a port held by a wildcard listener', async (t) => {
  const stateDir = await tempDir(t);
  const [first, last] = await freeRange(6, 23_000);
  await listen(t, first, '0.0.0.0');
  const lane = await new PortAllocator({ stateDir, runId: 'r', range: [first, last] }).allocatePortsForProject('p');
  assert.ok(!Object.values(lane.ports).includes(first));
});

test('reaps the ports of a SIGKILLed owner and hands them out again', { timeout: 60_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const { child, firstLine } = await startFixture(t, FIXTURE, [stateDir, 'doomed-run', 'victim', '60000'], {
    E2E_LANES_OWNER_PID: '',
  });
  // The fixture uses its own range; ask for the same range here.
  const held = JSON.parse(firstLine).ports as Record<string, number>;
  const allocator = new PortAllocator({ stateDir, runId: 'next-run', range: [20_000, 20_999] });
  const whileAlive = await allocator.allocatePortsForProject('other');
  assert.ok(Object.values(whileAlive.ports).every((port) => !Object.values(held).includes(port)));
  await allocator.releasePortsForProject('other');

  child.kill('SIGKILL');
  await exited(child);
  const reaped = await allocator.reapStale();
  assert.deepEqual(reaped.map((item) => item.entry.runId), ['doomed-run']);
  assert.match(reaped[0]!.reason, /is gone/);
  const after = await allocator.allocatePortsForProject('other');
  assert.deepEqual(Object.values(after.ports).sort(), Object.values(held).sort());
});

test('reaps an entry whose heartbeat is older than the lease even if its pid lives', async (t) => {
  const stateDir = await tempDir(t);
  const range = await freeRange(10, 24_000);
  const old = new PortAllocator({ stateDir, runId: 'old', range });
  await old.allocatePortsForProject('p');
  const file = join(stateDir, PORTS_FILE);
  const doc = JSON.parse(await readFile(file, 'utf8'));
  doc.entries[0].owner.heartbeatAt = new Date(Date.now() - 10 * 60_000).toISOString();
  await writeFile(file, JSON.stringify(doc));
  const fresh = new PortAllocator({ stateDir, runId: 'new', range, leaseMs: 60_000 });
  const listing = await fresh.list();
  assert.equal(listing[0]!.alive, false);
  assert.match(listing[0]!.staleReason!, /heartbeat/);
  assert.equal((await fresh.reapStale()).length, 1);
});

test('keeps a corrupt state file aside, warns, and allocates anyway', async (t) => {
  const stateDir = await tempDir(t);
  const file = join(stateDir, PORTS_FILE);
  await writeFile(file, '{"kind":"e2e-lanes/ports","version":1,"entries":[{"runId":');
  const warnings: string[] = [];
  t.mock.method(console, 'warn', (message: string) => warnings.push(message));
  const lane = await new PortAllocator({ stateDir, runId: 'r', range: await freeRange(10, 25_000) }).allocatePortsForProject('p');
  assert.ok(lane.backendPort);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /not valid JSON/);
  const aside = (await readdir(stateDir)).filter((name) => name.startsWith(`${PORTS_FILE}.corrupt-`));
  assert.equal(aside.length, 1);
  assert.match(await readFile(join(stateDir, aside[0]!), 'utf8'), /"runId":$/);
  assert.equal(JSON.parse(await readFile(file, 'utf8')).entries.length, 1);
});

test('treats an empty or foreign-version state file like a corrupt one', async (t) => {
  for (const content of ['', '{"kind":"e2e-lanes/ports","version":99,"entries":[]}', '[1,2,3]']) {
    const stateDir = await tempDir(t);
    await writeFile(join(stateDir, PORTS_FILE), content);
    const warnings: string[] = [];
    const mock = t.mock.method(console, 'warn', (message: string) => warnings.push(message));
    const lane = await new PortAllocator({ stateDir, runId: 'r', range: await freeRange(10, 26_000) }).allocatePortsForProject('p');
    mock.mock.restore();
    assert.ok(lane.backendPort);
    assert.equal(warnings.length, 1, `content ${JSON.stringify(content)}`);
  }
});

test('reports PORT_RANGE_EXHAUSTED with the range, the holders and a hint', async (t) => {
  const stateDir = await tempDir(t);
  const range = await freeRange(3, 27_000);
  const allocator = new PortAllocator({ stateDir, runId: 'r', range });
  await allocator.allocatePortsForProject('first');
  await assert.rejects(allocator.allocatePortsForProject('second'), (error) => {
    assert.ok(isLanesError(error, 'PORT_RANGE_EXHAUSTED'));
    assert.match(error.message, new RegExp(`${range[0]}-${range[1]}`));
    assert.match(error.message, /2 held by live lanes \(2 by first/);
    assert.match(error.hint!, /E2E_LANES_PORT_RANGE/);
    assert.match(error.hint!, /e2e-lanes gc/);
    return true;
  });
});

test('rejects an invalid range or invalid names at the call', () => {
  for (const range of [[5000, 4000], [0, 10], [3000, 70_000], [1.5, 2000]] as Array<[number, number]>) {
    assert.throws(() => new PortAllocator({ range }), (error) => isLanesError(error, 'INVALID_OPTION') && /range/.test(error.message));
  }
  for (const names of [[], ['a', 'a'], ['has space'], ['']]) {
    assert.throws(() => new PortAllocator({ names }), (error) => isLanesError(error, 'INVALID_OPTION') && /names/.test(error.message));
  }
});

test('stores hostile project names safely and rejects the empty one', async (t) => {
  const stateDir = await tempDir(t);
  const allocator = new PortAllocator({ stateDir, runId: 'r', range: await freeRange(20, 28_000) });
  const hostile = [`it's "quoted"`, '../../etc/passwd', '; DROP DATABASE postgres; --', 'ünïcödé 🚀 名前', 'x'.repeat(300)];
  for (const name of hostile) await allocator.allocatePortsForProject(name);
  const doc = JSON.parse(await readFile(join(stateDir, PORTS_FILE), 'utf8'));
  assert.deepEqual(doc.entries.map((entry: { project: string }) => entry.project), hostile);
  assert.deepEqual((await readdir(stateDir)).sort(), [PORTS_FILE]);
  for (const bad of ['', '   ', 'nul\u0000byte', 'y'.repeat(600)]) {
    await assert.rejects(allocator.allocatePortsForProject(bad), (error) => isLanesError(error, 'INVALID_PROJECT_NAME'));
  }
});

test('getInstance returns one allocator per state folder', async (t) => {
  const stateDir = await tempDir(t);
  PortAllocator.resetInstances();
  t.after(() => PortAllocator.resetInstances());
  const a = PortAllocator.getInstance({ stateDir, runId: 'r' });
  assert.equal(PortAllocator.getInstance({ stateDir, runId: 'r' }), a);
  assert.notEqual(PortAllocator.getInstance({ stateDir: join(stateDir, 'other'), runId: 'r' }), a);
  assert.throws(() => PortAllocator.getInstance({ stateDir, runId: 'r', range: [4000, 4100] }), (error) => isLanesError(error, 'INVALID_OPTION'));
});

test('releases a project, and a whole run', async (t) => {
  const stateDir = await tempDir(t);
  const allocator = new PortAllocator({ stateDir, runId: 'r', range: await freeRange(20, 29_000) });
  await allocator.allocatePortsForProject('a');
  await allocator.allocatePortsForProject('b');
  assert.equal(await allocator.releasePortsForProject('a'), true);
  assert.equal(await allocator.releasePortsForProject('a'), false);
  assert.deepEqual((await allocator.list()).map((entry) => entry.project), ['b']);
  assert.equal((await allocator.releaseRun()).length, 1);
  assert.deepEqual(await allocator.list(), []);
});

test('keeps lanes of two state folders on one host apart before any server binds', async (t) => {
  const range = await freeRange(4, 30_000);
  const first = new PortAllocator({ stateDir: await tempDir(t), runId: 'repo-a', range });
  const second = new PortAllocator({ stateDir: await tempDir(t), runId: 'repo-b', range });
  const a = await first.allocatePortsForProject('web');
  const b = await second.allocatePortsForProject('web');
  const all = [...Object.values(a.ports), ...Object.values(b.ports)];
  assert.equal(new Set(all).size, 4, `shared ports: ${all.join(',')}`);
  await assert.rejects(second.allocatePortsForProject('more'), (error) => isLanesError(error, 'PORT_RANGE_EXHAUSTED') && /2 claimed by lanes of other state folders/.test(error.message));
  await first.releaseRun();
  const again = await second.allocatePortsForProject('more');
  assert.deepEqual(Object.values(again.ports).sort(), Object.values(a.ports).sort());
});

test('never hands out a port browsers refuse: a range holding 4045 skips it', async (t) => {
  const stateDir = await tempDir(t);
  const allocator = new PortAllocator({ stateDir, runId: 'r', range: [4044, 4046], names: ['web'] });
  const handed: number[] = [];
  for (let lane = 0; lane < 3; lane++) {
    try {
      handed.push((await allocator.allocatePortsForProject(`lane-${lane}`)).ports.web!);
    } catch (error) {
      assert.ok(isLanesError(error, 'PORT_RANGE_EXHAUSTED'), String(error));
      assert.match(error.message, /1 refused by browsers \(4045\)/);
      break;
    }
  }
  assert.ok(!handed.includes(4045), `handed out ${handed.join(', ')}`);
  assert.ok(handed.length <= 2);
  await allocator.releaseRun();
});

test('reports PORT_RANGE_EXHAUSTED for a range of ports browsers refuse only', async (t) => {
  const stateDir = await tempDir(t);
  const allocator = new PortAllocator({ stateDir, runId: 'r', range: [6665, 6669] });
  await assert.rejects(allocator.allocatePortsForProject('web'), (error) => {
    assert.ok(isLanesError(error, 'PORT_RANGE_EXHAUSTED'), String(error));
    assert.match(error.message, /range 6665-6669/);
    assert.match(error.message, /5 refused by browsers \(6665, 6666, 6667, 6668, 6669\)/);
    return true;
  });
  assert.deepEqual(await allocator.list(), []);
});

test('keeps the host-wide claims of its lanes fresh with its heartbeat, one claim file per port', async (t) => {
  const stateDir = await tempDir(t);
  const allocator = new PortAllocator({ stateDir, runId: 'beating', range: await freeRange(10, 31_000) });
  const lane = await allocator.allocatePortsForProject('web');
  const files = Object.values(lane.ports).map((port) => join(process.env.E2E_LANES_HOST_STATE_DIR!, `p${port}.json`));
  const old = new Date(Date.now() - 10 * 60_000);
  for (const file of files) await utimes(file, old, old);
  await beatAll();
  for (const file of files) assert.ok((await stat(file)).mtimeMs > Date.now() - 60_000, `${file} was refreshed`);
  await allocator.releaseRun();
  for (const file of files) assert.equal(existsSync(file), false, `${file} is removed on release`);
});
