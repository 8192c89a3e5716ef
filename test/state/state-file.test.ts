import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs, { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { isLanesError } from '../../src/errors.js';
import { StateFile, expectArray, type StateDocument, type StateFileSpec } from '../../src/state/state-file.js';
import { tempDir } from '../helpers/tmp.js';

interface ListDocument extends StateDocument {
  items: number[];
}

const spec: StateFileSpec<ListDocument> = {
  kind: 'e2e-lanes/test-list',
  version: 1,
  empty: () => ({ kind: 'e2e-lanes/test-list', version: 1, updatedAt: new Date().toISOString(), items: [] }),
  parse: (raw) => ({ kind: 'e2e-lanes/test-list', version: 1, updatedAt: String(raw.updatedAt), items: expectArray(raw.items, 'items').map(Number) }),
};

const STATE_FILE_MODULE = fileURLToPath(new URL('../../src/state/state-file.ts', import.meta.url));

/** Counts how many mutations run at once, and the most seen. */
function overlapMeter(): { enter(): void; leave(): void; readonly most: number } {
  let now = 0;
  let most = 0;
  return {
    enter: () => {
      now++;
      most = Math.max(most, now);
    },
    leave: () => void now--,
    get most() {
      return most;
    },
  };
}

describe('StateFile', () => {
  it('runs the updates of one file in one process one at a time, in call order', async (t) => {
    const file = new StateFile(join(await tempDir(t), 'list.json'), spec);
    const meter = overlapMeter();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        file.update(async (doc) => {
          meter.enter();
          await sleep(Math.random() * 3);
          doc.items.push(i);
          meter.leave();
          return i * 10;
        }),
      ),
    );
    assert.equal(meter.most, 1);
    assert.deepEqual(results, Array.from({ length: 20 }, (_, i) => i * 10));
    assert.deepEqual((await file.read()).items, Array.from({ length: 20 }, (_, i) => i));
  });

  it('shares the line between two objects on the same file', async (t) => {
    const path = join(await tempDir(t), 'list.json');
    const files = [new StateFile(path, spec), new StateFile(path, spec)];
    const meter = overlapMeter();
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        files[i % 2]!.update(async (doc) => {
          meter.enter();
          await sleep(1);
          doc.items.push(i);
          meter.leave();
        }),
      ),
    );
    assert.equal(meter.most, 1);
    assert.deepEqual((await files[0]!.read()).items, Array.from({ length: 10 }, (_, i) => i));
  });

  it('keeps going after a mutation rejects or throws: its changes are not written, the next updates run', async (t) => {
    const file = new StateFile(join(await tempDir(t), 'list.json'), spec);
    const outcomes = await Promise.allSettled([
      file.update((doc) => void doc.items.push(1)),
      file.update(async (doc) => {
        doc.items.push(666);
        await sleep(2);
        throw new Error('async failure');
      }),
      file.update((doc) => {
        doc.items.push(667);
        throw new Error('sync failure');
      }),
      file.update((doc) => void doc.items.push(2)),
    ]);
    assert.deepEqual(
      outcomes.map((outcome) => (outcome.status === 'fulfilled' ? 'ok' : (outcome.reason as Error).message)),
      ['ok', 'async failure', 'sync failure', 'ok'],
    );
    assert.deepEqual((await file.read()).items, [1, 2]);
    assert.equal(existsSync(`${file.path}.lock`), false, 'the cross-process lock was released');
    // The line is empty again: an update now starts at once.
    await file.update((doc) => void doc.items.push(3));
    assert.deepEqual((await file.read()).items, [1, 2, 3]);
  });

  it('counts the wait for earlier updates towards the lock timeout, and the line survives a timeout', async (t) => {
    const file = new StateFile(join(await tempDir(t), 'list.json'), spec, { lockTimeoutMs: 300 });
    let finish!: () => void;
    const slow = file.update(async (doc) => {
      doc.items.push(1);
      await new Promise<void>((resolve) => (finish = resolve));
    });
    const started = Date.now();
    await assert.rejects(
      file.update((doc) => void doc.items.push(666)),
      (error) => isLanesError(error, 'STATE_LOCK_TIMEOUT'),
    );
    assert.ok(Date.now() - started < 5_000);
    const after = file.update((doc) => void doc.items.push(2)); // queued behind the slow one
    finish();
    await slow;
    await after;
    assert.deepEqual((await file.read()).items, [1, 2]);
  });

  it('writes without fsync (temp file and rename)', async (t) => {
    const file = new StateFile(join(await tempDir(t), 'list.json'), spec);
    const fsyncs = t.mock.method(fs, 'fsync');
    await file.update((doc) => void doc.items.push(1));
    assert.equal(fsyncs.mock.callCount(), 0);
    assert.deepEqual(JSON.parse(await readFile(file.path, 'utf8')).items, [1]);
  });

  it('loses no update of two other processes updating the same file at the same time', async (t) => {
    const dir = await tempDir(t);
    const path = join(dir, 'list.json');
    const script = join(dir, 'updater.mts');
    await writeFile(
      script,
      `import { StateFile, expectArray } from ${JSON.stringify(STATE_FILE_MODULE)};
const spec = {
  kind: 'e2e-lanes/test-list',
  version: 1,
  empty: () => ({ kind: 'e2e-lanes/test-list', version: 1, updatedAt: '', items: [] }),
  parse: (raw: Record<string, unknown>) => ({ kind: 'e2e-lanes/test-list', version: 1, updatedAt: String(raw.updatedAt), items: expectArray(raw.items, 'items').map(Number) }),
};
const file = new StateFile(process.argv[2]!, spec);
const base = Number(process.argv[3]);
await Promise.all(Array.from({ length: 25 }, (_, i) => file.update((doc) => void doc.items.push(base + i))));
`,
    );
    const run = (base: number): Promise<void> =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', script, path, String(base)], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
        child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`updater exited with ${code}: ${err}`))));
      });
    await Promise.all([run(1000), run(2000)]);
    const items = (await new StateFile(path, spec).read()).items;
    assert.equal(items.length, 50);
    assert.deepEqual(
      [...items].sort((a, b) => a - b),
      [...Array.from({ length: 25 }, (_, i) => 1000 + i), ...Array.from({ length: 25 }, (_, i) => 2000 + i)],
    );
    // Each process's own updates kept their order.
    for (const base of [1000, 2000]) assert.deepEqual(items.filter((item) => item >= base && item < base + 1000), Array.from({ length: 25 }, (_, i) => base + i));
  });
});
