import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { LANES_ERROR_CODES } from '../../src/errors.js';

const root = new URL('../../', import.meta.url).pathname;

/** The property names of an exported interface, read with the TypeScript compiler. */
async function interfaceProperties(file: string, name: string): Promise<string[]> {
  const source = ts.createSourceFile(file, await readFile(join(root, file), 'utf8'), ts.ScriptTarget.Latest, true);
  const found = source.statements.find((node): node is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(node) && node.name.text === name);
  assert.ok(found, `interface ${name} not found in ${file}`);
  return found.members.flatMap((member) => (member.name && ts.isIdentifier(member.name) ? [member.name.text] : []));
}

const documented = (doc: string, name: string) => doc.includes(`| \`${name}\` |`);

test('every option of every public options type has a row in docs/configuration.md', async () => {
  const doc = await readFile(join(root, 'docs/configuration.md'), 'utf8');
  const types: Array<[string, string]> = [
    ['src/lanes/options/lane-options.ts', 'LanesOptions'],
    ['src/servers/types.ts', 'ServerDefinition'],
    ['src/databases/options.ts', 'DatabaseAllocatorOptions'],
    ['src/postgres/options.ts', 'EmbeddedPostgresOptions'],
    ['src/ports/options.ts', 'PortAllocatorOptions'],
    ['src/state/paths.ts', 'RunScopeOptions'],
  ];
  const missing: string[] = [];
  for (const [file, name] of types) {
    for (const option of await interfaceProperties(file, name)) if (!documented(doc, option)) missing.push(`${name}.${option}`);
  }
  assert.deepEqual(missing, []);
});

test('every error code has a row in docs/troubleshooting.md', async () => {
  const doc = await readFile(join(root, 'docs/troubleshooting.md'), 'utf8');
  const codes = [...LANES_ERROR_CODES];
  assert.ok(codes.length > 10);
  assert.deepEqual(codes.filter((code) => !documented(doc, code)), []);
});
