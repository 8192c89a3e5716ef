import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isLanesError } from '../errors.js';
import type { LaneManager } from '../lanes/lane-manager.js';
import { debugLogger } from '../log.js';
import type { LanePrefetcher } from './prefetch.js';

const debug = debugLogger('control');

export const CONTROL_URL_ENV = 'E2E_LANES_CONTROL_URL';
export const CONTROL_TOKEN_ENV = 'E2E_LANES_CONTROL_TOKEN';

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
}

/**
 * A tiny HTTP service on 127.0.0.1 inside the Playwright runner: workers ask it for their lane, so
 * the lane's servers belong to the long-lived runner (not to a worker that may restart) and every
 * worker of a project gets the same lane. Requests need the run's random token.
 */
export async function startControlServer(manager: LaneManager, prefetcher?: LanePrefetcher): Promise<ControlServer> {
  const token = randomBytes(24).toString('hex');
  const server = createServer((req, res) => void handle(manager, prefetcher, token, req, res));
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

/** `POST /lanes`: the lane (booted on first use); `POST /lanes/status`: its servers, dead ones marked. */
const ROUTES = new Map<string, (manager: LaneManager, request: LaneRequest, prefetcher: LanePrefetcher | undefined) => Promise<unknown>>([
  [
    '/lanes',
    async (manager, request, prefetcher) => {
      const lane = manager.ensureLane(request.project, request.worker);
      if (request.worker === undefined) prefetcher?.asked(request.project);
      return { lane: await lane };
    },
  ],
  ['/lanes/status', async (manager, request) => ({ servers: await manager.serverStatus(request.project, request.worker) })],
]);

async function handle(manager: LaneManager, prefetcher: LanePrefetcher | undefined, token: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const reply = (status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  if (req.headers.authorization !== `Bearer ${token}`) return reply(401, { error: { code: 'UNAUTHORIZED', message: 'bad token' } });
  const route = req.method === 'POST' ? ROUTES.get(req.url ?? '') : undefined;
  if (!route) return reply(404, { error: { code: 'NOT_FOUND', message: `${req.method} ${req.url}` } });
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const request = JSON.parse(Buffer.concat(chunks).toString('utf8')) as LaneRequest;
    reply(200, await route(manager, request, prefetcher));
  } catch (error) {
    debug('lane request failed: %O', error);
    const lanes = isLanesError(error) ? error : undefined;
    reply(500, {
      error: {
        code: lanes?.code ?? 'INTERNAL',
        message: lanes ? lanes.message.replace(/\nHint: [\s\S]*$/, '') : String((error as Error)?.message ?? error),
        hint: lanes?.hint,
      },
    });
  }
}
