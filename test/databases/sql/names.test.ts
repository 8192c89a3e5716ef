import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLanesError } from '../../../src/errors.js';
import { laneDatabaseName, templateDatabaseName, validatePrefix } from '../../../src/databases/index.js';
import { hasPrefix, isLaneDatabaseOf, laneKey } from '../../../src/databases/sql/names.js';
import { validateProjectName } from '../../../src/state/index.js';

const HOSTILE = [
  'chromium',
  'Chromium',
  'chromium ',
  'auth',
  'auth "admin"',
  "Robert'); DROP TABLE students;--",
  '"; DROP DATABASE postgres; --',
  'a'.repeat(300),
  'a'.repeat(299) + 'b',
  '日本語',
  '中文',
  '🎭🎭',
  'Ärger über Öl',
  'arger uber ol',
  '../../etc/passwd',
  'x'.repeat(63),
];

describe('database names', () => {
  it('gives hostile project names distinct valid names of at most 63 bytes', () => {
    const names = new Set<string>();
    for (const project of HOSTILE) {
      for (const worker of [undefined, 0, 7, 123456]) {
        const key = worker === undefined ? { runId: 'r20261121t2330-4f9a1c', project } : { runId: 'r20261121t2330-4f9a1c', project, worker };
        const name = laneDatabaseName('e2eabcdefghijklm', key);
        assert.match(name, /^[a-z][a-z0-9_]*$/, name);
        assert.ok(Buffer.byteLength(name) <= 63, `${name} is ${Buffer.byteLength(name)} bytes`);
        assert.ok(name.startsWith('e2eabcdefghijklm_'));
        names.add(name);
      }
    }
    assert.equal(names.size, HOSTILE.length * 4);
  });

  it('keeps the readable parts: prefix, short run id, project slug, and the worker', () => {
    assert.match(laneDatabaseName('e2e', { runId: 'r20261121t2330-4f9a1c', project: 'Mobile Safari' }), /^e2e_304f9a1c_mobile_safari_[0-9a-f]{8}$/);
    assert.match(laneDatabaseName('e2e', { runId: 'r1', project: 'chromium', worker: 3 }), /^e2e_r1_chromium_[0-9a-f]{8}_w3$/);
    assert.match(laneDatabaseName('e2e', { runId: 'r1', project: '日本語' }), /^e2e_r1_p_[0-9a-f]{8}$/);
  });

  it('differs per run and per worker for the same project', () => {
    const a = laneDatabaseName('e2e', { runId: 'run-a', project: 'chromium' });
    assert.notEqual(a, laneDatabaseName('e2e', { runId: 'run-b', project: 'chromium' }));
    assert.notEqual(a, laneDatabaseName('e2e', { runId: 'run-a', project: 'chromium', worker: 0 }));
    assert.equal(a, laneDatabaseName('e2e', { runId: 'run-a', project: 'chromium' }));
  });

  it('names templates after the hash', () => {
    assert.equal(templateDatabaseName('e2e', '0123456789abcdef'), 'e2e_tpl_0123456789ab');
  });

  it('rejects prefixes that are not a lowercase letter and up to 15 lowercase letters or digits', () => {
    for (const bad of ['', 'E2E', '2e2', 'e2e_', 'e-2', 'a'.repeat(17), 'é2e']) {
      assert.throws(() => validatePrefix(bad), (error) => isLanesError(error, 'INVALID_OPTION'), bad);
    }
    assert.equal(validatePrefix('a'.repeat(16)), 'a'.repeat(16));
  });
});

describe('project names', () => {
  /** `ü日🚀` repeated to `count` code points: 1, 1 and 2 UTF-16 units, 2, 3 and 4 UTF-8 bytes. */
  const mixed = (count: number) => Array.from({ length: count }, (_, i) => ['ü', '日', '🚀'][i % 3]).join('');

  it('counts a name in code points: 500 of `ü日🚀` are accepted, and name a valid database', () => {
    const name = mixed(500);
    assert.equal(name.length, 666, 'the same name in UTF-16 units, which the limit must not count');
    assert.equal(validateProjectName(name), name);
    const database = laneDatabaseName('e2e', { runId: 'r1', project: name });
    assert.ok(Buffer.byteLength(database) <= 63, database);
    assert.match(database, /^[a-z0-9_]+$/);
  });

  it('rejects 513 code points, saying what it counted', () => {
    assert.doesNotThrow(() => validateProjectName(mixed(512)));
    assert.throws(
      () => validateProjectName(mixed(513)),
      (error) => isLanesError(error, 'INVALID_PROJECT_NAME') && /of 513 characters \(Unicode code points\) is too long \(at most 512\)/.test(error.message),
    );
  });
});

describe('lane keys and the names an allocator owns', () => {
  it('checks the project and the worker of a lane key', () => {
    assert.deepEqual(laneKey('r1', 'chromium', undefined), { runId: 'r1', project: 'chromium' });
    assert.deepEqual(laneKey('r1', 'chromium', 0), { runId: 'r1', project: 'chromium', worker: 0 });
    for (const worker of [-1, 1.5, Number.NaN, 2 ** 60]) {
      assert.throws(() => laneKey('r1', 'chromium', worker), (error) => isLanesError(error, 'INVALID_OPTION') && /worker index/.test(error.message), String(worker));
    }
    assert.throws(() => laneKey('r1', '', undefined), (error) => isLanesError(error, 'INVALID_PROJECT_NAME'));
  });

  it('owns exactly the name it derives for a lane, under its own prefix', () => {
    const lane = { runId: 'r1', project: 'chromium', worker: 2 };
    const databaseName = laneDatabaseName('e2e', lane);
    assert.equal(isLaneDatabaseOf('e2e', { ...lane, databaseName }), true);
    assert.equal(isLaneDatabaseOf('e2e', { runId: 'r1', project: 'chromium', databaseName }), false, 'another worker of the lane');
    assert.equal(isLaneDatabaseOf('other', { ...lane, databaseName }), false, 'another prefix');
    assert.equal(isLaneDatabaseOf('e2e', { ...lane, databaseName: 'e2e_postgres' }), false);
    assert.equal(hasPrefix('e2e', databaseName), true);
    assert.equal(hasPrefix('e2e', 'e2ex_db'), false);
  });
});
