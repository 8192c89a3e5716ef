import { LanesError } from '../errors.js';
import type { ServerDefinition } from './types.js';

/**
 * Checks the dependency graph of a lane's servers and returns each server's depth: 0 for a server
 * without dependencies, else one more than its deepest dependency. A dependent is always deeper than
 * what it depends on, so starting by increasing depth and stopping by decreasing depth is safe.
 *
 * Throws `INVALID_OPTION` for duplicate names, unknown `dependsOn` names and cycles.
 */
export function dependencyDepths(defs: readonly ServerDefinition[], project: string): Map<string, number> {
  const byName = new Map<string, ServerDefinition>();
  for (const def of defs) {
    if (byName.has(def.name)) {
      throw new LanesError('INVALID_OPTION', `Project "${project}" defines the server "${def.name}" twice.`, {
        hint: 'Give every server of a lane a unique `name`.',
      });
    }
    byName.set(def.name, def);
  }
  for (const def of defs) {
    for (const dep of def.dependsOn ?? []) {
      if (!byName.has(dep)) {
        throw new LanesError('INVALID_OPTION', `Server "${def.name}" of project "${project}" depends on "${dep}", which is not one of its servers (${[...byName.keys()].join(', ')}).`, {
          hint: `Fix \`dependsOn\` of "${def.name}".`,
        });
      }
    }
  }

  const depths = new Map<string, number>();
  const visiting: string[] = [];
  const depthOf = (name: string): number => {
    const known = depths.get(name);
    if (known !== undefined) return known;
    const at = visiting.indexOf(name);
    if (at !== -1) {
      const cycle = [...visiting.slice(at), name].join(' → ');
      throw new LanesError('INVALID_OPTION', `The servers of project "${project}" depend on each other in a cycle: ${cycle}.`, {
        hint: 'Remove one of these `dependsOn` entries; servers can only start after the ones they depend on are healthy.',
        details: { cycle: [...visiting.slice(at), name] },
      });
    }
    visiting.push(name);
    let depth = 0;
    for (const dep of byName.get(name)?.dependsOn ?? []) depth = Math.max(depth, depthOf(dep) + 1);
    visiting.pop();
    depths.set(name, depth);
    return depth;
  };
  for (const def of defs) depthOf(def.name);
  return depths;
}
