import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex, slugify } from '../databases/names.js';
import type { LaneKey } from '../state/index.js';

/**
 * Folder of a lane's server logs: `<stateDir>/lanes/<run id>/<project slug>[-w<worker>]`. The slug is
 * file-name safe for any project name (a short hash keeps hostile or long names distinct).
 */
export function laneLogDir(stateDir: string, key: LaneKey): string {
  const slug = `${slugify(key.project, 40) || 'project'}-${sha256Hex(key.project).slice(0, 6)}`;
  return join(stateDir, 'lanes', key.runId, key.worker === undefined ? slug : `${slug}-w${key.worker}`);
}

/**
 * Deletes the log folders (`<stateDir>/lanes/<run id>`) of all but the newest `keep` runs, by
 * modification time. Folders of `protectedRuns` (live and kept runs, this run) are never deleted
 * and do not count against `keep`. Best effort: a folder that cannot be read or removed stays.
 *
 * @returns the run ids whose folders were deleted.
 */
export async function pruneLogDirs(stateDir: string, keep: number, protectedRuns: ReadonlySet<string>): Promise<string[]> {
  const root = join(stateDir, 'lanes');
  let names: string[];
  try {
    names = (await readdir(root, { withFileTypes: true })).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  } catch {
    return [];
  }
  const runs: Array<{ name: string; mtimeMs: number }> = [];
  for (const name of names) {
    if (protectedRuns.has(name)) continue;
    const info = await stat(join(root, name)).catch(() => undefined);
    if (info) runs.push({ name, mtimeMs: info.mtimeMs });
  }
  runs.sort((a, b) => b.mtimeMs - a.mtimeMs || b.name.localeCompare(a.name));
  const removed: string[] = [];
  for (const { name } of runs.slice(keep)) {
    try {
      await rm(join(root, name), { recursive: true, force: true, maxRetries: 2 });
      removed.push(name);
    } catch {
      // still in use or not ours to delete: the next run tries again
    }
  }
  return removed;
}
