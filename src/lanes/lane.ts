/**
 * A lane as a run holds it: what tests see (ports, URLs, database), and what the lane manager keeps
 * of one that is up. Also the lane's key in a run's map, and the error of a boot that failed.
 */
import type { TemplateInfo } from '../databases/index.js';
import { isLanesError, LanesError, messageOf } from '../errors.js';
import type { ServerExit, StartedServers } from '../servers/index.js';
import type { LaneRestarts } from './restart.js';
import { describeLane, type LaneKey } from '../state/index.js';
import type { ReapReport } from './reaper.js';

/** One lane, as tests and fixtures see it. */
export interface Lane {
  runId: string;
  project: string;
  worker?: number;
  /** Named ports, e.g. `{ backend: 3100, frontend: 3101 }`. */
  ports: Record<string, number>;
  /** URLs of the servers by name, e.g. `{ backend: 'http://127.0.0.1:3100' }`. */
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

/** What `prepare()` did. */
export interface PrepareReport {
  template?: TemplateInfo;
  /** Which PostgreSQL server the lanes' databases live on (no password); absent without databases. */
  postgres?: string;
  reaped: ReapReport;
}

/** A lane that is up in this run, with its servers. */
export interface RunningLane {
  lane: Lane;
  servers: StartedServers;
  /** Servers that died on their own while the lane was up and are not up again, by name. */
  deaths: Map<string, ServerExit>;
  /** Restarts of its servers that died (see restart.ts). */
  restarts?: LaneRestarts;
  /** True once the lane's database was swapped (its servers' sessions ended). */
  swapped?: boolean;
}

/** What `adoptWarmLanes()` did with the lanes of the warm run this manager took over. */
export interface AdoptionReport {
  /** The warm run taken over (this manager's run id), if any. */
  runId?: string;
  /** Lanes taken over, their data put back to the template. */
  adopted: Lane[];
  /** Lanes torn down instead, and why (`the backend's command changed`). */
  replaced: Array<{ project: string; worker?: number; reason: string }>;
  /** How long the lanes had waited warm, in ms. */
  idleMs?: number;
}

/** Where a run's lanes went at teardown when they stay warm: until when, and which lanes. */
export interface WarmReport {
  lanes: Lane[];
  until: string;
  watchdogPid: number;
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

export function laneId(key: LaneKey): string {
  return JSON.stringify([key.project, key.worker ?? null]);
}

/** The key of a {@link laneId}. */
export function keyOfId(runId: string, id: string): LaneKey {
  const [project, worker] = JSON.parse(id) as [string, number | null];
  return worker === null ? { runId, project } : { runId, project, worker };
}

export function formatPorts(ports: Record<string, number>): string {
  return Object.entries(ports)
    .map(([name, port]) => `${name} ${port}`)
    .join(', ');
}
