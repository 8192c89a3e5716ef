import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { HostClaims, type PortClaim } from '../../src/ports/host-claims.js';
import { newOwner } from '../../src/state/index.js';
import { tempDir } from '../helpers/tmp.js';

const LEASE = 120_000;
const claimFiles = async (dir: string) => (await readdir(dir)).filter((name) => /^p\d+\.json$/.test(name)).sort();
const key = (runId: string) => ({ runId, project: 'web' });
/** A pid that does not exist (above the kernel's limit). */
const deadOwner = (runId: string) => ({ ...newOwner(runId), pid: 2 ** 22 + 17 });

function isClaim(value: unknown): value is PortClaim {
  return typeof value === 'object' && value !== null;
}

describe('host-wide port claims', () => {
  it('creates the folder shared like /tmp and refuses a claimed port to every other lane, of any state folder', async (t) => {
    const dir = join(await tempDir(t), 'host');
    const claims = new HostClaims(dir);
    const claim = await claims.claim(4100, '/suite-a', key('run-a'), newOwner('run-a'), LEASE);
    assert.ok(isClaim(claim) && existsSync(claims.fileOf(4100)));
    assert.equal((await stat(dir)).mode & 0o7777, 0o1777);
    assert.equal(await claims.claim(4100, '/suite-b', key('run-b'), newOwner('run-b'), LEASE), 'other-folder');
    assert.equal(await claims.claim(4100, '/suite-a', { runId: 'run-a', project: 'api' }, newOwner('run-a'), LEASE), 'this-folder');
    assert.equal(await claims.claim(4100, '/suite-b', key('run-b'), newOwner('run-b'), LEASE, { unclaimed: true }), 'contended');
    assert.deepEqual([...(await claims.claimedPorts())], [4100]);
    await claims.drop('/suite-a', [{ ...key('run-a'), ports: { web: 4100 } }]);
    assert.deepEqual(await claimFiles(dir), []);
  });

  it('lets exactly one of 20 lanes claiming one port at the same moment keep it', async (t) => {
    const claims = new HostClaims(join(await tempDir(t), 'host'));
    for (let port = 4200; port < 4210; port++) {
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, (_, i) => claims.claim(port, `/suite-${i % 4}`, key(`run-${i}`), newOwner(`run-${i}`), LEASE, { unclaimed: i % 2 === 0 })),
      );
      assert.equal(outcomes.filter(isClaim).length, 1, `port ${port}: ${outcomes.map((o) => (isClaim(o) ? 'claim' : o)).join(',')}`);
    }
    assert.equal((await claimFiles(claims.path)).length, 10);
  });

  it('takes over the claim of a dead owner, and of an owner whose heartbeat (the file time) is older than the lease', async (t) => {
    const dir = join(await tempDir(t), 'host');
    const claims = new HostClaims(dir);
    assert.ok(isClaim(await claims.claim(4103, '/suite-a', key('run-dead'), deadOwner('run-dead'), LEASE)));
    const taken = await claims.claim(4103, '/suite-b', key('run-b'), newOwner('run-b'), LEASE);
    assert.ok(isClaim(taken) && taken.stateDir === '/suite-b');

    const old = new Date(Date.now() - 10 * 60_000);
    assert.ok(isClaim(await claims.claim(4104, '/suite-a', key('run-slow'), newOwner('run-slow', process.pid, old), LEASE)));
    await utimes(claims.fileOf(4104), old, old);
    const over = await claims.claim(4104, '/suite-b', key('run-b'), newOwner('run-b'), LEASE);
    assert.ok(isClaim(over) && over.stateDir === '/suite-b', 'an expired claim holds nothing');
    assert.equal(await claims.touchRun('run-slow'), 0, 'the slow owner refreshes nothing: its claim is gone');
    assert.equal(await claims.touchRun('run-b'), 2);
  });

  it('withdraws only its own claim, never the claim made after it was taken over', async (t) => {
    const claims = new HostClaims(join(await tempDir(t), 'host'));
    const first = await claims.claim(4105, '/suite-a', key('run-dead'), deadOwner('run-dead'), LEASE);
    const second = await claims.claim(4105, '/suite-b', key('run-b'), newOwner('run-b'), LEASE);
    assert.ok(isClaim(first) && isClaim(second));
    await claims.withdraw([first]);
    assert.ok(existsSync(claims.fileOf(4105)), 'the live claim stays');
    await claims.drop('/suite-a', [{ ...key('run-dead'), ports: { web: 4105 } }]);
    assert.ok(existsSync(claims.fileOf(4105)), 'a release of the old lane leaves the new claim alone');
    await claims.withdraw([second]);
    assert.deepEqual(await claimFiles(claims.path), []);
  });

  it('never takes the port of a link or a file that is not a claim', async (t) => {
    const dir = join(await tempDir(t), 'host');
    const claims = new HostClaims(dir);
    await claims.claimedPorts(); // creates the folder
    const target = join(await tempDir(t), 'elsewhere.json');
    await writeFile(target, JSON.stringify({ runId: 'x', project: 'y', stateDir: '/z', port: 4106, id: 'abc', owner: deadOwner('x') }));
    await symlink(target, join(dir, 'p4106.json'));
    await writeFile(join(dir, 'p4107.json'), 'not json');
    assert.equal(await claims.claim(4106, '/suite-b', key('run-b'), newOwner('run-b'), LEASE), 'other-folder');
    assert.equal(await claims.claim(4107, '/suite-b', key('run-b'), newOwner('run-b'), LEASE), 'other-folder');
    assert.deepEqual(await claims.prune(LEASE), []);
    assert.ok(existsSync(join(dir, 'p4107.json')));
  });

  it('keeps the claims of a kept run alive after its owner is gone, until they are dropped; prunes those of dead runs', async (t) => {
    const dir = join(await tempDir(t), 'host');
    const claims = new HostClaims(dir);
    await claims.claim(4108, '/suite-a', key('run-kept'), deadOwner('run-kept'), LEASE);
    await claims.claim(4109, '/suite-a', key('run-dead'), deadOwner('run-dead'), LEASE);
    await claims.keepRun('/suite-a', 'run-kept');
    assert.equal(await claims.claim(4108, '/suite-b', key('run-b'), newOwner('run-b'), LEASE), 'other-folder', 'a kept claim counts whatever its pid');
    assert.deepEqual(await claims.prune(LEASE), [4109]);
    assert.deepEqual(await claimFiles(dir), ['p4108.json']);
    await claims.drop('/suite-a', [{ ...key('run-kept'), ports: { web: 4108 } }]);
    assert.deepEqual(await claimFiles(dir), []);
  });

  it('gives the claims of a run to a new owner', async (t) => {
    const claims = new HostClaims(join(await tempDir(t), 'host'));
    await claims.claim(4110, '/suite-a', key('run-a'), deadOwner('run-a'), LEASE);
    await claims.handOverRun('/suite-a', 'run-a', newOwner('run-a'));
    assert.equal(await claims.claim(4110, '/suite-b', key('run-b'), newOwner('run-b'), LEASE), 'other-folder', 'the live new owner holds it');
    assert.deepEqual((await claims.list()).map((claim) => claim.owner.pid), [process.pid]);
  });
});
