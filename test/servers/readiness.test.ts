import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { pauseAfter, waitUntilHealthy } from '../../src/servers/readiness.js';

const execFileAsync = promisify(execFile);

test('polls after 25, 50 and 100 ms, then every 100 ms, and every 500 ms once 10 s have passed', () => {
  assert.deepEqual([1, 2, 3, 4, 5].map((poll) => pauseAfter(poll, 1_000)), [25, 50, 100, 100, 100]);
  assert.equal(pauseAfter(40, 9_999), 100);
  assert.equal(pauseAfter(80, 10_000), 500);
});

test('a server that turns healthy is seen at the next poll, with every poll counted', async (t) => {
  let requests = 0;
  // 503 for the first four requests, then 200: healthy at the fifth poll.
  const server = http.createServer((_, res) => res.writeHead(++requests <= 4 ? 503 : 200).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`;
  const readiness = await waitUntilHealthy({ url, timeout: 10_000, exited: new Promise(() => undefined) });
  assert.deepEqual(readiness, { kind: 'healthy', polls: 5 });
  assert.equal(requests, 5);
});

test('a server that never turns healthy times out with its last answer', async (t) => {
  const server = http.createServer((_, res) => res.writeHead(503).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`;
  const readiness = await waitUntilHealthy({ url, timeout: 600, exited: new Promise(() => undefined) });
  assert.equal(readiness.kind, 'timeout');
  assert.ok(readiness.polls >= 4, `${readiness.polls} polls in 600 ms`);
  assert.equal((readiness as { lastProblem: string }).lastProblem, 'answered HTTP 503');
});

test('asks with an Accept header as a browser does, so a dev server that 404s a bare GET (Vite 4) is seen as up', async (t) => {
  // Vite 4.5 answers a GET without Accept with 404 and one that accepts HTML with the page.
  const server = http.createServer((req, res) => res.writeHead(/text\/html|\*\/\*/.test(req.headers.accept ?? '') ? 200 : 404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const readiness = await waitUntilHealthy({ url, timeout: 2_000, exited: new Promise(() => undefined) });
  assert.deepEqual(readiness, { kind: 'healthy', polls: 1 });
});

/**
 * Why a host whose `localhost` is ::1 first cannot be tried: no root, or no user and mount
 * namespaces (a container that forbids them). Undefined when it can.
 */
function cannotTryIpv6First(): string | undefined {
  if (process.getuid?.() !== 0) return 'bind-mounting a hosts file needs root';
  const probe = spawnSync('unshare', ['-rm', 'true'], { timeout: 10_000 });
  if (probe.error || probe.status !== 0) return `unshare -rm is unavailable (${probe.error?.message ?? probe.stderr.toString().trim()})`;
  return undefined;
}

test("a lane URL of localhost reaches a server on 127.0.0.1 where localhost is ::1 first, even with Node's address fallback turned off", { skip: cannotTryIpv6First(), timeout: 60_000 }, async (t) => {
  const server = http.createServer((_, res) => res.writeHead(200).end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const port = (server.address() as AddressInfo).port;
  const dir = await mkdtemp(join(tmpdir(), 'e2e-lanes-hosts-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'hosts'), '::1 localhost\n127.0.0.1 localhost\n');
  const script = join(dir, 'check.mts');
  await writeFile(
    script,
    [
      `import { lookup } from 'node:dns/promises';`,
      `import { waitUntilHealthy } from ${JSON.stringify(new URL('../../src/servers/readiness.ts', import.meta.url).pathname)};`,
      `const first = (await lookup('localhost')).address;`,
      `const results = [];`,
      `for (const url of ['http://localhost:${port}/', 'tcp://localhost:${port}']) results.push((await waitUntilHealthy({ url, timeout: 2_000, exited: new Promise(() => undefined) })).kind);`,
      `console.log(JSON.stringify({ first, results }));`,
    ].join('\n'),
  );
  // A private mount namespace: the hosts file of this machine is not touched.
  // (Not spawnSync: this process's server must answer meanwhile.)
  const run = await execFileAsync('unshare', ['-rm', 'sh', '-c', `mount --bind "${join(dir, 'hosts')}" /etc/hosts && exec "${process.execPath}" --no-network-family-autoselection --import tsx "${script}"`], { timeout: 30_000, encoding: 'utf8' });
  assert.deepEqual(JSON.parse(run.stdout.trim().split('\n').at(-1)!), { first: '::1', results: ['healthy', 'healthy'] });
});
