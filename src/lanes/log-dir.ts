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
