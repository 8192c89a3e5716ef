import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * The layers of a folder of src/, top first: each layer is a space-separated list of the folder's
 * entries (subfolders or files) in it. A module imports only from its own folder and the layers
 * below it, and from no folder of src/ that `forbidden` matches.
 */
export function layerChecker(root: string, layers: readonly string[], forbidden: RegExp) {
  const layerOf = (path: string): number => {
    const first = relative(root, path).split('/')[0]!;
    const index = layers.findIndex((layer) => layer.split(' ').includes(first));
    assert.ok(index >= 0, `${relative(root, path)} belongs to a layer`);
    return index;
  };
  /** `from → to` for every import running up, sideways into another folder, or into a forbidden folder. */
  const wrongImports = (): string[] => {
    const wrong: string[] = [];
    for (const file of modules(root)) {
      for (const target of importsOf(file)) {
        const name = `${relative(root, file)} → ${relative(root, target)}`;
        if (!target.startsWith(root)) {
          if (forbidden.test(target)) wrong.push(name);
          continue;
        }
        const from = layerOf(file);
        const to = layerOf(target);
        // Above it, or beside it in another folder of the same layer.
        if (to < from || (to === from && dirname(file) !== dirname(target))) wrong.push(name);
      }
    }
    return wrong;
  };
  return { layerOf, wrongImports };
}

function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? modules(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : []));
}

/** The modules `file` imports by a relative path, as absolute `.ts` paths. */
export function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'(\.[^']+)'/g), ...text.matchAll(/import\('(\.[^']+)'\)/g), ...text.matchAll(/(?:^|\n)import\s+'(\.[^']+)'/g)].map((match) => resolve(dirname(file), match[1]!.replace(/\.js$/, '.ts')));
}
