import { LanesError } from '../../errors.js';

/** A project as the isolation rule sees it: its name and the lane options of its `use`. */
export interface IsolationInput {
  project: string;
  /** `laneIsolation` of the project's `use` (with the config's `use`), else the `isolation` option. */
  isolation: 'project' | 'worker' | undefined;
  /** `laneReset` of the project's `use` (with the config's `use`). */
  laneReset: unknown;
  /** How many workers the run has. */
  workers: number;
  /** Where `isolation` was set, for the message. @default 'laneIsolation' */
  isolationSource?: 'laneIsolation' | 'isolation';
}

/**
 * The lanes of a project: one per project or one per worker. A lane whose tests reset its data
 * (`laneReset: 'test'`) is never shared by tests running at once, so such a project on more than
 * one worker gets a lane per worker unless its isolation was set (`notice` says so), and one set
 * to `'project'` is refused.
 * @throws {LanesError} `INVALID_OPTION` for `laneReset: 'test'` with `laneIsolation: 'project'` on more than one worker.
 */
export function resolveLaneIsolation(input: IsolationInput): { isolation: 'project' | 'worker'; notice?: string } {
  const resets = input.laneReset === 'test' && input.workers > 1;
  if (!resets) return { isolation: input.isolation ?? 'project' };
  if (input.isolation === 'project') {
    throw new LanesError(
      'INVALID_OPTION',
      `Project ${JSON.stringify(input.project)} has laneReset: 'test' and ${input.isolationSource === 'isolation' ? "the isolation option 'project'" : "laneIsolation: 'project'"} on ${input.workers} workers: its tests would reset one lane's data under each other.`,
      {
        hint:
          input.isolationSource === 'isolation'
            ? `Set use: { laneIsolation: 'worker' } in project ${JSON.stringify(input.project)} (or remove isolation: 'project' from withLanes): each worker then gets a lane of its own; or give the project workers: 1.`
            : `Remove laneIsolation from project ${JSON.stringify(input.project)} (or set it to 'worker'): each worker then gets a lane of its own; or give the project workers: 1.`,
      },
    );
  }
  if (input.isolation === 'worker') return { isolation: 'worker' };
  return { isolation: 'worker', notice: `project ${JSON.stringify(input.project)}: laneReset 'test' on ${input.workers} workers, so one lane per worker (a lane that is reset is never shared; set laneIsolation: 'worker' to say so)` };
}
