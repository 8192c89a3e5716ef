import { lstat, readdir, readlink, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex, slugify } from '../../databases/sql/names.js';
import { LanesError } from '../../errors.js';
import { isFsError, STATE_DIR_SETTING, unwritable } from '../../state/fs-errors.js';
import type { LaneKey } from '../../state/index.js';

/**
 * Folder of a lane's server logs: `<stateDir>/lanes/<run id>/<project slug>[-w<worker>]`. The slug is
 * file-name safe for any project name (a short hash keeps hostile or long names distinct).
 */
export function laneLogDir(stateDir: string, key: LaneKey): string {
  const slug = `${slugify(key.project, 40) || 'project'}-${sha256Hex(key.project).slice(0, 6)}`;
  return join(stateDir, 'lanes', key.runId, key.worker === undefined ? slug : `${slug}-w${key.worker}`);
}

/**
 * `<stateDir>/lanes`, the folder of every run's logs, once it is known to be a folder of the state
 * folder itself (or missing). A link there is refused, as state files refuse links: logs written
 * through it would land elsewhere, and pruning through it would delete what is there (another
 * state folder's logs, a live run's among them).
 * @throws {LanesError} `STATE_NOT_A_FOLDER` naming the link and its target, or what is there instead;
 *   `STATE_UNWRITABLE` when it cannot be inspected.
 */
export async function logRoot(stateDir: string): Promise<string> {
  const root = join(stateDir, 'lanes');
  let stats;
  try {
    stats = await lstat(root);
  } catch (error) {
    if (isFsError(error, 'ENOENT')) return root;
    if (isFsError(error)) throw unwritable(error, 'inspect log folder', root);
    throw error;
  }
  if (stats.isDirectory()) return root;
  if (stats.isSymbolicLink()) {
    const target = await readlink(root).catch(() => '(unreadable)');
    throw new LanesError('STATE_NOT_A_FOLDER', `Log folder ${root} is a symbolic link to ${target}; e2e-lanes does not write or prune logs through links, so nothing there was touched.`, {
      hint: `Remove the link (\`rm ${root}\`) so e2e-lanes creates its own folder there, or move the whole state folder (${STATE_DIR_SETTING}) where the logs should go.`,
      details: { path: root, target },
    });
  }
  throw new LanesError('STATE_NOT_A_FOLDER', `Log folder ${root} is not a folder.`, {
    hint: `Remove or rename what is at ${root} so e2e-lanes can create its folder there, or choose another state folder (${STATE_DIR_SETTING}).`,
    details: { path: root },
  });
}

/**
 * Deletes the log folders (`<stateDir>/lanes/<run id>`) of all but the newest `keep` runs, by
 * modification time. Folders of `protectedRuns` (live and kept runs, this run) are never deleted
 * and do not count against `keep`. Best effort: a folder that cannot be read or removed stays.
 * Links are never followed: not `lanes` itself (see {@link logRoot}), nor a run's entry in it.
 *
 * @returns the run ids whose folders were deleted.
 * @throws {LanesError} `STATE_NOT_A_FOLDER` when `<stateDir>/lanes` is a link or not a folder.
 */
export async function pruneLogDirs(stateDir: string, keep: number, protectedRuns: ReadonlySet<string>): Promise<string[]> {
  const root = await logRoot(stateDir);
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
