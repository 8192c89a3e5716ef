import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import * as envVars from '../../src/env-vars.js';
import { ENV_PREFIX, ENV_VARS } from '../../src/env-vars.js';

const root = new URL('../../', import.meta.url).pathname;
const NAME = /E2E_LANES_[A-Z_]*[A-Z]/g;

/** The variables named in the first column of the table under `## Environment variables` of docs/configuration.md. */
async function documentedVariables(): Promise<string[]> {
  const doc = await readFile(join(root, 'docs/configuration.md'), 'utf8');
  const start = doc.indexOf('\n## Environment variables\n');
  assert.ok(start >= 0, 'docs/configuration.md has a section "Environment variables"');
  const end = doc.indexOf('\n## ', start + 1);
  const section = doc.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((match) => match[1]!).filter((name) => name.startsWith(ENV_PREFIX));
}

async function filesUnder(dir: string, ext: string): Promise<string[]> {
  const entries = await readdir(join(root, dir), { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile() && entry.name.endsWith(ext)).map((entry) => join(entry.parentPath, entry.name));
}

test('the table of environment variables has each variable once, with its prefix, a meaning and who reads it', () => {
  const names = ENV_VARS.map((variable) => variable.name);
  assert.deepEqual(names.filter((name, index) => names.indexOf(name) !== index), []);
  for (const variable of ENV_VARS) {
    assert.ok(variable.name.startsWith(ENV_PREFIX), variable.name);
    assert.ok(variable.meaning.length > 10 && variable.readBy.length > 5, variable.name);
  }
  const constants = (Object.values(envVars) as unknown[]).filter((value): value is string => typeof value === 'string' && value !== ENV_PREFIX);
  assert.deepEqual(constants.filter((name) => !names.includes(name)), [], 'every constant has a row in ENV_VARS');
});

test('docs/configuration.md documents every variable users set or read, and no other', async () => {
  const documented = await documentedVariables();
  const known = new Map(ENV_VARS.map((variable) => [variable.name, variable]));
  const userFacing = ENV_VARS.filter((variable) => variable.setBy !== 'internal').map((variable) => variable.name);
  assert.deepEqual(userFacing.filter((name) => !documented.includes(name)), [], 'documented');
  assert.deepEqual(documented.filter((name) => !known.has(name)), [], 'documented but not a variable of e2e-lanes');
  assert.deepEqual(documented.filter((name) => known.get(name)?.setBy === 'internal'), [], 'documented but internal');
  assert.deepEqual(documented.filter((name, index) => documented.indexOf(name) !== index), [], 'documented twice');
});

test('every E2E_LANES_ name in the docs and the sources is a variable of the table', async () => {
  const known = new Set(ENV_VARS.map((variable) => variable.name));
  const files = [join(root, 'README.md'), ...(await filesUnder('docs', '.md')), ...(await filesUnder('src', '.ts'))];
  const unknown: string[] = [];
  for (const file of files) {
    for (const [name] of (await readFile(file, 'utf8')).matchAll(NAME)) if (!known.has(name)) unknown.push(`${file.slice(root.length)}: ${name}`);
  }
  assert.deepEqual(unknown, []);
});

test('the sources name variables only through the constants of src/env-vars.ts, and use every one', async () => {
  const sources = (await filesUnder('src', '.ts')).filter((file) => !file.endsWith('/src/env-vars.ts'));
  const constants = Object.entries(envVars).filter(([, value]) => typeof value === 'string').map(([constant]) => constant);
  const unused = new Set(constants);
  const literals: string[] = [];
  for (const file of sources) {
    const text = await readFile(file, 'utf8');
    for (const constant of unused) if (new RegExp(`\\b${constant}\\b`).test(text)) unused.delete(constant);
    // Outside comments, a name appears only in the table.
    const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
    for (const [name] of code.matchAll(NAME)) literals.push(`${file.slice(root.length)}: ${name}`);
  }
  assert.deepEqual(literals, []);
  assert.deepEqual([...unused], []);
});
