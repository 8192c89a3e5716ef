/**
 * A lane as tests see it (ports, URLs, database), the lane's key in a run's table, and the error
 * of a boot that failed. Every folder of `lanes/` may import it; it imports none of them.
 */
import { isLanesError, LanesError, messageOf } from '../errors.js';
import { describeLane, type LaneKey } from '../state/index.js';

/** One lane, as tests and fixtures see it. */
export interface Lane {
  runId: string;
  project: string;
  worker?: number;
  /** Named ports, e.g. `{ backend: 3100, frontend: 3101 }`. */
  ports: Record<string, number>;
  /** URLs of the servers by name, e.g. `{ backend: 'http://localhost:3100' }`. */
  urls: Record<string, string>;
  /** The URL of the base server (Playwright's `baseURL`), if any. */
  baseURL?: string;
  /** The lane's own database, when databases are enabled. */
  databaseName?: string;
  /** Connection URL of the lane's database (contains the password: do not log it). */
  databaseUrl?: string;
  /** Log file of every server, by name. */
  logFiles: Record<string, string>;
}

/**
 * The error of a later request for a lane whose boot failed: the first boot's error (same code and
 * hint), saying that it is that boot's, remembered, and that the lane is not booted again.
 */
export function rememberedFailure(key: LaneKey, error: unknown, at: Date): Error {
  const when = at.toISOString().slice(11, 19);
  const intro = `The lane of ${describeLane(key)} failed to boot at ${when} UTC and is not booted again in this run; this is the remembered error of that first boot:`;
  if (!isLanesError(error)) return new Error(`${intro}\n${messageOf(error)}`, { cause: error });
  const message = error.shortMessage;
  return new LanesError(error.code, `${intro}\n${message}`, {
    ...(error.hint !== undefined ? { hint: error.hint } : {}),
    cause: error,
    details: { ...error.details, remembered: true, failedAt: at.toISOString() },
  });
}

/** The key of a lane in a run's table: its project and worker. */
export function laneId(key: LaneKey): string {
  return JSON.stringify([key.project, key.worker ?? null]);
}

/** The key of a {@link laneId}. */
export function keyOfId(runId: string, id: string): LaneKey {
  const [project, worker] = JSON.parse(id) as [string, number | null];
  return worker === null ? { runId, project } : { runId, project, worker };
}

/** `backend 3100, frontend 3101`. */
export function formatPorts(ports: Record<string, number>): string {
  return Object.entries(ports)
    .map(([name, port]) => `${name} ${port}`)
    .join(', ');
}

/**
 * Which lane of a project: `{ worker }` for a per-worker lane, as `DatabaseAllocator` and
 * `PortAllocator` take it. A worker index (or undefined) given alone is the deprecated form.
 */
export type LaneSelector = { worker?: number | undefined } | number | undefined;

/** The worker of a {@link LaneSelector}. */
export function workerOf(lane: LaneSelector): number | undefined {
  return typeof lane === 'object' ? lane.worker : lane;
}
