import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

const root = new URL('../', import.meta.url).pathname;

/** Every name an entry module exports, values and types, read with the TypeScript compiler. */
async function exportedNames(file: string): Promise<string[]> {
  const source = ts.createSourceFile(file, await readFile(join(root, file), 'utf8'), ts.ScriptTarget.Latest, true);
  const names: string[] = [];
  for (const statement of source.statements) {
    if (ts.isExportDeclaration(statement) && statement.exportClause && ts.isNamedExports(statement.exportClause)) {
      for (const element of statement.exportClause.elements) names.push(element.name.text);
    }
  }
  return names.sort();
}

/** The names of one section's table in docs/api.md. */
async function documentedNames(section: string): Promise<string[]> {
  const doc = await readFile(join(root, 'docs/api.md'), 'utf8');
  const start = doc.indexOf(`## \`${section}\``);
  assert.ok(start >= 0, `docs/api.md has a section ${section}`);
  const end = doc.indexOf('\n## ', start + 1);
  const text = doc.slice(start, end < 0 ? undefined : end);
  return [...text.matchAll(/^\| `([A-Za-z]+)` \|/gm)].map((match) => match[1]!).sort();
}

test("e2e-lanes exports exactly the names docs/api.md documents", async () => {
  assert.deepEqual(await exportedNames('src/index.ts'), await documentedNames('e2e-lanes'));
});

test("e2e-lanes/playwright exports exactly the names docs/api.md documents", async () => {
  assert.deepEqual(await exportedNames('src/playwright/index.ts'), await documentedNames('e2e-lanes/playwright'));
});

test('the package runs what it exports: every documented value of e2e-lanes is there at run time', async () => {
  const module = (await import('../src/index.ts')) as Record<string, unknown>;
  const values = ['LanesError', 'isLanesError', 'redactUrl', 'redactText', 'PortAllocator', 'DatabaseAllocator', 'ensurePostgres', 'startServer', 'startServers', 'LaneManager'];
  assert.deepEqual(Object.keys(module).sort(), values.sort());
});
