import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { execa } from 'execa';
import ts from 'typescript';

const root = new URL('../../', import.meta.url).pathname;
const GUIDE = 'docs/migrating.md';

interface Snippet {
  /** Where the guide says it lives, e.g. `after/playwright.config.ts`. */
  path: string;
  code: string;
}

/** The ```ts blocks of the guide, each with the path of its `<!-- check: … -->` line. */
async function guideSnippets(): Promise<Snippet[]> {
  const guide = await readFile(join(root, GUIDE), 'utf8');
  const blocks = [...guide.matchAll(/(?:<!-- check: (\S+) -->\n)?```ts\n([\s\S]*?)```/g)];
  const unmarked = blocks.filter((block) => block[1] === undefined).map((block) => block[2]!.split('\n')[0]);
  assert.deepEqual(unmarked, [], `every ts snippet of ${GUIDE} is checked: put <!-- check: before|after/<file> --> on the line above it`);
  return blocks.map((block) => ({ path: block[1]!, code: block[2]! }));
}

/** The app's Prisma client the guide's specs import (`lib/prisma.ts` of the app), with the one model they use. */
const PRISMA_STUB = `export const prisma = {
  post: { create: async (args: { data: { title: string; published?: boolean } }) => ({ id: 1, ...args.data }) },
};
`;

/**
 * The snippets written out as the two apps they describe, before and after, each with the stub of
 * the app's own module. The folder is inside the package, so that `e2e-lanes/playwright` resolves as
 * an app's does (its types from dist/, as a user gets them); removed after the test.
 */
async function writeApps(t: TestContext): Promise<{ dir: string; files: string[] }> {
  await mkdir(join(root, 'test-results'), { recursive: true });
  const dir = await mkdtemp(join(root, 'test-results', 'migrating-snippets-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const files: string[] = [];
  for (const snippet of await guideSnippets()) {
    assert.match(snippet.path, /^(before|after)\/[\w./-]+\.ts$/, `check path ${snippet.path}`);
    assert.equal(snippet.code.split('\n')[0], `// ${snippet.path.replace(/^(before|after)\//, '')}`, `the first line of ${snippet.path} names its file`);
    files.push(join(dir, snippet.path));
    await mkdir(dirname(join(dir, snippet.path)), { recursive: true });
    await writeFile(join(dir, snippet.path), snippet.code);
  }
  for (const app of ['before', 'after']) {
    await mkdir(join(dir, app, 'lib'), { recursive: true });
    await writeFile(join(dir, app, 'lib', 'prisma.ts'), PRISMA_STUB);
  }
  return { dir, files };
}

test('every snippet of docs/migrating.md type-checks as a Next.js app compiles it (strict, bundler resolution)', async (t) => {
  assert.ok(existsSync(join(root, 'dist/playwright/index.d.ts')), 'run `npm run build` first: the snippets import e2e-lanes/playwright from dist/');
  const { files } = await writeApps(t);
  assert.deepEqual(files.map((file) => file.replace(/^.*migrating-snippets-[^/]+\//, '')).sort(), [
    'after/e2e/posts.spec.ts',
    'after/playwright.config.ts',
    'before/e2e/helpers.ts',
    'before/e2e/posts.spec.ts',
    'before/playwright.config.ts',
  ]);
  const program = ts.createProgram(files, {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
    types: ['node'],
    skipLibCheck: true,
    esModuleInterop: true,
  });
  const diagnostics = ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const where = diagnostic.file ? `${diagnostic.file.fileName.replace(/^.*migrating-snippets-[^/]+\//, '')}:${diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0).line + 1}: ` : '';
    return where + ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
  });
  assert.deepEqual(diagnostics, []);
});

test('the before and after configs of docs/migrating.md load in Playwright and list their test', { timeout: 120_000 }, async (t) => {
  const { dir } = await writeApps(t);
  for (const app of ['before', 'after']) {
    const run = await execa(process.execPath, [join(root, 'node_modules/@playwright/test/cli.js'), 'test', '--list', '-c', join(dir, app, 'playwright.config.ts')], {
      cwd: join(dir, app),
      env: { E2E_LANES_STATE_DIR: join(dir, app, 'state') },
      all: true,
      reject: false,
      timeout: 100_000,
    });
    assert.equal(run.exitCode, 0, `${app}: ${run.all}`);
    assert.match(run.stdout, /\[chromium\] › posts\.spec\.ts:\d+:\d+ › a published post is listed/, app);
    assert.match(run.stdout, /Total: 1 test in 1 file/, app);
  }
});
