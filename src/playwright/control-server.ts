import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isLanesError, LanesError, messageOf, type LanesErrorCode } from '../errors.js';
import type { LaneManager } from '../lanes/lane-manager.js';
import type { LaneUser } from '../lanes/use/lane-users.js';
import type { DatabaseReset } from '../databases/index.js';
import { RESET_STRATEGIES, type ResetStrategy } from '../databases/types.js';
import { debugLogger } from '../log.js';
import type { LanePrefetcher } from './prefetch.js';
import { projectNamesById, scopeOfWorkerToken } from './worker-tokens.js';

const debug = debugLogger('control');

/** The runner's lane service for its workers. */
export interface ControlServer {
  url: string;
  token: string;
  close(): Promise<void>;
}

/** What a worker asks for. */
export interface LaneRequest {
  project: string;
  worker?: number;
  /** `/lanes/reset` and `/lanes/test`: the reset strategy, when not the config's. */
  strategy?: ResetStrategy;
  /** `/lanes/reset` and `/lanes/test`: the test asking. */
  user?: LaneUser;
  /** `/lanes/test`: a test starts (after a reset, with `reset`) or ends. */
  phase?: 'begin' | 'end';
  /** `/lanes/test` with phase `begin`: reset the lane's data first. */
  reset?: boolean;
  /** `/lanes/test` with phase `end`: the test failed (for `keep: 'on-failure'`). */
  failed?: boolean;
}

/** What the lane service serves: the lanes the run's config can ask for, and nothing else. */
export interface ControlServerOptions {
  /** Names of the projects of the run (selected ones and their dependencies): any other is refused with 404. */
  projects: readonly string[];
  /** The config's `workers`: a per-worker lane needs `0 ≤ worker < workers`. */
  workers: number;
  /** Boots lanes ahead of need. */
  prefetcher?: LanePrefetcher | undefined;
  /**
   * Names of every project of the config, in order: the ids Playwright gives its workers are made
   * from them (see projectNamesById).
   * @default projects
   */
  configProjects?: readonly string[];
}

/** Who asks: the runner itself (the service's own token), or one worker (its token, see worker-tokens.ts). */
type Caller = { kind: 'runner' } | { kind: 'worker'; project: string | undefined; parallelIndex: number };

/** A request body larger than this is refused: a lane request is a few dozen bytes. */
const MAX_BODY_BYTES = 16_384;

/**
 * A tiny HTTP service on 127.0.0.1 inside the Playwright runner: workers ask it for their lane, so
 * the lane's servers belong to the long-lived runner (not to a worker that may restart) and every
 * worker of a project gets the same lane. Only lanes of the run's projects and workers are served,
 * so the service boots at most `projects × (workers + 1)` lanes. Every request needs a token: a
 * worker's own (worker-tokens.ts), which opens only the lanes of that worker's project (and only
 * its own slot's per-worker lane), or the service's `token`, which stays in the runner's memory
 * (never in an environment). Lane servers get neither (see PRIVATE_RUNNER_ENV).
 */
export async function startControlServer(manager: LaneManager, options: ControlServerOptions): Promise<ControlServer> {
  if (!Array.isArray(options?.projects) || !Number.isInteger(options.workers) || options.workers < 1) {
    throw new LanesError('INVALID_OPTION', `startControlServer: \`projects\` must be an array of project names and \`workers\` a whole number ≥ 1, got ${JSON.stringify({ projects: options?.projects, workers: options?.workers })}.`);
  }
  const token = randomBytes(24).toString('hex');
  const byId = projectNamesById(options.configProjects ?? options.projects);
  const server = createServer((req, res) => void handle(manager, options, (header) => callerOf(header, token, byId), req, res));
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, resolve);
  });
  server.unref();
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  debug('control server on %s', url);
  return {
    url,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * `POST /lanes`: the lane (booted on first use); `POST /lanes/status`: its servers, dead ones marked;
 * `POST /lanes/reset`: its data put back to the template; `POST /lanes/test`: a test begins (after a
 * reset, with `reset`) or ends using the lane.
 */
const ROUTES = new Map<string, (manager: LaneManager, request: LaneRequest, prefetcher: LanePrefetcher | undefined, signal: AbortSignal) => Promise<unknown>>([
  [
    '/lanes',
    async (manager, request, prefetcher) => {
      const lane = manager.ensureLane(request.project, { worker: request.worker });
      if (request.worker === undefined) prefetcher?.asked(request.project);
      return { lane: await lane };
    },
  ],
  ['/lanes/status', async (manager, request) => ({ servers: await manager.serverStatus(request.project, { worker: request.worker }) })],
  [
    '/lanes/reset',
    async (manager, request) => ({ reset: await manager.resetLane(request.project, { worker: request.worker, ...(request.strategy ? { strategy: request.strategy } : {}), ...(request.user ? { user: request.user } : {}) }) }),
  ],
  [
    '/lanes/test',
    async (manager, request, _prefetcher, signal) => {
      const user = request.user!;
      if (request.phase === 'end') {
        manager.endTest(request.project, request.worker, user, request.failed === true);
        return {};
      }
      // In UI mode a new run of the session starts from the template, like a new `playwright test`.
      const round = !request.reset && manager.startsRound(request.project, request.worker, user.pid);
      const resets = request.reset === true || round;
      // The test enters the lane first (alone on it when it resets), then resets: no other test
      // enters or resets between the check and the claim, and none is running when the reset ends sessions.
      await manager.beginTest(request.project, request.worker, user, { exclusive: resets, signal });
      let reset: DatabaseReset | undefined;
      try {
        if (resets) reset = await manager.resetLane(request.project, { worker: request.worker, ...(request.strategy ? { strategy: request.strategy } : {}), user });
      } catch (error) {
        manager.endTest(request.project, request.worker, user);
        throw error;
      }
      if (round) manager.shareLane(request.project, request.worker, user);
      return reset ? { reset } : {};
    },
  ],
]);

/** A refused request: its HTTP status and the error the worker shows. */
class Refused extends Error {
  readonly error: LanesError;

  constructor(
    readonly status: number,
    code: LanesErrorCode,
    message: string,
    hint: string,
  ) {
    super(message);
    this.error = new LanesError(code, message, { hint });
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) {
      throw new Refused(413, 'LANE_REQUEST_INVALID', `The lane service got a request body larger than ${MAX_BODY_BYTES} bytes.`, 'Send {"project": "<name>"} or {"project": "<name>", "worker": <parallelIndex>}.');
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The request, checked against the run's projects and workers. */
function parseRequest(text: string, options: ControlServerOptions): LaneRequest {
  const shape = 'Send {"project": "<name>"} or {"project": "<name>", "worker": <parallelIndex>} with the token of the run.';
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Refused(400, 'LANE_REQUEST_INVALID', `The lane service got a body that is not JSON: ${JSON.stringify(text.slice(0, 80))}.`, shape);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new Refused(400, 'LANE_REQUEST_INVALID', `The lane service expects a JSON object, got ${JSON.stringify(text.slice(0, 80))}.`, shape);
  }
  const { project, worker, strategy, user, phase, reset, failed, ...rest } = body as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length > 0) throw new Refused(400, 'LANE_REQUEST_INVALID', `The lane service does not know the field(s) ${extra.map((key) => JSON.stringify(key)).join(', ')}.`, shape);
  if (typeof project !== 'string') throw new Refused(400, 'LANE_REQUEST_INVALID', `The lane service needs "project" as a string, got ${JSON.stringify(project) ?? 'nothing'}.`, shape);
  if (worker !== undefined && !(Number.isInteger(worker) && (worker as number) >= 0 && (worker as number) < options.workers)) {
    throw new Refused(400, 'LANE_REQUEST_INVALID', `The lane service got worker ${JSON.stringify(worker)}; this run has ${options.workers} worker(s) (0 to ${options.workers - 1}).`, 'A per-worker lane is asked for with the worker\'s parallelIndex, which is below the config\'s `workers`.');
  }
  if (!options.projects.includes(project)) {
    throw new Refused(404, 'LANE_NOT_FOUND', `Project ${JSON.stringify(project)} is not a project of this run (known: ${options.projects.map((name) => JSON.stringify(name)).join(', ') || 'none'}).`, 'Only the projects of the Playwright config that this run selected (and their dependencies) have lanes.');
  }
  const request: LaneRequest = worker === undefined ? { project } : { project, worker: worker as number };
  if (strategy !== undefined) {
    if (!(RESET_STRATEGIES as readonly unknown[]).includes(strategy)) throw new Refused(400, 'LANE_REQUEST_INVALID', `The lane service got reset strategy ${JSON.stringify(strategy)}.`, "Use 'swap' or 'truncate'.");
    request.strategy = strategy as ResetStrategy;
  }
  if (user !== undefined) {
    const candidate = user as Partial<LaneUser> | null;
    if (typeof candidate !== 'object' || candidate === null || !Number.isInteger(candidate.pid) || typeof candidate.testId !== 'string' || (candidate.title !== undefined && typeof candidate.title !== 'string')) {
      throw new Refused(400, 'LANE_REQUEST_INVALID', `The lane service got a test user it cannot read: ${JSON.stringify(user).slice(0, 120)}.`, 'Send "user": {"pid": <worker pid>, "testId": "<id>"}.');
    }
    request.user = { pid: candidate.pid!, testId: candidate.testId, ...(candidate.title !== undefined ? { title: candidate.title.slice(0, 200) } : {}) };
  }
  if (phase !== undefined) {
    if (phase !== 'begin' && phase !== 'end') throw new Refused(400, 'LANE_REQUEST_INVALID', `The lane service got phase ${JSON.stringify(phase)}.`, "Use 'begin' or 'end'.");
    if (request.user === undefined) throw new Refused(400, 'LANE_REQUEST_INVALID', 'A test phase needs "user".', 'Send "user": {"pid": <worker pid>, "testId": "<id>"}.');
    request.phase = phase;
  }
  if (failed !== undefined) {
    if (typeof failed !== 'boolean') throw new Refused(400, 'LANE_REQUEST_INVALID', `The lane service got failed ${JSON.stringify(failed)}.`, 'Send "failed": true or false.');
    request.failed = failed;
  }
  if (reset !== undefined) {
    if (typeof reset !== 'boolean') throw new Refused(400, 'LANE_REQUEST_INVALID', `The lane service got reset ${JSON.stringify(reset)}.`, 'Send "reset": true or false.');
    request.reset = reset;
  }
  return request;
}

/** The caller a request's `authorization` header names, or undefined for no known token. */
function callerOf(header: string | undefined, runnerToken: string, byId: ReadonlyMap<string, string>): Caller | 'pending' | undefined {
  const token = header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
  if (!token) return undefined;
  if (safeEqual(token, runnerToken)) return { kind: 'runner' };
  const scope = scopeOfWorkerToken(token);
  if (scope === undefined || scope === 'pending') return scope;
  return { kind: 'worker', project: byId.get(scope.projectId), parallelIndex: scope.parallelIndex };
}

function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** Refuses a worker's request for a lane its token does not open. */
function assertOpens(caller: Caller, request: LaneRequest): void {
  if (caller.kind === 'runner') return;
  const own = caller.project !== undefined && request.project === caller.project && (request.worker === undefined || request.worker === caller.parallelIndex);
  if (own) return;
  const asked = `project ${JSON.stringify(request.project)}${request.worker !== undefined ? ` (worker ${request.worker})` : ''}`;
  const opens = caller.project === undefined ? 'no lane' : `the lanes of project ${JSON.stringify(caller.project)} (its per-worker lane: worker ${caller.parallelIndex}) only`;
  throw new Refused(403, 'UNAUTHORIZED', `This worker's token opens ${opens}; it asked for the lane of ${asked}.`, "Each worker's token opens its own project's lanes: ask through the `lane` fixture of the test's own project.");
}

async function handle(manager: LaneManager, options: ControlServerOptions, identify: (header: string | undefined) => Caller | 'pending' | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const reply = (status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const fail = (status: number, error: LanesError): void => reply(status, { error: error.toJSON() });
  const caller = identify(req.headers.authorization);
  if (caller === undefined) return fail(401, new LanesError('UNAUTHORIZED', 'bad token'));
  if (caller === 'pending') return fail(401, new LanesError('UNAUTHORIZED', 'The token of a worker that Playwright has not told its project yet.'));
  const route = req.method === 'POST' ? ROUTES.get(req.url ?? '') : undefined;
  if (!route) return fail(404, new LanesError('NOT_FOUND', `${req.method} ${req.url}`));
  let request: LaneRequest;
  try {
    request = parseRequest(await readBody(req), options);
    assertOpens(caller, request);
  } catch (error) {
    if (!(error instanceof Refused)) return fail(400, new LanesError('LANE_REQUEST_INVALID', messageOf(error)));
    debug('refused lane request: %s', error.message);
    return fail(error.status, error.error);
  }
  // A worker that goes away (killed, timed out) stops waiting for its lane.
  const gone = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) gone.abort();
  });
  try {
    reply(200, await route(manager, request, options.prefetcher, gone.signal));
  } catch (error) {
    debug('lane request failed: %O', error);
    fail(500, isLanesError(error) ? error : new LanesError('INTERNAL', messageOf(error)));
  }
}
