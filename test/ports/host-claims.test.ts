import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { HostClaims } from '../../src/ports/host-claims.js';
import { newOwner } from '../../src/state/index.js';
import { tempDir } from '../helpers/tmp.js';

const LEASE = 120_000;
const claimFiles = async (dir: string) => (await readdir(dir)).filter((name) => /^p\d+-[0-9a-f]{12}\.json$/.test(name));

describe('host-wide port claims', () => {
  it('creates the folder shared like /tmp and shows a claim to other state folders only', async (t) => {
    const dir = join(await tempDir(t), 'host');
    const claims = new HostClaims(dir);
    const file = await claims.claim(4100, '/suite-a', { runId: 'run-a', project: 'web' }, newOwner('run-a'), LEASE);
    assert.ok(file && existsSync(file));
    assert.equal((await stat(dir)).mode & 0o7777, 0o1777);
    assert.deepEqual([...(await claims.foreign('/suite-b', LEASE, []))], [4100]);
    // For its own state folder the ledger decides: a claim it does not hold is an orphan and is removed.
    assert.deepEqual([...(await claims.foreign('/suite-a', LEASE, []))], []);
    assert.deepEqual(await claimFiles(dir), []);
  });

  it('keeps a claim of its own state folder that the ledger holds, and drops it on release', async (t) => {
    const claims = new HostClaims(join(await tempDir(t), 'host'));
    const key = { runId: 'run-a', project: 'web' };
    await claims.claim(4101, '/suite-a', key, newOwner('run-a'), LEASE);
    await claims.foreign('/suite-a', LEASE, [{ ...key, ports: { backend: 4101 } }]);
    assert.deepEqual([...(await claims.foreign('/suite-b', LEASE, []))], [4101]);
    await claims.drop('/suite-a', [key]);
    assert.deepEqual([...(await claims.foreign('/suite-b', LEASE, []))], []);
  });

  it('lets exactly one of two state folders keep a port claimed at the same moment, nearly always', async (t) => {
    const claims = new HostClaims(join(await tempDir(t), 'host'));
    let kept = 0;
    for (let port = 4200; port < 4240; port++) {
      const [a, b] = await Promise.all(
        ['/suite-a', '/suite-b'].map((stateDir) => claims.claim(port, stateDir, { runId: `run-${stateDir}`, project: 'web' }, newOwner('run'), LEASE)),
      );
      assert.ok(!(a && b), `port ${port} kept by both`);
      if (a || b) kept++;
      // What was kept is what the folder holds.
      assert.equal((await claimFiles(join(claims.path))).filter((name) => name.startsWith(`p${port}-`)).length, a || b ? 1 : 0);
    }
    // Both stepping back is allowed, but they try again after random delays: nearly every port is taken.
    assert.ok(kept >= 30, `only ${kept} of 40 contested ports were kept by anyone`);
  });

  it('counts a claim while its heartbeat (the file time) is fresh, and not once it is older than the lease', async (t) => {
    const dir = join(await tempDir(t), 'host');
    const claims = new HostClaims(dir);
    const old = new Date(Date.now() - 10 * 60_000);
    const file = (await claims.claim(4102, '/suite-a', { runId: 'run-a', project: 'web' }, newOwner('run-a', process.pid, old), LEASE))!;
    await utimes(file, old, old);
    assert.deepEqual([...(await claims.foreign('/suite-b', LEASE, []))], [], 'an expired claim holds nothing');
    assert.ok(existsSync(file), 'its owner lives: the claim is kept, since a heartbeat may still come');
    assert.equal(await claims.touchRun('run-a'), 1);
    assert.deepEqual([...(await claims.foreign('/suite-b', LEASE, []))], [4102]);
  });

  it('removes the claims of a dead owner, and ignores links and files that are not claims', async (t) => {
    const dir = join(await tempDir(t), 'host');
    const claims = new HostClaims(dir);
    const dead = { ...newOwner('run-dead'), pid: 2 ** 22 + 17 };
    const file = (await claims.claim(4103, '/suite-a', { runId: 'run-dead', project: 'web' }, dead, LEASE))!;
    const target = join(await tempDir(t), 'elsewhere.json');
    await writeFile(target, JSON.stringify({ runId: 'x', project: 'y', stateDir: '/z', port: 4104, owner: newOwner('x') }));
    await symlink(target, join(dir, 'p4104-0123456789ab.json'));
    await writeFile(join(dir, 'p4105-0123456789ab.json'), 'not json');
    assert.deepEqual([...(await claims.foreign('/suite-b', LEASE, []))], []);
    assert.ok(!existsSync(file), 'the dead owner claim is removed');
  });

  it('keeps the claims of a kept run alive after its owner is gone, until they are dropped', async (t) => {
    const dir = join(await tempDir(t), 'host');
    const claims = new HostClaims(dir);
    const key = { runId: 'run-kept', project: 'web' };
    const dead = { ...newOwner('run-kept'), pid: 2 ** 22 + 19 };
    await claims.claim(4106, '/suite-a', key, dead, LEASE);
    await claims.keepRun('/suite-a', 'run-kept');
    assert.deepEqual([...(await claims.foreign('/suite-b', LEASE, []))], [4106], 'a kept claim counts whatever its pid');
    assert.equal((await claimFiles(dir)).length, 1);
    await claims.drop('/suite-a', [key]);
    assert.deepEqual(await claimFiles(dir), []);
  });
});
