import { existsSync, readFileSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * The default export of a module of the user's project (a seed, a Playwright config), loaded the
 * way Playwright loads its config: `.ts`, `.mts`, `.cts`, `.js`, `.mjs` and `.cjs`, in a package
 * with or without `"type": "module"`, with `export default x` or `module.exports = x`.
 *
 * tsx's scoped loaders compile TypeScript (and `import`/`export` syntax in a CommonJS package)
 * for this file and its imports only, so the loaders of the host process (Playwright's, or none)
 * are left as they are. A CommonJS file is required, an ES module imported: the same split Node
 * makes from the extension and the nearest package.json.
 *
 * Loading a module runs its code in the calling process: seeds are loaded here only inside their own
 * process (databases/template/seed-child.ts); the CLI loads the Playwright config in its own, as Playwright does.
 * @param path Absolute, or relative to the current folder.
 */
export async function importDefault(path: string): Promise<unknown> {
  const file = resolve(path);
  // tsx is loaded on first use: most runs load no module of the user's this way.
  if (isCommonJs(file)) return unwrapDefault((await import('tsx/cjs/api')).require(file, import.meta.url));
  const { tsImport } = await import('tsx/esm/api');
  const namespace = (await tsImport(pathToFileURL(file).href, import.meta.url)) as { default?: unknown };
  return unwrapDefault(namespace.default);
}

/**
 * `export default x` compiled to CommonJS leaves `{ default: x }` as `module.exports`; Playwright
 * unwraps it the same way.
 */
function unwrapDefault(value: unknown): unknown {
  if (typeof value === 'object' && value !== null && 'default' in value) return (value as { default: unknown }).default;
  return value;
}

/** Whether Node treats `path` as CommonJS: by its extension, else by the nearest package.json's `type`. */
function isCommonJs(path: string): boolean {
  const extension = extname(path);
  if (extension === '.cts' || extension === '.cjs') return true;
  if (extension === '.mts' || extension === '.mjs') return false;
  return packageTypeOf(dirname(path)) !== 'module';
}

/** The `type` field of the package.json nearest to `dir` (Node's rule: the first one found going up). */
function packageTypeOf(dir: string): unknown {
  for (let current = dir; ; current = dirname(current)) {
    const file = join(current, 'package.json');
    if (existsSync(file)) {
      try {
        return (JSON.parse(readFileSync(file, 'utf8')) as { type?: unknown }).type;
      } catch {
        return undefined;
      }
    }
    if (dirname(current) === current) return undefined;
  }
}
